//! Requests through real `kube::Client`s name the functions and lines that made them.

use super::{default_stack_client, frame, parse_ua, settings, spool_records};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams, WatchParams};
use kube::runtime::controller::Action;
use kube::runtime::{Controller, watcher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use whakapapa::PurposeLayer;
use whakapapa::wire::audit_id;
use whakapapa_testkit::{StandInApiServer, StandInConfig, fixtures};

const LIST: &str = "kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:";

fn frames_of(server: &StandInApiServer, needle: &str) -> Vec<super::ParsedUa> {
    server
        .seen_with(needle)
        .iter()
        .map(|s| parse_ua(&s.user_agent()))
        .collect()
}

async fn list_pods_for_inventory(api: &Api<Pod>) -> u32 {
    let lp = ListParams::default().labels("app=inventory");
    let line = line!() + 1;
    api.list(&lp).await.unwrap();
    line
}

#[tokio::test]
async fn list_names_the_api_method_then_the_calling_fn() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let line = list_pods_for_inventory(&api).await;

    let seen = server.seen_with("inventory");
    assert_eq!(seen.len(), 1);
    let ua = seen[0].user_agent();
    assert!(ua.len() <= 1024);
    let parsed = parse_ua(&ua);
    assert!(parsed.frames[0].starts_with(LIST), "{ua}");
    assert_eq!(
        parsed.frames[1],
        frame("requests", "list_pods_for_inventory", line),
        "{ua}"
    );
    assert!(
        parsed.frames[2].starts_with("tests::it::requests::list_names_the_api_method_then_the_calling_fn@tests/it/requests.rs:"),
        "{ua}"
    );
    assert!(parsed.head.starts_with("whakapapa/v0.1.0 ("), "{ua}");
    assert!(
        parsed
            .head
            .ends_with(" -- it::requests::list_names_the_api_method_then_the_calling_fn"),
        "{ua}"
    );
    // No plumbing frames at all.
    for f in &parsed.frames {
        for plumbing in [
            "tokio::",
            "tower::",
            "hyper::",
            "whakapapa::",
            "std::",
            "core::",
            "futures",
        ] {
            assert!(!f.starts_with(plumbing), "{f} in {ua}");
        }
    }
    let audit_id = seen[0].headers["audit-id"].to_str().unwrap();
    assert_eq!(audit_id::decode(audit_id), Some(parsed.fingerprint));

    assert!(
        layer
            .handle()
            .flush(std::time::Duration::from_secs(10))
            .is_complete()
    );
    let records = spool_records(&dir.path().join("p.jsonl"), |r| !r.is_empty());
    let record = records
        .iter()
        .find(|r| r.fingerprint == parsed.fingerprint)
        .expect("record for the fingerprint");
    assert_eq!(
        record.frames[1].function,
        "tests::it::requests::list_pods_for_inventory"
    );
    assert_eq!(record.frames[1].file, "tests/it/requests.rs");
    assert_eq!(record.frames[1].line, line);
    assert_eq!(record.identity.name.as_deref(), Some("whakapapa"));
    assert_eq!(
        record.test.as_deref(),
        Some("it::requests::list_names_the_api_method_then_the_calling_fn")
    );
}

async fn get_pod_for_checkout(api: &Api<Pod>, name: &str) -> u32 {
    let line = line!() + 1;
    api.get(name).await.unwrap();
    line
}

async fn create_pod_for_rollout(api: &Api<Pod>) -> u32 {
    let (pp, new_pod) = (PostParams::default(), fixtures::pod("default", "rollout-1"));
    let line = line!() + 1;
    api.create(&pp, &new_pod).await.unwrap();
    line
}

async fn watch_pods_for_dashboard(api: &Api<Pod>) -> u32 {
    let wp = WatchParams::default().labels("app=dashboard");
    let line = line!() + 1;
    let stream = api.watch(&wp, "0").await.unwrap();
    let mut stream = stream.boxed();
    let first = stream.next().await.expect("an event").unwrap();
    assert!(matches!(first, kube::api::WatchEvent::Added(_)));
    line
}

/// Built with the one-line helper rather than `ClientBuilder` + layer.
#[tokio::test]
async fn get_create_and_watch_through_the_helper() {
    let config = StandInConfig::default()
        .with_object(fixtures::pod("default", "checkout-7"))
        .with_object(fixtures::labelled_pod(
            "default",
            "dashboard-0",
            "app",
            "dashboard",
        ));
    let server = StandInApiServer::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("p.jsonl");
    let (client, handle) = whakapapa::client_with(server.config(), settings(&spool)).unwrap();
    let api: Api<Pod> = Api::default_namespaced(client);

    let get_line = get_pod_for_checkout(&api, "checkout-7").await;
    let create_line = create_pod_for_rollout(&api).await;
    let watch_line = watch_pods_for_dashboard(&api).await;
    // The helper's handle speaks for its own layer alone: one record per request's purpose.
    let flushed = handle.flush(std::time::Duration::from_secs(10));
    assert!(flushed.is_complete(), "{flushed}");
    assert_eq!(flushed.delivered, 3, "{flushed}");

    let cases = [
        (
            "checkout-7",
            "kube_client::api::Api<K>::get@",
            "get_pod_for_checkout",
            get_line,
        ),
        (
            "POST",
            "kube_client::api::Api<K>::create@",
            "create_pod_for_rollout",
            create_line,
        ),
        (
            "app%3Ddashboard",
            "kube_client::api::Api<K>::watch@",
            "watch_pods_for_dashboard",
            watch_line,
        ),
    ];
    for (needle, api_frame, function, line) in cases {
        let seen: Vec<_> = if needle == "POST" {
            server
                .seen()
                .into_iter()
                .filter(|s| s.method == "POST")
                .collect()
        } else {
            server.seen_with(needle)
        };
        assert_eq!(seen.len(), 1, "{needle}");
        let ua = seen[0].user_agent();
        let parsed = parse_ua(&ua);
        assert!(parsed.frames[0].starts_with(api_frame), "{ua}");
        assert_eq!(parsed.frames[1], frame("requests", function, line), "{ua}");
        let records = spool_records(&spool, |r| {
            r.iter().any(|r| r.fingerprint == parsed.fingerprint)
        });
        let record = records.iter().find(|r| r.fingerprint == parsed.fingerprint);
        let record = record.unwrap_or_else(|| panic!("no spool record for {function}"));
        assert_eq!(
            record.frames[1].function,
            format!("tests::it::requests::{function}")
        );
        assert_eq!(record.frames[1].line, line);
    }
}

async fn outer_reconcile_step(api: &Api<Pod>) -> [u32; 3] {
    let line = line!() + 1;
    let [middle, innermost] = middle_reconcile_step(api).await;
    [innermost, middle, line]
}

async fn middle_reconcile_step(api: &Api<Pod>) -> [u32; 2] {
    let line = line!() + 1;
    let innermost = innermost_reconcile_step(api).await;
    [line, innermost]
}

async fn innermost_reconcile_step(api: &Api<Pod>) -> u32 {
    let line = line!() + 1;
    api.get("nested-1").await.unwrap();
    line
}

#[tokio::test]
async fn nested_async_fns_appear_innermost_first() {
    let server = super::standin(&["nested-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let [innermost, middle, outer] = outer_reconcile_step(&api).await;
    let ua = server.seen_with("nested-1")[0].user_agent();
    let parsed = parse_ua(&ua);
    assert_eq!(
        parsed.frames[1..4],
        [
            frame("requests", "innermost_reconcile_step", innermost),
            frame("requests", "middle_reconcile_step", middle),
            frame("requests", "outer_reconcile_step", outer),
        ],
        "{ua}"
    );
}

async fn fetch_in_spawned_task(api: Api<Pod>) -> u32 {
    let line = line!() + 1;
    api.get("spawned-1").await.unwrap();
    line
}

#[tokio::test]
async fn a_spawned_task_names_its_own_fn() {
    let server = super::standin(&["spawned-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let line = tokio::spawn(fetch_in_spawned_task(api)).await.unwrap();
    let ua = server.seen_with("spawned-1")[0].user_agent();
    let parsed = parse_ua(&ua);
    assert_eq!(
        parsed.frames[1],
        frame("requests", "fetch_in_spawned_task", line),
        "{ua}"
    );
}

async fn run_pod_watcher(api: Api<Pod>) -> u32 {
    let mut events = watcher(api, watcher::Config::default()).boxed();
    let line = line!() + 2;
    loop {
        match events.next().await.expect("an event").unwrap() {
            watcher::Event::InitDone => return line,
            _ => continue,
        }
    }
}

#[tokio::test]
async fn a_runtime_watcher_names_the_fn_that_drives_it() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let line = run_pod_watcher(api).await;
    let lists = frames_of(&server, "/pods");
    let ua = &lists[0];
    // The user agent: the API method, then the application's frames; kube-runtime's stream
    // machinery in between is left to the full purpose.
    assert!(ua.frames[0].starts_with(LIST), "{ua:?}");
    assert_eq!(
        ua.frames[1],
        frame("requests", "run_pod_watcher", line),
        "{ua:?}"
    );
    assert!(
        layer
            .handle()
            .flush(std::time::Duration::from_secs(10))
            .is_complete()
    );
    let records = spool_records(&dir.path().join("p.jsonl"), |r| !r.is_empty());
    let fp = ua.fingerprint;
    let record = records
        .iter()
        .find(|r| r.fingerprint == fp)
        .expect("record");
    let functions: Vec<&str> = record.frames.iter().map(|f| f.function.as_str()).collect();
    assert!(
        functions.contains(&"kube_runtime::watcher::step"),
        "{functions:?}"
    );
    let watcher_file = record
        .frames
        .iter()
        .find(|f| f.function == "kube_runtime::watcher::step");
    assert!(
        watcher_file
            .unwrap()
            .file
            .starts_with("kube-runtime-5.0.0/src/")
    );
    assert!(functions.contains(&"tests::it::requests::run_pod_watcher"));
}

static RECONCILE_GET_LINE: AtomicU32 = AtomicU32::new(0);

async fn reconcile_pod(pod: Arc<Pod>, api: Arc<Api<Pod>>) -> Result<Action, kube::Error> {
    let name = format!(
        "reconciled-{}",
        pod.metadata.name.as_deref().unwrap_or_default()
    );
    RECONCILE_GET_LINE.store(line!() + 1, Ordering::Relaxed);
    api.get(&name).await?;
    Ok(Action::await_change())
}

#[tokio::test]
async fn a_controller_reconcile_names_the_reconciler() {
    // The controller watches the labelled pod; its reconciler gets the other.
    let config = StandInConfig::default()
        .with_object(fixtures::labelled_pod("default", "web-0", "app", "web"))
        .with_object(fixtures::pod("default", "reconciled-web-0"));
    let server = StandInApiServer::start(config).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let mut runs = Controller::new(api.clone(), watcher::Config::default().labels("app=web"))
        .run(
            reconcile_pod,
            |_, _, _| Action::await_change(),
            Arc::new(api),
        )
        .boxed();
    runs.next().await.expect("a reconcile").unwrap();
    let ua = server.seen_with("reconciled-web-")[0].user_agent();
    let parsed = parse_ua(&ua);
    assert!(
        parsed.frames[0].starts_with("kube_client::api::Api<K>::get@"),
        "{ua}"
    );
    let line = RECONCILE_GET_LINE.load(Ordering::Relaxed);
    assert_eq!(
        parsed.frames[1],
        frame("requests", "reconcile_pod", line),
        "{ua}"
    );
}

async fn list_twice_from_one_line_and_once_from_another(api: &Api<Pod>) {
    let lp = ListParams::default().labels("same=line");
    for _ in 0..2 {
        api.list(&lp).await.unwrap();
    }
    api.list(&lp).await.unwrap();
}

#[tokio::test]
async fn same_line_same_fingerprint_other_line_other_fingerprint() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    list_twice_from_one_line_and_once_from_another(&api).await;
    let fps: Vec<u64> = frames_of(&server, "same%3Dline")
        .iter()
        .map(|p| p.fingerprint)
        .collect();
    assert_eq!(fps.len(), 3);
    assert_eq!(fps[0], fps[1], "same line");
    assert_ne!(fps[1], fps[2], "other line");
}

#[tokio::test]
async fn fingerprints_do_not_depend_on_the_layer_or_client() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    for spool in ["a.jsonl", "b.jsonl"] {
        let layer = PurposeLayer::new(settings(&dir.path().join(spool)));
        layer.wait_warm(super::WARM_UP);
        let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
        list_twice_from_one_line_and_once_from_another(&api).await;
    }
    let fps: Vec<u64> = frames_of(&server, "same%3Dline")
        .iter()
        .map(|p| p.fingerprint)
        .collect();
    assert_eq!(fps.len(), 6);
    assert_eq!(fps[..3], fps[3..]);
}

/// Two functions calling each other, so that consecutive frames differ and none is folded.
async fn ping_then_list(api: &Api<Pod>, depth: usize) {
    if depth == 0 {
        let lp = ListParams::default().labels("deep=stack");
        api.list(&lp).await.unwrap();
    } else {
        Box::pin(pong_then_list(api, depth - 1)).await;
    }
}

async fn pong_then_list(api: &Api<Pod>, depth: usize) {
    Box::pin(ping_then_list(api, depth)).await;
}

#[tokio::test]
async fn a_200_frame_stack_fits_in_1024_bytes() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    ping_then_list(&api, 100).await;
    let seen = server.seen_with("deep%3Dstack");
    let ua = seen[0].user_agent();
    assert!(ua.len() <= 1024, "{} bytes", ua.len());
    let parsed = parse_ua(&ua);
    assert!(parsed.frames[0].starts_with(LIST));
    // Saturated: the renderer stopped adding frames because the next would not fit.
    assert!(ua.len() > 1024 - 80, "{} bytes: {ua}", ua.len());
    assert!(parsed.frames.len() >= 5, "{ua}");
    for f in &parsed.frames[1..] {
        assert!(
            f.starts_with("tests::it::requests::ping_then_list@")
                || f.starts_with("tests::it::requests::pong_then_list@"),
            "{ua}"
        );
    }
    // The side channel has the full purpose: far more frames than the user agent holds.
    assert!(
        layer
            .handle()
            .flush(std::time::Duration::from_secs(10))
            .is_complete()
    );
    let records = spool_records(&dir.path().join("p.jsonl"), |r| !r.is_empty());
    let fp = parsed.fingerprint;
    let record = records
        .iter()
        .find(|r| r.fingerprint == fp)
        .expect("record");
    assert!(record.frames.len() > 60, "{} frames", record.frames.len());
    assert!(record.frames.len() > 2 * parsed.frames.len());
}
