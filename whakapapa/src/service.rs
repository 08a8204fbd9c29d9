//! [`PurposeService`], the service [`PurposeLayer`](crate::PurposeLayer) makes.

use crate::future::ResponseFuture;
use crate::gate::Gate;
use crate::render::Shared;
use http::Request;
use http::header::{HeaderValue, USER_AGENT};
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{BoxError, Service};

/// The service [`PurposeLayer`](crate::PurposeLayer) makes: the inner service itself when
/// purpose is off, else the inner service shared with the response futures, which call it at
/// their first poll.
pub struct PurposeService<S> {
    pub(crate) inner: Inner<S>,
}

pub(crate) enum Inner<S> {
    Off(S),
    /// Off, but requests without a user agent get the identity's.
    Identity(S, HeaderValue),
    On {
        gate: Arc<Gate<S>>,
        shared: Arc<Shared>,
    },
}

impl<S> std::fmt::Debug for PurposeService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let on = matches!(self.inner, Inner::On { .. });
        f.debug_struct("PurposeService")
            .field("purpose", &on)
            .finish()
    }
}

impl<S: Clone> Clone for PurposeService<S> {
    fn clone(&self) -> Self {
        let inner = match &self.inner {
            Inner::Off(s) => Inner::Off(s.clone()),
            Inner::Identity(s, ua) => Inner::Identity(s.clone(), ua.clone()),
            Inner::On { gate, shared } => Inner::On {
                gate: gate.clone(),
                shared: shared.clone(),
            },
        };
        Self { inner }
    }
}

impl<S, B> Service<Request<B>> for PurposeService<S>
where
    S: Service<Request<B>>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match &mut self.inner {
            Inner::Off(s) | Inner::Identity(s, _) => s.poll_ready(cx).map_err(Into::into),
            // Readiness is asked for by each response future, right before it calls.
            Inner::On { .. } => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match &mut self.inner {
            Inner::Off(s) => ResponseFuture::passthrough(s.call(request)),
            Inner::Identity(s, user_agent) => {
                let mut request = request;
                // As client-go: a user agent the caller set is theirs to keep.
                if !request.headers().contains_key(USER_AGENT) {
                    request.headers_mut().insert(USER_AGENT, user_agent.clone());
                }
                ResponseFuture::passthrough(s.call(request))
            }
            Inner::On { gate, shared } => {
                ResponseFuture::deferred(request, gate.clone(), shared.clone())
            }
        }
    }
}
