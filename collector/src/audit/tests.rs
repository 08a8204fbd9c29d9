use super::*;

/// A Metadata-level v1 event as kube-apiserver's log backend writes it (one line).
pub(crate) const V1_METADATA: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns\u0026limit=500","verb":"list","user":{"username":"system:serviceaccount:kube-system:coredns","uid":"3f1a2b4c-5d6e-4f70-8a91-b2c3d4e5f607","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=7b1e0c2a-3f4d-4e5f-9a6b-7c8d9e0f1a2b"],"authentication.kubernetes.io/node-name":["kind-control-plane"]}},"sourceIPs":["10.244.0.3"],"userAgent":"coredns/v1.11.3 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T10:00:00.123456Z","stageTimestamp":"2026-11-20T10:00:00.127001Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:coredns\" of ClusterRole \"system:coredns\" to ServiceAccount \"coredns/kube-system\""}}"#;

/// A RequestReceived v1beta1 event as Kubernetes 1.12 writes it at Request level: the
/// deprecated `timestamp` (the receive time) and `metadata.creationTimestamp` (the stage time),
/// to the second, beside their microsecond successors; a request body.
const V1BETA1_REQUEST: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2026-11-20T10:00:01Z"},"level":"Request","timestamp":"2026-11-20T10:00:01Z","auditID":"0b9f3c1e-2d4a-4b6c-8e0f-1a2b3c4d5e6f","stage":"RequestReceived","requestURI":"/api/v1/namespaces/default/configmaps","verb":"create","user":{"username":"kubernetes-admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["172.18.0.1"],"objectRef":{"resource":"configmaps","namespace":"default","apiVersion":"v1"},"requestObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"a":"[{]}\""}},"requestReceivedTimestamp":"2026-11-20T10:00:01.000001Z","stageTimestamp":"2026-11-20T10:00:01.000001Z"}"#;

/// Kubernetes 1.7 (`--audit-log-format=json`, `AdvancedAuditing`): v1alpha1, a receive time
/// to the second in `timestamp`, the group in objectRef's `apiVersion`, no user agent.
pub(crate) const V1ALPHA1_17: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1alpha1","metadata":{"creationTimestamp":null},"level":"Metadata","timestamp":"2017-09-26T10:00:01Z","auditID":"b6c0e5a7-1f3d-4e2a-9c8b-7d6e5f4a3b2c","stage":"ResponseComplete","requestURI":"/apis/extensions/v1beta1/namespaces/kube-system/deployments/kube-dns","verb":"get","user":{"username":"system:serviceaccount:kube-system:deployment-controller","uid":"4a5b6c7d-0e1f-11e7-8a9b-42010a800002","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"]},"sourceIPs":["10.128.0.2"],"objectRef":{"resource":"deployments","namespace":"kube-system","name":"kube-dns","apiVersion":"extensions/v1beta1"},"responseStatus":{"metadata":{},"code":200}}"#;

/// Kubernetes 1.8: v1beta1 with `timestamp` only (no `requestReceivedTimestamp`, no
/// `stageTimestamp`), `metadata.creationTimestamp` null, the core group's `apiGroup` omitted.
pub(crate) const V1BETA1_18: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":null},"level":"Metadata","timestamp":"2017-11-02T14:20:05Z","auditID":"e1d2c3b4-a596-4788-b9ca-dbecfd0e1f20","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/default/pods/web-0/log?container=nginx","verb":"get","user":{"username":"admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["203.0.113.7"],"objectRef":{"resource":"pods","namespace":"default","name":"web-0","apiVersion":"v1","subresource":"log"},"responseStatus":{"metadata":{},"code":200}}"#;

/// A non-resource request: no objectRef, no userAgent, no annotations.
const NON_RESOURCE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5d7c1a3b-0e2f-4a6b-9c8d-7e6f5a4b3c2d","stage":"ResponseComplete","requestURI":"/healthz","verb":"get","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["127.0.0.1"],"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T10:00:02.5Z","stageTimestamp":"2026-11-20T10:00:02.5005Z"}"#;

#[test]
fn parses_v1_metadata_event() {
    let e = parse_event(V1_METADATA.as_bytes()).unwrap();
    assert_eq!(e.api_version.as_deref(), Some("audit.k8s.io/v1"));
    assert_eq!(e.level, Some(Level::Metadata));
    assert_eq!(e.audit_id, "9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d");
    assert_eq!(e.stage, Stage::ResponseComplete);
    assert_eq!(
        e.request_uri,
        "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns&limit=500"
    );
    assert_eq!(e.verb, "list");
    assert_eq!(e.user.username, "system:serviceaccount:kube-system:coredns");
    assert_eq!(e.user.groups.len(), 3);
    assert_eq!(e.source_ips, vec!["10.244.0.3"]);
    assert_eq!(
        e.user_agent.as_deref(),
        Some("coredns/v1.11.3 (linux/amd64) kubernetes/abc1234")
    );
    let object = e.object_ref.as_ref().unwrap();
    assert_eq!(object.resource.as_deref(), Some("pods"));
    assert_eq!(object.namespace.as_deref(), Some("kube-system"));
    assert_eq!(object.name, None);
    assert_eq!(e.status_code(), Some(200));
    assert_eq!(e.received_us(), Some(1_795_168_800_123_456));
    assert_eq!(e.latency_us(), Some(3_545));
    assert_eq!(
        e.annotations.authorization_decision.as_deref(),
        Some("allow")
    );
}

#[test]
fn parses_v1beta1_request_received_without_response() {
    let e = parse_event(V1BETA1_REQUEST.as_bytes()).unwrap();
    assert_eq!(e.api_version.as_deref(), Some("audit.k8s.io/v1beta1"));
    assert_eq!(e.stage, Stage::RequestReceived);
    assert_eq!(e.level, Some(Level::Request));
    assert_eq!(e.response_status, None);
    // The microsecond fields win over the deprecated ones to the second.
    assert_eq!(e.received_us(), Some(1_795_168_801_000_001));
    assert_eq!(e.latency_us(), Some(0));
    assert_eq!(e.user_agent, None);
    assert_eq!(e.impersonated_user, None);
}

/// A release's event: name, line, then what is read of it: URI, receive and stage times (µs),
/// objectRef's group, version, resource and name.
type ReleaseCase<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<i64>,
    Option<i64>,
    [Option<&'a str>; 4],
);

/// One row per release's shape: what a user sees of each (time, object, group).
#[test]
fn reads_the_event_of_every_release() {
    let v1_12 = V1BETA1_REQUEST;
    let cases: &[ReleaseCase<'_>] = &[
        (
            "v1alpha1, 1.7",
            V1ALPHA1_17,
            "/apis/extensions/v1beta1/namespaces/kube-system/deployments/kube-dns",
            Some(1_506_420_001_000_000),
            None,
            [
                Some("extensions"),
                Some("v1beta1"),
                Some("deployments"),
                Some("kube-dns"),
            ],
        ),
        (
            "v1beta1, 1.8",
            V1BETA1_18,
            "/api/v1/namespaces/default/pods/web-0/log?container=nginx",
            Some(1_509_632_405_000_000),
            None,
            [None, Some("v1"), Some("pods"), Some("web-0")],
        ),
        (
            "v1beta1, 1.12",
            v1_12,
            "/api/v1/namespaces/default/configmaps",
            Some(1_795_168_801_000_001),
            Some(1_795_168_801_000_001),
            [None, Some("v1"), Some("configmaps"), None],
        ),
        (
            "v1",
            V1_METADATA,
            "/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns&limit=500",
            Some(1_795_168_800_123_456),
            Some(1_795_168_800_127_001),
            [None, Some("v1"), Some("pods"), None],
        ),
    ];
    for (name, line, uri, received, staged, [group, version, resource, object]) in cases {
        let e = parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(e.request_uri, *uri, "{name}");
        assert_eq!(e.received_us(), *received, "{name}");
        assert_eq!(
            e.stage_timestamp.map(|t| t.as_microsecond()),
            *staged,
            "{name}"
        );
        let o = e.object_ref.as_ref().unwrap();
        assert_eq!(
            [&o.api_group, &o.api_version, &o.resource, &o.name].map(|f| f.as_deref()),
            [*group, *version, *resource, *object],
            "{name}"
        );
        assert!(
            !e.audit_id.is_empty() && !e.user.username.is_empty(),
            "{name}"
        );
        // The borrowed parse reads the same.
        assert_eq!(parse_event_ref(line.as_bytes()).unwrap().into_owned(), e);
    }
    // 1.7 names the core group's version `/v1`; it is the core group, as later versions say.
    let core = V1ALPHA1_17.replace(
        r#""apiVersion":"extensions/v1beta1"}"#,
        r#""apiVersion":"/v1"}"#,
    );
    let o = parse_event(core.as_bytes()).unwrap().object_ref.unwrap();
    assert_eq!((o.api_group, o.api_version.as_deref()), (None, Some("v1")));
}

/// Before 1.9 a request's stages carry the one `timestamp` it was received at (kube-apiserver
/// fills one event per request and writes it at each stage), so they key alike; from 1.9 on
/// `metadata.creationTimestamp` is the stage's time and does not change the key.
#[test]
fn the_stages_of_an_old_request_key_alike() {
    let received = V1BETA1_18.replace(
        r#""stage":"ResponseComplete""#,
        r#""stage":"RequestReceived""#,
    );
    let received = received.replace(r#","responseStatus":{"metadata":{},"code":200}"#, "");
    let a = parse_event(received.as_bytes()).unwrap();
    let b = parse_event(V1BETA1_18.as_bytes()).unwrap();
    assert_eq!(
        (a.stage, b.stage),
        (Stage::RequestReceived, Stage::ResponseComplete)
    );
    assert_eq!(
        (&a.audit_id, a.received_us()),
        (&b.audit_id, b.received_us())
    );
    let staged = V1BETA1_18.replace(
        r#""metadata":{"creationTimestamp":null}"#,
        r#""metadata":{"creationTimestamp":"2017-11-02T14:20:07Z"}"#,
    );
    let c = parse_event(staged.as_bytes()).unwrap();
    assert_eq!(c.received_us(), b.received_us());
    assert_eq!(c.latency_us(), Some(2_000_000));
}

/// The fields of old versions are read when the event has nothing newer, and then they must
/// be well-formed.
#[test]
fn old_time_fields_are_read_only_in_old_events() {
    let bad = V1BETA1_18.replace("2017-11-02T14:20:05Z", "yesterday");
    let err = parse_event(bad.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("invalid `timestamp`: failed to parse"),
        "{err}"
    );
    let bad = V1BETA1_18.replace(
        r#""creationTimestamp":null"#,
        r#""creationTimestamp":"soon""#,
    );
    let err = parse_event(bad.as_bytes()).unwrap_err().to_string();
    assert!(
        err.contains("invalid `metadata.creationTimestamp`"),
        "{err}"
    );
    // Beside the newer fields they are not read at all.
    let ignored = V1BETA1_REQUEST.replace(
        r#""timestamp":"2026-11-20T10:00:01Z""#,
        r#""timestamp":"x""#,
    );
    assert_eq!(
        parse_event(ignored.as_bytes()).unwrap().received_us(),
        Some(1_795_168_801_000_001)
    );
}

#[test]
fn an_event_without_an_audit_id_gets_one_per_request() {
    let event = |stage: &str, uri: &str, ts: &str| {
        let line = format!(
            r#"{{"stage":"{stage}","verb":"get","requestURI":"{uri}","user":{{"username":"jane"}},"sourceIPs":["10.0.0.1"],"timestamp":"{ts}"}}"#
        );
        parse_event(line.as_bytes()).unwrap().audit_id
    };
    let id = event("RequestReceived", "/api/v1/pods", "2017-09-26T10:00:01Z");
    assert!(
        id.starts_with("no-audit-id:") && id.len() == 12 + 16,
        "{id}"
    );
    // The same request's other stage, and the same event read again: the same ID.
    assert_eq!(
        event("ResponseComplete", "/api/v1/pods", "2017-09-26T10:00:01Z"),
        id
    );
    assert_eq!(
        event("RequestReceived", "/api/v1/pods", "2017-09-26T10:00:01Z"),
        id
    );
    // Another request: another ID.
    assert_ne!(
        event("RequestReceived", "/api/v1/pods", "2017-09-26T10:00:02Z"),
        id
    );
    assert_ne!(
        event("RequestReceived", "/api/v1/nodes", "2017-09-26T10:00:01Z"),
        id
    );
    // An empty auditID is none.
    let empty = V1_METADATA.replace(
        r#""auditID":"9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d""#,
        r#""auditID":"""#,
    );
    assert!(
        parse_event(empty.as_bytes())
            .unwrap()
            .audit_id
            .starts_with("no-audit-id:")
    );
}

#[test]
fn parses_non_resource_and_impersonation() {
    let e = parse_event(NON_RESOURCE.as_bytes()).unwrap();
    assert_eq!(e.object_ref, None);
    assert_eq!(e.latency_us(), Some(500));
    let with_impersonation = V1_METADATA.replace(
        r#""sourceIPs""#,
        r#""impersonatedUser":{"username":"jane","groups":["devs"]},"sourceIPs""#,
    );
    let e = parse_event(with_impersonation.as_bytes()).unwrap();
    let imp = e.impersonated_user.unwrap();
    assert_eq!((imp.username.as_str(), imp.groups.len()), ("jane", 1));
}

#[test]
fn accepts_omittable_fields_absent() {
    let minimal = r#"{"level":"Metadata","auditID":"a","stage":"Panic","requestURI":"/x","verb":"get","user":{},"requestReceivedTimestamp":"2026-11-20T10:00:00Z"}"#;
    let e = parse_event(minimal.as_bytes()).unwrap();
    assert_eq!(e.api_version, None);
    assert_eq!(e.stage, Stage::Panic);
    assert!(e.source_ips.is_empty());
    let null_stage = minimal.replace("\"user\"", "\"stageTimestamp\":null,\"user\"");
    assert_eq!(
        parse_event(null_stage.as_bytes()).unwrap().stage_timestamp,
        None
    );
    // Trailing CR/LF of a line is fine.
    parse_event(format!("{minimal}\r\n").as_bytes()).unwrap();
}

/// A verb and a request URI make an event; whatever else is absent or null, it is read.
#[test]
fn accepts_every_event_with_a_verb_and_a_uri() {
    for line in [
        r#"{"verb":"get","requestURI":"/healthz"}"#,
        // What Go's encoder writes as null: pointers and zero times.
        r#"{"requestURI":"/healthz","verb":"get","level":null,"objectRef":null,"responseStatus":null,"impersonatedUser":null,"userAgent":null,"apiVersion":null}"#,
        r#"{"verb":"get","requestURI":"/healthz","timestamp":null,"requestReceivedTimestamp":null,"metadata":{"creationTimestamp":null},"objectRef":{}}"#,
        r#"{"verb":"get","requestURI":"/healthz","user":{"uid":"7"},"responseStatus":{}}"#,
    ] {
        let e = parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(
            (e.verb.as_str(), e.request_uri.as_str()),
            ("get", "/healthz")
        );
        assert_eq!(e.stage, Stage::ResponseComplete, "{line}");
        assert_eq!(
            (e.level, e.received_us(), e.latency_us()),
            (None, None, None)
        );
        assert_eq!(e.user.username, "");
        assert!(e.audit_id.starts_with("no-audit-id:"), "{line}");
    }
}

#[test]
fn names_the_missing_or_bad_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"requestURI\"",
            "\"requestUri\"",
            "missing field `requestURI`",
        ),
        ("\"verb\"", "\"verbs\"", "missing field `verb`"),
        (
            "\"ResponseComplete\"",
            "\"Done\"",
            "unknown variant `Done`, expected one of `RequestReceived`",
        ),
        (
            "\"Metadata\"",
            "\"Response\"",
            "unknown variant `Response`, expected one of `None`",
        ),
        (
            "\"2026-11-20T10:00:00.123456Z\"",
            "\"yesterday\"",
            "failed to parse",
        ),
        (
            "\"code\":200",
            "\"code\":\"200\"",
            "invalid type: string \"200\", expected i32",
        ),
        (
            "\"username\":\"system",
            "\"username\":7,\"x\":\"system",
            "invalid type: integer `7`, expected a string",
        ),
    ];
    for (from, to, want) in cases {
        let bad = V1_METADATA.replacen(from, to, 1);
        assert_ne!(bad, V1_METADATA, "{from} is in the fixture");
        let err = parse_event(bad.as_bytes()).unwrap_err();
        let AuditError::Invalid { offset, message } = &err else {
            panic!("{err:?}")
        };
        assert!(message.contains(want), "{from} → {to}: got {message:?}");
        assert!(
            *offset > 0 && *offset <= bad.len(),
            "{from}: offset {offset}"
        );
    }
    // What is not an event at all says which field makes one.
    let pod = r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"web-0"}}"#;
    let err = parse_event(pod.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("missing field `verb`"), "{err}");
}

#[test]
fn reports_byte_offset_of_syntax_errors() {
    let err = parse_event(br#"{"auditID": "a",, }"#).unwrap_err();
    // The second `,` is byte 16.
    assert_eq!(err.offset(), Some(16), "{err}");
    assert!(
        err.to_string()
            .starts_with("invalid audit event at byte 16: key must be a string")
    );
    assert_eq!(parse_event(b"  \r\n"), Err(AuditError::Empty));
    let err = parse_event(format!("{NON_RESOURCE} x").as_bytes()).unwrap_err();
    assert!(err.to_string().contains("trailing characters"), "{err}");
}

fn list(api_version: &str, items: &[&str]) -> String {
    format!(
        r#"{{"kind":"EventList","apiVersion":"{api_version}","metadata":{{}},"items":[{}]}}"#,
        items.join(",")
    )
}

#[test]
fn parses_batches_in_every_shape() {
    let v1_list = list("audit.k8s.io/v1", &[V1_METADATA, NON_RESOURCE]);
    let v1beta1_list = list("audit.k8s.io/v1beta1", &[V1BETA1_REQUEST]);
    let array = format!("[{V1_METADATA},\n{V1BETA1_REQUEST},{NON_RESOURCE}]");
    let pretty =
        serde_json::to_string_pretty(&serde_json::from_str::<serde_json::Value>(&v1_list).unwrap())
            .unwrap();
    let v1_list_kind = format!(
        r#"{{"kind":"List","apiVersion":"v1","metadata":{{"resourceVersion":""}},"items":[{V1ALPHA1_17},{V1BETA1_18},{V1_METADATA}]}}"#
    );
    let old_list = list("audit.k8s.io/v1alpha1", &[V1ALPHA1_17, V1ALPHA1_17]);
    let cases: Vec<(&str, &str, usize)> = vec![
        ("v1 EventList", &v1_list, 2),
        ("v1 List of every version", &v1_list_kind, 3),
        ("v1alpha1 EventList", &old_list, 2),
        ("single 1.8 event", V1BETA1_18, 1),
        ("v1beta1 EventList", &v1beta1_list, 1),
        ("bare array", &array, 3),
        ("pretty EventList", &pretty, 2),
        ("single event", NON_RESOURCE, 1),
        ("empty list", r#"{"kind":"EventList","items":[]}"#, 0),
        ("empty array", " [ ] ", 0),
    ];
    for (name, body, count) in cases {
        assert_eq!(sniff(body.as_bytes()), Format::Document, "{name}");
        let events = parse_batch(body.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(events.len(), count, "{name}");
        let (lenient, errors) = parse_batch_lenient(body.as_bytes()).unwrap();
        assert_eq!(lenient, events, "{name}");
        assert!(errors.is_empty(), "{name}");
    }
}

#[test]
fn batch_errors_name_what_is_wrong() {
    let missing_verb = list(
        "audit.k8s.io/v1",
        &[&V1_METADATA.replace(r#""verb":"list","#, "")],
    );
    for (name, body, want) in [
        (
            "missing field",
            missing_verb.as_str(),
            "missing field `verb`",
        ),
        (
            "not JSON",
            "{\"kind\":\"EventList\",\"items\":[{\"auditID\":}]}",
            "expected value",
        ),
        ("not a document", "42", "expected an EventList object"),
        ("bad kind", r#"{"kind":5,"items":[]}"#, "expected a string"),
    ] {
        let e = parse_batch(body.as_bytes()).expect_err(name).to_string();
        assert!(e.contains(want), "{name}: {e}");
    }
    assert!(matches!(parse_batch(b"  "), Err(AuditError::Empty)));
}

#[test]
fn escaped_strings_parse_like_plain_ones() {
    // Borrowed parsing must fall back to owned text where JSON escapes a character.
    let plain = list("audit.k8s.io/v1", &[V1_METADATA]);
    let escaped = plain.replace("/api/v1", "\\/api\\/v1");
    assert_ne!(plain, escaped, "the fixture has a path to escape");
    assert_eq!(
        parse_batch(escaped.as_bytes()).unwrap(),
        parse_batch(plain.as_bytes()).unwrap()
    );
}

#[test]
fn lenient_batch_keeps_good_events_and_locates_bad_ones() {
    let bad = r#"{"auditID":"b","stage":"ResponseComplete"}"#;
    let body = list("audit.k8s.io/v1", &[V1_METADATA, bad, NON_RESOURCE]);
    let err = parse_batch(body.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("missing field `verb`"), "{err}");
    let (events, errors) = parse_batch_lenient(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(errors.len(), 1);
    let bad_at = body.find(bad).unwrap();
    let offset = errors[0].offset().unwrap();
    assert!(
        (bad_at..=bad_at + bad.len()).contains(&offset),
        "{offset} not in the bad item at {bad_at}"
    );
    assert!(errors[0].to_string().contains("missing field `verb`"));
    // A broken structure fails as a whole, with where.
    let err = parse_batch_lenient(br#"{"kind":"EventList","items":[{"a":1}"#).unwrap_err();
    assert!(err.to_string().contains("not terminated"), "{err}");
    assert!(parse_batch_lenient(b"nonsense").is_err());
}

#[test]
fn stage_rank_orders_completeness() {
    let mut stages = [
        Stage::Panic,
        Stage::ResponseComplete,
        Stage::RequestReceived,
        Stage::ResponseStarted,
    ];
    stages.sort_by_key(|s| s.rank());
    assert_eq!(
        stages,
        [
            Stage::RequestReceived,
            Stage::ResponseStarted,
            Stage::ResponseComplete,
            Stage::Panic
        ]
    );
    for s in stages {
        assert_eq!(Stage::from_name(s.as_str()), Some(s));
    }
}

#[test]
fn sniffs_json_lines_files() {
    let file = format!("{V1_METADATA}\n{NON_RESOURCE}\n");
    assert_eq!(sniff(file.as_bytes()), Format::JsonLines);
    // A prefix cut in the middle of the first line.
    assert_eq!(sniff(&file.as_bytes()[..100]), Format::JsonLines);
}

/// Cut or corrupted input is an error with an offset inside the input, never a panic.
#[test]
fn damaged_input_is_an_error_never_a_panic() {
    let body = list("audit.k8s.io/v1", &[V1_METADATA, NON_RESOURCE]);
    let bytes = body.as_bytes();
    for cut in 0..bytes.len() {
        let part = &bytes[..cut];
        let _ = sniff(part);
        if let Err(e) = parse_event(part) {
            assert!(e.offset().is_none_or(|o| o <= cut), "cut {cut}: {e}");
        }
        assert!(parse_batch(part).is_err(), "cut {cut} parsed");
        if let Err(e) = parse_batch_lenient(part) {
            assert!(e.offset().is_none_or(|o| o <= cut), "cut {cut}: {e}");
        }
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..5_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut damaged = bytes.to_vec();
        let at = (seed % damaged.len() as u64) as usize;
        damaged[at] = b"{}[]\",:\\ x0"[(seed >> 32) as usize % 11];
        let _ = sniff(&damaged);
        let _ = parse_batch(&damaged);
        if let Ok((events, errors)) = parse_batch_lenient(&damaged) {
            assert!(events.len() + errors.len() <= 2 + 1, "{at}");
        }
    }
}

/// A JSON event as YAML, the way `kubectl` and `yq` write one.
fn yaml_of(json: &str) -> String {
    serde_saphyr::to_string(&serde_json::from_str::<serde_json::Value>(json).unwrap()).unwrap()
}

#[test]
fn reads_yaml_documents_and_streams() {
    // Written by hand as audit2rbac's examples are: plain scalars, flow collections, a comment.
    let hand = "# one event of a 1.8 cluster\n\
        apiVersion: audit.k8s.io/v1beta1\n\
        kind: Event\n\
        metadata: {creationTimestamp: null}\n\
        level: Metadata\n\
        timestamp: 2017-11-02T14:20:05Z\n\
        auditID: e1d2c3b4-a596-4788-b9ca-dbecfd0e1f20\n\
        stage: ResponseComplete\n\
        requestURI: /api/v1/namespaces/default/pods/web-0/log?container=nginx\n\
        verb: get\n\
        user:\n  username: admin\n  groups: [system:masters, system:authenticated]\n\
        sourceIPs: [203.0.113.7]\n\
        objectRef: {resource: pods, namespace: default, name: web-0, apiVersion: v1, subresource: log}\n\
        responseStatus: {metadata: {}, code: 200}\n";
    assert_eq!(sniff(hand.as_bytes()), Format::Yaml);
    let (events, errors) = parse_yaml_lenient(hand.as_bytes()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events, vec![parse_event(V1BETA1_18.as_bytes()).unwrap()]);

    let list = yaml_of(&list("audit.k8s.io/v1", &[V1_METADATA, NON_RESOURCE]));
    let v1_list = yaml_of(&format!(
        r#"{{"kind":"List","apiVersion":"v1","items":[{V1ALPHA1_17}]}}"#
    ));
    let sequence = yaml_of(&format!("[{V1BETA1_REQUEST},{V1BETA1_18}]"));
    let stream = format!(
        "%YAML 1.2\n---\n{hand}---\n{list}...\n---\n{v1_list}--- # a sequence\n{sequence}---\n"
    );
    assert_eq!(sniff(stream.as_bytes()), Format::Yaml);
    let (events, errors) = parse_yaml_lenient(stream.as_bytes()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let ids: Vec<&str> = events.iter().map(|e| &e.audit_id[..8]).collect();
    assert_eq!(
        ids,
        [
            "e1d2c3b4", "9c0e4b7d", "5d7c1a3b", "b6c0e5a7", "0b9f3c1e", "e1d2c3b4"
        ]
    );
    // Each event reads as its JSON does.
    assert_eq!(events[1], parse_event(V1_METADATA.as_bytes()).unwrap());
    assert_eq!(events[3], parse_event(V1ALPHA1_17.as_bytes()).unwrap());
    assert_eq!(events[4], parse_event(V1BETA1_REQUEST.as_bytes()).unwrap());
}

#[test]
fn yaml_errors_say_which_document_and_why() {
    let good = yaml_of(NON_RESOURCE);
    let stream = format!(
        "---\n{good}---\nkind: Pod\nmetadata: {{name: web-0}}\n---\n{good}---\nverb: [get\n---\nitems: [{{verb: get}}, {{verb: get, requestURI: /x}}]\n---\n42\n"
    );
    let (events, errors) = parse_yaml_lenient(stream.as_bytes()).unwrap();
    assert_eq!(events.len(), 3);
    let got: Vec<(usize, String)> = errors
        .iter()
        .map(|e| {
            (
                line_of(stream.as_bytes(), e.offset().unwrap()),
                e.to_string(),
            )
        })
        .collect();
    let line = |text: &str| line_of(stream.as_bytes(), stream.find(text).unwrap());
    let want = [
        (line("kind: Pod"), "missing field `verb`"),
        (line("verb: [get"), "invalid YAML"),
        (line("items:"), "item 1: missing field `requestURI`"),
        (
            line("42"),
            "expected an audit event, an EventList or a list of events",
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((line, message), (want_line, want_message)) in got.iter().zip(want) {
        // A YAML syntax error may be found where its line ends, on the next.
        let slack = usize::from(want_message == "invalid YAML");
        assert!(
            (want_line..=want_line + slack).contains(line),
            "{line}: {message}"
        );
        assert!(message.contains(want_message), "{message}");
    }
    // Not UTF-8: rejected as a whole, at the bad byte.
    let err = parse_yaml_lenient(b"verb: get\nrequestURI: /\xff\n").unwrap_err();
    assert_eq!(err.offset(), Some(23), "{err}");
}

/// Cut or corrupted YAML is an error or fewer events, never a panic.
#[test]
fn damaged_yaml_is_an_error_never_a_panic() {
    let stream = format!(
        "---\n{}---\n{}",
        yaml_of(V1_METADATA),
        yaml_of(&list("audit.k8s.io/v1", &[NON_RESOURCE]))
    );
    let bytes = stream.as_bytes();
    for cut in 0..bytes.len() {
        if let Ok((events, _)) = parse_yaml_lenient(&bytes[..cut]) {
            assert!(events.len() <= 2, "cut {cut}");
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut damaged = bytes.to_vec();
        let at = (seed % damaged.len() as u64) as usize;
        damaged[at] = b"{}[]\",:\\ x-\n&*!|>"[(seed >> 32) as usize % 17];
        if let Ok((events, errors)) = parse_yaml_lenient(&damaged) {
            for e in errors {
                assert!(e.offset().is_none_or(|o| o <= damaged.len()), "{at}: {e}");
            }
            assert!(events.len() <= 3, "{at}");
        }
    }
}
