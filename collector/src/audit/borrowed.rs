//! Audit events that borrow their text from the input: the one schema every parse goes
//! through. [`Event`] is its owned form.
//!
//! An ingest worker converts each event straight into a store record, so an owned copy of
//! every string only to drop it after the conversion was most of the allocation work of a
//! parse. serde_json hands out borrowed strings when a JSON string has no escapes (nearly
//! always in audit logs; `\u0026` in query strings is the common exception, owned).

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::{Annotations, Event, Level, ObjectRef, Stage, Status, UserInfo, timestamp};

/// A JSON string of the input: borrowed when it had no escapes, owned when it had some.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    /// The text as an owned `String`.
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl Deref for Text<'_> {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(s: &'a str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    // The same words as `String`'s, so a bad value is reported as before.
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(s)))
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(s)))
    }
}

/// [`UserInfo`], borrowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRef<'a> {
    /// The user's name.
    #[serde(default, borrow)]
    pub username: Text<'a>,
    /// The user's UID.
    #[serde(default, borrow)]
    pub uid: Option<Text<'a>>,
    /// Groups the user belongs to.
    #[serde(default, borrow)]
    pub groups: Vec<Text<'a>>,
}

/// [`ObjectRef`], borrowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRefRef<'a> {
    /// Resource (plural) name.
    #[serde(default, borrow)]
    pub resource: Option<Text<'a>>,
    /// Namespace of the object.
    #[serde(default, borrow)]
    pub namespace: Option<Text<'a>>,
    /// Name of the object.
    #[serde(default, borrow)]
    pub name: Option<Text<'a>>,
    /// UID of the object.
    #[serde(default, borrow)]
    pub uid: Option<Text<'a>>,
    /// API group.
    #[serde(default, borrow)]
    pub api_group: Option<Text<'a>>,
    /// API version.
    #[serde(default, borrow)]
    pub api_version: Option<Text<'a>>,
    /// Resource version of the object.
    #[serde(default, borrow)]
    pub resource_version: Option<Text<'a>>,
    /// Subresource.
    #[serde(default, borrow)]
    pub subresource: Option<Text<'a>>,
}

/// [`Status`], borrowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusRef<'a> {
    /// HTTP status code.
    #[serde(default)]
    pub code: Option<i32>,
    /// `Success` or `Failure`.
    #[serde(default, borrow)]
    pub status: Option<Text<'a>>,
    /// Machine-readable reason.
    #[serde(default, borrow)]
    pub reason: Option<Text<'a>>,
    /// Human-readable message.
    #[serde(default, borrow)]
    pub message: Option<Text<'a>>,
}

/// [`Annotations`], borrowed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct AnnotationsRef<'a> {
    /// `authorization.k8s.io/decision`.
    #[serde(rename = "authorization.k8s.io/decision", default, borrow)]
    pub authorization_decision: Option<Text<'a>>,
    /// `k8s.io/deprecated`.
    #[serde(rename = "k8s.io/deprecated", default, borrow)]
    pub deprecated: Option<Text<'a>>,
    /// `k8s.io/removed-release`.
    #[serde(rename = "k8s.io/removed-release", default, borrow)]
    pub removed_release: Option<Text<'a>>,
}

/// One audit event borrowing its strings from the input; see [`Event`] for the fields.
///
/// Deserialized from any shape kube-apiserver has written (`audit.k8s.io/v1alpha1`, `v1beta1`,
/// `v1`) and resolved into one: see [`Event`] for what each field is when its source is absent.
/// `verb` and `requestURI` make an object an event; every other field is missing from some
/// version, level or stage (or from events other tools wrote) and optional.
///
/// The derive reads the fields as written into this struct (`remote = "Self"` makes it the
/// inherent `EventRef::deserialize`, which is therefore not the resolved read: call serde's
/// functions or `<EventRef as Deserialize>::deserialize`) and `resolve` fills in place what the
/// event's version lacks: a second struct to resolve from cost a copy per event on the ingest
/// path.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(remote = "Self", rename_all = "camelCase")]
pub struct EventRef<'a> {
    /// `audit.k8s.io/v1`, `v1beta1` or `v1alpha1`.
    #[serde(default, borrow)]
    pub api_version: Option<Text<'a>>,
    /// The audit level, absent in some old or hand-written events.
    #[serde(default)]
    pub level: Option<Level>,
    /// Unique per request: the event's, or one derived from the request when it has none.
    #[serde(default, rename = "auditID", borrow)]
    pub audit_id: Text<'a>,
    /// The stage (`ResponseComplete` when absent).
    #[serde(default = "final_stage")]
    pub stage: Stage,
    /// The Kubernetes verb or lowercase HTTP method.
    #[serde(borrow)]
    pub verb: Text<'a>,
    /// The request URI: path and query.
    #[serde(rename = "requestURI", borrow)]
    pub request_uri: Text<'a>,
    /// The authenticated user.
    #[serde(default, borrow)]
    pub user: UserRef<'a>,
    /// The impersonated user.
    #[serde(default, borrow)]
    pub impersonated_user: Option<UserRef<'a>>,
    /// Source IPs, client first.
    #[serde(default, rename = "sourceIPs", borrow)]
    pub source_ips: Vec<Text<'a>>,
    /// The User-Agent header.
    #[serde(default, borrow)]
    pub user_agent: Option<Text<'a>>,
    /// The object the request is about, its `apiGroup` split from a v1alpha1 `apiVersion`.
    #[serde(default, borrow)]
    pub object_ref: Option<ObjectRefRef<'a>>,
    /// The response status.
    #[serde(default, borrow)]
    pub response_status: Option<StatusRef<'a>>,
    /// When the apiserver received the request: `requestReceivedTimestamp`, else `timestamp`.
    #[serde(default, deserialize_with = "timestamp::optional")]
    pub request_received_timestamp: Option<jiff::Timestamp>,
    /// When this stage was reached: `stageTimestamp`, else `metadata.creationTimestamp`.
    #[serde(default, deserialize_with = "timestamp::optional")]
    pub stage_timestamp: Option<jiff::Timestamp>,
    /// The annotations we keep.
    #[serde(default, borrow)]
    pub annotations: AnnotationsRef<'a>,
    /// v1alpha1 and v1beta1: when the request was received, to the second (1.7 and 1.8 write
    /// nothing else; later releases write it beside `requestReceivedTimestamp`). Parsed only
    /// when the event has no `requestReceivedTimestamp`; `None` once resolved.
    #[serde(default, borrow)]
    timestamp: Option<Text<'a>>,
    /// v1alpha1 and v1beta1: `creationTimestamp` is the stage's time from 1.9 on, null before;
    /// `None` once resolved.
    #[serde(default, borrow)]
    metadata: Option<Meta<'a>>,
}

fn final_stage() -> Stage {
    Stage::ResponseComplete
}

/// The `metadata` (an `ObjectMeta`) of v1alpha1 and v1beta1 events.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta<'a> {
    #[serde(default, borrow)]
    creation_timestamp: Option<Text<'a>>,
}

/// `text` as a timestamp, for a field parsed only once it is known to be needed.
fn late_timestamp(field: &str, text: Option<Text<'_>>) -> Result<Option<jiff::Timestamp>, String> {
    text.map(|t| timestamp::parse(&t).map_err(|e| format!("invalid `{field}`: {e}")))
        .transpose()
}

impl EventRef<'_> {
    /// Reads the event as every version reads: the receive and stage times from the fields
    /// each version has (the fallbacks kube-apiserver's own v1alpha1 and v1beta1 conversions
    /// use), v1alpha1's `group/version` split, an ID for an event without one.
    fn resolve(&mut self) -> Result<(), String> {
        let timestamp = self.timestamp.take();
        let creation = self.metadata.take().and_then(|m| m.creation_timestamp);
        if self.request_received_timestamp.is_none() {
            self.request_received_timestamp = late_timestamp("timestamp", timestamp)?;
        }
        if self.stage_timestamp.is_none() {
            self.stage_timestamp = late_timestamp("metadata.creationTimestamp", creation)?;
        }
        if let Some(object) = &mut self.object_ref {
            object.split_group();
        }
        if self.audit_id.is_empty() {
            self.audit_id = Text(Cow::Owned(derived_audit_id(
                &self.verb,
                &self.request_uri,
                &self.user,
                self.impersonated_user.as_ref(),
                &self.source_ips,
                self.user_agent.as_deref(),
                self.request_received_timestamp,
            )));
        }
        Ok(())
    }
}

/// Prefix of the IDs [`derived_audit_id`] makes: never a UUID, so never a whakapapa Audit-ID.
pub(crate) const DERIVED_ID_PREFIX: &str = "no-audit-id:";

/// The ID of an event that has no `auditID`: a hash of what its stages share (verb, URI,
/// users, source IPs, user agent, receive time) and what tells requests apart, so the stages
/// of one request get one ID and the same event read again gets the same ID. Stable across
/// builds: it is stored.
fn derived_audit_id(
    verb: &str,
    uri: &str,
    user: &UserRef<'_>,
    impersonated: Option<&UserRef<'_>>,
    source_ips: &[Text<'_>],
    user_agent: Option<&str>,
    received: Option<jiff::Timestamp>,
) -> String {
    // FNV-1a over length-prefixed parts (no two lists of parts hash alike by concatenation),
    // then the SplitMix64 finaliser.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut part = |bytes: &[u8]| {
        for b in (bytes.len() as u64).to_le_bytes().iter().chain(bytes) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    part(verb.as_bytes());
    part(uri.as_bytes());
    part(user.username.as_bytes());
    part(impersonated.map_or(&b"\xff"[..], |u| u.username.as_bytes()));
    for ip in source_ips {
        part(ip.as_bytes());
    }
    part(user_agent.map_or(&b"\xff"[..], str::as_bytes));
    part(
        &received
            .map_or(i128::MIN, |t| t.as_nanosecond())
            .to_le_bytes(),
    );
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    format!("{DERIVED_ID_PREFIX}{h:016x}")
}

impl<'a> ObjectRefRef<'a> {
    /// v1alpha1 writes the group in `apiVersion` (`apps/v1`; Kubernetes 1.7 writes `/v1` for
    /// the core group) and has no `apiGroup`; later versions have both, `apiVersion` without
    /// a `/`, and omit the core group's empty `apiGroup`, as this does.
    fn split_group(&mut self) {
        let grouped = |v: &Text<'_>| v.contains('/');
        if self.api_group.is_none()
            && self.api_version.as_ref().is_some_and(grouped)
            && let Some(version) = self.api_version.take()
        {
            let (group, version) = version.split_last_slash();
            self.api_group = group.filter(|g| !g.is_empty());
            self.api_version = Some(version);
        }
    }
}

impl<'a> Text<'a> {
    /// `group/version` into `(Some(group), version)`; text without a `/` is all version.
    fn split_last_slash(self) -> (Option<Text<'a>>, Text<'a>) {
        match self.0 {
            Cow::Borrowed(s) => match s.rsplit_once('/') {
                Some((group, version)) => (Some(text(group)), text(version)),
                None => (None, text(s)),
            },
            Cow::Owned(s) => match s.rsplit_once('/') {
                Some((group, version)) => (
                    Some(Text(Cow::Owned(group.to_owned()))),
                    Text(Cow::Owned(version.to_owned())),
                ),
                None => (None, Text(Cow::Owned(s))),
            },
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventRef<'a> {
    /// The fields as written, then resolved (`EventRef::resolve`).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Resolved where it lies: the event is not copied out of the result and back.
        let mut event = EventRef::deserialize(d);
        if let Ok(e) = &mut event
            && let Err(why) = e.resolve()
        {
            return Err(de::Error::custom(why));
        }
        event
    }
}

impl EventRef<'_> {
    /// When the request was received, in microseconds since the Unix epoch, if the event says.
    pub fn received_us(&self) -> Option<i64> {
        self.request_received_timestamp.map(|t| t.as_microsecond())
    }

    /// The response status code, if the stage has one.
    pub fn status_code(&self) -> Option<i32> {
        self.response_status.as_ref().and_then(|s| s.code)
    }

    /// The owned event.
    pub fn into_owned(self) -> Event {
        Event {
            api_version: self.api_version.map(Text::into_owned),
            level: self.level,
            audit_id: self.audit_id.into_owned(),
            stage: self.stage,
            request_uri: self.request_uri.into_owned(),
            verb: self.verb.into_owned(),
            user: self.user.into_owned(),
            impersonated_user: self.impersonated_user.map(UserRef::into_owned),
            source_ips: self.source_ips.into_iter().map(Text::into_owned).collect(),
            user_agent: self.user_agent.map(Text::into_owned),
            object_ref: self.object_ref.map(|o| ObjectRef {
                resource: o.resource.map(Text::into_owned),
                namespace: o.namespace.map(Text::into_owned),
                name: o.name.map(Text::into_owned),
                uid: o.uid.map(Text::into_owned),
                api_group: o.api_group.map(Text::into_owned),
                api_version: o.api_version.map(Text::into_owned),
                resource_version: o.resource_version.map(Text::into_owned),
                subresource: o.subresource.map(Text::into_owned),
            }),
            response_status: self.response_status.map(|s| Status {
                code: s.code,
                status: s.status.map(Text::into_owned),
                reason: s.reason.map(Text::into_owned),
                message: s.message.map(Text::into_owned),
            }),
            request_received_timestamp: self.request_received_timestamp,
            stage_timestamp: self.stage_timestamp,
            annotations: Annotations {
                authorization_decision: self
                    .annotations
                    .authorization_decision
                    .map(Text::into_owned),
                deprecated: self.annotations.deprecated.map(Text::into_owned),
                removed_release: self.annotations.removed_release.map(Text::into_owned),
            },
        }
    }
}

impl UserRef<'_> {
    /// The owned user.
    pub fn into_owned(self) -> UserInfo {
        UserInfo {
            username: self.username.into_owned(),
            uid: self.uid.map(Text::into_owned),
            groups: self.groups.into_iter().map(Text::into_owned).collect(),
        }
    }
}

fn text(s: &str) -> Text<'_> {
    Text(Cow::Borrowed(s))
}

impl Event {
    /// The event as an [`EventRef`] borrowing from it.
    pub fn as_borrowed(&self) -> EventRef<'_> {
        fn user(u: &UserInfo) -> UserRef<'_> {
            UserRef {
                username: text(&u.username),
                uid: u.uid.as_deref().map(text),
                groups: u.groups.iter().map(|g| text(g)).collect(),
            }
        }
        EventRef {
            api_version: self.api_version.as_deref().map(text),
            level: self.level,
            audit_id: text(&self.audit_id),
            stage: self.stage,
            request_uri: text(&self.request_uri),
            verb: text(&self.verb),
            user: user(&self.user),
            impersonated_user: self.impersonated_user.as_ref().map(user),
            source_ips: self.source_ips.iter().map(|s| text(s)).collect(),
            user_agent: self.user_agent.as_deref().map(text),
            object_ref: self.object_ref.as_ref().map(|o| ObjectRefRef {
                resource: o.resource.as_deref().map(text),
                namespace: o.namespace.as_deref().map(text),
                name: o.name.as_deref().map(text),
                uid: o.uid.as_deref().map(text),
                api_group: o.api_group.as_deref().map(text),
                api_version: o.api_version.as_deref().map(text),
                resource_version: o.resource_version.as_deref().map(text),
                subresource: o.subresource.as_deref().map(text),
            }),
            response_status: self.response_status.as_ref().map(|s| StatusRef {
                code: s.code,
                status: s.status.as_deref().map(text),
                reason: s.reason.as_deref().map(text),
                message: s.message.as_deref().map(text),
            }),
            request_received_timestamp: self.request_received_timestamp,
            stage_timestamp: self.stage_timestamp,
            annotations: AnnotationsRef {
                authorization_decision: self
                    .annotations
                    .authorization_decision
                    .as_deref()
                    .map(text),
                deprecated: self.annotations.deprecated.as_deref().map(text),
                removed_release: self.annotations.removed_release.as_deref().map(text),
            },
            timestamp: None,
            metadata: None,
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Through [`EventRef`], so there is one schema and one set of error messages.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // The trait's (resolved), not the derive's inherent `EventRef::deserialize`.
        <EventRef<'_> as Deserialize>::deserialize(d).map(EventRef::into_owned)
    }
}
