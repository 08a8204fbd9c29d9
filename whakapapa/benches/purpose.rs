//! Cost of the layer per request, steady state, from a 20-deep async call stack, measured in
//! one run beside the same request path without the layer and beside a bare
//! `backtrace::trace` of the same stack.
//!
//! Every variant sends requests through a real `kube::Client` (kube's `Buffer` over a boxed
//! stack), whose innermost service answers at once, so the numbers are the client-side cost:
//!
//! - `no_layer`: the client as `kube::Client::new` builds it.
//! - `layer_off`: with `PurposeLayer` switched off.
//! - `layer_on`: with `PurposeLayer` on, steady state (the stack's purpose is cached).
//! - `bare_trace_in_future`: no layer, but the response future takes a bare `backtrace::trace`
//!   (instruction pointers only) at its first poll — the same stack the layer captures.
//! - `bare_trace`: a bare `backtrace::trace` at the bottom of the same 20 async fns, no request.
//!
//! Added cost = variant − `no_layer`.
//!
//! A second group calls the innermost service directly, with and without the switched-off
//! layer, polling the response once: the off layer's own cost without a runtime around it.

use criterion::{Criterion, criterion_group, criterion_main};
use futures::FutureExt as _;
use http::{Request, Response};
use kube::client::Body;
use pin_project_lite::pin_project;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt as _};
use whakapapa::{Identity, PurposeLayer, Settings};

type Inner = BoxService<Request<Body>, Response<Body>, BoxError>;

/// The innermost service: answers every request at once.
fn answering() -> Inner {
    tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, BoxError>(Response::new(Body::empty()))
    })
    .boxed()
}

/// What the bottom of the stack does.
#[derive(Clone)]
enum Work {
    Send(kube::Client),
    Trace,
}

#[inline(never)]
fn bare_trace() -> usize {
    let mut ips = [0usize; 256];
    let mut n = 0;
    backtrace::trace(|f| {
        ips[n] = f.ip() as usize;
        n += 1;
        n < ips.len()
    });
    black_box(&ips);
    n
}

async fn bottom(work: &Work) -> usize {
    match work {
        Work::Send(client) => {
            let request = Request::get("/api/v1/namespaces/default/pods")
                .body(Body::empty())
                .unwrap();
            let response = client.send(request).await.unwrap();
            response.status().as_u16() as usize
        }
        Work::Trace => bare_trace(),
    }
}

macro_rules! nest {
    ($first:ident $(, $next:ident)*) => { nest!(@ $first $(, $next)*); };
    (@ $last:ident) => {
        async fn $last(work: &Work) -> usize { black_box(bottom(work).await) + 1 }
    };
    (@ $this:ident, $next:ident $(, $rest:ident)*) => {
        async fn $this(work: &Work) -> usize { black_box($next(work).await) + 1 }
        nest!(@ $next $(, $rest)*);
    };
}

nest!(
    depth01, depth02, depth03, depth04, depth05, depth06, depth07, depth08, depth09, depth10,
    depth11, depth12, depth13, depth14, depth15, depth16, depth17, depth18, depth19, depth20
);

pin_project! {
    /// A response future that takes a bare trace at its first poll, then polls the inner one.
    struct TraceAtFirstPoll<F> { #[pin] inner: F, traced: bool }
}

impl<F: Future> Future for TraceAtFirstPoll<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if !*this.traced {
            *this.traced = true;
            black_box(bare_trace());
        }
        this.inner.poll(cx)
    }
}

struct TraceLayer;
struct TraceService<S>(S);

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;
    fn layer(&self, inner: S) -> TraceService<S> {
        TraceService(inner)
    }
}

impl<S: Service<Request<Body>>> Service<Request<Body>> for TraceService<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = TraceAtFirstPoll<S::Future>;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }
    fn call(&mut self, req: Request<Body>) -> Self::Future {
        TraceAtFirstPoll {
            inner: self.0.call(req),
            traced: false,
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let identity = Identity::new("bench", "1.0.0");
    let on = PurposeLayer::new(Settings::new(identity.clone()));
    let off = PurposeLayer::new(Settings::off(identity));
    let variants: Vec<(&str, Work)> = rt.block_on(async {
        vec![
            (
                "no_layer",
                Work::Send(kube::Client::new(answering(), "default")),
            ),
            (
                "layer_off",
                Work::Send(kube::Client::new(off.layer(answering()), "default")),
            ),
            (
                "layer_on",
                Work::Send(kube::Client::new(on.layer(answering()), "default")),
            ),
            (
                "bare_trace_in_future",
                Work::Send(kube::Client::new(TraceLayer.layer(answering()), "default")),
            ),
            ("bare_trace", Work::Trace),
        ]
    });
    // Debug info is loaded in the background; wait for it so that warm-up measures steady state.
    while !on.handle().stats().symbols_warm {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut group = c.benchmark_group("request_from_20_async_fns");
    for (name, work) in &variants {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(depth01(work).await);
                    }
                    start.elapsed()
                })
            })
        });
    }
    group.finish();

    // The switched-off layer on its own, without kube's Buffer and the runtime around it,
    // so that a few nanoseconds are not lost in the noise of a whole request.
    let mut off_group = c.benchmark_group("one_call_without_runtime");
    let mut bare = answering();
    let mut wrapped = off.layer(answering());
    off_group.bench_function("layer_off", |b| {
        b.iter(|| {
            let request = Request::new(Body::empty());
            black_box(wrapped.call(request).now_or_never())
        })
    });
    off_group.bench_function("inner_service", |b| {
        b.iter(|| {
            let request = Request::new(Body::empty());
            black_box(bare.call(request).now_or_never())
        })
    });
    off_group.finish();

    let stats = on.handle().stats();
    assert_eq!(stats.capture_failures, 0, "captures failed: {stats:?}");
    // Steady state: the few stacks of `layer_on` (warm-up and measurement loops differ) were
    // resolved once each, then served from the cache.
    assert!(stats.purposes_resolved < 10, "{stats:?}");
    let frames = rt.block_on(depth01(&Work::Trace)) - 20;
    println!("bare trace at the bottom of the 20 async fns saw {frames} physical frames");
}

criterion_group!(benches, bench);
criterion_main!(benches);
