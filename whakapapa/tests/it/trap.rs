//! The trap: a purpose captured in `Service::call` lacks the caller, because kube's `Buffer`
//! runs `call` on its worker task. The layer captures at the future's first poll instead.

use super::{default_stack_client, frame, parse_ua, settings};
use http::Request;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tower::{Layer, Service};
use whakapapa::{Purpose, PurposeLayer};

/// A layer that captures a purpose where a naive middleware would: in `call`.
#[derive(Clone, Default)]
struct CaptureInCall {
    captured: Arc<Mutex<Vec<Purpose>>>,
}

struct CaptureInCallService<S> {
    inner: S,
    captured: Arc<Mutex<Vec<Purpose>>>,
}

impl<S> Layer<S> for CaptureInCall {
    type Service = CaptureInCallService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CaptureInCallService {
            inner,
            captured: self.captured.clone(),
        }
    }
}

impl<S: Service<Request<B>>, B> Service<Request<B>> for CaptureInCallService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, request: Request<B>) -> S::Future {
        self.captured.lock().unwrap().extend(Purpose::capture());
        self.inner.call(request)
    }
}

async fn get_from_the_trap_caller(api: &Api<Pod>) -> u32 {
    let line = line!() + 1;
    api.get("trap-1").await.unwrap();
    line
}

#[tokio::test]
async fn a_capture_in_call_lacks_the_caller_but_the_layer_has_it() {
    let server = super::standin(&["trap-1"]).await;
    let dir = tempfile::tempdir().unwrap();
    let purpose = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    purpose.wait_warm(super::WARM_UP);
    let in_call = CaptureInCall::default();
    // `CaptureInCall` is outermost, right under kube's Buffer, as a naive layer would be.
    let client = kube::client::ClientBuilder::try_from(server.config())
        .unwrap()
        .with_layer(&purpose)
        .with_layer(&in_call)
        .build();
    let api: Api<Pod> = Api::default_namespaced(client);
    let line = get_from_the_trap_caller(&api).await;

    let captured = in_call.captured.lock().unwrap().clone();
    assert_eq!(captured.len(), 1);
    let in_call_functions: Vec<&str> = captured[0]
        .frames
        .iter()
        .map(|f| f.function.as_str())
        .collect();
    assert!(
        !in_call_functions
            .iter()
            .any(|f| f.contains("get_from_the_trap_caller") || f.contains("Api<K>")),
        "a capture in call() saw the caller: {in_call_functions:?}"
    );

    let _ = default_stack_client; // the layer under test is the same as everywhere else
    let ua = server.seen_with("trap-1")[0].user_agent();
    let parsed = parse_ua(&ua);
    assert_eq!(
        parsed.frames[1],
        frame("trap", "get_from_the_trap_caller", line),
        "{ua}"
    );
}
