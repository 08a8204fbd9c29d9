//! The response future of [`PurposeService`](crate::PurposeService).
//!
//! Its first poll runs on the task that awaits the request, so it is where the caller's stack
//! is captured and where the inner service is called.

use crate::gate::{Called, Gate};
use crate::render::Shared;
use http::Request;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

pin_project! {
    /// The future of a request through [`PurposeService`](crate::PurposeService).
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<B>>,
    {
        #[pin]
        state: State<S, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B>
    where
        S: Service<Request<B>>,
    {
        // Purpose off, or purpose on and the inner service called: its future.
        Passthrough { #[pin] fut: S::Future },
        // Purpose on, inner service not called yet. Boxed, so that the future stays as small
        // as the inner one when purpose is off.
        Deferred { deferred: Box<Deferred<S, B>> },
    }
}

/// A request waiting for its first poll, and then for the inner service.
pub(crate) struct Deferred<S, B> {
    request: Option<Request<B>>,
    caller: Caller<S>,
}

/// A request's claim on the shared inner service, until it is called.
pub(crate) struct Caller<S> {
    gate: Arc<Gate<S>>,
    shared: Arc<Shared>,
    decorated: bool,
    waiting: bool,
}

impl<S> Drop for Caller<S> {
    fn drop(&mut self) {
        if self.waiting {
            // The service may hold this request's waker only: let the others ask again.
            self.gate.wake_all();
        }
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    pub(crate) fn passthrough(fut: S::Future) -> Self {
        Self {
            state: State::Passthrough { fut },
        }
    }

    pub(crate) fn deferred(request: Request<B>, gate: Arc<Gate<S>>, shared: Arc<Shared>) -> Self {
        let caller = Caller {
            gate,
            shared,
            decorated: false,
            waiting: false,
        };
        Self {
            state: State::Deferred {
                deferred: Box::new(Deferred {
                    request: Some(request),
                    caller,
                }),
            },
        }
    }
}

impl<S, B> std::fmt::Debug for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<S, B> Future for ResponseFuture<S, B>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Output = Result<S::Response, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Passthrough { fut } => return fut.poll(cx).map_err(Into::into),
                StateProj::Deferred { deferred } => {
                    let Deferred { request, caller } = &mut **deferred;
                    let Some(mut req) = request.take() else {
                        return Poll::Ready(Err(
                            "whakapapa: response future polled after it failed".into(),
                        ));
                    };
                    if !caller.decorated {
                        // First poll, on the caller's task: its stack holds the calling code.
                        caller.decorated = true;
                        caller.shared.decorate(&mut req);
                    }
                    match caller.gate.try_call(cx, req) {
                        Called::Sent(fut) => {
                            caller.waiting = false;
                            this.state.set(State::Passthrough { fut });
                        }
                        Called::NotReady(req) => {
                            caller.waiting = true;
                            *request = Some(req);
                            return Poll::Pending;
                        }
                        Called::Failed(err) => {
                            caller.waiting = false;
                            return Poll::Ready(Err(err.into()));
                        }
                    }
                }
            }
        }
    }
}
