//! `StandInApiServer`: a stand-in for kube-apiserver on 127.0.0.1 that answers kube-rs list,
//! get, create and watch of Pods with the real JSON shapes, and records every request's
//! headers and every connection's raw bytes.

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
}

impl Seen {
    /// The `User-Agent` header text, or "".
    pub fn user_agent(&self) -> String {
        self.headers
            .get("user-agent")
            .map(|v| v.to_str().expect("user agent is visible ASCII").to_owned())
            .unwrap_or_default()
    }
}

/// The bytes a client sent on one connection.
type Connection = Arc<Mutex<Vec<u8>>>;

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    raw: Arc<Mutex<Vec<Connection>>>,
}

/// The stand-in API server. Dropping it leaves its tasks to end with the test's runtime.
pub struct StandInApiServer {
    pub url: String,
    recorder: Recorder,
}

pub fn pod(namespace: &str, name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            uid: Some(format!("uid-{namespace}-{name}")),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("registry.k8s.io/pause:3.10".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        }),
        status: None,
    }
}

fn pod_list(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": {"resourceVersion": "10"},
        "items": [pod(namespace, "web-0"), pod(namespace, "web-1")],
    })
}

fn not_found(name: &str) -> Response {
    let status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("pods \"{name}\" not found"), "reason": "NotFound",
        "details": {"name": name, "kind": "pods"}, "code": 404
    });
    (StatusCode::NOT_FOUND, Json(status)).into_response()
}

/// A watch response: two ADDED events as JSON lines, then the stream stays open, as a watch
/// with nothing more to say does.
fn watch_stream(namespace: &str) -> Response {
    let events: Vec<Result<String, std::convert::Infallible>> = ["web-0", "web-1"]
        .iter()
        .map(|n| {
            Ok(format!(
                "{}\n",
                json!({"type": "ADDED", "object": pod(namespace, n)})
            ))
        })
        .collect();
    let stream =
        futures::StreamExt::chain(futures::stream::iter(events), futures::stream::pending());
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("static response")
}

async fn list_or_watch(
    Path(namespace): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return watch_stream(&namespace);
    }
    Json(pod_list(&namespace)).into_response()
}

async fn list_all(Query(q): Query<HashMap<String, String>>) -> Response {
    list_or_watch(Path("default".into()), Query(q)).await
}

async fn create(Path(namespace): Path<String>, Json(mut body): Json<Value>) -> Response {
    let name = body["metadata"]["name"]
        .as_str()
        .unwrap_or("created")
        .to_owned();
    body["metadata"]["namespace"] = json!(namespace);
    body["metadata"]["uid"] = json!(format!("uid-{namespace}-{name}"));
    body["metadata"]["resourceVersion"] = json!("11");
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn get_one(Path((namespace, name)): Path<(String, String)>) -> Response {
    if name.starts_with("missing") {
        return not_found(&name);
    }
    Json(pod(&namespace, &name)).into_response()
}

async fn record(State(rec): State<Recorder>, request: Request, next: Next) -> Response {
    rec.seen.lock().unwrap().push(Seen {
        method: request.method().clone(),
        uri: request.uri().clone(),
        headers: request.headers().clone(),
    });
    next.run(request).await
}

fn app(rec: Recorder) -> Router {
    Router::new()
        .route(
            "/api/v1/namespaces/{ns}/pods",
            get(list_or_watch).post(create),
        )
        .route("/api/v1/namespaces/{ns}/pods/{name}", get(get_one))
        .route("/api/v1/pods", get(list_all))
        .layer(middleware::from_fn_with_state(rec.clone(), record))
        .with_state(rec)
}

/// Copies a client connection to the server while keeping the client's bytes.
async fn tee(mut client: TcpStream, server_addr: std::net::SocketAddr, keep: Arc<Mutex<Vec<u8>>>) {
    let Ok(mut server) = TcpStream::connect(server_addr).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    keep.lock().unwrap().extend_from_slice(&buf[..n]);
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

impl StandInApiServer {
    /// Starts the stand-in on an ephemeral loopback port.
    pub async fn start() -> Self {
        let recorder = Recorder::default();
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let inner_addr = inner.local_addr().unwrap();
        tokio::spawn(axum::serve(inner, app(recorder.clone())).into_future());
        let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", front.local_addr().unwrap());
        let raw = recorder.raw.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = front.accept().await {
                let keep = Arc::new(Mutex::new(Vec::new()));
                raw.lock().unwrap().push(keep.clone());
                tokio::spawn(tee(conn, inner_addr, keep));
            }
        });
        Self { url, recorder }
    }

    /// A kube config pointing at the stand-in, default namespace `default`.
    pub fn config(&self) -> kube::Config {
        kube::Config::new(self.url.parse().unwrap())
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.recorder.seen.lock().unwrap().clone()
    }

    /// The requests seen so far whose path and query contain `needle`.
    pub fn seen_with(&self, needle: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| {
                s.uri
                    .path_and_query()
                    .is_some_and(|p| p.as_str().contains(needle))
            })
            .collect()
    }

    /// What clients sent on each connection, byte for byte.
    pub fn raw_connections(&self) -> Vec<Vec<u8>> {
        self.recorder
            .raw
            .lock()
            .unwrap()
            .iter()
            .map(|c| c.lock().unwrap().clone())
            .collect()
    }
}
