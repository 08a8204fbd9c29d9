//! The stand-in's objects: an in-memory store with Kubernetes semantics for create, get, list,
//! update, patch and delete — resourceVersions from one counter, optimistic concurrency,
//! `generateName`, status and scale subresources — and a change history for watches.
//!
//! Patches of every type are applied as JSON merge patches (RFC 7386): strategic merge's
//! list-merge keys and server-side apply's field ownership are not modelled.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value, json};

use super::resources::{RESOURCES, ResourceType};
use super::selector::{FieldSelector, LabelSelector};

/// A request the Kubernetes API would refuse, with the status it answers.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiError {
    /// 404 for an object.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        /// Group resource, e.g. `deployments.apps`.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 404 for a path the stand-in does not serve.
    #[error("the server could not find the requested resource")]
    NoSuchPath,
    /// 409 on create.
    #[error("{resource} \"{name}\" already exists")]
    AlreadyExists {
        /// Group resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 409 on a stale resourceVersion.
    #[error(
        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
    )]
    Conflict {
        /// Group resource.
        resource: String,
        /// Object name.
        name: String,
    },
    /// 400 for a body or parameter the API refuses.
    #[error("{0}")]
    BadRequest(String),
    /// 422 for an object that fails validation.
    #[error("{kind} \"{name}\" is invalid: {detail}")]
    Invalid {
        /// Kind of the object.
        kind: String,
        /// Object name.
        name: String,
        /// Which field and why.
        detail: String,
    },
    /// 405 for a verb the resource does not support.
    #[error("the server does not allow this method on the requested resource")]
    MethodNotSupported,
    /// 415 for a patch type the stand-in does not apply.
    #[error(
        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (the stand-in applies all but json-patch)"
    )]
    UnsupportedMediaType,
    /// 410 for a watch from a compacted resourceVersion.
    #[error("too old resource version: {requested} ({oldest})")]
    Gone {
        /// The resourceVersion asked for.
        requested: u64,
        /// The oldest one still in the history.
        oldest: u64,
    },
    /// 401 for a bearer token the stand-in does not know.
    #[error("Unauthorized")]
    Unauthorized,
    /// 413 for a body over kube-apiserver's limit.
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
}

impl ApiError {
    /// The HTTP status code.
    pub fn code(&self) -> u16 {
        match self {
            Self::NotFound { .. } | Self::NoSuchPath => 404,
            Self::AlreadyExists { .. } | Self::Conflict { .. } => 409,
            Self::BadRequest(_) => 400,
            Self::Invalid { .. } => 422,
            Self::MethodNotSupported => 405,
            Self::UnsupportedMediaType => 415,
            Self::Gone { .. } => 410,
            Self::Unauthorized => 401,
            Self::TooLarge { .. } => 413,
        }
    }

    /// The `metav1.StatusReason`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotFound { .. } | Self::NoSuchPath => "NotFound",
            Self::AlreadyExists { .. } => "AlreadyExists",
            Self::Conflict { .. } => "Conflict",
            Self::BadRequest(_) => "BadRequest",
            Self::Invalid { .. } => "Invalid",
            Self::MethodNotSupported => "MethodNotAllowed",
            Self::UnsupportedMediaType => "UnsupportedMediaType",
            Self::Gone { .. } => "Expired",
            Self::Unauthorized => "Unauthorized",
            Self::TooLarge { .. } => "RequestEntityTooLarge",
        }
    }

    /// The `metav1.Status` body kube-apiserver answers with.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        match self {
            Self::NotFound { resource, name }
            | Self::AlreadyExists { resource, name }
            | Self::Conflict { resource, name } => {
                let (kind, group) = resource.split_once('.').unwrap_or((resource, ""));
                let mut details = json!({"name": name, "kind": kind});
                if !group.is_empty() {
                    details["group"] = json!(group);
                }
                status["details"] = details;
            }
            Self::Invalid { kind, name, .. } => {
                status["details"] = json!({"name": name, "kind": kind});
            }
            _ => {}
        }
        status
    }
}

/// The result of a store operation.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// What a watch reports about one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Deleted.
    Deleted,
}

impl ChangeType {
    /// `ADDED`, `MODIFIED` or `DELETED`, as a WatchEvent's `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change to one object, at one resourceVersion.
#[derive(Clone, Debug)]
pub struct Change {
    /// What happened.
    pub change: ChangeType,
    /// The object's resource type.
    pub resource: &'static ResourceType,
    /// The resourceVersion of the change.
    pub revision: u64,
    /// The object after the change (before it, for a deletion, with the new resourceVersion).
    pub object: Value,
}

/// Fresh values a create needs; the caller draws them so the store stays deterministic.
#[derive(Clone, Debug)]
pub struct Fresh {
    /// RFC 3339 `creationTimestamp`.
    pub now: String,
    /// The new object's UID.
    pub uid: String,
    /// Five characters for `generateName`.
    pub name_suffix: String,
}

/// How a PATCH body applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`, applied as a merge patch.
    StrategicMerge,
    /// `application/apply-patch+yaml` (server-side apply), applied as a merge patch that
    /// creates the object when absent.
    Apply,
}

impl PatchKind {
    /// The patch kind of a request's content type.
    pub fn from_content_type(content_type: &str) -> Result<Self> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::StrategicMerge),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(Self::Apply),
            _ => Err(ApiError::UnsupportedMediaType),
        }
    }
}

/// Which objects a list, watch or deletecollection is about.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Only this namespace (all namespaces when `None`).
    pub namespace: Option<String>,
    /// Only this name (a single-object watch or a `metadata.name` field selector).
    pub name: Option<String>,
    /// Labels to match.
    pub labels: LabelSelector,
    /// Fields to match.
    pub fields: FieldSelector,
}

impl Selection {
    /// Whether `object` of type `rt` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        let meta = &object["metadata"];
        self.namespace
            .as_deref()
            .is_none_or(|ns| meta["namespace"].as_str() == Some(ns))
            && self
                .name
                .as_deref()
                .is_none_or(|n| meta["name"].as_str() == Some(n))
            && self.labels.matches(meta["labels"].as_object())
            && self.fields.matches(object)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    resource: usize,
    namespace: String,
    name: String,
}

/// How many changes a watch can resume from.
const HISTORY_LIMIT: usize = 10_000;

/// The objects of the stand-in and their history.
#[derive(Clone, Debug)]
pub struct ObjectStore {
    objects: BTreeMap<Key, Value>,
    revision: u64,
    history: VecDeque<Change>,
    /// The newest revision evicted from the history; a watch must start at or after it.
    compacted: u64,
}

fn index_of(rt: &ResourceType) -> usize {
    RESOURCES
        .iter()
        .position(|r| std::ptr::eq(r, rt))
        .expect("resource types come from RESOURCES")
}

/// Applies an RFC 7386 JSON merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(fields) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let target = target.as_object_mut().expect("made an object above");
            for (key, value) in fields {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// The parts of an object that make up its spec, for `metadata.generation`.
fn spec_of(object: &Value) -> Value {
    let mut spec = object.clone();
    if let Some(map) = spec.as_object_mut() {
        for key in ["metadata", "status", "kind", "apiVersion"] {
            map.remove(key);
        }
    }
    spec
}

impl Default for ObjectStore {
    fn default() -> Self {
        Self::new()
    }
}

impl ObjectStore {
    /// A store holding the namespaces every cluster starts with.
    pub fn new() -> Self {
        let mut store = Self {
            objects: BTreeMap::new(),
            revision: 0,
            history: VecDeque::new(),
            compacted: 0,
        };
        let namespaces = super::resources::find("", "v1", "namespaces").expect("served");
        for (i, ns) in ["default", "kube-system", "kube-public", "kube-node-lease"]
            .iter()
            .enumerate()
        {
            let fresh = Fresh {
                now: "2026-01-01T00:00:00Z".to_owned(),
                uid: super::audit::uuid_v4([i as u8 + 1; 16]),
                name_suffix: String::new(),
            };
            store
                .create(namespaces, None, json!({"metadata": {"name": ns}}), &fresh)
                .expect("initial namespaces are valid");
        }
        store
    }

    /// The current resourceVersion.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    fn key(rt: &ResourceType, namespace: Option<&str>, name: &str) -> Key {
        Key {
            resource: index_of(rt),
            namespace: if rt.namespaced {
                namespace.unwrap_or_default().to_owned()
            } else {
                String::new()
            },
            name: name.to_owned(),
        }
    }

    fn not_found(rt: &ResourceType, name: &str) -> ApiError {
        ApiError::NotFound {
            resource: rt.group_resource(),
            name: name.to_owned(),
        }
    }

    fn record(&mut self, change: ChangeType, rt: &'static ResourceType, object: Value) -> Change {
        let change = Change {
            change,
            resource: rt,
            revision: self.revision,
            object,
        };
        self.history.push_back(change.clone());
        if self.history.len() > HISTORY_LIMIT
            && let Some(old) = self.history.pop_front()
        {
            self.compacted = old.revision;
        }
        change
    }

    fn bump(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// Whether a namespace exists.
    pub fn namespace_exists(&self, namespace: &str) -> bool {
        let namespaces = super::resources::find("", "v1", "namespaces").expect("served");
        self.objects
            .contains_key(&Self::key(namespaces, None, namespace))
    }

    /// Checks the body of a write: an object whose kind and apiVersion, when given, are the
    /// resource's.
    fn check_body(rt: &ResourceType, body: &Value) -> Result<()> {
        if !body.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body of a {} request must be a JSON object",
                rt.kind
            )));
        }
        if let Some(v) = body["apiVersion"].as_str()
            && v != rt.api_version()
        {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                rt.api_version()
            )));
        }
        if let Some(k) = body["kind"].as_str()
            && k != rt.kind
        {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                rt.kind
            )));
        }
        Ok(())
    }

    /// Objects of `rt` matching `selection`, without kind and apiVersion as list items come,
    /// and the list's resourceVersion.
    pub fn list(&self, rt: &ResourceType, selection: &Selection) -> (Vec<Value>, u64) {
        let resource = index_of(rt);
        let items = self
            .objects
            .iter()
            .filter(|(k, v)| k.resource == resource && selection.matches(v))
            .map(|(_, v)| {
                let mut item = v.clone();
                if let Some(map) = item.as_object_mut() {
                    map.remove("kind");
                    map.remove("apiVersion");
                }
                item
            })
            .collect();
        (items, self.revision)
    }

    /// A list response body: `PodList` and the like.
    pub fn list_body(rt: &ResourceType, items: Vec<Value>, revision: u64) -> Value {
        json!({
            "kind": format!("{}List", rt.kind),
            "apiVersion": rt.api_version(),
            "metadata": {"resourceVersion": revision.to_string()},
            "items": items,
        })
    }

    /// One object.
    pub fn get(&self, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Result<&Value> {
        self.objects
            .get(&Self::key(rt, namespace, name))
            .ok_or_else(|| Self::not_found(rt, name))
    }

    /// Creates an object from `body` in `namespace`.
    pub fn create(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        mut body: Value,
        fresh: &Fresh,
    ) -> Result<(Value, Change)> {
        Self::check_body(rt, &body)?;
        let meta = body["metadata"].as_object().cloned().unwrap_or_default();
        let name = match (
            meta.get("name").and_then(Value::as_str),
            meta.get("generateName").and_then(Value::as_str),
        ) {
            (Some(n), _) if !n.is_empty() => n.to_owned(),
            (_, Some(g)) if !g.is_empty() => format!("{g}{}", fresh.name_suffix),
            _ => {
                return Err(ApiError::Invalid {
                    kind: rt.kind.to_owned(),
                    name: String::new(),
                    detail: "metadata.name: Required value: name or generateName is required"
                        .to_owned(),
                });
            }
        };
        if rt.namespaced {
            let ns = namespace.unwrap_or_default();
            if let Some(body_ns) = meta.get("namespace").and_then(Value::as_str)
                && !body_ns.is_empty()
                && body_ns != ns
            {
                return Err(ApiError::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request".to_owned(),
                ));
            }
            if !self.namespace_exists(ns) {
                return Err(ApiError::NotFound {
                    resource: "namespaces".to_owned(),
                    name: ns.to_owned(),
                });
            }
        }
        let key = Self::key(rt, namespace, &name);
        if self.objects.contains_key(&key) {
            return Err(ApiError::AlreadyExists {
                resource: rt.group_resource(),
                name,
            });
        }
        let revision = self.bump();
        body["kind"] = json!(rt.kind);
        body["apiVersion"] = json!(rt.api_version());
        let m = &mut body["metadata"];
        if !m.is_object() {
            *m = json!({});
        }
        m["name"] = json!(name);
        if rt.namespaced {
            m["namespace"] = json!(namespace.unwrap_or_default());
        }
        m["uid"] = json!(fresh.uid);
        m["resourceVersion"] = json!(revision.to_string());
        m["creationTimestamp"] = json!(fresh.now);
        if rt.kind == "Deployment" || rt.kind == "Pod" {
            m["generation"] = json!(1);
        }
        match rt.kind {
            "Namespace" => body["status"] = json!({"phase": "Active"}),
            // No kubelet runs the stand-in's pods.
            "Pod" if body["status"]["phase"].is_null() => {
                body["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"})
            }
            _ => {}
        }
        self.objects.insert(key, body.clone());
        let change = self.record(ChangeType::Added, rt, body.clone());
        Ok((body, change))
    }

    /// Stores `new` in place of the object at `key`, keeping what the server owns.
    fn commit_update(
        &mut self,
        rt: &'static ResourceType,
        key: Key,
        mut new: Value,
        keep_status: bool,
    ) -> Result<(Value, Change)> {
        let old = self
            .objects
            .get(&key)
            .ok_or_else(|| Self::not_found(rt, &key.name))?
            .clone();
        if let Some(rv) = new["metadata"]["resourceVersion"].as_str()
            && !rv.is_empty()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::Conflict {
                resource: rt.group_resource(),
                name: key.name,
            });
        }
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
        ] {
            match old["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        if keep_status {
            match old.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        new["kind"] = json!(rt.kind);
        new["apiVersion"] = json!(rt.api_version());
        if let Some(generation) = old["metadata"]["generation"].as_u64()
            && spec_of(&old) != spec_of(&new)
        {
            new["metadata"]["generation"] = json!(generation + 1);
        }
        let revision = self.bump();
        new["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.objects.insert(key, new.clone());
        let change = self.record(ChangeType::Modified, rt, new.clone());
        Ok((new, change))
    }

    fn check_name(body: &Value, name: &str) -> Result<()> {
        match body["metadata"]["name"].as_str() {
            Some(n) if n != name => Err(ApiError::BadRequest(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            ))),
            _ => Ok(()),
        }
    }

    /// Replaces an object (PUT); its status is kept when the resource has a status
    /// subresource, as kube-apiserver's strategies do.
    pub fn update(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        body: Value,
    ) -> Result<(Value, Change)> {
        Self::check_body(rt, &body)?;
        Self::check_name(&body, name)?;
        let keep_status = rt.subresources.contains(&"status");
        self.commit_update(rt, Self::key(rt, namespace, name), body, keep_status)
    }

    /// Replaces only the status of an object (PUT on `/status`).
    pub fn update_status(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        body: Value,
    ) -> Result<(Value, Change)> {
        Self::check_body(rt, &body)?;
        Self::check_name(&body, name)?;
        let key = Self::key(rt, namespace, name);
        let mut new = self.get(rt, namespace, name)?.clone();
        new["status"] = body.get("status").cloned().unwrap_or(json!({}));
        if let Some(rv) = body["metadata"]["resourceVersion"].as_str() {
            new["metadata"]["resourceVersion"] = json!(rv);
        }
        self.commit_update(rt, key, new, false)
    }

    /// Patches an object; with `status_only` only its status changes (PATCH on `/status`).
    /// Returns whether a server-side apply created it.
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        status_only: bool,
        fresh: &Fresh,
    ) -> Result<(Value, Change, bool)> {
        if !patch.is_object() {
            return Err(ApiError::BadRequest(
                "a merge patch must be a JSON object".to_owned(),
            ));
        }
        Self::check_body(rt, patch)?;
        Self::check_name(patch, name)?;
        let key = Self::key(rt, namespace, name);
        let Some(old) = self.objects.get(&key).cloned() else {
            if kind == PatchKind::Apply && !status_only {
                let mut body = patch.clone();
                body["metadata"]["name"] = json!(name);
                let (object, change) = self.create(rt, namespace, body, fresh)?;
                return Ok((object, change, true));
            }
            return Err(Self::not_found(rt, name));
        };
        let mut new = old.clone();
        merge_patch(&mut new, patch);
        if status_only {
            let status = new.get("status").cloned();
            new = old;
            match status {
                Some(s) => new["status"] = s,
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
            if let Some(rv) = patch["metadata"]["resourceVersion"].as_str() {
                new["metadata"]["resourceVersion"] = json!(rv);
            }
        }
        let keep_status = !status_only && rt.subresources.contains(&"status");
        let (object, change) = self.commit_update(rt, key, new, keep_status)?;
        Ok((object, change, false))
    }

    /// Deletes an object (and, for a namespace, everything in it).
    pub fn delete(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, Vec<Change>)> {
        let key = Self::key(rt, namespace, name);
        if !self.objects.contains_key(&key) {
            return Err(Self::not_found(rt, name));
        }
        let mut changes = Vec::new();
        if rt.kind == "Namespace" {
            let contained: Vec<Key> = self
                .objects
                .keys()
                .filter(|k| RESOURCES[k.resource].namespaced && k.namespace == name)
                .cloned()
                .collect();
            for k in contained {
                changes.push(self.remove(k));
            }
        }
        let change = self.remove(key);
        let object = change.object.clone();
        changes.push(change);
        Ok((object, changes))
    }

    fn remove(&mut self, key: Key) -> Change {
        let rt = &RESOURCES[key.resource];
        let mut object = self.objects.remove(&key).expect("caller checked");
        let revision = self.bump();
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        self.record(ChangeType::Deleted, rt, object)
    }

    /// Deletes every selected object of `rt`; returns them.
    pub fn delete_collection(
        &mut self,
        rt: &'static ResourceType,
        selection: &Selection,
    ) -> (Vec<Value>, Vec<Change>) {
        let resource = index_of(rt);
        let keys: Vec<Key> = self
            .objects
            .iter()
            .filter(|(k, v)| k.resource == resource && selection.matches(v))
            .map(|(k, _)| k.clone())
            .collect();
        let mut deleted = Vec::new();
        let mut changes = Vec::new();
        for key in keys {
            let change = self.remove(key);
            deleted.push(change.object.clone());
            changes.push(change);
        }
        (deleted, changes)
    }

    /// The autoscaling/v1 `Scale` of a deployment.
    pub fn scale(&self, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Result<Value> {
        let object = self.get(rt, namespace, name)?;
        let meta = &object["metadata"];
        let selector = object["spec"]["selector"]["matchLabels"]
            .as_object()
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        Ok(json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta["creationTimestamp"],
            },
            "spec": {"replicas": object["spec"]["replicas"].as_i64().unwrap_or(1)},
            "status": {"replicas": object["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector},
        }))
    }

    /// Writes a `Scale` (PUT on `/scale`, or the result of a PATCH on it) back to the
    /// deployment's `spec.replicas`.
    pub fn update_scale(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
    ) -> Result<(Value, Change)> {
        let replicas = scale["spec"]["replicas"]
            .as_i64()
            .ok_or_else(|| ApiError::Invalid {
                kind: "Scale".to_owned(),
                name: name.to_owned(),
                detail: "spec.replicas: Required value".to_owned(),
            })?;
        if replicas < 0 {
            return Err(ApiError::Invalid {
                kind: "Scale".to_owned(),
                name: name.to_owned(),
                detail: format!(
                    "spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
                ),
            });
        }
        let key = Self::key(rt, namespace, name);
        let mut new = self.get(rt, namespace, name)?.clone();
        new["spec"]["replicas"] = json!(replicas);
        match scale["metadata"]["resourceVersion"].as_str() {
            Some(rv) => new["metadata"]["resourceVersion"] = json!(rv),
            None => {
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("resourceVersion");
                }
            }
        }
        self.commit_update(rt, key, new, false)?;
        let scale = self.scale(rt, namespace, name)?;
        let change = self.history.back().expect("just recorded").clone();
        Ok((scale, change))
    }

    /// Patches a deployment's `Scale`.
    pub fn patch_scale(
        &mut self,
        rt: &'static ResourceType,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<(Value, Change)> {
        let mut scale = self.scale(rt, namespace, name)?;
        let current_rv = scale["metadata"]["resourceVersion"].clone();
        merge_patch(&mut scale, patch);
        if patch["metadata"]["resourceVersion"].is_null() {
            scale["metadata"]["resourceVersion"] = current_rv;
        }
        self.update_scale(rt, namespace, name, &scale)
    }

    /// The changes after `revision`, oldest first, or `Gone` when the history no longer
    /// reaches back that far.
    pub fn changes_since(&self, revision: u64) -> Result<Vec<Change>> {
        if revision < self.compacted {
            return Err(ApiError::Gone {
                requested: revision,
                oldest: self.compacted,
            });
        }
        Ok(self
            .history
            .iter()
            .filter(|c| c.revision > revision)
            .cloned()
            .collect())
    }

    /// Every selected object of `rt` as a synthetic ADDED change, as a watch without a
    /// resourceVersion (or with `0`) starts.
    pub fn current_as_added(
        &self,
        rt: &'static ResourceType,
        selection: &Selection,
    ) -> Vec<Change> {
        let resource = index_of(rt);
        self.objects
            .iter()
            .filter(|(k, v)| k.resource == resource && selection.matches(v))
            .map(|(_, v)| Change {
                change: ChangeType::Added,
                resource: rt,
                revision: v["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                object: v.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::standin::resources::find;

    fn fresh() -> Fresh {
        Fresh {
            now: "2026-11-20T10:00:00Z".to_owned(),
            uid: "uid-1".to_owned(),
            name_suffix: "x7k2p".to_owned(),
        }
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [1, 2]}), json!({"a": [3]}), json!({"a": [3]})),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!(["a"]), json!({"a": "b"}), json!({"a": "b"})),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "{patch}");
        }
    }

    #[test]
    fn create_get_update_delete_with_resource_versions() {
        let cm = find("", "v1", "configmaps").unwrap();
        let mut store = ObjectStore::new();
        let start = store.revision();
        let (created, _) = store
            .create(
                cm,
                Some("default"),
                json!({"metadata": {"name": "cfg"}, "data": {"a": "1"}}),
                &fresh(),
            )
            .unwrap();
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(
            created["metadata"]["resourceVersion"],
            (start + 1).to_string()
        );
        let again = store.create(
            cm,
            Some("default"),
            json!({"metadata": {"name": "cfg"}}),
            &fresh(),
        );
        assert_eq!(again.unwrap_err().code(), 409);
        let missing_ns = store.create(
            cm,
            Some("nope"),
            json!({"metadata": {"name": "cfg"}}),
            &fresh(),
        );
        assert_eq!(
            missing_ns.unwrap_err().to_string(),
            "namespaces \"nope\" not found"
        );

        let mut stale = created.clone();
        stale["data"]["a"] = json!("2");
        let (updated, change) = store
            .update(cm, Some("default"), "cfg", stale.clone())
            .unwrap();
        assert_eq!(change.change, ChangeType::Modified);
        assert_eq!(updated["data"]["a"], "2");
        // The same resourceVersion again is now stale.
        let conflict = store.update(cm, Some("default"), "cfg", stale).unwrap_err();
        assert_eq!(conflict.code(), 409);
        assert_eq!(conflict.status()["reason"], "Conflict");

        let (items, rv) = store.list(cm, &Selection::default());
        assert_eq!(items.len(), 1);
        assert!(
            items[0].get("kind").is_none(),
            "list items come without kind"
        );
        assert_eq!(rv, store.revision());

        let (deleted, changes) = store.delete(cm, Some("default"), "cfg").unwrap();
        assert_eq!(deleted["metadata"]["name"], "cfg");
        assert_eq!(changes[0].change, ChangeType::Deleted);
        let gone = store.get(cm, Some("default"), "cfg").unwrap_err();
        assert_eq!(gone.status()["code"], 404);
        assert_eq!(
            gone.status()["details"],
            json!({"name": "cfg", "kind": "configmaps"})
        );
    }

    #[test]
    fn generate_name_status_and_generation() {
        let deploy = find("apps", "v1", "deployments").unwrap();
        let mut store = ObjectStore::new();
        let body = json!({"metadata": {"generateName": "web-"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}}, "status": {"replicas": 9}});
        let (created, _) = store
            .create(deploy, Some("default"), body, &fresh())
            .unwrap();
        assert_eq!(created["metadata"]["name"], "web-x7k2p");
        assert_eq!(created["metadata"]["generation"], 1);

        let patch = json!({"spec": {"replicas": 3}, "status": {"replicas": 1}});
        let (patched, _, _) = store
            .patch(
                deploy,
                Some("default"),
                "web-x7k2p",
                PatchKind::Merge,
                &patch,
                false,
                &fresh(),
            )
            .unwrap();
        assert_eq!(patched["spec"]["replicas"], 3);
        assert_eq!(
            patched["status"]["replicas"], 9,
            "main resource writes keep status"
        );
        assert_eq!(patched["metadata"]["generation"], 2);

        let (status, _, _) = store
            .patch(
                deploy,
                Some("default"),
                "web-x7k2p",
                PatchKind::Merge,
                &json!({"status": {"replicas": 3}, "spec": {"replicas": 7}}),
                true,
                &fresh(),
            )
            .unwrap();
        assert_eq!(status["status"]["replicas"], 3);
        assert_eq!(status["spec"]["replicas"], 3, "status writes keep spec");

        let (scale, _) = store
            .patch_scale(
                deploy,
                Some("default"),
                "web-x7k2p",
                &json!({"spec": {"replicas": 5}}),
            )
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 5);
        assert_eq!(scale["status"]["selector"], "app=web");
        assert_eq!(
            store.get(deploy, Some("default"), "web-x7k2p").unwrap()["spec"]["replicas"],
            5
        );
    }

    #[test]
    fn apply_creates_and_merge_needs_an_object() {
        let lease = find("coordination.k8s.io", "v1", "leases").unwrap();
        let mut store = ObjectStore::new();
        let apply = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": "a"}});
        let (_, change, created) = store
            .patch(
                lease,
                Some("default"),
                "ctrl",
                PatchKind::Apply,
                &apply,
                false,
                &fresh(),
            )
            .unwrap();
        assert!(created);
        assert_eq!(change.change, ChangeType::Added);
        let err = store
            .patch(
                lease,
                Some("default"),
                "other",
                PatchKind::Merge,
                &apply,
                false,
                &fresh(),
            )
            .unwrap_err();
        assert_eq!(err.code(), 404);
        let wrong_kind = json!({"kind": "Pod"});
        let err = store
            .patch(
                lease,
                Some("default"),
                "ctrl",
                PatchKind::Merge,
                &wrong_kind,
                false,
                &fresh(),
            )
            .unwrap_err();
        assert_eq!(err.code(), 400);
    }

    #[test]
    fn deleting_a_namespace_deletes_its_objects_and_watches_resume() {
        let ns = find("", "v1", "namespaces").unwrap();
        let pods = find("", "v1", "pods").unwrap();
        let mut store = ObjectStore::new();
        store
            .create(ns, None, json!({"metadata": {"name": "shop"}}), &fresh())
            .unwrap();
        let before = store.revision();
        store
            .create(
                pods,
                Some("shop"),
                json!({"metadata": {"name": "web-0", "labels": {"app": "web"}}}),
                &fresh(),
            )
            .unwrap();
        store
            .create(
                pods,
                Some("shop"),
                json!({"metadata": {"name": "db-0", "labels": {"app": "db"}}}),
                &fresh(),
            )
            .unwrap();
        let selection = Selection {
            labels: LabelSelector::parse("app=web").unwrap(),
            ..Selection::default()
        };
        assert_eq!(store.list(pods, &selection).0.len(), 1);
        let (_, changes) = store.delete(ns, None, "shop").unwrap();
        assert_eq!(changes.len(), 3);
        let since = store.changes_since(before).unwrap();
        let kinds: Vec<_> = since.iter().map(|c| (c.change, c.resource.kind)).collect();
        assert_eq!(
            kinds,
            [
                (ChangeType::Added, "Pod"),
                (ChangeType::Added, "Pod"),
                (ChangeType::Deleted, "Pod"),
                (ChangeType::Deleted, "Pod"),
                (ChangeType::Deleted, "Namespace"),
            ]
        );
        assert!(store.list(pods, &Selection::default()).0.is_empty());
    }
}
