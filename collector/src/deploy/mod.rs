//! Kubernetes manifests that deploy the collector as a cluster's audit webhook.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::deploy::{Options, pki::Pki, render};
//!
//! let options = Options::default();
//! let pki = Pki::generate(&options.server_names()).unwrap();
//! let manifests = render(&options, &pki).unwrap();
//! assert!(manifests.audit_policy.contains("level: Metadata"));
//! for (file, yaml) in manifests.files() {
//!     println!("# {file}\n{yaml}");
//! }
//! ```
//!
//! Every object is built as a typed value (k8s-openapi where Kubernetes publishes the type,
//! serde structs for the audit policy, kind's `Cluster` and the legacy `AuditSink`) and only
//! then written as YAML, so what is printed always parses back. Names, ports, paths, the CA
//! bundle and the secrets are derived from one [`Options`] in one place ([`Options`]'s
//! methods), so the pieces cannot disagree.

pub mod audit;
mod cluster;
pub mod kind;
pub mod pki;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

use pki::Pki;

/// Port the collector listens on inside its pod (HTTPS).
pub const CONTAINER_PORT: u16 = 8443;
/// Port of the collector's Service.
pub const SERVICE_PORT: u16 = 443;
/// Plain-HTTP port for side-channel records (`POST /purposes` only), in the pod and on the
/// Service: the whakapapa library posts them without TLS.
pub const SIDE_CHANNEL_PORT: u16 = 8080;
/// Path of the audit webhook on the collector (kube-apiserver POSTs `EventList`s there).
pub const AUDIT_WEBHOOK_PATH: &str = "/audit";
/// Path of the mutating admission webhook.
pub const MUTATE_PATH: &str = "/mutate";
/// Where the SQLite database lives in the pod (the PVC's mount).
pub const DATA_DIR: &str = "/var/lib/whakapapa";
/// Where the TLS secret is mounted in the pod.
pub const TLS_DIR: &str = "/etc/whakapapa/tls";
/// Where the token secret is mounted in the pod.
pub const TOKENS_DIR: &str = "/etc/whakapapa/tokens";
/// Where kind's control-plane node sees the audit policy and webhook kubeconfig.
pub const KIND_NODE_DIR: &str = "/etc/kubernetes/whakapapa";
/// File name of the audit policy.
pub const AUDIT_POLICY_FILE: &str = "audit-policy.yaml";
/// File name of the audit webhook kubeconfig.
pub const AUDIT_WEBHOOK_KUBECONFIG_FILE: &str = "audit-webhook.kubeconfig";

/// Errors in the options given to [`render`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A name is not a DNS-1123 label.
    #[error(
        "{what} {value:?} is not a DNS-1123 label (lowercase letters, digits and '-', at most 63)"
    )]
    Name {
        /// Which option.
        what: &'static str,
        /// The rejected value.
        value: String,
    },
    /// The opt-in label is not `key=value`.
    #[error("opt-in label {0:?} is not key=value with a valid label key and value")]
    OptInLabel(String),
    /// The storage size is not a Kubernetes quantity.
    #[error("storage size {0:?} is not a quantity such as 10Gi")]
    Storage(String),
    /// The fixed cluster IP is not an IP address.
    #[error("cluster ip {0:?} is not an ip address")]
    ClusterIp(String),
    /// The image is empty or contains whitespace.
    #[error("image {0:?} is not an image reference")]
    Image(String),
    /// The audit webhook URL is not https.
    #[error("audit webhook url {0:?} is not an https:// url")]
    AuditUrl(String),
    /// The webhook kubeconfig did not match kube's `Kubeconfig` type.
    #[error("cannot build the audit webhook kubeconfig")]
    Kubeconfig(#[source] serde_json::Error),
    /// A typed object could not be written as YAML.
    #[error("cannot write {what} as yaml")]
    Yaml {
        /// The object.
        what: &'static str,
        /// What went wrong.
        #[source]
        source: serde_saphyr::SerializeError,
    },
}

/// What to deploy and where; [`Options::default`] gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Namespace of the collector.
    pub namespace: String,
    /// Name of the Deployment, Service, ServiceAccount and the prefix of secrets.
    pub name: String,
    /// Container image of the collector.
    pub image: String,
    /// Size of the PVC holding the SQLite file.
    pub storage: String,
    /// Storage class of the PVC; the cluster's default when `None`.
    pub storage_class: Option<String>,
    /// `key=value` label that opts a namespace in to purpose injection.
    pub opt_in_label: String,
    /// Fixed ClusterIP of the Service, so kube-apiserver (on the host network, without
    /// cluster DNS) can reach the audit webhook; `None` lets the cluster pick one.
    pub cluster_ip: Option<String>,
    /// Audit webhook URL written in the kubeconfig; derived from the Service when `None`.
    pub audit_url: Option<String>,
    /// Directory on the machine running kind that holds the audit policy and webhook
    /// kubeconfig (mounted into the control-plane node).
    pub kind_host_dir: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            namespace: "whakapapa".to_owned(),
            name: "whakapapa-collector".to_owned(),
            image: "whakapapa-collector:latest".to_owned(),
            storage: "10Gi".to_owned(),
            storage_class: None,
            opt_in_label: "whakapapa.dev/purpose=enabled".to_owned(),
            cluster_ip: Some("10.96.96.96".to_owned()),
            audit_url: None,
            kind_host_dir: PathBuf::from("whakapapa-deploy"),
        }
    }
}

impl Options {
    /// Checks every option; [`render`] calls it first.
    pub fn validate(&self) -> Result<(), Error> {
        for (what, value) in [("namespace", &self.namespace), ("name", &self.name)] {
            if !is_dns_label(value) {
                return Err(Error::Name {
                    what,
                    value: value.clone(),
                });
            }
        }
        if self.image.is_empty()
            || self
                .image
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::Image(self.image.clone()));
        }
        if !is_quantity(&self.storage) {
            return Err(Error::Storage(self.storage.clone()));
        }
        if let Some(class) = &self.storage_class
            && !is_dns_subdomain(class)
        {
            return Err(Error::Name {
                what: "storage class",
                value: class.clone(),
            });
        }
        self.opt_in()?;
        if let Some(ip) = &self.cluster_ip
            && ip.parse::<IpAddr>().is_err()
        {
            return Err(Error::ClusterIp(ip.clone()));
        }
        if let Some(url) = &self.audit_url {
            let ok = url
                .parse::<http::Uri>()
                .ok()
                .is_some_and(|u| u.scheme_str() == Some("https") && u.authority().is_some());
            if !ok {
                return Err(Error::AuditUrl(url.clone()));
            }
        }
        Ok(())
    }

    /// The opt-in label split into key and value.
    pub fn opt_in(&self) -> Result<(&str, &str), Error> {
        let bad = || Error::OptInLabel(self.opt_in_label.clone());
        let (key, value) = self.opt_in_label.split_once('=').ok_or_else(bad)?;
        let (prefix, name) = match key.split_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, key),
        };
        let ok = prefix.is_none_or(is_dns_subdomain)
            && is_label_value(name)
            && !name.is_empty()
            && is_label_value(value);
        if ok { Ok((key, value)) } else { Err(bad()) }
    }

    /// The Service's in-cluster DNS name (`name.namespace.svc`).
    pub fn service_host(&self) -> String {
        format!("{}.{}.svc", self.name, self.namespace)
    }

    /// Names the serving certificate must be valid for: the Service's DNS names, the fixed
    /// ClusterIP, and localhost (for `kubectl port-forward`).
    pub fn server_names(&self) -> Vec<String> {
        let mut names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            self.name.clone(),
            format!("{}.{}", self.name, self.namespace),
            self.service_host(),
            format!("{}.cluster.local", self.service_host()),
        ];
        names.extend(self.cluster_ip.clone());
        names
    }

    /// The URL kube-apiserver posts audit batches to.
    pub fn audit_webhook_url(&self) -> String {
        if let Some(url) = &self.audit_url {
            return url.clone();
        }
        let host = match &self.cluster_ip {
            Some(ip) if ip.contains(':') => format!("[{ip}]"),
            Some(ip) => ip.clone(),
            None => self.service_host(),
        };
        format!("https://{host}:{SERVICE_PORT}{AUDIT_WEBHOOK_PATH}")
    }

    /// The URL injected into pods as `WHAKAPAPA_COLLECTOR_URL` (the plain side-channel port).
    pub fn collector_url(&self) -> String {
        format!("http://{}:{SIDE_CHANNEL_PORT}", self.service_host())
    }

    /// Name of the Secret holding the serving certificate and the client CA.
    pub fn tls_secret(&self) -> String {
        format!("{}-tls", self.name)
    }

    /// Name of the Secret holding the query API token.
    pub fn tokens_secret(&self) -> String {
        format!("{}-tokens", self.name)
    }
}

/// The rendered YAML documents.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Manifests {
    /// `audit.k8s.io/v1` Policy for `--audit-policy-file`.
    pub audit_policy: String,
    /// Kubeconfig for `--audit-webhook-config-file` (holds kube-apiserver's client key).
    pub audit_webhook_kubeconfig: String,
    /// Namespace, ServiceAccount, Secrets, PVC, Deployment, Service and the
    /// MutatingWebhookConfiguration, for `kubectl apply -f` (holds the serving key).
    pub collector: String,
    /// kind `Cluster` config wiring the audit webhook into kind's API server.
    pub kind_cluster: String,
    /// `AuditSink` for legacy clusters with dynamic audit (Kubernetes 1.13–1.18).
    pub legacy_audit_sink: String,
}

impl Manifests {
    /// Every document with the file name `manifests --out DIR` gives it.
    pub fn files(&self) -> [(&'static str, &str); 5] {
        [
            (AUDIT_POLICY_FILE, &self.audit_policy),
            (
                AUDIT_WEBHOOK_KUBECONFIG_FILE,
                &self.audit_webhook_kubeconfig,
            ),
            ("collector.yaml", &self.collector),
            ("kind-cluster.yaml", &self.kind_cluster),
            ("legacy-auditsink.yaml", &self.legacy_audit_sink),
        ]
    }
}

/// Renders every manifest for `options`, with certificates and token from `pki`.
pub fn render(options: &Options, pki: &Pki) -> Result<Manifests, Error> {
    options.validate()?;
    Ok(Manifests {
        audit_policy: to_yaml("audit policy", &audit::policy())?,
        audit_webhook_kubeconfig: to_yaml(
            "audit webhook kubeconfig",
            &audit::webhook_kubeconfig(options, pki)?,
        )?,
        collector: cluster::objects(options, pki)?,
        kind_cluster: to_yaml("kind cluster", &kind::cluster(options)?)?,
        legacy_audit_sink: to_yaml("audit sink", &audit::legacy_audit_sink(options, pki))?,
    })
}

fn to_yaml<T: Serialize>(what: &'static str, value: &T) -> Result<String, Error> {
    serde_saphyr::to_string(value).map_err(|source| Error::Yaml { what, source })
}

/// Base64 as Kubernetes writes `[]byte` fields (k8s-openapi's `ByteString` encoding).
fn base64(bytes: &[u8]) -> String {
    match serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec())) {
        Ok(serde_json::Value::String(text)) => text,
        // ByteString always serializes to a JSON string.
        _ => String::new(),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// A Kubernetes quantity as used for sizes: digits (with an optional fraction) and an
/// optional binary or decimal suffix.
fn is_quantity(s: &str) -> bool {
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let number_ok = !number.is_empty()
        && number.bytes().filter(|b| *b == b'.').count() <= 1
        && number.bytes().any(|b| b.is_ascii_digit());
    number_ok
        && matches!(
            suffix,
            "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "k" | "M" | "G" | "T" | "P" | "E"
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated() {
        let cases: Vec<(&str, Options)> = vec![
            (
                "namespace",
                Options {
                    namespace: "Whakapapa".into(),
                    ..Options::default()
                },
            ),
            (
                "name",
                Options {
                    name: "-collector".into(),
                    ..Options::default()
                },
            ),
            (
                "image",
                Options {
                    image: "a b".into(),
                    ..Options::default()
                },
            ),
            (
                "storage",
                Options {
                    storage: "10GB".into(),
                    ..Options::default()
                },
            ),
            (
                "storage",
                Options {
                    storage: "Gi".into(),
                    ..Options::default()
                },
            ),
            (
                "opt-in",
                Options {
                    opt_in_label: "whakapapa".into(),
                    ..Options::default()
                },
            ),
            (
                "opt-in",
                Options {
                    opt_in_label: "a/b/c=1".into(),
                    ..Options::default()
                },
            ),
            (
                "opt-in",
                Options {
                    opt_in_label: "k=-bad".into(),
                    ..Options::default()
                },
            ),
            (
                "cluster ip",
                Options {
                    cluster_ip: Some("10.96.96".into()),
                    ..Options::default()
                },
            ),
            (
                "audit url",
                Options {
                    audit_url: Some("http://10.0.0.1/audit".into()),
                    ..Options::default()
                },
            ),
        ];
        for (what, options) in cases {
            assert!(options.validate().is_err(), "{what}: {options:?} accepted");
        }
        let good = [
            Options::default(),
            Options {
                storage: "1.5Gi".into(),
                storage_class: Some("fast-ssd".into()),
                ..Options::default()
            },
            Options {
                opt_in_label: "purpose=on".into(),
                cluster_ip: None,
                ..Options::default()
            },
            Options {
                audit_url: Some("https://collector.example.com:8443/audit".into()),
                ..Options::default()
            },
        ];
        for options in good {
            options.validate().unwrap();
        }
    }

    #[test]
    fn urls_follow_the_service() {
        let o = Options::default();
        assert_eq!(o.audit_webhook_url(), "https://10.96.96.96:443/audit");
        assert_eq!(
            o.collector_url(),
            "http://whakapapa-collector.whakapapa.svc:8080"
        );
        let o = Options {
            cluster_ip: None,
            namespace: "obs".into(),
            ..Options::default()
        };
        assert_eq!(
            o.audit_webhook_url(),
            "https://whakapapa-collector.obs.svc:443/audit"
        );
        let o = Options {
            cluster_ip: Some("fd00::96".into()),
            ..Options::default()
        };
        assert_eq!(o.audit_webhook_url(), "https://[fd00::96]:443/audit");
        assert!(o.server_names().contains(&"fd00::96".to_owned()));
    }

    #[test]
    fn base64_matches_kubernetes_encoding() {
        assert_eq!(base64(b"whakapapa"), "d2hha2FwYXBh");
    }
}
