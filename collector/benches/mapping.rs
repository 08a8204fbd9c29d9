//! Speed of the collector's pure core on the ingest path: audit event parsing, endpoint
//! mapping, user-agent parsing. Each group has a baseline measured in the same run.
//!
//! Run: `cargo bench -p whakapapa-collector --bench mapping -- --measurement-time 3 --warm-up-time 1`

use std::hint::black_box;
use std::io::Read;
use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use whakapapa_collector::audit;
use whakapapa_collector::catalog::{Catalog, Method};
use whakapapa_collector::mapping::{Mapper, Mapping};
use whakapapa_collector::wire::{Frame, audit_id, user_agent};

/// A Metadata-level event as kube-apiserver writes it (about 1 KB).
const EVENT: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns\u0026limit=500","verb":"list","user":{"username":"system:serviceaccount:kube-system:coredns","uid":"3f1a2b4c-5d6e-4f70-8a91-b2c3d4e5f607","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=7b1e0c2a-3f4d-4e5f-9a6b-7c8d9e0f1a2b"],"authentication.kubernetes.io/node-name":["kind-control-plane"]}},"sourceIPs":["10.244.0.3"],"userAgent":"coredns/v1.11.3 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T10:00:00.123456Z","stageTimestamp":"2026-11-20T10:00:00.127001Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:coredns\" of ClusterRole \"system:coredns\" to ServiceAccount \"coredns/kube-system\""}}"#;

fn catalog() -> Catalog {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let gz = std::fs::read(root.join("data/kubernetes/openapi-v2-1.36.json.gz"))
        .expect("the repository's data/kubernetes/openapi-v2-1.36.json.gz");
    let mut spec = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut spec)
        .expect("gzip");
    Catalog::from_openapi(&spec, None).expect("1.36 spec")
}

fn verb_for(method: Method, action: Option<&str>) -> &'static str {
    match (method, action) {
        (Method::Get, Some("list")) => "list",
        (Method::Get, _) => "get",
        (Method::Post, _) => "create",
        (Method::Put, _) => "update",
        (Method::Patch, _) => "patch",
        (Method::Delete, Some("deletecollection")) => "deletecollection",
        (Method::Delete, _) => "delete",
        (Method::Head, _) => "head",
        (Method::Options, _) => "options",
    }
}

/// Requests over every endpoint with realistic names and queries, plus the non-resource and
/// unmapped requests a real cluster sends.
fn requests(catalog: &Catalog) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (i, e) in catalog.endpoints.iter().enumerate() {
        let path: Vec<String> = e
            .path
            .split('/')
            .map(|s| match s {
                "{namespace}" => "kube-system".to_owned(),
                "{name}" => format!("web-{i}-7d9f8c6b5-x2kqz"),
                "{path}" | "{logpath}" => "metrics/cadvisor".to_owned(),
                s if s.starts_with('{') => "x".to_owned(),
                s => s.to_owned(),
            })
            .collect();
        let mut uri = path.join("/");
        if i % 3 == 0 {
            uri.push_str("?limit=500&resourceVersion=0");
        }
        out.push((verb_for(e.method, e.action.as_deref()), uri));
    }
    for uri in [
        "/healthz",
        "/readyz?verbose",
        "/livez/etcd",
        "/metrics",
        "/openapi/v2",
        "/apis/metrics.k8s.io/v1beta1",
    ] {
        out.push(("get", uri.to_owned()));
    }
    for uri in [
        "/apis/stable.example.com/v1/namespaces/ns/crontabs",
        "/api/v1/watch/namespaces/ns/pods",
    ] {
        out.push(("watch", uri.to_owned()));
    }
    out
}

/// The baseline a trie replaces: try every template in turn, segment by segment.
struct LinearScan {
    templates: Vec<(Method, Vec<String>, usize)>,
}

impl LinearScan {
    fn new(catalog: &Catalog) -> LinearScan {
        LinearScan {
            templates: catalog
                .endpoints
                .iter()
                .enumerate()
                .map(|(i, e)| {
                    let segs = e
                        .path
                        .split('/')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect();
                    (e.method, segs, i)
                })
                .collect(),
        }
    }

    fn map(&self, verb: &str, uri: &str) -> Option<usize> {
        let method = whakapapa_collector::mapping::method_for_verb(verb)?;
        let path = uri.split('?').next()?;
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.templates.iter().find_map(|(m, t, i)| {
            let tail = t.last().is_some_and(|s| s == "{path}");
            let fits = if tail {
                segs.len() >= t.len()
            } else {
                segs.len() == t.len()
            };
            (*m == method
                && fits
                && t.iter()
                    .zip(&segs)
                    .all(|(t, s)| t.starts_with('{') || t == s))
            .then_some(*i)
        })
    }
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse_event_1kB_metadata", |b| {
        b.iter(|| audit::parse_event(black_box(EVENT.as_bytes())).unwrap())
    });
    // Baselines: serde_json validating and skipping the same bytes, and building a Value.
    group.bench_function("baseline_serde_ignored_any", |b| {
        b.iter(|| {
            serde_json::from_slice::<serde::de::IgnoredAny>(black_box(EVENT.as_bytes())).unwrap()
        })
    });
    // Run on every input line before parsing it.
    group.bench_function("purpose_is_record_on_event", |b| {
        b.iter(|| whakapapa_collector::purpose::is_record(black_box(EVENT.as_bytes())))
    });
    group.bench_function("baseline_serde_value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(EVENT.as_bytes())).unwrap())
    });
    let batch = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{{}},"items":[{}]}}"#,
        vec![EVENT; 400].join(",")
    );
    group.throughput(Throughput::Elements(400));
    group.bench_function("parse_batch_400", |b| {
        b.iter(|| audit::parse_batch(black_box(batch.as_bytes())).unwrap())
    });
    group.bench_function("parse_batch_lenient_400", |b| {
        b.iter(|| audit::parse_batch_lenient(black_box(batch.as_bytes())).unwrap())
    });
    group.finish();
}

fn bench_mapping(c: &mut Criterion) {
    let catalog = catalog();
    let mapper = Mapper::new(&catalog);
    let linear = LinearScan::new(&catalog);
    let requests = requests(&catalog);
    let mut mapped = 0;
    for (verb, uri) in &requests {
        if let Mapping::Endpoint(i) = mapper.map(verb, uri) {
            mapped += 1;
            // The baseline must agree where it can answer at all.
            if let Some(j) = linear.map(verb, uri) {
                assert_eq!(
                    catalog.endpoints[i].path, catalog.endpoints[j].path,
                    "{uri}"
                );
            }
        }
    }
    assert_eq!(
        mapped,
        catalog.endpoints.len(),
        "every endpoint's request maps"
    );

    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(requests.len() as u64));
    group.bench_function("trie_all_endpoints", |b| {
        b.iter(|| {
            for (verb, uri) in &requests {
                black_box(mapper.map(black_box(verb), black_box(uri)));
            }
        })
    });
    group.bench_function("baseline_linear_scan_all_endpoints", |b| {
        b.iter(|| {
            for (verb, uri) in &requests {
                black_box(linear.map(black_box(verb), black_box(uri)));
            }
        })
    });
    group.finish();
    c.bench_function("catalog_from_openapi_1_36", |b| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let gz = std::fs::read(root.join("data/kubernetes/openapi-v2-1.36.json.gz")).unwrap();
        let mut spec = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut spec)
            .unwrap();
        b.iter(|| Catalog::from_openapi(black_box(&spec), None).unwrap())
    });
    c.bench_function("mapper_new_1_36", |b| {
        b.iter(|| Mapper::new(black_box(&catalog)))
    });

    // What the ingest path does per event with the pure core: parse, map, read the Audit-ID
    // (user agents are parsed once per distinct string, so not here).
    let lines: Vec<String> = requests
        .iter()
        .map(|(verb, uri)| {
            let uri_at = EVENT.find(r#""requestURI":""#).unwrap() + r#""requestURI":""#.len();
            let uri_end = uri_at + EVENT[uri_at..].find('"').unwrap();
            format!("{}{uri}{}", &EVENT[..uri_at], &EVENT[uri_end..]).replacen(
                r#""verb":"list""#,
                &format!(r#""verb":"{verb}""#),
                1,
            )
        })
        .collect();
    for (line, (verb, uri)) in lines.iter().zip(&requests) {
        let e = audit::parse_event(line.as_bytes()).unwrap();
        assert_eq!(
            (e.verb.as_str(), e.request_uri.as_str()),
            (*verb, uri.as_str())
        );
    }
    let mut group = c.benchmark_group("pure_pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("parse_map_fingerprint", |b| {
        b.iter(|| {
            for line in &lines {
                let e = audit::parse_event(black_box(line.as_bytes())).unwrap();
                black_box(mapper.map(&e.verb, &e.request_uri));
                black_box(audit_id::decode(&e.audit_id));
            }
        })
    });
    group.finish();
}

fn bench_useragent(c: &mut Criterion) {
    let whakapapa = user_agent::render(
        "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z",
        None,
        0x9c0e4b7d12aa03f1,
        None,
        &[
            Frame::new(
                "kube_client::api::Api<K>::list",
                "kube-client-5.0.0/src/api/core_methods.rs",
                106,
            ),
            Frame::new(
                "shop_controller::inventory::count_pods",
                "src/inventory.rs",
                42,
            ),
            Frame::new("shop_controller::main", "src/main.rs", 17),
        ],
    );
    let agents = [
        "kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234",
        "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]",
        whakapapa.as_str(),
    ];
    let mut group = c.benchmark_group("useragent");
    for (name, ua) in ["client_go", "e2e", "whakapapa_3_frames"]
        .iter()
        .zip(agents)
    {
        group.bench_function(*name, |b| b.iter(|| user_agent::parse(black_box(ua))));
    }
    group.bench_function("fingerprint_from_audit_id", |b| {
        b.iter(|| audit_id::decode(black_box("9c0e4b7d-12aa-803f-9d5c-2e0f4a6b8c1d")))
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_mapping, bench_useragent);
criterion_main!(benches);
