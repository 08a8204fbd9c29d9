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
//! Cleaning names and paths ([`clean_function`], [`relative_file`], [`keep_crate`]) is pure.

use crate::wire::Frame;
use std::collections::HashMap;
use std::ffi::c_void;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

/// The function of a frame whose name is unknown (line tables without names), in the user
/// agent (the grammar's token for empty text) and in side-channel records alike.
pub const UNKNOWN_FUNCTION: &str = "?";

/// How many instruction pointers a capture keeps; deeper stacks lose their outermost frames.
pub const MAX_IPS: usize = 256;

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

/// One symbol an instruction pointer resolves to (several when calls were inlined).
#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    function: Option<Arc<str>>,
    file: Option<Arc<str>>,
    line: Option<u32>,
}

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
    let mut out = Vec::new();
    backtrace::resolve(ip as *mut c_void, |sym| {
        out.push(Symbol {
            function: sym.name().map(|n| Arc::from(format!("{n:#}"))),
            file: sym
                .filename()
                .map(|f| Arc::from(f.to_string_lossy().as_ref())),
            line: sym.lineno(),
        })
    });
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

/// Records that the background warm-up is done.
pub(crate) fn set_warm() {
    WARM.store(true, Ordering::Release);
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
    /// 64-bit FNV-1a hash of the test name and every kept frame ([`fingerprint`]).
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
        let in_test = raw
            .iter()
            .filter_map(|s| s.function.as_deref())
            .any(|f| f.starts_with("test::") || f.starts_with("<test::"));
        let test = thread
            .filter(|name| in_test && *name != "main" && !name.is_empty())
            .map(str::to_owned);
        let mut kept: Vec<(String, Option<String>, Option<u32>, bool)> = Vec::new();
        let mut previous_crate = String::new();
        for sym in raw {
            let Some(function) = sym.function.as_deref() else {
                continue;
            };
            let function = clean_function(function);
            let file_crate = sym.file.as_deref().and_then(crate_of_file);
            let krate = if has_path(&function) {
                crate_of(&function).to_owned()
            } else if sym.file.as_deref().is_some_and(|f| f.ends_with(".rs")) {
                // A path-less name from line tables: the file tells the crate, if anything.
                file_crate.unwrap_or_else(|| "?".to_owned())
            } else {
                // Not Rust code: `_start`, libc's `clone3`.
                String::new()
            };
            if !keep_crate(&krate) {
                previous_crate = krate;
                continue;
            }
            // `#[tokio::main]` puts the body in an async block inside a generated `fn main`
            // (at the attribute's line); line tables name the block nothing and the fn
            // `main`: one frame, the body's line, named `main` (as `limited` folds them).
            if function == "main"
                && let Some(last) = kept.last_mut()
                && last.0.is_empty()
                && last.1.is_some()
                && last.1 == sym.file.as_deref().map(|f| relative_file(f, source_dir))
            {
                last.0 = function;
                previous_crate = krate;
                continue;
            }
            // Consecutive frames of one function (a recursion, a test fn and its closures)
            // fold into the innermost, so that the purpose does not depend on the depth.
            if !function.is_empty() && kept.last().is_some_and(|(f, ..)| *f == function) {
                previous_crate = krate;
                continue;
            }
            // Of kube-client's own frames, keep only the outermost of each run: the API method
            // the application called (`Api<K>::list`), not the client plumbing under it.
            if krate == "kube_client" && previous_crate == "kube_client" {
                kept.pop();
            }
            previous_crate = krate;
            let file = sym.file.as_deref().map(|f| relative_file(f, source_dir));
            let local = sym.file.as_deref().is_some_and(is_local_source);
            kept.push((function, file, sym.line, local));
        }
        let fingerprint = fingerprint(
            test.as_deref(),
            kept.iter().map(|(f, file, line, _)| {
                (f.as_str(), file.as_deref().unwrap_or(""), line.unwrap_or(0))
            }),
        );
        let (frames, local) = kept
            .into_iter()
            .filter_map(|(function, file, line, local)| {
                // A nameless frame gets the user agent's placeholder, so that the full purpose
                // and the header say the same thing (the fingerprint above is unchanged).
                let function = if function.is_empty() {
                    UNKNOWN_FUNCTION.to_owned()
                } else {
                    function
                };
                Some((Frame::new(function, file?, line?), local))
            })
            .unzip();
        Self {
            fingerprint,
            test,
            frames,
            local,
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

/// Whether a source path is the application's own (not a registry, git or vendored crate,
/// nor the standard library).
fn is_local_source(path: &str) -> bool {
    let path = path.replace('\\', "/");
    !(path.contains("/registry/src/")
        || path.contains("/git/checkouts/")
        || path.contains("/vendor/")
        || path.starts_with("/rustc/"))
}

/// The stable fingerprint of a purpose: FNV-1a 64 over the test name, then each frame's
/// function, file and line, with separators, so that the same code path gives the same
/// fingerprint in every process of a build.
pub fn fingerprint<'a>(
    test: Option<&str>,
    frames: impl IntoIterator<Item = (&'a str, &'a str, u32)>,
) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    eat(test.unwrap_or("").as_bytes());
    eat(&[0xff]);
    for (function, file, line) in frames {
        eat(function.as_bytes());
        eat(&[0]);
        eat(file.as_bytes());
        eat(&[0]);
        eat(&line.to_le_bytes());
        eat(&[1]);
    }
    h
}

/// Splits a path at its top-level `::`, leaving `<...>` groups whole.
fn segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, bytes) = (0i32, 0, path.as_bytes());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {} // `->` in fn types
            b'>' => depth -= 1,
            b':' if depth == 0 && bytes.get(i + 1) == Some(&b':') => {
                out.push(&path[start..i]);
                i += 2;
                start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&path[start..]);
    out
}

/// Whether a path segment is compiler noise: a closure, async fn or async block body, or a
/// symbol hash.
fn is_noise(segment: &str) -> bool {
    let s = segment;
    s == "{{closure}}"
        || s == "{{constant}}"
        || (s.starts_with('{') && s.ends_with('}') && s.contains('#'))
        || (s.len() == 17 && s.starts_with('h') && s[1..].bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A demangled function name as the user agent shows it: hash, `{{closure}}`,
/// `{async_fn#0}` and `{async_block#0}` segments removed, `path::<impl Type>::method` written
/// `Type::method`, the path otherwise kept.
pub fn clean_function(raw: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in segments(raw.trim()) {
        let bare = if seg.starts_with('<') {
            seg
        } else {
            seg.split('<').next().unwrap_or(seg)
        };
        if is_noise(bare) || seg.is_empty() {
            continue;
        }
        if let Some(ty) = seg.strip_prefix("<impl ").and_then(|s| s.strip_suffix('>')) {
            // The impl's type names the method better than the module it is written in.
            parts.clear();
            parts.push(ty);
            continue;
        }
        parts.push(seg);
    }
    // Debug info names a function with its concrete generic arguments
    // (`get<k8s_openapi::api::core::v1::Pod>`), which can run to kilobytes: keep the name.
    if let Some(last) = parts.last_mut()
        && !last.starts_with('<')
        && let Some(i) = last.find('<')
    {
        *last = &last[..i];
    }
    parts.join("::")
}

/// Whether a cleaned function name has a path (`app::main`), as symbol names and full debug
/// info give; `line-tables-only` debug info names inlined functions without one (`poll`).
fn has_path(function: &str) -> bool {
    function.starts_with('<') || segments(function).len() > 1
}

/// The crate a source file belongs to, when its path tells: `name-1.2.3/` in the cargo registry,
/// `library/<crate>/` in the Rust sources, else the directory holding a `src/` directory.
pub fn crate_of_file(path: &str) -> Option<String> {
    let path = path.replace('\\', "/");
    if let Some(i) = path.find("/registry/src/") {
        let rest = path[i + "/registry/src/".len()..].split('/').nth(1)?;
        // `kube-client-5.0.0` → `kube_client`: the version starts at the last `-` + digit.
        let name = match rest.rfind('-') {
            Some(j) if rest[j + 1..].starts_with(|c: char| c.is_ascii_digit()) => &rest[..j],
            _ => rest,
        };
        return Some(name.replace('-', "_"));
    }
    if let Some(i) = path.find("/library/") {
        return path[i + "/library/".len()..]
            .split('/')
            .next()
            .map(str::to_owned);
    }
    let i = path.rfind("/src/")?;
    let dir = path[..i].rsplit('/').next()?;
    (!dir.is_empty()).then(|| dir.replace('-', "_"))
}

/// The crate a cleaned function belongs to: its first path segment, or for
/// `<Type as Trait>::method` the type's crate (the trait's when the type is a bare generic).
pub fn crate_of(function: &str) -> &str {
    fn first(path: &str) -> &str {
        let path = path
            .trim_start_matches(['&', '*', '(', '['])
            .trim_start_matches("mut ")
            .trim_start_matches("dyn ");
        let path = path.trim_start_matches(['&', '(', '[']);
        let end = path
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(path.len());
        &path[..end]
    }
    if let Some(inner) = function.strip_prefix('<') {
        let body = segments(function)[0];
        let body = body
            .strip_prefix('<')
            .and_then(|b| b.strip_suffix('>'))
            .unwrap_or(inner);
        if let Some((ty, tr)) = split_as(body) {
            let ty_crate = first(ty);
            // A generic (`F`), a fn pointer or a trait object says nothing: the trait decides.
            let anonymous = !ty.contains("::")
                || matches!(ty_crate, "fn" | "dyn" | "impl" | "unsafe" | "extern");
            return if anonymous { first(tr) } else { ty_crate };
        }
        return first(body);
    }
    first(function)
}

/// Splits `Type as Trait` at its top-level ` as `.
fn split_as(body: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    let bytes = body.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {} // `->` in fn types
            b'>' => depth -= 1,
            b' ' if depth == 0 && body[i..].starts_with(" as ") => {
                return Some((&body[..i], &body[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

/// Crates whose frames are plumbing, never purpose: the runtime, the HTTP stack and whakapapa.
const PLUMBING: &[&str] = &[
    "std",
    "core",
    "alloc",
    "tokio",
    "tokio_util",
    "futures",
    "futures_util",
    "futures_core",
    "futures_executor",
    "tower",
    "tower_layer",
    "tower_service",
    "tower_http",
    "hyper",
    "hyper_util",
    "hyper_timeout",
    "http",
    "http_body",
    "http_body_util",
    "whakapapa",
    "backtrace",
    "tracing",
    "tracing_futures",
    "test",
    "pin_project_lite",
];

/// Whether frames of `krate` are kept in a purpose: anything but plumbing (std, core, alloc,
/// tokio, futures, tower, tower-http, hyper, http, tracing, backtrace, libtest, whakapapa),
/// and never an empty or `__`-prefixed name (not Rust code).
pub fn keep_crate(krate: &str) -> bool {
    !krate.is_empty() && !PLUMBING.contains(&krate) && !krate.starts_with("__")
}

/// A source path as sent: relative to the application crate when under `source_dir`,
/// `crate-1.2.3/...` for registry crates, `library/...` for the standard library,
/// `<crate dir>/src/...` for other local crates; never an absolute path of the build machine.
pub fn relative_file(path: &str, source_dir: Option<&str>) -> String {
    let path = path.replace('\\', "/");
    let path = path.as_str();
    if let Some(dir) = source_dir.map(|d| d.trim_end_matches(['/', '\\']).replace('\\', "/"))
        && let Some(rest) = path
            .strip_prefix(dir.as_str())
            .and_then(|r| r.strip_prefix('/'))
    {
        return rest.to_owned();
    }
    for marker in ["/registry/src/", "/vendor/"] {
        if let Some(i) = path.find(marker) {
            let rest = &path[i + marker.len()..];
            // Registry paths hold an index directory before `crate-version/`.
            let rest = if marker == "/registry/src/" {
                rest.split_once('/').map_or(rest, |(_, r)| r)
            } else {
                rest
            };
            return rest.to_owned();
        }
    }
    if let Some(i) = path.find("/git/checkouts/") {
        // `.../git/checkouts/<repo>-<hash>/<rev>/<path>` → `<repo>-<hash>/<path>`.
        let rest = &path[i + "/git/checkouts/".len()..];
        if let Some((repo, rest)) = rest.split_once('/') {
            return format!("{repo}/{}", rest.split_once('/').map_or(rest, |(_, r)| r));
        }
    }
    if path.starts_with("/rustc/")
        && let Some(i) = path.find("/library/")
    {
        return path[i + 1..].to_owned();
    }
    if !path.starts_with('/') && !path.contains(":/") {
        return path.trim_start_matches("./").to_owned();
    }
    let mut best = None;
    for marker in ["/src/", "/tests/", "/examples/", "/benches/", "/build/"] {
        if let Some(i) = path.rfind(marker) {
            best = best.max(Some(i));
        }
    }
    if let Some(i) = best {
        let crate_dir_start = path[..i].rfind('/').map_or(0, |j| j + 1);
        return path[crate_dir_start..].to_owned();
    }
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

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
