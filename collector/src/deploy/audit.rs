//! kube-apiserver's audit configuration: the policy, the static webhook backend's kubeconfig,
//! and the legacy dynamic `AuditSink`.
//!
//! The policy logs every request at `Metadata` level (user agent, audit ID, verb, URI, user,
//! status, never a body) and omits the `RequestReceived` stage: it carries nothing the
//! `ResponseComplete` stage does not, and dropping it halves what the webhook sends. Long
//! running requests (watches) still report `ResponseStarted`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use kube::config::Kubeconfig;
use serde_json::json;

use super::{AUDIT_WEBHOOK_PATH, Error, Options, SERVICE_PORT, base64, pki::Pki};

/// `audit.k8s.io/v1` `Policy` (Kubernetes does not publish it as an OpenAPI type).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Policy {
    /// Always `audit.k8s.io/v1`.
    pub api_version: String,
    /// Always `Policy`.
    pub kind: String,
    /// Stages never logged, whatever the rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit_stages: Vec<String>,
    /// Rules, the first match wins.
    pub rules: Vec<PolicyRule>,
}

/// One rule of a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PolicyRule {
    /// `None`, `Metadata`, `Request` or `RequestResponse`.
    pub level: String,
    /// Extra stages to omit for requests this rule matches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omit_stages: Vec<String>,
}

/// The policy: every request at `Metadata` level, without the `RequestReceived` stage.
pub fn policy() -> Policy {
    Policy {
        api_version: "audit.k8s.io/v1".to_owned(),
        kind: "Policy".to_owned(),
        omit_stages: vec!["RequestReceived".to_owned()],
        rules: vec![PolicyRule {
            level: "Metadata".to_owned(),
            omit_stages: Vec::new(),
        }],
    }
}

/// Name of the kubeconfig's cluster entry.
pub const KUBECONFIG_CLUSTER: &str = "whakapapa-collector";
/// Name of the kubeconfig's user entry (kube-apiserver's identity towards the collector).
pub const KUBECONFIG_USER: &str = "kube-apiserver";

/// The kubeconfig for `--audit-webhook-config-file`: the collector's audit URL, the CA that
/// signed its serving certificate, and the client certificate kube-apiserver presents.
pub fn webhook_kubeconfig(options: &Options, pki: &Pki) -> Result<Kubeconfig, Error> {
    // Built through serde: kube's AuthInfo keeps the key in a secrecy type this crate does not
    // depend on, and JSON is how kubeconfigs are defined anyway.
    let value = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": KUBECONFIG_CLUSTER,
            "cluster": {
                "server": options.audit_webhook_url(),
                "certificate-authority-data": base64(pki.ca_cert.as_bytes()),
            }
        }],
        "users": [{
            "name": KUBECONFIG_USER,
            "user": {
                "client-certificate-data": base64(pki.client_cert.as_bytes()),
                "client-key-data": base64(pki.client_key.as_bytes()),
            }
        }],
        "contexts": [{
            "name": "webhook",
            "context": {"cluster": KUBECONFIG_CLUSTER, "user": KUBECONFIG_USER}
        }],
        "current-context": "webhook",
    });
    serde_json::from_value(value).map_err(Error::Kubeconfig)
}

/// Label marking objects only legacy clusters use.
pub const LEGACY_LABEL: (&str, &str) = ("whakapapa.dev/legacy", "dynamic-audit-1.13-1.18");

/// `auditregistration.k8s.io/v1alpha1` `AuditSink`: dynamic audit, removed in Kubernetes 1.19.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditSink {
    /// Always `auditregistration.k8s.io/v1alpha1`.
    pub api_version: String,
    /// Always `AuditSink`.
    pub kind: String,
    /// Name, labels and annotations.
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// Policy and webhook.
    pub spec: AuditSinkSpec,
}

/// Spec of an [`AuditSink`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditSinkSpec {
    /// Level and stages sent to this sink.
    pub policy: AuditSinkPolicy,
    /// Where events go.
    pub webhook: AuditSinkWebhook,
}

/// Policy of an [`AuditSink`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditSinkPolicy {
    /// Audit level.
    pub level: String,
    /// Stages sent.
    pub stages: Vec<String>,
}

/// Webhook of an [`AuditSink`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditSinkWebhook {
    /// Rate limit of batches.
    pub throttle: AuditSinkThrottle,
    /// The collector's Service and the CA bundle, as for admission webhooks.
    pub client_config: k8s_openapi::api::admissionregistration::v1::WebhookClientConfig,
}

/// Throttle of an [`AuditSinkWebhook`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AuditSinkThrottle {
    /// Batches per second.
    pub qps: i64,
    /// Burst of batches.
    pub burst: i64,
}

/// The `AuditSink` for clusters 1.13–1.18 started with `--audit-dynamic-configuration`,
/// labelled [`LEGACY_LABEL`].
pub fn legacy_audit_sink(options: &Options, pki: &Pki) -> AuditSink {
    use k8s_openapi::api::admissionregistration::v1::{ServiceReference, WebhookClientConfig};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    AuditSink {
        api_version: "auditregistration.k8s.io/v1alpha1".to_owned(),
        kind: "AuditSink".to_owned(),
        metadata: ObjectMeta {
            name: Some(options.name.clone()),
            labels: Some(BTreeMap::from([(
                LEGACY_LABEL.0.to_owned(),
                LEGACY_LABEL.1.to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                "whakapapa.dev/note".to_owned(),
                "only for Kubernetes 1.13-1.18 with --audit-dynamic-configuration; \
                 use the static webhook (audit-webhook.kubeconfig) from 1.19 on"
                    .to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: AuditSinkSpec {
            policy: AuditSinkPolicy {
                level: "Metadata".to_owned(),
                stages: vec!["ResponseStarted".to_owned(), "ResponseComplete".to_owned()],
            },
            webhook: AuditSinkWebhook {
                throttle: AuditSinkThrottle { qps: 10, burst: 15 },
                client_config: WebhookClientConfig {
                    ca_bundle: Some(k8s_openapi::ByteString(pki.ca_cert.as_bytes().to_vec())),
                    service: Some(ServiceReference {
                        namespace: options.namespace.clone(),
                        name: options.name.clone(),
                        path: Some(AUDIT_WEBHOOK_PATH.to_owned()),
                        port: Some(i32::from(SERVICE_PORT)),
                    }),
                    url: None,
                },
            },
        },
    }
}
