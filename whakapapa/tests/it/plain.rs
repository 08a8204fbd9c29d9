//! The layer on plain tower and hyper clients, without kube.

use super::{frame, parse_ua};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower::util::BoxCloneService;
use tower::{BoxError, Layer, Service, ServiceExt};
use whakapapa::{Purpose, PurposeLayer, Settings};

async fn get_with_hyper<S>(client: S, url: String) -> u32
where
    S: Service<Request<Full<Bytes>>, Error = BoxError>,
{
    let request = Request::get(url).body(Full::new(Bytes::new())).unwrap();
    let line = line!() + 1;
    client.oneshot(request).await.unwrap();
    line
}

#[tokio::test]
async fn a_hyper_client_gets_identity_and_purpose() {
    let server = super::standin(&["plain-1"]).await;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let layer = PurposeLayer::new(Settings::new(whakapapa::identity!()));
    layer.wait_warm(super::WARM_UP);
    let url = format!("{}/api/v1/namespaces/default/pods/plain-1", server.url());
    let line = get_with_hyper(layer.layer(hyper), url).await;
    let ua = server.seen_with("plain-1")[0].user_agent();
    let parsed = parse_ua(&ua);
    // No kube frame here: the first frame is the application's.
    assert_eq!(
        parsed.frames[0],
        frame("plain", "get_with_hyper", line),
        "{ua}"
    );
}

/// The service below the layer: what it found in the request's extensions, and its headers.
type Seen = Arc<Mutex<Vec<(Option<Arc<Purpose>>, http::HeaderMap)>>>;

/// Records what each request carries into `seen`.
fn recorder(
    seen: &Seen,
) -> impl Service<Request<()>, Response = Response<()>, Error = BoxError> + use<> {
    let seen = seen.clone();
    tower::service_fn(move |req: Request<()>| {
        let purpose = req.extensions().get::<Arc<Purpose>>().cloned();
        seen.lock().unwrap().push((purpose, req.headers().clone()));
        async { Ok::<_, BoxError>(Response::new(())) }
    })
}

async fn get_for_billing<S>(svc: S) -> u32
where
    S: Service<Request<()>, Error = BoxError>,
{
    let line = line!() + 1;
    svc.oneshot(Request::new(())).await.ok();
    line
}

#[tokio::test]
async fn layers_below_find_the_purpose_in_the_extensions() {
    let seen = Seen::default();
    let layer = PurposeLayer::new(Settings::new(whakapapa::identity!()));
    layer.wait_warm(super::WARM_UP);
    let line = get_for_billing(layer.layer(recorder(&seen))).await;
    let (purpose, headers) = seen.lock().unwrap().pop().unwrap();
    let purpose = purpose.expect("the purpose in the request's extensions");
    let ua = parse_ua(headers["user-agent"].to_str().unwrap());
    assert_eq!(purpose.fingerprint, ua.fingerprint);
    let first = &purpose.frames[0];
    assert_eq!(
        format!("{}@{}:{}", first.function, first.file, first.line),
        frame("plain", "get_for_billing", line)
    );

    // Switched off, nothing is added.
    let seen_off = Seen::default();
    let off = PurposeLayer::new(Settings::off(whakapapa::identity!()));
    get_for_billing(off.layer(recorder(&seen_off))).await;
    assert!(seen_off.lock().unwrap()[0].0.is_none());
}

/// An inner service that lets one request in at a time and takes a while to answer.
fn one_at_a_time() -> BoxCloneService<Request<()>, Response<()>, std::io::Error> {
    let slow = tower::service_fn(|_req: Request<()>| async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok::<_, std::io::Error>(Response::new(()))
    });
    BoxCloneService::new(tower::limit::ConcurrencyLimit::new(slow, 1))
}

async fn many_requests_at_once(flavor: &str) {
    let layer = PurposeLayer::new(Settings::new(whakapapa::identity!()));
    layer.wait_warm(super::WARM_UP);
    let svc = layer.layer(one_at_a_time());
    let requests = (0..20).map(|_| {
        let svc = svc.clone();
        tokio::spawn(async move { svc.oneshot(Request::new(())).await.map(|_| ()) })
    });
    let all = futures::future::join_all(requests);
    let done = tokio::time::timeout(Duration::from_secs(20), all)
        .await
        .unwrap_or_else(|_| panic!("{flavor}: a request waiting for readiness was never woken"));
    for r in done {
        r.unwrap().unwrap();
    }
}

/// Readiness is asked for by each response future under the gate: futures that find the
/// service busy wait and are woken, none is lost, and no readiness is used twice (which would
/// panic in `ConcurrencyLimit`).
#[tokio::test]
async fn a_busy_inner_service_serves_every_waiting_request() {
    many_requests_at_once("current thread").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_inner_service_serves_every_waiting_request_across_threads() {
    many_requests_at_once("multi thread").await;
}
