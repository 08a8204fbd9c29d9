//! In an optimized build (`cargo test --release`), with the workspace's release profile
//! (`debug = "limited"`), async fns inlined into their callers still appear by name with their
//! `file:line`. Every other test of this binary then runs optimized too.

use super::{default_stack_client, frame, parse_ua, settings};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use whakapapa::PurposeLayer;

/// Small enough to be inlined into its caller's poll in a release build.
async fn inlined_lookup(api: &Api<Pod>) -> u32 {
    let line = line!() + 1;
    api.get("release-1").await.unwrap();
    line
}

async fn calls_the_inlined_lookup(api: &Api<Pod>) -> [u32; 2] {
    let line = line!() + 1;
    [inlined_lookup(api).await, line]
}

#[tokio::test]
async fn optimized_builds_keep_inlined_async_fns() {
    let server = super::standin(&["release-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let [inner, outer] = calls_the_inlined_lookup(&api).await;
    let ua = server.seen_with("release-1")[0].user_agent();
    let parsed = parse_ua(&ua);
    eprintln!("optimized: {}; {ua}", !cfg!(debug_assertions));
    assert!(
        parsed.frames[0].starts_with("kube_client::api::Api<K>::get@"),
        "{ua}"
    );
    assert_eq!(
        parsed.frames[1],
        frame("release", "inlined_lookup", inner),
        "{ua}"
    );
    assert_eq!(
        parsed.frames[2],
        frame("release", "calls_the_inlined_lookup", outer),
        "{ua}"
    );
}
