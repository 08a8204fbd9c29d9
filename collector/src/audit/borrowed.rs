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
}

/// One audit event borrowing its strings from the input; see [`Event`] for the fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventRef<'a> {
    /// `audit.k8s.io/v1` or `audit.k8s.io/v1beta1`.
    #[serde(default, borrow)]
    pub api_version: Option<Text<'a>>,
    /// The audit level.
    pub level: Level,
    /// Unique per request.
    #[serde(rename = "auditID", borrow)]
    pub audit_id: Text<'a>,
    /// The stage.
    pub stage: Stage,
    /// The request URI: path and query.
    #[serde(rename = "requestURI", borrow)]
    pub request_uri: Text<'a>,
    /// The Kubernetes verb or lowercase HTTP method.
    #[serde(borrow)]
    pub verb: Text<'a>,
    /// The authenticated user.
    #[serde(borrow)]
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
    /// The object the request is about.
    #[serde(default, borrow)]
    pub object_ref: Option<ObjectRefRef<'a>>,
    /// The response status.
    #[serde(default, borrow)]
    pub response_status: Option<StatusRef<'a>>,
    /// When the apiserver received the request.
    #[serde(deserialize_with = "timestamp::required")]
    pub request_received_timestamp: jiff::Timestamp,
    /// When this stage was reached.
    #[serde(default, deserialize_with = "timestamp::optional")]
    pub stage_timestamp: Option<jiff::Timestamp>,
    /// The annotations we keep.
    #[serde(default, borrow)]
    pub annotations: AnnotationsRef<'a>,
}

impl EventRef<'_> {
    /// `requestReceivedTimestamp` in microseconds since the Unix epoch.
    pub fn received_us(&self) -> i64 {
        self.request_received_timestamp.as_microsecond()
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
            },
        }
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Through [`EventRef`], so there is one schema and one set of error messages.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        EventRef::deserialize(d).map(EventRef::into_owned)
    }
}
