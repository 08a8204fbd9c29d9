//! Kubernetes' conformance metadata of a release, as kubernetes/kubernetes keeps it in
//! `test/conformance/testdata/`: the conformance tests (`conformance.yaml`), the endpoints ruled
//! out of conformance (`ineligible_endpoints.yaml`) and those pending eligibility
//! (`pending_eligible_endpoints.yaml`).
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::catalog::{ConformanceTest, Pending};
//!
//! let tests = ConformanceTest::parse_list(b"- testname: Pod lifecycle
//!   codename: '[sig-node] Pods should run through the lifecycle of Pods [Conformance]'
//!   description: Create a Pod, patch it, delete it.
//!   release: v1.20, v1.35
//!   file: test/e2e/common/node/pods.go
//! ").unwrap();
//! assert_eq!(tests[0].file, "test/e2e/common/node/pods.go");
//! assert_eq!(tests[0].promotion_release(), "1.35.0");
//! assert!(Pending::from_yaml(b"---\n").unwrap().is_empty());
//! ```
//!
//! A bad entry is an error naming the list, the entry's line and column and what is wrong; the
//! caller adds which file or URL it came from.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{CatalogError, Ineligible, IneligibleEntry};

/// What the lists are called in errors.
const TESTS: &str = "conformance test list (conformance.yaml)";
const INELIGIBLE: &str = "ineligible endpoints list (ineligible_endpoints.yaml)";
const PENDING: &str = "pending eligible endpoints list (pending_eligible_endpoints.yaml)";

/// One conformance test of `conformance.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConformanceTest {
    /// The conformance name, e.g. `Pod lifecycle`.
    pub testname: String,
    /// The Ginkgo name, e.g. `[sig-node] Pods should ... [Conformance]`: what the e2e
    /// framework puts after ` -- ` in its user agent, so what a request's test is called.
    pub codename: String,
    /// What the test checks.
    pub description: String,
    /// The releases as written (`v1.9`, `v1.21, v1.35`); see [`Self::promotion_release`].
    pub release: String,
    /// The test's source file in kubernetes/kubernetes, e.g. `test/e2e/apps/deployment.go`.
    pub file: String,
}

impl ConformanceTest {
    /// Parses `conformance.yaml`: a list of `{testname, codename, description, release,
    /// file}`. Every field but `description` and `release` must be there and not empty, and no
    /// two entries may share a codename.
    pub fn parse_list(bytes: &[u8]) -> Result<Vec<ConformanceTest>, CatalogError> {
        #[derive(Deserialize)]
        struct Raw {
            testname: Option<String>,
            codename: Option<String>,
            description: Option<String>,
            release: Option<String>,
            file: Option<String>,
        }
        let list: Vec<Spanned<Raw>> = parse(TESTS, bytes)?;
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut tests = Vec::with_capacity(list.len());
        for (i, entry) in list.into_iter().enumerate() {
            let at = entry_error(TESTS, i, &entry);
            let raw = entry.value;
            let required = |field: Option<String>, name: &str| {
                field
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| at(format!("no `{name}`")))
            };
            let test = ConformanceTest {
                testname: required(raw.testname, "testname")?,
                codename: required(raw.codename, "codename")?,
                description: raw.description.unwrap_or_default().trim().to_owned(),
                release: raw.release.unwrap_or_default().trim().to_owned(),
                file: required(raw.file, "file")?,
            };
            if let Some(first) = seen.insert(test.codename.clone(), entry.referenced.line()) {
                return Err(at(format!(
                    "codename {:?} is also the codename of the entry at line {first}",
                    test.codename
                )));
            }
            tests.push(test);
        }
        Ok(tests)
    }

    /// The release the test was promoted in, as APISnoop reads `release` (so the export's
    /// `promotion_release` equals APISnoop's): none → `1.9.0`; a list (`v1.21, v1.35`) → its
    /// second entry; then without the `v`, with `.0` added to a `major.minor`.
    pub fn promotion_release(&self) -> String {
        let release = self.release.trim();
        if release.is_empty() {
            return "1.9.0".to_owned();
        }
        let one = match release.split_once(',') {
            Some((_, rest)) => rest.split(',').next().unwrap_or(rest),
            None => release,
        };
        let one = one.trim();
        let one = one.strip_prefix('v').unwrap_or(one);
        if one.split('.').count() == 2 {
            format!("{one}.0")
        } else {
            one.to_owned()
        }
    }
}

/// Endpoints listed in `pending_eligible_endpoints.yaml`: stable endpoints not yet counted as
/// conformance eligible.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pending {
    endpoints: BTreeSet<String>,
}

impl Pending {
    /// Parses the list of operation ids (an empty document is an empty list).
    pub fn from_yaml(bytes: &[u8]) -> Result<Pending, CatalogError> {
        let list: Vec<Spanned<String>> = parse(PENDING, bytes)?;
        let mut endpoints = BTreeSet::new();
        for (i, entry) in list.into_iter().enumerate() {
            let at = entry_error(PENDING, i, &entry);
            let id = entry.value.trim();
            if id.is_empty() {
                return Err(at("the operation id is empty".into()));
            }
            endpoints.insert(id.to_owned());
        }
        Ok(Pending { endpoints })
    }

    /// Whether the list names this operation id.
    pub fn contains(&self, operation_id: &str) -> bool {
        self.endpoints.contains(operation_id)
    }

    /// The operation ids, sorted.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.endpoints.iter().map(String::as_str)
    }

    /// Number of operation ids.
    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    /// No operation ids.
    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }
}

impl Ineligible {
    /// Parses kubernetes/kubernetes's `ineligible_endpoints.yaml`: a list of `{endpoint,
    /// reason, link}`, the entries APISnoop publishes as JSON.
    pub fn from_yaml(bytes: &[u8]) -> Result<Ineligible, CatalogError> {
        #[derive(Deserialize)]
        struct Raw {
            endpoint: Option<String>,
            reason: Option<String>,
            link: Option<String>,
        }
        let list: Vec<Spanned<Raw>> = parse(INELIGIBLE, bytes)?;
        let mut entries = HashMap::with_capacity(list.len());
        for (i, entry) in list.into_iter().enumerate() {
            let at = entry_error(INELIGIBLE, i, &entry);
            let raw = entry.value;
            let endpoint = raw
                .endpoint
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .ok_or_else(|| at("no `endpoint`".into()))?;
            let entry = IneligibleEntry {
                endpoint: endpoint.clone(),
                reason: raw.reason.unwrap_or_default().trim().to_owned(),
                link: raw
                    .link
                    .map(|l| l.trim().to_owned())
                    .filter(|l| !l.is_empty()),
            };
            entries.insert(endpoint, entry);
        }
        Ok(Ineligible { entries })
    }

    /// Parses either form: APISnoop's JSON array (text starting with `[`) or Kubernetes' YAML.
    pub fn parse(bytes: &[u8]) -> Result<Ineligible, CatalogError> {
        let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
        if text.trim_ascii_start().starts_with(b"[") {
            Ineligible::from_json(text)
        } else {
            Ineligible::from_yaml(text)
        }
    }
}

/// A list from one YAML document; an empty document (`---`, as the pending list is when no
/// endpoint is pending) or `null` is an empty list.
fn parse<T: serde::de::DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<Vec<T>, CatalogError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let before = &bytes[..e.valid_up_to()];
        let line = before.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        CatalogError::MetadataYaml {
            what,
            line,
            column: 1,
            message: "not UTF-8 text".into(),
        }
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let empty = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---" || l == "..." || l.starts_with('%')
    });
    if empty {
        return Ok(Vec::new());
    }
    let list: Option<Vec<T>> = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        let message = e.without_snippet().to_string();
        let message = message.lines().next().unwrap_or("invalid YAML").trim();
        CatalogError::MetadataYaml {
            what,
            line,
            column,
            message: message.to_owned(),
        }
    })?;
    Ok(list.unwrap_or_default())
}

/// Makes the error of entry `i` (0-based) at its line and column.
fn entry_error<T>(
    what: &'static str,
    i: usize,
    entry: &Spanned<T>,
) -> impl Fn(String) -> CatalogError + use<T> {
    let (line, column) = (entry.referenced.line(), entry.referenced.column());
    move |message| CatalogError::MetadataYaml {
        what,
        line,
        column,
        message: format!("entry {}: {message}", i + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
- testname: Priority and Fairness FlowSchema API
  codename: '[sig-api-machinery] API priority and fairness should support FlowSchema
    API operations [Conformance]'
  description: ' The flowcontrol.apiserver.k8s.io API group MUST exist.'
  release: v1.29
  file: test/e2e/apimachinery/flowcontrol.go
- testname: Pod Lifecycle
  codename: '[sig-node] Pods should run through the lifecycle of Pods and PodStatus [Conformance]'
  description: A Pod is created, patched and deleted.
  release: v1.20, v1.35
  file: test/e2e/common/node/pods.go
- testname: ConfigMap, from environment
  codename: '[sig-node] ConfigMap should be consumable via environment variable [NodeConformance] [Conformance]'
  description: ''
  release: \"1.25\"
  file: test/e2e/common/node/configmap.go
";

    #[test]
    fn conformance_yaml_is_read_with_folded_codenames() {
        let tests = ConformanceTest::parse_list(GOOD.as_bytes()).unwrap();
        assert_eq!(tests.len(), 3);
        assert_eq!(
            tests[0].codename,
            "[sig-api-machinery] API priority and fairness should support FlowSchema API \
             operations [Conformance]"
        );
        assert_eq!(tests[0].testname, "Priority and Fairness FlowSchema API");
        assert_eq!(tests[0].file, "test/e2e/apimachinery/flowcontrol.go");
        assert_eq!(
            tests[0].description,
            "The flowcontrol.apiserver.k8s.io API group MUST exist."
        );
        assert_eq!(tests[1].release, "v1.20, v1.35");
        assert_eq!(tests[2].release, "1.25");
        assert_eq!(tests[2].description, "");
    }

    #[test]
    fn promotion_release_reads_as_apisnoop_does() {
        for (release, want) in [
            ("v1.29", "1.29.0"),
            ("1.25", "1.25.0"),
            ("", "1.9.0"),
            ("v1.21, v1.35", "1.35.0"),
            ("v1.17, v1.21, v1.27", "1.21.0"),
            ("v1.30.2", "1.30.2"),
        ] {
            let t = ConformanceTest {
                testname: "t".into(),
                codename: "c".into(),
                description: String::new(),
                release: release.into(),
                file: "f".into(),
            };
            assert_eq!(t.promotion_release(), want, "{release:?}");
        }
    }

    #[test]
    fn bad_entries_say_which_and_where() {
        let cases: &[(&str, &str)] = &[
            (
                "- testname: a\n  codename: '[x] a'\n  file: a.go\n- testname: b\n  file: b.go\n",
                "invalid conformance test list (conformance.yaml) at line 4 column 3: entry 2: no `codename`",
            ),
            (
                "- testname: a\n  codename: '[x] a'\n  file: a.go\n- testname: b\n  codename: '[x] a'\n  file: b.go\n",
                "at line 4 column 3: entry 2: codename \"[x] a\" is also the codename of the entry at line 1",
            ),
            (
                "- testname: a\n  codename: [x, y]\n  file: a.go\n",
                "invalid conformance test list (conformance.yaml) at line 2",
            ),
            (
                "testname: a\n",
                "invalid conformance test list (conformance.yaml) at line 1",
            ),
            (
                "- testname: 'a\n",
                "invalid conformance test list (conformance.yaml) at line",
            ),
        ];
        for (yaml, want) in cases {
            let err = ConformanceTest::parse_list(yaml.as_bytes()).unwrap_err();
            assert!(
                err.to_string().contains(want),
                "{yaml:?}: got {err}, want {want}"
            );
        }
        let err = ConformanceTest::parse_list(b"- testname: \xff\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("at line 1 column 1: not UTF-8 text"),
            "{err}"
        );
    }

    #[test]
    fn pending_lists_read_empty_documents_and_ids() {
        for empty in ["---\n", "", "# none\n---\n...\n", "[]\n", "null\n"] {
            assert!(
                Pending::from_yaml(empty.as_bytes()).unwrap().is_empty(),
                "{empty:?}"
            );
        }
        let p = Pending::from_yaml(b"- readCoreV1NamespacedPodLog\n- listCoreV1Node\n").unwrap();
        assert_eq!(
            p.iter().collect::<Vec<_>>(),
            ["listCoreV1Node", "readCoreV1NamespacedPodLog"]
        );
        assert!(p.contains("listCoreV1Node") && !p.contains("x"));
        let err = Pending::from_yaml(b"- a\n- ''\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid pending eligible endpoints list (pending_eligible_endpoints.yaml) at line 2 \
             column 3: entry 2: the operation id is empty"
        );
        let err = Pending::from_yaml(b"- a\n- {b: 1}\n").unwrap_err();
        assert!(err.to_string().contains("at line 2"), "{err}");
    }

    #[test]
    fn ineligible_lists_read_from_yaml_or_json() {
        let yaml = b"- endpoint: connectCoreV1GetNodeProxy\n  reason: Unable to be tested\n  link: https://github.com/kubernetes/kubernetes/issues/95930\n- endpoint: getCodeVersion\n  reason: debug\n";
        let list = Ineligible::parse(yaml).unwrap();
        assert_eq!(list.len(), 2);
        let e = list.get("connectCoreV1GetNodeProxy").unwrap();
        assert_eq!(e.reason, "Unable to be tested");
        assert_eq!(
            e.link.as_deref(),
            Some("https://github.com/kubernetes/kubernetes/issues/95930")
        );
        assert_eq!(list.get("getCodeVersion").unwrap().link, None);
        let json = br#"  [{"endpoint":"getCodeVersion","reason":"debug"}]"#;
        assert_eq!(Ineligible::parse(json).unwrap().len(), 1);
        let err = Ineligible::parse(b"- endpoint: a\n- reason: b\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid ineligible endpoints list (ineligible_endpoints.yaml) at line 2 column 3: \
             entry 2: no `endpoint`"
        );
    }
}
