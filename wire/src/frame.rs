//! One line of code in a purpose, and its `frame` token of the user agent grammar.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::pct;

/// One line of code in a purpose: a function and where in it the call was made.
///
/// ```
/// use whakapapa_wire::Frame;
///
/// let frame = Frame::new("app::main", "src/my file.rs", 3);
/// assert_eq!(frame.token(), "app::main@src/my%20file.rs:3");
/// assert_eq!(frame.to_string(), "app::main@src/my file.rs:3"); // as people read it
/// assert_eq!(Frame::parse_token(&frame.token()), Some(frame));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Frame {
    /// Demangled function path without hash or closure segments (`app::reconcile::apply`).
    pub function: String,
    /// Source file, relative to its crate (`src/main.rs`) or `crate-1.2.3/src/...`.
    pub file: String,
    /// 1-based line number.
    pub line: u32,
}

impl Frame {
    /// A frame from its parts.
    pub fn new(function: impl Into<String>, file: impl Into<String>, line: u32) -> Self {
        Self {
            function: function.into(),
            file: file.into(),
            line,
        }
    }

    /// Appends the frame's token, `fn-text(function) "@" pct-text(file) ":" line`.
    pub fn push_token(&self, out: &mut String) {
        pct::push_fn_text(out, &self.function);
        out.push('@');
        pct::push_pct_text(out, &self.file);
        let _ = write!(out, ":{}", self.line);
    }

    /// The frame's token, `fn-text(function) "@" pct-text(file) ":" line`.
    pub fn token(&self) -> String {
        let mut out = String::with_capacity(self.function.len() + self.file.len() + 8);
        self.push_token(&mut out);
        out
    }

    /// Parses one frame token: it splits at its first `@` and its file and line at the last
    /// `:`. `None` for anything else: no `@`, an empty function or file, a line that is not
    /// a `u32`, a bad escape.
    pub fn parse_token(token: &str) -> Option<Frame> {
        let (function, location) = token.split_once('@')?;
        let (file, line) = location.rsplit_once(':')?;
        if function.is_empty()
            || file.is_empty()
            || line.is_empty()
            || !line.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(Frame {
            function: pct::decode(function)?.into_owned(),
            file: pct::decode(file)?.into_owned(),
            line: line.parse().ok()?,
        })
    }
}

/// `function@file:line` as it is, unescaped: for people, not for the header.
impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.function, self.file, self.line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_keep_colons_in_functions_only() {
        let cases = [
            (
                Frame::new("app::main", "src/main.rs", 3),
                "app::main@src/main.rs:3",
            ),
            (Frame::new("a@b", "c:d.rs", 1), "a%40b@c%3Ad.rs:1"),
            (
                Frame::new("<impl app::Api<K>>::get", "src/ä.rs", 9),
                "<impl%20app::Api<K>>::get@src/%C3%A4.rs:9",
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(frame.token(), want);
            assert_eq!(Frame::parse_token(want), Some(frame), "{want}");
        }
        // Empty parts are sent as `?`, which reads back as `?`.
        assert_eq!(Frame::new("", "", 0).token(), "?@?:0");
        assert_eq!(Frame::parse_token("?@?:0"), Some(Frame::new("?", "?", 0)));
    }

    #[test]
    fn malformed_tokens_are_not_frames() {
        for token in [
            "f@file",
            "f@file:x1",
            "@file:1",
            "f@:1",
            "f@file:",
            "f@file:99999999999",
            "f%2@file:1",
            "junk",
            "",
        ] {
            assert_eq!(Frame::parse_token(token), None, "{token}");
        }
    }
}
