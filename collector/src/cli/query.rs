//! `whakapapa-collector query <name> --db FILE [filters] [options] [--format table|json|csv]`:
//! the Query API from the command line; flags have the HTTP parameters' names.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::Args;

use crate::query::{Format, QUERY_NAMES, Request};
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
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(QUERY_NAMES))]
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
    /// What makes an endpoint tested: tests, conformance or any (coverage, sunburst,
    /// endpoints, history).
    #[arg(long, value_name = "RULE")]
    pub counting: Option<String>,
    /// `sig`: totals and gaps per owning SIG (coverage).
    #[arg(long, value_name = "KEY")]
    pub by: Option<String>,
    /// Only endpoints this SIG owns, per the SIG table (endpoints).
    #[arg(long, value_name = "SIG")]
    pub owner: Option<String>,
    /// `apisnoop`: APISnoop's coverage JSON (coverage).
    #[arg(long, value_name = "LAYOUT")]
    pub export: Option<String>,
    /// Only this level (endpoints).
    #[arg(long)]
    pub level: Option<String>,
    /// Only this category (endpoints).
    #[arg(long)]
    pub category: Option<String>,
    /// Only this API group, `core` for the core group (endpoints).
    #[arg(long)]
    pub group: Option<String>,
    /// Only tested (true) or untested (false) endpoints (endpoints).
    #[arg(long, value_name = "BOOL")]
    pub tested: Option<String>,
    /// Only eligible (true) or ineligible (false) endpoints (endpoints).
    #[arg(long, value_name = "BOOL")]
    pub eligible: Option<String>,
    /// operationId (endpoint).
    #[arg(long, value_name = "OPERATION_ID")]
    pub endpoint: Option<String>,
    /// `file:line`, a file, or a function path prefix (loc).
    #[arg(long, value_name = "LOC")]
    pub loc: Option<String>,
    /// Substring of functions and files (search).
    #[arg(long, value_name = "TEXT")]
    pub q: Option<String>,
    /// Longest list returned (endpoint, search, suggest).
    #[arg(long)]
    pub limit: Option<String>,
    /// Least-privilege RBAC YAML per app (apps).
    #[arg(long)]
    pub rbac: bool,
    /// Endpoints programs use and no test does (tests).
    #[arg(long)]
    pub gaps: bool,
    /// Episodes a sequence must appear in (journeys, suggest).
    #[arg(long, value_name = "N")]
    pub min_support: Option<String>,
    /// Longest sequence (journeys, suggest).
    #[arg(long, value_name = "N")]
    pub max_len: Option<String>,
    /// Idle seconds that end an episode (journeys, suggest).
    #[arg(long, value_name = "SECONDS")]
    pub gap: Option<String>,
    /// Only APIs removed in this release or earlier, such as 1.37 (deprecated).
    #[arg(long, value_name = "RELEASE")]
    pub removed_in: Option<String>,
    /// The runs before: a run id, ci:BUILD, ci:JOB/BUILD or release:LABEL (diff).
    #[arg(long, value_name = "RUN")]
    pub base: Option<String>,
    /// The runs after, as --base (diff).
    #[arg(long, value_name = "RUN")]
    pub head: Option<String>,
    /// Seconds after a test's last request in a namespace that what others do there is still
    /// on its behalf (indirect; default 60).
    #[arg(long, value_name = "SECONDS")]
    pub grace: Option<String>,
}

impl QueryArgs {
    /// The flags given, as the HTTP API's (parameter, value) pairs.
    pub fn params(&self) -> Vec<(&'static str, String)> {
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
        opt("counting", &self.counting);
        opt("export", &self.export);
        opt("by", &self.by);
        opt("owner", &self.owner);
        opt("level", &self.level);
        opt("category", &self.category);
        opt("group", &self.group);
        opt("tested", &self.tested);
        opt("eligible", &self.eligible);
        opt("endpoint", &self.endpoint);
        opt("loc", &self.loc);
        opt("q", &self.q);
        opt("limit", &self.limit);
        opt("min-support", &self.min_support);
        opt("max-len", &self.max_len);
        opt("gap", &self.gap);
        opt("removed-in", &self.removed_in);
        opt("base", &self.base);
        opt("head", &self.head);
        opt("grace", &self.grace);
        for (k, on) in [
            ("conformance", f.conformance),
            ("ok-only", f.ok_only),
            ("rbac", self.rbac),
            ("gaps", self.gaps),
        ] {
            if on {
                p.push((k, "true".to_owned()));
            }
        }
        if let Some(t) = &self.target {
            let key = match self.name.as_str() {
                "endpoint" => "endpoint",
                "loc" => "loc",
                "search" => "q",
                other => {
                    // Not a parameter of this query: the same error as any unknown one.
                    p.push(("ARG", format!("{other} takes no positional argument")));
                    return p;
                }
            };
            p.push((key, t.clone()));
        }
        p
    }
}

/// Runs `query`: prints the answer on stdout.
pub fn run(args: QueryArgs) -> anyhow::Result<()> {
    let format: Format = args.format.parse().map_err(anyhow::Error::msg)?;
    let request = Request::from_params(&args.name, args.params())
        .with_context(|| format!("bad query `{}`", args.name))?;
    let conn = open(&args.db)?;
    let answer = store::queries::run(&conn, &request)
        .with_context(|| format!("query `{}` failed", args.name))?;
    let mut out = std::io::stdout().lock();
    out.write_all(answer.render(format).as_bytes())
        .and_then(|_| out.flush())
        .context("cannot write the answer")
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
