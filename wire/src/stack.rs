//! The frame rules: which frames of a resolved call stack are a purpose, how their names and
//! paths are cleaned, and the fingerprint of the result. The library applies them to the
//! stack it resolves in process; the collector applies the same rules to stacks it resolves
//! later from a binary's debug info (`whakapapa-collector symbolize`), so both give the same
//! frames and the same lines of code.
//!
//! # Example
//!
//! ```
//! use whakapapa_wire::stack::{self, Symbol};
//!
//! let raw = [
//!     Symbol { function: Some("tokio::runtime::park::block_on"), file: None, line: None },
//!     Symbol {
//!         function: Some("shop::inventory::count_pods::{{closure}}"),
//!         file: Some("/home/me/shop/src/inventory.rs"),
//!         line: Some(42),
//!     },
//! ];
//! let stack = stack::of_symbols(&raw, Some("/home/me/shop"), None);
//! assert_eq!(stack.frames[0].token(), "shop::inventory::count_pods@src/inventory.rs:42");
//! ```

use crate::{Address, Frame};

/// The function of a frame whose name is unknown (line tables without names), in the user
/// agent (the grammar's token for empty text) and in side-channel records alike.
pub const UNKNOWN_FUNCTION: &str = "?";

/// One symbol an address resolves to (several when calls were inlined), as debug info gives
/// it: the demangled function name (`{:#}`, no hash), the source path as compiled, the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Symbol<'a> {
    /// The demangled function name, if any.
    pub function: Option<&'a str>,
    /// The source file as the compiler saw it, if any.
    pub file: Option<&'a str>,
    /// The line, if any.
    pub line: Option<u32>,
}

/// Calls `each` with the symbols at `offset` of the file `loader` read, innermost inlined frame
/// first: debug info's frames (demangled, without hash), else the symbol table's name alone.
/// Nothing when the offset is unknown. With the `addr2line` feature; the library resolves its
/// own stack with it and `whakapapa-collector symbolize` a binary's debug file, so both name an
/// address alike.
#[cfg(feature = "addr2line")]
pub fn symbols_at(loader: &addr2line::Loader, offset: u64, mut each: impl FnMut(Symbol<'_>)) {
    let mut any = false;
    if let Ok(mut frames) = loader.find_frames(offset) {
        while let Ok(Some(frame)) = frames.next() {
            let function = frame.function.as_ref().and_then(|f| f.demangle().ok());
            let (file, line) = frame.location.map_or((None, None), |l| (l.file, l.line));
            any = true;
            each(Symbol {
                function: function.as_deref(),
                file,
                line,
            });
        }
    }
    if !any && let Some(name) = loader.find_symbol(offset) {
        let name = addr2line::demangle_auto(name.into(), None);
        each(Symbol {
            function: Some(&name),
            ..Symbol::default()
        });
    }
}

/// A purpose made from resolved symbols: kept frames, the test, their fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stack {
    /// [`fingerprint`] of the test name and every kept frame.
    pub fingerprint: u64,
    /// The libtest test the stack ran in (the thread's name when libtest is on the stack).
    pub test: Option<String>,
    /// Kept frames with a known `file:line`, innermost first.
    pub frames: Vec<Frame>,
    /// Per frame: whether it is the application's own source (not a registry, git or
    /// vendored crate, nor the standard library).
    pub local: Vec<bool>,
}

/// The purpose of resolved symbols, innermost first: frames of plumbing crates dropped, runs
/// of one function folded, kube-client's plumbing reduced to the API method called, paths made
/// relative to `source_dir` (the application's crate directory) or by [`relative_file`]'s
/// rules. `thread` is the capturing thread's name, the test's name under libtest.
pub fn of_symbols(raw: &[Symbol<'_>], source_dir: Option<&str>, thread: Option<&str>) -> Stack {
    let in_test = raw
        .iter()
        .filter_map(|s| s.function)
        .any(|f| f.starts_with("test::") || f.starts_with("<test::"));
    let test = thread
        .filter(|name| in_test && *name != "main" && !name.is_empty())
        .map(str::to_owned);
    let mut kept: Vec<(String, Option<String>, Option<u32>, bool)> = Vec::new();
    let mut previous_crate = String::new();
    for sym in raw {
        let Some(function) = sym.function else {
            continue;
        };
        let function = clean_function(function);
        let file_crate = sym.file.and_then(crate_of_file);
        let krate = if has_path(&function) {
            crate_of(&function).to_owned()
        } else if sym.file.is_some_and(|f| f.ends_with(".rs")) {
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
            && last.1 == sym.file.map(|f| relative_file(f, source_dir))
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
        let file = sym.file.map(|f| relative_file(f, source_dir));
        let local = sym.file.is_some_and(is_local_source);
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
    Stack {
        fingerprint,
        test,
        frames,
        local,
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

/// The fingerprint of a stack known only by its addresses ([`Address`]): FNV-1a 64 over a
/// separator no frame fingerprint starts with, the thread's name, then each module and
/// address. Distinct call paths get distinct fingerprints, stable across processes of one
/// build; a rebuild changes them (frame fingerprints survive rebuilds that keep the lines).
pub fn address_fingerprint(thread: Option<&str>, addresses: &[Address]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(PRIME);
        }
    };
    eat(&[0xfe]);
    eat(thread.unwrap_or("").as_bytes());
    eat(&[0xff]);
    for a in addresses {
        eat(a.build_id.as_bytes());
        eat(&[0]);
        eat(&a.offset.to_le_bytes());
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
