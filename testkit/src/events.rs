//! Realistic generated audit events for benchmarks and tests: Metadata level, about 1 KB each,
//! request URIs over every endpoint of a catalog (plus non-resource and unknown paths), many
//! programs with client-go, e2e and whakapapa user agents.
//!
//! Deterministic: request `i` is always the same event, and its audit ID carries `i` in its
//! last 48 bits ([`Events::seq_of`]), so a test can tell which requests a database holds.
//! The collector's benches and integration tests share them (the `events` feature).
//!
//! Two shapes ([`Shape`]): the generator's own (the default, which the tests rely on) and a
//! cluster's log as kube-apiserver writes it ([`Config::cluster`]).

mod cluster;

use std::fmt::Write as _;
use std::io::{self, Write};

use whakapapa_collector::catalog::{Catalog, Method};
use whakapapa_collector::wire::{Frame, Identity, Record, audit_id, user_agent};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Config {
    /// Distinct programs (user agents).
    pub apps: usize,
    /// Distinct purposes (call stacks) per whakapapa program.
    pub purposes_per_app: usize,
    /// Events per request: 1 writes ResponseComplete only, 2 adds RequestReceived first.
    pub stages: usize,
    /// Every `v1beta1_every`-th event is written as audit.k8s.io/v1beta1.
    pub v1beta1_every: u64,
    /// Seed of everything random.
    pub seed: u64,
    /// Microseconds between requests.
    pub spacing_us: i64,
    /// Requests per reconcile (0: none): each run of this many requests is one program's
    /// call path, reaching the same endpoints in the same order every time, as a controller's
    /// loop does (otherwise every request picks its program and call path anew).
    pub episode_len: u64,
    /// What the events look like.
    pub shape: Shape,
    /// Every request's user agent is another one: each comes from its own build of its
    /// program (version and commit; another shape of user agent gets a build token), as in a
    /// log of many CI builds or from a client that randomises its user agent.
    pub distinct_agents: bool,
}

/// The shape of generated events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// The generator's own: `apps` programs (whakapapa, client-go and e2e user agents, a
    /// fifth of them e2e.test with a test per call path), two thirds of the requests on 60
    /// endpoints.
    #[default]
    Synthetic,
    /// A cluster's log as kube-apiserver writes it (`events/cluster.rs`): Go's JSON escapes,
    /// RBAC annotations, users with their `extra`, failures with their status, about 270 user
    /// agents of real programs (100 of them whakapapa agents' call paths), every endpoint
    /// reached, watches and lists with their parameters; `apps` and `v1beta1_every` are not
    /// used.
    Cluster,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            apps: 200,
            purposes_per_app: 20,
            stages: 1,
            v1beta1_every: 10,
            seed: 7,
            spacing_us: 50,
            episode_len: 0,
            shape: Shape::Synthetic,
            distinct_agents: false,
        }
    }
}

impl Config {
    /// The ingest benchmarks' log (`benches/ingest.rs`, `benches/convert.rs`): 1,000 programs,
    /// 100 call paths each.
    pub fn busy_log() -> Config {
        Config {
            apps: 1000,
            purposes_per_app: 100,
            ..Config::default()
        }
    }

    /// A cluster's log ([`Shape::Cluster`]): the ingest bench's cluster-shaped log, ten
    /// whakapapa agents with ten call paths each among the cluster's programs.
    pub fn cluster() -> Config {
        Config {
            shape: Shape::Cluster,
            purposes_per_app: 10,
            v1beta1_every: 0,
            ..Config::default()
        }
    }

    /// [`Config::cluster`] with another user agent on every request
    /// ([`Config::distinct_agents`]).
    pub fn cluster_distinct_agents() -> Config {
        Config {
            distinct_agents: true,
            ..Config::cluster()
        }
    }
}

/// 2026-11-20T10:00:00Z.
pub const BASE_US: i64 = 1_795_168_800_000_000;

#[derive(Debug, Clone)]
struct Target {
    verb: &'static str,
    path: String,
    list: bool,
    resource: Option<String>,
    subresource: Option<String>,
    group: String,
    version: String,
    namespaced: bool,
    named: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppKind {
    ClientGo,
    E2e,
    Whakapapa,
}

#[derive(Debug, Clone)]
struct App {
    kind: AppKind,
    identity: String,
    user: String,
}

/// A generator of events over one catalog.
#[derive(Debug, Clone)]
pub struct Events {
    config: Config,
    targets: Vec<Target>,
    hot: Vec<usize>,
    apps: Vec<App>,
    cluster: Option<cluster::Cluster>,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const NAMESPACES: [&str; 8] = [
    "default",
    "kube-system",
    "shop",
    "payments",
    "monitoring",
    "ingress-nginx",
    "cert-manager",
    "e2e-tests-deployment-4921",
];

const SIGS: [&str; 6] = [
    "sig-apps",
    "sig-node",
    "sig-network",
    "sig-storage",
    "sig-auth",
    "sig-api-machinery",
];

const CLIENT_GO: [&str; 6] = [
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "coredns",
    "cert-manager-controller",
    "argocd-application-controller",
];

impl Events {
    /// A generator over `catalog`'s endpoints.
    pub fn new(catalog: &Catalog, config: Config) -> Events {
        let targets: Vec<Target> = catalog.endpoints.iter().map(target).collect();
        // Real traffic is skewed: most requests hit a few dozen endpoints.
        let hot: Vec<usize> = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.group.is_empty() || t.group == "apps" || t.group == "coordination.k8s.io"
            })
            .map(|(i, _)| i)
            .take(60)
            .collect();
        let apps = (0..config.apps.max(1))
            .map(|k| app(k, config.seed))
            .collect();
        let cluster = (config.shape == Shape::Cluster).then(|| cluster::Cluster::new(config.seed));
        Events {
            config,
            targets,
            hot,
            apps,
            cluster,
        }
    }

    /// Distinct user agents the log holds (every request's own with
    /// [`Config::distinct_agents`]).
    pub fn user_agents(&self) -> Option<usize> {
        if self.config.distinct_agents {
            return None;
        }
        let purposes = self.config.purposes_per_app.max(1);
        Some(match &self.cluster {
            Some(c) => c.user_agents(purposes),
            None => self
                .apps
                .iter()
                .map(|a| match a.kind {
                    AppKind::ClientGo => 1,
                    AppKind::E2e | AppKind::Whakapapa => purposes,
                })
                .sum(),
        })
    }

    /// Number of catalog endpoints requests are spread over.
    pub fn endpoints(&self) -> usize {
        self.targets.len()
    }

    /// Events written per request.
    pub fn stages(&self) -> usize {
        self.config.stages
    }

    /// The audit ID of request `i`.
    pub fn audit_id(&self, i: u64) -> String {
        let app = self.app_of(i);
        if let Some(cluster) = &self.cluster {
            return match cluster.whakapapa(app) {
                Some(w) => audit_id::encode(
                    self.fingerprint(cluster::whakapapa_slot(w), self.cluster_purpose(i)),
                    (i & 0xffff_ffff_ffff) << 2,
                ),
                None => self.plain_audit_id(i),
            };
        }
        if self.apps[app].kind == AppKind::Whakapapa {
            let fp = self.fingerprint(app, self.purpose_of(i));
            // The random bits' last 48 carry `i`.
            audit_id::encode(fp, (i & 0xffff_ffff_ffff) << 2)
        } else {
            self.plain_audit_id(i)
        }
    }

    /// A random-looking UUID whose last 48 bits carry `i`.
    fn plain_audit_id(&self, i: u64) -> String {
        let r = mix(i ^ self.config.seed);
        format!(
            "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
            r >> 32,
            (r >> 16) & 0xffff,
            r & 0xfff,
            (r >> 12) & 0xfff,
            i & 0xffff_ffff_ffff
        )
    }

    /// The request number in an audit ID made by [`Events::audit_id`].
    pub fn seq_of(audit_id: &str) -> Option<u64> {
        u64::from_str_radix(audit_id.get(24..36)?, 16).ok()
    }

    /// What picks request `i`'s program and call path: the request, or its reconcile.
    fn pick(&self, i: u64) -> u64 {
        match self.config.episode_len {
            0 => i,
            n => i / n,
        }
    }

    fn app_of(&self, i: u64) -> usize {
        let apps = self.cluster.as_ref().map_or(self.apps.len(), |c| c.len());
        // Skewed: low-numbered programs are busier.
        let i = self.pick(i);
        let r = (mix(i.wrapping_mul(31) ^ self.config.seed) % 1_000_000) as f64 / 1_000_000.0;
        ((r * r) * apps as f64) as usize % apps
    }

    fn purpose_of(&self, i: u64) -> usize {
        let i = self.pick(i);
        (mix(i ^ 0x5555 ^ self.config.seed) % self.config.purposes_per_app.max(1) as u64) as usize
    }

    fn fingerprint(&self, app: usize, purpose: usize) -> u64 {
        mix(((app as u64) << 20) ^ purpose as u64 ^ self.config.seed ^ 0xf1f1)
    }

    /// The endpoint a program's purpose reaches (`None`: a non-resource or unknown path).
    fn target_of(&self, app: usize, purpose: usize, i: u64) -> Option<usize> {
        let step = match self.config.episode_len {
            0 => i % 3,
            n => i % n,
        };
        let r = mix(((app as u64) << 24) ^ ((purpose as u64) << 4) ^ step);
        match r % 100 {
            0..=1 => None,
            2..=69 => Some(self.hot[(r >> 8) as usize % self.hot.len()]),
            _ => Some((r >> 8) as usize % self.targets.len()),
        }
    }

    /// A call path's frames, innermost first. Fixed per call path, like its fingerprint (which
    /// whakapapa derives from them): only a cut user agent shows fewer.
    fn frames(&self, app: usize, purpose: usize) -> Vec<Frame> {
        let r = mix(((app as u64) << 32) ^ purpose as u64);
        let depth = 2 + (r % 5) as usize;
        let method =
            ["get", "list", "create", "replace", "patch", "delete"][(r >> 40) as usize % 6];
        let mut frames = vec![Frame::new(
            format!("kube_client::api::Api<K>::{method}"),
            "kube-client-5.0.0/src/api/core_methods.rs",
            40 + (r % 200) as u32,
        )];
        for d in 1..depth {
            let m = (r >> (d * 6)) % 7;
            frames.push(Frame::new(
                format!("app_{app}::module_{m}::step_{purpose}_{d}"),
                format!("src/module_{m}.rs"),
                10 + ((r >> (d * 3)) % 400) as u32 + purpose as u32 * 7,
            ));
        }
        frames
    }

    fn user_agent(&self, app: usize, purpose: usize, i: u64) -> String {
        let a = &self.apps[app];
        match a.kind {
            AppKind::ClientGo => a.identity.clone(),
            AppKind::E2e => {
                let sig = SIGS[purpose % SIGS.len()];
                let conf = if purpose.is_multiple_of(3) {
                    " [Conformance]"
                } else {
                    ""
                };
                format!(
                    "{} -- [{sig}] Feature {app} should behave case {purpose}{conf}",
                    a.identity
                )
            }
            AppKind::Whakapapa => {
                let test = (purpose % 4 == 1).then(|| format!("tests::case_{purpose}"));
                let mut frames = self.frames(app, purpose);
                // Some purposes have stacks too deep for the header: the renderer keeps the
                // frames that fit, and the side channel has them all.
                if purpose % 10 == 9 && i.is_multiple_of(2) {
                    frames.extend((0..40).map(|k| {
                        Frame::new(format!("app_{app}::deep::frame_{k}"), "src/deep.rs", k + 1)
                    }));
                }
                let fp = self.fingerprint(app, purpose);
                user_agent::render(&a.identity, test.as_deref(), fp, None, &frames)
            }
        }
    }

    /// Writes the events of request `i` (one line each) to `out`.
    pub fn write_request(&self, i: u64, out: &mut Vec<u8>) {
        if let Some(cluster) = &self.cluster {
            return self.write_cluster_request(cluster, i, out);
        }
        let app = self.app_of(i);
        let purpose = self.purpose_of(i);
        let r = mix(i ^ 0xabcdef ^ self.config.seed);
        let (verb, uri, object) = match self.target_of(app, purpose, i) {
            Some(t) => {
                let t = &self.targets[t];
                let ns = NAMESPACES[(r % NAMESPACES.len() as u64) as usize];
                let name = format!("obj-{}", (r >> 8) % 500);
                let mut path = request_path(&t.path, ns, &name, "api/v1/status");
                let mut verb = t.verb;
                if t.list {
                    if (r >> 20).is_multiple_of(20) {
                        verb = "watch";
                        path.push_str("?allowWatchBookmarks=true&resourceVersion=12345&watch=true");
                    } else {
                        path.push_str("?limit=500&resourceVersion=0");
                    }
                }
                let mut object = String::new();
                if let Some(res) = &t.resource {
                    let _ = write!(object, r#","objectRef":{{"resource":"{res}""#);
                    if t.namespaced {
                        let _ = write!(object, r#","namespace":"{ns}""#);
                    }
                    if t.named {
                        let _ = write!(object, r#","name":"{name}""#);
                    }
                    if !t.group.is_empty() {
                        let _ = write!(object, r#","apiGroup":"{}""#, t.group);
                    }
                    let _ = write!(object, r#","apiVersion":"{}""#, t.version);
                    if let Some(sub) = &t.subresource {
                        let _ = write!(object, r#","subresource":"{sub}""#);
                    }
                    object.push('}');
                }
                (verb, path, object)
            }
            None if r.is_multiple_of(2) => (
                "get",
                ["/healthz", "/version", "/api", "/apis", "/openapi/v2", "/livez"]
                    [(r >> 4) as usize % 6]
                    .to_owned(),
                String::new(),
            ),
            None => (
                "get",
                format!("/apis/shop.example.com/v1/namespaces/shop/widgets/w{}", r % 50),
                r#","objectRef":{"resource":"widgets","namespace":"shop","name":"w1","apiGroup":"shop.example.com","apiVersion":"v1"}"#.to_owned(),
            ),
        };
        let received = BASE_US + i as i64 * self.config.spacing_us;
        let latency = 500 + (r >> 32) as i64 % 40_000;
        let code = match (r >> 40) % 100 {
            0..=4 => 404,
            5..=6 => 409,
            7 => 403,
            _ if verb == "create" => 201,
            _ => 200,
        };
        let ua = self.user_agent(app, purpose, i);
        let audit_id = self.audit_id(i);
        let user = &self.apps[app].user;
        let beta = self.config.v1beta1_every > 0 && i.is_multiple_of(self.config.v1beta1_every);
        let stages: &[&str] = if self.config.stages >= 2 {
            &["RequestReceived", "ResponseComplete"]
        } else {
            &["ResponseComplete"]
        };
        for stage in stages {
            let done = *stage == "ResponseComplete";
            let stage_ts = if done { received + latency } else { received };
            let api = if beta {
                "audit.k8s.io/v1beta1"
            } else {
                "audit.k8s.io/v1"
            };
            let _ = write!(
                Cursor(out),
                r#"{{"kind":"Event","apiVersion":"{api}","level":"Metadata""#
            );
            if beta {
                let _ = write!(
                    Cursor(out),
                    r#","timestamp":"{}","metadata":{{"creationTimestamp":"{}"}}"#,
                    ts(stage_ts),
                    ts(stage_ts)
                );
            }
            let _ = write!(
                Cursor(out),
                r#","auditID":"{audit_id}","stage":"{stage}","requestURI":"{}","verb":"{verb}","user":{{"username":"{user}","uid":"{:08x}-5d6e-4f70-8a91-b2c3d4e5f607","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],"extra":{{"authentication.kubernetes.io/credential-id":["JTI=7b1e0c2a-3f4d-4e5f-9a6b-7c8d9e0f1a2b"],"authentication.kubernetes.io/node-name":["kind-control-plane"]}}}},"sourceIPs":["10.244.{}.{}"],"userAgent":"{}"{object}"#,
                json_escape(&uri),
                app,
                (app / 250) % 256,
                app % 250 + 2,
                json_escape(&ua),
            );
            if done {
                let _ = write!(
                    Cursor(out),
                    r#","responseStatus":{{"metadata":{{}},"code":{code}}}"#
                );
            }
            let _ = write!(
                Cursor(out),
                r#","requestReceivedTimestamp":"{}","stageTimestamp":"{}","annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:{}\" of ClusterRole \"system:{}\" to ServiceAccount \"{}/kube-system\""}}}}"#,
                ts(received),
                ts(stage_ts),
                app,
                app,
                app
            );
            out.push(b'\n');
        }
    }

    /// Writes requests `range` as JSON lines.
    pub fn write_lines(&self, range: std::ops::Range<u64>, w: &mut impl Write) -> io::Result<()> {
        let mut buf = Vec::with_capacity(1 << 20);
        for i in range {
            self.write_request(i, &mut buf);
            if buf.len() > (1 << 20) - 4096 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
        w.write_all(&buf)
    }

    /// Requests `range` as a webhook `EventList` body.
    pub fn event_list(&self, range: std::ops::Range<u64>) -> Vec<u8> {
        let mut lines = Vec::new();
        for i in range {
            self.write_request(i, &mut lines);
        }
        let mut body =
            br#"{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":["#
                .to_vec();
        let mut first = true;
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if !first {
                body.push(b',');
            }
            first = false;
            body.extend_from_slice(line);
        }
        body.extend_from_slice(b"]}");
        body
    }

    /// The side-channel records (full purposes) of every whakapapa program, as JSON lines.
    pub fn purposes_jsonl(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let programs: Vec<(usize, String)> = match &self.cluster {
            Some(c) => self.cluster_purposes(c),
            None => self
                .apps
                .iter()
                .enumerate()
                .filter(|(_, a)| a.kind == AppKind::Whakapapa)
                .map(|(k, a)| (k, a.identity.clone()))
                .collect(),
        };
        for (k, identity) in programs {
            for p in 0..self.config.purposes_per_app {
                let record = Record {
                    whakapapa: 1,
                    fingerprint: self.fingerprint(k, p),
                    identity: Identity {
                        text: identity.clone(),
                        ..Identity::default()
                    },
                    test: None,
                    frames: self.frames(k, p),
                    span: None,
                    seen_at: Some("2026-11-20T10:00:00Z".into()),
                    addresses: Vec::new(),
                    thread: None,
                    source_dir: None,
                };
                // A record holds only strings and numbers: it always serialises.
                let _ = serde_json::to_writer(Cursor(&mut out), &record);
                out.push(b'\n');
            }
        }
        out
    }
}

/// `io::Write` over a `Vec<u8>` for `write!` without `std::io::Cursor`'s position.
struct Cursor<'a>(&'a mut Vec<u8>);

impl io::Write for Cursor<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '&' => out.push_str("\\u0026"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A catalog path with its parameters filled in: the namespace, the object's name, `path` for
/// `{path}`, `kubelet.log` for `{logpath}`, `x-1` for any other.
fn request_path(template: &str, ns: &str, name: &str, path: &str) -> String {
    let mut uri = template
        .replace("{namespace}", ns)
        .replace("{name}", name)
        .replace("{path}", path)
        .replace("{logpath}", "kubelet.log");
    while let Some(s) = uri.find('{') {
        let e = uri[s..].find('}').map_or(uri.len(), |e| s + e + 1);
        uri.replace_range(s..e, "x-1");
    }
    uri
}

/// RFC 3339 with microseconds, as kube-apiserver writes it.
pub fn ts(us: i64) -> String {
    let t = jiff::Timestamp::from_microsecond(us).expect("timestamp in range");
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn app(k: usize, seed: u64) -> App {
    let commit = format!("{:07x}", mix(k as u64 ^ seed) & 0xfff_ffff);
    match k % 5 {
        0 | 1 => App {
            kind: AppKind::Whakapapa,
            identity: format!(
                "app-{k}/v0.{}.1 (linux/amd64) git/{commit} built-by ci@runner-{} at 2026-11-01T10:00:00Z",
                k % 10,
                k % 8
            ),
            user: format!("system:serviceaccount:apps:app-{k}"),
        },
        2 | 3 => {
            let name = CLIENT_GO[k % CLIENT_GO.len()];
            App {
                kind: AppKind::ClientGo,
                identity: format!(
                    "{name}/v1.36.{} (linux/amd64) kubernetes/{commit}/system:serviceaccount:kube-system:{name}-{k}",
                    k % 4
                ),
                user: format!("system:serviceaccount:kube-system:{name}-{k}"),
            }
        }
        _ => App {
            kind: AppKind::E2e,
            identity: format!("e2e.test/v1.36.0 (linux/amd64) kubernetes/{commit}"),
            user: "kubernetes-admin".to_owned(),
        },
    }
}

fn target(e: &whakapapa_collector::catalog::Endpoint) -> Target {
    let action = e.action.as_deref().unwrap_or("");
    let list = action == "list";
    let verb = match (e.method, action) {
        (_, "list") => "list",
        (_, "deletecollection") => "deletecollection",
        (Method::Get, _) => "get",
        (Method::Post, _) => "create",
        (Method::Put, _) => "update",
        (Method::Patch, _) => "patch",
        (Method::Delete, _) => "delete",
        (Method::Head, _) => "head",
        (Method::Options, _) => "options",
    };
    // /api/v1/namespaces/{namespace}/pods/{name}/status -> pods, status
    let segs: Vec<&str> = e.path.split('/').filter(|s| !s.is_empty()).collect();
    let start = match segs.first() {
        Some(&"api") => 2,
        Some(&"apis") => 3,
        _ => segs.len(),
    };
    let mut rest = &segs[start.min(segs.len())..];
    let namespaced = rest.len() >= 2 && rest[0] == "namespaces" && rest[1] == "{namespace}";
    if namespaced && rest.len() > 2 {
        rest = &rest[2..];
    }
    let resource = rest.first().map(|s| s.to_string());
    let named = rest.get(1).is_some_and(|s| s.starts_with('{'));
    let subresource = rest
        .get(2)
        .filter(|s| !s.starts_with('{'))
        .map(|s| s.to_string());
    Target {
        verb,
        path: e.path.clone(),
        list,
        resource,
        subresource,
        group: e.group.clone().unwrap_or_default(),
        version: e.version.clone().unwrap_or_else(|| "v1".into()),
        namespaced,
        named,
    }
}

/// The Kubernetes 1.36 catalog shipped in the repository (`data/`).
pub fn catalog() -> Catalog {
    use std::io::Read as _;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/kubernetes/openapi-v2-1.36.json.gz");
    let gz =
        std::fs::read(&path).expect("the repository's data/kubernetes/openapi-v2-1.36.json.gz");
    let mut spec = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut spec)
        .expect("gzip");
    Catalog::from_openapi(&spec, None).expect("the 1.36 document")
}
