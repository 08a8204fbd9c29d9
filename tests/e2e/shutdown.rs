//! SIGTERM to a real `whakapapa-collector serve` process while batches stream in: every batch
//! it acknowledged is in the database afterwards, and it exits cleanly.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::json;

/// The collector's binary. `cargo test --workspace` has already built it beside this test's
/// own executable (`target/<profile>/deps/e2e-*` -> `target/<profile>/whakapapa-collector`);
/// run alone (`cargo test -p whakapapa-e2e`), this builds it and asks cargo for its path, as
/// the root package cannot name another package's binary with `CARGO_BIN_EXE_*`.
pub(super) fn collector_binary() -> PathBuf {
    let sibling = std::env::current_exe().ok().and_then(|exe| {
        let profile_dir = exe.parent()?.parent()?;
        let bin = profile_dir.join(format!(
            "whakapapa-collector{}",
            std::env::consts::EXE_SUFFIX
        ));
        bin.is_file().then_some(bin)
    });
    if let Some(bin) = sibling {
        return bin;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "build",
            "-p",
            "whakapapa-collector",
            "--bin",
            "whakapapa-collector",
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running cargo build");
    assert!(
        output.status.success(),
        "cargo build -p whakapapa-collector failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .find(|p| p.file_stem().is_some_and(|s| s == "whakapapa-collector"))
        .expect("cargo reported the collector's executable")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `whakapapa-collector serve --openapi embedded` on `db` and a free loopback port, once it
/// answers `/readyz`; the process and its base URL.
pub(super) async fn serve(
    binary: &std::path::Path,
    db: &std::path::Path,
) -> (std::process::Child, String) {
    let port = free_port();
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--openapi",
            "embedded",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--db",
        ])
        .arg(db)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting whakapapa-collector serve");
    let base = format!("http://127.0.0.1:{port}");
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..400 {
        let request = http::Request::get(format!("{base}/readyz"))
            .body(Full::default())
            .unwrap();
        if let Ok(response) = client.request(request).await
            && response.status().is_success()
        {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the collector did not become ready within 20 s");
}

/// One batch of `n` RequestReceived+ResponseComplete pairs with IDs `{prefix}-{i}`.
fn batch(prefix: &str, n: usize) -> (Vec<String>, Bytes) {
    let ids: Vec<String> = (0..n).map(|i| format!("{prefix}-{i:04}")).collect();
    let mut items = Vec::new();
    for id in &ids {
        for (stage, ts) in [
            ("RequestReceived", "2026-11-20T10:00:00.000001Z"),
            ("ResponseComplete", "2026-11-20T10:00:00.000900Z"),
        ] {
            let mut event = json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": id, "stage": stage,
                "requestURI": "/api/v1/namespaces/default/pods?limit=500", "verb": "list",
                "user": {"username": "kubernetes-admin", "groups": ["system:authenticated"]},
                "sourceIPs": ["127.0.0.1"], "userAgent": "kubectl/v1.36.0 (linux/amd64) kubernetes/abc1234",
                "objectRef": {"resource": "pods", "namespace": "default", "apiVersion": "v1"},
                "requestReceivedTimestamp": "2026-11-20T10:00:00.000001Z", "stageTimestamp": ts,
            });
            if stage == "ResponseComplete" {
                event["responseStatus"] = json!({"metadata": {}, "code": 200});
            }
            items.push(event);
        }
    }
    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items});
    (ids, Bytes::from(serde_json::to_vec(&list).unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_stream_of_batches_loses_no_acknowledged_batch() {
    let binary = collector_binary();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("shutdown.db");
    let (mut child, base) = serve(&binary, &db).await;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();

    // Four senders stream batches until the server stops answering.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for sender in 0..4 {
        let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            let mut sent = 0;
            for n in 0.. {
                let (ids, body) = batch(&format!("s{sender}-b{n:04}"), 100);
                let request = http::Request::post(format!("{base}/audit"))
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .unwrap();
                match client.request(request).await {
                    Ok(response) if response.status().is_success() => {
                        let _ = response.into_body().collect().await;
                        acknowledged.lock().unwrap().extend(ids);
                        sent += 1;
                    }
                    _ => break,
                }
            }
            sent
        }));
    }
    // SIGTERM once a few batches are in, while the senders keep going.
    let mut waited = Duration::ZERO;
    while acknowledged.lock().unwrap().len() < 500 {
        assert!(
            waited < Duration::from_secs(30),
            "fewer than 5 batches acknowledged in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut batches = 0;
    for sender in senders {
        batches += tokio::time::timeout(Duration::from_secs(20), sender)
            .await
            .expect("senders stop")
            .unwrap();
    }
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "serve should exit cleanly on SIGTERM, got {status}"
    );

    let acknowledged: HashSet<String> = acknowledged.lock().unwrap().iter().cloned().collect();
    let conn = whakapapa_collector::store::open_reader(&db).unwrap();
    let mut statement = conn.prepare("SELECT audit_id FROM requests").unwrap();
    let stored: HashSet<String> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).take(5).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged requests lost, e.g. {lost:?}",
        acknowledged.difference(&stored).count()
    );
    println!(
        "{batches} batches ({} requests) acknowledged, {} stored",
        acknowledged.len(),
        stored.len()
    );
}
