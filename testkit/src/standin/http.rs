//! The stand-in's HTTP face: every request is resolved, audited and answered here.
//!
//! One handler takes every path: kube-apiserver's audit filter sees every request too, so each
//! gets a `RequestReceived` event before it is handled, then `ResponseComplete` when answered —
//! or, for a watch, `ResponseStarted` when its headers go out and `ResponseComplete` when the
//! stream ends. The store's lock is never held across an `.await`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tokio::task::JoinSet;

use super::audit::{self, RequestAudit, ResponseStatus, Stage, UserInfo};
use super::audit_webhook::AuditBackend;
use super::objects::{ApiError, Change, Fresh, ObjectStore, PatchKind, Selection};
use super::record::{Peer, Recorder};
use super::request_info::{RequestInfo, resolve};
use super::resources::{self, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

/// kube-apiserver's limit on a request body (`MaxRequestBodyBytes`, 3 MB).
const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;
/// How often an idle watch sends a bookmark (when the client allows them).
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);

/// Who a bearer token authenticates as.
#[derive(Clone, Debug, Default)]
pub(crate) struct Users {
    pub tokens: BTreeMap<String, UserInfo>,
    pub anonymous: UserInfo,
}

/// Everything the handler needs.
pub(crate) struct AppState {
    pub store: Mutex<ObjectStore>,
    pub recorder: Arc<Recorder>,
    pub changes: broadcast::Sender<Change>,
    pub audit: Option<AuditBackend>,
    pub users: Users,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    pub watch_timeout: Duration,
    pub watches: Mutex<JoinSet<()>>,
    pub server_address: String,
}

impl AppState {
    fn emit(&self, event: audit::Event) {
        if let Some(backend) = &self.audit {
            backend.process(event);
        }
    }
}

/// The stand-in's router: one handler for every path, as the state decides.
pub(crate) fn app(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

fn now() -> String {
    audit::micro_time(jiff::Timestamp::now())
}

fn random_bytes() -> [u8; 16] {
    fastrand::u128(..).to_le_bytes()
}

fn fresh() -> Fresh {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    Fresh {
        now: jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        uid: audit::uuid_v4(random_bytes()),
        name_suffix: (0..5)
            .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
            .collect(),
    }
}

/// What a handled request answers.
enum Reply {
    Json(StatusCode, Value),
    Raw(StatusCode, &'static str, Bytes),
    Watch(WatchStart),
}

struct WatchStart {
    rt: &'static ResourceType,
    selection: Selection,
    initial: Vec<Change>,
    revision: u64,
    rx: broadcast::Receiver<Change>,
    bookmarks: bool,
    initial_events_end: bool,
    timeout: Duration,
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

fn authenticate(users: &Users, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(users.anonymous.clone());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or(ApiError::Unauthorized)?;
    users
        .tokens
        .get(token)
        .cloned()
        .ok_or(ApiError::Unauthorized)
}

fn status_of(code: StatusCode, error: Option<&ApiError>) -> ResponseStatus {
    match error {
        Some(e) => ResponseStatus {
            status: "Failure".to_owned(),
            message: e.to_string(),
            reason: e.reason().to_owned(),
            code: e.code(),
            ..ResponseStatus::default()
        },
        None => ResponseStatus {
            code: code.as_u16(),
            ..ResponseStatus::default()
        },
    }
}

fn error_response(error: &ApiError) -> Reply {
    Reply::Json(
        StatusCode::from_u16(error.code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        error.status(),
    )
}

async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    state
        .recorder
        .request(&parts.method, &parts.uri, &parts.headers);
    let query: Vec<(String, String)> = Query::try_from_uri(&parts.uri)
        .map(|Query(q)| q)
        .unwrap_or_default();
    let info = resolve(parts.method.as_str(), parts.uri.path(), &query);
    let headers = &parts.headers;
    let audit_id = audit::audit_id(header_bytes(headers, "audit-id"), || {
        audit::uuid_v4(random_bytes())
    });
    let peer = parts
        .extensions
        .get::<ConnectInfo<Peer>>()
        .map(|c| c.0.0.ip());
    let source_ips = audit::source_ips(
        headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()),
        headers.get("x-real-ip").and_then(|v| v.to_str().ok()),
        peer,
    );
    let user = authenticate(&state.users, headers);
    let mut record = RequestAudit {
        audit_id: audit_id.clone(),
        request_uri: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| parts.uri.path().to_owned()),
        info: info.clone(),
        user: user.clone().unwrap_or_default(),
        source_ips,
        user_agent: audit::truncate_user_agent(header_bytes(headers, "user-agent")),
        received: now(),
    };
    let audit_header = HeaderValue::from_str(&audit_id).ok();

    if let Err(error) = user {
        // kube-apiserver audits a failed authentication with one ResponseStarted event.
        state.emit(record.event(
            Stage::ResponseStarted,
            &now(),
            Some(status_of(StatusCode::UNAUTHORIZED, Some(&error))),
        ));
        return respond(error_response(&error), audit_header);
    }
    state.emit(record.event(Stage::RequestReceived, &record.received, None));

    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(_) => {
            let error = ApiError::TooLarge {
                limit: MAX_BODY_BYTES,
            };
            state.emit(record.event(
                Stage::ResponseComplete,
                &now(),
                Some(status_of(StatusCode::PAYLOAD_TOO_LARGE, Some(&error))),
            ));
            return respond(error_response(&error), audit_header);
        }
    };

    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let (reply, error, created_name) =
        dispatch(&state, &parts.method, &info, &query, content_type, &body);
    if let Some(name) = created_name {
        // As kube-apiserver completes objectRef from the created object.
        record.info.name = name;
    }
    match reply {
        Reply::Watch(start) => {
            state.emit(record.event(
                Stage::ResponseStarted,
                &now(),
                Some(status_of(StatusCode::OK, None)),
            ));
            let body = stream_watch(&state, start, record);
            let mut response = Response::new(body);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(id) = audit_header {
                response.headers_mut().insert("audit-id", id);
            }
            response
        }
        reply => {
            let code = match &reply {
                Reply::Json(code, _) | Reply::Raw(code, _, _) => *code,
                Reply::Watch(_) => StatusCode::OK,
            };
            state.emit(record.event(
                Stage::ResponseComplete,
                &now(),
                Some(status_of(code, error.as_ref())),
            ));
            respond(reply, audit_header)
        }
    }
}

fn respond(reply: Reply, audit_header: Option<HeaderValue>) -> Response {
    let mut response = match reply {
        Reply::Json(code, value) => (code, axum::Json(value)).into_response(),
        Reply::Raw(code, content_type, bytes) => {
            (code, [(header::CONTENT_TYPE, content_type)], bytes).into_response()
        }
        Reply::Watch(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if let Some(id) = audit_header {
        response.headers_mut().insert("audit-id", id);
    }
    response
}

fn param<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn bool_param(query: &[(String, String)], key: &str) -> bool {
    param(query, key).is_some_and(|v| matches!(v, "true" | "1" | "True" | "TRUE"))
}

/// Answers a request; also returns the error it failed with (for the audit status) and the
/// name of an object it created.
fn dispatch(
    state: &AppState,
    method: &Method,
    info: &RequestInfo,
    query: &[(String, String)],
    content_type: &str,
    body: &Bytes,
) -> (Reply, Option<ApiError>, Option<String>) {
    let result = if info.is_resource_request {
        resource_request(state, info, query, content_type, body)
    } else {
        non_resource_request(state, method, info).map(|r| (r, None))
    };
    match result {
        Ok((reply, created)) => (reply, None, created),
        Err(error) => (error_response(&error), Some(error), None),
    }
}

fn non_resource_request(
    state: &AppState,
    method: &Method,
    info: &RequestInfo,
) -> Result<Reply, ApiError> {
    if method != Method::GET && method != Method::HEAD {
        return Err(ApiError::MethodNotSupported);
    }
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    let parts: Vec<&str> = info.path.trim_matches('/').split('/').collect();
    match parts.as_slice() {
        ["version"] => ok(resources::version()),
        ["api"] => ok(resources::api_versions(&state.server_address)),
        ["api", version] => {
            resources::api_resource_list("", version).map_or(Err(ApiError::NoSuchPath), ok)
        }
        ["apis"] => ok(resources::api_group_list()),
        ["apis", group] => resources::api_group(group).map_or(Err(ApiError::NoSuchPath), ok),
        ["apis", group, version] => {
            resources::api_resource_list(group, version).map_or(Err(ApiError::NoSuchPath), ok)
        }
        ["openapi", "v2"] => Ok(Reply::Raw(
            StatusCode::OK,
            "application/json",
            super::openapi::openapi_v2(),
        )),
        ["healthz" | "livez" | "readyz"] => Ok(Reply::Raw(
            StatusCode::OK,
            "text/plain; charset=utf-8",
            Bytes::from_static(b"ok"),
        )),
        _ => Err(ApiError::NoSuchPath),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body of the request could not be decoded as JSON: {e}"
        ))
    })
}

fn selection(
    info: &RequestInfo,
    query: &[(String, String)],
    namespace: Option<&str>,
) -> Result<Selection, ApiError> {
    let labels = LabelSelector::parse(param(query, "labelSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let fields = FieldSelector::parse(param(query, "fieldSelector").unwrap_or(""))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Selection {
        namespace: namespace.map(str::to_owned),
        // A field selector's name is checked by `fields`; a path's name (single-object watch)
        // only here.
        name: (info.verb_via_path_prefix && !info.name.is_empty()).then(|| info.name.clone()),
        labels,
        fields,
    })
}

/// Applies a mutation to the store (or, for `dryRun`, to a copy of it) and announces its
/// changes to watches while still holding the lock, so a watch never misses or repeats one.
fn mutate<T>(
    state: &AppState,
    dry_run: bool,
    f: impl FnOnce(&mut ObjectStore) -> Result<(T, Vec<Change>), ApiError>,
) -> Result<T, ApiError> {
    let mut store = state.store.lock().unwrap_or_else(|e| e.into_inner());
    if dry_run {
        let mut scratch = store.clone();
        return f(&mut scratch).map(|(t, _)| t);
    }
    let (t, changes) = f(&mut store)?;
    for change in changes {
        // No receiver means no watch is open.
        let _ = state.changes.send(change);
    }
    Ok(t)
}

fn resource_request(
    state: &AppState,
    info: &RequestInfo,
    query: &[(String, String)],
    content_type: &str,
    body: &Bytes,
) -> Result<(Reply, Option<String>), ApiError> {
    let rt = resources::find(&info.api_group, &info.api_version, &info.resource)
        .ok_or(ApiError::NoSuchPath)?;
    let namespace = if rt.namespaced {
        (!info.namespace.is_empty()).then_some(info.namespace.as_str())
    } else {
        if !info.namespace.is_empty() && rt.kind != "Namespace" {
            return Err(ApiError::NoSuchPath);
        }
        None
    };
    if !info.subresource.is_empty() && !rt.subresources.contains(&info.subresource.as_str()) {
        return Err(ApiError::NoSuchPath);
    }
    let needs_namespace = rt.namespaced && !matches!(info.verb.as_str(), "list" | "watch");
    if needs_namespace && namespace.is_none() {
        return Err(ApiError::NoSuchPath);
    }
    let dry_run = param(query, "dryRun").is_some_and(|v| v == "All");
    let name = info.name.as_str();
    let ok = |v: Value| Ok((Reply::Json(StatusCode::OK, v), None));
    let read = || state.store.lock().unwrap_or_else(|e| e.into_inner());

    match (info.verb.as_str(), info.subresource.as_str()) {
        ("list", "") => {
            let selection = selection(info, query, namespace)?;
            let (items, revision) = read().list(rt, &selection);
            ok(ObjectStore::list_body(rt, items, revision))
        }
        ("watch", "") => {
            let selection = selection(info, query, namespace)?;
            watch(state, rt, selection, query).map(|w| (Reply::Watch(w), None))
        }
        ("get", "") | ("get", "status") => ok(read().get(rt, namespace, name)?.clone()),
        ("create", "") if name.is_empty() => {
            let body = parse_body(body)?;
            let fresh = fresh();
            let object = mutate(state, dry_run, |s| {
                s.create(rt, namespace, body, &fresh)
                    .map(|(o, c)| (o, vec![c]))
            })?;
            let created = object["metadata"]["name"].as_str().map(str::to_owned);
            Ok((Reply::Json(StatusCode::CREATED, object), created))
        }
        ("update", "") => {
            let body = parse_body(body)?;
            ok(mutate(state, dry_run, |s| {
                s.update(rt, namespace, name, body)
                    .map(|(o, c)| (o, vec![c]))
            })?)
        }
        ("update", "status") => {
            let body = parse_body(body)?;
            ok(mutate(state, dry_run, |s| {
                s.update_status(rt, namespace, name, body)
                    .map(|(o, c)| (o, vec![c]))
            })?)
        }
        ("patch", sub @ ("" | "status")) => {
            let kind = PatchKind::from_content_type(content_type)?;
            let patch = parse_body(body)?;
            let fresh = fresh();
            let (object, created) = mutate(state, dry_run, |s| {
                s.patch(rt, namespace, name, kind, &patch, sub == "status", &fresh)
                    .map(|(o, c, created)| ((o, created), vec![c]))
            })?;
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((Reply::Json(code, object), None))
        }
        ("delete", "") => {
            let (object, _) = mutate(state, dry_run, |s| {
                s.delete(rt, namespace, name)
                    .map(|(o, changes)| ((o, ()), changes))
            })?;
            // Pods and services answer with the deleted object, the others with a Status
            // (the registries' ReturnDeletedObject).
            if rt.group.is_empty() && matches!(rt.plural, "pods" | "services") {
                return ok(object);
            }
            let mut details =
                json!({"name": name, "kind": rt.plural, "uid": object["metadata"]["uid"]});
            if !rt.group.is_empty() {
                details["group"] = json!(rt.group);
            }
            ok(
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}),
            )
        }
        ("deletecollection", "") => {
            let selection = selection(info, query, namespace)?;
            let deleted = mutate(state, dry_run, |s| Ok(s.delete_collection(rt, &selection)))?;
            let revision = read().revision();
            ok(ObjectStore::list_body(rt, deleted, revision))
        }
        ("get", "scale") => ok(read().scale(rt, namespace, name)?),
        ("update", "scale") => {
            let scale = parse_body(body)?;
            ok(mutate(state, dry_run, |s| {
                s.update_scale(rt, namespace, name, &scale)
                    .map(|(o, c)| (o, vec![c]))
            })?)
        }
        ("patch", "scale") => {
            PatchKind::from_content_type(content_type)?;
            let patch = parse_body(body)?;
            ok(mutate(state, dry_run, |s| {
                s.patch_scale(rt, namespace, name, &patch)
                    .map(|(o, c)| (o, vec![c]))
            })?)
        }
        ("get", "log") => {
            let store = read();
            let pod = store.get(rt, namespace, name)?;
            let containers: Vec<String> = pod["spec"]["containers"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c["name"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            let container = match param(query, "container") {
                Some(c) if containers.iter().any(|x| x == c) => c.to_owned(),
                Some(c) => {
                    return Err(ApiError::BadRequest(format!(
                        "container {c} is not valid for pod {name}"
                    )));
                }
                None if containers.len() == 1 => containers[0].clone(),
                None if containers.is_empty() => {
                    return Err(ApiError::BadRequest(format!(
                        "pod {name} has no containers"
                    )));
                }
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "a container name must be specified for pod {name}, choose one of: {containers:?}"
                    )));
                }
            };
            // As kube-apiserver: a pod no node runs has no log to read.
            if pod["spec"]["nodeName"]
                .as_str()
                .unwrap_or_default()
                .is_empty()
            {
                return Err(ApiError::BadRequest(format!(
                    "pod {name} does not have a host assigned"
                )));
            }
            let created = pod["metadata"]["creationTimestamp"].as_str().unwrap_or("");
            let log = format!(
                "{created} stand-in API server: no kubelet runs pod {}/{name}\n{created} container {container} has written nothing\n",
                namespace.unwrap_or_default()
            );
            Ok((
                Reply::Raw(StatusCode::OK, "text/plain", Bytes::from(log)),
                None,
            ))
        }
        _ => Err(ApiError::MethodNotSupported),
    }
}

fn watch(
    state: &AppState,
    rt: &'static ResourceType,
    selection: Selection,
    query: &[(String, String)],
) -> Result<WatchStart, ApiError> {
    let requested = param(query, "resourceVersion").unwrap_or("");
    let send_initial = bool_param(query, "sendInitialEvents");
    let timeout = param(query, "timeoutSeconds")
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs)
        .map_or(state.watch_timeout, |t| t.min(state.watch_timeout));
    let store = state.store.lock().unwrap_or_else(|e| e.into_inner());
    // Subscribing under the lock: every change after `initial` reaches `rx`.
    let rx = state.changes.subscribe();
    let initial = if requested.is_empty() || requested == "0" || send_initial {
        store.current_as_added(rt, &selection)
    } else {
        let since: u64 = requested.parse().map_err(|_| {
            ApiError::BadRequest(format!(
                "invalid resourceVersion {requested:?}: not a number"
            ))
        })?;
        store
            .changes_since(since)?
            .into_iter()
            .filter(|c| std::ptr::eq(c.resource, rt) && selection.matches(&c.object))
            .collect()
    };
    Ok(WatchStart {
        rt,
        selection,
        initial,
        revision: store.revision(),
        rx,
        bookmarks: bool_param(query, "allowWatchBookmarks"),
        initial_events_end: send_initial,
        timeout,
    })
}

fn watch_line(event_type: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": event_type, "object": object}))
        .expect("JSON values serialize");
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(rt: &ResourceType, revision: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": revision.to_string()});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    watch_line(
        "BOOKMARK",
        &json!({"kind": rt.kind, "apiVersion": rt.api_version(), "metadata": metadata}),
    )
}

/// Streams newline-delimited WatchEvents from a task; `ResponseComplete` is audited when the
/// stream ends: timeout, server shutdown, a lagging watcher, or the client going away.
fn stream_watch(state: &Arc<AppState>, start: WatchStart, record: RequestAudit) -> Body {
    let (mut tx, body_rx) = futures::channel::mpsc::channel::<Bytes>(16);
    let task_state = state.clone();
    let mut shutdown = state.shutdown.clone();
    let task = async move {
        let WatchStart {
            rt,
            selection,
            initial,
            mut revision,
            mut rx,
            bookmarks,
            initial_events_end,
            timeout,
        } = start;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticks = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        let mut sent_ok = true;
        for change in initial {
            if tx
                .send(watch_line(change.change.as_str(), &change.object))
                .await
                .is_err()
            {
                sent_ok = false;
                break;
            }
        }
        if sent_ok
            && bookmarks
            && tx
                .send(bookmark(rt, revision, initial_events_end))
                .await
                .is_err()
        {
            sent_ok = false;
        }
        while sent_ok && !*shutdown.borrow() {
            let line = tokio::select! {
                _ = &mut deadline => break,
                _ = shutdown.changed() => break,
                _ = ticks.tick(), if bookmarks => bookmark(rt, revision, false),
                change = rx.recv() => match change {
                    Ok(change) => {
                        if !std::ptr::eq(change.resource, rt) || !selection.matches(&change.object) {
                            continue;
                        }
                        revision = change.revision;
                        watch_line(change.change.as_str(), &change.object)
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // As kube-apiserver does for a watcher that fell too far behind.
                        let gone = ApiError::Gone { requested: revision, oldest: revision + 1 };
                        let _ = tx.send(watch_line("ERROR", &gone.status())).await;
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            };
            sent_ok = tx.send(line).await.is_ok();
        }
        drop(tx);
        task_state.emit(record.event(
            Stage::ResponseComplete,
            &now(),
            Some(status_of(StatusCode::OK, None)),
        ));
    };
    let mut watches = state.watches.lock().unwrap_or_else(|e| e.into_inner());
    // Forget the watches that ended; shutdown waits for the rest.
    while watches.try_join_next().is_some() {}
    watches.spawn(task);
    drop(watches);
    Body::from_stream(body_rx.map(Ok::<_, Infallible>))
}
