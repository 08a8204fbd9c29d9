//! [`AuthLayer`]: refuses requests without the right credentials before the inner service
//! sees them.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, Request, StatusCode, header};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{Caller, ClientCertificate, Credentials, Refusal};
use crate::metrics::Metrics;

/// Layer that authorizes each request with [`Credentials`]; see the [module docs](super).
#[derive(Debug, Clone)]
pub struct AuthLayer {
    credentials: Arc<Credentials>,
    metrics: Option<Arc<Metrics>>,
}

impl AuthLayer {
    /// Authorizes with `credentials`.
    pub fn new(credentials: Credentials) -> Self {
        Self {
            credentials: Arc::new(credentials),
            metrics: None,
        }
    }

    /// Also counts refusals in `metrics`.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            credentials: self.credentials.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

/// Service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    credentials: Arc<Credentials>,
    metrics: Option<Arc<Metrics>>,
}

impl<S, B> Service<Request<B>> for Auth<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let decision = bearer(request.headers().get(header::AUTHORIZATION)).and_then(|token| {
            self.credentials.authorize(
                request.method(),
                request.uri().path(),
                token,
                request.extensions().get::<ClientCertificate>(),
            )
        });
        match decision {
            Ok(caller) => {
                request.extensions_mut().insert::<Caller>(caller);
                ResponseFuture::inner(self.inner.call(request))
            }
            Err(refusal) => {
                // Method, path and reason only: never the token, never the body.
                tracing::info!(
                    method = %request.method(),
                    path = request.uri().path(),
                    reason = %refusal,
                    "request refused"
                );
                if let Some(metrics) = &self.metrics {
                    metrics.unauthorized();
                }
                ResponseFuture::refused(unauthorized(refusal))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header; `None` without the header.
fn bearer(value: Option<&HeaderValue>) -> Result<Option<&[u8]>, Refusal> {
    let Some(value) = value else {
        return Ok(None);
    };
    let bytes = value.as_bytes();
    let scheme = bytes.get(..7).ok_or(Refusal::Malformed)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return Err(Refusal::Malformed);
    }
    let token = bytes[7..].trim_ascii();
    if token.is_empty() {
        return Err(Refusal::Malformed);
    }
    Ok(Some(token))
}

fn unauthorized(refusal: Refusal) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            "Bearer realm=\"whakapapa-collector\"",
        )],
        format!("{refusal}\n"),
    )
        .into_response()
}

pin_project! {
    /// Future of [`Auth`]: the inner service's, or a ready `401`.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner { #[pin] future: F },
        Refused { response: Option<Response> },
    }
}

impl<F> ResponseFuture<F> {
    fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    fn refused(response: Response) -> Self {
        Self {
            kind: Kind::Refused {
                response: Some(response),
            },
        }
    }
}

impl<F, E> std::future::Future for ResponseFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future.poll(cx),
            // Polled again after completion would be a caller bug; answer 500 rather than
            // panic.
            KindProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .unwrap_or_else(|| StatusCode::INTERNAL_SERVER_ERROR.into_response()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_headers_are_parsed() {
        type Case = (&'static str, Result<Option<&'static [u8]>, Refusal>);
        let cases: [Case; 6] = [
            ("Bearer abc", Ok(Some(b"abc"))),
            ("bearer  abc ", Ok(Some(b"abc"))),
            ("BEARER abc", Ok(Some(b"abc"))),
            ("Basic YWJjOmRlZg==", Err(Refusal::Malformed)),
            ("Bearer ", Err(Refusal::Malformed)),
            ("Bear", Err(Refusal::Malformed)),
        ];
        for (header, want) in cases {
            let value = HeaderValue::from_str(header).unwrap();
            assert_eq!(bearer(Some(&value)), want, "{header:?}");
        }
        assert_eq!(bearer(None), Ok(None));
    }
}
