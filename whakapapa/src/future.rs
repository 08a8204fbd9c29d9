//! The response future of [`PurposeService`](crate::PurposeService).
//!
//! Its first poll runs on the task that awaits the request, so it is where the caller's stack
//! is captured and where the inner service is called.

use crate::layer::Shared;
use http::Request;
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::buffer::Buffer;
use tower::{BoxError, Service};

pin_project! {
    /// The future of a request through [`PurposeService`](crate::PurposeService).
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        // Purpose off: the inner service's own future.
        Passthrough { #[pin] fut: F },
        // Purpose on, not polled yet: the request and a ready handle to the inner service.
        Deferred { request: Option<Request<B>>, buffer: Option<Buffer<Request<B>, F>>, shared: Arc<Shared> },
        // Purpose on, request sent.
        Sent { #[pin] fut: tower::buffer::future::ResponseFuture<F> },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(crate) fn passthrough(fut: F) -> Self {
        Self {
            state: State::Passthrough { fut },
        }
    }

    pub(crate) fn deferred(
        request: Request<B>,
        buffer: Buffer<Request<B>, F>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            state: State::Deferred {
                request: Some(request),
                buffer: Some(buffer),
                shared,
            },
        }
    }
}

impl<F, B> std::fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl<F, B, T, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    E: Into<BoxError>,
    B: Send + 'static,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Passthrough { fut } => return fut.poll(cx).map_err(Into::into),
                StateProj::Deferred {
                    request,
                    buffer,
                    shared,
                } => {
                    let (Some(mut request), Some(mut buffer)) = (request.take(), buffer.take())
                    else {
                        return Poll::Ready(Err(
                            "whakapapa: response future polled after it failed".into(),
                        ));
                    };
                    // This is the caller's task: its stack holds the code that made the request.
                    shared.decorate(&mut request);
                    let fut = buffer.call(request);
                    this.state.set(State::Sent { fut });
                }
                StateProj::Sent { fut } => return fut.poll(cx),
            }
        }
    }
}
