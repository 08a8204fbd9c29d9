//! Audit events and side-channel records into the store's records: pure, no I/O.

use std::collections::HashMap;
use std::sync::Arc;

use crate::audit::{Event, Stage, UserInfo};
use crate::mapping::{Mapper, Mapping, UnmappedReason};
use crate::purpose::PurposeRecord;
use crate::store::{
    AgentRecord, FrameRecord, IdentityRecord, PurposeUpsert, RequestRecord, StageRank, TestRecord,
    UserRecord,
};
use crate::useragent::{self, Frame, Identity, TestInfo};

/// Distinct user agents remembered per converter before the cache starts afresh.
const AGENT_CACHE: usize = 16 * 1024;

/// Turns events into [`RequestRecord`]s: maps them to endpoints and parses each distinct user
/// agent once.
#[derive(Debug)]
pub struct Converter {
    mapper: Option<Arc<Mapper>>,
    agents: HashMap<String, Arc<AgentRecord>>,
}

impl Converter {
    /// A converter mapping with `mapper`; without one every request is `unmapped:unknown_release`.
    pub fn new(mapper: Option<Arc<Mapper>>) -> Converter {
        Converter {
            mapper,
            agents: HashMap::new(),
        }
    }

    /// The record of one event.
    pub fn record(&mut self, e: Event) -> RequestRecord {
        let mapping = match &self.mapper {
            Some(m) => m.map(&e.verb, &e.request_uri),
            None => Mapping::Unmapped(UnmappedReason::UnknownRelease),
        };
        let received_us = e.received_us();
        let agent = e.user_agent.as_deref().map(|ua| self.agent(ua));
        let fingerprint = agent
            .as_ref()
            .and_then(|a| a.fingerprint)
            .or_else(|| useragent::fingerprint_from_audit_id(&e.audit_id));
        let status_code = e.status_code().map(i64::from);
        let object = e.object_ref.unwrap_or_default();
        RequestRecord {
            received_us,
            stage: stage_rank(e.stage),
            stage_us: e.stage_timestamp.map(|t| t.as_microsecond()),
            endpoint_idx: mapping.endpoint().map(|i| i as u32),
            mapping: mapping.label().to_owned(),
            namespace: object.namespace,
            resource: object.resource,
            subresource: object.subresource,
            name: object.name,
            api_group: object.api_group,
            api_version: object.api_version,
            user: Some(user_record(e.user)),
            impersonated_user: e.impersonated_user.map(user_record),
            source_ips: (!e.source_ips.is_empty()).then(|| e.source_ips.join(",")),
            status_code,
            agent,
            fingerprint,
            audit_id: e.audit_id,
            verb: e.verb,
            request_uri: e.request_uri,
        }
    }

    fn agent(&mut self, ua: &str) -> Arc<AgentRecord> {
        if let Some(a) = self.agents.get(ua) {
            return a.clone();
        }
        if self.agents.len() >= AGENT_CACHE {
            self.agents.clear();
        }
        let parsed = useragent::parse(ua);
        let agent = Arc::new(AgentRecord {
            identity: identity_record(parsed.identity),
            test: parsed.test.map(test_record),
            fingerprint: parsed.fingerprint,
            frames: parsed.frames.into_iter().map(frame_record).collect(),
        });
        self.agents.insert(ua.to_owned(), agent.clone());
        agent
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

fn user_record(u: UserInfo) -> UserRecord {
    UserRecord {
        groups_json: serde_json::to_string(&u.groups).unwrap_or_else(|_| "[]".into()),
        name: u.username,
    }
}

fn identity_record(i: Identity) -> IdentityRecord {
    IdentityRecord {
        text: i.text,
        name: i.name,
        version: i.version,
        os: i.os,
        arch: i.arch,
        source: i.source,
        commit: i.commit,
        built_by: i.built_by,
        built_at: i.built_at,
    }
}

fn test_record(t: TestInfo) -> TestRecord {
    TestRecord {
        tags_json: serde_json::to_string(&t.tags).unwrap_or_else(|_| "[]".into()),
        name: t.name,
        sig: t.sig,
        conformance: t.conformance,
    }
}

fn frame_record(f: Frame) -> FrameRecord {
    FrameRecord {
        function: f.function,
        file: f.file,
        line: i64::from(f.line),
    }
}

/// The store's form of a side-channel purpose record.
pub fn purpose_upsert(r: PurposeRecord) -> PurposeUpsert {
    PurposeUpsert {
        fingerprint: r.fingerprint,
        identity: identity_record(r.identity),
        test: r.test.map(|name| test_record(TestInfo::parse(&name))),
        frames: r.frames.into_iter().map(frame_record).collect(),
        span: r.span,
        seen_at: r.seen_at.map(|t| t.to_string()),
    }
}
