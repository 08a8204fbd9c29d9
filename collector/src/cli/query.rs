//! `whakapapa-collector query <name> --db FILE [filters] [options] [--format table|json|csv]`:
//! the Query API from the command line; flags have the HTTP parameters' names.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::query::{self, Format, Request};
use crate::store;

/// The filters every query takes.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// Release label (default: the release loaded last).
    #[arg(long, value_name = "LABEL")]
    pub release: Option<String>,
    /// Identity name, or a prefix of the identity text.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Substring of the test name.
    #[arg(long, value_name = "TEXT")]
    pub test: Option<String>,
    /// The test's SIG (`node` or `sig-node`).
    #[arg(long, value_name = "SIG")]
    pub sig: Option<String>,
    /// Only requests from conformance tests.
    #[arg(long)]
    pub conformance: bool,
    /// Only requests received at or after (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only requests received before (RFC 3339).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// Only requests answered 2xx.
    #[arg(long)]
    pub ok_only: bool,
}

/// `query` arguments.
#[derive(Debug, Clone, Args)]
pub struct QueryArgs {
    /// The query.
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(query::names()))]
    pub name: String,
    /// The endpoint (`endpoint`), line of code (`loc`) or text (`search`) asked about.
    #[arg(value_name = "ARG")]
    pub target: Option<String>,
    /// SQLite database file.
    #[arg(long, env = "WHAKAPAPA_DB", default_value = "whakapapa.db")]
    pub db: PathBuf,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json", "csv"])]
    pub format: String,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub filters: FilterArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub options: Options,
}

/// The queries' own parameters as flags, one per name in the registry ([`query::QUERIES`]),
/// each saying which queries take it; as given, in (parameter, value) pairs.
#[derive(Debug, Clone, Default)]
pub struct Options(pub Vec<(&'static str, String)>);

/// Every parameter name once, with the queries that take it, in registry order.
fn flags() -> Vec<(query::Param, Vec<&'static str>)> {
    let mut out: Vec<(query::Param, Vec<&'static str>)> = Vec::new();
    for e in query::QUERIES {
        for p in e.params {
            match out.iter_mut().find(|(q, _)| q.name == p.name) {
                Some((_, takers)) => takers.push(e.name),
                None => out.push((*p, vec![e.name])),
            }
        }
    }
    out
}

impl clap::FromArgMatches for Options {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let mut o = Options::default();
        o.update_from_arg_matches(m)?;
        Ok(o)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        for (p, _) in flags() {
            match p.value_name {
                None if m.get_flag(p.name) => self.0.push((p.name, "true".to_owned())),
                None => {}
                Some(_) => {
                    if let Some(v) = m.get_one::<String>(p.name) {
                        self.0.push((p.name, v.clone()));
                    }
                }
            }
        }
        Ok(())
    }
}

impl clap::Args for Options {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for (p, takers) in flags() {
            let arg = clap::Arg::new(p.name).long(p.name).help(format!(
                "{} ({})",
                p.help,
                takers.join(", ")
            ));
            cmd = cmd.arg(match p.value_name {
                None => arg.action(clap::ArgAction::SetTrue),
                Some(v) => arg.value_name(v),
            });
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

impl QueryArgs {
    /// The flags given, as the HTTP API's (parameter, value) pairs.
    pub fn params(&self) -> anyhow::Result<Vec<(&'static str, String)>> {
        let f = &self.filters;
        let mut p: Vec<(&'static str, String)> = Vec::new();
        let mut opt = |k: &'static str, v: &Option<String>| {
            if let Some(v) = v {
                p.push((k, v.clone()));
            }
        };
        opt("release", &f.release);
        opt("app", &f.app);
        opt("test", &f.test);
        opt("sig", &f.sig);
        opt("since", &f.since);
        opt("until", &f.until);
        for (k, on) in [("conformance", f.conformance), ("ok-only", f.ok_only)] {
            if on {
                p.push((k, "true".to_owned()));
            }
        }
        p.extend(self.options.0.iter().cloned());
        if let Some(t) = &self.target {
            let positional = query::QUERIES
                .iter()
                .find(|e| e.name == self.name)
                .and_then(|e| e.positional);
            match positional {
                Some(key) => p.push((key, t.clone())),
                None => bail!("query `{}` takes no positional argument", self.name),
            }
        }
        Ok(p)
    }
}

/// Runs `query`: prints the answer on stdout.
pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let request = Request::from_params(&args.name, args.params()?)
        .with_context(|| format!("bad query `{}`", args.name))?;
    let conn = open(&args.db)?;
    if request.reads_journeys() && !journeys_current(&conn) {
        // Journeys not yet counted (bulk ingest leaves them): counted once now, kept for the
        // next query.
        store::Store::open(&args.db, store::Options::default())
            .and_then(|s| s.fold_journeys_blocking())
            .context("cannot count the journeys")?;
    }
    let answer = request
        .run(&conn)
        .with_context(|| format!("query `{}` failed", args.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(answer.render(format).as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write the answer")
}

/// Whether the journeys rollup counts every stored request.
fn journeys_current(conn: &rusqlite::Connection) -> bool {
    store::journeys::current(conn, 0).unwrap_or(false)
}

/// A read connection to an existing database, migrated first when an older collector wrote it.
pub(crate) fn open(db: &std::path::Path) -> anyhow::Result<rusqlite::Connection> {
    if !db.exists() {
        bail!("no database {}: ingest first", db.display());
    }
    let conn = store::open_reader(db)?;
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .context("cannot read the database's schema version")?;
    let conn = if version < store::SCHEMA_VERSION {
        // A file written by an older collector lacks the newer rollups: migrate it (as `serve`
        // and `ingest` would) before answering.
        drop(conn);
        drop(store::Store::open(db, store::Options::default())?);
        store::open_reader(db)?
    } else {
        conn
    };
    Ok(conn)
}
