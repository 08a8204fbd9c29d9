//! The quickstart's loop over real sockets — collector, stand-in API server, the controller
//! with the whakapapa layer — and the collector's answers about it: each line of the
//! controller against the endpoint it hits, how often, and coverage.

use std::collections::BTreeSet;
use std::time::Duration;

use ::quickstart::{CONTROLLER_FILE as FILE, CONTROLLER_SOURCE as SOURCE, collector, wiring};
use whakapapa_collector::query::coverage::Coverage;
use whakapapa_collector::query::loc::LocAnswer;

/// The 1-based line of the only line of the controller containing `marker`.
pub(super) fn line_of(marker: &str) -> usize {
    let lines: Vec<usize> = SOURCE
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{marker:?} should be on exactly one line of {FILE}"
    );
    lines[0]
}

/// (function, the call on its line, endpoint, verb, requests) — what the controller does, by
/// the line that does it.
pub(super) const EXPECTED: &[(&str, &str, &str, &str, u64)] = &[
    (
        "ensure_namespace",
        "namespaces.create(",
        "createCoreV1Namespace",
        "create",
        1,
    ),
    (
        "deploy_app",
        "deployments.create(",
        "createAppsV1NamespacedDeployment",
        "create",
        1,
    ),
    (
        "start_pods",
        "pods.create(",
        "createCoreV1NamespacedPod",
        "create",
        2,
    ),
    (
        "ensure_configmap",
        "configmaps.get_opt(",
        "readCoreV1NamespacedConfigMap",
        "get",
        3,
    ),
    (
        "ensure_configmap",
        "configmaps.create(",
        "createCoreV1NamespacedConfigMap",
        "create",
        1,
    ),
    (
        "ensure_configmap",
        "configmaps.patch(",
        "patchCoreV1NamespacedConfigMap",
        "patch",
        2,
    ),
    (
        "scale_deployment",
        "deployments.patch_scale(",
        "patchAppsV1NamespacedDeploymentScale",
        "patch",
        3,
    ),
    (
        "record_event",
        "events.create(",
        "createEventsV1NamespacedEvent",
        "create",
        3,
    ),
    (
        "renew_lease",
        "leases.get_opt(",
        "readCoordinationV1NamespacedLease",
        "get",
        3,
    ),
    (
        "renew_lease",
        "leases.create(",
        "createCoordinationV1NamespacedLease",
        "create",
        1,
    ),
    (
        "renew_lease",
        "leases.replace(",
        "replaceCoordinationV1NamespacedLease",
        "update",
        2,
    ),
    (
        "list_pods",
        "pods.list(",
        "listCoreV1NamespacedPod",
        "list",
        3,
    ),
    (
        "read_logs",
        "pods.logs(",
        "readCoreV1NamespacedPodLog",
        "get",
        1,
    ),
    // kube-runtime's watcher: its initial list, then the watch (mapped to the list endpoint).
    (
        "watch_pods",
        "events.try_next()",
        "listCoreV1NamespacedPod",
        "list",
        1,
    ),
    (
        "watch_pods",
        "events.next()",
        "listCoreV1NamespacedPod",
        "watch",
        1,
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_line_of_the_controller_is_joined_to_the_endpoint_it_hits() {
    let dir = tempfile::tempdir().unwrap();
    let done = wiring::run_loop(&dir.path().join("quickstart.db"), whakapapa::identity!())
        .await
        .unwrap();
    assert!(done.purposes.is_complete(), "{}", done.purposes);
    assert!(done.purposes.delivered > 0, "{}", done.purposes);
    assert_eq!((done.audit.batches_lost, done.audit.events_dropped), (0, 0));
    let collector = &done.collector;

    for &(function, call, endpoint, verb, hits) in EXPECTED {
        let at = format!("{FILE}:{}", line_of(call));
        let Ok(answer) = collector
            .answers()
            .query("loc", &[("loc", at.as_str())])
            .unwrap()
            .into_inner::<LocAnswer>()
        else {
            panic!("loc answers with lines of code");
        };
        let functions: Vec<&str> = answer.matched.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(functions.len(), 1, "{at}: {functions:?}");
        assert_eq!(
            functions[0],
            format!("quickstart::controller::{function}"),
            "{at} is in {function}"
        );
        let reached: Vec<(&str, &str, u64)> = answer
            .endpoints
            .iter()
            .map(|e| (e.endpoint.as_str(), e.verb.as_str(), e.hits))
            .collect();
        let want_verbs = EXPECTED
            .iter()
            .filter(|e| line_of(e.1) == line_of(call))
            .count();
        assert_eq!(
            reached.len(),
            want_verbs,
            "{at} ({function}) reaches {reached:?}"
        );
        assert!(
            reached.contains(&(endpoint, verb, hits)),
            "{at} ({function}) should reach {endpoint} ({verb}) {hits} times, reaches {reached:?}"
        );
    }

    // The calling functions reach everything their callees do.
    let rows = collector::loc_rows(&collector.answers(), FILE).unwrap();
    let reconcile_line = format!("{FILE}:{}", line_of("ensure_configmap(client, round)"));
    let through_reconcile: BTreeSet<&str> = rows
        .iter()
        .filter(|r| r[1] == reconcile_line)
        .map(|r| r[2].as_str())
        .collect();
    assert_eq!(
        through_reconcile,
        BTreeSet::from([
            "createCoreV1NamespacedConfigMap",
            "patchCoreV1NamespacedConfigMap",
            "readCoreV1NamespacedConfigMap"
        ])
    );

    let Ok(coverage) = collector
        .answers()
        .query("coverage", &[("counting", "any")])
        .unwrap()
        .into_inner::<Coverage>()
    else {
        panic!("coverage answers with coverage");
    };
    let distinct: BTreeSet<&str> = EXPECTED.iter().map(|e| e.2).collect();
    let requests: u64 = EXPECTED.iter().map(|e| e.4).sum();
    assert_eq!(coverage.release, collector.release());
    assert_eq!(collector.release(), "1.36.0");
    assert_eq!(coverage.totals.total, 908);
    assert_eq!(coverage.totals.eligible, 563);
    assert_eq!(
        coverage.totals.tested,
        distinct.len() as u64,
        "tested = the distinct endpoints exercised"
    );
    assert_eq!(
        coverage.totals.tested_eligible,
        distinct.len() as u64,
        "all of them stable and eligible"
    );
    assert_eq!(coverage.totals.conf_tested, 0, "no conformance test ran");
    assert_eq!(coverage.requests, requests);

    let apps = collector.answers().query_table("apps", &[]).unwrap();
    assert!(apps.contains("shop-controller"), "{apps}");
    done.collector.shutdown().await.unwrap();
}

/// One async fn per level, each calling the next: a stack too deep for a user agent (folding
/// does not apply, every function is distinct).
macro_rules! level {
    ($name:ident => $next:ident) => {
        async fn $name(
            api: &kube::Api<k8s_openapi::api::core::v1::ConfigMap>,
        ) -> kube::Result<usize> {
            $next(api).await
        }
    };
}
level!(level_00 => level_01);
level!(level_01 => level_02);
level!(level_02 => level_03);
level!(level_03 => level_04);
level!(level_04 => level_05);
level!(level_05 => level_06);
level!(level_06 => level_07);
level!(level_07 => level_08);
level!(level_08 => level_09);
level!(level_09 => level_10);
level!(level_10 => level_11);
level!(level_11 => level_12);
level!(level_12 => level_13);
level!(level_13 => level_14);
level!(level_14 => level_15);
level!(level_15 => level_16);
level!(level_16 => level_17);
level!(level_17 => level_18);
level!(level_18 => level_19);
level!(level_19 => bottom);

async fn bottom(api: &kube::Api<k8s_openapi::api::core::v1::ConfigMap>) -> kube::Result<usize> {
    let list = api.list(&Default::default()).await?; // INNERMOST frame
    Ok(list.items.len())
}

/// Runs the deep stack once against a fresh collector, with or without the side channel, and
/// returns the collector once everything is stored.
async fn deep_stack_into(db: &std::path::Path, side_channel: bool) -> collector::Collector {
    use whakapapa_testkit::{StandInApiServer, StandInConfig};

    let collector = collector::Collector::start(db).await.unwrap();
    let config = StandInConfig::default().with_audit_webhook(collector.audit_url());
    let api_server = StandInApiServer::start(config).await.unwrap();
    let mut settings = whakapapa::Settings::new(whakapapa::identity!());
    if side_channel {
        settings = settings.with_collector_url(&collector.url()).unwrap();
    }
    let layer = whakapapa::PurposeLayer::new(settings);
    let config = kube::Config::new(api_server.url().parse().unwrap());
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&layer)
        .build();
    let api = kube::Api::namespaced(client, "default");
    assert_eq!(level_00(&api).await.unwrap(), 0); // OUTERMOST frame
    api_server.shutdown().await;
    let flushed =
        tokio::task::spawn_blocking(move || layer.handle().flush(Duration::from_secs(30)))
            .await
            .unwrap();
    assert!(flushed.is_complete(), "{flushed}");
    // Without a side channel there is nothing to deliver.
    assert_eq!(flushed.delivered > 0, side_channel, "{flushed}");
    collector
}

/// The endpoints (with hits) `query loc FILE:LINE` finds for the line containing `marker`.
fn reached_from(collector: &collector::Collector, marker: &str) -> Vec<(String, u64)> {
    let source = include_str!("quickstart.rs");
    let lines: Vec<usize> = source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(marker))
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "{marker:?} marks one line");
    let line = lines[0];
    let at = format!("tests/e2e/quickstart.rs:{line}");
    let Ok(answer) = collector
        .answers()
        .query("loc", &[("loc", at.as_str())])
        .unwrap()
        .into_inner::<LocAnswer>()
    else {
        panic!("loc answers with lines of code");
    };
    answer
        .endpoints
        .into_iter()
        .map(|e| (e.endpoint, e.hits))
        .collect()
}

/// The user agent keeps the innermost frames that fit in 1024 bytes; the outer ones reach the
/// collector only through the side channel, joined by the fingerprint in the Audit-ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_beyond_the_user_agent_arrive_through_the_side_channel() {
    let dir = tempfile::tempdir().unwrap();
    let list = vec![("listCoreV1NamespacedConfigMap".to_owned(), 1)];

    let with = deep_stack_into(&dir.path().join("with.db"), true).await;
    assert_eq!(reached_from(&with, concat!("// INNER", "MOST")), list);
    assert_eq!(reached_from(&with, concat!("// OUTER", "MOST")), list);
    with.shutdown().await.unwrap();

    let without = deep_stack_into(&dir.path().join("without.db"), false).await;
    assert_eq!(
        reached_from(&without, concat!("// INNER", "MOST")),
        list,
        "the innermost frames fit"
    );
    assert_eq!(
        reached_from(&without, concat!("// OUTER", "MOST")),
        [],
        "without the side channel the outermost frame is past the user agent's 1024 bytes"
    );
    without.shutdown().await.unwrap();
}
