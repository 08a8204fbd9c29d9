//! Headless Chromium through chromedriver (WebDriver), for the web page's tests and the
//! benches that time it: Debian's `chromium` and `chromium-driver`, installed by the project's
//! `scripts/setup.sh` when they are missing and the process may.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use futures::FutureExt as _;
use serde_json::{Value, json};

/// `chromium` and `chromedriver`, installed by `scripts/setup.sh` when missing and possible;
/// `None` after printing `SKIPPED: {what}: ...` when neither can be had.
pub fn tools(what: &str) -> Option<(PathBuf, PathBuf)> {
    let find = |name: &str| -> Option<PathBuf> {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    };
    let both = || Some((find("chromium")?, find("chromedriver")?));
    if let Some(t) = both() {
        return Some(t);
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let setup = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/setup.sh");
    if root && setup.exists() {
        eprintln!(
            "chromium or chromedriver missing: running {}",
            setup.display()
        );
        let ok = Command::new("bash")
            .arg(&setup)
            .status()
            .is_ok_and(|s| s.success());
        if ok && let Some(t) = both() {
            return Some(t);
        }
    }
    println!(
        "SKIPPED: {what}: chromium and chromedriver are not installed and \
         scripts/setup.sh could not install them (needs root and Debian's apt)"
    );
    None
}

/// chromedriver on a free loopback port, killed on drop (with the Chromium it started).
pub struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session with headless Chromium, sized 1400×1000, on a fresh profile.
pub async fn start(chromium: &Path, chromedriver: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        port,
        _profile: profile,
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", driver.port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            // Without the background-networking flags Chromium's own connections are refused
            // by a closed network and slow every page down.
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1400,1000",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ],
        }),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("WebDriver session with chromium");
    (driver, client)
}

/// Runs a script in the page; its return value.
pub async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.unwrap()
}

/// Waits until the page has drawn and no load is in flight.
pub async fn idle(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = js(
            c,
            "return document.body.dataset.ready === 'true' && document.body.dataset.busy === '0'",
        )
        .await;
        if v == json!(true) {
            return;
        }
        assert!(Instant::now() < deadline, "page never became idle");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs `drive`, then closes the session (and its Chromium) before a failure unwinds past
/// chromedriver.
pub async fn closing(c: &Client, drive: impl std::future::Future<Output = ()>) {
    let outcome = AssertUnwindSafe(drive).catch_unwind().await;
    let _ = c.clone().close().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Waits up to 10 s for `css` to match: what the page draws after a second request.
pub async fn appears(c: &Client, css: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let probe = format!("return !!document.querySelector({css:?})");
    while js(c, &probe).await != json!(true) {
        assert!(Instant::now() < deadline, "{what} never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the URL's query string satisfies `f`, then until the page is idle.
pub async fn url_then_idle(c: &Client, what: &str, f: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = c.current_url().await.unwrap();
        let q = url.query().unwrap_or("").to_owned();
        if f(&q) {
            idle(c).await;
            return q;
        }
        assert!(Instant::now() < deadline, "URL never showed {what}: ?{q}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
