//! Why a request is made: the application's call stack, as functions with `file:line`,
//! innermost first, and its 64-bit fingerprint.
//!
//! # Example
//!
//! ```
//! if let Some(purpose) = whakapapa::Purpose::capture() {
//!     println!("{:016x} {:?}", purpose.fingerprint, purpose.frames);
//! }
//! ```
//!
//! A capture is a bare `backtrace::trace` (instruction pointers only). Symbols are resolved
//! once per instruction pointer (one pointer can stand for several inlined frames) and
//! cached for the life of the process, so a stack seen before costs little more than the trace.
//! Names and paths are cleaned as the wire crate's [`stack`](crate::wire::stack) says, the
//! same rules the collector applies.

use crate::wire::Frame;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, LazyLock, Mutex, PoisonError, RwLock};

/// How many instruction pointers a capture keeps; deeper stacks lose their outermost frames.
pub(crate) const MAX_IPS: usize = 256;

/// A captured stack: instruction pointers, innermost first, held on the stack (no allocation).
pub(crate) struct Trace {
    ips: [usize; MAX_IPS],
    len: usize,
}

impl Trace {
    /// An empty trace.
    pub(crate) fn new() -> Self {
        Self {
            ips: [0; MAX_IPS],
            len: 0,
        }
    }

    /// Records the current thread's stack.
    #[inline(never)]
    pub(crate) fn capture(&mut self) {
        self.len = 0;
        backtrace::trace(|frame| {
            self.ips[self.len] = frame.ip() as usize;
            self.len += 1;
            self.len < MAX_IPS
        });
    }

    /// The instruction pointers, innermost first.
    pub(crate) fn ips(&self) -> &[usize] {
        &self.ips[..self.len]
    }

    /// A fast in-process hash of the pointers (not stable across processes: see
    /// [`fingerprint`] for that).
    pub(crate) fn key(&self) -> u64 {
        let mut h = 0x243f_6a88_85a3_08d3u64;
        for &ip in self.ips() {
            h = (h.rotate_left(5) ^ ip as u64).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
        h
    }
}

/// A hasher for keys that are hashes already.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

/// A map keyed by a precomputed hash.
pub(crate) type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

pub(crate) use crate::modules::Symbol;

static SYMBOLS: LazyLock<RwLock<KeyMap<usize, Arc<[Symbol]>>>> = LazyLock::new(Default::default);
static WARM: AtomicBool = AtomicBool::new(false);

/// The symbols of `ip`, innermost inlined frame first, resolved once per process.
fn symbols(ip: usize) -> Arc<[Symbol]> {
    if let Some(found) = SYMBOLS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&ip)
    {
        return found.clone();
    }
    let out = crate::modules::symbols(ip);
    let out: Arc<[Symbol]> = out.into();
    SYMBOLS
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(ip, out.clone());
    out
}

/// Resolves every pointer of a stack into the process-wide cache.
pub(crate) fn resolve_all(ips: &[usize]) {
    for &ip in ips {
        symbols(ip);
    }
}

static WARMED: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());

/// Records that the background warm-up is done.
pub(crate) fn set_warm() {
    let _guard = WARMED.0.lock().unwrap_or_else(PoisonError::into_inner);
    WARM.store(true, Ordering::Release);
    WARMED.1.notify_all();
}

/// Waits up to `timeout` for the warm-up; whether it is done.
pub(crate) fn wait_warm(timeout: std::time::Duration) -> bool {
    let guard = WARMED.0.lock().unwrap_or_else(PoisonError::into_inner);
    let (_guard, _) = WARMED
        .1
        .wait_timeout_while(guard, timeout, |()| !is_warm())
        .unwrap_or_else(PoisonError::into_inner);
    is_warm()
}

/// Whether the background warm-up has loaded debug info.
pub(crate) fn is_warm() -> bool {
    WARM.load(Ordering::Acquire)
}

/// The purpose of a request: the application's frames, innermost first, the test it runs
/// in, and the fingerprint of both.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purpose {
    /// The fingerprint the request was sent with: the 64-bit FNV-1a hash of the test name and
    /// every kept frame ([`crate::wire::stack::fingerprint`]), or, while there are no frames
    /// (debug info not loaded yet, or none in the binary), the hash of the stack's module
    /// addresses.
    pub fingerprint: u64,
    /// The libtest test the request was made from (the thread's name under `cargo test`).
    pub test: Option<String>,
    /// Kept frames with a known `file:line`, innermost first; the first is the kube-rs API
    /// method when the request came through one.
    pub frames: Vec<Frame>,
    /// Per frame: whether it is the application's own source.
    local: Vec<bool>,
}

impl Purpose {
    /// The purpose of the code calling this function, with paths made relative by heuristics
    /// (the layer uses the application's crate directory from its [`Identity`](crate::Identity)).
    pub fn capture() -> Option<Self> {
        let mut trace = Trace::new();
        trace.capture();
        let thread = std::thread::current();
        std::panic::catch_unwind(|| Self::of_trace(trace.ips(), None, thread.name())).ok()
    }

    /// A purpose not resolved yet: its fingerprint only.
    pub(crate) fn unresolved(fingerprint: u64) -> Self {
        Self {
            fingerprint,
            test: None,
            frames: Vec::new(),
            local: Vec::new(),
        }
    }

    /// The purpose of a captured stack.
    pub(crate) fn of_trace(ips: &[usize], source_dir: Option<&str>, thread: Option<&str>) -> Self {
        let mut raw = Vec::with_capacity(ips.len() * 2);
        for &ip in ips {
            raw.extend(symbols(ip).iter().cloned());
        }
        Self::of_symbols(&raw, source_dir, thread)
    }

    /// The purpose of resolved symbols, innermost first.
    pub(crate) fn of_symbols(
        raw: &[Symbol],
        source_dir: Option<&str>,
        thread: Option<&str>,
    ) -> Self {
        let raw: Vec<whakapapa_wire::stack::Symbol<'_>> = raw
            .iter()
            .map(|s| whakapapa_wire::stack::Symbol {
                function: s.function.as_deref(),
                file: s.file.as_deref(),
                line: s.line,
            })
            .collect();
        let stack = whakapapa_wire::stack::of_symbols(&raw, source_dir, thread);
        Self {
            fingerprint: stack.fingerprint,
            test: stack.test,
            frames: stack.frames,
            local: stack.local,
        }
    }

    /// The frames a user agent carries, innermost first: the first frame (the kube-rs API
    /// method when there is one), then the application's own frames; frames of registry
    /// crates (kube-runtime's stream machinery, say) are left to the full purpose.
    pub fn user_agent_frames(&self) -> Vec<Frame> {
        self.frames
            .iter()
            .zip(&self.local)
            .enumerate()
            .filter(|(i, (_, local))| *i == 0 || **local)
            .map(|(_, (frame, _))| frame.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::stack::{
        clean_function, crate_of, crate_of_file, fingerprint, keep_crate, relative_file,
    };

    #[test]
    fn clean_function_table() {
        let cases = [
            ("app::main", "app::main"),
            ("app::reconcile::{{closure}}", "app::reconcile"),
            ("app::reconcile::{{closure}}::{{closure}}", "app::reconcile"),
            ("app::reconcile::h0123456789abcdef", "app::reconcile"),
            ("app::reconcile::{async_fn#0}", "app::reconcile"),
            ("app::run::{async_block#0}", "app::run"),
            ("app::run::{closure#1}", "app::run"),
            (
                "kube_client::api::core_methods::<impl kube_client::api::Api<K>>::list::{{closure}}",
                "kube_client::api::Api<K>::list",
            ),
            (
                "<kube_runtime::watcher::Config as core::default::Default>::default",
                "<kube_runtime::watcher::Config as core::default::Default>::default",
            ),
            (
                "app::Foo<alloc::vec::Vec<u8>>::bar",
                "app::Foo<alloc::vec::Vec<u8>>::bar",
            ),
            (
                "app::call::<fn() -> u8>::{{closure}}",
                "app::call::<fn() -> u8>",
            ),
            (
                "kube_client::api::core_methods::{impl#0}::get<k8s_openapi::api::core::v1::Pod>",
                "kube_client::api::core_methods::get",
            ),
            ("decorate<kube_client::client::body::Body>", "decorate"),
            ("{async_fn#0}<k8s_openapi::api::core::v1::Pod>", ""),
            ("main", "main"),
        ];
        for (raw, want) in cases {
            assert_eq!(clean_function(raw), want, "raw {raw}");
        }
    }

    #[test]
    fn crate_of_file_table() {
        let cases = [
            (
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/kube-client-5.0.0/src/api/mod.rs",
                Some("kube_client"),
            ),
            (
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tower-http-0.7.1/src/trace.rs",
                Some("tower_http"),
            ),
            (
                "/rustc/59807616e1fa2540724bfbac14d7976d7e4a3860/library/core/src/future/mod.rs",
                Some("core"),
            ),
            ("/work/main/whakapapa/src/layer.rs", Some("whakapapa")),
            ("/work/shop-controller/src/main.rs", Some("shop_controller")),
            ("/work/main/whakapapa/examples/release_probe.rs", None),
            ("nptl/pthread_create.c", None),
        ];
        for (path, want) in cases {
            assert_eq!(crate_of_file(path).as_deref(), want, "{path}");
        }
    }

    #[test]
    fn line_tables_only_names_are_classified_by_file() {
        let raw = vec![
            sym(
                "trace_unsynchronized<whakapapa::purpose::{impl#0}::capture::{closure_env#0}>",
                "/r/registry/src/i/backtrace-0.3.77/src/backtrace/mod.rs",
                66,
            ),
            sym(
                "decorate<kube_client::client::body::Body>",
                "/w/whakapapa/src/layer.rs",
                228,
            ),
            sym(
                "poll<tower::util::boxed::sync::BoxService<X>>",
                "/r/registry/src/i/tower-0.5.3/src/util/boxed/sync.rs",
                1,
            ),
            sym(
                "{async_fn#0}<k8s_openapi::api::core::v1::Pod>",
                "/r/registry/src/i/kube-client-5.0.0/src/client/mod.rs",
                220,
            ),
            sym(
                "{async_fn#0}<k8s_openapi::api::core::v1::Pod>",
                "/r/registry/src/i/kube-client-5.0.0/src/api/core_methods.rs",
                33,
            ),
            sym("{async_fn#0}", "/work/shop/src/inventory.rs", 42),
            sym("{async_fn#0}", "/work/shop/src/main.rs", 17),
            sym(
                "block_on<F>",
                "/r/registry/src/i/tokio-1.54.1/src/runtime/park.rs",
                1,
            ),
            sym("start_thread", "nptl/pthread_create.c", 442),
        ];
        let p = Purpose::of_symbols(&raw, Some("/work/shop"), None);
        assert_eq!(
            p.frames,
            vec![
                Frame::new("?", "kube-client-5.0.0/src/api/core_methods.rs", 33),
                Frame::new("?", "src/inventory.rs", 42),
                Frame::new("?", "src/main.rs", 17),
            ]
        );
        // The header says what the record says.
        let ua = crate::wire::user_agent::render("x", None, p.fingerprint, None, &p.frames);
        assert!(ua.contains(" ?@src/inventory.rs:42 "), "{ua}");
    }

    #[test]
    fn tokio_main_under_line_tables_is_the_application_main() {
        let raw = vec![
            sym(
                "{async_fn#0}<k8s_openapi::api::core::v1::Pod>",
                "/r/registry/src/i/kube-client-5.0.0/src/api/core_methods.rs",
                33,
            ),
            sym("{async_fn#0}", "/work/shop/src/inventory.rs", 42),
            sym("{async_block#0}", "/work/shop/src/main.rs", 60),
            sym(
                "block_on<F>",
                "/r/registry/src/i/tokio-1.54.1/src/runtime/park.rs",
                1,
            ),
            // The `fn main` that `#[tokio::main]` generates, at the attribute's line.
            sym("main", "/work/shop/src/main.rs", 54),
            sym("lang_start_internal", "/rustc/x/library/std/src/rt.rs", 1),
        ];
        let p = Purpose::of_symbols(&raw, Some("/work/shop"), None);
        assert_eq!(
            p.frames,
            vec![
                Frame::new("?", "kube-client-5.0.0/src/api/core_methods.rs", 33),
                Frame::new("?", "src/inventory.rs", 42),
                Frame::new("main", "src/main.rs", 60),
            ]
        );
        // A `main` with no body frame of its file before it is the application's main as is.
        let p = Purpose::of_symbols(
            &[raw[0].clone(), raw[1].clone(), raw[4].clone()],
            Some("/work/shop"),
            None,
        );
        assert_eq!(p.frames[2], Frame::new("main", "src/main.rs", 54));
    }

    #[test]
    fn crate_of_table() {
        let cases = [
            ("app::main", "app"),
            ("kube_client::api::Api<K>::list", "kube_client"),
            (
                "<core::pin::Pin<P> as core::future::future::Future>::poll",
                "core",
            ),
            (
                "<F as futures_core::future::TryFuture>::try_poll",
                "futures_core",
            ),
            (
                "<app::MyFuture as core::future::future::Future>::poll",
                "app",
            ),
            ("<&mut app::Foo as std::io::Read>::read", "app"),
            (
                "<fn() -> core::result::Result<(), alloc::string::String> as core::ops::function::FnOnce<()>>::call_once",
                "core",
            ),
            ("<dyn app::Handler as app::Run>::run", "app"),
            (
                "<alloc::boxed::Box<F,A> as core::future::future::Future>::poll",
                "alloc",
            ),
            ("main", "main"),
            ("__libc_start_main", "__libc_start_main"),
        ];
        for (function, want) in cases {
            assert_eq!(crate_of(function), want, "{function}");
        }
    }

    #[test]
    fn keep_crate_table() {
        for (krate, keep) in [
            ("app", true),
            ("kube_client", true),
            ("kube_runtime", true),
            ("std", false),
            ("tokio", false),
            ("tower_http", false),
            ("hyper_util", false),
            ("whakapapa", false),
            ("test", false),
            ("__libc_start_main", false),
            ("", false),
        ] {
            assert_eq!(keep_crate(krate), keep, "{krate}");
        }
    }

    #[test]
    fn relative_file_table() {
        let dir = Some("/work/shop");
        let cases = [
            ("/work/shop/src/main.rs", dir, "src/main.rs"),
            ("/work/shop/tests/it/pods.rs", dir, "tests/it/pods.rs"),
            (
                "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/kube-client-5.0.0/src/api/core_methods.rs",
                dir,
                "kube-client-5.0.0/src/api/core_methods.rs",
            ),
            (
                "/root/.cargo/git/checkouts/kube-abc123/d4e5f6/kube-client/src/lib.rs",
                None,
                "kube-abc123/kube-client/src/lib.rs",
            ),
            (
                "/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/ops/function.rs",
                None,
                "library/core/src/ops/function.rs",
            ),
            (
                "/home/me/other/crate-b/src/lib.rs",
                dir,
                "crate-b/src/lib.rs",
            ),
            ("src/main.rs", None, "src/main.rs"),
            ("./src/main.rs", None, "src/main.rs"),
            ("/tmp/generated.rs", None, "generated.rs"),
            (
                "C:\\work\\shop\\src\\main.rs",
                Some("C:\\work\\shop"),
                "src/main.rs",
            ),
        ];
        for (path, dir, want) in cases {
            assert_eq!(relative_file(path, dir), want, "{path}");
        }
    }

    fn sym(function: &str, file: &str, line: u32) -> Symbol {
        Symbol {
            function: Some(function.into()),
            file: Some(file.into()),
            line: Some(line),
        }
    }

    fn stack() -> Vec<Symbol> {
        vec![
            sym(
                "backtrace::backtrace::trace",
                "/r/registry/src/i/backtrace-0.3.77/src/lib.rs",
                1,
            ),
            sym(
                "<whakapapa::future::ResponseFuture<F,B> as core::future::future::Future>::poll",
                "/w/whakapapa/src/future.rs",
                9,
            ),
            sym(
                "<tower::buffer::future::ResponseFuture<F> as core::future::future::Future>::poll",
                "/r/tower.rs",
                3,
            ),
            sym(
                "kube_client::client::Client::send::{{closure}}",
                "/r/registry/src/i/kube-client-5.0.0/src/client/mod.rs",
                220,
            ),
            sym(
                "kube_client::client::Client::request::{{closure}}",
                "/r/registry/src/i/kube-client-5.0.0/src/client/mod.rs",
                290,
            ),
            sym(
                "kube_client::api::core_methods::<impl kube_client::api::Api<K>>::list::{{closure}}",
                "/r/registry/src/i/kube-client-5.0.0/src/api/core_methods.rs",
                106,
            ),
            sym(
                "<kube_runtime::utils::OnComplete<S,F> as futures_core::stream::Stream>::poll_next",
                "/r/registry/src/i/kube-runtime-5.0.0/src/utils/mod.rs",
                189,
            ),
            sym(
                "shop::inventory::count_pods::{{closure}}",
                "/work/shop/src/inventory.rs",
                42,
            ),
            sym("shop::main::{{closure}}", "/work/shop/src/main.rs", 17),
            sym(
                "tokio::runtime::park::CachedParkThread::block_on",
                "/r/tokio.rs",
                1,
            ),
            sym(
                "test::__rust_begin_short_backtrace",
                "/rustc/x/library/test/src/lib.rs",
                1,
            ),
            sym(
                "std::rt::lang_start_internal",
                "/rustc/x/library/std/src/rt.rs",
                1,
            ),
            Symbol {
                function: Some("shop::no_debug_info".into()),
                file: None,
                line: None,
            },
            Symbol {
                function: None,
                file: None,
                line: None,
            },
        ]
    }

    #[test]
    fn purpose_keeps_the_api_method_then_the_application() {
        let p = Purpose::of_symbols(&stack(), Some("/work/shop"), Some("tests::counts_pods"));
        assert_eq!(
            p.frames,
            vec![
                Frame::new(
                    "kube_client::api::Api<K>::list",
                    "kube-client-5.0.0/src/api/core_methods.rs",
                    106
                ),
                Frame::new(
                    "<kube_runtime::utils::OnComplete<S,F> as futures_core::stream::Stream>::poll_next",
                    "kube-runtime-5.0.0/src/utils/mod.rs",
                    189
                ),
                Frame::new("shop::inventory::count_pods", "src/inventory.rs", 42),
                Frame::new("shop::main", "src/main.rs", 17),
            ]
        );
        assert_eq!(p.test.as_deref(), Some("tests::counts_pods"));
        // The user agent keeps the API method and the application's own frames.
        let ua: Vec<String> = p
            .user_agent_frames()
            .into_iter()
            .map(|f| f.function)
            .collect();
        assert_eq!(
            ua,
            [
                "kube_client::api::Api<K>::list",
                "shop::inventory::count_pods",
                "shop::main"
            ]
        );
    }

    #[test]
    fn no_test_name_outside_libtest() {
        let mut s = stack();
        s.retain(|s| {
            !s.function
                .as_deref()
                .is_some_and(|f| f.starts_with("test::"))
        });
        let p = Purpose::of_symbols(&s, None, Some("worker-1"));
        assert_eq!(p.test, None);
    }

    #[test]
    fn fingerprint_follows_lines_and_tests() {
        let base = Purpose::of_symbols(&stack(), None, Some("t1")).fingerprint;
        assert_eq!(
            base,
            Purpose::of_symbols(&stack(), None, Some("t1")).fingerprint
        );
        let mut moved = stack();
        moved[7].line = Some(43);
        assert_ne!(
            base,
            Purpose::of_symbols(&moved, None, Some("t1")).fingerprint
        );
        assert_ne!(
            base,
            Purpose::of_symbols(&stack(), None, Some("t2")).fingerprint
        );
        // Plumbing does not move the fingerprint: a new tokio version keeps it.
        let mut plumbing = stack();
        plumbing[9].line = Some(999);
        assert_eq!(
            base,
            Purpose::of_symbols(&plumbing, None, Some("t1")).fingerprint
        );
        // Known FNV-1a value, so that a change of hash is a deliberate change of the contract.
        assert_eq!(fingerprint(None, []), 0xaf64_724c_8602_eb6e);
    }

    #[test]
    fn a_live_capture_names_this_test() {
        fn inner_helper() -> Purpose {
            Purpose::capture().expect("capture")
        }
        let p = inner_helper();
        // whakapapa's own frames are plumbing, so a capture inside this crate's unit tests shows
        // no frames of it; the libtest thread still names the test.
        assert_eq!(
            p.test.as_deref(),
            Some("purpose::tests::a_live_capture_names_this_test")
        );
    }
}
