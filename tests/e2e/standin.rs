//! The stand-in API server through a real `kube::Client`, its audit batches through a real
//! webhook on loopback.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::{Value, json};
use whakapapa_testkit::{StandInApiServer, StandInConfig, UserInfo};

use super::sink::AuditSink;

fn client(server: &StandInApiServer) -> kube::Client {
    let config = kube::Config::new(server.url().parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "nginx"}]},
    }))
    .unwrap()
}

/// The events of one request, by auditID.
fn stages_of<'a>(events: &'a [Value], audit_id: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["auditID"] == audit_id).collect()
}

fn is_micro_time(s: &str) -> bool {
    // 2026-11-21T06:00:00.123456Z
    s.len() == 27
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && s.parse::<jiff::Timestamp>().is_ok()
}

#[tokio::test]
async fn kube_client_creates_lists_patches_and_deletes_pods() {
    let server = StandInApiServer::start(StandInConfig::default())
        .await
        .unwrap();
    let client = client(&server);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    let created = pods
        .create(&PostParams::default(), &pod("web-0"))
        .await
        .unwrap();
    assert_eq!(created.metadata.namespace.as_deref(), Some("default"));
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    let again = pods
        .create(&PostParams::default(), &pod("web-0"))
        .await
        .unwrap_err();
    assert!(
        matches!(again, kube::Error::Api(ref s) if s.code == 409),
        "{again:?}"
    );
    pods.create(&PostParams::default(), &pod("web-1"))
        .await
        .unwrap();

    let list = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ["web-0", "web-1"]);
    assert!(list.metadata.resource_version.is_some());

    let patched = pods
        .patch(
            "web-0",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"tier": "front"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.labels.unwrap()["tier"], "front");
    // As kube-apiserver: no log before a node runs the pod.
    let unscheduled = pods.logs("web-0", &Default::default()).await.unwrap_err();
    assert!(
        matches!(unscheduled, kube::Error::Api(ref s) if s.code == 400),
        "{unscheduled:?}"
    );
    let bound: Pod = serde_json::from_value(json!({
        "metadata": {"name": "bound"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "app:1"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &bound).await.unwrap();
    let log = pods.logs("bound", &Default::default()).await.unwrap();
    assert!(log.contains("bound"), "{log}");
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();

    pods.delete("web-1", &DeleteParams::default())
        .await
        .unwrap();
    let missing = pods.get("web-1").await.unwrap_err();
    assert!(
        matches!(missing, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"),
        "{missing:?}"
    );
    assert_eq!(pods.get_opt("web-1").await.unwrap(), None);

    let namespaces: Api<Namespace> = Api::all(client.clone());
    let all = namespaces.list(&ListParams::default()).await.unwrap();
    assert!(
        all.items
            .iter()
            .any(|n| n.metadata.name.as_deref() == Some("kube-system"))
    );

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "36")
    );
    server.shutdown().await;
}

#[tokio::test]
async fn deployments_scale_through_their_scale_subresource() {
    let server = StandInApiServer::start(StandInConfig::default())
        .await
        .unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client(&server), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "app", "image": "nginx"}]}}},
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let scale = deployments
        .patch_scale(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    let fetched = deployments.get("web").await.unwrap();
    assert_eq!(fetched.spec.replicas, Some(3));
    assert_eq!(fetched.metadata.generation, Some(2));
    server.shutdown().await;
}

#[tokio::test]
async fn watches_start_with_existing_objects_then_stream_changes() {
    let server = StandInApiServer::start(StandInConfig::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    pods.create(&PostParams::default(), &pod("before"))
        .await
        .unwrap();

    let mut stream = pods
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    let first = stream.try_next().await.unwrap().unwrap();
    assert!(
        matches!(first, WatchEvent::Added(ref p) if p.metadata.name.as_deref() == Some("before")),
        "{first:?}"
    );
    pods.create(&PostParams::default(), &pod("after"))
        .await
        .unwrap();
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Added(p) => {
                assert_eq!(p.metadata.name.as_deref(), Some("after"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    pods.delete("after", &DeleteParams::default())
        .await
        .unwrap();
    loop {
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Deleted(p) => {
                assert_eq!(p.metadata.name.as_deref(), Some("after"));
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    // kube-runtime's watcher: list, then watch from the list's resourceVersion.
    let mut events = kube::runtime::watcher(pods.clone(), Default::default()).boxed();
    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match event {
            kube::runtime::watcher::Event::InitApply(p) => seen.push(p.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["before"]);
    drop(stream);
    drop(events);
    server.shutdown().await;
}

#[tokio::test]
async fn every_request_is_audited_as_kube_apiserver_audits_it() {
    let sink = AuditSink::start(0).await;
    let config = StandInConfig::default()
        .with_audit_webhook(sink.url())
        .with_audit_batching(400, Duration::from_secs(60))
        .with_token(
            "alice-token",
            UserInfo {
                username: "alice".into(),
                uid: String::new(),
                groups: vec!["system:authenticated".into()],
            },
        );
    let server = StandInApiServer::start(config).await.unwrap();
    let client = client(&server);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("web-0"))
        .await
        .unwrap();
    pods.list(&ListParams::default()).await.unwrap();

    // A request with our own Audit-ID, user agent and token.
    let long_agent = format!("shop/v1 {}", "frame@src/main.rs:1 ".repeat(100));
    let request = http::Request::get(format!(
        "{}/api/v1/namespaces/default/pods/web-0",
        server.url()
    ))
    .header("Audit-ID", "8c0e4b7d-12aa-83f1-95c4-1d2e3f405162")
    .header("User-Agent", &long_agent)
    .header("Authorization", "Bearer alice-token")
    .body(Vec::new())
    .unwrap();
    client.request_text(request).await.unwrap();
    let unknown = http::Request::delete(format!("{}/api/v1/namespaces/default/pods", server.url()))
        .header("Authorization", "Bearer wrong")
        .body(Vec::new())
        .unwrap();
    let err = client.request_text(unknown).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 401),
        "{err:?}"
    );
    client
        .request_text(
            http::Request::get(format!("{}/version", server.url()))
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();

    server.flush_audit().await;
    let events = sink.events();
    for event in &events {
        assert_eq!(event["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(event["kind"], "Event");
        assert_eq!(event["level"], "Metadata");
        assert_eq!(event["sourceIPs"], json!(["127.0.0.1"]));
        assert!(
            is_micro_time(event["requestReceivedTimestamp"].as_str().unwrap()),
            "{event}"
        );
        assert!(
            is_micro_time(event["stageTimestamp"].as_str().unwrap()),
            "{event}"
        );
    }
    let by_verb =
        |verb: &str| -> Vec<&Value> { events.iter().filter(|e| e["verb"] == verb).collect() };

    let create = by_verb("create");
    assert_eq!(create.len(), 2, "RequestReceived and ResponseComplete");
    assert_eq!(create[0]["stage"], "RequestReceived");
    assert!(create[0].get("responseStatus").is_none());
    assert_eq!(create[1]["stage"], "ResponseComplete");
    assert_eq!(create[1]["responseStatus"]["code"], 201);
    assert_eq!(
        create[1]["objectRef"],
        json!({"resource": "pods", "namespace": "default", "name": "web-0", "apiVersion": "v1"})
    );
    assert_eq!(create[0]["auditID"], create[1]["auditID"]);
    assert_eq!(create[1]["user"]["username"], "kubernetes-admin");
    let fresh_id = create[0]["auditID"].as_str().unwrap();
    assert_eq!(fresh_id.len(), 36);
    assert_eq!(
        &fresh_id[14..15],
        "4",
        "a fresh auditID is a UUIDv4: {fresh_id}"
    );

    let list = by_verb("list");
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[1]["requestURI"].as_str().unwrap().split('?').next(),
        Some("/api/v1/namespaces/default/pods")
    );

    let get = stages_of(&events, "8c0e4b7d-12aa-83f1-95c4-1d2e3f405162");
    assert_eq!(get.len(), 2, "the client's Audit-ID is adopted unchanged");
    assert_eq!(get[1]["verb"], "get");
    assert_eq!(get[1]["user"]["username"], "alice");
    let agent = get[1]["userAgent"].as_str().unwrap();
    assert_eq!(agent.len(), 1024 + "...TRUNCATED".len());
    assert!(agent.ends_with("...TRUNCATED"));
    assert_eq!(&agent[..1024], &long_agent[..1024]);

    let unauthorized = by_verb("deletecollection");
    assert_eq!(
        unauthorized.len(),
        1,
        "a failed authentication is one ResponseStarted event"
    );
    assert_eq!(unauthorized[0]["stage"], "ResponseStarted");
    assert_eq!(unauthorized[0]["responseStatus"]["code"], 401);

    let version: Vec<_> = events
        .iter()
        .filter(|e| e["requestURI"] == "/version")
        .collect();
    assert_eq!(version.len(), 2);
    assert_eq!(version[0]["verb"], "get");
    assert!(version[0].get("objectRef").is_none());
    let stats = server.shutdown().await;
    assert_eq!(stats.events_delivered as usize, events.len());
}

#[tokio::test]
async fn watches_are_audited_at_three_stages() {
    let sink = AuditSink::start(0).await;
    let server = StandInApiServer::start(StandInConfig::default().with_audit_webhook(sink.url()))
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    let mut stream = pods
        .watch(&WatchParams::default().timeout(1), "0")
        .await
        .unwrap()
        .boxed();
    // The server ends the watch after its timeout.
    while stream.try_next().await.unwrap().is_some() {}
    drop(stream);
    let stats = server.shutdown().await;
    let watch: Vec<_> = sink
        .events()
        .into_iter()
        .filter(|e| e["verb"] == "watch")
        .collect();
    let stages: Vec<_> = watch
        .iter()
        .map(|e| e["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        stages,
        ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    );
    assert_eq!(stats.events_dropped, 0);
}

#[tokio::test]
async fn batches_hold_at_most_400_events() {
    let sink = AuditSink::start(0).await;
    let config = StandInConfig::default()
        .with_audit_webhook(sink.url())
        .with_audit_batching(400, Duration::from_secs(60));
    let server = StandInApiServer::start(config).await.unwrap();
    let client = client(&server);
    let namespaces: Api<Namespace> = Api::all(client);
    // 500 requests: 1000 events.
    futures::stream::iter(0..500)
        .for_each_concurrent(8, |_| {
            let namespaces = namespaces.clone();
            async move {
                namespaces.get("default").await.unwrap();
            }
        })
        .await;
    server.flush_audit().await;
    let mut sizes: Vec<usize> = sink
        .batches()
        .iter()
        .map(|b| b["items"].as_array().unwrap().len())
        .collect();
    sizes.sort_unstable();
    assert_eq!(
        sizes,
        [200, 400, 400],
        "two full batches, the rest at flush"
    );
    for batch in sink.batches() {
        assert_eq!(batch["kind"], "EventList");
        assert_eq!(batch["apiVersion"], "audit.k8s.io/v1");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_batch_is_sent_after_the_wait_without_a_flush() {
    let sink = AuditSink::start(0).await;
    let config = StandInConfig::default()
        .with_audit_webhook(sink.url())
        .with_audit_batching(400, Duration::from_millis(200));
    let server = StandInApiServer::start(config).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client(&server));
    namespaces.get("default").await.unwrap();
    let mut waited = Duration::ZERO;
    while sink.events().len() < 2 {
        assert!(
            waited < Duration::from_secs(5),
            "no batch within 5 s of a 200 ms batch wait"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += Duration::from_millis(50);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_failed_batch_is_resent_whole() {
    let sink = AuditSink::start(2).await;
    // Only the flush cuts the batch: one batch of four events.
    let config = StandInConfig::default()
        .with_audit_webhook(sink.url())
        .with_audit_batching(400, Duration::from_secs(60));
    let server = StandInApiServer::start(config).await.unwrap();
    let namespaces: Api<Namespace> = Api::all(client(&server));
    namespaces.get("default").await.unwrap();
    namespaces.list(&ListParams::default()).await.unwrap();
    server.flush_audit().await;
    let posts = sink.posts();
    assert_eq!(posts.len(), 3, "two 503s, then the acknowledged resend");
    assert_eq!(posts[0], posts[2], "the resend is the same batch");
    assert_eq!(sink.events().len(), 4);
    let stats = server.shutdown().await;
    assert_eq!(
        (
            stats.failed_attempts,
            stats.batches_delivered,
            stats.batches_lost
        ),
        (2, 1, 0)
    );
}

#[tokio::test]
async fn serves_openapi_v2_and_discovery() {
    let server = StandInApiServer::start(StandInConfig::default())
        .await
        .unwrap();
    let client = client(&server);
    let text = client
        .request_text(
            http::Request::get(format!("{}/openapi/v2", server.url()))
                .body(Vec::new())
                .unwrap(),
        )
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    assert!(
        doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"].is_object()
    );
    let discovery = kube::discovery::Discovery::new(client).run().await.unwrap();
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_owned()).collect();
    assert!(groups.contains(&"apps".to_owned()), "{groups:?}");
    assert!(
        groups.contains(&"coordination.k8s.io".to_owned()),
        "{groups:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn refused_requests_are_audited_with_their_status() {
    let sink = AuditSink::start(0).await;
    let config = StandInConfig::default()
        .with_audit_webhook(sink.url())
        .with_audit_batching(400, Duration::from_secs(60));
    let server = StandInApiServer::start(config).await.unwrap();
    let client = client(&server);

    let huge = vec![b' '; 4 << 20];
    let request = http::Request::post(format!(
        "{}/api/v1/namespaces/default/configmaps",
        server.url()
    ))
    .header("content-type", "application/json")
    .body(huge)
    .unwrap();
    let err = client.request_text(request).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 413),
        "{err:?}"
    );

    let configmaps: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "nowhere");
    let body = serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap();
    let err = configmaps
        .create(&PostParams::default(), &body)
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.message == "namespaces \"nowhere\" not found"),
        "{err:?}"
    );

    server.flush_audit().await;
    let complete: Vec<_> = sink
        .events()
        .into_iter()
        .filter(|e| e["verb"] == "create" && e["stage"] == "ResponseComplete")
        .collect();
    let codes: Vec<_> = complete
        .iter()
        .map(|e| e["responseStatus"]["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [413, 404]);
    assert_eq!(
        complete[0]["responseStatus"]["reason"],
        "RequestEntityTooLarge"
    );
    assert_eq!(complete[1]["responseStatus"]["status"], "Failure");
    server.shutdown().await;
}

#[tokio::test]
async fn streaming_lists_end_their_initial_events_with_a_bookmark() {
    let server = StandInApiServer::start(StandInConfig::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client(&server), "default");
    for name in ["a", "b"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .unwrap();
    }
    // sendInitialEvents=true: the objects come as ADDED events on the watch itself, then a
    // bookmark annotated k8s.io/initial-events-end.
    let config = kube::runtime::watcher::Config::default().streaming_lists();
    let mut events = kube::runtime::watcher(pods, config).boxed();
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("initial events end within 5 s")
            .unwrap()
            .unwrap();
        match event {
            kube::runtime::watcher::Event::InitApply(p) => seen.push(p.metadata.name.unwrap()),
            kube::runtime::watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(seen, ["a", "b"]);
    drop(events);
    server.shutdown().await;
}
