//! The answer to a query: the query's own type, kept whole (so a caller can look inside it) and
//! printed as JSON (the Query API's body, KEP.md) or its tables.

use std::any::Any;
use std::fmt;

use serde::Serialize;

use super::format::{self, Format, Table};

/// How an answer prints besides its JSON.
pub trait Render: Serialize {
    /// The answer as tables (for text and CSV).
    fn tables(&self) -> Vec<Table>;

    /// The answer as text for a terminal: by default its tables, aligned.
    fn text(&self) -> String {
        format::text(&self.tables())
    }

    /// The answer as the Query API prints it: by default its pretty JSON (`to_json`). An
    /// answer kept already rendered prints what it keeps, which must be the same text.
    fn json(&self) -> String {
        to_json(self)
    }
}

/// What [`Answer`] needs of the type it holds.
trait Shown: Any + fmt::Debug + Send {
    fn json(&self) -> String;
    fn tables(&self) -> Vec<Table>;
    fn text(&self) -> String;
    fn as_any(&self) -> &dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Render + fmt::Debug + Send + 'static> Shown for T {
    fn json(&self) -> String {
        Render::json(self)
    }
    fn tables(&self) -> Vec<Table> {
        Render::tables(self)
    }
    fn text(&self) -> String {
        Render::text(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

/// Pretty JSON with a final newline, as the Query API answers.
pub(crate) fn to_json<T: Serialize + ?Sized>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("answers serialize");
    s.push('\n');
    s
}

/// The answer to a query: one of the query modules' answer types.
#[derive(Debug)]
pub struct Answer(Box<dyn Shown>);

impl Answer {
    /// Wraps a query's answer.
    pub fn new<T: Render + fmt::Debug + Send + 'static>(answer: T) -> Answer {
        Answer(Box::new(answer))
    }

    /// The answer, when it is a `T` (`loc::LocAnswer`, `coverage::Coverage`, ...).
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.0.as_any().downcast_ref()
    }

    /// The answer as a `T`, or itself when it is another type.
    pub fn into_inner<T: 'static>(self) -> Result<T, Answer> {
        if self.get::<T>().is_some() {
            Ok(*self
                .0
                .into_any()
                .downcast()
                .expect("the type was checked above"))
        } else {
            Err(self)
        }
    }

    /// The JSON of the Query API (pretty, with a final newline).
    pub fn to_json(&self) -> String {
        self.0.json()
    }

    /// The answer as tables (for text and CSV).
    pub fn tables(&self) -> Vec<Table> {
        self.0.tables()
    }

    /// Prints in a format.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => self.to_json(),
            Format::Csv => format::csv(&self.tables()),
            Format::Table => self.0.text(),
        }
    }
}
