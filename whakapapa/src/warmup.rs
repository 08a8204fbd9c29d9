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
use std::sync::{Condvar, Mutex, Once, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tower::Service;

/// How long the warm-up lets the program go first: a client's first requests usually follow
/// its building at once, and loading debug info beside them on a small machine holds them up
/// by milliseconds (BENCHMARKS.md, "A new user's application").
const PAUSE: Duration = Duration::from_millis(50);

/// Set by [`hurry`]: the warm-up starts loading without its pause.
static HURRY: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Starts the warm-up thread the first time it is called (after that, one atomic load). It
/// pauses for [`PAUSE`] before it loads anything, unless [`hurry`] is called. `first` is the
/// stack that asked: application code whose compilation units its requests share.
pub(crate) fn start(first: &[usize]) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let first = first.to_vec();
        let spawned = std::thread::Builder::new()
            .name("whakapapa-warm-up".into())
            .spawn(move || {
                let (lock, wake) = &HURRY;
                let hurried = lock.lock().unwrap_or_else(PoisonError::into_inner);
                drop(
                    wake.wait_timeout_while(hurried, PAUSE, |hurry| !*hurry)
                        .unwrap_or_else(PoisonError::into_inner),
                );
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

/// Ends the warm-up's pause: someone waits for debug info.
pub(crate) fn hurry() {
    let (lock, wake) = &HURRY;
    *lock.lock().unwrap_or_else(PoisonError::into_inner) = true;
    wake.notify_all();
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
