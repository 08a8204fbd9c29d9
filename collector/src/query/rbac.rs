//! Least-privilege RBAC from observed use, as audit2rbac derives it from audit logs: every
//! (verb, API group, resource/subresource) an app was seen using becomes a rule, in a `Role` of
//! the namespace it was used in, or in a `ClusterRole` for cluster-scoped or all-namespace use
//! and for non-resource URLs; resources of one API group with the same verbs share a rule.

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Table;

/// One observed kind of access by an app (a group of requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// App (identity name).
    pub app: String,
    /// Authenticated user, if known.
    pub user: Option<String>,
    /// Audit verb.
    pub verb: String,
    /// `objectRef.apiGroup` (`None`/empty: core).
    pub api_group: Option<String>,
    /// `objectRef.resource`; `None`: a non-resource URL.
    pub resource: Option<String>,
    /// `objectRef.subresource`.
    pub subresource: Option<String>,
    /// `objectRef.namespace`.
    pub namespace: Option<String>,
    /// The request URI (its path is the non-resource URL).
    pub uri: String,
}

/// A policy rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Rule {
    /// API groups (`""` = core).
    #[serde(rename = "apiGroups", default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    /// Resources (`pods/log` for subresources).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Non-resource URLs.
    #[serde(
        rename = "nonResourceURLs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
    /// Verbs.
    pub verbs: Vec<String>,
}

/// A subject the app ran as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Subject {
    /// `ServiceAccount` or `User`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Namespace of a service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// Rules of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceRules {
    /// The namespace.
    pub namespace: String,
    /// Its rules.
    pub rules: Vec<Rule>,
}

/// The RBAC one app needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRbac {
    /// App.
    pub app: String,
    /// Who it ran as.
    pub subjects: Vec<Subject>,
    /// ClusterRole rules.
    pub cluster_rules: Vec<Rule>,
    /// Role rules per namespace.
    pub namespaced_rules: Vec<NamespaceRules>,
    /// The manifests.
    pub yaml: String,
}

fn verb_rank(v: &str) -> (usize, &str) {
    const ORDER: [&str; 8] = [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    (ORDER.iter().position(|o| *o == v).unwrap_or(ORDER.len()), v)
}

fn sorted_verbs(set: &BTreeSet<String>) -> Vec<String> {
    let mut v: Vec<String> = set.iter().cloned().collect();
    v.sort_by(|a, b| verb_rank(a).cmp(&verb_rank(b)));
    v
}

/// (group, resource) → verbs, and URL → verbs, of one scope.
#[derive(Default)]
struct Scope {
    resources: BTreeMap<(String, String), BTreeSet<String>>,
    urls: BTreeMap<String, BTreeSet<String>>,
}

impl Scope {
    fn rules(&self) -> Vec<Rule> {
        // Merge resources of one group that need the same verbs.
        let mut by: BTreeMap<(String, Vec<String>), Vec<String>> = BTreeMap::new();
        for ((g, r), verbs) in &self.resources {
            by.entry((g.clone(), sorted_verbs(verbs)))
                .or_default()
                .push(r.clone());
        }
        let mut rules: Vec<Rule> = by
            .into_iter()
            .map(|((g, verbs), resources)| Rule {
                api_groups: vec![g],
                resources,
                non_resource_urls: vec![],
                verbs,
            })
            .collect();
        let mut urls: BTreeMap<Vec<String>, Vec<String>> = BTreeMap::new();
        for (u, verbs) in &self.urls {
            urls.entry(sorted_verbs(verbs)).or_default().push(u.clone());
        }
        rules.extend(urls.into_iter().map(|(verbs, non_resource_urls)| Rule {
            api_groups: vec![],
            resources: vec![],
            non_resource_urls,
            verbs,
        }));
        rules
    }
}

fn subject(user: &str) -> Subject {
    match user
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, name)) => Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(ns.into()),
        },
        None => Subject {
            kind: "User".into(),
            name: user.into(),
            namespace: None,
        },
    }
}

/// An [`Access`] as borrowed text, as a query reads it from its rows.
#[derive(Debug, Clone, Copy)]
pub struct AccessRef<'a> {
    /// App (identity name).
    pub app: &'a str,
    /// Authenticated user, if known.
    pub user: Option<&'a str>,
    /// Audit verb.
    pub verb: &'a str,
    /// `objectRef.apiGroup` (`None`/empty: core).
    pub api_group: Option<&'a str>,
    /// `objectRef.resource`; `None`: a non-resource URL.
    pub resource: Option<&'a str>,
    /// `objectRef.subresource`.
    pub subresource: Option<&'a str>,
    /// `objectRef.namespace`.
    pub namespace: Option<&'a str>,
    /// The request URI (its path is the non-resource URL).
    pub uri: &'a str,
}

impl Access {
    /// Borrowed.
    pub fn as_ref(&self) -> AccessRef<'_> {
        AccessRef {
            app: &self.app,
            user: self.user.as_deref(),
            verb: &self.verb,
            api_group: self.api_group.as_deref(),
            resource: self.resource.as_deref(),
            subresource: self.subresource.as_deref(),
            namespace: self.namespace.as_deref(),
            uri: &self.uri,
        }
    }
}

/// The scope of a cluster-wide grant, in [`Grant::scope`].
const CLUSTER: u32 = u32::MAX;

/// One distinct (app, scope, group, resource, subresource, verb), or (app, URL, verb), as
/// indexes of [`Deriver`]'s texts: a repeated access costs hash lookups of borrowed text, and
/// rules are built once per distinct grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Grant {
    app: u32,
    /// A namespace, or [`CLUSTER`].
    scope: u32,
    url: bool,
    group: u32,
    /// The resource, or a non-resource URL's path.
    resource: u32,
    subresource: u32,
    verb: u32,
}

/// Takes accesses one at a time (a query streams its rows in) and derives each app's RBAC
/// from them ([`Deriver::finish`]); accesses may repeat.
#[derive(Debug, Default)]
pub struct Deriver {
    texts: Vec<Box<str>>,
    ids: foldhash::HashMap<Box<str>, u32>,
    /// (app, user).
    subjects: foldhash::HashSet<(u32, u32)>,
    grants: foldhash::HashSet<Grant>,
}

impl Deriver {
    fn id(&mut self, text: &str) -> u32 {
        if let Some(&i) = self.ids.get(text) {
            return i;
        }
        let i = self.texts.len() as u32;
        self.texts.push(text.into());
        self.ids.insert(text.into(), i);
        i
    }

    /// Adds an observed access.
    pub fn add(&mut self, a: AccessRef<'_>) {
        let app = self.id(a.app);
        if let Some(u) = a.user {
            let u = self.id(u);
            self.subjects.insert((app, u));
        }
        let verb = self.id(a.verb);
        let empty = self.id("");
        let grant = match a.resource {
            None => Grant {
                app,
                scope: CLUSTER,
                url: true,
                group: empty,
                resource: self.id(a.uri.split('?').next().unwrap_or("")),
                subresource: empty,
                verb,
            },
            Some(resource) => Grant {
                app,
                scope: match a.namespace {
                    Some(ns) if !ns.is_empty() => self.id(ns),
                    _ => CLUSTER,
                },
                url: false,
                group: self.id(a.api_group.unwrap_or_default()),
                resource: self.id(resource),
                subresource: self.id(a.subresource.unwrap_or_default()),
                verb,
            },
        };
        self.grants.insert(grant);
    }

    /// Each app's RBAC, apps by name.
    pub fn finish(self) -> Vec<AppRbac> {
        #[derive(Default)]
        struct App {
            subjects: BTreeSet<Subject>,
            cluster: Scope,
            namespaces: BTreeMap<String, Scope>,
        }
        let t = |i: u32| -> &str { &self.texts[i as usize] };
        let mut apps: BTreeMap<&str, App> = BTreeMap::new();
        for &(app, user) in &self.subjects {
            apps.entry(t(app))
                .or_default()
                .subjects
                .insert(subject(t(user)));
        }
        for g in &self.grants {
            let app = apps.entry(t(g.app)).or_default();
            let verb = t(g.verb).to_owned();
            if g.url {
                app.cluster
                    .urls
                    .entry(t(g.resource).to_owned())
                    .or_default()
                    .insert(verb);
                continue;
            }
            let resource = match t(g.subresource) {
                "" => t(g.resource).to_owned(),
                s => format!("{}/{s}", t(g.resource)),
            };
            let scope = match g.scope {
                CLUSTER => &mut app.cluster,
                ns => app.namespaces.entry(t(ns).to_owned()).or_default(),
            };
            scope
                .resources
                .entry((t(g.group).to_owned(), resource))
                .or_default()
                .insert(verb);
        }
        apps.into_iter()
            .map(|(name, a)| {
                let mut r = AppRbac {
                    app: name.to_owned(),
                    subjects: a.subjects.into_iter().collect(),
                    cluster_rules: a.cluster.rules(),
                    namespaced_rules: a
                        .namespaces
                        .iter()
                        .map(|(ns, s)| NamespaceRules {
                            namespace: ns.clone(),
                            rules: s.rules(),
                        })
                        .collect(),
                    yaml: String::new(),
                };
                r.yaml = yaml(&r);
                r
            })
            .collect()
    }
}

/// Derives each app's RBAC from its observed accesses; apps by name.
pub fn derive<A: Borrow<Access>>(accesses: impl IntoIterator<Item = A>) -> Vec<AppRbac> {
    let mut d = Deriver::default();
    for a in accesses {
        d.add(a.borrow().as_ref());
    }
    d.finish()
}

/// An app's element of the answer's JSON, as [`Vec<AppRbac>`] prints it (pretty, indented
/// as an element of the array): [`json_of`] joins such elements into the answer.
pub fn element_json(a: &AppRbac) -> String {
    let s = serde_json::to_string_pretty(std::slice::from_ref(a)).expect("answers serialize");
    s["[\n  ".len()..s.len() - "\n]".len()].to_owned()
}

/// The answer's JSON from its elements ([`element_json`]), as the query answers print a
/// [`Vec<AppRbac>`] of them.
pub fn json_of<S: AsRef<str>>(elements: &[S]) -> String {
    if elements.is_empty() {
        return "[]\n".to_owned();
    }
    let len = elements.iter().map(|e| e.as_ref().len() + 4).sum::<usize>() + 4;
    let mut out = String::with_capacity(len);
    out.push('[');
    for (i, e) in elements.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        out.push_str(e.as_ref());
    }
    out.push_str("\n]\n");
    out
}

/// Parses an element of the answer's JSON back ([`element_json`]).
pub fn parse_element(json: &str) -> serde_json::Result<AppRbac> {
    serde_json::from_str(json)
}

/// A YAML scalar: plain when safe, else double-quoted (JSON escaping is valid YAML).
fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/-:@<>".contains(c))
        && s.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '/' || c == '.')
        && !s.ends_with(':')
        && !matches!(
            s,
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n" | "~"
        )
        && s.parse::<f64>().is_err();
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

/// An object name from an app name: RBAC names may not hold `/` or `%`.
fn object_name(app: &str) -> String {
    let clean: String = app
        .chars()
        .map(|c| {
            if c == '/' || c == '%' || c.is_whitespace() {
                '-'
            } else {
                c
            }
        })
        .collect();
    format!("whakapapa:{clean}")
}

fn write_rules(out: &mut String, rules: &[Rule]) {
    out.push_str("rules:\n");
    for r in rules {
        let mut first = true;
        let mut list = |out: &mut String, key: &str, items: &[String]| {
            if items.is_empty() {
                return;
            }
            let _ = writeln!(out, "{}{key}:", if first { "- " } else { "  " });
            first = false;
            for i in items {
                let _ = writeln!(out, "  - {}", scalar(i));
            }
        };
        list(out, "apiGroups", &r.api_groups);
        list(out, "nonResourceURLs", &r.non_resource_urls);
        list(out, "resources", &r.resources);
        list(out, "verbs", &r.verbs);
    }
}

fn write_meta(out: &mut String, kind: &str, name: &str, namespace: Option<&str>, app: &str) {
    let _ = writeln!(
        out,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata:"
    );
    let _ = writeln!(
        out,
        "  annotations:\n    whakapapa.dev/app: {}",
        scalar(app)
    );
    let _ = writeln!(out, "  name: {}", scalar(name));
    if let Some(ns) = namespace {
        let _ = writeln!(out, "  namespace: {}", scalar(ns));
    }
}

fn write_binding(
    out: &mut String,
    kind: &str,
    role_kind: &str,
    name: &str,
    ns: Option<&str>,
    a: &AppRbac,
) {
    out.push_str("---\n");
    write_meta(out, kind, name, ns, &a.app);
    let _ = writeln!(
        out,
        "roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: {role_kind}\n  name: {}\nsubjects:",
        scalar(name)
    );
    for s in &a.subjects {
        if s.kind == "User" {
            let _ = writeln!(
                out,
                "- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: {}",
                scalar(&s.name)
            );
        } else {
            let _ = writeln!(out, "- kind: {}\n  name: {}", s.kind, scalar(&s.name));
            if let Some(ns) = &s.namespace {
                let _ = writeln!(out, "  namespace: {}", scalar(ns));
            }
        }
    }
}

/// The app's manifests: a ClusterRole (+ binding) and a Role (+ binding) per namespace;
/// bindings only when the app's user is known.
pub fn yaml(a: &AppRbac) -> String {
    let name = object_name(&a.app);
    let mut out = String::new();
    if !a.cluster_rules.is_empty() {
        out.push_str("---\n");
        write_meta(&mut out, "ClusterRole", &name, None, &a.app);
        write_rules(&mut out, &a.cluster_rules);
        if !a.subjects.is_empty() {
            write_binding(
                &mut out,
                "ClusterRoleBinding",
                "ClusterRole",
                &name,
                None,
                a,
            );
        }
    }
    for ns in &a.namespaced_rules {
        out.push_str("---\n");
        write_meta(&mut out, "Role", &name, Some(&ns.namespace), &a.app);
        write_rules(&mut out, &ns.rules);
        if !a.subjects.is_empty() {
            write_binding(
                &mut out,
                "RoleBinding",
                "Role",
                &name,
                Some(&ns.namespace),
                a,
            );
        }
    }
    out
}

/// Every app's manifests, one YAML stream.
pub fn yaml_all(apps: &[AppRbac]) -> String {
    apps.iter().map(|a| a.yaml.as_str()).collect()
}

/// A rule as the table lists it, each list in one cell.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct RuleCells<'a> {
    app: &'a str,
    namespace: &'a str,
    api_groups: String,
    resources: String,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: String,
    verbs: String,
}

/// As a table: one row per rule.
pub fn tables(apps: &[AppRbac]) -> Vec<Table> {
    let j = |v: &[String]| {
        v.iter()
            .map(|s| {
                if s.is_empty() {
                    "\"\"".to_owned()
                } else {
                    s.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut rows = Vec::new();
    for a in apps {
        let scopes = std::iter::once(("", &a.cluster_rules)).chain(
            a.namespaced_rules
                .iter()
                .map(|n| (n.namespace.as_str(), &n.rules)),
        );
        for (ns, rules) in scopes {
            for r in rules {
                rows.push(RuleCells {
                    app: &a.app,
                    namespace: ns,
                    api_groups: j(&r.api_groups),
                    resources: j(&r.resources),
                    non_resource_urls: j(&r.non_resource_urls),
                    verbs: j(&r.verbs),
                });
            }
        }
    }
    vec![Table::of("rbac", &rows)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(
        verb: &str,
        group: Option<&str>,
        res: Option<&str>,
        sub: Option<&str>,
        ns: Option<&str>,
        uri: &str,
    ) -> Access {
        Access {
            app: "shop-controller".into(),
            user: Some("system:serviceaccount:shop:controller".into()),
            verb: verb.into(),
            api_group: group.map(Into::into),
            resource: res.map(Into::into),
            subresource: sub.map(Into::into),
            namespace: ns.map(Into::into),
            uri: uri.into(),
        }
    }

    #[test]
    fn derives_least_privilege_rules_per_scope() {
        let accesses = vec![
            acc(
                "list",
                None,
                Some("pods"),
                None,
                Some("shop"),
                "/api/v1/namespaces/shop/pods",
            ),
            acc(
                "watch",
                None,
                Some("pods"),
                None,
                Some("shop"),
                "/api/v1/namespaces/shop/pods?watch=true",
            ),
            acc(
                "list",
                None,
                Some("configmaps"),
                None,
                Some("shop"),
                "/api/v1/namespaces/shop/configmaps",
            ),
            acc(
                "watch",
                None,
                Some("configmaps"),
                None,
                Some("shop"),
                "/api/v1/namespaces/shop/configmaps",
            ),
            acc(
                "get",
                None,
                Some("pods"),
                Some("log"),
                Some("shop"),
                "/api/v1/namespaces/shop/pods/a/log",
            ),
            acc(
                "patch",
                Some("apps"),
                Some("deployments"),
                Some("scale"),
                Some("shop"),
                "/apis/apps/v1/namespaces/shop/deployments/web/scale",
            ),
            acc("list", None, Some("nodes"), None, None, "/api/v1/nodes"),
            acc("list", None, Some("pods"), None, None, "/api/v1/pods"),
            acc("get", None, None, None, None, "/version?timeout=32s"),
        ];
        let r = derive(&accesses);
        assert_eq!(r.len(), 1);
        let a = &r[0];
        assert_eq!(
            a.subjects,
            vec![Subject {
                kind: "ServiceAccount".into(),
                name: "controller".into(),
                namespace: Some("shop".into())
            }]
        );
        assert_eq!(
            a.yaml,
            r#"---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  annotations:
    whakapapa.dev/app: shop-controller
  name: whakapapa:shop-controller
rules:
- apiGroups:
  - ""
  resources:
  - nodes
  - pods
  verbs:
  - list
- nonResourceURLs:
  - /version
  verbs:
  - get
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  annotations:
    whakapapa.dev/app: shop-controller
  name: whakapapa:shop-controller
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: whakapapa:shop-controller
subjects:
- kind: ServiceAccount
  name: controller
  namespace: shop
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  annotations:
    whakapapa.dev/app: shop-controller
  name: whakapapa:shop-controller
  namespace: shop
rules:
- apiGroups:
  - ""
  resources:
  - pods/log
  verbs:
  - get
- apiGroups:
  - ""
  resources:
  - configmaps
  - pods
  verbs:
  - list
  - watch
- apiGroups:
  - apps
  resources:
  - deployments/scale
  verbs:
  - patch
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  annotations:
    whakapapa.dev/app: shop-controller
  name: whakapapa:shop-controller
  namespace: shop
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: whakapapa:shop-controller
subjects:
- kind: ServiceAccount
  name: controller
  namespace: shop
"#
        );
        let t = tables(&r);
        assert_eq!(t[0].rows.len(), 5);
        assert_eq!(
            t[0].rows[0],
            ["shop-controller", "", "\"\"", "nodes pods", "", "list"]
        );
    }

    #[test]
    fn kept_elements_join_into_the_answers_json() {
        let mut other = acc("get", None, Some("pods"), None, None, "/api/v1/pods");
        other.app = "curl \"quoted\"\n".into();
        let apps = derive(&[
            acc("list", None, Some("pods"), None, Some("shop"), "/"),
            other,
        ]);
        assert_eq!(apps.len(), 2);
        let elements: Vec<String> = apps.iter().map(element_json).collect();
        assert_eq!(json_of(&elements), super::super::answer::to_json(&apps));
        assert_eq!(
            json_of(&elements[..1]),
            super::super::answer::to_json(&apps[..1])
        );
        assert_eq!(
            json_of::<String>(&[]),
            super::super::answer::to_json(&apps[..0])
        );
        let back: Vec<AppRbac> = elements.iter().map(|e| parse_element(e).unwrap()).collect();
        assert_eq!(back, apps);
    }

    #[test]
    fn users_and_odd_names_are_quoted_safely() {
        let mut a = acc("get", None, Some("pods"), None, None, "/api/v1/pods");
        a.app = "curl/8.5.0 true: x".into();
        a.user = Some("alice".into());
        let r = derive(&[a]);
        assert!(
            r[0].yaml
                .contains("whakapapa.dev/app: \"curl/8.5.0 true: x\""),
            "{}",
            r[0].yaml
        );
        assert!(
            r[0].yaml.contains("  name: whakapapa:curl-8.5.0-true:-x\n"),
            "{}",
            r[0].yaml
        );
        assert!(
            r[0].yaml
                .contains("- apiGroup: rbac.authorization.k8s.io\n  kind: User\n  name: alice\n")
        );
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("1.5"), "\"1.5\"");
        assert_eq!(scalar(""), "\"\"");
    }
}
