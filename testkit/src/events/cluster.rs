//! A cluster's audit log as kube-apiserver writes it ([`super::Shape::Cluster`]): Go's JSON
//! (`&` as `\u0026`, quotes in annotations escaped), RBAC decision annotations, users with
//! their `extra`, failures with their status message, about 250 user agents of the programs a
//! cluster runs (kube-controller-manager's controllers, kubelets, kubectl, operators,
//! browsers, whakapapa agents), and requests over every endpoint of the catalog, watches and
//! lists with their query parameters.

use std::fmt::Write as _;
use std::io::Write as _;

use super::{Cursor, Events, json_escape, mix, request_path, ts};
use whakapapa_collector::wire::user_agent;

/// One program's identity, in parts, so that a build of it can be written
/// ([`super::Config::distinct_agents`]).
#[derive(Debug, Clone)]
struct Ident {
    name: String,
    version: String,
    /// `linux/amd64`; `None`: not client-go's shape.
    platform: Option<&'static str>,
    /// `kubernetes/abc1234`.
    source: Option<String>,
    /// kube-controller-manager's `/system:serviceaccount:kube-system:<controller>`.
    detail: Option<String>,
    /// A user agent of another shape, written as it is.
    raw: Option<String>,
}

impl Ident {
    fn client_go(name: &str, version: &str, platform: &'static str, source: String) -> Ident {
        Ident {
            name: name.to_owned(),
            version: version.to_owned(),
            platform: Some(platform),
            source: Some(source),
            detail: None,
            raw: None,
        }
    }

    fn raw(text: &str) -> Ident {
        Ident {
            // What names its objects (leases, pods, labels).
            name: text
                .split(['/', ' '])
                .next()
                .unwrap_or("tool")
                .to_lowercase(),
            version: String::new(),
            platform: None,
            source: None,
            detail: None,
            raw: Some(text.to_owned()),
        }
    }

    /// The identity text; with `build`, that of the program's CI build `build` (its own
    /// version and commit, or for another shape a build token after it).
    fn text(&self, build: Option<u64>) -> String {
        if let Some(raw) = &self.raw {
            return match build {
                Some(b) => format!("{raw} build/{b:x}"),
                None => raw.clone(),
            };
        }
        let mut out = format!("{}/{}", self.name, self.version);
        // A CI build's version, as `git describe` makes it.
        if let Some(b) = build {
            let _ = write!(out, "-ci.{b}+{:012x}", mix(b ^ 0xb1d) & 0xffff_ffff_ffff);
        }
        if let Some(p) = self.platform {
            let _ = write!(out, " ({p})");
        }
        if let Some(s) = &self.source {
            match build {
                // The commit of that build.
                Some(b) => {
                    let source = s.split_once('/').map_or(s.as_str(), |(src, _)| src);
                    let _ = write!(out, " {source}/{:07x}", mix(b ^ 0xc0) & 0xfff_ffff);
                }
                None => {
                    out.push(' ');
                    out.push_str(s);
                }
            }
        }
        if let Some(d) = &self.detail {
            out.push('/');
            out.push_str(d);
        }
        out
    }
}

/// Who a program authenticates as.
#[derive(Debug, Clone)]
struct Account {
    /// `system:serviceaccount:kube-system:deployment-controller`; kubelets: `system:node:` and
    /// their node.
    name: String,
    /// The groups' JSON array; empty for a service account's.
    groups: &'static str,
    /// What authorised it: `(ClusterRoleBinding, ClusterRole, subject)` for RBAC, `None` for
    /// the Node authorizer (which gives no reason).
    rbac: Option<(String, String, String)>,
    /// The source IP's first three parts.
    net: &'static str,
}

#[derive(Debug, Clone)]
struct Agent {
    ident: Ident,
    account: Account,
    /// A whakapapa agent: its program number (frames and fingerprints are derived from it).
    whakapapa: Option<usize>,
    /// Distinct nodes it runs on (kubelets: one user each).
    nodes: u64,
}

/// The cluster's programs, busiest first.
#[derive(Debug, Clone)]
pub(super) struct Cluster {
    agents: Vec<Agent>,
}

/// A service account's groups are written with its namespace.
const SA_GROUPS: &str = "";
const NODE_GROUPS: &str = r#"["system:nodes","system:authenticated"]"#;
const HUMAN_GROUPS: &str = r#"["oidc:platform-team","system:authenticated"]"#;

const CONTROLLERS: [&str; 34] = [
    "attachdetach-controller",
    "bootstrap-signer",
    "certificate-controller",
    "clusterrole-aggregation-controller",
    "cronjob-controller",
    "daemon-set-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoint-controller",
    "endpointslice-controller",
    "endpointslicemirroring-controller",
    "ephemeral-volume-controller",
    "expand-controller",
    "generic-garbage-collector",
    "horizontal-pod-autoscaler",
    "job-controller",
    "legacy-service-account-token-cleaner",
    "namespace-controller",
    "node-controller",
    "persistent-volume-binder",
    "pod-garbage-collector",
    "pv-protection-controller",
    "pvc-protection-controller",
    "replicaset-controller",
    "replication-controller",
    "resourceclaim-controller",
    "resourcequota-controller",
    "root-ca-cert-publisher",
    "service-account-controller",
    "service-controller",
    "statefulset-controller",
    "token-cleaner",
    "ttl-after-finished-controller",
    "ttl-controller",
];

/// Operators and add-ons: (program, version, source of its commit, namespace).
const OPERATORS: [(&str, &str, &str, &str); 40] = [
    ("coredns", "v1.12.1", "coredns", "kube-system"),
    ("kube-proxy", "v1.36.3", "kubernetes", "kube-system"),
    ("cilium-agent", "v1.16.4", "cilium", "kube-system"),
    (
        "cilium-operator-generic",
        "v1.16.4",
        "cilium",
        "kube-system",
    ),
    ("csi-provisioner", "v5.1.0", "kubernetes-csi", "kube-system"),
    ("csi-attacher", "v4.7.0", "kubernetes-csi", "kube-system"),
    ("csi-resizer", "v1.12.0", "kubernetes-csi", "kube-system"),
    ("csi-snapshotter", "v8.1.0", "kubernetes-csi", "kube-system"),
    (
        "snapshot-controller",
        "v8.1.0",
        "kubernetes-csi",
        "kube-system",
    ),
    ("metrics-server", "v0.7.2", "kubernetes-sigs", "kube-system"),
    ("cluster-autoscaler", "v1.31.0", "kubernetes", "kube-system"),
    (
        "kube-state-metrics",
        "v2.14.0",
        "kube-state-metrics",
        "monitoring",
    ),
    (
        "prometheus-operator",
        "v0.78.2",
        "prometheus-operator",
        "monitoring",
    ),
    ("prometheus", "v3.0.1", "prometheus", "monitoring"),
    ("grafana-agent", "v0.43.4", "grafana", "monitoring"),
    (
        "cert-manager-controller",
        "v1.16.2",
        "cert-manager",
        "cert-manager",
    ),
    (
        "cert-manager-cainjector",
        "v1.16.2",
        "cert-manager",
        "cert-manager",
    ),
    (
        "cert-manager-webhook",
        "v1.16.2",
        "cert-manager",
        "cert-manager",
    ),
    (
        "nginx-ingress-controller",
        "v1.12.0",
        "ingress-nginx",
        "ingress-nginx",
    ),
    ("external-dns", "v0.15.0", "kubernetes-sigs", "external-dns"),
    (
        "argocd-application-controller",
        "v2.13.2",
        "argo-cd",
        "argocd",
    ),
    ("argocd-server", "v2.13.2", "argo-cd", "argocd"),
    ("argocd-repo-server", "v2.13.2", "argo-cd", "argocd"),
    (
        "argocd-applicationset-controller",
        "v2.13.2",
        "argo-cd",
        "argocd",
    ),
    ("source-controller", "v1.4.1", "fluxcd", "flux-system"),
    ("kustomize-controller", "v1.4.0", "fluxcd", "flux-system"),
    ("helm-controller", "v1.1.0", "fluxcd", "flux-system"),
    ("notification-controller", "v1.4.0", "fluxcd", "flux-system"),
    ("keda-operator", "v2.16.0", "kedacore", "keda"),
    ("pilot-discovery", "v1.24.2", "istio", "istio-system"),
    ("kyverno", "v1.13.2", "kyverno", "kyverno"),
    (
        "gatekeeper",
        "v3.18.1",
        "open-policy-agent",
        "gatekeeper-system",
    ),
    ("velero", "v1.15.1", "vmware-tanzu", "velero"),
    ("karpenter", "v1.1.1", "aws", "karpenter"),
    (
        "aws-load-balancer-controller",
        "v2.11.0",
        "aws",
        "kube-system",
    ),
    (
        "ebs-csi-driver",
        "v1.38.1",
        "kubernetes-sigs",
        "kube-system",
    ),
    (
        "node-problem-detector",
        "v0.8.20",
        "kubernetes",
        "kube-system",
    ),
    ("descheduler", "v0.32.0", "kubernetes-sigs", "kube-system"),
    (
        "vertical-pod-autoscaler",
        "v1.2.1",
        "kubernetes",
        "kube-system",
    ),
    ("trivy-operator", "v0.23.0", "aquasecurity", "trivy-system"),
];

/// What else talks to an API server: browsers, scripts, Helm, probes (not client-go's shape).
const OTHERS: [&str; 12] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Helm/3.16.3",
    "Helm/3.15.4",
    "Go-http-client/2.0",
    "Go-http-client/1.1",
    "curl/8.11.0",
    "python-requests/2.32.3",
    "OpenAPI-Generator/31.0.0/python",
    "kube-probe/1.36",
    "terraform-provider-kubernetes/2.35.0",
    "k9s/v0.32.7 (linux/amd64) kubernetes/unknown",
];

const KUBECTL: [(&str, &str); 16] = [
    ("v1.36.0", "darwin/arm64"),
    ("v1.36.0", "linux/amd64"),
    ("v1.36.1", "darwin/arm64"),
    ("v1.36.1", "linux/amd64"),
    ("v1.36.2", "darwin/arm64"),
    ("v1.36.3", "linux/amd64"),
    ("v1.35.4", "darwin/arm64"),
    ("v1.35.4", "linux/amd64"),
    ("v1.35.7", "windows/amd64"),
    ("v1.35.7", "darwin/amd64"),
    ("v1.34.2", "linux/amd64"),
    ("v1.34.2", "darwin/arm64"),
    ("v1.33.6", "linux/arm64"),
    ("v1.36.3", "darwin/arm64"),
    ("v1.36.3", "windows/amd64"),
    ("v1.35.0", "linux/amd64"),
];

/// Whakapapa agents in the cluster (each with the generator's call paths).
const WHAKAPAPA_AGENTS: usize = 10;

fn commit(seed: u64, what: &str) -> String {
    let h = what
        .bytes()
        .fold(seed, |h, b| mix(h ^ u64::from(b)).wrapping_add(1));
    format!("{:07x}", h & 0xfff_ffff)
}

fn sa(ns: &str, name: &str, role: &str) -> Account {
    Account {
        name: format!("system:serviceaccount:{ns}:{name}"),
        groups: SA_GROUPS,
        rbac: Some((role.to_owned(), role.to_owned(), format!("{name}/{ns}"))),
        net: "10.244.7",
    }
}

impl Cluster {
    pub(super) fn new(seed: u64) -> Cluster {
        let k8s = format!("kubernetes/{}", commit(seed, "kubernetes"));
        let mut agents = Vec::new();
        // Busiest first: kubelets (a user per node), the controllers, the scheduler.
        for (version, platform, nodes) in [
            ("v1.36.3", "linux/amd64", 40),
            ("v1.36.3", "linux/arm64", 12),
            ("v1.35.7", "linux/amd64", 8),
        ] {
            agents.push(Agent {
                ident: Ident::client_go("kubelet", version, platform, k8s.clone()),
                account: Account {
                    name: "system:node:".into(),
                    groups: NODE_GROUPS,
                    rbac: None,
                    net: "10.0.1",
                },
                whakapapa: None,
                nodes,
            });
        }
        for c in CONTROLLERS {
            let mut ident = Ident::client_go(
                "kube-controller-manager",
                "v1.36.3",
                "linux/amd64",
                k8s.clone(),
            );
            ident.detail = Some(format!("system:serviceaccount:kube-system:{c}"));
            agents.push(Agent {
                ident,
                account: sa("kube-system", c, &format!("system:controller:{c}")),
                whakapapa: None,
                nodes: 1,
            });
        }
        for (name, detail, user) in [
            (
                "kube-controller-manager",
                "leader-election",
                "system:kube-controller-manager",
            ),
            ("kube-scheduler", "scheduler", "system:kube-scheduler"),
            ("kube-scheduler", "leader-election", "system:kube-scheduler"),
            ("kube-apiserver", "", "system:apiserver"),
        ] {
            let mut ident = Ident::client_go(name, "v1.36.3", "linux/amd64", k8s.clone());
            ident.detail = (!detail.is_empty()).then(|| detail.to_owned());
            agents.push(Agent {
                ident,
                account: Account {
                    name: user.to_owned(),
                    groups: r#"["system:authenticated"]"#,
                    rbac: Some((user.to_owned(), user.to_owned(), user.to_owned())),
                    net: "10.0.0",
                },
                whakapapa: None,
                nodes: 1,
            });
        }
        // Operators: most run one version, a few are halfway through an upgrade, and some
        // controllers write what they are after the commit as kube-controller-manager does.
        for (k, (name, version, source, ns)) in OPERATORS.iter().enumerate() {
            let src = format!("{source}/{}", commit(seed, name));
            let mut versions = vec![*version];
            if k % 4 == 0 {
                versions.push("v0.0.0-master+$Format:%H$");
            }
            for v in versions {
                for part in ["", "leader-election", "status-writer"]
                    .iter()
                    .take(1 + k % 3)
                {
                    let mut ident = Ident::client_go(name, v, "linux/amd64", src.clone());
                    ident.detail = (!part.is_empty()).then(|| part.to_string());
                    agents.push(Agent {
                        ident,
                        account: sa(ns, name, &format!("{name}-role")),
                        whakapapa: None,
                        nodes: 1,
                    });
                }
            }
        }
        for (k, (version, platform)) in KUBECTL.iter().enumerate() {
            agents.push(Agent {
                ident: Ident::client_go("kubectl", version, platform, k8s.clone()),
                account: Account {
                    name: format!("user-{k}@example.com"),
                    groups: HUMAN_GROUPS,
                    rbac: Some((
                        "platform-team-admin".into(),
                        "cluster-admin".into(),
                        "oidc:platform-team".into(),
                    )),
                    net: "192.168.40",
                },
                whakapapa: None,
                nodes: 1,
            });
        }
        for (k, text) in OTHERS.iter().enumerate() {
            agents.push(Agent {
                ident: Ident::raw(text),
                account: sa("default", &format!("tool-{k}"), "view"),
                whakapapa: None,
                nodes: 1,
            });
        }
        for w in 0..WHAKAPAPA_AGENTS {
            let name = format!("shop-{w}-controller");
            let mut ident = Ident::client_go(
                &name,
                &format!("v0.{}.1", w % 5),
                "linux/amd64",
                format!("git/{}", commit(seed, &name)),
            );
            ident.detail = None;
            agents.push(Agent {
                ident,
                account: sa("shop", &name, &format!("{name}-role")),
                whakapapa: Some(w),
                nodes: 1,
            });
        }
        // Spread the busy programs out: kubelets and controllers first, then the rest as they
        // come (`app_of` makes low numbers busier).
        Cluster { agents }
    }

    pub(super) fn len(&self) -> usize {
        self.agents.len()
    }

    /// Whether program `app` is a whakapapa agent (its number then).
    pub(super) fn whakapapa(&self, app: usize) -> Option<usize> {
        self.agents[app].whakapapa
    }

    /// Distinct user agents the log holds (without [`super::Config::distinct_agents`]).
    pub(super) fn user_agents(&self, purposes: usize) -> usize {
        self.agents
            .iter()
            .map(|a| if a.whakapapa.is_some() { purposes } else { 1 })
            .sum()
    }
}

const NAMESPACES: [&str; 12] = [
    "default",
    "kube-system",
    "shop",
    "payments",
    "monitoring",
    "ingress-nginx",
    "cert-manager",
    "argocd",
    "flux-system",
    "istio-system",
    "team-a",
    "team-b",
];

impl Events {
    /// Writes request `i` of a [`super::Shape::Cluster`] log.
    pub(super) fn write_cluster_request(&self, cluster: &Cluster, i: u64, out: &mut Vec<u8>) {
        let app = self.app_of(i);
        let agent = &cluster.agents[app];
        let r = mix(i ^ 0xc1a5 ^ self.config.seed);
        // A program calls its own few dozen endpoints; one request in eight goes anywhere in
        // the catalog (discovery, backups, policy engines), so every endpoint is reached.
        let call = self.cluster_call(i);
        let purpose = self.cluster_purpose(i);
        let t = if r.is_multiple_of(8) {
            (r >> 8) as usize % self.targets.len()
        } else {
            let p = mix(((app as u64) << 24) ^ ((call as u64) << 4) ^ 0x7a);
            if p % 10 < 4 {
                self.hot[(p >> 8) as usize % self.hot.len()]
            } else {
                (p >> 8) as usize % self.targets.len()
            }
        };
        let t = &self.targets[t];
        let ns = if t.namespaced && agent.account.name.contains(":kube-system:") {
            "kube-system"
        } else {
            NAMESPACES[(r >> 4) as usize % NAMESPACES.len()]
        };
        let name = match t.resource.as_deref() {
            Some("leases") => format!("{}-lease", agent.ident.name),
            Some("nodes") => format!("node-{}", (r >> 12) % 60),
            Some("pods") => format!(
                "web-{:08x}-{:05x}",
                mix(r >> 16) & 0xffff_ffff,
                (r >> 28) & 0xfffff
            ),
            _ => format!("obj-{}", (r >> 12) % 400),
        };
        let mut uri = request_path(&t.path, ns, &name, "metrics");
        let rv = 4_000_000 + (i / 3) % 2_000_000;
        let mut verb = t.verb;
        match verb {
            "list" if (r >> 20).is_multiple_of(4) => {
                verb = "watch";
                let timeout = 300 + (r >> 24) % 300;
                let _ = write!(
                    uri,
                    "?allowWatchBookmarks=true&resourceVersion={rv}&timeout={}m{}s&timeoutSeconds={timeout}&watch=true",
                    timeout / 60,
                    timeout % 60
                );
            }
            "list" if (r >> 20).is_multiple_of(3) => {
                let _ = write!(
                    uri,
                    "?labelSelector=app.kubernetes.io%2Fname%3D{}&limit=500&resourceVersion=0",
                    agent.ident.name
                );
            }
            "list" => uri.push_str("?limit=500&resourceVersion=0"),
            "patch" | "update" if t.subresource.as_deref() == Some("status") => {
                uri.push_str("?timeout=10s")
            }
            "patch" => {
                uri.push_str("?fieldManager=kubectl-client-side-apply&fieldValidation=Strict")
            }
            _ => {}
        }
        let code = match (r >> 40) % 200 {
            0..=3 if verb == "get" || verb == "delete" => 404,
            4..=5 if verb == "update" || verb == "patch" || verb == "create" => 409,
            6 => 403,
            7 if verb == "create" => 422,
            _ if verb == "create" => 201,
            _ => 200,
        };

        let build = self.config.distinct_agents.then_some(i);
        let identity = agent.ident.text(build);
        let ua = match agent.whakapapa {
            Some(w) => {
                let program = whakapapa_slot(w);
                let fp = self.fingerprint(program, purpose);
                user_agent::render(&identity, None, fp, None, &self.frames(program, purpose))
            }
            None => identity,
        };
        let audit_id = self.audit_id(i);
        let node = (r >> 32) % agent.nodes;
        let user = if agent.account.name.ends_with(':') {
            format!("{}node-{node}", agent.account.name)
        } else {
            agent.account.name.clone()
        };
        let uid = mix(app as u64 ^ 0x11d);
        let received = super::BASE_US + i as i64 * self.config.spacing_us;
        let latency = 300 + (r >> 32) as i64 % 30_000;
        let done = received + latency;

        let o = &mut Cursor(out);
        let _ = write!(
            o,
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"{audit_id}","stage":"ResponseComplete","requestURI":"{}","verb":"{verb}","user":{{"username":"{user}","uid":"{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}","groups":"#,
            json_escape(&uri),
            uid >> 32,
            (uid >> 16) & 0xffff,
            uid & 0xfff,
            (uid >> 12) & 0xfff,
            (uid >> 4) & 0xffff_ffff_ffff,
        );
        if agent.account.groups.is_empty() {
            // A service account: its namespace's group, and its token's credential (bound to
            // its pod, but for kube-controller-manager's controllers).
            let ns = agent.account.name.split(':').nth(2).unwrap_or("default");
            let _ = write!(
                o,
                r#"["system:serviceaccounts","system:serviceaccounts:{ns}","system:authenticated"],"extra":{{"authentication.kubernetes.io/credential-id":["JTI={:08x}-1f2e-4d3c-9b8a-{:012x}"]"#,
                uid as u32,
                uid >> 16 & 0xffff_ffff_ffff,
            );
            if agent.ident.name != "kube-controller-manager" {
                let _ = write!(
                    o,
                    r#","authentication.kubernetes.io/pod-name":["{}-{:05x}"]"#,
                    agent
                        .ident
                        .name
                        .to_lowercase()
                        .replace(['/', ' ', '.'], "-"),
                    uid & 0xfffff,
                );
            }
            o.0.extend_from_slice(b"}}");
        } else {
            let _ = write!(o, "{}}}", agent.account.groups);
        }
        let _ = write!(
            o,
            r#","sourceIPs":["{}.{}"],"userAgent":"{}""#,
            agent.account.net,
            2 + node % 250,
            json_escape(&ua)
        );
        if let Some(res) = &t.resource {
            let _ = write!(o, r#","objectRef":{{"resource":"{res}""#);
            if t.namespaced {
                let _ = write!(o, r#","namespace":"{ns}""#);
            }
            if t.named {
                let _ = write!(o, r#","name":"{name}""#);
            }
            if matches!(verb, "update" | "patch" | "delete") {
                let _ = write!(
                    o,
                    r#","uid":"{:08x}-2b3c-4d5e-8f70-{:012x}""#,
                    r as u32,
                    r >> 16
                );
            }
            if !t.group.is_empty() {
                let _ = write!(o, r#","apiGroup":"{}""#, t.group);
            }
            let _ = write!(o, r#","apiVersion":"{}""#, t.version);
            if matches!(verb, "update" | "patch") {
                let _ = write!(o, r#","resourceVersion":"{rv}""#);
            }
            if let Some(sub) = &t.subresource {
                let _ = write!(o, r#","subresource":"{sub}""#);
            }
            o.0.push(b'}');
        }
        let what = t.resource.as_deref().unwrap_or("resource");
        match code {
            404 => {
                let _ = write!(
                    o,
                    r#","responseStatus":{{"metadata":{{}},"status":"Failure","message":"{}","reason":"NotFound","details":{{"name":"{name}","kind":"{what}"}},"code":404}}"#,
                    json_escape(&format!("{what} \"{name}\" not found"))
                );
            }
            409 => {
                let _ = write!(
                    o,
                    r#","responseStatus":{{"metadata":{{}},"status":"Failure","message":"{}","reason":"Conflict","details":{{"name":"{name}","kind":"{what}"}},"code":409}}"#,
                    json_escape(&format!(
                        "Operation cannot be fulfilled on {what} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    ))
                );
            }
            403 => {
                let _ = write!(
                    o,
                    r#","responseStatus":{{"metadata":{{}},"status":"Failure","message":"{}","reason":"Forbidden","details":{{"kind":"{what}"}},"code":403}}"#,
                    json_escape(&format!(
                        "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{what}\" in API group \"{}\" in the namespace \"{ns}\"",
                        t.group
                    ))
                );
            }
            _ => {
                let _ = write!(o, r#","responseStatus":{{"metadata":{{}},"code":{code}}}"#);
            }
        }
        let _ = write!(
            o,
            r#","requestReceivedTimestamp":"{}","stageTimestamp":"{}","annotations":{{"authorization.k8s.io/decision":"{}","authorization.k8s.io/reason":"#,
            ts(received),
            ts(done),
            if code == 403 { "forbid" } else { "allow" },
        );
        let reason = match (&agent.account.rbac, code) {
            (_, 403) => String::new(),
            (Some((binding, role, subject)), _) if subject.contains('/') => format!(
                "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to ServiceAccount \"{subject}\""
            ),
            (Some((binding, role, subject)), _) if subject.starts_with("oidc:") => format!(
                "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to Group \"{subject}\""
            ),
            (Some((binding, role, subject)), _) => format!(
                "RBAC: allowed by ClusterRoleBinding \"{binding}\" of ClusterRole \"{role}\" to User \"{subject}\""
            ),
            (None, _) => String::new(),
        };
        let _ = write!(o, r#""{}""#, json_escape(&reason));
        if verb == "create" && what == "pods" {
            o.0.extend_from_slice(
                br#","pod-security.kubernetes.io/enforce-policy":"baseline:latest""#,
            );
        }
        if latency > 25_000 {
            let _ = write!(
                o,
                r#","apiserver.latency.k8s.io/etcd":"{}.{:03}ms","apiserver.latency.k8s.io/total":"{}.{:03}ms""#,
                latency * 3 / 4 / 1000,
                latency * 3 / 4 % 1000,
                latency / 1000,
                latency % 1000
            );
        }
        o.0.extend_from_slice(b"}}\n");
    }

    /// Which of its calls request `i` of a cluster's log is.
    fn cluster_call(&self, i: u64) -> usize {
        (mix(i ^ 0x5555 ^ self.config.seed) % 24) as usize
    }

    /// The call path of request `i` of a cluster's log, when a whakapapa agent sends it.
    pub(super) fn cluster_purpose(&self, i: u64) -> usize {
        self.cluster_call(i) % self.config.purposes_per_app.max(1)
    }

    /// The side-channel records of the cluster's whakapapa agents.
    pub(super) fn cluster_purposes(&self, cluster: &Cluster) -> Vec<(usize, String)> {
        cluster
            .agents
            .iter()
            .filter_map(|a| Some((whakapapa_slot(a.whakapapa?), a.ident.text(None))))
            .collect()
    }
}

/// A whakapapa agent's number among the generator's programs (for its frames and
/// fingerprints): above every other program's, so none shares them.
pub(super) fn whakapapa_slot(w: usize) -> usize {
    1_000_000 + w
}
