//! The header text whakapapa sends: the `User-Agent` grammar and the `Audit-ID` UUIDv8 of KEP.md.
//!
//! Pure functions, no I/O: every output is a valid `HeaderValue`, whatever the input.
//!
//! # Example
//!
//! ```
//! use whakapapa::wire::{self, Frame};
//!
//! let frames = [Frame::new("app::count_pods", "src/main.rs", 42)];
//! let ua = wire::user_agent("app/v1.0.0 (linux/amd64) git/abc1234", None, 0xfeed, None, &frames);
//! assert_eq!(ua, "app/v1.0.0 (linux/amd64) git/abc1234 whakapapa/1 fp=000000000000feed app::count_pods@src/main.rs:42");
//! let id = wire::audit_id(0xfeed, 0);
//! assert_eq!(wire::fingerprint_of_audit_id(&id), Some(0xfeed));
//! ```

use std::fmt::Write as _;

/// The most bytes a user agent may have: kube-apiserver keeps the first 1024 in its audit log.
pub const MAX_USER_AGENT: usize = 1024;

/// The marker that starts whakapapa's part of a user agent (version 1 of the grammar).
pub const MARKER: &str = "whakapapa/1";

/// The magic byte that marks an `Audit-ID` as whakapapa's UUIDv8 (`'W'`).
pub const AUDIT_ID_MAGIC: u8 = 0x57;

/// One line of code in a purpose: a function and where in it the call was made.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
}

/// Whether `b` may appear unescaped in a `pct-text` token (KEP.md `safe-char`).
fn is_safe(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$&'()*+,-./;<=>?[]^_`{|}~".contains(&b)
}

/// Appends `text` as `pct-text`: every byte but `safe-char` becomes `%XX` (upper-case hex).
/// An empty text becomes `?` so the token is never empty.
pub fn push_pct_text(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push('?');
        return;
    }
    for &b in text.as_bytes() {
        if is_safe(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Appends free text (identity, test name): printable ASCII is kept, every other byte becomes
/// `%XX`, so the header is valid and the text survives the audit log unchanged where it can.
fn push_printable(out: &mut String, text: &str) {
    for &b in text.as_bytes() {
        if (0x20..0x7f).contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Cuts `s` to at most `max` bytes without splitting a `%XX` escape.
fn clip_escaped(s: &mut String, max: usize) {
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
    s.truncate(cut);
}

/// Appends a function path as `fn-text`: `pct-text` that also keeps `:` so paths stay readable
/// (`app::main`); a frame is still unambiguous, as `@` is always escaped and the file cannot
/// hold a `:`.
fn push_fn_text(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push('?');
        return;
    }
    for &b in text.as_bytes() {
        if is_safe(b) || b == b':' {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Renders one frame as `fn-text(function) "@" pct-text(file) ":" line`.
pub fn frame_token(frame: &Frame) -> String {
    let mut out = String::with_capacity(frame.function.len() + frame.file.len() + 8);
    push_fn_text(&mut out, &frame.function);
    out.push('@');
    push_pct_text(&mut out, &frame.file);
    let _ = write!(out, ":{}", frame.line);
    out
}

/// Renders the `User-Agent` of KEP.md: identity, ` -- test`, marker, fingerprint, the user agent
/// the request already had, then whole frames innermost first while they fit in
/// [`MAX_USER_AGENT`] bytes. Identity and test are clipped first if even they do not fit.
pub fn user_agent(
    identity: &str,
    test: Option<&str>,
    fingerprint: u64,
    existing: Option<&str>,
    frames: &[Frame],
) -> String {
    let mut tail = String::with_capacity(64);
    tail.push(' ');
    tail.push_str(MARKER);
    let _ = write!(tail, " fp={fingerprint:016x}");
    if let Some(existing) = existing {
        tail.push_str(" ua=");
        let start = tail.len();
        let mut ua = String::new();
        push_pct_text(&mut ua, existing);
        // Keep room for at least 64 bytes of identity; the rest of an oversized agent goes.
        clip_escaped(&mut ua, MAX_USER_AGENT - 64 - start);
        tail.push_str(&ua);
    }

    let mut head = String::with_capacity(identity.len() + 64);
    push_printable(&mut head, identity);
    if head.is_empty() {
        head.push_str("unknown");
    }
    if let Some(test) = test {
        head.push_str(" -- ");
        push_printable(&mut head, test);
    }
    clip_escaped(&mut head, MAX_USER_AGENT - tail.len());

    let mut out = String::with_capacity(MAX_USER_AGENT);
    out.push_str(&head);
    out.push_str(&tail);
    for frame in frames {
        let token = frame_token(frame);
        if out.len() + 1 + token.len() > MAX_USER_AGENT {
            break;
        }
        out.push(' ');
        out.push_str(&token);
    }
    out
}

/// The 16 bytes of the `Audit-ID` UUIDv8 carrying `fingerprint` (layout in KEP.md);
/// `random` fills the 50 random bits.
pub fn audit_id_bytes(fingerprint: u64, random: u64) -> [u8; 16] {
    let fp = fingerprint;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&(fp >> 16).to_be_bytes()[2..]);
    b[6] = 0x80 | ((fp >> 12) & 0x0f) as u8;
    b[7] = ((fp >> 4) & 0xff) as u8;
    b[8] = 0x80 | (((fp & 0x0f) as u8) << 2) | (AUDIT_ID_MAGIC >> 6);
    b[9] = ((AUDIT_ID_MAGIC & 0x3f) << 2) | (random & 0b11) as u8;
    b[10..].copy_from_slice(&(random >> 2).to_be_bytes()[2..]);
    b
}

/// The `Audit-ID` header text: the canonical lowercase 8-4-4-4-12 form of [`audit_id_bytes`].
pub fn audit_id(fingerprint: u64, random: u64) -> String {
    String::from_utf8_lossy(&audit_id_ascii(fingerprint, random)).into_owned()
}

/// [`audit_id`] as 36 ASCII bytes, without allocating.
pub fn audit_id_ascii(fingerprint: u64, random: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in audit_id_bytes(fingerprint, random).iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1; // the '-' already there
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    out
}

/// The fingerprint carried by an `Audit-ID`, if it is whakapapa's UUIDv8 (version 8,
/// variant `10`, magic `0x57`); `None` for any other text.
pub fn fingerprint_of_audit_id(id: &str) -> Option<u64> {
    let hex: String = id.chars().filter(|c| *c != '-').collect();
    if id.len() != 36 || hex.len() != 32 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let v = u128::from_str_radix(&hex, 16).ok()?;
    let b = v.to_be_bytes();
    let magic = ((b[8] & 0b11) << 6) | (b[9] >> 2);
    if b[6] >> 4 != 8 || b[8] >> 6 != 0b10 || magic != AUDIT_ID_MAGIC {
        return None;
    }
    let mut fp = 0u64;
    for byte in &b[..6] {
        fp = (fp << 8) | u64::from(*byte);
    }
    fp = (fp << 4) | u64::from(b[6] & 0x0f);
    fp = (fp << 8) | u64::from(b[7]);
    fp = (fp << 4) | u64::from((b[8] >> 2) & 0x0f);
    Some(fp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const ID: &str = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1";

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
        }
    }

    #[test]
    fn frame_tokens_keep_colons_in_functions_only() {
        let cases = [
            (
                Frame::new("app::main", "src/main.rs", 3),
                "app::main@src/main.rs:3",
            ),
            (Frame::new("a@b", "c:d.rs", 1), "a%40b@c%3Ad.rs:1"),
            (Frame::new("", "", 0), "?@?:0"),
            (
                Frame::new("<impl app::Api<K>>::get", "src/ä.rs", 9),
                "<impl%20app::Api<K>>::get@src/%C3%A4.rs:9",
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(frame_token(&frame), want);
        }
    }

    #[test]
    fn renders_the_kep_example() {
        let frames = [
            Frame::new(
                "kube_client::api::Api<K>::list",
                "kube-client-5.0.0/src/api/core_methods.rs",
                106,
            ),
            Frame::new(
                "shop_controller::inventory::count_pods",
                "src/inventory.rs",
                42,
            ),
        ];
        let ua = user_agent(
            ID,
            Some("tests::counts_pods"),
            0x9c0e4b7d12aa03f1,
            None,
            &frames,
        );
        assert_eq!(
            ua,
            "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 -- tests::counts_pods whakapapa/1 \
             fp=9c0e4b7d12aa03f1 kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:106 \
             shop_controller::inventory::count_pods@src/inventory.rs:42"
        );
    }

    #[test]
    fn keeps_an_existing_user_agent_as_a_parameter() {
        let ua = user_agent(ID, None, 1, Some("kubectl/v1.36.0 (linux/amd64)"), &[]);
        assert!(
            ua.ends_with(" whakapapa/1 fp=0000000000000001 ua=kubectl/v1.36.0%20(linux/amd64)"),
            "{ua}"
        );
    }

    fn long_frames(n: usize) -> Vec<Frame> {
        (0..n)
            .map(|i| {
                Frame::new(
                    format!(
                        "app::layer{i}::<impl app::Handler<std::collections::HashMap<alloc::string::String, \
                         alloc::vec::Vec<k8s_openapi::api::core::v1::Pod>>>>::handle"
                    ),
                    format!("src/layer{i}.rs"),
                    i as u32 + 1,
                )
            })
            .collect()
    }

    #[test]
    fn two_hundred_long_frames_fit_in_1024_bytes_as_a_valid_header() {
        let frames = long_frames(200);
        let long_test = "tests::".to_string() + &"very_long_test_name_".repeat(100);
        let long_identity = "app/v1 (linux/amd64) git/abc ".to_string() + &"x".repeat(3000);
        for (identity, test, existing) in [
            (ID, None, None),
            (ID, Some(long_test.as_str()), None),
            (
                long_identity.as_str(),
                Some(long_test.as_str()),
                Some("ünï code agent ".repeat(200)),
            ),
            ("", Some("é\r\n"), Some(String::new())),
        ] {
            let ua = user_agent(identity, test, u64::MAX, existing.as_deref(), &frames);
            assert!(ua.len() <= MAX_USER_AGENT, "{} bytes", ua.len());
            HeaderValue::from_str(&ua).expect("valid header value");
            let at = ua.rfind(" whakapapa/1 fp=").expect("marker present");
            let tail = &ua[at + 1..];
            let tokens: Vec<&str> = tail.split(' ').collect();
            assert_eq!(tokens[0], "whakapapa/1");
            assert_eq!(tokens[1], "fp=ffffffffffffffff");
            // Every frame present is whole and in order, innermost first.
            let frame_tokens: Vec<&str> = tokens[2..]
                .iter()
                .copied()
                .filter(|t| !t.starts_with("ua="))
                .collect();
            for (token, frame) in frame_tokens.iter().zip(&frames) {
                assert_eq!(*token, frame_token(frame));
            }
        }
    }

    #[test]
    fn frames_are_added_while_they_fit() {
        let frames = long_frames(200);
        let ua = user_agent(ID, None, 7, None, &frames);
        let n = ua.split(' ').filter(|t| t.contains('@')).count();
        assert!(n >= 3, "only {n} frames");
        let next = frame_token(&frames[n]);
        assert!(ua.len() + 1 + next.len() > MAX_USER_AGENT);
    }

    #[test]
    fn clipping_never_splits_an_escape() {
        for max in 0..20 {
            let mut s = "a%20b%C3%BCcd%25e".to_string();
            clip_escaped(&mut s, max);
            assert!(s.len() <= max);
            let last_pct = s.rfind('%');
            if let Some(p) = last_pct {
                assert!(s.len() >= p + 3, "{s:?} cut inside an escape");
            }
        }
    }

    #[test]
    fn audit_id_layout_table() {
        let cases = [
            (0u64, 0u64),
            (u64::MAX, u64::MAX),
            (0x9c0e4b7d12aa03f1, 0x0123456789abcdef),
            (1, 2),
        ];
        for (fp, random) in cases {
            let id = audit_id(fp, random);
            assert_eq!(id.len(), 36);
            assert!(
                id.bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c) || c == b'-')
            );
            assert_eq!(&id[14..15], "8", "version nibble in {id}");
            assert!(
                matches!(&id[19..20], "8" | "9" | "a" | "b"),
                "variant in {id}"
            );
            assert_eq!(fingerprint_of_audit_id(&id), Some(fp), "{id}");
            let hex: String = audit_id_bytes(fp, random)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let reference = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            );
            assert_eq!(id, reference);
            HeaderValue::from_str(&id).unwrap();
        }
        let id = audit_id(0x9c0e4b7d12aa03f1, 0);
        assert!(id.starts_with("9c0e4b7d-12aa-8"), "{id}");
    }

    #[test]
    fn other_uuids_carry_no_fingerprint() {
        for id in [
            "3f0f1c3e-6a38-4b4f-9f7e-2b1b8f2b2f8a", // v4, as kube-apiserver makes
            "not-a-uuid",
            "",
            "9c0e4b7d-12aa-8033-c400-000000000000x",
        ] {
            assert_eq!(fingerprint_of_audit_id(id), None, "{id}");
        }
    }
}
