//! Who a program says it is (client-go's identity shape) and the test it runs.

use serde::{Deserialize, Serialize};

/// A program's self-identity: client-go's `name/version (os/arch) source/commit[/detail]`,
/// plus whakapapa's ` built-by X at T`.
///
/// ```
/// use whakapapa_wire::Identity;
///
/// let kcm = Identity::parse(
///     "kube-controller-manager/v1.36.0 (linux/amd64) kubernetes/3f7a50f/system:serviceaccount:kube-system:job-controller",
/// );
/// assert_eq!(kcm.name.as_deref(), Some("kube-controller-manager"));
/// assert_eq!(kcm.detail.as_deref(), Some("system:serviceaccount:kube-system:job-controller"));
/// ```
///
/// On the side channel it is the record's `identity` object, the text as `user_agent`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Identity {
    /// Program name (`kubelet`, `e2e.test`).
    #[serde(default)]
    pub name: Option<String>,
    /// Version (`v1.36.0`).
    #[serde(default)]
    pub version: Option<String>,
    /// Operating system in Go's naming (`linux`).
    #[serde(default)]
    pub os: Option<String>,
    /// Architecture in Go's naming (`amd64`).
    #[serde(default)]
    pub arch: Option<String>,
    /// Where the commit comes from (`kubernetes`, `git`).
    #[serde(default)]
    pub source: Option<String>,
    /// Source commit.
    #[serde(default)]
    pub commit: Option<String>,
    /// What client-go users append after the commit, without the `/`: kube-controller-manager
    /// writes the service account of each controller
    /// (`system:serviceaccount:kube-system:deployment-controller`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `user@host` that built the program.
    #[serde(default)]
    pub built_by: Option<String>,
    /// RFC 3339 build time.
    #[serde(default)]
    pub built_at: Option<String>,
    /// The identity as written (the whole user agent when it has no known shape).
    #[serde(rename = "user_agent", default)]
    pub text: String,
}

const BUILT_BY: &str = " built-by ";

impl Identity {
    /// Parses an identity text, which is kept as [`text`](Self::text); the fields stay `None`
    /// unless it has client-go's shape (or is a single `name/version` token).
    pub fn parse(text: &str) -> Identity {
        let mut identity = Identity {
            text: text.to_owned(),
            ..Identity::default()
        };
        identity.fill_fields();
        identity
    }

    /// The identity text: [`text`](Self::text), or when that is empty the text rendered from
    /// the fields (`unknown` for a missing one).
    pub fn render(&self) -> String {
        if !self.text.is_empty() {
            return self.text.clone();
        }
        let field = |v: &Option<String>| v.as_deref().unwrap_or("unknown").to_owned();
        let mut out = format!(
            "{}/{} ({}/{}) {}/{}",
            field(&self.name),
            field(&self.version),
            field(&self.os),
            field(&self.arch),
            field(&self.source),
            field(&self.commit),
        );
        if let Some(detail) = &self.detail {
            out.push('/');
            out.push_str(detail);
        }
        if let Some(by) = &self.built_by {
            out.push_str(BUILT_BY);
            out.push_str(by);
            if let Some(at) = &self.built_at {
                out.push_str(" at ");
                out.push_str(at);
            }
        }
        out
    }

    fn fill_fields(&mut self) {
        let text = self.text.as_str();
        // `built-by` is whakapapa's addition, always last.
        let (main, built) = match text.rfind(BUILT_BY) {
            Some(i) => (&text[..i], Some(&text[i + BUILT_BY.len()..])),
            None => (text, None),
        };
        let Some(parts) = client_go_parts(main) else {
            if !text.contains(' ')
                && let Some((name, version)) = text.split_once('/')
                && !name.is_empty()
                && !version.is_empty()
            {
                self.name = Some(name.to_owned());
                self.version = Some(version.to_owned());
            }
            return;
        };
        let [name, version, os, arch, source, commit] = parts.fields.map(|f| Some(f.to_owned()));
        let detail = parts.detail.map(str::to_owned);
        let (built_by, built_at) = match built.map(|b| b.rsplit_once(" at ").ok_or(b)) {
            Some(Ok((by, at))) => (Some(by.to_owned()), Some(at.to_owned())),
            Some(Err(by)) => (Some(by.to_owned()), None),
            None => (None, None),
        };
        *self = Identity {
            name,
            version,
            os,
            arch,
            source,
            commit,
            detail,
            built_by,
            built_at,
            text: std::mem::take(&mut self.text),
        };
    }
}

struct ClientGoParts<'a> {
    fields: [&'a str; 6],
    detail: Option<&'a str>,
}

/// Splits `name/version (os/arch) source/commit[/detail]`.
fn client_go_parts(text: &str) -> Option<ClientGoParts<'_>> {
    let (name_version, rest) = text.split_once(" (")?;
    let (platform, rest) = rest.split_once(") ")?;
    let (name, version) = name_version.split_once('/')?;
    let (os, arch) = platform.split_once('/')?;
    let (source, commit_detail) = rest.split_once('/')?;
    let (commit, detail) = match commit_detail.split_once('/') {
        Some((commit, detail)) => (commit, Some(detail)),
        None => (commit_detail, None),
    };
    let fields = [name, version, os, arch, source, commit];
    let clean = |s: &str| !s.is_empty() && !s.contains(' ');
    if !fields.iter().all(|f| clean(f)) {
        return None;
    }
    Some(ClientGoParts { fields, detail })
}

/// The test a request was made from: the ` -- <test>` of a user agent, as the Kubernetes e2e
/// framework writes it, or a libtest test name.
///
/// ```
/// use whakapapa_wire::TestInfo;
///
/// let t = TestInfo::parse("[sig-apps] Deployment should work [Serial] [Conformance]");
/// assert_eq!((t.sig.as_deref(), t.conformance), (Some("sig-apps"), true));
/// assert_eq!(t.tags, ["Serial"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TestInfo {
    /// The full test name.
    pub name: String,
    /// The first `[sig-…]` tag, e.g. `sig-apps`.
    pub sig: Option<String>,
    /// The name carries `[Conformance]`.
    pub conformance: bool,
    /// Other `[…]` tags, in order, without brackets (`Serial`, `Feature:Foo`, ...).
    pub tags: Vec<String>,
}

impl TestInfo {
    /// Reads the tags of a test name.
    pub fn parse(name: &str) -> TestInfo {
        let mut info = TestInfo {
            name: name.to_owned(),
            ..TestInfo::default()
        };
        let mut rest = name;
        while let Some(open) = rest.find('[') {
            let Some(len) = rest[open + 1..].find(']') else {
                break;
            };
            let tag = &rest[open + 1..open + 1 + len];
            rest = &rest[open + 1 + len + 1..];
            if tag.is_empty() {
                continue;
            }
            if tag == "Conformance" {
                info.conformance = true;
            } else if tag.starts_with("sig-") && info.sig.is_none() {
                info.sig = Some(tag.to_owned());
            } else {
                info.tags.push(tag.to_owned());
            }
        }
        info
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_from_fields_and_parses_back() {
        let mut id = Identity {
            name: Some("shop".into()),
            version: Some("v1".into()),
            os: Some("linux".into()),
            arch: Some("amd64".into()),
            source: Some("git".into()),
            commit: Some("abc".into()),
            built_by: Some("ci".into()),
            built_at: Some("2026-11-20T10:00:00Z".into()),
            ..Identity::default()
        };
        let cases = [
            (
                None,
                None,
                "shop/v1 (linux/amd64) git/abc built-by ci at 2026-11-20T10:00:00Z",
            ),
            (
                Some("system:serviceaccount:kube-system:job-controller"),
                None,
                "shop/v1 (linux/amd64) git/abc/system:serviceaccount:kube-system:job-controller built-by ci at 2026-11-20T10:00:00Z",
            ),
            (None, Some(()), "shop/v1 (linux/amd64) git/abc built-by ci"),
        ];
        for (detail, no_time, want) in cases {
            id.detail = detail.map(str::to_owned);
            if no_time.is_some() {
                id.built_at = None;
            }
            let text = id.render();
            assert_eq!(text, want);
            assert_eq!(Identity::parse(&text), Identity { text, ..id.clone() });
        }
        assert_eq!(
            Identity::default().render(),
            "unknown/unknown (unknown/unknown) unknown/unknown"
        );
        let kept = Identity::parse("odd text");
        assert_eq!(kept.render(), "odd text");
    }

    #[test]
    fn shapes_that_are_not_client_go_keep_only_the_text() {
        for text in [
            "Mozilla/5.0 (X11; Linux x86_64)",
            "a/b (c/d) e",
            "curl",
            "/v1",
            "x/",
        ] {
            let id = Identity::parse(text);
            assert_eq!(
                Identity {
                    text: String::new(),
                    ..id.clone()
                },
                Identity::default(),
                "{text}"
            );
            assert_eq!(id.text, text);
        }
        let probe = Identity::parse("kube-probe/1.36");
        assert_eq!(
            (probe.name.as_deref(), probe.version.as_deref(), probe.os),
            (Some("kube-probe"), Some("1.36"), None)
        );
    }

    #[test]
    fn test_tags_table() {
        let cases: [(&str, Option<&str>, bool, &[&str]); 4] = [
            ("tests::it::works", None, false, &[]),
            (
                "[sig-a] [sig-b] x [Conformance] [] [Slow]",
                Some("sig-a"),
                true,
                &["sig-b", "Slow"],
            ),
            ("unclosed [Serial", None, false, &[]),
            ("[Feature:X] ] [y]", None, false, &["Feature:X", "y"]),
        ];
        for (name, sig, conformance, tags) in cases {
            let t = TestInfo::parse(name);
            assert_eq!(
                (t.sig.as_deref(), t.conformance),
                (sig, conformance),
                "{name}"
            );
            assert_eq!(t.tags, tags, "{name}");
            assert_eq!(t.name, name);
        }
    }
}
