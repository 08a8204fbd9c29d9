//! The first request of a process, before debug info is loaded: it goes at once, with its
//! identity and a fingerprint, and its frames follow through the side channel under that
//! fingerprint. A test binary of its own, so that no other test has warmed the process.

use http::{HeaderMap, Request, Response};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tower::{BoxError, Layer as _, ServiceExt as _};
use whakapapa::wire::user_agent;
use whakapapa::{PurposeLayer, Record, Settings};

/// What the stated bound allows a first request, loaded machine included (it measures a few
/// milliseconds: `cargo bench -p whakapapa --bench first_request`); loading this test
/// binary's debug info takes seconds.
const FIRST_REQUEST_BOUND: Duration = Duration::from_millis(250);

async fn first_request<S>(service: S) -> u32
where
    S: tower::Service<Request<()>, Response = Response<()>, Error = BoxError>,
{
    let line = line!() + 1;
    service.oneshot(Request::new(())).await.unwrap();
    line
}

/// This process's threads named by whakapapa (as the kernel keeps them: 15 bytes), sorted,
/// each name once.
fn whakapapa_threads() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .filter(|name| name.starts_with("whakapapa"))
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn the_first_request_goes_before_debug_info_and_its_frames_follow() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("p.jsonl");
    let layer = PurposeLayer::new(Settings::new(whakapapa::identity!()).with_spool(&spool));
    // Building the layer started nothing; the service built from it starts both threads.
    assert_eq!(whakapapa_threads(), Vec::<String>::new());
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let keep = seen.clone();
    let service = layer.layer(tower::service_fn(move |req: Request<()>| {
        keep.lock().unwrap().push(req.headers().clone());
        async { Ok::<_, BoxError>(Response::new(())) }
    }));

    let started = Instant::now();
    let line = first_request(service).await;
    let took = started.elapsed();
    let warm = layer.handle().stats().symbols_warm;

    let ua = seen.lock().unwrap()[0]["user-agent"]
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = user_agent::parse(&ua);
    let fingerprint = parsed.fingerprint.expect("a fingerprint");
    assert!(
        !warm,
        "debug info was loaded within {took:?}, before the request"
    );
    assert!(
        parsed.frames.is_empty(),
        "no frames before debug info: {ua}"
    );
    assert!(
        took < FIRST_REQUEST_BOUND,
        "the first request took {took:?}"
    );

    // A new thread names itself once it runs; the warm-up's may be done already.
    let started_both = || {
        let names = whakapapa_threads();
        names.iter().any(|n| n == "whakapapa-sidec")
            && (names.iter().any(|n| n == "whakapapa-warm-") || layer.handle().stats().symbols_warm)
    };
    let named = Instant::now();
    while !started_both() && named.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        started_both(),
        "after the first request: {:?}",
        whakapapa_threads()
    );

    let flushed =
        tokio::task::spawn_blocking(move || layer.handle().flush(Duration::from_secs(60)))
            .await
            .unwrap();
    assert!(flushed.is_complete(), "{flushed}");
    let records: Vec<Record> = std::fs::read_to_string(&spool)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let record = records
        .iter()
        .find(|r| r.fingerprint == fingerprint)
        .expect("the request's record");
    let want = format!("cold::first_request@tests/cold.rs:{line}");
    assert!(
        record.frames.iter().any(|f| f.token() == want),
        "{want} in {:?}",
        record.frames
    );
    assert!(record.addresses.is_empty(), "resolved, not addresses");
    assert_eq!(
        record.test.as_deref(),
        Some("the_first_request_goes_before_debug_info_and_its_frames_follow")
    );
    println!("first request {took:?}, before debug info; frames followed: {want}");
}
