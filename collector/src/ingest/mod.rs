//! Audit log files, directories and stdin into the store, in batches, on a pipeline of threads.
//!
//! # Example
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use whakapapa_collector::ingest::{self, Options, Pipeline};
//! use whakapapa_collector::store::{self, Store};
//! let store = Store::open("whakapapa.db", store::Options::default())?;
//! let run = store.begin_run_blocking("ingest", "audit.log", None)?;
//! let inputs = ingest::expand(&["audit.log".into()])?;
//! let summary = Pipeline::new(store, run, None, None, Options::default()).run(&inputs)?;
//! println!("{} requests", summary.totals.new);
//! # Ok(()) }
//! ```
//!
//! The calling thread reads lines (decompressing gzip) into chunks of [`Options::batch_size`]
//! lines; worker threads parse, map and convert each chunk and hand it to the store's writer as
//! one batch (stored whole; the writer may store several in one transaction). Workers wait
//! while the writer's queue is full and another thread waits for the commits, so memory stays
//! bounded whatever the input size. A bad line is recorded with its file and line in the same
//! batch; the rest is stored.

pub mod gcs;
mod record;
mod source;
pub mod spec;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use indicatif::ProgressBar;

use crate::audit::{self, Format};
use crate::mapping::Mapper;
use crate::purpose;
use crate::store::{
    self, Batch, BatchOutcome, MalformedRecord, ReleaseId, RequestRecord, RunId, Store,
};
use whakapapa_wire::Record;

pub use record::{Converter, purpose_upsert, stage_rank};
use source::Piece;
pub use source::{Input, expand, looks_like_input, open};

/// Errors that stop an ingest (bad lines do not: they are counted and reported).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given cannot be read.
    #[error("cannot read {path}")]
    Input {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The OpenAPI document (or ineligible list) is unusable.
    #[error("bad endpoint catalog from {source_name}: {reason}")]
    Spec {
        /// Where it came from.
        source_name: String,
        /// What was wrong.
        reason: String,
    },
    /// No release label could be found for a catalog.
    #[error("cannot tell the release of the OpenAPI document from {source_name}; pass --release")]
    NoRelease {
        /// Where it came from.
        source_name: String,
    },
    /// The store failed: the batch in flight was rolled back.
    #[error("cannot store a batch")]
    Store(#[from] store::Error),
    /// A worker thread could not start.
    #[error("cannot start an ingest worker")]
    Spawn(#[source] std::io::Error),
}

/// How to ingest.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// Lines per batch (one transaction each).
    pub batch_size: usize,
    /// Parse/convert threads.
    pub workers: usize,
    /// Longest line kept; longer ones are reported malformed without being held in memory.
    pub max_line: usize,
    /// Largest document file (`EventList`, JSON array, YAML); larger ones are reported (write
    /// JSON lines).
    pub max_document: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 5_000,
            workers: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .clamp(2, 4),
            max_line: 4 << 20,
            max_document: 128 << 20,
        }
    }
}

impl Options {
    /// Sets [`Options::batch_size`].
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Sets [`Options::workers`].
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Counts over every batch.
    pub totals: BatchOutcome,
    /// Side-channel purposes stored.
    pub purposes: u64,
    /// The first malformed inputs (all are in the `malformed` table), in no particular order.
    pub malformed: Vec<MalformedRecord>,
    /// Inputs read.
    pub inputs: usize,
}

/// Malformed inputs kept in the summary (the database keeps them all).
const SUMMARY_MALFORMED: usize = 1000;

/// A unit of work for a worker.
enum Chunk {
    /// Lines of a JSON lines input: `data` holds them back to back, `lines` where each is.
    Lines {
        source: Arc<str>,
        data: Vec<u8>,
        lines: Vec<(u64, usize, usize)>,
    },
    /// A whole JSON document (`EventList`, `List`, array, one event) or YAML stream.
    Document {
        source: Arc<str>,
        data: Vec<u8>,
        yaml: bool,
    },
    /// Input rejected by the reader itself (unreadable, not JSON, too long).
    Rejected(Vec<MalformedRecord>),
}

/// An ingest of inputs into one run.
#[derive(Debug)]
pub struct Pipeline {
    store: Store,
    run: RunId,
    release: Option<ReleaseId>,
    mapper: Option<Arc<Mapper>>,
    options: Options,
    progress: ProgressBar,
}

struct Shared {
    summary: Mutex<Summary>,
    failed: AtomicBool,
    error: Mutex<Option<Error>>,
    /// Chunk buffers the workers are done with, for the reader to fill again: a fresh one of
    /// several MiB costs a page fault per 4 KiB.
    buffers: Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    /// An empty chunk buffer with room for `capacity` bytes.
    fn buffer(&self, capacity: usize) -> Vec<u8> {
        let mut data = self
            .buffers
            .lock()
            .expect("buffer pool lock")
            .pop()
            .unwrap_or_default();
        data.reserve(capacity);
        data
    }

    /// Hands a chunk buffer back; at most `keep` are kept.
    fn recycle(&self, mut data: Vec<u8>, keep: usize) {
        data.clear();
        let mut buffers = self.buffers.lock().expect("buffer pool lock");
        if buffers.len() < keep {
            buffers.push(data);
        }
    }
}

impl Pipeline {
    /// An ingest into `run`, mapping with `mapper` against `release`.
    pub fn new(
        store: Store,
        run: RunId,
        release: Option<ReleaseId>,
        mapper: Option<Arc<Mapper>>,
        options: Options,
    ) -> Pipeline {
        Pipeline {
            store,
            run,
            release,
            mapper,
            options,
            progress: ProgressBar::hidden(),
        }
    }

    /// Reports progress (bytes read) on this bar.
    pub fn with_progress(mut self, progress: ProgressBar) -> Pipeline {
        self.progress = progress;
        self
    }

    /// Reads every input; returns once every batch is committed, or at the first store error.
    pub fn run(&self, inputs: &[Input]) -> Result<Summary, Error> {
        self.run_with(|feed| {
            for input in inputs {
                if feed.stopped() {
                    break;
                }
                let _ = feed.input(input);
            }
        })
    }

    /// Runs the pipeline while `read` hands it inputs through a [`Feed`] (files, or streams
    /// such as downloads); returns once every batch is committed, or at the first store error.
    pub fn run_with(&self, read: impl FnOnce(&mut Feed<'_>)) -> Result<Summary, Error> {
        let shared = Arc::new(Shared {
            summary: Mutex::new(Summary::default()),
            failed: AtomicBool::new(false),
            error: Mutex::new(None),
            buffers: Mutex::new(Vec::new()),
        });
        let (tx, rx) = mpsc::sync_channel::<Chunk>(1);
        let rx = Arc::new(Mutex::new(rx));
        let (acks, acks_rx) = mpsc::channel::<Ack>();
        let acknowledger = {
            let (shared, progress) = (shared.clone(), self.progress.clone());
            std::thread::Builder::new()
                .name("ingest-ack".into())
                .spawn(move || acknowledge(acks_rx, &shared, &progress))
                .map_err(Error::Spawn)?
        };
        let mut workers = Vec::new();
        for n in 0..self.options.workers {
            let worker = Worker {
                rx: rx.clone(),
                acks: acks.clone(),
                shared: shared.clone(),
                store: self.store.clone(),
                run: self.run,
                release: self.release,
                converter: Converter::new(self.mapper.clone()),
                batch_size: self.options.batch_size,
                workers: self.options.workers,
            };
            workers.push(
                std::thread::Builder::new()
                    .name(format!("ingest-{n}"))
                    .spawn(move || worker.run())
                    .map_err(Error::Spawn)?,
            );
        }
        let mut feed = Feed {
            pipeline: self,
            tx: &tx,
            read: Arc::new(AtomicU64::new(0)),
            shared: &shared,
            inputs: 0,
        };
        read(&mut feed);
        let inputs = feed.inputs;
        shared.summary.lock().expect("summary lock").inputs = inputs;
        drop(tx);
        drop(acks);
        for w in workers {
            let _ = w.join();
        }
        let _ = acknowledger.join();
        self.progress.finish_and_clear();
        if let Some(e) = shared.error.lock().expect("error lock").take() {
            return Err(e);
        }
        let summary = shared.summary.lock().expect("summary lock").clone();
        Ok(summary)
    }

    /// Reads one input into chunks; problems with the input become malformed records, and
    /// the first that stopped the reading is returned.
    fn read_input(
        &self,
        name: &str,
        opened: std::io::Result<Box<dyn std::io::BufRead + Send>>,
        tx: &mpsc::SyncSender<Chunk>,
        read: &Arc<AtomicU64>,
        shared: &Shared,
    ) -> Result<(), ReadFailure> {
        let name: Arc<str> = name.into();
        let failure: std::cell::RefCell<Option<ReadFailure>> = std::cell::RefCell::new(None);
        let reject = |line: Option<u64>, reason: String| {
            let _ = tx.send(Chunk::Rejected(vec![MalformedRecord {
                source: name.to_string(),
                line,
                reason,
            }]));
        };
        let fail = |line: Option<u64>, error: std::io::Error| {
            reject(line, format!("cannot read: {error}"));
            failure
                .borrow_mut()
                .get_or_insert(ReadFailure { line, error });
        };
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                fail(None, e);
                return failure.into_inner().map_or(Ok(()), Err);
            }
        };
        let format = match reader.fill_buf() {
            Ok(head) => audit::sniff(head),
            Err(e) => {
                fail(None, e);
                return failure.into_inner().map_or(Ok(()), Err);
            }
        };
        match format {
            Format::Empty => {}
            Format::NotJson => reject(
                Some(1),
                "not JSON or YAML: expected audit events as JSON lines, an EventList or YAML"
                    .into(),
            ),
            Format::Document | Format::Yaml => {
                let mut data = Vec::new();
                let limit = self.options.max_document as u64;
                match std::io::Read::read_to_end(
                    &mut std::io::Read::take(&mut reader, limit + 1),
                    &mut data,
                ) {
                    Ok(_) if data.len() as u64 > limit => reject(
                        None,
                        format!(
                            "document larger than {} MiB; write it as JSON lines",
                            limit >> 20
                        ),
                    ),
                    Ok(_) => {
                        let _ = tx.send(Chunk::Document {
                            source: name,
                            data,
                            yaml: format == Format::Yaml,
                        });
                    }
                    Err(e) => fail(None, e),
                }
            }
            Format::JsonLines => {
                let cut = source::Cut {
                    lines: self.options.batch_size,
                    max_line: self.options.max_line,
                    block: source::BLOCK,
                };
                let stop = || shared.failed.load(Ordering::Relaxed);
                let mut buffer = |capacity| shared.buffer(capacity);
                source::read_lines(
                    &mut reader,
                    cut,
                    &stop,
                    &mut buffer,
                    &mut |piece| match piece {
                        Piece::Lines { data, lines } => {
                            self.progress.set_position(read.load(Ordering::Relaxed));
                            let _ = tx.send(Chunk::Lines {
                                source: name.clone(),
                                data,
                                lines,
                            });
                        }
                        Piece::TooLong(n) => reject(
                            Some(n),
                            format!("line longer than {} bytes", self.options.max_line),
                        ),
                        Piece::Failed(n, e) => fail(Some(n), e),
                    },
                );
            }
        }
        self.progress.set_position(read.load(Ordering::Relaxed));
        failure.into_inner().map_or(Ok(()), Err)
    }
}

/// Why an input could not be read whole (what was read before is stored; the failure is also
/// a malformed record).
#[derive(Debug)]
pub struct ReadFailure {
    /// The line it stopped at, when reading had begun.
    pub line: Option<u64>,
    /// The error.
    pub error: std::io::Error,
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(n) => write!(f, "cannot read line {n}: {}", self.error),
            None => write!(f, "cannot read: {}", self.error),
        }
    }
}

/// Hands inputs to a running [`Pipeline`] (see [`Pipeline::run_with`]); each is read whole on
/// the calling thread before the next call returns, its batches stored by the workers.
pub struct Feed<'a> {
    pipeline: &'a Pipeline,
    tx: &'a mpsc::SyncSender<Chunk>,
    read: Arc<AtomicU64>,
    shared: &'a Shared,
    inputs: usize,
}

impl Feed<'_> {
    /// The store failed: reading more is pointless (the run returns the error).
    pub fn stopped(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Reads a file or stdin.
    pub fn input(&mut self, input: &Input) -> Result<(), ReadFailure> {
        self.inputs += 1;
        let opened = source::open(input, self.read.clone());
        self.pipeline
            .read_input(&input.name(), opened, self.tx, &self.read, self.shared)
    }

    /// Reads a stream named `name` in reports (gzip recognised by its magic bytes); its
    /// bytes count towards the progress bar's position.
    pub fn stream(
        &mut self,
        name: &str,
        raw: Box<dyn std::io::Read + Send>,
    ) -> Result<(), ReadFailure> {
        self.inputs += 1;
        let opened = source::open_reader(raw, self.read.clone());
        self.pipeline
            .read_input(name, opened, self.tx, &self.read, self.shared)
    }
}

struct Worker {
    rx: Arc<Mutex<mpsc::Receiver<Chunk>>>,
    acks: mpsc::Sender<Ack>,
    shared: Arc<Shared>,
    store: Store,
    run: RunId,
    release: Option<ReleaseId>,
    converter: Converter,
    batch_size: usize,
    workers: usize,
}

/// What a worker made of a chunk.
#[derive(Default)]
struct Parsed {
    events: u64,
    requests: Vec<RequestRecord>,
    purposes: Vec<Record>,
    malformed: Vec<MalformedRecord>,
}

impl Worker {
    fn run(mut self) {
        loop {
            let chunk = match self.rx.lock().expect("chunk queue lock").recv() {
                Ok(c) => c,
                Err(_) => return,
            };
            if self.shared.failed.load(Ordering::Relaxed) {
                continue; // drain: the reader stops soon
            }
            if let Err(e) = self.chunk(chunk) {
                self.shared.failed.store(true, Ordering::Relaxed);
                self.shared
                    .error
                    .lock()
                    .expect("error lock")
                    .get_or_insert(e);
            }
        }
    }

    fn chunk(&mut self, chunk: Chunk) -> Result<(), Error> {
        let parsed = match chunk {
            Chunk::Lines {
                source,
                data,
                lines,
            } => {
                let mut p = Parsed {
                    requests: Vec::with_capacity(lines.len()),
                    ..Parsed::default()
                };
                for (n, start, end) in lines {
                    self.line(&source, n, &data[start..end], &mut p);
                }
                // The chunks in flight (one per worker, one queued, one being read) and spares.
                self.shared.recycle(data, self.workers + 3);
                p
            }
            Chunk::Document { source, data, yaml } => self.document(&source, &data, yaml),
            Chunk::Rejected(malformed) => Parsed {
                events: 0,
                malformed,
                ..Parsed::default()
            },
        };
        self.store(parsed)
    }

    /// One line: an event, a side-channel record, or an `EventList` on one line.
    fn line(&mut self, source: &str, n: u64, line: &[u8], p: &mut Parsed) {
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        if purpose::is_record(line) {
            match purpose::parse_record(line) {
                Ok(r) => p.purposes.push(r),
                Err(e) => p.malformed.push(malformed(source, n, e.to_string())),
            }
            return;
        }
        p.events += 1;
        match self.converter.line(line) {
            Ok(r) => p.requests.push(r),
            Err(e) => match audit::parse_batch(line) {
                // A webhook body (or a `List`) saved as one line, of any length: the line is
                // not one event but as many as the list holds.
                Ok(events) => {
                    p.events = p.events - 1 + events.len() as u64;
                    for e in events {
                        p.requests.push(self.converter.record(e));
                    }
                }
                // A managed control plane's record of events (GKE log entry, EKS export).
                Err(_) => match audit::parse_managed_line(line) {
                    Some(Ok(events)) => {
                        p.events = p.events - 1 + events.len() as u64;
                        for e in events {
                            p.requests.push(self.converter.record(e));
                        }
                    }
                    Some(Err(managed)) => {
                        p.malformed.push(malformed(source, n, managed.to_string()))
                    }
                    None => p.malformed.push(malformed(source, n, e.to_string())),
                },
            },
        }
    }

    fn document(&mut self, source: &str, data: &[u8], yaml: bool) -> Parsed {
        let mut p = Parsed::default();
        let parsed = if yaml {
            audit::parse_yaml_lenient(data)
        } else {
            audit::parse_batch_lenient(data)
        };
        match parsed {
            Ok((events, errors)) => {
                p.events = (events.len() + errors.len()) as u64;
                for e in events {
                    p.requests.push(self.converter.record(e));
                }
                for e in errors {
                    let line = e.offset().map(|o| audit::line_of(data, o) as u64);
                    p.malformed.push(MalformedRecord {
                        source: source.to_owned(),
                        line,
                        reason: e.to_string(),
                    });
                }
            }
            Err(e) if yaml => p.malformed.push(MalformedRecord {
                source: source.to_owned(),
                line: e.offset().map(|o| audit::line_of(data, o) as u64),
                reason: e.to_string(),
            }),
            // Not one document after all (e.g. EventLists one per line): read it as lines.
            Err(_) => {
                for (i, line) in data.split(|&b| b == b'\n').enumerate() {
                    self.line(source, i as u64 + 1, line, &mut p);
                }
            }
        }
        p
    }

    /// Hands the chunk's batches to the writer without waiting for their commit (the
    /// acknowledger thread waits), so the writer can commit several in one transaction.
    fn store(&mut self, p: Parsed) -> Result<(), Error> {
        let mut purposes = p.purposes.len() as u64;
        if !p.purposes.is_empty() {
            self.store
                .upsert_purposes_blocking(p.purposes.into_iter().map(purpose_upsert).collect())?;
        }
        // A document's events can be more than a batch: split them, malformed with the first.
        let mut requests = p.requests;
        let mut malformed = p.malformed;
        let mut events = p.events;
        loop {
            let rest = if requests.len() > self.batch_size {
                requests.split_off(self.batch_size)
            } else {
                Vec::new()
            };
            let n = requests.len() as u64 + malformed.len() as u64;
            let batch_events = if rest.is_empty() {
                events
            } else {
                n.min(events)
            };
            events -= batch_events;
            let kept: Vec<MalformedRecord> =
                malformed.iter().take(SUMMARY_MALFORMED).cloned().collect();
            let pending = self.store.submit_blocking(Batch {
                run: self.run,
                release: self.release,
                events: batch_events,
                requests,
                malformed: std::mem::take(&mut malformed),
            })?;
            let _ = self.acks.send(Ack {
                pending,
                malformed: kept,
                purposes: std::mem::take(&mut purposes),
            });
            if rest.is_empty() {
                break;
            }
            requests = rest;
        }
        Ok(())
    }
}

/// A batch handed to the writer, with what the summary needs once it is committed.
struct Ack {
    pending: store::Pending,
    malformed: Vec<MalformedRecord>,
    purposes: u64,
}

/// Waits for each batch's commit in turn and adds it to the summary.
fn acknowledge(acks: mpsc::Receiver<Ack>, shared: &Shared, progress: &ProgressBar) {
    for ack in acks {
        match ack.pending.wait() {
            Ok(outcome) => {
                let mut s = shared.summary.lock().expect("summary lock");
                let room = SUMMARY_MALFORMED.saturating_sub(s.malformed.len());
                s.malformed.extend(ack.malformed.into_iter().take(room));
                s.totals.add(&outcome);
                s.purposes += ack.purposes;
                progress.set_message(format!("{} events", s.totals.events));
            }
            Err(e) => {
                shared.failed.store(true, Ordering::Relaxed);
                shared
                    .error
                    .lock()
                    .expect("error lock")
                    .get_or_insert(e.into());
            }
        }
    }
}

fn malformed(source: &str, line: u64, reason: String) -> MalformedRecord {
    MalformedRecord {
        source: source.to_owned(),
        line: Some(line),
        reason,
    }
}
