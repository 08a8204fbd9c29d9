use super::*;

/// A Metadata-level v1 event as kube-apiserver's log backend writes it (one line).
pub(crate) const V1_METADATA: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"9c0e4b7d-12aa-83f1-9d5c-2e0f4a6b8c1d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/kube-system/pods?labelSelector=k8s-app%3Dkube-dns\u0026limit=500","verb":"list","user":{"username":"system:serviceaccount:kube-system:coredns","uid":"3f1a2b4c-5d6e-4f70-8a91-b2c3d4e5f607","groups":["system:serviceaccounts","system:serviceaccounts:kube-system","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=7b1e0c2a-3f4d-4e5f-9a6b-7c8d9e0f1a2b"],"authentication.kubernetes.io/node-name":["kind-control-plane"]}},"sourceIPs":["10.244.0.3"],"userAgent":"coredns/v1.11.3 (linux/amd64) kubernetes/abc1234","objectRef":{"resource":"pods","namespace":"kube-system","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T10:00:00.123456Z","stageTimestamp":"2026-11-20T10:00:00.127001Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by ClusterRoleBinding \"system:coredns\" of ClusterRole \"system:coredns\" to ServiceAccount \"coredns/kube-system\""}}"#;

/// A RequestReceived v1beta1 event: no responseStatus, no stageTimestamp before 1.9... plus
/// the old `timestamp` field and a request body at Request level.
const V1BETA1_REQUEST: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1beta1","metadata":{"creationTimestamp":"2026-11-20T10:00:01Z"},"level":"Request","timestamp":"2026-11-20T10:00:01Z","auditID":"0b9f3c1e-2d4a-4b6c-8e0f-1a2b3c4d5e6f","stage":"RequestReceived","requestURI":"/api/v1/namespaces/default/configmaps","verb":"create","user":{"username":"kubernetes-admin","groups":["system:masters","system:authenticated"]},"sourceIPs":["172.18.0.1"],"objectRef":{"resource":"configmaps","namespace":"default","apiVersion":"v1"},"requestObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"x"},"data":{"a":"[{]}\""}},"requestReceivedTimestamp":"2026-11-20T10:00:01.000001Z"}"#;

/// A non-resource request: no objectRef, no userAgent, no annotations.
const NON_RESOURCE: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5d7c1a3b-0e2f-4a6b-9c8d-7e6f5a4b3c2d","stage":"ResponseComplete","requestURI":"/healthz","verb":"get","user":{"username":"system:anonymous","groups":["system:unauthenticated"]},"sourceIPs":["127.0.0.1"],"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-20T10:00:02.5Z","stageTimestamp":"2026-11-20T10:00:02.5005Z"}"#;

#[test]
fn parses_v1_metadata_event() {
    let e = parse_event(V1_METADATA.as_bytes()).unwrap();
    assert_eq!(e.api_version.as_deref(), Some("audit.k8s.io/v1"));
    assert_eq!(e.level, Level::Metadata);
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
    assert_eq!(e.received_us(), 1_795_168_800_123_456);
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
    assert_eq!(e.level, Level::Request);
    assert_eq!(e.response_status, None);
    assert_eq!(e.stage_timestamp, None);
    assert_eq!(e.latency_us(), None);
    assert_eq!(e.user_agent, None);
    assert_eq!(e.impersonated_user, None);
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

#[test]
fn names_the_missing_or_bad_field() {
    let cases: &[(&str, &str, &str)] = &[
        ("\"auditID\"", "\"auditId\"", "missing field `auditID`"),
        ("\"stage\"", "\"stages\"", "missing field `stage`"),
        (
            "\"requestURI\"",
            "\"requestUri\"",
            "missing field `requestURI`",
        ),
        ("\"verb\"", "\"verbs\"", "missing field `verb`"),
        (
            "\"requestReceivedTimestamp\"",
            "\"requestReceivedTime\"",
            "missing field `requestReceivedTimestamp`",
        ),
        (
            "\"ResponseComplete\"",
            "\"Done\"",
            "unknown variant `Done`, expected one of `RequestReceived`",
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
    ];
    for (from, to, want) in cases {
        let bad = V1_METADATA.replacen(from, to, 1);
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
    let cases: Vec<(&str, &str, usize)> = vec![
        ("v1 EventList", &v1_list, 2),
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
    let missing_level = list(
        "audit.k8s.io/v1",
        &[&V1_METADATA.replace(r#""level":"Metadata","#, "")],
    );
    for (name, body, want) in [
        (
            "missing field",
            missing_level.as_str(),
            "missing field `level`",
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
    assert!(err.to_string().contains("missing field `level`"), "{err}");
    let (events, errors) = parse_batch_lenient(body.as_bytes()).unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(errors.len(), 1);
    let bad_at = body.find(bad).unwrap();
    let offset = errors[0].offset().unwrap();
    assert!(
        (bad_at..=bad_at + bad.len()).contains(&offset),
        "{offset} not in the bad item at {bad_at}"
    );
    assert!(errors[0].to_string().contains("missing field `level`"));
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
