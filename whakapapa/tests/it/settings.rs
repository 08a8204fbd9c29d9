//! A bad environment value never stops the program: one warning, a count, just that part off,
//! and requests still carry identity and purpose.

use super::sidechannel::stand_in_collector;
use super::{default_stack_client, frame, parse_ua, spool_records};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing_subscriber::layer::SubscriberExt as _;
use whakapapa::settings::{
    ENV_COLLECTOR_URL, ENV_QUEUE_CAPACITY, ENV_SPOOL, ENV_SUBMIT_PURPOSE, QUEUE_CAPACITY_DEFAULT,
};
use whakapapa::{PurposeLayer, Settings};

/// The message of every warning event on this thread, while it is the default subscriber.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message<'a>(&'a mut String);
        impl tracing::field::Visit for Message<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    *self.0 = format!("{value:?}");
                }
            }
        }
        if *event.metadata().level() == tracing::Level::WARN {
            let mut text = String::new();
            event.record(&mut Message(&mut text));
            self.0.lock().unwrap().push(text);
        }
    }
}

async fn get_pod_despite_bad_settings(api: &Api<Pod>, name: &str) -> u32 {
    let line = line!() + 1;
    api.get(name).await.unwrap();
    line
}

/// Each bad value beside a good sink: the good one keeps working.
#[tokio::test]
async fn each_bad_env_value_leaves_requests_flowing_with_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let unwritable = dir.path().join("no-such-dir").join("p.jsonl");
    let unwritable = unwritable.to_str().unwrap().to_owned();
    let cases = [
        (ENV_COLLECTOR_URL, "https://collector:8080", ENV_SPOOL),
        (ENV_COLLECTOR_URL, "not a url at all", ENV_SPOOL),
        (ENV_COLLECTOR_URL, "/purposes", ENV_SPOOL),
        (ENV_SPOOL, unwritable.as_str(), ENV_COLLECTOR_URL),
        (ENV_SPOOL, dir.path().to_str().unwrap(), ENV_COLLECTOR_URL),
        (ENV_QUEUE_CAPACITY, "lots", ENV_SPOOL),
        (ENV_QUEUE_CAPACITY, "0", ENV_SPOOL),
        (ENV_QUEUE_CAPACITY, "100000000000", ENV_SPOOL),
    ];
    let pods: Vec<String> = (0..cases.len())
        .map(|i| format!("bad-setting-{i}"))
        .collect();
    let server = super::standin(&pods.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for (i, (bad, value, good)) in cases.into_iter().enumerate() {
        let case = format!("{bad}={value:?}");
        // A good sink of its own, since a purpose goes to one destination once per process.
        let (collector_url, bodies) = stand_in_collector().await;
        let spool = dir.path().join(format!("good-{i}.jsonl"));
        let warnings = Warnings::default();
        let subscriber = tracing_subscriber::registry().with(warnings.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        let good_value = if good == ENV_SPOOL {
            spool.to_str().unwrap().to_owned()
        } else {
            collector_url.clone()
        };
        let settings = Settings::from_vars(whakapapa::identity!(), |name| match name {
            ENV_SUBMIT_PURPOSE => Some("1".to_owned()),
            n if n == bad => Some(value.to_owned()),
            n if n == good => Some(good_value.clone()),
            _ => None,
        });
        assert!(settings.purpose(), "{case}");
        assert_eq!(settings.queue_capacity(), QUEUE_CAPACITY_DEFAULT, "{case}");
        let layer = PurposeLayer::new(settings);
        layer.wait_warm(super::WARM_UP);
        let api: Api<Pod> = Api::default_namespaced(default_stack_client(&server, &layer));
        let name = format!("bad-setting-{i}");
        let line = get_pod_despite_bad_settings(&api, &name).await;
        drop(guard);

        let warnings = warnings.0.lock().unwrap().clone();
        assert_eq!(warnings.len(), 1, "{case}: {warnings:?}");
        assert!(
            warnings[0].contains(bad)
                && warnings[0].contains(value)
                && warnings[0].contains("must"),
            "{case}: the warning names the variable, the value and the rule: {}",
            warnings[0]
        );
        assert_eq!(layer.handle().stats().settings_rejected, 1, "{case}");
        let seen = server.seen_with(&name);
        assert_eq!(seen.len(), 1, "{case}");
        let ua = parse_ua(&seen[0].user_agent());
        assert!(ua.head.starts_with("whakapapa/v0.1.0 ("), "{case}: {ua:?}");
        assert_eq!(
            ua.frames[1],
            frame("settings", "get_pod_despite_bad_settings", line),
            "{case}"
        );
        // The good sink next to the bad value got the purpose.
        // Off the runtime's thread, which serves the stand-in collector.
        let flushing = layer.clone();
        let flushed =
            tokio::task::spawn_blocking(move || flushing.handle().flush(Duration::from_secs(10)))
                .await
                .unwrap();
        assert!(flushed.is_complete(), "{case}: {flushed}");
        assert_eq!(flushed.delivered, 1, "{case}: {flushed}");
        let delivered = if good == ENV_SPOOL {
            spool_records(&spool, |r| {
                r.iter().any(|r| r.fingerprint == ua.fingerprint)
            })
        } else {
            bodies
                .lock()
                .unwrap()
                .iter()
                .flat_map(|(_, body)| {
                    body.lines()
                        .map(|l| serde_json::from_str(l).unwrap())
                        .collect::<Vec<whakapapa::Record>>()
                })
                .collect()
        };
        assert!(
            delivered.iter().any(|r| r.fingerprint == ua.fingerprint),
            "{case}: no record for {:016x} at the good sink",
            ua.fingerprint
        );
    }
    assert!(
        !std::path::Path::new(&unwritable).exists(),
        "nothing was made"
    );
}

/// Good values give no warning at all.
#[tokio::test]
async fn good_env_values_warn_of_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("p.jsonl");
    let warnings = Warnings::default();
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(warnings.clone()));
    let settings = Settings::from_vars(whakapapa::identity!(), |name| match name {
        ENV_SUBMIT_PURPOSE => Some("1".to_owned()),
        ENV_COLLECTOR_URL => Some("http://127.0.0.1:9/prefix".to_owned()),
        ENV_SPOOL => Some(spool.to_str().unwrap().to_owned()),
        ENV_QUEUE_CAPACITY => Some("8".to_owned()),
        _ => None,
    });
    assert_eq!(settings.queue_capacity(), 8);
    assert!(settings.collector_url().is_some() && settings.spool().is_some());
    assert!(warnings.0.lock().unwrap().is_empty());
}
