//! What purpose costs a program's first request, and every request after, with and without
//! debug info in the binary, against the same request without the layer.
//!
//! The first request of a process can be measured once per process, so each sample is a fresh
//! child process (this binary run again): it builds a `kube::Client` over a service that
//! answers at once, sends one request from the bottom of 20 async fns and times it, then
//! (purpose on) waits for debug info and times 20,000 more: the steady state. The same
//! children run from a copy of this binary without debug info (`objcopy --strip-debug`, as
//! cargo's `strip = "debuginfo"` leaves a release build), where the layer sends module
//! addresses instead of frames.
//!
//! `cargo bench -p whakapapa --bench first_request` runs 15 pairs of processes per binary,
//! `no_layer` then `layer_on`, and prints each variant's medians and the median of the pairs'
//! differences: the added cost, against `no_layer` of the same binary in the same minute.

use http::{Request, Response};
use kube::client::Body;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tower::util::BoxService;
use tower::{BoxError, Layer as _, ServiceExt as _};
use whakapapa::{Identity, PurposeLayer, Settings};

const PROCESSES: usize = 15;
const STEADY: u32 = 20_000;

fn answering() -> BoxService<Request<Body>, Response<Body>, BoxError> {
    tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, BoxError>(Response::new(Body::empty()))
    })
    .boxed()
}

async fn bottom(client: &kube::Client) -> usize {
    let request = Request::get("/api/v1/namespaces/default/pods")
        .body(Body::empty())
        .unwrap();
    let response = client.send(request).await.unwrap();
    response.status().as_u16() as usize
}

macro_rules! nest {
    ($first:ident $(, $next:ident)*) => { nest!(@ $first $(, $next)*); };
    (@ $last:ident) => {
        async fn $last(c: &kube::Client) -> usize { black_box(bottom(c).await) + 1 }
    };
    (@ $this:ident, $next:ident $(, $rest:ident)*) => {
        async fn $this(c: &kube::Client) -> usize { black_box($next(c).await) + 1 }
        nest!(@ $next $(, $rest)*);
    };
}

nest!(
    depth01, depth02, depth03, depth04, depth05, depth06, depth07, depth08, depth09, depth10,
    depth11, depth12, depth13, depth14, depth15, depth16, depth17, depth18, depth19, depth20
);

/// One child: `no_layer` or `layer_on`; prints the first request's and the steady state's
/// nanoseconds per request.
fn child(variant: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // kube's Buffer spawns its worker on the runtime the client is built in.
    let _runtime = rt.enter();
    let on = variant == "layer_on";
    let layer = on.then(|| PurposeLayer::new(Settings::new(Identity::new("bench", "1.0.0"))));
    let client = match &layer {
        Some(layer) => kube::Client::new(layer.layer(answering()), "default"),
        None => kube::Client::new(answering(), "default"),
    };
    let first = rt.block_on(async {
        let start = Instant::now();
        black_box(depth01(&client).await);
        start.elapsed()
    });
    let warm_before = layer
        .as_ref()
        .is_some_and(|l| l.handle().stats().symbols_warm);
    if let Some(layer) = &layer {
        assert!(
            layer.wait_warm(Duration::from_secs(120)),
            "debug info never loaded"
        );
    }
    let steady = rt.block_on(async {
        // Past the first resolve of this stack.
        for _ in 0..100 {
            black_box(depth01(&client).await);
        }
        let start = Instant::now();
        for _ in 0..STEADY {
            black_box(depth01(&client).await);
        }
        start.elapsed() / STEADY
    });
    println!(
        "{} {} {}",
        first.as_nanos(),
        steady.as_nanos(),
        u8::from(warm_before)
    );
}

fn median(mut v: Vec<i128>) -> i128 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// One child of `exe`: first request and steady state in nanoseconds, and whether the first
/// request went before debug info was loaded.
fn run(exe: &Path, variant: &str) -> (i128, i128, bool) {
    let out = Command::new(exe)
        .args(["--child", variant])
        .output()
        .expect("running a child");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<i128> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields[0], fields[1], fields[2] == 0)
}

/// Medians over [`PROCESSES`] pairs of children of `exe`, `no_layer` then `layer_on`, so that
/// a slower minute of the machine lands on both: each variant's first request and steady
/// state, the median of the pairs' differences, and how many first requests went before
/// debug info was loaded.
struct Pairs {
    base: (i128, i128),
    on: (i128, i128),
    added: (i128, i128),
    cold: usize,
}

fn measure(exe: &Path) -> Pairs {
    let mut columns: [Vec<i128>; 6] = Default::default();
    let mut cold = 0;
    for _ in 0..PROCESSES {
        let base = run(exe, "no_layer");
        let on = run(exe, "layer_on");
        for (column, value) in
            columns
                .iter_mut()
                .zip([base.0, base.1, on.0, on.1, on.0 - base.0, on.1 - base.1])
        {
            column.push(value);
        }
        cold += usize::from(on.2);
    }
    let [b0, b1, o0, o1, a0, a1] = columns.map(median);
    Pairs {
        base: (b0, b1),
        on: (o0, o1),
        added: (a0, a1),
        cold,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child(&args[i + 1]);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        // `cargo test --benches` lists benches; there are no criterion ones here.
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stripped = dir.path().join("first_request.stripped");
    let status = Command::new("objcopy")
        .arg("--strip-debug")
        .arg(&exe)
        .arg(&stripped)
        .status()
        .expect("running objcopy (binutils)");
    assert!(status.success());
    println!(
        "{:<28} {:>14} {:>14} {:>14} {:>14} {:>6}",
        "bench (medians, 15 pairs)", "first req µs", "added µs", "steady ns", "added ns", "cold"
    );
    for (binary, path) in [
        ("debug info", exe.as_path()),
        ("no debug info", stripped.as_path()),
    ] {
        let pairs = measure(path);
        println!(
            "{:<28} {:>14.1} {:>14} {:>14} {:>14} {:>6}",
            format!("{binary}/no_layer"),
            pairs.base.0 as f64 / 1000.0,
            "",
            pairs.base.1,
            "",
            ""
        );
        println!(
            "{:<28} {:>14.1} {:>14.1} {:>14} {:>14} {:>6}",
            format!("{binary}/layer_on"),
            pairs.on.0 as f64 / 1000.0,
            pairs.added.0 as f64 / 1000.0,
            pairs.on.1,
            pairs.added.1,
            format!("{}/{PROCESSES}", pairs.cold),
        );
    }
}
