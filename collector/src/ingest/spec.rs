//! Where the endpoint catalog comes from: the embedded 1.36 document, a file, an http(s) URL, or
//! the live cluster's `/openapi/v2` and every `/openapi/v3` group-version document (its CRDs'
//! and aggregated APIs' endpoints marked as extensions); what release label it gets; how a
//! cluster's catalog is refreshed over the one stored before; and the conformance metadata
//! loaded with it.
//!
//! A metadata list not given is the one the database keeps for the release, else the one shipped
//! with the collector when that is of the release (Kubernetes 1.36): so a release keeps what it
//! was loaded with, and `serve` without `--openapi` ([`catalog_of`]) maps with it too.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::PathBuf;
use std::str::FromStr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};

use super::Error;
use crate::catalog::{
    Catalog, ConformanceTest, Ineligible, Pending, merge_openapi, openapi_v3_documents,
};
use crate::store::{ConformanceTestRecord, EndpointRecord, ReleaseRecord, StoredRelease};

/// The Kubernetes 1.36 OpenAPI v2 document shipped with the collector (gzipped).
const EMBEDDED_SPEC_GZ: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/kubernetes/openapi-v2-1.36.json.gz"
));
/// Its release label.
pub const EMBEDDED_RELEASE: &str = "1.36.0";
/// APISnoop's list of endpoints ruled out of conformance, shipped with the collector.
const EMBEDDED_INELIGIBLE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/ineligible_endpoints.json"
));

/// Kubernetes' conformance tests of the release the shipped lists are of (`conformance.yaml`).
const EMBEDDED_CONFORMANCE: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/conformance.yaml"
));
/// Its pending eligible endpoints (`pending_eligible_endpoints.yaml`).
const EMBEDDED_PENDING: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/conformance/pending_eligible_endpoints.yaml"
));
/// The Kubernetes release the shipped conformance.yaml and pending list are of; they are used for
/// a catalog of the same minor release.
pub const EMBEDDED_LISTS_RELEASE: &str = "1.36.3";

/// Largest OpenAPI document accepted (the 1.36 one is 4.1 MB).
const MAX_SPEC: usize = 128 << 20;

/// Where to read the OpenAPI v2 document from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecSource {
    /// `embedded`: Kubernetes 1.36, shipped with the collector.
    Embedded,
    /// A file.
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(String),
    /// `cluster`: the live cluster's `/openapi/v2` and `/openapi/v3` documents, through kube's
    /// inferred config.
    Cluster,
}

impl FromStr for SpecSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "embedded" => SpecSource::Embedded,
            "cluster" => SpecSource::Cluster,
            s if s.starts_with("http://") || s.starts_with("https://") => {
                SpecSource::Url(s.to_owned())
            }
            s => SpecSource::File(PathBuf::from(s)),
        })
    }
}

impl std::fmt::Display for SpecSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpecSource::Embedded => f.write_str("embedded"),
            SpecSource::File(p) => write!(f, "{}", p.display()),
            SpecSource::Url(u) => f.write_str(u),
            SpecSource::Cluster => f.write_str("cluster"),
        }
    }
}

/// Where a conformance metadata list comes from: a file or an `http://` / `https://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListSource {
    /// A file.
    File(PathBuf),
    /// An http(s) URL.
    Url(String),
}

impl FromStr for ListSource {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if s.starts_with("http://") || s.starts_with("https://") {
            ListSource::Url(s.to_owned())
        } else {
            ListSource::File(PathBuf::from(s))
        })
    }
}

impl std::fmt::Display for ListSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListSource::File(p) => write!(f, "{}", p.display()),
            ListSource::Url(u) => f.write_str(u),
        }
    }
}

/// The conformance metadata lists given for a catalog (`None`: see the module doc).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lists {
    /// `ineligible_endpoints.yaml`, or APISnoop's `ineligible_endpoints.json`.
    pub ineligible: Option<ListSource>,
    /// `conformance.yaml`.
    pub conformance: Option<ListSource>,
    /// `pending_eligible_endpoints.yaml`.
    pub pending: Option<ListSource>,
}

/// What a database keeps for a release label, for the lists not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredLists {
    /// The ineligible list's text.
    pub ineligible: Option<String>,
    /// The pending list's text.
    pub pending: Option<String>,
    /// How many conformance tests are stored.
    pub conformance_tests: u64,
}

/// For [`load`] with no database: no release keeps any list.
pub fn nothing_stored(_label: &str) -> Result<Option<StoredLists>, Error> {
    Ok(None)
}

/// A catalog ready to map with and to store.
#[derive(Debug, Clone)]
pub struct LoadedCatalog {
    /// The endpoints.
    pub catalog: Catalog,
    /// What the store keeps of it.
    pub release: ReleaseRecord,
    /// Where each metadata list came from, e.g. `conformance: 446 tests (shipped, Kubernetes
    /// 1.36.3)`, for the summary.
    pub lists: Vec<String>,
    /// Operation ids of the endpoints a refresh added to the stored release ([`refreshed`]).
    pub added: Vec<String>,
}

/// Reads the document, builds the catalog and settles its release label: `release` if given,
/// else the document's `info.version`, else (for `cluster`) the server's `gitVersion`, else a
/// version in the file name; none of these is an error asking for `--release`. Then reads the
/// metadata lists: those given, else what `stored` says the database keeps for the label, else
/// the shipped ones of the label's release.
pub async fn load(
    source: &SpecSource,
    lists: &Lists,
    release: Option<&str>,
    stored: &(dyn Fn(&str) -> Result<Option<StoredLists>, Error> + Sync),
) -> Result<LoadedCatalog, Error> {
    let (spec, server_version) = match source {
        SpecSource::Embedded => {
            let mut spec = Vec::new();
            flate2::read::GzDecoder::new(EMBEDDED_SPEC_GZ)
                .read_to_end(&mut spec)
                .map_err(|e| Error::Spec {
                    source_name: source.to_string(),
                    reason: e.to_string(),
                })?;
            (spec, Some(EMBEDDED_RELEASE.to_owned()))
        }
        SpecSource::File(path) => (
            std::fs::read(path).map_err(|e| Error::Input {
                path: path.clone(),
                source: e,
            })?,
            None,
        ),
        SpecSource::Url(url) => (fetch(url).await?, None),
        SpecSource::Cluster => from_cluster().await?,
    };
    let mut catalog = Catalog::from_openapi(&spec, None).map_err(|e| Error::Spec {
        source_name: source.to_string(),
        reason: e.to_string(),
    })?;
    let label = release
        .map(str::to_owned)
        .or_else(|| {
            (!catalog.release.is_empty() && catalog.release != "unversioned")
                .then(|| catalog.release.clone())
        })
        .or(server_version)
        .or_else(|| match source {
            SpecSource::File(p) => version_in_name(&p.to_string_lossy()),
            SpecSource::Url(u) => version_in_name(u),
            _ => None,
        })
        .ok_or_else(|| Error::NoRelease {
            source_name: source.to_string(),
        })?;
    let kept = stored(&label)?.unwrap_or_default();
    let shipped = shipped_lists_fit(&label);
    let mut used = Vec::new();

    let (ineligible_text, list, from) = match &lists.ineligible {
        Some(src) => {
            let text = read_list(src).await?;
            let list = parse_list(src.to_string(), &text, Ineligible::parse)?;
            (text, list, src.to_string())
        }
        None => match kept.ineligible {
            Some(text) => {
                let list = parse_list(in_db(&label), text.as_bytes(), Ineligible::parse)?;
                (text.into_bytes(), list, "the database's".to_owned())
            }
            None => {
                let text = EMBEDDED_INELIGIBLE.to_vec();
                let list = parse_list("shipped ineligible list".into(), &text, Ineligible::parse)?;
                (text, list, "shipped, APISnoop's".to_owned())
            }
        },
    };
    used.push(format!("ineligible: {} endpoints ({from})", list.len()));
    let (pending_text, pending) = match &lists.pending {
        Some(src) => {
            let text = read_list(src).await?;
            let p = parse_list(src.to_string(), &text, Pending::from_yaml)?;
            (Some(text), Some((p, src.to_string())))
        }
        None => match kept.pending {
            Some(text) => {
                let p = parse_list(in_db(&label), text.as_bytes(), Pending::from_yaml)?;
                (
                    Some(text.into_bytes()),
                    Some((p, "the database's".to_owned())),
                )
            }
            None if shipped => {
                let text = EMBEDDED_PENDING.to_vec();
                let p = parse_list("shipped pending list".into(), &text, Pending::from_yaml)?;
                let from = format!("shipped, Kubernetes {EMBEDDED_LISTS_RELEASE}");
                (Some(text), Some((p, from)))
            }
            None => (None, None),
        },
    };
    let conformance = match &lists.conformance {
        Some(src) => {
            let text = read_list(src).await?;
            let tests = parse_list(src.to_string(), &text, ConformanceTest::parse_list)?;
            used.push(format!("conformance: {} tests ({src})", tests.len()));
            Some(tests)
        }
        None if kept.conformance_tests > 0 => {
            used.push(format!(
                "conformance: {} tests (the database's)",
                kept.conformance_tests
            ));
            None
        }
        None if shipped => {
            let tests = parse_list(
                "shipped conformance.yaml".into(),
                EMBEDDED_CONFORMANCE,
                ConformanceTest::parse_list,
            )?;
            used.push(format!(
                "conformance: {} tests (shipped, Kubernetes {EMBEDDED_LISTS_RELEASE})",
                tests.len()
            ));
            Some(tests)
        }
        None => {
            used.push("conformance: none (pass --conformance)".into());
            None
        }
    };

    set_eligibility(&mut catalog, &list);
    if let Some((pending, from)) = &pending {
        let unknown = catalog.apply_pending(pending);
        used.push(format!("pending: {} endpoints ({from})", pending.len()));
        if !unknown.is_empty() {
            tracing::warn!(
                release = %label,
                endpoints = ?unknown,
                "pending eligible endpoints that are not otherwise eligible endpoints of the catalog"
            );
        }
    } else {
        used.push("pending: none (pass --pending)".into());
    }
    let mut record = release_record(
        &catalog,
        label,
        spec,
        String::from_utf8(ineligible_text).ok(),
    );
    record.pending = pending_text.and_then(|t| String::from_utf8(t).ok());
    record.conformance = conformance.map(|tests| tests.iter().map(test_record).collect());
    record.refresh = *source == SpecSource::Cluster;
    Ok(LoadedCatalog {
        catalog,
        release: record,
        lists: used,
        added: Vec::new(),
    })
}

/// `loaded` over the release stored before under its label (`previous`): a live cluster's
/// catalog of now, keeping every endpoint the stored one has at its position (also those of
/// CRDs deleted since: requests stored against them keep them), with the new ones after them,
/// and the metadata lists `loaded` was read with. Storing the result refreshes the stored
/// release.
pub fn refreshed(loaded: &LoadedCatalog, previous: &StoredRelease) -> Result<LoadedCatalog, Error> {
    let source_name = format!("release {} refreshed", loaded.release.label);
    let fail = |reason: String| Error::Spec {
        source_name: source_name.clone(),
        reason,
    };
    let spec = merge_openapi(
        Some(&loaded.release.spec),
        &[],
        Some(&previous.spec),
        &BTreeMap::new(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let mut catalog = Catalog::from_openapi(&spec, None).map_err(|e| fail(e.to_string()))?;
    if let Some(text) = &loaded.release.ineligible {
        let list = parse_list(source_name.clone(), text.as_bytes(), Ineligible::parse)?;
        set_eligibility(&mut catalog, &list);
    }
    if let Some(text) = &loaded.release.pending {
        let pending = parse_list(source_name.clone(), text.as_bytes(), Pending::from_yaml)?;
        catalog.apply_pending(&pending);
    }
    let mut release = release_record(
        &catalog,
        loaded.release.label.clone(),
        spec,
        loaded.release.ineligible.clone(),
    );
    release.pending = loaded.release.pending.clone();
    release.conformance = loaded.release.conformance.clone();
    release.refresh = true;
    let before = catalog_of(previous)?.endpoints.len();
    let added = catalog.endpoints[before.min(catalog.endpoints.len())..]
        .iter()
        .map(|e| e.operation_id.clone())
        .collect();
    Ok(LoadedCatalog {
        catalog,
        release,
        lists: loaded.lists.clone(),
        added,
    })
}

/// Whether the shipped conformance.yaml and pending list are of this release (same minor).
fn shipped_lists_fit(label: &str) -> bool {
    let minor = |v: &str| -> Option<(u32, u32)> {
        let mut parts = v.strip_prefix('v').unwrap_or(v).split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    minor(label).is_some() && minor(label) == minor(EMBEDDED_LISTS_RELEASE)
}

fn in_db(label: &str) -> String {
    format!("release {label} in the database")
}

fn parse_list<T>(
    source_name: String,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, crate::catalog::CatalogError>,
) -> Result<T, Error> {
    parse(bytes).map_err(|e| Error::Spec {
        source_name,
        reason: e.to_string(),
    })
}

async fn read_list(src: &ListSource) -> Result<Vec<u8>, Error> {
    match src {
        ListSource::File(path) => std::fs::read(path).map_err(|e| Error::Input {
            path: path.clone(),
            source: e,
        }),
        ListSource::Url(url) => fetch(url).await,
    }
}

/// Eligibility under an ineligible list (the rule of [`Catalog::from_openapi`]); an
/// extension's own reason (served by a CRD or an aggregated API) stays.
fn set_eligibility(catalog: &mut Catalog, list: &Ineligible) {
    for e in &mut catalog.endpoints {
        if let Some(ruled_out) = list.get(&e.operation_id) {
            e.eligible = false;
            e.ineligible_reason = Some(ruled_out.reason.clone());
            e.ineligible_link = ruled_out.link.clone();
        }
    }
}

fn test_record(t: &ConformanceTest) -> ConformanceTestRecord {
    ConformanceTestRecord {
        codename: t.codename.clone(),
        testname: t.testname.clone(),
        description: t.description.clone(),
        release: t.release.clone(),
        promotion_release: t.promotion_release(),
        file: t.file.clone(),
    }
}

/// The store's form of a catalog.
pub fn release_record(
    catalog: &Catalog,
    label: String,
    spec: Vec<u8>,
    ineligible: Option<String>,
) -> ReleaseRecord {
    ReleaseRecord {
        label,
        spec,
        ineligible,
        pending: None,
        conformance: None,
        endpoints: catalog
            .endpoints
            .iter()
            .map(|e| EndpointRecord {
                operation_id: e.operation_id.clone(),
                method: e.method.as_str().to_owned(),
                path: e.path.clone(),
                level: e.level.as_str().to_owned(),
                category: e.category.clone(),
                group: e.group.clone().unwrap_or_default(),
                version: e.version.clone().unwrap_or_default(),
                kind: e.kind.clone().unwrap_or_default(),
                action: e.action.clone().unwrap_or_default(),
                deprecated: e.deprecated,
                eligible: e.eligible,
                ineligible_reason: e.ineligible_reason.clone(),
                pending: e.pending,
                description: e.description.clone(),
            })
            .collect(),
        refresh: false,
    }
}

/// Rebuilds the catalog of a stored release (what `serve` maps with when not given a spec),
/// with the ineligible and pending lists it was stored with.
pub fn catalog_of(stored: &StoredRelease) -> Result<Catalog, Error> {
    let source_name = || in_db(&stored.label);
    let list = stored
        .ineligible
        .as_deref()
        .map(|j| parse_list(source_name(), j.as_bytes(), Ineligible::parse))
        .transpose()?;
    let mut catalog =
        Catalog::from_openapi(&stored.spec, list.as_ref()).map_err(|e| Error::Spec {
            source_name: source_name(),
            reason: e.to_string(),
        })?;
    if let Some(text) = &stored.pending {
        let pending = parse_list(source_name(), text.as_bytes(), Pending::from_yaml)?;
        catalog.apply_pending(&pending);
    }
    Ok(catalog)
}

/// `1.36.0` or `1.36` in a file name or URL (`openapi-v2-1.36.json` → `1.36`).
pub fn version_in_name(name: &str) -> Option<String> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let bytes = base.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'1' && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let rest = &base[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let candidate = rest[..end].trim_end_matches('.');
            let parts: Vec<&str> = candidate.split('.').collect();
            if (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty()) {
                return Some(candidate.to_owned());
            }
        }
        i += 1;
    }
    None
}

/// `v1.36.2+k3s1` → `1.36.2`.
fn release_of_git_version(v: &str) -> String {
    let v = v.strip_prefix('v').unwrap_or(v);
    v.split(['+', '-']).next().unwrap_or(v).to_owned()
}

async fn fetch(url: &str) -> Result<Vec<u8>, Error> {
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let fail = |reason: String| Error::Spec {
        source_name: url.to_owned(),
        reason,
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| fail(e.to_string()))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| fail(format!("no TLS root certificates: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let response = client
        .get(uri)
        .await
        .map_err(|e| fail(format!("request failed: {e}")))?;
    if !response.status().is_success() {
        return Err(fail(format!("server answered {}", response.status())));
    }
    let body = Limited::new(response.into_body(), MAX_SPEC)
        .collect()
        .await
        .map_err(|e| fail(format!("reading the body: {e}")))?;
    Ok(body.to_bytes().to_vec())
}

/// The API groups a live cluster serves through extensions, not Kubernetes itself: those of
/// its CustomResourceDefinitions and of its aggregated APIServices (those with a service),
/// with what serves them. Reading them needs `list` on both; without it (or any other
/// failure) none are known, and the cluster's endpoints are taken as Kubernetes' own.
async fn cluster_extensions(client: &kube::Client) -> BTreeMap<String, String> {
    let mut groups = BTreeMap::new();
    for (uri, kind) in [
        (
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "CustomResourceDefinition",
        ),
        ("/apis/apiregistration.k8s.io/v1/apiservices", "APIService"),
    ] {
        let list = match http::Request::get(uri).body(Vec::new()) {
            Ok(request) => client.request::<serde_json::Value>(request).await,
            Err(_) => continue,
        };
        let list = match list {
            Ok(list) => list,
            Err(error) => {
                tracing::warn!(%error, uri, "cannot tell the cluster's extensions from its own APIs");
                continue;
            }
        };
        for item in list["items"].as_array().into_iter().flatten() {
            let spec = &item["spec"];
            // An APIService without a service is served by kube-apiserver itself.
            if kind == "APIService" && spec["service"].is_null() {
                continue;
            }
            if let Some(group) = spec["group"].as_str().filter(|g| !g.is_empty()) {
                groups.insert(group.to_owned(), kind.to_owned());
            }
        }
    }
    groups
}

/// The live cluster's documents as one ([`merge_openapi`]): `/openapi/v2` and every
/// group-version document `/openapi/v3` lists, with the groups its CRDs and aggregated
/// APIServices serve. Either of v2 and v3 may be missing (a server without one), not both.
async fn from_cluster() -> Result<(Vec<u8>, Option<String>), Error> {
    let fail = |reason: String| Error::Spec {
        source_name: "cluster".into(),
        reason,
    };
    let client = kube::Client::try_default()
        .await
        .map_err(|e| fail(format!("no cluster config: {e}")))?;
    let get = |uri: String| {
        let client = client.clone();
        async move {
            let request = http::Request::get(&uri)
                .header(http::header::ACCEPT, "application/json")
                .body(Vec::new())
                .map_err(|e| format!("GET {uri}: {e}"))?;
            client
                .request_text(request)
                .await
                .map(String::into_bytes)
                .map_err(|e| format!("GET {uri}: {e}"))
        }
    };
    let v2 = get("/openapi/v2".into()).await;
    let mut v3 = Vec::new();
    let v3_error = match get("/openapi/v3".into()).await {
        Ok(index) => {
            let documents =
                openapi_v3_documents(&index).map_err(|e| fail(format!("GET /openapi/v3: {e}")))?;
            for (_, url) in documents {
                v3.push(get(url).await.map_err(fail)?);
            }
            None
        }
        Err(error) => Some(error),
    };
    if let (Err(v2_error), Some(v3_error)) = (&v2, &v3_error) {
        return Err(fail(format!("{v2_error}; {v3_error}")));
    }
    if let Some(error) = &v3_error {
        tracing::warn!(%error, "no OpenAPI v3 documents: the catalog is /openapi/v2's");
    }
    if let Err(error) = &v2 {
        tracing::warn!(%error, "no OpenAPI v2 document: the catalog is /openapi/v3's");
    }
    let extensions = cluster_extensions(&client).await;
    let spec = merge_openapi(v2.as_deref().ok(), &v3, None, &extensions)
        .map_err(|e| fail(e.to_string()))?;
    let version = client
        .apiserver_version()
        .await
        .ok()
        .map(|info| release_of_git_version(&info.git_version));
    Ok((spec, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_in_names() {
        for (name, want) in [
            ("openapi-v2-1.36.json", Some("1.36")),
            ("/x/y/swagger-1.35.2.json", Some("1.35.2")),
            ("https://h/k8s/1.34.0/openapi.json", None),
            ("spec.json", None),
            ("v1.json", None),
        ] {
            assert_eq!(version_in_name(name).as_deref(), want, "{name}");
        }
        assert_eq!(release_of_git_version("v1.36.2+k3s1"), "1.36.2");
        assert_eq!(release_of_git_version("v1.36.0"), "1.36.0");
    }

    #[test]
    fn shipped_lists_are_for_1_36_only() {
        for (label, want) in [
            ("1.36.0", true),
            ("1.36", true),
            ("v1.36.3", true),
            ("1.35.2", false),
            ("1.3", false),
            ("unversioned", false),
        ] {
            assert_eq!(shipped_lists_fit(label), want, "{label}");
        }
    }

    const SPEC: &[u8] = br#"{"swagger":"2.0","info":{"version":"v1.36.0"},"paths":{
      "/api/v1/pods":{"get":{"operationId":"listCoreV1PodForAllNamespaces","description":"list Pods",
        "tags":["core_v1"],"x-kubernetes-action":"list"}},
      "/api/v1/nodes":{"get":{"operationId":"listCoreV1Node","tags":["core_v1"],
        "x-kubernetes-action":"list"}},
      "/api/v1/namespaces":{"get":{"operationId":"listCoreV1Namespace","tags":["core_v1"],
        "x-kubernetes-action":"list"}}}}"#;

    fn by_id<'a>(c: &'a Catalog, id: &str) -> &'a crate::catalog::Endpoint {
        c.endpoint(id).unwrap().1
    }

    #[tokio::test]
    async fn lists_not_given_are_the_databases_then_the_shipped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("spec.json");
        std::fs::write(&spec_path, SPEC).unwrap();
        let source = SpecSource::File(spec_path);
        let loaded = load(&source, &Lists::default(), None, &nothing_stored)
            .await
            .unwrap();
        assert_eq!(loaded.release.label, "1.36.0");
        assert_eq!(loaded.release.conformance.as_ref().map(Vec::len), Some(446));
        assert_eq!(loaded.release.pending.as_deref(), Some("---"));
        let d = &loaded.release.endpoints;
        assert_eq!(d.iter().filter(|e| e.description.is_some()).count(), 1);

        // The database keeps a pending list and conformance tests for 1.36.0.
        let kept = |_: &str| {
            Ok(Some(StoredLists {
                ineligible: Some("- endpoint: listCoreV1Node\n  reason: r\n".into()),
                pending: Some("- listCoreV1Namespace\n".into()),
                conformance_tests: 3,
            }))
        };
        let loaded = load(&source, &Lists::default(), None, &kept).await.unwrap();
        let c = &loaded.catalog;
        assert!(!by_id(c, "listCoreV1Node").eligible);
        let ns = by_id(c, "listCoreV1Namespace");
        assert!(!ns.eligible && ns.pending);
        assert!(by_id(c, "listCoreV1PodForAllNamespaces").eligible);
        assert_eq!(
            loaded.release.conformance, None,
            "the stored tests are kept"
        );
        assert!(
            loaded
                .lists
                .contains(&"conformance: 3 tests (the database's)".to_owned())
        );

        // catalog_of (serve without --openapi) rebuilds the same eligibility.
        let stored = StoredRelease {
            id: crate::store::ReleaseId(1),
            label: loaded.release.label.clone(),
            spec: SPEC.to_vec(),
            ineligible: loaded.release.ineligible.clone(),
            pending: loaded.release.pending.clone(),
            conformance_tests: 3,
        };
        let rebuilt = catalog_of(&stored).unwrap();
        assert_eq!(rebuilt.endpoints, loaded.catalog.endpoints);

        // A bad list in the database says so.
        let bad = StoredRelease {
            pending: Some("- [x]\n".into()),
            ..stored
        };
        let err = catalog_of(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "bad endpoint catalog from release 1.36.0 in the database: invalid pending"
            ),
            "{err}"
        );
    }

    #[test]
    fn sources_from_flags() {
        assert_eq!("cluster".parse(), Ok(SpecSource::Cluster));
        assert_eq!("embedded".parse(), Ok(SpecSource::Embedded));
        assert_eq!(
            "https://x/openapi/v2".parse(),
            Ok(SpecSource::Url("https://x/openapi/v2".into()))
        );
        assert_eq!("a.json".parse(), Ok(SpecSource::File("a.json".into())));
    }
}
