//! The `whakapapa-collector` command line: `ingest` and `serve`.
//!
//! # Example
//! ```no_run
//! use clap::Parser;
//! use whakapapa_collector::cli::{self, Cli};
//! let cli = Cli::parse_from(["whakapapa-collector", "ingest", "--db", "w.db", "audit.log"]);
//! std::process::exit(match cli::run(cli) { Ok(_) => 0, Err(_) => 1 });
//! ```
//!
//! Every setting is a flag (some also an environment variable); a bad value is an error.

mod ci;
pub mod gate;
mod manifests;
pub mod query;
mod summary;

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::http::{self, AppState, Limits};
use crate::ingest::spec::{self, ListSource, LoadedCatalog, SpecSource};
use crate::ingest::{self, Pipeline};
use crate::mapping::Mapper;
use crate::store::{self, ReleaseId, Store, read};

/// Kubernetes audit events into SQLite, every request mapped to its OpenAPI endpoint, its
/// program, its test and its lines of code.
#[derive(Debug, Parser)]
#[command(name = "whakapapa-collector", version, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read audit logs (JSON lines, EventList or array files, gzip, directories, `-` for
    /// stdin, CI builds' artifacts in public GCS) and side-channel purpose files into the
    /// database.
    Ingest(IngestArgs),
    /// Serve the audit webhook (`POST /audit`), the side channel (`POST /purposes`),
    /// `/healthz`, `/readyz` and `/metrics`.
    Serve(ServeArgs),
    /// Print the YAML that deploys the collector as a cluster's audit webhook: audit policy,
    /// webhook kubeconfig, in-cluster objects, kind config, legacy AuditSink.
    Manifests(manifests::ManifestsArgs),
    /// Answer a query (coverage, endpoints, loc, apps, deps, ...) from the database.
    Query(Box<query::QueryArgs>),
    /// The conformance gate: fail when an eligible endpoint of the release is hit by no
    /// conformance test, or a pending one already is.
    Gate(Box<gate::GateArgs>),
    /// Name the frames of purposes sent by programs built without debug info, from the
    /// build's unstripped binary or its `objcopy --only-keep-debug` file.
    Symbolize(crate::symbolize::SymbolizeArgs),
    /// Map again the requests stored as unmapped, with the release's catalog (refreshed first
    /// from `--openapi`, e.g. `cluster` once a CRD is installed).
    Remap(RemapArgs),
}

/// `remap` arguments.
#[derive(Debug, Clone, Args)]
pub struct RemapArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub catalog: CatalogArgs,
}

/// The database file.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// SQLite database file (created if missing).
    #[arg(long, env = "WHAKAPAPA_DB", default_value = "whakapapa.db")]
    pub db: PathBuf,
}

/// Where the endpoint catalog comes from.
#[derive(Debug, Clone, Args)]
pub struct CatalogArgs {
    /// OpenAPI v2 document: a file, an http(s) URL, `cluster` (the live cluster's
    /// /openapi/v2 through kube's inferred config), or `embedded` (Kubernetes 1.36, shipped
    /// with the collector).
    #[arg(long, value_name = "SPEC")]
    pub openapi: Option<SpecSource>,
    /// Release label of the catalog (default: what the document or the cluster says).
    #[arg(long, value_name = "LABEL")]
    pub release: Option<String>,
    /// Endpoints ruled out of conformance: kubernetes/kubernetes's
    /// test/conformance/testdata/ineligible_endpoints.yaml or APISnoop's
    /// ineligible_endpoints.json, a file or an http(s) URL (default: the list the database keeps
    /// for the release, else the one shipped with the collector).
    #[arg(long, value_name = "FILE|URL")]
    pub ineligible: Option<ListSource>,
    /// The release's conformance tests: kubernetes/kubernetes's
    /// test/conformance/testdata/conformance.yaml, a file or an http(s) URL (default: the tests
    /// the database keeps for the release, else the shipped v1.36.3 file for a 1.36 release).
    #[arg(long, value_name = "FILE|URL")]
    pub conformance: Option<ListSource>,
    /// Endpoints pending conformance eligibility: kubernetes/kubernetes's
    /// test/conformance/testdata/pending_eligible_endpoints.yaml, a file or an http(s) URL
    /// (default: as --conformance).
    #[arg(long, value_name = "FILE|URL")]
    pub pending: Option<ListSource>,
}

impl CatalogArgs {
    fn lists(&self) -> spec::Lists {
        spec::Lists {
            ineligible: self.ineligible.clone(),
            conformance: self.conformance.clone(),
            pending: self.pending.clone(),
        }
    }
}

/// What the database keeps for a release label (its lists), for the lists not given.
fn stored_lists(store: &Store, label: &str) -> Result<Option<spec::StoredLists>, ingest::Error> {
    let conn = store.reader().map_err(ingest::Error::Store)?;
    let lists = read::release_lists(&conn, label).map_err(ingest::Error::Store)?;
    Ok(lists.map(
        |(ineligible, pending, conformance_tests)| spec::StoredLists {
            ineligible,
            pending,
            conformance_tests,
        },
    ))
}

/// `ingest` arguments.
#[derive(Debug, Clone, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub catalog: CatalogArgs,
    /// Lines per batch: each batch is stored whole or not at all (the writer commits queued
    /// batches together).
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Parsing threads (default: the number of CPUs, 2 to 4).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: Option<u32>,
    /// Audit log files, directories (read recursively), `-` for stdin, or `gs://BUCKET/PREFIX`
    /// (public GCS objects: a Prow build's directory, a job's, or any prefix).
    #[arg(required_unless_present = "prow_job", value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Read a build of this Prow job from GCS (`logs/JOB/BUILD/` in `--bucket`): its audit
    /// logs, and its job, result, Kubernetes version and commit into the run's record.
    #[arg(long, value_name = "JOB", conflicts_with = "paths")]
    pub prow_job: Option<String>,
    /// With `--prow-job`: the build id, or `latest` (the one in `logs/JOB/latest-build.txt`).
    #[arg(long, value_name = "ID|latest", default_value = "latest")]
    pub build: String,
    /// With `--prow-job`: the GCS bucket of the job's artifacts.
    #[arg(long, value_name = "BUCKET", default_value = crate::ingest::gcs::DEFAULT_BUCKET)]
    pub bucket: String,
    /// GCS objects to read, relative to the build's directory (`*`, `**`, `?`), instead of the
    /// audit logs found by name (`artifacts/**/audit/*.log*`, `*kube-apiserver-audit.log*`).
    #[arg(long, value_name = "GLOB")]
    pub artifact_glob: Option<String>,
}

/// `serve` arguments.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub db: DbArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub catalog: CatalogArgs,
    /// Address to listen on.
    #[arg(long, env = "WHAKAPAPA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes (as sent); larger is answered 413.
    #[arg(long, default_value_t = 16 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_body: u64,
    /// Largest request body once decompressed, in bytes; larger is answered 413.
    #[arg(long, default_value_t = 128 << 20, value_parser = clap::value_parser!(u64).range(1024..))]
    pub max_decompressed: u64,
    /// Load `--openapi` again this often (`30s`, `5m`, `1h`) while serving: endpoints new to
    /// it (a CRD installed later) map from then on, and requests stored unmapped that they
    /// match are mapped again.
    #[arg(long, value_name = "INTERVAL", value_parser = parse_interval, requires = "openapi")]
    pub refresh_openapi: Option<Duration>,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub security: crate::auth::SecurityArgs,
}

/// `30s`, `5m`, `1h` (or plain seconds), at least one second.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not an interval such as 30s, 5m or 1h"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: the unit is s, m or h")),
    };
    if seconds == 0 {
        return Err("the interval is at least 1s".into());
    }
    Ok(Duration::from_secs(seconds))
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ingest(args) => ingest_command(args),
        Command::Manifests(args) => manifests::run(args),
        Command::Query(args) => query::run(*args),
        Command::Gate(args) => gate::run(*args),
        Command::Symbolize(args) => crate::symbolize::command(args),
        Command::Remap(args) => remap_command(args),
        Command::Serve(args) => {
            let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            runtime.block_on(serve(args))
        }
    }
}

/// Loads the catalog (if any) and stores it as a release.
fn catalog_into(
    store: &Store,
    args: &CatalogArgs,
    runtime: &tokio::runtime::Runtime,
    default: Option<SpecSource>,
) -> anyhow::Result<Option<(LoadedCatalog, ReleaseId)>> {
    let Some(source) = args.openapi.clone().or(default) else {
        return Ok(None);
    };
    let loaded = runtime
        .block_on(spec::load(
            &source,
            &args.lists(),
            args.release.as_deref(),
            &|label| stored_lists(store, label),
        ))
        .context("cannot load the endpoint catalog")?;
    let (loaded, id) = store_catalog_blocking(store, loaded, false)?;
    if !loaded.added.is_empty() {
        remap_blocking(store, id, &loaded)?;
    }
    Ok(Some((loaded, id)))
}

/// Stores a catalog as a release. A live cluster's catalog (any catalog with `refresh`) over a
/// release stored under its label refreshes that release ([`spec::refreshed`]); one that
/// adds and changes nothing is not stored again.
fn store_catalog_blocking(
    store: &Store,
    mut loaded: LoadedCatalog,
    refresh: bool,
) -> anyhow::Result<(LoadedCatalog, ReleaseId)> {
    loaded.release.refresh |= refresh;
    if loaded.release.refresh
        && let Some(previous) = read::release(&store.reader()?, Some(&loaded.release.label))?
    {
        let fresh = spec::refreshed(&loaded, &previous)?;
        if fresh.added.is_empty() && fresh.catalog == spec::catalog_of(&previous)? {
            return Ok((fresh, previous.id));
        }
        loaded = fresh;
    }
    let id = store
        .store_release_blocking(loaded.release.clone())
        .context("cannot store the endpoint catalog")?;
    Ok((loaded, id))
}

/// Maps the release's unmapped requests again with its catalog, and says what changed.
fn remap_blocking(
    store: &Store,
    release: ReleaseId,
    loaded: &LoadedCatalog,
) -> anyhow::Result<store::Remapped> {
    let mapper = Mapper::new(&loaded.catalog);
    let remapped = store
        .remap_blocking(
            release,
            store::RemapFn::new(move |verb, uri| {
                mapper.map(verb, uri).endpoint().map(|i| i as u32)
            }),
        )
        .context("cannot map the unmapped requests again")?;
    tracing::info!(
        release = %loaded.release.label,
        added = loaded.added.len(),
        remapped = remapped.remapped,
        still_unmapped = remapped.still_unmapped,
        "catalog refreshed"
    );
    Ok(remapped)
}

fn remap_command(args: RemapArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.db.db, store::Options::default())?;
    let (loaded, id) = match &args.catalog.openapi {
        Some(source) => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            let loaded = runtime
                .block_on(spec::load(
                    source,
                    &args.catalog.lists(),
                    args.catalog.release.as_deref(),
                    &|label| stored_lists(&store, label),
                ))
                .context("cannot load the endpoint catalog")?;
            store_catalog_blocking(&store, loaded, true)?
        }
        None => {
            let stored = read::release(&store.reader()?, args.catalog.release.as_deref())?
                .context("no release in the database: pass --openapi")?;
            let catalog = spec::catalog_of(&stored)?;
            let release = spec::release_record(&catalog, stored.label.clone(), Vec::new(), None);
            (
                LoadedCatalog {
                    catalog,
                    release,
                    lists: Vec::new(),
                    added: Vec::new(),
                },
                stored.id,
            )
        }
    };
    let remapped = remap_blocking(&store, id, &loaded)?;
    println!(
        "release {}: {} endpoints ({} new); {} requests mapped again, {} still unmapped",
        loaded.release.label,
        loaded.catalog.endpoints.len(),
        loaded.added.len(),
        remapped.remapped,
        remapped.still_unmapped
    );
    Ok(())
}

fn ingest_command(args: IngestArgs) -> anyhow::Result<()> {
    let remote = args
        .paths
        .iter()
        .filter(|p| p.to_string_lossy().starts_with("gs://"))
        .count();
    if args.prow_job.is_some() || remote > 0 {
        if remote < args.paths.len() {
            bail!("give gs:// URLs and local paths to separate runs of `ingest`");
        }
        return ci::run(args);
    }
    if args.artifact_glob.is_some() {
        bail!("--artifact-glob applies to gs:// URLs and --prow-job only");
    }
    let started = Instant::now();
    let inputs = ingest::expand(&args.paths)?;
    let ingest = Ingest::open(&args)?;
    let sources: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
    let run =
        ingest
            .store
            .begin_run_blocking("ingest", &sources.join(" "), Some(ingest.release))?;
    let total: Option<u64> = inputs.iter().map(|i| i.size()).sum();
    let summary = ingest
        .pipeline(run)
        .with_progress(progress_bar(total))
        .run(&inputs)?;
    ingest.store.finish_run_blocking(run)?;
    ingest.print(run, &summary, started)
}

/// What both kinds of `ingest` (local files, CI builds from GCS) set up once: the store, the
/// catalog stored as a release, its mapper and the pipeline's options.
struct Ingest {
    db: PathBuf,
    store: Store,
    loaded: LoadedCatalog,
    release: ReleaseId,
    mapper: Arc<Mapper>,
    options: ingest::Options,
}

impl Ingest {
    fn open(args: &IngestArgs) -> anyhow::Result<Self> {
        // Room for a few batches ahead of the writer, which commits them together. Rollups are
        // summed over many batches (a log repeats its keys) and folded in at least every 10 s.
        let store = Store::open(
            &args.db.db,
            store::Options::default().queue(2).fold(store::Fold::bulk()),
        )?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")?;
        let (loaded, release) =
            catalog_into(&store, &args.catalog, &runtime, Some(SpecSource::Embedded))?
                .expect("a default catalog source");
        let mapper = Arc::new(Mapper::new(&loaded.catalog));
        let mut options = ingest::Options::default().batch_size(args.batch_size as usize);
        if let Some(jobs) = args.jobs {
            options = options.workers(jobs as usize);
        }
        Ok(Self {
            db: args.db.db.clone(),
            store,
            loaded,
            release,
            mapper,
            options,
        })
    }

    /// A pipeline into `run`, mapped with the catalog.
    fn pipeline(&self, run: store::RunId) -> Pipeline {
        self.pipeline_with(run, self.release, self.mapper.clone())
    }

    /// A pipeline into `run`, mapped with another stored release's catalog.
    fn pipeline_with(
        &self,
        run: store::RunId,
        release: ReleaseId,
        mapper: Arc<Mapper>,
    ) -> Pipeline {
        Pipeline::new(
            self.store.clone(),
            run,
            Some(release),
            Some(mapper),
            self.options.clone(),
        )
    }

    /// Prints what `run` stored.
    fn print(
        &self,
        run: store::RunId,
        summary: &ingest::Summary,
        started: Instant,
    ) -> anyhow::Result<()> {
        let counts = read::counts(&self.store.reader()?)?;
        print!(
            "{}",
            summary::render(
                summary,
                &summary::Context {
                    db: &self.db,
                    release: &self.loaded.release.label,
                    lists: &self.loaded.lists,
                    run: run.0,
                    elapsed: started.elapsed(),
                    requests_in_db: counts.requests,
                    peak_kib: summary::peak_kib(),
                }
            )
        );
        Ok(())
    }
}

fn progress_bar(total: Option<u64>) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let security = args.security.load(args.listen)?;
    // Rollups are folded between webhook batches, not in their acknowledged transactions; the
    // query API folds what is pending before it answers.
    let store = Store::open(
        &args.db.db,
        store::Options::default()
            .durable(true)
            .fold(store::Fold::webhook()),
    )?;
    let (release, mapper) = serve_catalog(&store, &args.catalog).await?;
    let run = {
        let (store, source) = (store.clone(), args.listen.to_string());
        tokio::task::spawn_blocking(move || store.begin_run_blocking("serve", &source, release))
            .await??
    };
    let limits = Limits::new(args.max_body as usize, args.max_decompressed as usize);
    let state = AppState::new(store.clone(), run, release, mapper, limits);
    if let (Some(every), Some(source)) = (args.refresh_openapi, args.catalog.openapi.clone()) {
        tokio::spawn(refresh_catalog(
            state.clone(),
            source,
            args.catalog.clone(),
            every,
        ));
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(listen = %args.listen, db = %args.db.db.display(), "serving");
    let scheme = if security.tls() { "https" } else { "http" };
    eprintln!("listening on {scheme}://{}", listener.local_addr()?);
    let metrics = state.metrics.clone();
    let app = security.apply(http::app(state), metrics);
    security
        .serve(listener, app, async {
            shutdown_signal().await;
        })
        .await
        .context("server failed")?;
    // Fold what is pending, so `query` on the file this server leaves (a reader: it cannot
    // fold) answers for every request stored.
    tokio::task::spawn_blocking(move || {
        store.fold_blocking()?;
        store.finish_run_blocking(run)
    })
    .await??;
    Ok(())
}

/// `serve --refresh-openapi`: every `every`, loads the catalog again; when it has new endpoints
/// it is stored over the release, the webhook maps with it from then on, and the requests
/// stored unmapped are mapped again. A failed refresh is logged and the catalog kept.
async fn refresh_catalog(state: AppState, source: SpecSource, args: CatalogArgs, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let stored = {
            let store = state.store.clone();
            move |label: &str| stored_lists(&store, label)
        };
        let loaded = match spec::load(&source, &args.lists(), args.release.as_deref(), &stored)
            .await
        {
            Ok(loaded) => loaded,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), %source, "cannot refresh the catalog");
                continue;
            }
        };
        let store = state.store.clone();
        let webhook = state.clone();
        let refreshed = tokio::task::spawn_blocking(move || {
            let (loaded, id) = store_catalog_blocking(&store, loaded, true)?;
            if loaded.added.is_empty() {
                return anyhow::Ok(());
            }
            // Stored first, so every index the new mapper gives has its endpoint row.
            webhook.set_mapper(Arc::new(Mapper::new(&loaded.catalog)));
            remap_blocking(&store, id, &loaded)?;
            Ok(())
        })
        .await;
        match refreshed {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %format!("{error:#}"), %source, "cannot refresh the catalog")
            }
            Err(error) => tracing::error!(%error, "the catalog refresh panicked"),
        }
    }
}

/// Resolves on SIGINT or SIGTERM (what Kubernetes sends a pod it stops). The server then stops
/// accepting and lets the requests in flight finish, so every `/audit` batch it is reading
/// commits before its 200, and `serve` folds its rollups and closes its run before exiting.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                tracing::info!("shutting down: finishing requests in flight");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server")
            }
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: finishing requests in flight");
}

/// The catalog `serve` maps with: `--openapi` if given, else the database's latest release,
/// else none (requests are stored as `unmapped:unknown_release`).
async fn serve_catalog(
    store: &Store,
    args: &CatalogArgs,
) -> anyhow::Result<(Option<ReleaseId>, Option<Arc<Mapper>>)> {
    if let Some(source) = &args.openapi {
        let loaded = spec::load(source, &args.lists(), args.release.as_deref(), &|label| {
            stored_lists(store, label)
        })
        .await
        .context("cannot load the endpoint catalog")?;
        for line in &loaded.lists {
            tracing::info!(release = %loaded.release.label, "{line}");
        }
        let store = store.clone();
        let (mapper, id) = tokio::task::spawn_blocking(move || {
            let (loaded, id) = store_catalog_blocking(&store, loaded, false)?;
            if !loaded.added.is_empty() {
                remap_blocking(&store, id, &loaded)?;
            }
            anyhow::Ok((Arc::new(Mapper::new(&loaded.catalog)), id))
        })
        .await??;
        return Ok((Some(id), Some(mapper)));
    }
    let stored = read::release(&store.reader()?, args.release.as_deref())?;
    match stored {
        Some(stored) => {
            let catalog = spec::catalog_of(&stored)?;
            Ok((Some(stored.id), Some(Arc::new(Mapper::new(&catalog)))))
        }
        None if args.release.is_some() => bail!(
            "release {} is not in the database; pass --openapi",
            args.release.as_deref().unwrap_or_default()
        ),
        None => {
            tracing::warn!("no catalog: pass --openapi; requests are stored unmapped");
            Ok((None, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bad_values_are_errors() {
        for args in [
            &["whakapapa-collector", "ingest"][..],
            &[
                "whakapapa-collector",
                "ingest",
                "--batch-size",
                "0",
                "a.log",
            ],
            &["whakapapa-collector", "serve", "--listen", "localhost"],
            &["whakapapa-collector", "serve", "--max-body", "10"],
            &["whakapapa-collector", "serve", "--refresh-openapi", "5m"],
            &[
                "whakapapa-collector",
                "serve",
                "--openapi",
                "cluster",
                "--refresh-openapi",
                "0s",
            ],
            &[
                "whakapapa-collector",
                "serve",
                "--openapi",
                "cluster",
                "--refresh-openapi",
                "5 minutes",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        let cli = Cli::try_parse_from([
            "whakapapa-collector",
            "ingest",
            "--openapi",
            "cluster",
            "a.log",
        ])
        .unwrap();
        let Command::Ingest(args) = cli.command else {
            panic!("ingest")
        };
        assert_eq!(args.catalog.openapi, Some(SpecSource::Cluster));
        for (text, seconds) in [("30s", 30), ("45", 45), ("5m", 300), ("1h", 3600)] {
            assert_eq!(
                parse_interval(text),
                Ok(Duration::from_secs(seconds)),
                "{text}"
            );
        }
    }
}
