//! Relational queries over the store, one module per query: its options (parsed from the
//! `name=value` parameters HTTP and the CLI share), its SQL, its answer and how that prints.
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Format, Request, coverage};
//! let req = Request::from_params("coverage", [("release", "1.36.0"), ("counting", "any")]).unwrap();
//! assert_eq!(req.filters.release.as_deref(), Some("1.36.0"));
//! assert_eq!(req.options::<coverage::Params>().unwrap().counting, whakapapa_collector::query::Counting::Any);
//! assert!(Format::Csv.is_csv());
//! ```
//!
//! A [`Request`] is parsed once by the query [`QUERIES`] names; [`Request::run`] answers it on a
//! read connection with an [`Answer`]; [`Answer::render`] prints it as a table, JSON (the HTTP
//! body, byte for byte) or CSV. The CLI's `query` flags, the HTTP routes and the list of names
//! all read [`QUERIES`].
//!
//! # Adding a query
//! A query is one module and one line in [`QUERIES`]:
//! 1. `query/NAME.rs`: a `Params` struct implementing [`Query`] (its `NAME`, the [`Param`]s it
//!    takes beyond the filters, `parse` from [`Given`], `run` with its SQL on top of the shared `sql` helpers);
//! 2. its answer type deriving `Serialize` (the JSON) and implementing [`Render`] (its tables,
//!    from rows deriving `Serialize` and `Default`, by [`Table::of`]);
//! 3. `pub mod NAME;` and `Entry::of::<NAME::Params>()` in [`QUERIES`] below;
//! 4. its golden answers: `tests/golden/query/CASE.args` (`NAME param=value ...`) and the
//!    `CASE.txt`, `CASE.json`, `CASE.csv` they print (`write_golden_answers` writes them).

use rusqlite::Connection;

mod answer;
pub mod apisnoop;
pub mod apps;
pub mod coverage;
pub mod deprecated;
pub mod deps;
pub mod diff;
pub mod endpoint;
pub mod endpoints;
mod format;
pub mod gate;
pub mod history;
pub mod indirect;
pub mod journeys;
pub mod loc;
pub(crate) mod priorities;
pub mod progress;
pub mod rbac;
pub mod releases;
pub(crate) mod request;
pub mod runs;
pub mod search;
pub mod sig;
pub(crate) mod sql;
pub mod suggest;
pub mod sunburst;
pub mod tests;
pub mod usage;

pub use answer::{Answer, Render};
pub use format::{Format, Table};
pub use request::{COUNTING, Counting, Filters, Given, LIMIT, Param, Request};
pub use whakapapa_wire::Frame;

/// A query: its name, the parameters it takes, how they parse and how it is answered. The
/// implementing type is the query's parsed options.
pub trait Query: std::fmt::Debug + Send + Sync + Sized + 'static {
    /// Its name, as in `query NAME` and `/api/v1/NAME`.
    const NAME: &'static str;
    /// The parameters it takes beyond the filters.
    const PARAMS: &'static [Param] = &[];
    /// The parameter the CLI's positional argument gives (`query loc src/main.rs:17`).
    const POSITIONAL: Option<&'static str> = None;
    /// Takes its parameters from those given (what it leaves is an unknown parameter).
    fn parse(given: &mut Given) -> Result<Self>;
    /// Answers it on a read connection.
    fn run(&self, conn: &Connection, f: &Filters) -> Result<Answer>;
}

/// A query in the registry, as the CLI and the HTTP API find it by name.
#[derive(Debug)]
pub struct Entry {
    /// [`Query::NAME`].
    pub name: &'static str,
    /// [`Query::PARAMS`].
    pub params: &'static [Param],
    /// [`Query::POSITIONAL`].
    pub positional: Option<&'static str>,
    parse: fn(&mut Given) -> Result<Box<dyn request::Asked>>,
}

impl Entry {
    /// The entry of a query.
    pub const fn of<Q: Query>() -> Entry {
        Entry {
            name: Q::NAME,
            params: Q::PARAMS,
            positional: Q::POSITIONAL,
            parse: request::parse_boxed::<Q>,
        }
    }
}

/// Every query, in the order `--help` and errors list them.
pub static QUERIES: &[Entry] = &[
    Entry::of::<releases::Params>(),
    Entry::of::<coverage::Params>(),
    Entry::of::<sunburst::Params>(),
    Entry::of::<endpoints::Params>(),
    Entry::of::<endpoint::Params>(),
    Entry::of::<loc::Params>(),
    Entry::of::<search::Params>(),
    Entry::of::<apps::Params>(),
    Entry::of::<tests::Params>(),
    Entry::of::<deps::Params>(),
    Entry::of::<journeys::Params>(),
    Entry::of::<suggest::Params>(),
    Entry::of::<history::Params>(),
    Entry::of::<deprecated::Params>(),
    Entry::of::<gate::Params>(),
    Entry::of::<diff::Params>(),
    Entry::of::<indirect::Params>(),
    Entry::of::<progress::Params>(),
];

/// Every query's name, in [`QUERIES`] order.
pub fn names() -> impl Iterator<Item = &'static str> {
    QUERIES.iter().map(|e| e.name)
}

/// Errors of a query: the input's, or the database's.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A parameter this query does not take.
    #[error("unknown parameter `{0}` for query `{1}`")]
    UnknownParam(String, &'static str),
    /// A required parameter is missing.
    #[error("missing parameter `{0}`")]
    MissingParam(&'static str),
    /// A parameter's value does not parse.
    #[error("bad value {value:?} for `{name}`: expected {expected}")]
    BadValue {
        /// The parameter.
        name: String,
        /// Its value.
        value: String,
        /// What it should look like.
        expected: &'static str,
    },
    /// A query name that does not exist.
    #[error("unknown query `{0}` (one of: {list})", list = names().collect::<Vec<_>>().join(", "))]
    UnknownQuery(String),
    /// The release asked for is not in the database.
    #[error("no release `{0}` in the database")]
    UnknownRelease(String),
    /// The database has no release at all.
    #[error("the database holds no release: ingest with --openapi first")]
    NoRelease,
    /// The endpoint asked for is not in the release.
    #[error("no endpoint `{0}` in release {1}")]
    UnknownEndpoint(String, String),
    /// The runs asked for are not in the database.
    #[error("no run `{0}` in the database (see `query history`)")]
    UnknownRun(String),
    /// The SIG table (`WHAKAPAPA_SIGS`) does not read.
    #[error("bad SIG table {0}")]
    SigTable(String),
    /// Reading the database failed.
    #[error("cannot read the database")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// Whether the asker is at fault (HTTP 400/404) rather than the database (500).
    pub fn is_input(&self) -> bool {
        !matches!(self, Error::Database(_) | Error::SigTable(_))
    }

    /// Whether it names something that does not exist (HTTP 404).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::UnknownRelease(_)
                | Error::UnknownEndpoint(..)
                | Error::UnknownQuery(_)
                | Error::UnknownRun(_)
        )
    }
}

/// `Result` of queries.
pub type Result<T, E = Error> = std::result::Result<T, E>;
