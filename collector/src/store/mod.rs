//! The SQLite store: one writer thread owns the write connection; [`Store`] is a cloneable handle.
//!
//! # Example
//! ```no_run
//! # fn main() -> Result<(), whakapapa_collector::store::Error> {
//! use whakapapa_collector::store::{Options, Store};
//! let store = Store::open("whakapapa.db", Options::default())?;
//! let run = store.begin_run_blocking("ingest", "audit.log", None)?;
//! # let _ = run; Ok(()) }
//! ```
//!
//! Every write goes through the writer thread as a command with a oneshot reply, and each
//! [`Batch`] is stored whole or not at all (batches queued together share a transaction; with
//! [`Options::durable`] each is in a savepoint of its own, so one that fails fails alone): a
//! crash leaves every acknowledged batch whole and nothing of those in flight. Readers open
//! their own connections ([`Store::reader`]); WAL lets them run beside the writer. All SQL of
//! the crate lives in this module.

mod checkpoint;
pub mod ci;
pub(crate) mod journeys;
mod key;
mod migrate;
mod model;
pub(crate) mod rbac;
pub mod read;
mod rollup;
mod schedule;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

pub use key::request_key;
pub use migrate::SCHEMA_VERSION;
pub use model::*;
pub use schedule::Fold;

use writer::Command;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening the database file failed.
    #[error("cannot open database {path}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A migration failed.
    #[error("schema migration {version} failed")]
    Migration {
        /// The migration that failed.
        version: i64,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer collector.
    #[error("database schema version {found} is newer than this collector's ({supported})")]
    SchemaTooNew {
        /// The file's version.
        found: i64,
        /// Ours.
        supported: i64,
    },
    /// A statement failed.
    #[error("cannot {step}")]
    Sqlite {
        /// Our step.
        step: &'static str,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// A release label is already stored with another OpenAPI document.
    #[error(
        "release {label} is already stored from another OpenAPI document (sha256 {stored}); \
         pass another --release label"
    )]
    ReleaseConflict {
        /// The label.
        label: String,
        /// The stored document's sha256.
        stored: String,
    },
    /// A refreshed catalog moved or dropped an endpoint the stored release has.
    #[error(
        "the refreshed catalog of release {label} has {found} where endpoint {position} is \
         {stored}; pass another --release label"
    )]
    RefreshMoved {
        /// The label.
        label: String,
        /// The position.
        position: usize,
        /// The stored endpoint's operation id.
        stored: String,
        /// What the refreshed catalog has there (`nothing` past its end).
        found: String,
    },
    /// The batch was applied, but the transaction it shared with other batches failed
    /// (nothing of it is stored): the failure, as every batch in it is told.
    #[error("the transaction holding this batch failed")]
    Shared(#[source] Arc<Error>),
    /// A failure that more than one waiter is told of (a batch that failed its transaction, a
    /// fold several callers waited for): it reads as the failure itself.
    #[error(transparent)]
    Again(Arc<Error>),
    /// The writer's request ids fell out of step with the table's (nothing of the batch is
    /// stored).
    #[error("request stored as {stored} where {expected} was expected")]
    OutOfStep {
        /// The id SQLite gave the row.
        stored: i64,
        /// The id the writer's request keys were written with.
        expected: i64,
    },
    /// The writer thread is gone (it panicked or the store was closed).
    #[error("the database writer has stopped")]
    WriterGone,
    /// Starting the writer thread failed.
    #[error("cannot start the database writer")]
    Spawn(#[source] std::io::Error),
}

impl Error {
    fn sqlite(step: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Sqlite { step, source }
    }
}

/// `Result` of the store.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How to open the store.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// `synchronous=FULL`: a commit survives power loss (the webhook's 200 promises it), and
    /// each batch of a shared transaction is in a savepoint of its own, so a batch that fails
    /// fails alone. Otherwise `NORMAL`: a commit survives a crash of the process, not of the
    /// machine, and a batch that fails fails the batches it shared a transaction with.
    pub durable: bool,
    /// Page cache of the write connection, in KiB.
    pub cache_kib: i64,
    /// Commands queued for the writer before senders wait.
    pub queue: usize,
    /// When rollups are folded in: every batch (default), or deferred (bulk ingest).
    pub fold: Fold,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            durable: false,
            cache_kib: 32 * 1024,
            queue: 2,
            fold: Fold::EveryBatch,
        }
    }
}

impl Options {
    /// Sets [`Options::queue`].
    pub fn queue(mut self, commands: usize) -> Self {
        self.queue = commands.max(1);
        self
    }

    /// Sets [`Options::fold`].
    pub fn fold(mut self, fold: Fold) -> Self {
        self.fold = fold;
        self
    }

    /// Sets [`Options::durable`].
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }
}

/// A batch queued by [`Store::submit_blocking`], not yet answered.
#[derive(Debug)]
pub struct Pending(oneshot::Receiver<Result<BatchOutcome>>);

impl Pending {
    /// Waits until the batch is committed (or failed).
    pub fn wait(self) -> Result<BatchOutcome> {
        self.0.blocking_recv().map_err(|_| Error::WriterGone)?
    }
}

/// A cloneable handle on the store; the writer thread ends when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Store {
    tx: mpsc::Sender<Command>,
    path: Arc<PathBuf>,
}

impl Store {
    /// Opens (creating and migrating as needed) the database and starts its writer thread.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let mut conn = Connection::open(&path).map_err(|source| Error::Open {
            path: path.clone(),
            source,
        })?;
        configure_writer(&conn, &options)
            .and_then(|_| {
                // Checkpoints every ~40 MiB of WAL in bulk, so pages rewritten by consecutive
                // batches (B-tree right edges) are copied once. Every 256 KiB when commits are
                // durable: a commit's fsync of the WAL can wait for the file system (ext4 here)
                // to write what a checkpoint's fsync of the database flushes, so SQLite's
                // default 4 MiB let single commits wait tens of milliseconds (the webhook
                // bench's A/B is in BENCHMARKS.md).
                let bytes: i64 = if options.durable { 256 << 10 } else { 40 << 20 };
                let page: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
                let pages = (bytes / page.max(512)) as i32;
                checkpoint::start(&mut conn, &path, synchronous(&options), pages)
            })
            .map_err(|source| Error::Open {
                path: path.clone(),
                source,
            })?;
        migrate::migrate(&mut conn)?;
        let writer = writer::Writer::new(conn, options.fold, options.durable)?;
        let (tx, rx) = mpsc::channel(options.queue.max(1));
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(Error::Spawn)?;
        Ok(Store {
            tx,
            path: Arc::new(path),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens a read-only connection for queries (WAL lets it read beside the writer).
    pub fn reader(&self) -> Result<Connection> {
        open_reader(&self.path)
    }

    /// Stores a batch whole (it may share a transaction with batches queued beside it); returns
    /// once it is committed.
    pub async fn apply(&self, batch: Batch) -> Result<BatchOutcome> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Apply { batch, reply }).await?;
        rx.await.map_err(|_| Error::WriterGone)?
    }

    /// [`Store::apply`] from a thread outside the async runtime.
    pub fn apply_blocking(&self, batch: Batch) -> Result<BatchOutcome> {
        self.submit_blocking(batch)?.wait()
    }

    /// Queues a batch for the writer (waiting only while the queue is full); the batch is
    /// stored once [`Pending::wait`] says so. Batches queued together may share a transaction,
    /// each still whole.
    pub fn submit_blocking(&self, batch: Batch) -> Result<Pending> {
        let (reply, rx) = oneshot::channel();
        self.send_blocking(Command::Apply { batch, reply })?;
        Ok(Pending(rx))
    }

    /// Stores a catalog as a release (idempotent for the same document and label).
    pub fn store_release_blocking(&self, release: ReleaseRecord) -> Result<ReleaseId> {
        self.call_blocking(|reply| Command::Release { release, reply })
    }

    /// Maps again the requests of `release` stored as `unmapped:<reason>`, with `map` (verb,
    /// requestURI → the endpoint's index in the release, as a mapper built from its refreshed
    /// catalog answers); those it maps are stored as mapped, and the rollups count them under
    /// their endpoint, in one transaction.
    pub fn remap_blocking(&self, release: ReleaseId, map: RemapFn) -> Result<Remapped> {
        self.call_blocking(|reply| Command::Remap {
            release,
            map,
            reply,
        })
    }

    /// Stores full purposes from the side channel, in one transaction.
    pub async fn upsert_purposes(&self, purposes: Vec<PurposeUpsert>) -> Result<usize> {
        self.call(|reply| Command::Purposes { purposes, reply })
            .await
    }

    /// [`Store::upsert_purposes`] from a thread outside the async runtime.
    pub fn upsert_purposes_blocking(&self, purposes: Vec<PurposeUpsert>) -> Result<usize> {
        self.call_blocking(|reply| Command::Purposes { purposes, reply })
    }

    /// Starts an ingest run (`kind` is `ingest` or `serve`).
    pub fn begin_run_blocking(
        &self,
        kind: &str,
        source: &str,
        release: Option<ReleaseId>,
    ) -> Result<RunId> {
        let (kind, source) = (kind.to_owned(), source.to_owned());
        self.call_blocking(|reply| Command::BeginRun {
            kind,
            source,
            release,
            reply,
        })
    }

    /// Records a CI build read from GCS and the objects this run read from it.
    pub fn record_ci_build_blocking(
        &self,
        run: RunId,
        build: ci::CiBuild,
        objects: Vec<ci::CiObject>,
    ) -> Result<()> {
        self.call_blocking(|reply| Command::CiBuild {
            run,
            build,
            objects,
            reply,
        })
    }

    /// Marks a run finished.
    pub fn finish_run_blocking(&self, run: RunId) -> Result<()> {
        self.call_blocking(|reply| Command::FinishRun { run, reply })
    }

    /// Folds pending rollup deltas in now, and derives the stale apps' `apps --rbac` answers:
    /// queries that follow see every committed batch (needed only with [`Fold::Deferred`]).
    pub async fn fold(&self) -> Result<()> {
        self.call(|reply| Command::Fold { reply }).await
    }

    /// [`Store::fold`] from a thread outside the async runtime.
    pub fn fold_blocking(&self) -> Result<()> {
        self.call_blocking(|reply| Command::Fold { reply })
    }

    /// Counts every stored request into the journeys rollup (`journeys` and `suggest` read
    /// it): bulk ingest leaves that to the first query that needs it.
    pub async fn fold_journeys(&self) -> Result<()> {
        self.call(|reply| Command::Journeys { reply }).await
    }

    /// [`Store::fold_journeys`] from a thread outside the async runtime.
    pub fn fold_journeys_blocking(&self) -> Result<()> {
        self.call_blocking(|reply| Command::Journeys { reply })
    }

    /// Derives again the `apps --rbac` answers of the apps whose accesses grew since theirs
    /// was kept: bulk ingest does at the end of its run, `serve` when a query asks (a query
    /// derives the apps still stale itself, which costs it their size).
    pub async fn refresh_rbac(&self) -> Result<()> {
        self.call(|reply| Command::Rbac { reply }).await
    }

    /// Round trip through the writer: it is alive and its connection answers.
    pub async fn ping(&self) -> Result<()> {
        self.call(|reply| Command::Ping { reply }).await
    }

    /// Queues a command for the writer (waiting while the queue is full).
    async fn send(&self, command: Command) -> Result<()> {
        self.tx.send(command).await.map_err(|_| Error::WriterGone)
    }

    /// [`Store::send`] from a thread outside the async runtime.
    fn send_blocking(&self, command: Command) -> Result<()> {
        self.tx
            .blocking_send(command)
            .map_err(|_| Error::WriterGone)
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.send(command(reply)).await?;
        rx.await.map_err(|_| Error::WriterGone)?
    }

    fn call_blocking<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T>>) -> Command,
    ) -> Result<T> {
        let (reply, rx) = oneshot::channel();
        self.send_blocking(command(reply))?;
        rx.blocking_recv().map_err(|_| Error::WriterGone)?
    }
}

/// Page size of a database file this build creates.
const PAGE_SIZE: i64 = 16 * 1024;

fn configure_writer(conn: &Connection, options: &Options) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A new file gets 16 KiB pages (an existing one keeps its own): B-trees one level
    // shallower and a quarter of the pages to find per row (the ingest bench's A/B is in
    // BENCHMARKS.md).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous(options))?;
    conn.pragma_update(None, "cache_size", -options.cache_kib)?;
    // Sorts that spill (a journeys fold sorts every request it reads, a count from the first
    // all of them) go to a file, not to memory: the writer's memory stays bounded.
    conn.pragma_update(None, "temp_store", "FILE")?;
    // The bundled SQLite enforces foreign keys by default: eight B-tree seeks into the parent
    // tables for every request stored (profiled: ~15 % of the writer on a busy log). Every id
    // the writer stores comes from a row it inserted or read in the same transaction; tests
    // run `PRAGMA foreign_key_check` on what it wrote.
    conn.pragma_update(None, "foreign_keys", false)?;
    // Bound the WAL file left behind after checkpoints.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

fn synchronous(options: &Options) -> &'static str {
    if options.durable { "FULL" } else { "NORMAL" }
}

/// Opens a read-only connection on a database file.
pub fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| Error::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(Error::sqlite("set busy timeout"))?;
    Ok(conn)
}
