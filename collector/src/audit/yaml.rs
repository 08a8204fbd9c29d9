//! Audit events in YAML: one document or a `---` separated stream, each document an event, an
//! `EventList` (or any object with `items`) or a sequence of events, as audit2rbac reads them.
//!
//! The stream is cut into documents at its `---` and `...` markers (which YAML forbids
//! anywhere else at the start of a line), so a bad document is reported with where it starts
//! and the others are still read.

use serde::Deserialize as _;
use serde_json::Value;

use super::{AuditError, Event};

/// One document of a stream: its text and where it starts in the stream.
struct Document<'a> {
    offset: usize,
    text: &'a str,
}

/// Whether `line` is a document marker (`---` or `...`, alone or followed by a blank).
fn marker(line: &str, mark: &str) -> bool {
    line.strip_prefix(mark)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n']))
}

/// The documents of a stream, without their markers; a directive (`%YAML`) stays with the
/// text before its `---`, which holds nothing else.
fn documents(stream: &str) -> Vec<Document<'_>> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in stream.split_inclusive('\n') {
        let next = at + line.len();
        if marker(line, "---") {
            docs.push(Document {
                offset: start,
                text: &stream[start..at],
            });
            // What follows `---` on its line belongs to the new document.
            start = at + 3;
        } else if marker(line, "...") {
            docs.push(Document {
                offset: start,
                text: &stream[start..at],
            });
            start = next;
        }
        at = next;
    }
    docs.push(Document {
        offset: start,
        text: &stream[start..],
    });
    docs.retain(|d| {
        d.text.lines().any(|l| {
            let l = l.trim_start();
            !l.is_empty() && !l.starts_with('#') && !l.starts_with('%')
        })
    });
    docs
}

/// Byte offset of 1-based `line` and `column` (characters) in `text`.
fn offset_of(text: &str, line: u64, column: u64) -> usize {
    let mut at = 0;
    for _ in 1..line {
        match text[at..].find('\n') {
            Some(i) => at += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[at..];
    let col = rest
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map_or(rest.len(), |(i, _)| i);
    at + col
}

fn invalid(offset: usize, message: String) -> AuditError {
    AuditError::Invalid { offset, message }
}

/// Parses a YAML document or stream of documents, keeping every good event and reporting each
/// bad document or item with the byte offset of its document (an item's message says which
/// item it is).
///
/// Fails as a whole only when the input is not UTF-8 text.
pub fn parse_yaml_lenient(body: &[u8]) -> Result<(Vec<Event>, Vec<AuditError>), AuditError> {
    let stream = std::str::from_utf8(body)
        .map_err(|e| invalid(e.valid_up_to(), "YAML input is not UTF-8 text".to_owned()))?;
    let stream = stream.strip_prefix('\u{feff}').unwrap_or(stream);
    let bom = body.len() - stream.len();
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for doc in documents(stream) {
        let base = bom + doc.offset;
        let value: Value = match serde_saphyr::from_str(doc.text) {
            Ok(value) => value,
            Err(e) => {
                let at = e
                    .location()
                    .map_or(0, |l| offset_of(doc.text, l.line(), l.column()));
                errors.push(invalid(base + at, yaml_message(&e)));
                continue;
            }
        };
        // Where the document's own text starts, past the blank lines and comments before it.
        let start = base + (doc.text.len() - doc.text.trim_start().len());
        let items = match value {
            Value::Null => continue,
            Value::Array(items) => items,
            Value::Object(mut object) => match object.remove("items") {
                Some(Value::Array(items)) => items,
                Some(_) => {
                    errors.push(invalid(start, "`items` is not a list".into()));
                    continue;
                }
                None => {
                    match Event::deserialize(&Value::Object(object)) {
                        Ok(e) => events.push(e),
                        Err(e) => errors.push(invalid(start, e.to_string())),
                    }
                    continue;
                }
            },
            _ => {
                errors.push(invalid(
                    start,
                    "expected an audit event, an EventList or a list of events".into(),
                ));
                continue;
            }
        };
        for (i, item) in items.iter().enumerate() {
            match Event::deserialize(item) {
                Ok(e) => events.push(e),
                Err(e) => errors.push(invalid(start, format!("item {}: {e}", i + 1))),
            }
        }
    }
    Ok((events, errors))
}

/// The parser's message on one line, without the snippet of input it can draw.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    format!("invalid YAML: {first}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_cut_at_their_markers() {
        let cases: &[(&str, &[&str])] = &[
            ("a: 1\n", &["a: 1\n"]),
            ("---\na: 1\n---\nb: 2\n", &["\na: 1\n", "\nb: 2\n"]),
            ("--- {a: 1}\n--- [1]\n", &[" {a: 1}\n", " [1]\n"]),
            ("%YAML 1.2\n---\na: 1\n...\n# done\n", &["\na: 1\n"]),
            // Not markers: indented, or followed by more than a blank.
            ("a: |\n  ---\n---x: 1\n", &["a: |\n  ---\n---x: 1\n"]),
            ("# only a comment\n---\n\n", &[]),
            ("", &[]),
        ];
        for (stream, want) in cases {
            let got: Vec<&str> = documents(stream).iter().map(|d| d.text).collect();
            assert_eq!(&got, want, "{stream:?}");
            for d in documents(stream) {
                assert_eq!(&stream[d.offset..d.offset + d.text.len()], d.text);
            }
        }
    }

    #[test]
    fn offsets_count_lines_and_characters() {
        let text = "ab\nçd: e\n";
        assert_eq!(offset_of(text, 1, 1), 0);
        assert_eq!(offset_of(text, 2, 1), 3);
        assert_eq!(offset_of(text, 2, 3), 6);
        assert_eq!(offset_of(text, 9, 1), text.len());
    }
}
