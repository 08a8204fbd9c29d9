//! A structural JSON scanner: finds where values start and end without building them.
//!
//! Used to tell JSON lines from documents and to split a batch into items, so that one bad
//! item is reported with its offset while the others are still parsed. It trusts serde_json
//! to validate what is inside each value.

use super::AuditError;

/// The shape of an audit input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One JSON value per line (the log backend's files, the side channel's ndjson).
    JsonLines,
    /// One JSON document: an `EventList`, a JSON array, or a single (maybe pretty-printed)
    /// object.
    Document,
    /// YAML: one document or a `---` separated stream of them.
    Yaml,
    /// Nothing but whitespace.
    Empty,
    /// Starts like neither JSON nor YAML.
    NotJson,
}

/// Index of the first byte at or after `i` that is not JSON whitespace (or a UTF-8 BOM at 0).
pub(crate) fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    if i == 0 && bytes.starts_with(b"\xEF\xBB\xBF") {
        i = 3;
    }
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(i) {
        i += 1;
    }
    i
}

/// The 1-based line number of byte `offset` of `bytes`, to turn an error's offset into a line.
pub fn line_of(bytes: &[u8], offset: usize) -> usize {
    1 + bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

fn invalid(offset: usize, message: &str) -> AuditError {
    AuditError::Invalid {
        offset,
        message: message.to_owned(),
    }
}

/// Index just past the string whose opening quote is at `i`.
fn string_end(bytes: &[u8], i: usize) -> Result<usize, AuditError> {
    let mut j = i + 1;
    while j < bytes.len() {
        match bytes[j] {
            b'"' => return Ok(j + 1),
            b'\\' => j += 2,
            _ => j += 1,
        }
    }
    Err(invalid(i, "unterminated string"))
}

/// What scanning one value found.
struct Scanned {
    /// Index just past the value, `None` if the input ended first.
    end: Option<usize>,
    /// A newline outside strings inside the value (pretty-printed).
    newline: bool,
    /// The top-level object has an `items` key.
    items_key: bool,
}

/// Scans the value starting at `i` (which is not whitespace).
fn scan_value(bytes: &[u8], i: usize) -> Result<Scanned, AuditError> {
    let mut found = Scanned {
        end: None,
        newline: false,
        items_key: false,
    };
    let mut depth = 0usize;
    let mut j = i;
    while j < bytes.len() {
        match bytes[j] {
            b'"' => {
                let end = match string_end(bytes, j) {
                    Ok(end) => end,
                    Err(_) => return Ok(found),
                };
                if depth == 1 && &bytes[j..end] == b"\"items\"" {
                    let after = skip_ws(bytes, end);
                    if bytes.get(after) == Some(&b':') {
                        found.items_key = true;
                    }
                }
                j = end;
                if depth == 0 {
                    found.end = Some(j);
                    return Ok(found);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return Err(invalid(j, "unexpected closing bracket"));
                }
                depth -= 1;
                if depth == 0 {
                    found.end = Some(j + 1);
                    return Ok(found);
                }
            }
            b'\n' => found.newline = true,
            b',' | b' ' | b'\t' | b'\r' if depth == 0 => {
                found.end = Some(j);
                return Ok(found);
            }
            _ => {}
        }
        j += 1;
    }
    if depth == 0 && j > i {
        // A scalar running to the end of input.
        found.end = Some(j);
    }
    Ok(found)
}

/// Index just past the complete value starting at `i`.
fn value_end(bytes: &[u8], i: usize) -> Result<usize, AuditError> {
    scan_value(bytes, i)?
        .end
        .ok_or_else(|| invalid(i, "value not terminated before end of input"))
}

pub(crate) fn sniff(input: &[u8]) -> Format {
    let start = skip_ws(input, 0);
    match input.get(start) {
        None => Format::Empty,
        Some(b'[') => Format::Document,
        Some(b'{') => {
            let Ok(found) = scan_value(input, start) else {
                return Format::Document;
            };
            match found.end {
                // One value and nothing after it: a document, even on one line.
                Some(end) if skip_ws(input, end) == input.len() => Format::Document,
                // A pretty-printed value followed by more: a document (with trailing garbage,
                // which parsing it as one reports); a one-line value followed by more: lines,
                // even if each line is a whole EventList.
                Some(_) if found.newline => Format::Document,
                Some(_) => Format::JsonLines,
                // The first value did not end within the prefix we were given.
                None if found.items_key || found.newline => Format::Document,
                None => Format::JsonLines,
            }
        }
        // An EKS S3 export: each line a timestamp, a space and the event.
        Some(_) if super::managed::export_prefix(&input[start..]).is_some() => Format::JsonLines,
        Some(_) if looks_like_yaml(&input[start..]) => Format::Yaml,
        Some(_) => Format::NotJson,
    }
}

/// Whether text that does not start like JSON starts like YAML: its first line that is not a
/// comment is a document marker or directive, a sequence item or a `key:` of a mapping.
fn looks_like_yaml(input: &[u8]) -> bool {
    let Some(line) = input
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .find(|l| !l.is_empty() && !l.starts_with(b"#"))
    else {
        return false;
    };
    if line.starts_with(b"---") || line.starts_with(b"%") || line == b"-" {
        return true;
    }
    if line.starts_with(b"- ") {
        return true;
    }
    let key_start = matches!(line[0], b'"' | b'\'' | b'_') || line[0].is_ascii_alphanumeric();
    let key_end = line.ends_with(b":")
        || line
            .windows(2)
            .any(|w| w[0] == b':' && matches!(w[1], b' ' | b'\t'));
    key_start && key_end
}

/// Finds the `items` array of the top-level object starting at `start`; `None` if the object
/// has no `items` key.
pub(crate) fn find_items(bytes: &[u8], start: usize) -> Result<Option<usize>, AuditError> {
    match find_key(bytes, start, b"\"items\"")? {
        Some(i) if bytes.get(i) == Some(&b'[') => Ok(Some(i)),
        Some(i) => Err(invalid(i, "`items` is not an array")),
        None => Ok(None),
    }
}

/// Finds where the value of top-level key `key` (quoted, as `"events"`) of the object starting
/// at `start` begins; `None` if the object has no such key. A key whose value is not an array
/// is an error: every key looked for holds one.
pub(crate) fn find_key(
    bytes: &[u8],
    start: usize,
    key: &[u8],
) -> Result<Option<usize>, AuditError> {
    let mut i = start + 1;
    loop {
        i = skip_ws(bytes, i);
        match bytes.get(i) {
            Some(b'}') => return Ok(None),
            Some(b'"') => {}
            Some(_) => return Err(invalid(i, "expected an object key")),
            None => return Err(invalid(i, "object not terminated before end of input")),
        }
        let key_end = string_end(bytes, i)?;
        let found = &bytes[i..key_end] == key;
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return Err(invalid(i, "expected `:` after an object key"));
        }
        i = skip_ws(bytes, i + 1);
        if found {
            return match bytes.get(i) {
                Some(b'[') => Ok(Some(i)),
                _ => Err(invalid(
                    i,
                    &format!(
                        "`{}` is not an array",
                        String::from_utf8_lossy(&key[1..key.len() - 1])
                    ),
                )),
            };
        }
        if i >= bytes.len() {
            return Err(invalid(i, "object not terminated before end of input"));
        }
        i = skip_ws(bytes, value_end(bytes, i)?);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(None),
            _ => return Err(invalid(i, "expected `,` or `}` in an object")),
        }
    }
}

/// The items of a JSON array: `(offset, bytes)` of each element.
pub(crate) struct ArrayItems<'a> {
    bytes: &'a [u8],
    /// Next position to read from; `None` once done.
    at: Option<usize>,
    first: bool,
}

impl<'a> ArrayItems<'a> {
    /// Items of the array whose `[` is at `open`.
    pub(crate) fn new(bytes: &'a [u8], open: usize) -> Result<ArrayItems<'a>, AuditError> {
        if bytes.get(open) != Some(&b'[') {
            return Err(invalid(open, "expected a JSON array"));
        }
        Ok(ArrayItems {
            bytes,
            at: Some(open + 1),
            first: true,
        })
    }
}

impl<'a> Iterator for ArrayItems<'a> {
    type Item = Result<(usize, &'a [u8]), AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        let mut i = skip_ws(self.bytes, self.at?);
        match self.bytes.get(i) {
            Some(b']') => {
                self.at = None;
                return None;
            }
            Some(b',') if !self.first => i = skip_ws(self.bytes, i + 1),
            Some(_) if self.first => {}
            Some(_) => {
                self.at = None;
                return Some(Err(invalid(i, "expected `,` or `]` in an array")));
            }
            None => {
                self.at = None;
                return Some(Err(invalid(i, "array not terminated before end of input")));
            }
        }
        self.first = false;
        if i >= self.bytes.len() {
            self.at = None;
            return Some(Err(invalid(i, "array not terminated before end of input")));
        }
        match value_end(self.bytes, i) {
            Ok(end) => {
                self.at = Some(end);
                Some(Ok((i, &self.bytes[i..end])))
            }
            Err(e) => {
                self.at = None;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_formats() {
        let cases: &[(&str, Format)] = &[
            ("", Format::Empty),
            ("  \n\t", Format::Empty),
            ("[]", Format::Document),
            ("  [{\"a\":1}]", Format::Document),
            ("{\"a\":1}\n{\"a\":2}\n", Format::JsonLines),
            ("{\"a\":1}\r\n{\"a\":2}", Format::JsonLines),
            ("{\"a\":1}\n", Format::Document),
            ("{\n  \"a\": 1\n}\n", Format::Document),
            ("{\"kind\":\"EventList\",\"items\":[]}", Format::Document),
            // One EventList per line.
            (
                "{\"kind\":\"EventList\",\"items\":[]}\n{\"kind\":\"EventList\",\"items\":[]}",
                Format::JsonLines,
            ),
            // A prefix of a long one-line EventList, or of a pretty-printed document.
            (
                "{\"kind\":\"EventList\",\"items\":[{\"a\":",
                Format::Document,
            ),
            (
                "{\n  \"kind\": \"EventList\",\n  \"items\": [",
                Format::Document,
            ),
            ("{\n  \"a\": 1\n}\n{\"a\": 2}", Format::Document),
            // A prefix of a long first line: still lines.
            ("{\"a\":\"xxxxxxxxxxxx", Format::JsonLines),
            ("{\"a\":{\"items\":1}}\n{}", Format::JsonLines),
            ("{\"s\":\"}\\\"{\\n\"}\n{}", Format::JsonLines),
            ("\u{feff}{\"a\":1}\n{}", Format::JsonLines),
            ("hello", Format::NotJson),
            ("not json at all\n", Format::NotJson),
            ("---\nkind: EventList\n", Format::Yaml),
            (
                "# audit2rbac input\n\napiVersion: audit.k8s.io/v1\n",
                Format::Yaml,
            ),
            ("%YAML 1.2\n---\n", Format::Yaml),
            ("- auditID: a\n  verb: get\n", Format::Yaml),
            ("items:\n- verb: get\n", Format::Yaml),
            ("\u{feff}kind: Event\n", Format::Yaml),
            ("http://example.com\n", Format::NotJson),
            (
                "2024-01-01T00:00:00.000Z {\"kind\":\"Event\"}\n",
                Format::JsonLines,
            ),
        ];
        for (input, want) in cases {
            assert_eq!(sniff(input.as_bytes()), *want, "input {input:?}");
        }
    }

    #[test]
    fn splits_array_items_with_offsets() {
        let body = br#"[ {"a":"],"} , [1,2] ,"s", 3 ]"#;
        let items: Vec<_> = ArrayItems::new(body, 0)
            .unwrap()
            .map(|r| r.map(|(at, b)| (at, String::from_utf8_lossy(b).into_owned())))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            items,
            vec![
                (2, r#"{"a":"],"}"#.to_owned()),
                (15, "[1,2]".to_owned()),
                (22, "\"s\"".to_owned()),
                (27, "3".to_owned()),
            ]
        );
    }

    #[test]
    fn reports_broken_arrays() {
        for body in [&b"[{\"a\":1}"[..], b"[{\"a\":1} {}]", b"[{\"a\":1"] {
            let result: Result<Vec<_>, _> = ArrayItems::new(body, 0).unwrap().collect();
            assert!(result.is_err(), "{:?}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn finds_items_key_at_top_level_only() {
        let body = br#"{"kind":"EventList","metadata":{"items":1},"items":[1]}"#;
        assert_eq!(find_items(body, 0).unwrap(), Some(51));
        assert_eq!(find_items(br#"{"auditID":"x"}"#, 0).unwrap(), None);
        assert!(find_items(br#"{"items":3}"#, 0).is_err());
    }

    #[test]
    fn counts_lines() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 4), 3);
    }
}
