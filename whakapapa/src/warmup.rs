//! Loads debug info off the request path, once per process, in a background thread.
//!
//! Resolving the first address loads the symbol tables, and each new compilation unit touched
//! parses its own line tables: for a request that means tokio's scheduler, kube's client and
//! buffer, tower and hyper. So the thread rehearses one: a request through a real
//! `kube::Client` (kube's `Buffer`, a boxed stack, tokio's multi-thread scheduler) to an
//! in-process service that resolves its stack at the first poll of its response future,
//! exactly where the layer captures. It also resolves the stack that started it (the first
//! request's, or the caller of `wait_warm`), which reaches into the application's own code.

use crate::purpose::{self, Trace};
use http::{Request, Response};
use kube::client::Body;
use std::convert::Infallible;
use std::sync::Once;
use std::task::{Context, Poll};
use tower::Service;

/// Starts the warm-up thread the first time it is called (after that, one atomic load).
/// `first` is the stack that asked: application code whose compilation units its requests
/// share.
pub(crate) fn start(first: &[usize]) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let first = first.to_vec();
        let spawned = std::thread::Builder::new()
            .name("whakapapa-warm-up".into())
            .spawn(move || {
                purpose::resolve_all(&first);
                resolve_this_stack();
                rehearse();
                purpose::set_warm();
            });
        if spawned.is_err() {
            // No thread: the first request loads debug info itself.
            purpose::set_warm();
        }
    });
}

fn resolve_this_stack() {
    let mut trace = Trace::new();
    trace.capture();
    purpose::resolve_all(trace.ips());
}

/// A service that answers at once, resolving the stack that polls its response.
#[derive(Clone, Copy)]
struct ResolveAtFirstPoll;

impl Service<Request<Body>> for ResolveAtFirstPoll {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<Body>) -> Self::Future {
        Box::pin(async {
            resolve_this_stack();
            Ok(Response::new(Body::empty()))
        })
    }
}

fn rehearse() {
    let Ok(runtime) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("whakapapa-warm-up-worker")
        .enable_all()
        .build()
    else {
        return;
    };
    runtime.block_on(async {
        let client = kube::Client::new(ResolveAtFirstPoll, "default");
        let request = || Request::get("/api/v1/namespaces/default/pods").body(Body::empty());
        // From the runtime's own thread, then from a task on a worker.
        if let Ok(req) = request() {
            let _ = client.send(req).await;
        }
        let spawned = client.clone();
        let _ = tokio::spawn(async move {
            if let Ok(req) = request() {
                let _ = spawned.send(req).await;
            }
        })
        .await;
    });
}
