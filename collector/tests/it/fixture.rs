//! Audit events in kube-apiserver's real formats, and a database to put them in.

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Value, json};
use whakapapa_collector::audit;
use whakapapa_collector::ingest::Converter;
use whakapapa_collector::mapping::Mapper;
use whakapapa_collector::store::{self, Batch, ReleaseId, RequestRecord, RunId, Store};
use whakapapa_collector::wire::{Frame, user_agent};

use crate::events;

/// One audit event as the log backend writes it (`apiVersion` v1 or v1beta1).
#[derive(Debug, Clone)]
pub struct Ev {
    pub api: &'static str,
    pub audit_id: String,
    pub stage: &'static str,
    pub verb: &'static str,
    pub uri: String,
    pub user_agent: Option<String>,
    /// Seconds after 2026-11-20T10:00:00Z, as received.
    pub at: f64,
    /// Latency in seconds (stageTimestamp − requestReceivedTimestamp).
    pub latency: f64,
    pub code: Option<u16>,
}

impl Ev {
    pub fn new(audit_id: &str, stage: &'static str, verb: &'static str, uri: &str) -> Ev {
        Ev {
            api: "audit.k8s.io/v1",
            audit_id: audit_id.into(),
            stage,
            verb,
            uri: uri.into(),
            user_agent: Some("kubectl/v1.36.0 (linux/amd64) kubernetes/6f6b2a1".into()),
            at: 0.0,
            latency: if stage == "RequestReceived" {
                0.0
            } else {
                0.012
            },
            code: (stage != "RequestReceived").then_some(200),
        }
    }

    pub fn v1beta1(mut self) -> Ev {
        self.api = "audit.k8s.io/v1beta1";
        self
    }

    pub fn at(mut self, secs: f64) -> Ev {
        self.at = secs;
        self
    }

    pub fn ua(mut self, ua: &str) -> Ev {
        self.user_agent = Some(ua.into());
        self
    }

    pub fn code(mut self, code: u16) -> Ev {
        self.code = Some(code);
        self
    }

    pub fn json(&self) -> Value {
        let received = events::BASE_US + (self.at * 1e6) as i64;
        let staged = received + (self.latency * 1e6) as i64;
        let mut v = json!({
            "kind": "Event",
            "apiVersion": self.api,
            "level": "Metadata",
            "auditID": self.audit_id,
            "stage": self.stage,
            "requestURI": self.uri,
            "verb": self.verb,
            "user": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "sourceIPs": ["172.18.0.1"],
            "requestReceivedTimestamp": events::ts(received),
            "stageTimestamp": events::ts(staged),
        });
        if let Some(ua) = &self.user_agent {
            v["userAgent"] = json!(ua);
        }
        if let Some(code) = self.code {
            v["responseStatus"] = json!({"metadata": {}, "code": code});
        }
        if self.api.ends_with("v1beta1") {
            v["timestamp"] = json!(events::ts(staged));
            v["metadata"] = json!({"creationTimestamp": events::ts(staged)});
        }
        v
    }

    pub fn line(&self) -> String {
        serde_json::to_string(&self.json()).unwrap()
    }
}

/// JSON lines of events.
pub fn lines(evs: &[Ev]) -> String {
    evs.iter().map(|e| e.line() + "\n").collect()
}

/// A webhook `EventList` body.
pub fn event_list(evs: &[Ev]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "kind": "EventList",
        "apiVersion": "audit.k8s.io/v1",
        "metadata": {},
        "items": evs.iter().map(Ev::json).collect::<Vec<_>>(),
    }))
    .unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A database file in a fresh directory, with the 1.36 catalog stored.
pub struct Db {
    pub dir: tempfile::TempDir,
    pub store: Store,
    pub run: RunId,
    pub release: ReleaseId,
    pub mapper: Arc<Mapper>,
}

impl Db {
    pub fn new() -> Db {
        Db::with_options(store::Options::default())
    }

    pub fn with_options(options: store::Options) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("w.db"), options).unwrap();
        let catalog = events::catalog();
        let release = store
            .store_release_blocking(whakapapa_collector::ingest::spec::release_record(
                &catalog,
                "1.36.0".into(),
                b"{}".to_vec(),
                None,
            ))
            .unwrap();
        let run = store
            .begin_run_blocking("ingest", "test", Some(release))
            .unwrap();
        Db {
            dir,
            store,
            run,
            release,
            mapper: Arc::new(Mapper::new(&catalog)),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("w.db")
    }

    /// A batch of generated event lines (JSON, as the log backend writes them), converted by
    /// `c` (one converter across batches shares its records, as an ingest worker's does).
    pub fn batch_of_lines(&self, c: &mut Converter, lines: &[&[u8]]) -> Batch {
        Batch {
            run: self.run,
            release: Some(self.release),
            events: lines.len() as u64,
            requests: lines
                .iter()
                .map(|l| c.record(audit::parse_event(l).unwrap()))
                .collect(),
            malformed: Vec::new(),
        }
    }

    pub fn records(&self, evs: &[Ev]) -> Vec<RequestRecord> {
        let mut c = Converter::new(Some(self.mapper.clone()));
        evs.iter()
            .map(|e| c.record(audit::parse_event(e.line().as_bytes()).unwrap()))
            .collect()
    }

    pub fn apply(&self, evs: &[Ev]) -> store::BatchOutcome {
        self.store
            .apply_blocking(Batch {
                run: self.run,
                release: Some(self.release),
                events: evs.len() as u64,
                requests: self.records(evs),
                malformed: Vec::new(),
            })
            .unwrap()
    }

    pub fn counts(&self) -> store::read::Counts {
        store::read::counts(&self.store.reader().unwrap()).unwrap()
    }

    pub fn request(&self, audit_id: &str) -> Vec<store::read::RequestRow> {
        store::read::requests_by_audit_id(&self.store.reader().unwrap(), audit_id).unwrap()
    }
}

/// Fails if any row of the database at `path` refers to a row that does not exist (the writer
/// does not have SQLite enforce foreign keys: it holds to them by construction).
pub fn assert_foreign_keys_hold(path: &std::path::Path) {
    let conn = store::open_reader(path).unwrap();
    let mut check = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let broken: Vec<(String, Option<i64>, String)> = check
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    assert!(
        broken.is_empty(),
        "rows that refer to no row (table, rowid, parent): {broken:?}"
    );
}

/// A whakapapa User-Agent as the library renders it, with frames innermost first.
pub fn whakapapa_ua(identity: &str, fp: u64, frames: &[(&str, &str, u32)]) -> String {
    let frames: Vec<Frame> = frames
        .iter()
        .map(|&(function, file, line)| Frame::new(function, file, line))
        .collect();
    user_agent::render(identity, None, fp, None, &frames)
}

/// The shop controller's identity, as its user agents carry it.
pub const SHOP: &str = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1";

/// The shop controller listing pods (`count_pods`, src/inventory.rs:42).
pub fn shop_list_pods() -> String {
    whakapapa_ua(
        SHOP,
        0xa1,
        &[
            (
                "kube_client::api::Api<K>::list",
                "kube-client-5.0.0/src/api/core_methods.rs",
                106,
            ),
            (
                "shop_controller::inventory::count_pods",
                "src/inventory.rs",
                42,
            ),
            ("shop_controller::reconcile", "src/main.rs", 17),
        ],
    )
}

/// The shop controller patching a config map (`record`, src/inventory.rs:60).
pub fn shop_patch_cm() -> String {
    whakapapa_ua(
        SHOP,
        0xa2,
        &[
            (
                "kube_client::api::Api<K>::patch",
                "kube-client-5.0.0/src/api/core_methods.rs",
                200,
            ),
            ("shop_controller::inventory::record", "src/inventory.rs", 60),
            ("shop_controller::reconcile", "src/main.rs", 17),
        ],
    )
}

/// The non-empty lines of `text`.
pub fn split_lines(text: &[u8]) -> Vec<&[u8]> {
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}
