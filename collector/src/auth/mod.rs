//! Who may call the collector: kube-apiserver (a client certificate signed by the configured
//! CA, or the ingest bearer token) writes; a separate read-only token reads the query API.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::post};
//! use whakapapa_collector::auth::{AuthLayer, Credentials, Token};
//!
//! let credentials = Credentials::new()
//!     .ingest_token(Token::new("apiserver-secret").unwrap())
//!     .query_token(Token::new("reader-secret").unwrap());
//! let app: Router = Router::new()
//!     .route("/audit", post(|| async { "stored" }))
//!     .layer(AuthLayer::new(credentials));
//! ```
//!
//! Order matters: put [`AuthLayer`] outermost (after routing is fine, but before any layer that
//! reads the body), so a refused request is answered `401` before a byte of its body is read
//! and nothing is stored. Client certificates are checked by the TLS server ([`tls`]) and
//! handed to the layer as a [`ClientCertificate`] request extension; over plain HTTP there is
//! none, so only tokens work. Tokens and bodies are never logged.

mod config;
mod layer;
pub mod tls;

pub use config::{ConfigError, Security, SecurityArgs};
pub use layer::{Auth, AuthLayer, ResponseFuture};

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::Method;

/// Errors building credentials or TLS settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A token is empty or contains characters a header cannot carry.
    #[error("token is empty or not visible ascii")]
    Token,
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("no {what} in {path}")]
    Pem {
        /// Certificate or key.
        what: &'static str,
        /// The file (or `<memory>`).
        path: PathBuf,
    },
    /// rustls refused the certificates or key.
    #[error("cannot build the tls configuration")]
    Tls(#[from] rustls::Error),
    /// The client CA holds no certificate rustls accepts as a trust anchor.
    #[error("cannot build the client certificate verifier")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

/// A bearer token; compared in constant time and never printed.
#[derive(Clone)]
pub struct Token(Arc<[u8]>);

impl Token {
    /// A token from its text; surrounding whitespace (a file's trailing newline) is dropped.
    pub fn new(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::Token);
        }
        Ok(Self(Arc::from(text.as_bytes())))
    }

    /// Reads a token file (as mounted from a Kubernetes Secret).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::new(&text)
    }

    /// Constant-time comparison with a presented token.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = &self.0;
        if expected.len() != presented.len() {
            return false;
        }
        expected
            .iter()
            .zip(presented)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Whether side-channel records (`POST /purposes`) need credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SideChannel {
    /// Like any write: a client certificate or the ingest token.
    #[default]
    Authenticated,
    /// Anyone who reaches the collector: pods get only `WHAKAPAPA_COLLECTOR_URL`, no
    /// credentials. A record only describes a fingerprint's frames; it cannot add requests.
    Open,
}

/// The credentials the collector accepts.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Credentials {
    ingest_token: Option<Token>,
    query_token: Option<Token>,
    side_channel: SideChannel,
}

impl Credentials {
    /// No tokens: only a verified client certificate may write, nobody may query.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `token` as `Authorization: Bearer` for writes (the audit webhook).
    #[must_use]
    pub fn ingest_token(mut self, token: Token) -> Self {
        self.ingest_token = Some(token);
        self
    }

    /// Accepts `token` for reads of the query API.
    #[must_use]
    pub fn query_token(mut self, token: Token) -> Self {
        self.query_token = Some(token);
        self
    }

    /// Sets who may post side-channel records.
    #[must_use]
    pub fn side_channel(mut self, side_channel: SideChannel) -> Self {
        self.side_channel = side_channel;
        self
    }

    /// Decides whether a request may proceed, and as whom.
    pub fn authorize(
        &self,
        method: &Method,
        path: &str,
        bearer: Option<&[u8]>,
        certificate: Option<&ClientCertificate>,
    ) -> Result<Caller, Refusal> {
        let access = match classify(method, path) {
            Access::SideChannel if self.side_channel == SideChannel::Open => Access::Public,
            Access::SideChannel => Access::Write,
            access => access,
        };
        match access {
            Access::Public => Ok(Caller::Anonymous),
            Access::Write => {
                match certificate {
                    Some(ClientCertificate::Verified) => return Ok(Caller::ClientCertificate),
                    Some(ClientCertificate::Rejected) if bearer.is_none() => {
                        return Err(Refusal::UntrustedCertificate);
                    }
                    _ => {}
                }
                match (&self.ingest_token, bearer) {
                    (Some(token), Some(presented)) if token.matches(presented) => {
                        Ok(Caller::IngestToken)
                    }
                    (_, Some(_)) => Err(Refusal::WrongToken),
                    (_, None) => Err(Refusal::Missing),
                }
            }
            Access::Read => match (&self.query_token, bearer) {
                (Some(token), Some(presented)) if token.matches(presented) => {
                    Ok(Caller::QueryToken)
                }
                (_, Some(_)) => Err(Refusal::WrongToken),
                (_, None) => Err(Refusal::Missing),
            },
            Access::SideChannel => Err(Refusal::Missing),
        }
    }
}

/// What a path and method need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Probes, metrics and the admission webhook (which stores nothing).
    Public,
    /// Reads of the query API: the query token.
    Read,
    /// Everything else that is not a read: a client certificate or the ingest token.
    Write,
    /// `POST /purposes`: per [`SideChannel`].
    SideChannel,
}

/// Paths anyone may call: probes, metrics, and the admission webhook (kube-apiserver calls
/// it without credentials; it answers with a patch and stores nothing).
pub const PUBLIC_PATHS: [&str; 5] = ["/healthz", "/readyz", "/livez", "/metrics", "/mutate"];

/// Classifies a request: public paths, `POST /purposes`, reads of the query API (`GET`/`HEAD`
/// under `/api/`), other reads (the web page and its assets, which hold no data: public), and
/// writes (every other method).
pub fn classify(method: &Method, path: &str) -> Access {
    let read = method == Method::GET || method == Method::HEAD;
    if PUBLIC_PATHS.contains(&path) {
        Access::Public
    } else if path == "/purposes" && method == Method::POST {
        Access::SideChannel
    } else if read && path.starts_with("/api/") {
        Access::Read
    } else if read {
        Access::Public
    } else {
        Access::Write
    }
}

/// The client certificate of a TLS connection, as the TLS server judged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientCertificate {
    /// The chain verifies against the configured client CA.
    Verified,
    /// A certificate was presented (and its key proven) but does not chain to the CA.
    Rejected,
}

/// Who a request was accepted as; added to the request's extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Caller {
    /// A public path.
    Anonymous,
    /// A client certificate signed by the client CA (kube-apiserver).
    ClientCertificate,
    /// The ingest bearer token.
    IngestToken,
    /// The query bearer token.
    QueryToken,
}

/// Why a request was refused (never says which token was expected).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// No credentials.
    #[error("credentials required: a client certificate or an Authorization: Bearer token")]
    Missing,
    /// A bearer token that is not the one for this kind of request.
    #[error("bearer token not accepted for this request")]
    WrongToken,
    /// A client certificate the CA did not sign.
    #[error("client certificate not signed by the collector's client ca")]
    UntrustedCertificate,
    /// An `Authorization` header that is not `Bearer <token>`.
    #[error("authorization header is not a bearer token")]
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new()
            .ingest_token(Token::new("ingest\n").unwrap())
            .query_token(Token::new("query").unwrap())
    }

    #[test]
    fn requests_are_classified() {
        let cases = [
            (Method::GET, "/healthz", Access::Public),
            (Method::GET, "/metrics", Access::Public),
            (Method::POST, "/mutate", Access::Public),
            (Method::POST, "/purposes", Access::SideChannel),
            (Method::GET, "/purposes", Access::Public),
            (Method::POST, "/audit", Access::Write),
            (Method::GET, "/api/v1/coverage", Access::Read),
            (Method::HEAD, "/api/v1/coverage", Access::Read),
            (Method::POST, "/api/v1/coverage", Access::Write),
            (Method::DELETE, "/api/v1/requests", Access::Write),
            (Method::GET, "/", Access::Public),
            (Method::GET, "/assets/app.js", Access::Public),
            (Method::GET, "/api", Access::Public),
            (Method::GET, "/api/v1", Access::Read),
            (Method::GET, "/api/v1/", Access::Read),
        ];
        for (method, path, want) in cases {
            assert_eq!(classify(&method, path), want, "{method} {path}");
        }
    }

    #[test]
    fn each_token_opens_only_its_own_door() {
        use Caller::{Anonymous, IngestToken, QueryToken};
        use ClientCertificate::{Rejected, Verified};
        use Refusal::*;
        let c = creds();
        type Case = (
            Method,
            &'static str,
            Option<&'static [u8]>,
            Option<ClientCertificate>,
            Result<Caller, Refusal>,
        );
        let cases: [Case; 13] = [
            (
                Method::POST,
                "/audit",
                None,
                Some(Verified),
                Ok(Caller::ClientCertificate),
            ),
            (
                Method::POST,
                "/audit",
                Some(b"ingest"),
                None,
                Ok(IngestToken),
            ),
            (
                Method::POST,
                "/audit",
                Some(b"query"),
                None,
                Err(WrongToken),
            ),
            (
                Method::POST,
                "/audit",
                Some(b"ingesT"),
                None,
                Err(WrongToken),
            ),
            (Method::POST, "/audit", None, None, Err(Missing)),
            (
                Method::POST,
                "/audit",
                None,
                Some(Rejected),
                Err(UntrustedCertificate),
            ),
            // A wrong certificate does not spoil a right token (a proxy may present its own).
            (
                Method::POST,
                "/audit",
                Some(b"ingest"),
                Some(Rejected),
                Ok(IngestToken),
            ),
            (
                Method::GET,
                "/api/v1/coverage",
                Some(b"query"),
                None,
                Ok(QueryToken),
            ),
            (
                Method::GET,
                "/api/v1/coverage",
                Some(b"ingest"),
                None,
                Err(WrongToken),
            ),
            (
                Method::GET,
                "/api/v1/coverage",
                None,
                Some(Verified),
                Err(Missing),
            ),
            (
                Method::POST,
                "/api/v1/coverage",
                Some(b"query"),
                None,
                Err(WrongToken),
            ),
            (Method::POST, "/purposes", None, None, Err(Missing)),
            (Method::GET, "/readyz", None, None, Ok(Anonymous)),
        ];
        for (method, path, bearer, cert, want) in cases {
            assert_eq!(
                c.authorize(&method, path, bearer, cert.as_ref()),
                want,
                "{method} {path} {:?} {cert:?}",
                bearer.map(String::from_utf8_lossy)
            );
        }
        let open = creds().side_channel(SideChannel::Open);
        assert_eq!(
            open.authorize(&Method::POST, "/purposes", None, None),
            Ok(Anonymous)
        );
        assert_eq!(
            open.authorize(&Method::POST, "/audit", None, None),
            Err(Missing)
        );
    }

    #[test]
    fn without_a_query_token_nobody_reads() {
        let c = Credentials::new().ingest_token(Token::new("ingest").unwrap());
        assert_eq!(
            c.authorize(&Method::GET, "/api/v1/coverage", Some(b"anything"), None),
            Err(Refusal::WrongToken)
        );
    }

    #[test]
    fn tokens_are_validated_and_never_printed() {
        for bad in ["", "  \n", "has space", "tab\there", "ünïcode"] {
            assert!(Token::new(bad).is_err(), "{bad:?}");
        }
        let token = Token::new("s3cr3t").unwrap();
        let c = Credentials::new().query_token(token.clone());
        assert!(!format!("{token:?} {c:?}").contains("s3cr3t"));
    }
}
