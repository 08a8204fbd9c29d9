//! `whakapapa-collector symbolize`: names the frames of purposes sent by programs built
//! without debug info, from the build's debug file, after the fact (as profilers symbolize).
//!
//! Such a program sends each new purpose's stack as module addresses (build-id and address,
//! [`whakapapa_wire::Address`]); the store keeps those records and the purposes incomplete.
//! Given the unstripped binary or the `objcopy --only-keep-debug` file of that build, this
//! resolves every address of the matching build-id, applies the same frame rules the
//! library applies in process ([`whakapapa_wire::stack`]), and completes the purposes: the
//! queries then answer as if the program had been built with debug info.
//!
//! ```no_run
//! use whakapapa_collector::{store::{Options, Store}, symbolize};
//!
//! let store = Store::open("whakapapa.db", Options::default())?;
//! let done = symbolize::run(&store, "target/release/shop.debug".as_ref())?;
//! println!("{} purposes named", done.named);
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use object::Object as _;
use whakapapa_wire::stack::{self, Symbol};
use whakapapa_wire::{Record, TestInfo};

use crate::cli::DbArgs;
use crate::store::{PurposeUpsert, Store};

/// `symbolize` arguments.
#[derive(Debug, Clone, Args)]
pub struct SymbolizeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    /// The build's binary with its debug info, or its debug file (`objcopy
    /// --only-keep-debug`); several for several builds.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What `symbolize` did with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbolized {
    /// The file's build-id.
    pub build_id: String,
    /// Purposes of that build now named.
    pub named: usize,
    /// Purposes of that build whose addresses have no application frame in the file.
    pub unnamed: usize,
    /// Purposes still waiting, per build-id of the program that sent them.
    pub waiting: BTreeMap<String, usize>,
}

/// Runs `symbolize`.
pub fn command(args: SymbolizeArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db.db, Default::default())?;
    for file in &args.files {
        let done = run(&store, file)?;
        print!("{}", render(file, &done));
    }
    Ok(())
}

/// Names the waiting purposes of `file`'s build.
pub fn run(store: &Store, file: &Path) -> anyhow::Result<Symbolized> {
    let build_id = build_id(file)?;
    let loader = addr2line::Loader::new(file)
        .map_err(|e| anyhow::anyhow!("cannot read the debug info of {}: {e}", file.display()))?;
    let conn = store.reader()?;
    let mut statement = conn.prepare(
        "SELECT a.record FROM purpose_addresses a JOIN purposes p ON p.id = a.purpose_id \
         WHERE p.complete = 0 ORDER BY a.purpose_id",
    )?;
    let records = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut done = Symbolized {
        build_id: build_id.clone(),
        named: 0,
        unnamed: 0,
        waiting: BTreeMap::new(),
    };
    let mut upserts = Vec::new();
    for text in records {
        let record: Record = serde_json::from_str(&text).context("a stored purpose record")?;
        if !record.addresses.iter().any(|a| a.build_id == build_id) {
            // The program's own module is the first of its stack.
            if let Some(first) = record.addresses.first() {
                *done.waiting.entry(first.build_id.clone()).or_default() += 1;
            }
            continue;
        }
        let resolved: Vec<Vec<Owned>> = record
            .addresses
            .iter()
            .map(|a| {
                if a.build_id == build_id {
                    resolve(&loader, a.offset)
                } else {
                    Vec::new()
                }
            })
            .collect();
        let symbols: Vec<Symbol<'_>> = resolved.iter().flatten().map(Owned::borrow).collect();
        let named = stack::of_symbols(
            &symbols,
            record.source_dir.as_deref(),
            record.thread.as_deref(),
        );
        if named.frames.is_empty() {
            done.unnamed += 1;
            continue;
        }
        done.named += 1;
        upserts.push(PurposeUpsert {
            fingerprint: record.fingerprint,
            identity: record.identity,
            test: named.test.map(|name| TestInfo::parse(&name)),
            frames: named.frames,
            span: record.span,
            seen_at: record.seen_at,
            unresolved: None,
        });
    }
    if !upserts.is_empty() {
        store.upsert_purposes_blocking(upserts)?;
    }
    Ok(done)
}

/// What `symbolize` prints for one file.
pub fn render(file: &Path, done: &Symbolized) -> String {
    let mut out = format!(
        "{}: build-id {}: {} purposes named",
        file.display(),
        done.build_id,
        done.named
    );
    if done.unnamed > 0 {
        let _ = write!(out, ", {} without application frames", done.unnamed);
    }
    out.push('\n');
    for (build_id, n) in &done.waiting {
        let _ = writeln!(out, "  {n} purposes wait for build-id {build_id}");
    }
    out
}

/// The GNU build-id of an ELF file, in hex.
fn build_id(file: &Path) -> anyhow::Result<String> {
    let handle =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let data = object::read::ReadCache::new(handle);
    let parsed = object::File::parse(&data)
        .with_context(|| format!("{} is not an object file", file.display()))?;
    match parsed.build_id() {
        Ok(Some(id)) => Ok(id.iter().map(|b| format!("{b:02x}")).collect()),
        _ => bail!(
            "{} has no build-id note (link with --build-id; `objcopy --only-keep-debug` keeps it)",
            file.display()
        ),
    }
}

/// A resolved symbol, owned.
struct Owned {
    function: Option<String>,
    file: Option<String>,
    line: Option<u32>,
}

impl Owned {
    fn borrow(&self) -> Symbol<'_> {
        Symbol {
            function: self.function.as_deref(),
            file: self.file.as_deref(),
            line: self.line,
        }
    }
}

/// The symbols at `offset`, innermost inlined frame first, as the library resolves them in
/// process (the same walk).
fn resolve(loader: &addr2line::Loader, offset: u64) -> Vec<Owned> {
    let mut out = Vec::new();
    whakapapa_wire::stack::symbols_at(loader, offset, |s| {
        out.push(Owned {
            function: s.function.map(str::to_owned),
            file: s.file.map(str::to_owned),
            line: s.line,
        })
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_an_object_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "not an ELF file").unwrap();
        let err = build_id(&path).unwrap_err().to_string();
        assert!(
            err.contains("notes.txt") && err.contains("not an object file"),
            "{err}"
        );
        let missing = build_id(&dir.path().join("gone")).unwrap_err().to_string();
        assert!(
            missing.contains("cannot open") && missing.contains("gone"),
            "{missing}"
        );
    }

    #[test]
    fn this_test_binary_has_the_build_id_its_modules_report() {
        let exe = std::env::current_exe().unwrap();
        let id = build_id(&exe).unwrap();
        assert!(
            id.len() >= 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }

    #[test]
    fn render_says_what_was_named_and_what_waits() {
        let done = Symbolized {
            build_id: "e1fb6d85".into(),
            named: 6,
            unnamed: 1,
            waiting: BTreeMap::from([("0a1b2c3d".to_owned(), 2)]),
        };
        assert_eq!(
            render(Path::new("shop.debug"), &done),
            "shop.debug: build-id e1fb6d85: 6 purposes named, 1 without application frames\n  \
             2 purposes wait for build-id 0a1b2c3d\n"
        );
    }
}
