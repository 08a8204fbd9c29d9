//! Full purposes reach a collector over HTTP, once per fingerprint, off the request path.

use super::{default_stack_client, frame};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use whakapapa::{PurposeLayer, Record, Settings};

/// Content type and body of each post.
pub type Bodies = Arc<Mutex<Vec<(String, String)>>>;

/// A stand-in for the collector's `POST /purposes`, keeping what it receives.
pub async fn stand_in_collector() -> (String, Bodies) {
    let bodies: Bodies = Arc::default();
    async fn purposes(State(b): State<Bodies>, headers: http::HeaderMap, body: String) {
        let ct = headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        b.lock().unwrap().push((ct, body));
    }
    let app = Router::new()
        .route("/purposes", post(purposes))
        .with_state(bodies.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    (url, bodies)
}

async fn get_three_times_for_billing(api: &Api<Pod>) -> u32 {
    let line = line!() + 2;
    for _ in 0..3 {
        api.get("billing-1").await.unwrap();
    }
    line
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_posted_once_per_fingerprint() {
    let server = super::standin(&["billing-1"]).await;
    let (url, bodies) = stand_in_collector().await;
    let settings = Settings::new(whakapapa::identity!())
        .with_collector_url(&url)
        .unwrap();
    let layer = PurposeLayer::new(settings);
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    let line = get_three_times_for_billing(&api).await;
    let flushed = layer.handle().flush(Duration::from_secs(10));
    let bodies = bodies.lock().unwrap().clone();
    let records: Vec<Record> = bodies
        .iter()
        .inspect(|(ct, _)| assert_eq!(ct, "application/x-ndjson"))
        .flat_map(|(_, body)| {
            body.lines()
                .map(|l| serde_json::from_str::<Record>(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    let mine: Vec<&Record> = records
        .iter()
        .filter(|r| {
            r.frames
                .iter()
                .any(|f| f.function.ends_with("get_three_times_for_billing"))
        })
        .collect();
    assert_eq!(mine.len(), 1, "once per fingerprint: {records:?}");
    assert!(flushed.is_complete(), "{flushed}");
    assert_eq!(flushed.delivered, records.len() as u64, "{flushed}");
    assert_eq!(
        (flushed.failed, flushed.dropped, flushed.pending),
        (0, 0, 0)
    );
    let f = &mine[0].frames[1];
    assert_eq!(
        format!("{}@{}:{}", f.function, f.file, f.line),
        frame("sidechannel", "get_three_times_for_billing", line)
    );
    let seen = server.seen_with("billing-1");
    assert_eq!(seen.len(), 3);
    let fps: Vec<u64> = seen
        .iter()
        .map(|s| super::parse_ua(&s.user_agent()).fingerprint)
        .collect();
    assert!(fps.iter().all(|fp| *fp == mine[0].fingerprint));
}

#[tokio::test]
async fn debug_info_is_loaded_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let layer = PurposeLayer::new(super::settings(&dir.path().join("p.jsonl")));
    layer.wait_warm(super::WARM_UP);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !layer.handle().stats().symbols_warm {
        assert!(
            std::time::Instant::now() < deadline,
            "warm-up never finished"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A collector that is down costs nothing but a counted failure: the request goes through.
#[tokio::test]
async fn an_unreachable_collector_never_fails_a_request() {
    let server = super::standin(&["collector-down-1"]).await;
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let settings = Settings::new(whakapapa::identity!())
        .with_collector_url(&url)
        .unwrap();
    let layer = PurposeLayer::new(settings);
    layer.wait_warm(super::WARM_UP);
    let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
    api.get("collector-down-1").await.unwrap();
    let flushed = layer.handle().flush(Duration::from_secs(20));
    assert!(!flushed.is_complete(), "{flushed}");
    assert_eq!(
        (flushed.delivered, flushed.failed, flushed.pending),
        (0, 1, 0),
        "{flushed}"
    );
    assert_eq!(layer.handle().stats().sink_failures, 1);
    assert_eq!(server.seen_with("collector-down-1").len(), 1);
}

async fn list_for_two_clients(api: &Api<Pod>) {
    let lp = kube::api::ListParams::default().labels("two=clients");
    api.list(&lp).await.unwrap();
}

/// Once per fingerprint per process and destination: two layers writing to one spool send a
/// purpose once.
#[tokio::test]
async fn two_layers_on_one_spool_send_a_purpose_once() {
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("shared.jsonl");
    for _ in 0..2 {
        let layer = PurposeLayer::new(super::settings(&spool));
        layer.wait_warm(super::WARM_UP);
        let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
        list_for_two_clients(&api).await;
        assert!(layer.handle().flush(Duration::from_secs(10)).is_complete());
    }
    let fps: Vec<u64> = server
        .seen_with("two%3Dclients")
        .iter()
        .map(|s| super::parse_ua(&s.user_agent()).fingerprint)
        .collect();
    assert_eq!(fps.len(), 2);
    assert_eq!(fps[0], fps[1]);
    let records = super::spool_records(&spool, |r| !r.is_empty());
    assert_eq!(
        records.iter().filter(|r| r.fingerprint == fps[0]).count(),
        1
    );
}
