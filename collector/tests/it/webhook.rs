//! `POST /audit`, `POST /purposes`, `/healthz`, `/readyz`: through the router with `oneshot`, and
//! the real binary on a loopback socket.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use whakapapa_collector::http::{self, AppState, Limits};
use whakapapa_collector::store::{self, StageRank};

use crate::it::fixture::{Db, Ev, event_list, gzip};

const DEPLOY: &str = "/apis/apps/v1/namespaces/shop/deployments/web";

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn state(db: &Db, limits: Limits) -> AppState {
    AppState::new(
        db.store.clone(),
        db.run,
        Some(db.release),
        Some(db.mapper.clone()),
        limits,
    )
}

async fn post(
    state: &AppState,
    path: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> (StatusCode, String) {
    let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(e) = encoding {
        req = req.header(header::CONTENT_ENCODING, e);
    }
    let resp = http::app(state.clone())
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn batch(from: usize, to: usize, stage: &'static str) -> Vec<Ev> {
    (from..to)
        .map(|i| Ev::new(&format!("w-{i}"), stage, "patch", DEPLOY).at(i as f64))
        .collect()
}

#[test]
fn a_webhook_batch_is_stored_once_whatever_the_redeliveries_and_order() {
    let db = Db::with_options(store::Options::default().durable(true));
    block_on(async {
        let state = state(&db, Limits::default());
        // batch 2 (ResponseComplete) arrives before batch 1 (RequestReceived) of the same requests
        let (status, body) = post(
            &state,
            "/audit",
            event_list(&batch(0, 400, "ResponseComplete")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let ack: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (ack["events"].as_u64(), ack["new"].as_u64()),
            (Some(400), Some(400))
        );
        let (status, _) = post(
            &state,
            "/audit",
            event_list(&batch(0, 400, "RequestReceived")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let before = db.counts();
        // the webhook backend resends a batch after an error: nothing changes
        let (status, body) = post(
            &state,
            "/audit",
            gzip(&event_list(&batch(0, 400, "ResponseComplete"))),
            Some("gzip"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            body.contains("\"new\":0") && body.contains("\"duplicates\":400"),
            "{body}"
        );
        assert_eq!(db.counts(), before);
        assert_eq!(before.requests, 400);
        let row = &db.request("w-7")[0];
        assert_eq!(row.stage, StageRank::ResponseComplete);
        assert_eq!(
            row.operation_id.as_deref(),
            Some("patchAppsV1NamespacedDeployment")
        );
        // counted in /metrics
        let metrics = state.metrics.render();
        assert!(
            metrics.contains("whakapapa_collector_events_received_total 1200"),
            "{metrics}"
        );
    });
}

#[test]
fn bad_bodies_are_refused_with_the_reason_and_store_nothing() {
    let db = Db::new();
    block_on(async {
        let state = state(&db, Limits::new(64 * 1024, 256 * 1024));
        let mut broken = event_list(&batch(0, 3, "ResponseComplete"));
        broken.truncate(broken.len() - 40);
        let (status, body) = post(&state, "/audit", broken, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.starts_with("bad request body: invalid audit event at byte"),
            "{body}"
        );
        // one bad event fails the whole batch: the backend's retry must not half-store it
        let mut items = serde_json::to_value(
            serde_json::from_slice::<serde_json::Value>(&event_list(&batch(
                0,
                3,
                "ResponseComplete",
            )))
            .unwrap(),
        )
        .unwrap();
        items["items"][1].as_object_mut().unwrap().remove("verb");
        let (status, body) =
            post(&state, "/audit", serde_json::to_vec(&items).unwrap(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("missing field `verb`"), "{body}");
        let (status, body) = post(&state, "/audit", b"not json".to_vec(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        // over the body limit as sent, and once decompressed (a gzip bomb)
        let (status, body) = post(
            &state,
            "/audit",
            event_list(&batch(0, 200, "ResponseComplete")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        let bomb = gzip(&vec![b' '; 1 << 20]);
        let (status, body) = post(&state, "/audit", bomb, Some("gzip")).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(body.contains("once decompressed"), "{body}");
        let (status, body) = post(&state, "/audit", b"{}".to_vec(), Some("br")).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
        let (status, body) = post(&state, "/audit", b"\x1f\x8bnope".to_vec(), Some("gzip")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("invalid gzip"), "{body}");
        assert_eq!(db.counts().requests, 0);
        // rejected bodies are on record
        let malformed = store::read::malformed(&db.store.reader().unwrap()).unwrap();
        assert_eq!(malformed.len(), 3);
        assert_eq!(malformed[0].0, "POST /audit");
    });
}

#[test]
fn purposes_from_the_side_channel_are_stored_and_bad_lines_reported() {
    let db = Db::new();
    block_on(async {
        let state = state(&db, Limits::default());
        let body = br#"{"whakapapa":1,"fingerprint":"00000000000000aa","identity":{"user_agent":"shop/v1 (linux/amd64) git/abc"},"frames":[{"function":"shop::main","file":"src/main.rs","line":3}]}
    {"whakapapa":1,"fingerprint":"nothex"}
    "#;
        let (status, text) = post(&state, "/purposes", body.to_vec(), None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let ack: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(ack["stored"], 1);
        assert_eq!(ack["rejected"][0]["line"], 2);
        assert_eq!(db.counts().complete_purposes, 1);
        let (status, text) = post(&state, "/purposes", b"{\"nope\":1}\n".to_vec(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            text.contains("line 1: not a whakapapa purpose record"),
            "{text}"
        );
    });
}

#[test]
fn health_and_readiness() {
    let db = Db::new();
    block_on(async {
        let app = http::app(state(&db, Limits::default()));
        for path in ["/healthz", "/readyz"] {
            let resp = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{path}");
        }
    });
}

#[test]
fn the_served_webhook_answers_on_a_real_socket() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("w.db");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_whakapapa-collector"))
        .args([
            "serve",
            "--db",
            db.to_str().unwrap(),
            "--listen",
            &listen,
            "--openapi",
            "embedded",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains(&format!("listening on http://{listen}")),
        "{line}"
    );
    let body = event_list(&batch(0, 50, "ResponseComplete"));
    let mut sock = std::net::TcpStream::connect(&listen).unwrap();
    write!(sock, "POST /audit HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len()).unwrap();
    sock.write_all(&body).unwrap();
    let mut answer = String::new();
    sock.read_to_string(&mut answer).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"new\":50"), "{answer}");
    let counts = store::read::counts(&store::open_reader(&db).unwrap()).unwrap();
    assert_eq!((counts.requests, counts.endpoints), (50, 908));
}

async fn get(state: &AppState, path: &str) -> (StatusCode, String) {
    let resp = http::app(state.clone())
        .oneshot(Request::get(path).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// `serve` folds its rollups between batches: a query reads what they hold without waiting
/// behind the writer, and `fresh=true` first folds every batch acknowledged.
#[test]
fn a_fresh_query_counts_every_acknowledged_batch() {
    let hour = std::time::Duration::from_secs(3600);
    let db = Db::with_options(store::Options::default().durable(true).fold(
        store::Fold::Deferred {
            interval: hour,
            max_keys: 1_000_000,
            chunk_keys: 500,
        },
    ));
    block_on(async {
        let state = state(&db, Limits::default());
        let (status, _) = post(
            &state,
            "/audit",
            event_list(&batch(0, 40, "ResponseComplete")),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let hits = |body: &str| -> u64 {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .filter(|e| e["endpoint"] == "patchAppsV1NamespacedDeployment")
                .map(|e| e["hits"].as_u64().unwrap())
                .sum()
        };
        // Nothing folded yet (an hour's interval, no idle folds): the rollups hold nothing.
        let (status, body) = get(&state, "/api/v1/endpoints").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(hits(&body), 0, "{body}");
        let (status, body) = get(&state, "/api/v1/endpoints?fresh=true").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(hits(&body), 40, "{body}");
        let (status, body) = get(&state, "/api/v1/endpoints?fresh=maybe").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("fresh"), "{body}");
    });
}
