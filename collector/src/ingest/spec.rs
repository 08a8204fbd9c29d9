//! Where the endpoint catalog comes from: the embedded 1.36 document, a file, an http(s) URL, or
//! the live cluster's `/openapi/v2` and every `/openapi/v3` group-version document (its CRDs'
//! and aggregated APIs' endpoints marked as extensions); what release label it gets; and how a
//! cluster's catalog is refreshed over the one stored before.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Limited};

use super::Error;
use crate::catalog::{Catalog, Ineligible, merge_openapi, openapi_v3_documents};
use crate::store::{EndpointRecord, ReleaseRecord, StoredRelease};

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

/// A catalog ready to map with and to store.
#[derive(Debug, Clone)]
pub struct LoadedCatalog {
    /// The endpoints.
    pub catalog: Catalog,
    /// What the store keeps of it.
    pub release: ReleaseRecord,
    /// Operation ids of the endpoints a refresh added to the stored release ([`refreshed`]).
    pub added: Vec<String>,
}

/// Reads the document, builds the catalog and settles its release label: `release` if given,
/// else the document's `info.version`, else (for `cluster`) the server's `gitVersion`, else a
/// version in the file name; none of these is an error asking for `--release`.
pub async fn load(
    source: &SpecSource,
    ineligible: Option<&Path>,
    release: Option<&str>,
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
    let ineligible_json = match ineligible {
        Some(path) => std::fs::read(path).map_err(|e| Error::Input {
            path: path.to_path_buf(),
            source: e,
        })?,
        None => EMBEDDED_INELIGIBLE.to_vec(),
    };
    let list = Ineligible::from_json(&ineligible_json).map_err(|e| Error::Spec {
        source_name: ineligible.map_or("embedded ineligible list".into(), |p| {
            p.display().to_string()
        }),
        reason: e.to_string(),
    })?;
    let catalog = Catalog::from_openapi(&spec, Some(&list)).map_err(|e| Error::Spec {
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
    let mut release = release_record(
        &catalog,
        label,
        spec,
        String::from_utf8(ineligible_json).ok(),
    );
    release.refresh = *source == SpecSource::Cluster;
    Ok(LoadedCatalog {
        catalog,
        release,
        added: Vec::new(),
    })
}

/// `loaded` over the release stored before under its label (`previous`): a live cluster's
/// catalog of now, keeping every endpoint the stored one has at its position (also those of
/// CRDs deleted since: requests stored against them keep them), with the new ones after them.
/// Storing the result refreshes the stored release.
pub fn refreshed(loaded: &LoadedCatalog, previous: &StoredRelease) -> Result<LoadedCatalog, Error> {
    let fail = |reason: String| Error::Spec {
        source_name: format!("release {} refreshed", loaded.release.label),
        reason,
    };
    let spec = merge_openapi(
        Some(&loaded.release.spec),
        &[],
        Some(&previous.spec),
        &BTreeMap::new(),
    )
    .map_err(|e| fail(e.to_string()))?;
    let list = loaded
        .release
        .ineligible
        .as_deref()
        .map(|j| Ineligible::from_json(j.as_bytes()))
        .transpose()
        .map_err(|e| fail(e.to_string()))?;
    let catalog = Catalog::from_openapi(&spec, list.as_ref()).map_err(|e| fail(e.to_string()))?;
    let mut release = release_record(
        &catalog,
        loaded.release.label.clone(),
        spec,
        loaded.release.ineligible.clone(),
    );
    release.refresh = true;
    let before = catalog_of(previous)?.endpoints.len();
    let added = catalog.endpoints[before.min(catalog.endpoints.len())..]
        .iter()
        .map(|e| e.operation_id.clone())
        .collect();
    Ok(LoadedCatalog {
        catalog,
        release,
        added,
    })
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
            })
            .collect(),
        refresh: false,
    }
}

/// Rebuilds the catalog of a stored release (what `serve` maps with when not given a spec).
pub fn catalog_of(stored: &StoredRelease) -> Result<Catalog, Error> {
    let list = stored
        .ineligible
        .as_deref()
        .map(|j| Ineligible::from_json(j.as_bytes()))
        .transpose()
        .map_err(|e| Error::Spec {
            source_name: format!("release {} in the database", stored.label),
            reason: e.to_string(),
        })?;
    Catalog::from_openapi(&stored.spec, list.as_ref()).map_err(|e| Error::Spec {
        source_name: format!("release {} in the database", stored.label),
        reason: e.to_string(),
    })
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
