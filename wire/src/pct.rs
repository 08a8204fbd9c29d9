//! The percent codec of the grammar: `pct-text`, `fn-text` and the escapes of free text.
//!
//! # Example
//!
//! ```
//! use whakapapa_wire::pct;
//!
//! let mut out = String::new();
//! pct::push_pct_text(&mut out, "src/my file.rs");
//! assert_eq!(out, "src/my%20file.rs");
//! assert_eq!(pct::decode(&out).as_deref(), Some("src/my file.rs"));
//! ```
//!
//! Every byte an encoder writes is printable ASCII, so whatever it is given makes a valid
//! header value, and kube-apiserver's byte-wise cut of a user agent never splits a character.

use std::borrow::Cow;

/// Whether `b` may appear unescaped in a `pct-text` token (KEP.md `safe-char`).
pub fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'()*+,-./;<=>?[]^_`{|}~".contains(&b)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

fn push_escape(out: &mut String, b: u8) {
    out.push('%');
    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
    out.push(char::from(HEX_UPPER[usize::from(b & 0x0f)]));
}

/// Appends every byte of `text` that `keep` accepts as it is and the others as `%XX`; an
/// empty text becomes `?`, so the token is never empty.
fn push_token(out: &mut String, text: &str, keep: impl Fn(u8) -> bool) {
    if text.is_empty() {
        out.push('?');
        return;
    }
    for &b in text.as_bytes() {
        if keep(b) {
            out.push(char::from(b));
        } else {
            push_escape(out, b);
        }
    }
}

/// Appends `text` as `pct-text`: every byte but `safe-char` becomes `%XX` (upper-case hex).
/// An empty text becomes `?`.
pub fn push_pct_text(out: &mut String, text: &str) {
    push_token(out, text, is_safe);
}

/// Appends a function path as `fn-text`: `pct-text` that also keeps `:`, so paths stay
/// readable (`app::main`). A frame is still unambiguous: `@` is always escaped, and a file,
/// written as `pct-text`, cannot hold a raw `:`.
pub fn push_fn_text(out: &mut String, text: &str) {
    push_token(out, text, |b| is_safe(b) || b == b':');
}

/// Appends free text (identity, test name): printable ASCII is kept, every other byte becomes
/// `%XX`, so the text survives the audit log unchanged where it can.
pub fn push_printable(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if is_printable(b) {
            out.push(char::from(b));
        } else {
            push_escape(out, b);
        }
    }
}

fn is_printable(b: u8) -> bool {
    (0x20..0x7f).contains(&b)
}

/// The value of a hex digit, either case.
pub(crate) fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The escape `%XX` at `at` of `bytes`, if there is one.
fn escape_at(bytes: &[u8], at: usize) -> Option<u8> {
    if bytes.get(at) != Some(&b'%') {
        return None;
    }
    let hi = hex_value(*bytes.get(at + 1)?)?;
    let lo = hex_value(*bytes.get(at + 2)?)?;
    Some(hi << 4 | lo)
}

/// Decodes every `%XX` escape of a `pct-text` or `fn-text` token (hex digits of either case);
/// `None` on a bad escape or on bytes that are not UTF-8. Borrows when there is no escape.
pub fn decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(escape_at(bytes, i)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Decodes only the escapes [`push_printable`] writes (bytes outside printable ASCII), so a
/// literal `%` in a test name such as `100%` stays as written. Never fails: bytes that are not
/// UTF-8 become U+FFFD. Borrows when there is nothing to decode.
pub fn decode_printable(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut decoded = false;
    while i < bytes.len() {
        if let Some(byte) = escape_at(bytes, i)
            && !is_printable(byte)
        {
            out.push(byte);
            decoded = true;
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    if !decoded {
        return Cow::Borrowed(text);
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(e) => Cow::Owned(String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// Cuts `s` to at most `max` bytes without splitting a `%XX` escape. `s` must hold only
/// ASCII (what the encoders write), so any cut is a character boundary.
pub(crate) fn clip_escaped(s: &mut String, max: usize) {
    if s.len() <= max {
        return;
    }
    let mut cut = max;
    // An escape is three bytes starting with '%': back off if the cut lands inside one.
    for back in 1..=2 {
        if cut >= back && s.as_bytes()[cut - back] == b'%' {
            cut -= back;
            break;
        }
    }
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pct_text_table() {
        let cases = [
            ("app::main", "app%3A%3Amain"),
            ("", "?"),
            ("a b", "a%20b"),
            ("100%", "100%25"),
            ("f@x", "f%40x"),
            ("ünï", "%C3%BCn%C3%AF"),
            ("tab\there", "tab%09here"),
            ("del\x7f", "del%7F"),
            ("<impl Foo<T>>::bar", "<impl%20Foo<T>>%3A%3Abar"),
            ("src/main.rs", "src/main.rs"),
            ("c:/x", "c%3A/x"),
        ];
        for (input, want) in cases {
            let mut out = String::new();
            push_pct_text(&mut out, input);
            assert_eq!(out, want, "input {input:?}");
            let back = if input.is_empty() { "?" } else { input };
            assert_eq!(decode(&out).as_deref(), Some(back), "input {input:?}");
        }
    }

    #[test]
    fn fn_text_keeps_colons() {
        let mut out = String::new();
        push_fn_text(&mut out, "<impl app::Api<K>>::get@x");
        assert_eq!(out, "<impl%20app::Api<K>>::get%40x");
    }

    #[test]
    fn printable_text_round_trips() {
        for text in [
            "tests::café 100%",
            "é\r\n",
            "plain [sig-node] x",
            "%41 %25 literal",
        ] {
            let mut out = String::new();
            push_printable(&mut out, text);
            assert!(out.bytes().all(is_printable), "{out:?}");
            // A literal escape-looking text stays as written: only non-printable bytes decode.
            assert_eq!(decode_printable(&out), text, "{out:?}");
        }
        // The one ambiguity: a literal escape of a byte outside printable ASCII reads decoded.
        let mut out = String::new();
        push_printable(&mut out, "%C3%A9");
        assert_eq!(decode_printable(&out), "é");
    }

    #[test]
    fn decoding_rejects_bad_escapes() {
        assert_eq!(decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(decode("%c3%a9").as_deref(), Some("é"));
        assert!(matches!(decode("plain"), Some(Cow::Borrowed("plain"))));
        for bad in ["a%2", "a%zz", "%FF", "%", "%%41"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode_printable("%FF x"), "\u{fffd} x");
        assert_eq!(decode_printable("100%"), "100%");
        assert_eq!(decode_printable("%2"), "%2");
    }

    #[test]
    fn clipping_never_splits_an_escape() {
        for max in 0..20 {
            let mut s = "a%20b%C3%BCcd%25e".to_string();
            clip_escaped(&mut s, max);
            assert!(s.len() <= max);
            if let Some(p) = s.rfind('%') {
                assert!(s.len() >= p + 3, "{s:?} cut inside an escape");
            }
        }
    }
}
