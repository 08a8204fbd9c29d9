//! The collector in-process, as `whakapapa-collector serve --openapi embedded` runs it: an
//! SQLite file, the embedded Kubernetes 1.36 catalog, `POST /audit` and `POST /purposes` on
//! 127.0.0.1; and its answers as `whakapapa-collector query` prints them.
//!
//! Its test (`tests/e2e/quickstart.rs`) uses it too.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use whakapapa_collector::http::{self, AppState, Limits};
use whakapapa_collector::ingest::spec::{self, SpecSource};
use whakapapa_collector::mapping::Mapper;
use whakapapa_collector::query::loc::LocAnswer;
use whakapapa_collector::query::{Answer, Format, Request};
use whakapapa_collector::store::{self, RunId, Store};

/// A collector serving on loopback.
pub struct Collector {
    addr: SocketAddr,
    db: PathBuf,
    store: Store,
    run: RunId,
    release: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Collector {
    /// Creates `db` afresh (removing an old file and its WAL) and serves on 127.0.0.1:0.
    pub async fn start(db: &Path) -> anyhow::Result<Self> {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = db.as_os_str().to_owned();
            path.push(suffix);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot remove {}", db.display()));
                }
            }
        }
        let store = Store::open(db, store::Options::default().durable(true))
            .with_context(|| format!("cannot open {}", db.display()))?;
        let loaded = spec::load(
            &SpecSource::Embedded,
            &spec::Lists::default(),
            None,
            &spec::nothing_stored,
        )
        .await
        .context("cannot load the embedded catalog")?;
        let mapper = Arc::new(Mapper::new(&loaded.catalog));
        let label = loaded.release.label.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let (release, run) = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
                let release = store.store_release_blocking(loaded.release)?;
                let run = store.begin_run_blocking("serve", &addr.to_string(), Some(release))?;
                Ok((release, run))
            })
            .await??
        };
        let state = AppState::new(
            store.clone(),
            run,
            Some(release),
            Some(mapper),
            Limits::default(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, http::app(state))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .into_future(),
        );
        Ok(Self {
            addr,
            db: db.to_owned(),
            store,
            run,
            release: label,
            stop,
            server,
        })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The audit webhook URL to give the API server.
    pub fn audit_url(&self) -> String {
        format!("{}/audit", self.url())
    }

    /// The catalog's release label.
    pub fn release(&self) -> &str {
        &self.release
    }

    /// The answers from its database.
    pub fn answers(&self) -> Answers {
        Answers::new(&self.db)
    }

    /// Stops serving once requests in flight are answered, and closes the run.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.server.await?.context("collector server failed")?;
        let (store, run) = (self.store, self.run);
        tokio::task::spawn_blocking(move || store.finish_run_blocking(run)).await??;
        Ok(())
    }
}

/// A collector's database, queried as `whakapapa-collector query NAME --db FILE` does.
pub struct Answers {
    db: PathBuf,
}

impl Answers {
    /// The database file `db` (a collector that served it folded its rollups).
    pub fn new(db: &Path) -> Self {
        Self { db: db.to_owned() }
    }

    /// Answers a query with `params` as flags.
    pub fn query(&self, name: &str, params: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let request = Request::from_params(name, params.iter().copied())
            .with_context(|| format!("bad query `{name}`"))?;
        let conn = store::open_reader(&self.db)?;
        request
            .run(&conn)
            .with_context(|| format!("query `{name}` failed"))
    }

    /// As [`query`](Self::query), printed as the CLI prints a table.
    pub fn query_table(&self, name: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        Ok(self.query(name, params)?.render(Format::Table))
    }
}

/// The lines of code of `file` and the endpoints each reaches, one row per (line, endpoint):
/// function, `file:line`, endpoint, verb, hits — from `loc FILE` for the lines, then
/// `loc FILE:LINE` for each line's endpoints. Rows by line, then endpoint.
pub fn loc_rows(collector: &Answers, file: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let Ok(lines) = collector
        .query("loc", &[("loc", file)])?
        .into_inner::<LocAnswer>()
    else {
        anyhow::bail!("query loc answered something else than lines of code");
    };
    let mut matched = lines.matched;
    matched.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    matched.dedup();
    let mut rows = Vec::new();
    for frame in matched {
        let at = format!("{}:{}", frame.file, frame.line);
        let Ok(line) = collector
            .query("loc", &[("loc", at.as_str())])?
            .into_inner::<LocAnswer>()
        else {
            anyhow::bail!("query loc answered something else than lines of code");
        };
        let mut endpoints = line.endpoints;
        endpoints.sort_by(|a, b| (&a.endpoint, &a.verb).cmp(&(&b.endpoint, &b.verb)));
        for e in endpoints {
            rows.push(vec![
                frame.function.clone(),
                at.clone(),
                e.endpoint,
                e.verb,
                e.hits.to_string(),
            ]);
        }
    }
    Ok(rows)
}

/// Aligns rows under a header as the CLI prints tables: numbers right-aligned.
pub fn align(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|j| !rows.is_empty() && rows.iter().all(|r| r[j].parse::<f64>().is_ok()))
        .collect();
    let mut out = String::new();
    let cells = header.iter().map(|h| h.to_string());
    let lines = std::iter::once(cells.collect::<Vec<_>>()).chain(rows.iter().cloned());
    for (i, row) in lines.enumerate() {
        let mut line = String::new();
        for (j, cell) in row.iter().enumerate() {
            if j > 0 {
                line.push_str("  ");
            }
            let pad = " ".repeat(width[j] - cell.chars().count());
            if numeric[j] && i > 0 {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first table of `query coverage --counting any` (totals and by level), as the CLI
/// prints it; the per-category table follows in the full answer.
pub fn coverage_totals(collector: &Answers) -> anyhow::Result<String> {
    let text = collector.query_table("coverage", &[("counting", "any")])?;
    Ok(text
        .split("\nby_category:")
        .next()
        .unwrap_or(&text)
        .to_owned())
}
