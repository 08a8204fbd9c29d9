//! Switched off, the layer changes nothing: the request is byte-identical to one sent without it.

use super::standin::StandInApiServer;
use super::{default_stack_client, settings};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use whakapapa::{PurposeLayer, Settings};

async fn list_once(client: kube::Client) {
    let api: Api<Pod> = Api::default_namespaced(client);
    api.list(&ListParams::default().labels("bytes=same"))
        .await
        .unwrap();
}

#[tokio::test]
async fn off_is_byte_identical_to_no_layer() {
    let server = StandInApiServer::start().await;
    // One client, so one connection, per variant.
    list_once(kube::Client::try_from(server.config()).unwrap()).await;
    let off = PurposeLayer::new(Settings::off(whakapapa::identity!()));
    assert!(!off.is_on());
    list_once(default_stack_client(&server, &off)).await;
    let dir = tempfile::tempdir().unwrap();
    let on = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    list_once(default_stack_client(&server, &on)).await;

    let raw = server.raw_connections();
    assert_eq!(raw.len(), 3, "one connection per client");
    assert!(!raw[0].is_empty());
    assert_eq!(
        String::from_utf8_lossy(&raw[0]),
        String::from_utf8_lossy(&raw[1]),
        "purpose off must send the same bytes"
    );
    // The comparison can fail: with purpose on the bytes differ, by the two headers only.
    assert_ne!(raw[0], raw[2]);
    let on_text = String::from_utf8_lossy(&raw[2]);
    let without: Vec<&str> = on_text
        .split("\r\n")
        .filter(|l| !l.starts_with("user-agent:") && !l.starts_with("audit-id:"))
        .collect();
    assert_eq!(without.join("\r\n"), String::from_utf8_lossy(&raw[0]));
}

#[tokio::test]
async fn an_existing_user_agent_is_kept_as_a_parameter() {
    let server = StandInApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let on = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    let client = default_stack_client(&server, &on);
    let request = http::Request::get("/api/v1/namespaces/default/pods?labelSelector=ua%3Dkept")
        .header(
            "user-agent",
            "kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234",
        )
        .body(Vec::new())
        .unwrap();
    let _: serde_json::Value = client.request(request).await.unwrap();
    let ua = server.seen_with("ua%3Dkept")[0].user_agent();
    let parsed = super::parse_ua(&ua);
    assert_eq!(
        parsed.ua.as_deref(),
        Some("kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234")
    );
    assert!(
        parsed.frames[0].starts_with("kube_client::client::Client::request@"),
        "{ua}"
    );
}
