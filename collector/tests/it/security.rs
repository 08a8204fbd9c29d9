//! TLS and authentication over a real socket on 127.0.0.1: only kube-apiserver's client
//! certificate or the ingest token writes; the query token only reads; refusals store nothing
//! and no token or body reaches the logs.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::{get, post};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use whakapapa_collector::auth::tls::{TlsConfig, serve_tls};
use whakapapa_collector::auth::{AuthLayer, Credentials, SideChannel, Token};
use whakapapa_collector::deploy::pki::Pki;
use whakapapa_collector::metrics::{self, Metrics};

const INGEST_TOKEN: &str = "ingest-6f1d2c9a8b7e";
const QUERY_TOKEN: &str = "query-0a9b8c7d6e5f";
const BODY_MARKER: &str = "secret-body-marker";

/// A running collector stand-in: the real auth layer and TLS server around handlers that
/// count what they "store".
struct Server {
    addr: SocketAddr,
    stored: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(pki: &Pki) -> Server {
    let stored = Arc::new(AtomicUsize::new(0));
    let metrics = Arc::new(Metrics::default());
    let counter = stored.clone();
    let app = Router::new()
        .route(
            "/audit",
            post(move |body: Bytes| {
                let counter = counter.clone();
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    format!("stored {} bytes", body.len())
                }
            }),
        )
        .route("/purposes", post(|| async { "noted" }))
        .route("/api/v1/coverage", get(|| async { "{\"covered\":0}" }))
        .route("/healthz", get(|| async { "ok" }))
        .merge(metrics::router(metrics.clone()))
        .layer(
            AuthLayer::new(
                Credentials::new()
                    .ingest_token(Token::new(INGEST_TOKEN).unwrap())
                    .query_token(Token::new(QUERY_TOKEN).unwrap())
                    .side_channel(SideChannel::Open),
            )
            .with_metrics(metrics.clone()),
        );
    let tls = TlsConfig::from_pem(
        pki.server_cert.as_bytes(),
        pki.server_key.as_bytes(),
        Some(pki.ca_cert.as_bytes()),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let done = tokio::spawn(serve_tls(listener, app, tls, async move {
        let _ = stopped.await;
    }));
    Server {
        addr,
        stored,
        metrics,
        stop: Some(stop),
        done,
    }
}

struct Call<'a> {
    method: Method,
    path: &'a str,
    bearer: Option<&'a str>,
    /// Client certificate and key (PEM).
    identity: Option<(&'a str, &'a str)>,
    /// Request body; an empty EventList with a marker when `None`.
    body: Option<Vec<u8>>,
}

/// One HTTPS request with a fresh connection, trusting `ca`.
async fn send(addr: SocketAddr, ca: &str, call: Call<'_>) -> (StatusCode, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(rustls::DEFAULT_VERSIONS)
    .unwrap()
    .with_root_certificates(roots);
    let config = match call.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("tls handshake succeeds even with an untrusted client certificate");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let mut request = Request::builder()
        .method(call.method)
        .uri(call.path)
        .header(header::HOST, "localhost");
    if let Some(token) = call.bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = call.body.unwrap_or_else(|| {
        format!("{{\"kind\":\"EventList\",\"items\":[],\"note\":\"{BODY_MARKER}\"}}").into_bytes()
    });
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// Log lines written while the test runs on this thread.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn only_the_api_server_writes_and_only_the_query_token_reads() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let pki = Pki::generate(&["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let evil = Pki::generate(&["localhost".to_owned()]).unwrap();
    let mut server = start(&pki).await;
    let apiserver = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let impostor = Some((evil.client_cert.as_str(), evil.client_key.as_str()));

    let post = |bearer, identity| Call {
        method: Method::POST,
        path: "/audit",
        bearer,
        identity,
        body: None,
    };
    let get = |path, bearer| Call {
        method: Method::GET,
        path,
        bearer,
        identity: None,
        body: None,
    };
    let cases: Vec<(&str, Call, StatusCode, usize)> = vec![
        (
            "no credentials",
            post(None, None),
            StatusCode::UNAUTHORIZED,
            0,
        ),
        (
            "certificate from another ca",
            post(None, impostor),
            StatusCode::UNAUTHORIZED,
            0,
        ),
        (
            "query token cannot write",
            post(Some(QUERY_TOKEN), None),
            StatusCode::UNAUTHORIZED,
            0,
        ),
        (
            "wrong token",
            post(Some("ingest-6f1d2c9a8b7f"), None),
            StatusCode::UNAUTHORIZED,
            0,
        ),
        (
            "api server certificate",
            post(None, apiserver),
            StatusCode::OK,
            1,
        ),
        (
            "ingest token",
            post(Some(INGEST_TOKEN), None),
            StatusCode::OK,
            2,
        ),
        (
            "ingest token beside an untrusted certificate",
            post(Some(INGEST_TOKEN), impostor),
            StatusCode::OK,
            3,
        ),
        (
            "query without token",
            get("/api/v1/coverage", None),
            StatusCode::UNAUTHORIZED,
            3,
        ),
        (
            "query with ingest token",
            get("/api/v1/coverage", Some(INGEST_TOKEN)),
            StatusCode::UNAUTHORIZED,
            3,
        ),
        (
            "query with query token",
            get("/api/v1/coverage", Some(QUERY_TOKEN)),
            StatusCode::OK,
            3,
        ),
        ("probe", get("/healthz", None), StatusCode::OK, 3),
        (
            "open side channel",
            Call {
                method: Method::POST,
                path: "/purposes",
                bearer: None,
                identity: None,
                body: None,
            },
            StatusCode::OK,
            3,
        ),
    ];
    let refused = cases
        .iter()
        .filter(|(_, _, status, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    for (name, call, want_status, want_stored) in cases {
        let (status, body) = send(server.addr, &pki.ca_cert, call).await;
        assert_eq!(status, want_status, "{name}: {body}");
        assert_eq!(
            server.stored.load(Ordering::SeqCst),
            want_stored,
            "{name}: stored count"
        );
        if status == StatusCode::UNAUTHORIZED {
            assert!(
                !body.contains(INGEST_TOKEN) && !body.contains(QUERY_TOKEN),
                "{name}: {body}"
            );
        }
    }
    assert_eq!(server.metrics.snapshot().unauthorized, refused as u64);
    let (status, scrape) = send(server.addr, &pki.ca_cert, get("/metrics", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(scrape.contains(&format!(
        "whakapapa_collector_unauthorized_requests_total {refused}\n"
    )));

    server.stop.take().unwrap().send(()).unwrap();
    server.done.await.unwrap().unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request refused"),
        "refusals are logged:\n{logs}"
    );
    for secret in [
        INGEST_TOKEN,
        QUERY_TOKEN,
        BODY_MARKER,
        "ingest-6f1d2c9a8b7f",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into logs:\n{logs}");
    }
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_cannot_connect() {
    let pki = Pki::generate(&["localhost".to_owned()]).unwrap();
    let other = Pki::generate(&["localhost".to_owned()]).unwrap();
    let mut server = start(&pki).await;
    let addr = server.addr;
    let result = tokio::spawn(async move {
        send(
            addr,
            &other.ca_cert,
            Call {
                method: Method::GET,
                path: "/healthz",
                bearer: None,
                identity: None,
                body: None,
            },
        )
        .await
    })
    .await;
    assert!(
        result.is_err(),
        "handshake against an unknown server certificate must fail"
    );
    server.stop.take().unwrap().send(()).unwrap();
    server.done.await.unwrap().unwrap();
}

#[test]
fn bad_pem_is_an_error_naming_what_is_missing() {
    let pki = Pki::generate(&["localhost".to_owned()]).unwrap();
    type Case<'a> = (&'a [u8], &'a [u8], Option<&'a [u8]>, &'a str);
    let cases: [Case; 3] = [
        (
            b"not pem",
            pki.server_key.as_bytes(),
            None,
            "no certificate",
        ),
        (pki.server_cert.as_bytes(), b"", None, "no private key"),
        (
            pki.server_cert.as_bytes(),
            pki.server_key.as_bytes(),
            Some(b"garbage"),
            "no ca certificate",
        ),
    ];
    for (cert, key, ca, want) in cases {
        let err = TlsConfig::from_pem(cert, key, ca).unwrap_err();
        assert!(err.to_string().contains(want), "{err} lacks {want:?}");
    }
}

/// The collector's real router and store behind `serve`'s security settings (loaded from the
/// files `manifests` writes): unauthenticated and wrong-certificate batches are refused and
/// leave the database empty; kube-apiserver's certificate stores them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_webhook_stores_only_what_the_api_server_sends() {
    use whakapapa_collector::auth::SecurityArgs;
    use whakapapa_collector::deploy::pki::files;
    use whakapapa_collector::http::{self, AppState, Limits};

    use crate::it::fixture::{Db, Ev, event_list};

    let db = tokio::task::spawn_blocking(Db::new).await.unwrap();
    let pki_dir = db.dir.path().join("pki");
    let pki = Pki::generate(&["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    pki.write(&pki_dir).unwrap();
    let evil = Pki::generate(&["localhost".to_owned()]).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut args = SecurityArgs::default();
    args.tls_cert = Some(pki_dir.join(files::SERVER_CERT));
    args.tls_key = Some(pki_dir.join(files::SERVER_KEY));
    args.client_ca = Some(pki_dir.join(files::CA_CERT));
    args.query_token_file = Some(pki_dir.join(files::QUERY_TOKEN));
    args.open_side_channel = true;
    let plain_addr = {
        // A free loopback port for the plain side channel.
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    args.side_channel_listen = Some(plain_addr);
    let security = args.load(addr).unwrap();
    assert!(security.tls() && security.authenticates());
    let state = AppState::new(
        db.store.clone(),
        db.run,
        Some(db.release),
        Some(db.mapper.clone()),
        Limits::default(),
    );
    let metrics = state.metrics.clone();
    let app = security.apply(http::app(state), metrics);
    let (stop, stopped) = oneshot::channel::<()>();
    let served = security.clone();
    let done = tokio::spawn(async move {
        served
            .serve(listener, app, async move {
                let _ = stopped.await;
            })
            .await
    });

    let batch: Vec<Ev> = (0..20)
        .map(|i| {
            Ev::new(
                &format!("sec-{i}"),
                "ResponseComplete",
                "get",
                "/api/v1/namespaces/shop/pods/web",
            )
            .at(f64::from(i))
        })
        .collect();
    let body = event_list(&batch);
    let requests = |db: &Db| {
        let store = db.store.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                whakapapa_collector::store::read::counts(&store.reader().unwrap())
                    .unwrap()
                    .requests
            })
            .await
            .unwrap()
        }
    };
    let post = |identity| post_audit(identity, &body);
    let apiserver = Some((pki.client_cert.as_str(), pki.client_key.as_str()));
    let impostor = Some((evil.client_cert.as_str(), evil.client_key.as_str()));

    for (name, identity) in [("no credentials", None), ("impostor certificate", impostor)] {
        let (status, text) = send(addr, &pki.ca_cert, post(identity)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {text}");
        assert_eq!(requests(&db).await, 0, "{name}: nothing stored");
    }
    let (status, text) = send(addr, &pki.ca_cert, post(apiserver)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(requests(&db).await, 20);

    let query = |bearer| Call {
        method: Method::GET,
        path: "/api/v1/coverage",
        bearer,
        identity: None,
        body: None,
    };
    let (status, _) = send(addr, &pki.ca_cert, query(None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = send(addr, &pki.ca_cert, query(Some(&pki.query_token))).await;
    assert_eq!(status, StatusCode::OK, "{text}");

    // The plain side channel answers `POST /purposes` and nothing else.
    let mut answered = None;
    for _ in 0..250 {
        if let Ok(tcp) = TcpStream::connect(plain_addr).await {
            answered = Some(plain_post(tcp, "/audit", body.clone()).await);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        answered,
        Some(StatusCode::NOT_FOUND),
        "/audit over plain http"
    );
    let tcp = TcpStream::connect(plain_addr).await.unwrap();
    let record = br#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"name":"shop","version":"v1","os":"linux","arch":"amd64","source":"git","commit":"4f2a9c1","user_agent":"shop/v1 (linux/amd64) git/4f2a9c1"},"frames":[{"function":"shop::main","file":"src/main.rs","line":3}],"seen_at":"2026-11-20T10:03:11.402Z"}"#;
    assert_eq!(
        plain_post(tcp, "/purposes", record.to_vec()).await,
        StatusCode::OK
    );
    assert_eq!(requests(&db).await, 20, "still only the api server's batch");

    stop.send(()).unwrap();
    done.await.unwrap().unwrap();
}

async fn plain_post(tcp: TcpStream, path: &str, body: Vec<u8>) -> StatusCode {
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(connection);
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::HOST, "localhost")
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    sender.send_request(request).await.unwrap().status()
}

fn post_audit<'a>(identity: Option<(&'a str, &'a str)>, body: &[u8]) -> Call<'a> {
    Call {
        method: Method::POST,
        path: "/audit",
        bearer: None,
        identity,
        body: Some(body.to_vec()),
    }
}
