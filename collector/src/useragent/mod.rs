//! User-Agent strings as they reach the audit log: whakapapa's (KEP.md "Wire format"),
//! client-go's, the e2e framework's ` -- <test name>` suffix, and anything else.
//!
//! # Example
//!
//! ```
//! use whakapapa_collector::useragent;
//!
//! let ua = useragent::parse(
//!     "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- \
//!      [sig-apps] Deployment should run the lifecycle of a Deployment [Conformance]",
//! );
//! assert_eq!(ua.identity.name.as_deref(), Some("e2e.test"));
//! let test = ua.test.unwrap();
//! assert_eq!((test.sig.as_deref(), test.conformance), (Some("sig-apps"), true));
//! ```
//!
//! Parsing never fails: what does not fit a known shape is kept whole as the identity text.
//! The whakapapa part is found by the *last* `" whakapapa/1 fp="`, so an identity or test name
//! cannot confuse it. kube-apiserver cuts user agents at 1024 bytes and appends
//! `...TRUNCATED`; the partial last token is then dropped.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// What kube-apiserver appends to a user agent it cut.
pub const TRUNCATED_SUFFIX: &str = "...TRUNCATED";

/// The marker that starts whakapapa's part of a user agent.
pub const MARKER: &str = "whakapapa/1";

/// A parsed user agent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserAgent {
    /// Who the program says it is.
    pub identity: Identity,
    /// The test it runs, from the ` -- <test>` suffix.
    pub test: Option<TestInfo>,
    /// whakapapa's purpose fingerprint (`fp=`).
    pub fingerprint: Option<u64>,
    /// Call stack frames, innermost first.
    pub frames: Vec<Frame>,
    /// kube-apiserver cut the user agent.
    pub truncated: bool,
    /// The User-Agent the request had before whakapapa (`ua=`).
    pub original_ua: Option<String>,
}

/// A program's self-identity: client-go's `name/version (os/arch) source/commit`, plus
/// whakapapa's ` built-by X at T`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The identity as written (the whole user agent when it has no known shape).
    #[serde(rename = "user_agent", default)]
    pub text: String,
    /// Program name (`kubelet`, `e2e.test`).
    #[serde(default)]
    pub name: Option<String>,
    /// Version (`v1.36.0`).
    #[serde(default)]
    pub version: Option<String>,
    /// Operating system (`linux`).
    #[serde(default)]
    pub os: Option<String>,
    /// Architecture (`amd64`).
    #[serde(default)]
    pub arch: Option<String>,
    /// Source of the build (`kubernetes`, `git`).
    #[serde(default)]
    pub source: Option<String>,
    /// Source commit.
    #[serde(default)]
    pub commit: Option<String>,
    /// What client-go users append after the commit, e.g. kube-controller-manager's
    /// `/system:serviceaccount:kube-system:deployment-controller`, without the `/`.
    #[serde(default)]
    pub detail: Option<String>,
    /// Who built it (`ci@runner-4`).
    #[serde(default)]
    pub built_by: Option<String>,
    /// When it was built (`2026-11-20T10:00:00Z`).
    #[serde(default)]
    pub built_at: Option<String>,
}

impl Identity {
    /// Parses an identity text; fields stay `None` unless it has client-go's shape (or is a
    /// single `name/version` token).
    pub fn parse(text: &str) -> Identity {
        let mut identity = Identity {
            text: text.to_owned(),
            ..Identity::default()
        };
        identity.fill_fields();
        identity
    }

    /// The identity text, rebuilt from the fields when the text is empty.
    pub fn render(&self) -> String {
        if !self.text.is_empty() {
            return self.text.clone();
        }
        let mut out = String::new();
        let or_unknown = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".into());
        let _ = write!(
            out,
            "{}/{} ({}/{}) {}/{}",
            or_unknown(&self.name),
            or_unknown(&self.version),
            or_unknown(&self.os),
            or_unknown(&self.arch),
            or_unknown(&self.source),
            or_unknown(&self.commit),
        );
        if let Some(detail) = &self.detail {
            let _ = write!(out, "/{detail}");
        }
        if let (Some(by), Some(at)) = (&self.built_by, &self.built_at) {
            let _ = write!(out, " built-by {by} at {at}");
        }
        out
    }

    fn fill_fields(&mut self) {
        let text = self.text.as_str();
        // `built-by` is whakapapa's addition, always last.
        let (main, built) = match text.rfind(" built-by ") {
            Some(i) => (&text[..i], Some(&text[i + " built-by ".len()..])),
            None => (text, None),
        };
        let Some(parts) = client_go_parts(main) else {
            if !text.contains(' ')
                && let Some((name, version)) = text.split_once('/')
                && !name.is_empty()
                && !version.is_empty()
            {
                self.name = Some(name.to_owned());
                self.version = Some(version.to_owned());
            }
            return;
        };
        let [name, version, os, arch, source, commit] = parts.fields;
        self.name = Some(name.to_owned());
        self.version = Some(version.to_owned());
        self.os = Some(os.to_owned());
        self.arch = Some(arch.to_owned());
        self.source = Some(source.to_owned());
        self.commit = Some(commit.to_owned());
        self.detail = parts.detail.map(str::to_owned);
        if let Some(built) = built {
            match built.rsplit_once(" at ") {
                Some((by, at)) => {
                    self.built_by = Some(by.to_owned());
                    self.built_at = Some(at.to_owned());
                }
                None => self.built_by = Some(built.to_owned()),
            }
        }
    }
}

struct ClientGoParts<'a> {
    fields: [&'a str; 6],
    detail: Option<&'a str>,
}

/// Splits `name/version (os/arch) source/commit[/detail]`.
fn client_go_parts(text: &str) -> Option<ClientGoParts<'_>> {
    let (name_version, rest) = text.split_once(" (")?;
    let (platform, rest) = rest.split_once(") ")?;
    let (name, version) = name_version.split_once('/')?;
    let (os, arch) = platform.split_once('/')?;
    let (source, commit_detail) = rest.split_once('/')?;
    let (commit, detail) = match commit_detail.split_once('/') {
        Some((commit, detail)) => (commit, Some(detail)),
        None => (commit_detail, None),
    };
    let fields = [name, version, os, arch, source, commit];
    let clean = |s: &str| !s.is_empty() && !s.contains(' ');
    if !fields.iter().all(|f| clean(f)) {
        return None;
    }
    Some(ClientGoParts { fields, detail })
}

/// The test a request was made from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestInfo {
    /// The full test name.
    pub name: String,
    /// The first `[sig-…]` tag, e.g. `sig-apps`.
    pub sig: Option<String>,
    /// The name carries `[Conformance]`.
    pub conformance: bool,
    /// Other `[…]` tags, in order, without brackets (`Serial`, `Feature:Foo`, ...).
    pub tags: Vec<String>,
}

impl TestInfo {
    /// Reads the tags of a test name.
    pub fn parse(name: &str) -> TestInfo {
        let mut info = TestInfo {
            name: name.to_owned(),
            ..TestInfo::default()
        };
        let mut rest = name;
        while let Some(open) = rest.find('[') {
            let Some(len) = rest[open + 1..].find(']') else {
                break;
            };
            let tag = &rest[open + 1..open + 1 + len];
            rest = &rest[open + 1 + len + 1..];
            if tag.is_empty() {
                continue;
            }
            if tag == "Conformance" {
                info.conformance = true;
            } else if tag.starts_with("sig-") && info.sig.is_none() {
                info.sig = Some(tag.to_owned());
            } else {
                info.tags.push(tag.to_owned());
            }
        }
        info
    }
}

/// One call stack frame: a line of code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// Demangled function path (`my_app::reconcile::apply`).
    pub function: String,
    /// File, relative to its crate (`src/main.rs`, `kube-client-5.0.0/src/api/mod.rs`).
    pub file: String,
    /// Line number.
    pub line: u32,
}

impl Frame {
    /// Parses one `pct(function)@pct(file):line` token.
    pub fn parse_token(token: &str) -> Option<Frame> {
        let (function, location) = token.split_once('@')?;
        let (file, line) = location.rsplit_once(':')?;
        if function.is_empty() || file.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Frame {
            function: percent_decode(function)?,
            file: percent_decode(file)?,
            line: line.parse().ok()?,
        })
    }
}

/// Parses a user agent; never fails.
pub fn parse(ua: &str) -> UserAgent {
    let (ua, truncated) = strip_truncated(ua);
    if let Some(parsed) = parse_whakapapa(ua, truncated) {
        return parsed;
    }
    let (identity, test) = split_test(ua);
    UserAgent {
        identity: Identity::parse(identity),
        test: test.map(TestInfo::parse),
        truncated,
        ..UserAgent::default()
    }
}

/// Identity and ` -- ` test of a (head of a) user agent.
pub(crate) fn split_test(text: &str) -> (&str, Option<&str>) {
    match text.split_once(" -- ") {
        Some((identity, test)) => (identity, Some(test)),
        None => (text, None),
    }
}

/// A user agent without kube-apiserver's `...TRUNCATED`, and whether it had it.
pub(crate) fn strip_truncated(ua: &str) -> (&str, bool) {
    match ua.strip_suffix(TRUNCATED_SUFFIX) {
        Some(cut) => (cut, true),
        None => (ua, false),
    }
}

/// The parts of a whakapapa user agent, borrowed from it.
pub(crate) struct WhakapapaParts<'a> {
    /// Identity and ` -- ` test as sent (escapes not decoded); empty when there is none.
    pub(crate) head: &'a str,
    /// The purpose fingerprint.
    pub(crate) fingerprint: u64,
    /// The space-separated tokens after `fp=` (frames, `ua=`), without the partial last one
    /// of a cut user agent.
    pub(crate) tokens: &'a str,
}

/// Splits a whakapapa user agent (already without `...TRUNCATED`); `None` when it is not one.
pub(crate) fn whakapapa_parts(ua: &str, truncated: bool) -> Option<WhakapapaParts<'_>> {
    const NEEDLE: &str = " whakapapa/1 fp=";
    let (head, mut tail) = match ua.rfind(NEEDLE) {
        Some(i) => (&ua[..i], &ua[i + NEEDLE.len()..]),
        None => (
            "",
            ua.strip_prefix(&NEEDLE[1..])?, // no identity at all
        ),
    };
    if truncated && let Some(last) = tail.rfind(' ') {
        // The cut fell inside the last token (or right after it: we cannot tell, so drop it).
        tail = &tail[..last];
    }
    let (fp, tokens) = tail.split_once(' ').unwrap_or((tail, ""));
    if fp.len() != 16 || !fp.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let fingerprint = u64::from_str_radix(fp, 16).ok()?;
    Some(WhakapapaParts {
        head,
        fingerprint,
        tokens,
    })
}

fn parse_whakapapa(ua: &str, truncated: bool) -> Option<UserAgent> {
    let WhakapapaParts {
        head,
        fingerprint,
        tokens,
    } = whakapapa_parts(ua, truncated)?;
    let mut original_ua = None;
    let mut frames = Vec::new();
    for token in tokens.split(' ') {
        if token.is_empty() {
            continue;
        }
        if let Some(value) = token.strip_prefix("ua=") {
            if original_ua.is_none() && frames.is_empty() {
                original_ua = percent_decode(value);
            }
            continue;
        }
        // A malformed token is skipped; the frames around it still count.
        if let Some(frame) = Frame::parse_token(token) {
            frames.push(frame);
        }
    }
    let (identity, test) = split_test(head);
    Some(UserAgent {
        identity: Identity::parse(&decode_non_printable(identity)),
        test: test.map(|t| TestInfo::parse(&decode_non_printable(t))),
        fingerprint: Some(fingerprint),
        frames,
        truncated,
        original_ua,
    })
}

/// Decodes `%XX` escapes (pct-text); `None` on a bad escape or bytes that are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    if !text.contains('%') {
        return Some(text.to_owned());
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_value(*bytes.get(i + 1)?)?;
            let lo = hex_value(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decodes only the escapes whakapapa adds to identity and test (bytes outside printable
/// ASCII), so a literal `%` in a test name such as "100%" stays as written.
pub(crate) fn decode_non_printable(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|&b| hex_value(b)),
                bytes.get(i + 2).and_then(|&b| hex_value(b)),
            )
        {
            let byte = hi << 4 | lo;
            if !(0x20..0x7f).contains(&byte) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The purpose fingerprint carried in a whakapapa Audit-ID (UUIDv8, variant `10`, magic
/// `0x57`, per KEP.md); `None` for any other ID (kube-apiserver's own UUIDv4s).
pub fn fingerprint_from_audit_id(audit_id: &str) -> Option<u64> {
    let s = audit_id.as_bytes();
    if s.len() != 36 || [8, 13, 18, 23].iter().any(|&i| s[i] != b'-') {
        return None;
    }
    let mut bytes = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if s[i] == b'-' {
            i += 1;
            continue;
        }
        let hi = hex_value(s[i])?;
        let lo = hex_value(*s.get(i + 1)?)?;
        if s[i + 1] == b'-' {
            return None;
        }
        bytes[n] = hi << 4 | lo;
        n += 1;
        i += 2;
    }
    if n != 16 {
        return None;
    }
    let version = bytes[6] >> 4;
    let variant = bytes[8] >> 6;
    let magic = (bytes[8] & 0b11) << 6 | bytes[9] >> 2;
    if version != 8 || variant != 0b10 || magic != 0x57 {
        return None;
    }
    let high = bytes[..6]
        .iter()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b));
    Some(
        high << 16
            | u64::from(bytes[6] & 0x0f) << 12
            | u64::from(bytes[7]) << 4
            | u64::from(bytes[8] >> 2 & 0x0f),
    )
}

#[cfg(test)]
mod tests;
