use super::*;

const KEP_RECORD: &str = r#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"name":"shop-controller","version":"v0.3.1","os":"linux","arch":"amd64","source":"git","commit":"4f2a9c1","built_by":"ci@runner-4","built_at":"2026-11-20T10:00:00Z","user_agent":"shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z"},"test":"tests::counts_pods","frames":[{"function":"kube_client::api::Api<K>::list","file":"kube-client-5.0.0/src/api/core_methods.rs","line":106},{"function":"shop_controller::inventory::count_pods","file":"src/inventory.rs","line":42}],"span":"reconcile{object=shop/web}","seen_at":"2026-11-20T10:03:11.402Z"}"#;

#[test]
fn parses_the_kep_example() {
    let record = PurposeRecord::parse(KEP_RECORD.as_bytes()).unwrap();
    assert_eq!(record.fingerprint, 0x9c0e4b7d12aa03f1);
    assert_eq!(record.identity.name.as_deref(), Some("shop-controller"));
    assert_eq!(record.identity.built_by.as_deref(), Some("ci@runner-4"));
    assert_eq!(record.test.as_deref(), Some("tests::counts_pods"));
    assert_eq!(record.frames.len(), 2);
    assert_eq!(record.frames[1].line, 42);
    assert_eq!(record.span.as_deref(), Some("reconcile{object=shop/web}"));
    assert!(record.seen_at.is_some());
    // It round-trips through its own serialisation.
    let json = serde_json::to_vec(&record).unwrap();
    assert_eq!(PurposeRecord::parse(&json).unwrap(), record);
}
