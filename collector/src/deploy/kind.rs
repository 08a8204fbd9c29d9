//! A kind cluster whose API server sends its audit events to the collector, as Kubernetes CI
//! conformance jobs wire auditing into kind.
//!
//! The policy and webhook kubeconfig live in a directory of the machine running kind
//! ([`Options::kind_host_dir`]); kind mounts it into the control-plane node, and a kubeadm
//! patch mounts it into the kube-apiserver static pod and passes the audit flags. The service
//! subnet is pinned so the Service's fixed ClusterIP is inside it: kube-apiserver runs on the
//! host network without cluster DNS, but kube-proxy routes ClusterIPs there.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{AUDIT_POLICY_FILE, AUDIT_WEBHOOK_KUBECONFIG_FILE, Error, KIND_NODE_DIR, Options};

/// kind's default service subnet, used when the Service has no fixed IPv4 ClusterIP.
pub const DEFAULT_SERVICE_SUBNET: &str = "10.96.0.0/16";

/// The /16 around the fixed ClusterIP, so the IP is always inside the cluster's subnet.
fn service_subnet(options: &Options) -> String {
    match options
        .cluster_ip
        .as_deref()
        .map(str::parse::<std::net::Ipv4Addr>)
    {
        Some(Ok(ip)) => format!("{}.{}.0.0/16", ip.octets()[0], ip.octets()[1]),
        _ => DEFAULT_SERVICE_SUBNET.to_owned(),
    }
}

/// kind's `Cluster` config (`kind.x-k8s.io/v1alpha4`), the fields used here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Cluster {
    /// Always `Cluster`.
    pub kind: String,
    /// Always `kind.x-k8s.io/v1alpha4`.
    pub api_version: String,
    /// Cluster networking.
    pub networking: Networking,
    /// Nodes, the control plane first.
    pub nodes: Vec<Node>,
}

/// kind's cluster networking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Networking {
    /// The Service CIDR.
    pub service_subnet: String,
}

/// A kind node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Node {
    /// `control-plane` or `worker`.
    pub role: String,
    /// Host directories mounted into the node container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_mounts: Vec<Mount>,
    /// kubeadm config patches, each a YAML document.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kubeadm_config_patches: Vec<String>,
}

/// A host path mounted into a kind node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Mount {
    /// Path on the machine running kind.
    pub host_path: String,
    /// Path inside the node.
    pub container_path: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// kubeadm `ClusterConfiguration` patch, unversioned: kind matches it by kind whatever kubeadm
/// API version it generates, and converts the `extraArgs` map to v1beta4's list of
/// `{name, value}` for Kubernetes 1.36+ (kind PR #4173), so one patch serves every release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterConfigurationPatch {
    /// Always `ClusterConfiguration`.
    pub kind: String,
    /// The API server's extra flags and volumes.
    pub api_server: ApiServer,
}

/// The `apiServer` part of a [`ClusterConfigurationPatch`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiServer {
    /// Flags without their leading `--`.
    pub extra_args: BTreeMap<String, String>,
    /// Host paths mounted into the kube-apiserver static pod.
    pub extra_volumes: Vec<HostPathMount>,
}

/// A kubeadm extra volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HostPathMount {
    /// Volume name.
    pub name: String,
    /// Path on the node.
    pub host_path: String,
    /// Path in the pod.
    pub mount_path: String,
    /// Mounted read-only.
    pub read_only: bool,
    /// Kind of host path.
    pub path_type: String,
}

/// The kubeadm patch that turns the audit webhook on in kube-apiserver.
pub fn api_server_patch() -> ClusterConfigurationPatch {
    let file = |name: &str| format!("{KIND_NODE_DIR}/{name}");
    ClusterConfigurationPatch {
        kind: "ClusterConfiguration".to_owned(),
        api_server: ApiServer {
            extra_args: BTreeMap::from([
                ("audit-policy-file".to_owned(), file(AUDIT_POLICY_FILE)),
                (
                    "audit-webhook-config-file".to_owned(),
                    file(AUDIT_WEBHOOK_KUBECONFIG_FILE),
                ),
                // kube-apiserver's defaults (batch mode, 400 events, 30 s wait); a shorter
                // wait makes a laptop's queries see requests within a second.
                ("audit-webhook-mode".to_owned(), "batch".to_owned()),
                ("audit-webhook-batch-max-size".to_owned(), "400".to_owned()),
                ("audit-webhook-batch-max-wait".to_owned(), "1s".to_owned()),
            ]),
            extra_volumes: vec![HostPathMount {
                name: "whakapapa-audit".to_owned(),
                host_path: KIND_NODE_DIR.to_owned(),
                mount_path: KIND_NODE_DIR.to_owned(),
                read_only: true,
                path_type: "Directory".to_owned(),
            }],
        },
    }
}

/// The kind cluster config for `options`.
pub fn cluster(options: &Options) -> Result<Cluster, Error> {
    let patch = serde_saphyr::to_string(&api_server_patch()).map_err(|source| Error::Yaml {
        what: "kubeadm patch",
        source,
    })?;
    Ok(Cluster {
        kind: "Cluster".to_owned(),
        api_version: "kind.x-k8s.io/v1alpha4".to_owned(),
        networking: Networking {
            service_subnet: service_subnet(options),
        },
        nodes: vec![Node {
            role: "control-plane".to_owned(),
            extra_mounts: vec![Mount {
                host_path: options.kind_host_dir.display().to_string(),
                container_path: KIND_NODE_DIR.to_owned(),
                read_only: true,
            }],
            kubeadm_config_patches: vec![patch],
        }],
    })
}
