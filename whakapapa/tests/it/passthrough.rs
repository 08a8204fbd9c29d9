//! Switched off, the layer changes nothing: the request is byte-identical to one sent without it.
//! Asked for (`WHAKAPAPA_IDENTITY`), off sends the identity alone as the user agent.

use super::{default_stack_client, settings};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt as _;
use whakapapa::settings::{ENV_IDENTITY, ENV_SUBMIT_PURPOSE};
use whakapapa::{PurposeLayer, Settings};
use whakapapa_testkit::{StandInApiServer, StandInConfig};

async fn list_once(client: kube::Client) {
    let api: Api<Pod> = Api::default_namespaced(client);
    api.list(&ListParams::default().labels("bytes=same"))
        .await
        .unwrap();
}

#[tokio::test]
async fn off_is_byte_identical_to_no_layer() {
    let server = StandInApiServer::start(StandInConfig::default().with_connections_recorded())
        .await
        .unwrap();
    // One client, so one connection, per variant.
    list_once(kube::Client::try_from(server.config()).unwrap()).await;
    let off = PurposeLayer::new(Settings::off(whakapapa::identity!()));
    assert!(!off.is_on());
    list_once(default_stack_client(&server, &off)).await;
    let dir = tempfile::tempdir().unwrap();
    let on = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    on.wait_warm(super::WARM_UP);
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
    let server = super::standin(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let on = PurposeLayer::new(settings(&dir.path().join("p.jsonl")));
    on.wait_warm(super::WARM_UP);
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

/// The request's header lines, in order, without the request line.
fn header_lines(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    head.split("\r\n").skip(1).map(str::to_owned).collect()
}

#[tokio::test]
async fn identity_when_off_adds_the_user_agent_and_nothing_else() {
    let server = StandInApiServer::start(StandInConfig::default().with_connections_recorded())
        .await
        .unwrap();
    list_once(kube::Client::try_from(server.config()).unwrap()).await;
    let me = whakapapa::identity!();
    // From the environment, as a deployment would ask for it.
    let settings = Settings::from_vars(me.clone(), |name| {
        (name == ENV_IDENTITY).then(|| "1".to_owned())
    });
    assert!(!settings.purpose() && settings.identity_when_off());
    let layer = PurposeLayer::new(settings);
    layer.wait_warm(super::WARM_UP);
    assert!(!layer.is_on() && layer.sends_identity_only());
    list_once(default_stack_client(&server, &layer)).await;

    let raw = server.raw_connections();
    assert_eq!(raw.len(), 2);
    let plain = header_lines(&raw[0]);
    let with = header_lines(&raw[1]);
    assert!(
        !plain.iter().any(|l| l.starts_with("user-agent:")),
        "{plain:?}"
    );
    let ua: Vec<&String> = with
        .iter()
        .filter(|l| l.starts_with("user-agent:"))
        .collect();
    assert_eq!(ua.len(), 1, "{with:?}");
    let sent = ua[0].trim_start_matches("user-agent:").trim();
    // client-go's shape, no purpose, no fingerprint.
    assert_eq!(sent, me.user_agent());
    assert!(
        sent.starts_with("whakapapa/v0.1.0 (") && !sent.contains("fp="),
        "{sent}"
    );
    assert!(!with.iter().any(|l| l.starts_with("audit-id:")), "{with:?}");
    // Everything else is byte for byte what kube sends alone.
    let rest: Vec<&String> = with
        .iter()
        .filter(|l| !l.starts_with("user-agent:"))
        .collect();
    assert_eq!(rest, plain.iter().collect::<Vec<_>>());
    let plain_text = String::from_utf8_lossy(&raw[0]);
    let with_text = String::from_utf8_lossy(&raw[1]);
    assert_eq!(
        with_text.split_once("\r\n\r\n").map(|(_, body)| body),
        plain_text.split_once("\r\n\r\n").map(|(_, body)| body)
    );
}

#[tokio::test]
async fn identity_when_off_keeps_a_user_agent_the_caller_set() {
    let server = super::standin(&[]).await;
    let layer =
        PurposeLayer::new(Settings::off(whakapapa::identity!()).with_identity_when_off(true));
    let client = default_stack_client(&server, &layer);
    let request = http::Request::get("/api/v1/namespaces/default/pods?labelSelector=ua%3Dmine")
        .header(
            "user-agent",
            "kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234",
        )
        .body(Vec::new())
        .unwrap();
    let _: serde_json::Value = client.request(request).await.unwrap();
    let seen = server.seen_with("ua%3Dmine");
    assert_eq!(
        seen[0].user_agent(),
        "kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234"
    );
}

/// The message of every warning event while it is the default subscriber.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if *event.metadata().level() == tracing::Level::WARN {
            self.0.lock().unwrap().push(format!("{event:?}"));
        }
    }
}

#[tokio::test]
async fn a_bad_identity_switch_is_one_warning_and_off_stays_byte_identical() {
    let server = StandInApiServer::start(StandInConfig::default().with_connections_recorded())
        .await
        .unwrap();
    list_once(kube::Client::try_from(server.config()).unwrap()).await;
    let warnings = Warnings::default();
    let guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let settings = Settings::from_vars(whakapapa::identity!(), |name| match name {
        ENV_SUBMIT_PURPOSE => Some("0".to_owned()),
        ENV_IDENTITY => Some("sometimes".to_owned()),
        _ => None,
    });
    drop(guard);
    assert!(!settings.purpose() && !settings.identity_when_off());
    let warnings = warnings.0.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(ENV_IDENTITY)
            && warnings[0].contains("sometimes")
            && warnings[0].contains("must be"),
        "{}",
        warnings[0]
    );
    let layer = PurposeLayer::new(settings);
    assert_eq!(layer.handle().stats().settings_rejected, 1);
    layer.wait_warm(super::WARM_UP);
    assert!(!layer.sends_identity_only());
    list_once(default_stack_client(&server, &layer)).await;
    let raw = server.raw_connections();
    assert_eq!(
        String::from_utf8_lossy(&raw[0]),
        String::from_utf8_lossy(&raw[1]),
        "a bad switch leaves off byte-identical"
    );
}
