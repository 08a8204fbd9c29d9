//! HTTPS serving with rustls: the collector's certificate, and client certificates judged
//! against a CA and handed to [`AuthLayer`](super::AuthLayer) as a request extension.
//!
//! # Example
//!
//! ```no_run
//! # async fn run(app: axum::Router) -> anyhow::Result<()> {
//! use whakapapa_collector::auth::tls::{TlsConfig, serve_tls};
//!
//! let tls = TlsConfig::from_pem_files(
//!     "tls.crt".as_ref(),
//!     "tls.key".as_ref(),
//!     Some("ca.crt".as_ref()),
//! )?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! serve_tls(listener, app, tls, std::future::pending()).await?;
//! # Ok(()) }
//! ```
//!
//! A wrong client certificate does not fail the handshake: rustls still checks the client
//! proves it holds the certificate's key, then the chain is verified against the CA after
//! the handshake and the verdict travels with every request of the connection. That way the
//! client gets a readable `401` instead of a TLS alert, and a bearer token still works.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::{ClientCertificate, Error};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// The server's certificate chain and key, and the CA client certificates must chain to.
#[derive(Clone)]
pub struct TlsConfig {
    server: Arc<ServerConfig>,
    client_verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig")
            .field("client_ca", &self.client_verifier.is_some())
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads PEM files: the certificate chain, its private key, and optionally the CA that
    /// signs client certificates (without it, only bearer tokens authenticate).
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
    ) -> Result<Self, Error> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })
        };
        let ca = client_ca
            .map(|p| read(p).map(|pem| (pem, p.to_owned())))
            .transpose()?;
        Self::build(
            (&read(cert)?, cert.to_owned()),
            (&read(key)?, key.to_owned()),
            ca.as_ref()
                .map(|(pem, path)| (pem.as_slice(), path.clone())),
        )
    }

    /// Like [`TlsConfig::from_pem_files`], from PEM text in memory.
    pub fn from_pem(cert: &[u8], key: &[u8], client_ca: Option<&[u8]>) -> Result<Self, Error> {
        let memory = || PathBuf::from("<memory>");
        Self::build(
            (cert, memory()),
            (key, memory()),
            client_ca.map(|ca| (ca, memory())),
        )
    }

    fn build(
        (cert, cert_path): (&[u8], PathBuf),
        (key, key_path): (&[u8], PathBuf),
        client_ca: Option<(&[u8], PathBuf)>,
    ) -> Result<Self, Error> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .filter_map(Result::ok)
            .collect();
        if chain.is_empty() {
            return Err(Error::Pem {
                what: "certificate",
                path: cert_path,
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| Error::Pem {
            what: "private key",
            path: key_path,
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client_verifier = match client_ca {
            Some((pem, path)) => Some(ca_verifier(pem, path, provider.clone())?),
            None => None,
        };
        let builder = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)?;
        let mut server = match &client_verifier {
            Some(verifier) => builder.with_client_cert_verifier(Arc::new(Judge {
                inner: verifier.clone(),
            })),
            None => builder.with_no_client_auth(),
        }
        .with_single_cert(chain, key)?;
        server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            server: Arc::new(server),
            client_verifier,
        })
    }

    /// The verdict on a connection's peer certificates.
    fn judge(&self, peer: Option<&[CertificateDer<'static>]>) -> Option<ClientCertificate> {
        let verifier = self.client_verifier.as_ref()?;
        let (end_entity, intermediates) = peer?.split_first()?;
        Some(
            match verifier.verify_client_cert(end_entity, intermediates, UnixTime::now()) {
                Ok(_) => ClientCertificate::Verified,
                Err(_) => ClientCertificate::Rejected,
            },
        )
    }
}

fn ca_verifier(
    pem: &[u8],
    path: PathBuf,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem).filter_map(Result::ok) {
        roots.add(cert)?;
    }
    if roots.is_empty() {
        return Err(Error::Pem {
            what: "ca certificate",
            path,
        });
    }
    Ok(WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?)
}

/// Asks for a client certificate and checks the client holds its key, but leaves the chain
/// verdict to [`TlsConfig::judge`] after the handshake (see the module docs).
#[derive(Debug)]
struct Judge {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for Judge {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` completes, then stops accepting
/// and gives in-flight requests up to 25 s to finish.
///
/// Every request carries the connection's [`ClientCertificate`] verdict (when a client CA is
/// configured and the client presented a certificate) and its peer address as axum's
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    config: TlsConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let acceptor = TlsAcceptor::from(config.server.clone());
    let config = Arc::new(config);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Per-connection errors (the client reset before accept) are not the
                // listener's; keep serving.
                Err(error) => {
                    tracing::debug!(%error, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let config = config.clone();
        let router = router.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    tracing::debug!(%peer, %error, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "tls handshake timed out");
                    return;
                }
            };
            let verdict = config.judge(tls.get_ref().1.peer_certificates());
            let service =
                hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
                    if let Some(verdict) = verdict {
                        request.extensions_mut().insert(verdict);
                    }
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo::<SocketAddr>(peer));
                    router.clone().oneshot(request.map(axum::body::Body::new))
                });
            let builder = auto::Builder::new(TokioExecutor::new());
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(error) = watcher.watch(connection.into_owned()).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the drain timeout; closing them");
    }
    Ok(())
}
