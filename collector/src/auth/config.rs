//! `serve`'s security flags, and applying them to a router and a listener.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use super::tls::{TlsConfig, serve_tls};
use super::{AuthLayer, Credentials, Error, SideChannel, Token};
use crate::admission::{self, Injection};
use crate::metrics::Metrics;

/// Security flags of `whakapapa-collector serve` (flatten into its arguments).
///
/// Without any of them the server speaks plain HTTP without authentication, which is only
/// allowed on a loopback address (the local quickstart).
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct SecurityArgs {
    /// PEM certificate chain to serve HTTPS with.
    #[arg(
        long,
        env = "WHAKAPAPA_TLS_CERT",
        value_name = "FILE",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(
        long,
        env = "WHAKAPAPA_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// PEM CA whose client certificates may write (kube-apiserver's audit webhook).
    #[arg(
        long,
        env = "WHAKAPAPA_CLIENT_CA",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    pub client_ca: Option<PathBuf>,
    /// File holding the bearer token that may write (alternative to a client certificate).
    #[arg(long, env = "WHAKAPAPA_INGEST_TOKEN_FILE", value_name = "FILE")]
    pub ingest_token_file: Option<PathBuf>,
    /// File holding the read-only bearer token of the query API and web page.
    #[arg(long, env = "WHAKAPAPA_QUERY_TOKEN_FILE", value_name = "FILE")]
    pub query_token_file: Option<PathBuf>,
    /// Accept side-channel purpose records (`POST /purposes`) without credentials, as pods
    /// switched on by the admission webhook send them.
    #[arg(long, env = "WHAKAPAPA_OPEN_SIDE_CHANNEL")]
    pub open_side_channel: bool,
    /// Also serve `POST /purposes`, and nothing else, over plain HTTP on this address: the
    /// whakapapa library posts side-channel records without TLS. Needs --open-side-channel.
    #[arg(
        long,
        env = "WHAKAPAPA_SIDE_CHANNEL_LISTEN",
        value_name = "ADDR",
        requires = "open_side_channel"
    )]
    pub side_channel_listen: Option<SocketAddr>,
    /// Serve the mutating admission webhook at `/mutate`, injecting this URL as
    /// `WHAKAPAPA_COLLECTOR_URL`.
    #[arg(long, env = "WHAKAPAPA_INJECT_COLLECTOR_URL", value_name = "URL")]
    pub inject_collector_url: Option<String>,
    /// Allow plain HTTP without authentication on a non-loopback address.
    #[arg(long)]
    pub insecure_plain_http: bool,
}

/// Errors turning [`SecurityArgs`] into a [`Security`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// TLS or token material could not be loaded.
    #[error("security settings")]
    Auth(#[from] Error),
    /// The admission webhook's URL is invalid.
    #[error("--inject-collector-url")]
    Injection(#[from] admission::Error),
    /// Plain HTTP without credentials on an address others can reach.
    #[error(
        "refusing to serve plain http without authentication on {0}: pass --tls-cert/--tls-key \
         with --client-ca or --ingest-token-file, listen on 127.0.0.1, or pass --insecure-plain-http"
    )]
    Exposed(SocketAddr),
}

/// Loaded security settings: how to serve and whom to let in.
#[derive(Debug, Clone)]
pub struct Security {
    tls: Option<TlsConfig>,
    credentials: Option<Credentials>,
    injection: Option<Injection>,
    side_channel: Option<SocketAddr>,
}

impl SecurityArgs {
    /// Loads certificates and tokens, and checks the combination is safe on `listen`.
    pub fn load(&self, listen: SocketAddr) -> Result<Security, ConfigError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(
                cert,
                key,
                self.client_ca.as_deref(),
            )?),
            _ => None,
        };
        let ingest = self
            .ingest_token_file
            .as_deref()
            .map(Token::from_file)
            .transpose()?;
        let query = self
            .query_token_file
            .as_deref()
            .map(Token::from_file)
            .transpose()?;
        let authenticating = self.client_ca.is_some() || ingest.is_some() || query.is_some();
        let credentials = authenticating.then(|| {
            let mut credentials = Credentials::new();
            if let Some(token) = ingest {
                credentials = credentials.ingest_token(token);
            }
            if let Some(token) = query {
                credentials = credentials.query_token(token);
            }
            if self.open_side_channel {
                credentials = credentials.side_channel(SideChannel::Open);
            }
            credentials
        });
        if credentials.is_none() && !listen.ip().is_loopback() && !self.insecure_plain_http {
            return Err(ConfigError::Exposed(listen));
        }
        let injection = self
            .inject_collector_url
            .as_deref()
            .map(Injection::new)
            .transpose()?;
        Ok(Security {
            tls,
            credentials,
            injection,
            side_channel: self.side_channel_listen,
        })
    }
}

impl Security {
    /// No TLS, no authentication (loopback only).
    pub fn plain() -> Self {
        Self {
            tls: None,
            credentials: None,
            injection: None,
            side_channel: None,
        }
    }

    /// Whether requests are authenticated.
    pub fn authenticates(&self) -> bool {
        self.credentials.is_some()
    }

    /// Whether the server speaks HTTPS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Adds `/mutate` when configured, then the [`AuthLayer`] around everything, counting
    /// refusals and mutated pods in `metrics`.
    pub fn apply(&self, app: Router, metrics: Arc<Metrics>) -> Router {
        let app = match &self.injection {
            Some(injection) => app.merge(admission::router(injection.clone(), metrics.clone())),
            None => app,
        };
        match &self.credentials {
            Some(credentials) => {
                app.layer(AuthLayer::new(credentials.clone()).with_metrics(metrics))
            }
            None => app,
        }
    }

    /// Serves `app` on `listener` (HTTPS when configured) until `shutdown` completes; with
    /// `--side-channel-listen`, also `POST /purposes` of the same `app` over plain HTTP there.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shutdown = futures::FutureExt::shared(Box::pin(shutdown));
        let side_channel = async {
            let Some(addr) = self.side_channel else {
                return Ok(());
            };
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(%addr, "side channel (POST /purposes) over plain http");
            // `into_service`: axum refuses a `Router` in `route_service`; the path is kept whole.
            let only_purposes =
                Router::new().route_service(SIDE_CHANNEL_PATH, app.clone().into_service());
            serve_plain(listener, only_purposes, shutdown.clone()).await
        };
        let main = async {
            match &self.tls {
                Some(tls) => serve_tls(listener, app.clone(), tls.clone(), shutdown.clone()).await,
                None => serve_plain(listener, app.clone(), shutdown.clone()).await,
            }
        };
        tokio::try_join!(main, side_channel).map(|_| ())
    }
}

/// The side channel's path (the whakapapa library posts `{WHAKAPAPA_COLLECTOR_URL}/purposes`).
const SIDE_CHANNEL_PATH: &str = "/purposes";

async fn serve_plain(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn plain_http_is_refused_off_loopback() {
        let none = SecurityArgs::default();
        assert!(none.load(addr("127.0.0.1:8080")).is_ok());
        assert!(none.load(addr("[::1]:8080")).is_ok());
        let err = none.load(addr("0.0.0.0:8080")).unwrap_err();
        assert!(
            err.to_string().contains("refusing to serve plain http"),
            "{err}"
        );
        let insecure = SecurityArgs {
            insecure_plain_http: true,
            ..SecurityArgs::default()
        };
        assert!(insecure.load(addr("0.0.0.0:8080")).is_ok());
    }

    #[test]
    fn token_files_are_read_and_bad_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("query-token");
        std::fs::write(&good, "abc123\n").unwrap();
        let args = SecurityArgs {
            query_token_file: Some(good),
            ..SecurityArgs::default()
        };
        let security = args.load(addr("0.0.0.0:8443")).unwrap();
        assert!(security.authenticates() && !security.tls());

        let missing = SecurityArgs {
            ingest_token_file: Some(dir.path().join("absent")),
            ..SecurityArgs::default()
        };
        let err = format!(
            "{:#}",
            anyhow::Error::from(missing.load(addr("127.0.0.1:1")).unwrap_err())
        );
        assert!(err.contains("absent"), "{err}");
    }

    #[test]
    fn the_plain_side_channel_needs_the_open_side_channel() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: SecurityArgs,
        }
        let closed = Wrapper::try_parse_from(["serve", "--side-channel-listen", "0.0.0.0:8080"]);
        assert!(closed.is_err());
        let open = Wrapper::try_parse_from([
            "serve",
            "--side-channel-listen",
            "0.0.0.0:8080",
            "--open-side-channel",
        ]);
        assert!(open.is_ok());
    }

    #[test]
    fn bad_injection_url_is_an_error() {
        let args = SecurityArgs {
            inject_collector_url: Some("collector:8080".into()),
            ..SecurityArgs::default()
        };
        assert!(matches!(
            args.load(addr("127.0.0.1:1")),
            Err(ConfigError::Injection(_))
        ));
    }
}
