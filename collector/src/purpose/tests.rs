use super::*;

const KEP_RECORD: &str = r#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"name":"shop-controller","version":"v0.3.1","os":"linux","arch":"amd64","source":"git","commit":"4f2a9c1","built_by":"ci@runner-4","built_at":"2026-11-20T10:00:00Z","user_agent":"shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z"},"test":"tests::counts_pods","frames":[{"function":"kube_client::api::Api<K>::list","file":"kube-client-5.0.0/src/api/core_methods.rs","line":106},{"function":"shop_controller::inventory::count_pods","file":"src/inventory.rs","line":42}],"span":"reconcile{object=shop/web}","seen_at":"2026-11-20T10:03:11.402Z"}"#;

#[test]
fn parses_the_kep_example() {
    let record = parse_record(KEP_RECORD.as_bytes()).unwrap();
    assert_eq!(record.fingerprint, 0x9c0e4b7d12aa03f1);
    assert_eq!(record.identity.name.as_deref(), Some("shop-controller"));
    assert_eq!(record.identity.built_by.as_deref(), Some("ci@runner-4"));
    assert_eq!(
        record.identity.text,
        "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z"
    );
    assert_eq!(record.test.as_deref(), Some("tests::counts_pods"));
    assert_eq!(record.frames.len(), 2);
    assert_eq!(record.frames[0].function, "kube_client::api::Api<K>::list");
    assert_eq!(record.frames[1].line, 42);
    assert_eq!(record.span.as_deref(), Some("reconcile{object=shop/web}"));
    assert_eq!(record.seen_at.as_deref(), Some("2026-11-20T10:03:11.402Z"));
    // It round-trips through its own serialisation.
    let json = serde_json::to_vec(&record).unwrap();
    assert_eq!(parse_record(&json).unwrap(), record);
}

#[test]
fn seen_at_is_a_time_kept_in_utc() {
    let with = |seen_at: &str| {
        let line = KEP_RECORD.replace("2026-11-20T10:03:11.402Z", seen_at);
        parse_record(line.as_bytes()).map(|r| r.seen_at.unwrap())
    };
    assert_eq!(
        with("2026-11-20T12:03:11.402+02:00").as_deref(),
        Ok("2026-11-20T10:03:11.402Z")
    );
    let err = with("yesterday").unwrap_err().to_string();
    assert!(
        err.starts_with("invalid purpose record: seen_at \"yesterday\""),
        "{err}"
    );
}

#[test]
fn optional_parts_may_be_absent_or_null() {
    let record = parse_record(
        br#"{"whakapapa":1,"fingerprint":"000000000000feed","identity":{"name":"app","version":"v1","os":"linux","arch":"amd64","source":"git","commit":"abc","built_by":null,"built_at":null},"test":null,"span":null,"frames":[]}"#,
    )
    .unwrap();
    assert_eq!(record.fingerprint, 0xfeed);
    assert_eq!(
        (record.test, record.span, record.seen_at),
        (None, None, None)
    );
    // Without `user_agent` the identity text is rebuilt from its fields.
    assert_eq!(record.identity.text, "app/v1 (linux/amd64) git/abc");
}

#[test]
fn parses_ndjson_and_arrays_reporting_bad_lines() {
    let good2 = KEP_RECORD.replace("9c0e4b7d12aa03f1", "00000000000000aa");
    let ndjson = format!(
        "{KEP_RECORD}\n\n{{\"kind\":\"Event\"}}\n{{\"whakapapa\":1,\"fingerprint\":\"xyz\"}}\n{good2}\r\n{{\"whakapapa\":2}}\nnot json\n"
    );
    let (records, errors) = parse_records(ndjson.as_bytes());
    assert_eq!(
        records.iter().map(|r| r.fingerprint).collect::<Vec<_>>(),
        vec![0x9c0e4b7d12aa03f1, 0xaa]
    );
    let errors: Vec<(usize, String)> = errors
        .into_iter()
        .map(|(line, e)| (line, e.to_string()))
        .collect();
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].0, 3);
    assert_eq!(
        errors[0].1,
        "not a whakapapa purpose record (no `whakapapa` key)"
    );
    assert_eq!(errors[1].0, 4);
    assert!(
        errors[1]
            .1
            .contains("fingerprint \"xyz\" is not 16 hex digits"),
        "{}",
        errors[1].1
    );
    assert_eq!(errors[2].0, 6);
    assert!(errors[2].1.contains("unsupported purpose record version 2"));
    assert_eq!(errors[3].0, 7);
    assert!(errors[3].1.starts_with("invalid purpose record: "));

    let array = format!("[\n{KEP_RECORD},\n{{\"whakapapa\":1}},\n{good2}\n]");
    let (records, errors) = parse_records(array.as_bytes());
    assert_eq!(records.len(), 2);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].0, 3, "{:?}", errors[0]);
    assert!(errors[0].1.to_string().contains("missing field"));

    let (records, errors) = parse_records(b"[{\"whakapapa\":1,");
    assert!(records.is_empty());
    assert!(
        matches!(errors[..], [(1, PurposeError::List(_))]),
        "{errors:?}"
    );
    assert_eq!(parse_records(b"  \n"), (Vec::new(), Vec::new()));
}

#[test]
fn tells_records_from_audit_events() {
    assert!(is_record(KEP_RECORD.as_bytes()));
    assert!(is_record(br#" {"fingerprint":"00","whakapapa":1}"#));
    let ua = whakapapa_wire::user_agent::render("a", None, 1, None, &[]);
    let event = format!(r#"{{"kind":"Event","auditID":"x","userAgent":"{ua}"}}"#);
    assert!(!is_record(event.as_bytes()));
    assert!(!is_record(br#"{"nested":{"whakapapa":1}}"#));
    assert!(is_record(
        b"\t{ \"whakapapa\" : 1, \"fingerprint\": \"00\"}"
    ));
    assert!(!is_record(br#"{"level":"Metadata","whakapapa":1}"#));
    // A first key with an escape is read the slow way.
    assert!(is_record(br#"{"k\"ey":1,"whakapapa":1}"#));
    assert!(!is_record(b"[1]"));
    assert!(!is_record(b""));
}
