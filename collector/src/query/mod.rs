//! Relational queries over the store: what the answers are, how they are asked for and how they
//! print. The SQL of most is in `store::queries`; a newer query keeps its SQL in its own module
//! beside its answer ([`deprecated`]), with the helpers `store::queries` shares.
//!
//! # Example
//! ```
//! use whakapapa_collector::query::{Request, Format};
//! let req = Request::from_params("coverage", [("release", "1.36.0"), ("counting", "any")]).unwrap();
//! assert_eq!(req.filters.release.as_deref(), Some("1.36.0"));
//! assert!(Format::Csv.is_csv());
//! ```
//!
//! A [`Request`] is parsed once, from HTTP query parameters or CLI flags that share their names;
//! `store::queries::run` answers it with an [`Answer`]; [`Answer::render`] prints it as a table,
//! JSON (the HTTP body, byte for byte) or CSV.

mod answer;
pub mod apisnoop;
pub mod deprecated;
pub mod deps;
pub mod diff;
mod format;
pub mod gate;
pub mod indirect;
pub mod journeys;
pub(crate) mod priorities;
pub mod progress;
pub mod rbac;
mod request;
pub mod runs;
pub mod sig;
pub mod suggest;

pub use answer::*;
pub use format::{Format, Table};
pub use request::*;

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
    #[error("unknown query `{0}` (one of: {list})", list = QUERY_NAMES.join(", "))]
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
