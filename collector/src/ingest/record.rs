//! Audit events and side-channel records into the store's records: pure, no I/O.
//!
//! The ingest workers spend most of their time here, so the converter parses events borrowing
//! from the line and keeps what repeats across events parsed once, in caches: user agents
//! (whole, then their identity and test part), users.

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::Arc;

use whakapapa_wire::{Identity, Record, TestInfo, audit_id, user_agent};

use crate::audit::{self, AuditError, Event, EventRef, Stage, UserRef};
use crate::mapping::{Mapper, Mapping, UnmappedReason};
use crate::store::{
    AgentRecord, PurposeUpsert, RequestRecord, RequestText, RequestTexts, StageRank, UserRecord,
};

/// Distinct user agents remembered per converter before the cache starts afresh.
const AGENT_CACHE: usize = 16 * 1024;

/// Distinct identity-and-test parts of whakapapa user agents remembered per converter.
const HEAD_CACHE: usize = 4 * 1024;

/// Distinct users remembered per converter.
const USER_CACHE: usize = 4 * 1024;

/// A hash map with a fast hasher: keys are user agents and user names, hashed per event.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The identity and test of a user agent, shared by every agent that has them.
type Head = (Arc<Identity>, Option<Arc<TestInfo>>);

/// Turns events into [`RequestRecord`]s: maps them to endpoints and parses each distinct user
/// agent once.
#[derive(Debug)]
pub struct Converter {
    mapper: Option<Arc<Mapper>>,
    agents: AgentCache,
    heads: FastMap<Box<str>, Head>,
    users: FastMap<Box<[u8]>, Arc<UserRecord>>,
    /// The key of the user being looked up, reused.
    user_key: Vec<u8>,
    /// Source IPs being joined, reused.
    scratch: String,
}

impl Converter {
    /// A converter mapping with `mapper`; without one every request is `unmapped:unknown_release`.
    pub fn new(mapper: Option<Arc<Mapper>>) -> Converter {
        Converter {
            mapper,
            agents: AgentCache::default(),
            heads: FastMap::default(),
            users: FastMap::default(),
            user_key: Vec::new(),
            scratch: String::new(),
        }
    }

    /// Maps with `mapper` from now on.
    pub fn set_mapper(&mut self, mapper: Option<Arc<Mapper>>) {
        self.mapper = mapper;
    }

    /// The record of one line holding one event (a line of a log backend file).
    pub fn line(&mut self, line: &[u8]) -> Result<RequestRecord, AuditError> {
        audit::parse_event_ref(line).map(|e| self.record_ref(e))
    }

    /// The record of one event.
    pub fn record(&mut self, e: Event) -> RequestRecord {
        self.record_ref(e.as_borrowed())
    }

    /// The record of one borrowed event.
    pub fn record_ref(&mut self, e: EventRef<'_>) -> RequestRecord {
        let mapping = match &self.mapper {
            Some(m) => m.map(&e.verb, &e.request_uri),
            None => Mapping::Unmapped(UnmappedReason::UnknownRelease),
        };
        let agent = e.user_agent.as_deref().map(|ua| self.agent(ua));
        let fingerprint = agent
            .as_ref()
            .and_then(|a| a.fingerprint)
            .or_else(|| audit_id::decode(&e.audit_id));
        // An event that does not say when its request was received is stored as received at
        // 0 (the key is then its auditID alone), without a stage time: a latency needs both.
        let received_us = e.received_us();
        let object = e.object_ref.unwrap_or_default();
        let source_ips = match e.source_ips.as_slice() {
            [] => None,
            [one] => Some(&**one),
            several => {
                self.scratch.clear();
                for (i, ip) in several.iter().enumerate() {
                    if i > 0 {
                        self.scratch.push(',');
                    }
                    self.scratch.push_str(ip);
                }
                Some(self.scratch.as_str())
            }
        };
        let texts = RequestTexts::new(&RequestText {
            deprecation: deprecation(&e.annotations),
            audit_id: &e.audit_id,
            verb: &e.verb,
            request_uri: &e.request_uri,
            mapping: mapping.label(),
            namespace: object.namespace.as_deref(),
            resource: object.resource.as_deref(),
            subresource: object.subresource.as_deref(),
            name: object.name.as_deref(),
            api_group: object.api_group.as_deref(),
            api_version: object.api_version.as_deref(),
            source_ips,
        });
        RequestRecord {
            texts,
            received_us: received_us.unwrap_or(0),
            stage: stage_rank(e.stage),
            stage_us: received_us.and(e.stage_timestamp.map(|t| t.as_microsecond())),
            endpoint_idx: mapping.endpoint().map(|i| i as u32),
            user: Some(self.user(&e.user)),
            impersonated_user: e.impersonated_user.as_ref().map(|u| self.user(u)),
            status_code: e.response_status.and_then(|s| s.code).map(i64::from),
            agent,
            fingerprint,
        }
    }

    fn user(&mut self, u: &UserRef<'_>) -> Arc<UserRecord> {
        // Lengths first, so no name and groups can be confused with others.
        let key = &mut self.user_key;
        key.clear();
        for part in std::iter::once(&u.username).chain(&u.groups) {
            key.extend_from_slice(&(part.len() as u64).to_le_bytes());
            key.extend_from_slice(part.as_bytes());
        }
        if let Some(user) = self.users.get(&key[..]) {
            return user.clone();
        }
        if self.users.len() >= USER_CACHE {
            self.users.clear();
        }
        let user = Arc::new(UserRecord {
            name: u.username.to_string(),
            groups_json: serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into()),
        });
        self.users.insert(key[..].into(), user.clone());
        user
    }

    fn agent(&mut self, ua: &str) -> Arc<AgentRecord> {
        let hash = self.agents.hash(ua);
        if let Some(a) = self.agents.get(hash, ua) {
            return a.clone();
        }
        let agent = Arc::new(self.parse_agent(ua));
        self.agents.insert(hash, ua, agent.clone());
        agent
    }

    /// What [`user_agent::parse`] reads, with the identity and test of whakapapa user agents
    /// (one per program and test, shared by all its call stacks) parsed once: the split
    /// borrows from `ua`, and only a head not seen before is parsed.
    fn parse_agent(&mut self, ua: &str) -> AgentRecord {
        let split = user_agent::split(ua);
        let Some(tail) = split.tail else {
            return agent_record(split.parse());
        };
        let (identity, test) = match self.heads.get(split.head) {
            Some((identity, test)) => (identity.clone(), test.clone()),
            None => {
                if self.heads.len() >= HEAD_CACHE {
                    self.heads.clear();
                }
                let (identity, test) = split.identity_and_test();
                let head: Head = (Arc::new(identity), test.map(Arc::new));
                self.heads.insert(split.head.into(), head.clone());
                head
            }
        };
        let mut frames = Vec::with_capacity(tail.tokens.split(' ').count());
        frames.extend(tail.frames());
        AgentRecord {
            identity,
            test,
            fingerprint: Some(tail.fingerprint),
            frames,
        }
    }
}

/// Parsed user agents by their text. The texts are kept back to back in one buffer rather
/// than one allocation each: a miss per second event made those allocations (some over
/// 1 KiB, which makes glibc consolidate its free lists) and their frees a good part of the
/// cache's cost.
#[derive(Debug, Default)]
struct AgentCache {
    hasher: foldhash::fast::RandomState,
    /// A user agent's hash to its entry; a colliding newer entry replaces an older one.
    slots: FastMap<u64, u32>,
    /// Where each entry's text is in `texts`, and its agent.
    entries: Vec<(usize, usize, Arc<AgentRecord>)>,
    texts: String,
}

impl AgentCache {
    fn hash(&self, ua: &str) -> u64 {
        self.hasher.hash_one(ua)
    }

    fn get(&self, hash: u64, ua: &str) -> Option<&Arc<AgentRecord>> {
        let &i = self.slots.get(&hash)?;
        let (start, end, agent) = self.entries.get(i as usize)?;
        (self.texts.get(*start..*end) == Some(ua)).then_some(agent)
    }

    fn insert(&mut self, hash: u64, ua: &str, agent: Arc<AgentRecord>) {
        if self.entries.len() >= AGENT_CACHE {
            // Start afresh, keeping the buffers' room.
            self.slots.clear();
            self.entries.clear();
            self.texts.clear();
        }
        let start = self.texts.len();
        self.texts.push_str(ua);
        // Fewer than AGENT_CACHE entries: the index fits.
        self.slots.insert(hash, self.entries.len() as u32);
        self.entries.push((start, self.texts.len(), agent));
    }
}

/// [`RequestRecord::deprecation`] from the apiserver's annotations: it writes
/// `k8s.io/deprecated: "true"` on every request to a deprecated API version, and
/// `k8s.io/removed-release` beside it when a removal is planned.
fn deprecation<'a>(a: &'a audit::AnnotationsRef<'_>) -> Option<&'a str> {
    match (a.deprecated.as_deref(), a.removed_release.as_deref()) {
        (Some("false"), _) => None,
        (_, Some(removed)) => Some(removed.trim()),
        (Some("true"), None) => Some(""),
        _ => None,
    }
}

/// The store's rank of a stage.
pub fn stage_rank(stage: Stage) -> StageRank {
    match stage {
        Stage::RequestReceived => StageRank::RequestReceived,
        Stage::ResponseStarted => StageRank::ResponseStarted,
        Stage::ResponseComplete => StageRank::ResponseComplete,
        Stage::Panic => StageRank::Panic,
    }
}

/// The store's form of a parsed user agent.
fn agent_record(parsed: user_agent::UserAgent) -> AgentRecord {
    AgentRecord {
        identity: Arc::new(parsed.identity),
        test: parsed.test.map(Arc::new),
        fingerprint: parsed.fingerprint,
        frames: parsed.frames,
    }
}

/// The store's form of a side-channel purpose record.
pub fn purpose_upsert(r: Record) -> PurposeUpsert {
    let unresolved = (r.frames.is_empty() && !r.addresses.is_empty())
        .then(|| serde_json::to_string(&r).ok())
        .flatten();
    PurposeUpsert {
        unresolved,
        fingerprint: r.fingerprint,
        identity: r.identity,
        test: r.test.map(|name| TestInfo::parse(&name)),
        frames: r.frames,
        span: r.span,
        seen_at: r.seen_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use whakapapa_wire::{Frame, MARKER, TRUNCATED_SUFFIX};

    /// The agent record straight from [`user_agent::parse`]: what the caches must agree with.
    fn uncached(ua: &str) -> AgentRecord {
        agent_record(user_agent::parse(ua))
    }

    #[test]
    fn cached_user_agents_read_as_parsed_ones() {
        let id =
            "shop/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z";
        let frames = [
            Frame::new(
                "kube_client::api::Api<K>::list",
                "kube-client-5.0.0/src/api/core_methods.rs",
                106,
            ),
            Frame::new("shop::main", "src/main.rs", 17),
        ];
        let fp = 0x9c0e_4b7d_12aa_03f1;
        let full = user_agent::render(id, None, fp, None, &frames);
        let fp_end = full.find(" fp=").unwrap() + " fp=".len() + 16;
        let cut = |at: usize| format!("{}{TRUNCATED_SUFFIX}", &full[..at]);
        let cases = [
            full.clone(),
            // Same identity, another stack: the identity comes from the cache.
            user_agent::render(id, None, 0xff, None, &[Frame::new("shop::run", "src/run.rs", 3)]),
            user_agent::render(id, Some("tests::counts_pods"), fp, None, &frames),
            user_agent::render(id, Some("café 100%"), fp, None, &frames),
            user_agent::render(id, None, fp, Some("kubectl/1.36"), &frames),
            format!("{full} broken-token x@y:z"),
            cut(full.len() - 5),
            cut(fp_end),
            cut(fp_end - 2),
            full.replace(&format!("fp={fp:016x}"), "fp=not-hex-at-all!"),
            full[full.find(MARKER).unwrap()..].to_owned(),
            format!("{} ", full.replace(" kube_client", "  kube_client")),
            "kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234".to_owned(),
            "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-apps] Deployment [Conformance]".to_owned(),
            "curl/8.5.0".to_owned(),
            String::new(),
        ];
        let mut c = Converter::new(None);
        for round in 0..2 {
            for ua in &cases {
                assert_eq!(*c.agent(ua), uncached(ua), "round {round}: {ua}");
            }
        }
    }

    #[test]
    fn the_agent_cache_answers_only_for_the_same_text() {
        let mut cache = AgentCache::default();
        let agent = |ua: &str| Arc::new(uncached(ua));
        cache.insert(7, "a/1", agent("a/1"));
        assert_eq!(cache.get(7, "a/1"), Some(&agent("a/1")));
        // Another text with the same hash (a collision) is a miss, and then replaces it.
        assert_eq!(cache.get(7, "b/1"), None);
        cache.insert(7, "b/1", agent("b/1"));
        assert_eq!(cache.get(7, "b/1"), Some(&agent("b/1")));
        assert_eq!(cache.get(7, "a/1"), None);
        assert_eq!(cache.get(8, "b/1"), None);
        // Full: it starts afresh, and still answers right.
        let mut c = Converter::new(None);
        let ua = |i: usize| {
            user_agent::render(
                &format!("app-{i}/v1 (linux/amd64) git/abc"),
                None,
                i as u64,
                None,
                &[],
            )
        };
        for i in 0..AGENT_CACHE + 10 {
            c.agent(&ua(i));
        }
        assert!(c.agents.entries.len() <= AGENT_CACHE);
        for i in [0, 1, AGENT_CACHE - 1, AGENT_CACHE, AGENT_CACHE + 9] {
            assert_eq!(*c.agent(&ua(i)), uncached(&ua(i)), "{i}");
        }
    }

    #[test]
    fn users_are_told_apart_by_name_and_every_group() {
        let mut c = Converter::new(None);
        let user = |name: &'static str, groups: &[&'static str]| UserRef {
            username: name.into(),
            uid: None,
            groups: groups.iter().map(|&g| g.into()).collect(),
        };
        let cases = [
            (user("jane", &["devs", "ops"]), r#"["devs","ops"]"#),
            (user("jane", &["devs"]), r#"["devs"]"#),
            (user("jane", &["devs", "ops", ""]), r#"["devs","ops",""]"#),
            (user("janedevs", &["ops"]), r#"["ops"]"#),
            (user("jane", &[]), "[]"),
            (user("", &[]), "[]"),
            (user("q\"uote", &["back\\slash"]), r#"["back\\slash"]"#),
        ];
        for round in 0..2 {
            for (u, groups_json) in &cases {
                let got = c.user(u);
                assert_eq!(
                    (got.name.as_str(), got.groups_json.as_str()),
                    (&*u.username, *groups_json),
                    "round {round}"
                );
            }
        }
    }

    #[test]
    fn deprecation_annotations_are_kept() {
        let base = crate::audit::tests::V1_METADATA;
        let with = |annotations: &str| {
            base.replace(
                r#""annotations":{"#,
                &format!(r#""annotations":{{{annotations}"#),
            )
        };
        let cases = [
            (
                with(r#""k8s.io/deprecated":"true","k8s.io/removed-release":"1.25","#),
                Some("1.25"),
            ),
            (with(r#""k8s.io/deprecated":"true","#), Some("")),
            (with(r#""k8s.io/removed-release":"1.22","#), Some("1.22")),
            (
                with(r#""k8s.io/deprecated":"false","k8s.io/removed-release":"1.22","#),
                None,
            ),
            (base.to_owned(), None),
        ];
        let mut c = Converter::new(None);
        for (line, want) in cases {
            let r = c.line(line.as_bytes()).unwrap();
            assert_eq!(r.deprecation(), want, "{line}");
            // The texts before it are intact.
            assert_eq!(r.source_ips(), Some("10.244.0.3"));
        }
    }

    #[test]
    fn record_texts_keep_empty_apart_from_absent() {
        let text = RequestText {
            audit_id: "a",
            verb: "",
            request_uri: "/x",
            mapping: "non_resource",
            namespace: Some(""),
            resource: None,
            subresource: Some("status"),
            name: Some("n"),
            api_group: None,
            api_version: Some(""),
            source_ips: Some("10.0.0.1,10.0.0.2"),
            deprecation: None,
        };
        let texts = RequestTexts::new(&text);
        let r = Converter::new(None)
            .line(crate::audit::tests::V1_METADATA.as_bytes())
            .unwrap();
        let r = RequestRecord { texts, ..r };
        assert_eq!(
            (r.audit_id(), r.verb(), r.request_uri(), r.mapping()),
            ("a", "", "/x", "non_resource")
        );
        assert_eq!(
            (r.namespace(), r.resource(), r.subresource(), r.name()),
            (Some(""), None, Some("status"), Some("n"))
        );
        assert_eq!(
            (r.api_group(), r.api_version(), r.source_ips()),
            (None, Some(""), Some("10.0.0.1,10.0.0.2"))
        );
    }

    #[test]
    fn a_line_converts_to_the_record_of_its_event() {
        let ua = user_agent::render(
            "shop/v1 (linux/amd64) git/1",
            None,
            0x9c0e_4b7d_12aa_03f1,
            None,
            &[Frame::new("shop::main", "src/main.rs", 17)],
        );
        let line = crate::audit::tests::V1_METADATA
            .replace(
                r#""sourceIPs":["10.244.0.3"]"#,
                r#""impersonatedUser":{"username":"jane","groups":["devs"]},"sourceIPs":["10.0.0.1","10.0.0.2"]"#,
            )
            .replace(
                r#""userAgent":"coredns/v1.11.3 (linux/amd64) kubernetes/abc1234""#,
                &format!(r#""userAgent":"{ua}""#),
            );
        let mut c = Converter::new(None);
        let r = c.line(line.as_bytes()).unwrap();
        assert_eq!(r.audit_id(), "9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d");
        assert_eq!(
            (r.received_us, r.stage_us),
            (1_795_168_800_123_456, Some(1_795_168_800_127_001))
        );
        assert_eq!(r.stage, StageRank::ResponseComplete);
        assert_eq!(r.verb(), "list");
        // The JSON escape `\u0026` is decoded.
        assert_eq!(
            r.request_uri(),
            "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns&limit=500"
        );
        assert_eq!(
            (r.mapping(), r.endpoint_idx),
            ("unmapped:unknown_release", None)
        );
        assert_eq!(
            (r.namespace(), r.resource(), r.name()),
            (Some("kube-system"), Some("pods"), None)
        );
        assert_eq!((r.api_group(), r.api_version()), (None, Some("v1")));
        let user = r.user.as_deref().unwrap();
        assert_eq!(user.name, "system:serviceaccount:kube-system:coredns");
        assert_eq!(
            user.groups_json,
            r#"["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]"#
        );
        let jane = r.impersonated_user.as_deref().unwrap();
        assert_eq!(
            (jane.name.as_str(), jane.groups_json.as_str()),
            ("jane", r#"["devs"]"#)
        );
        assert_eq!(r.source_ips(), Some("10.0.0.1,10.0.0.2"));
        assert_eq!(r.subresource(), None);
        assert_eq!(r.status_code, Some(200));
        assert_eq!(r.fingerprint, Some(0x9c0e_4b7d_12aa_03f1));
        let agent = r.agent.as_deref().unwrap();
        assert_eq!(agent.identity.name.as_deref(), Some("shop"));
        assert_eq!(agent.frames[0].function, "shop::main");
        // The owned event (the webhook's path) gives the same record.
        let event = audit::parse_event(line.as_bytes()).unwrap();
        assert_eq!(Converter::new(None).record(event), r);
        // A bad line is the same error either way.
        assert_eq!(
            c.line(b"{}").unwrap_err(),
            audit::parse_event(b"{}").unwrap_err()
        );
    }
}
