//! The `User-Agent` grammar of KEP.md: rendered by the library, parsed by the collector.
//!
//! # Example
//!
//! ```
//! use whakapapa_wire::{Frame, user_agent};
//!
//! let frames = [Frame::new("app::count_pods", "src/main.rs", 42)];
//! let ua = user_agent::render("app/v1.0.0 (linux/amd64) git/abc1234", None, 0xfeed, None, &frames);
//! assert_eq!(ua, "app/v1.0.0 (linux/amd64) git/abc1234 whakapapa/1 fp=000000000000feed app::count_pods@src/main.rs:42");
//!
//! let parsed = user_agent::parse(&ua);
//! assert_eq!(parsed.fingerprint, Some(0xfeed));
//! assert_eq!(parsed.frames, frames);
//! assert_eq!(parsed.identity.commit.as_deref(), Some("abc1234"));
//! ```
//!
//! Parsing never fails: what does not fit a known shape is kept whole as the identity text.
//! The whakapapa part is found by the *last* `" whakapapa/1 fp="`, so an identity or test name
//! cannot confuse it. kube-apiserver keeps the first [`MAX_USER_AGENT`] bytes of a longer
//! user agent and appends [`TRUNCATED_SUFFIX`]; the parser then drops the last token, which
//! may be partial, so it only ever returns whole frames. [`split`] is the same parse without
//! copying, for a caller that caches what repeats (the collector keys its identity cache by
//! [`Split::head`]).

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::pct::{self, clip_escaped};
use crate::{Frame, Identity, MARKER, MAX_USER_AGENT, TRUNCATED_SUFFIX, TestInfo};

/// What starts the whakapapa part of a user agent: the marker and the fingerprint's key.
const NEEDLE: &str = " whakapapa/1 fp=";

/// Room kept for the identity when a previous user agent is long: the rest of it goes.
const IDENTITY_ROOM: usize = 64;

/// Renders a `User-Agent`: identity, ` -- test`, marker, fingerprint, the user agent the
/// request already had (`ua=`), then whole frames innermost first while they fit in
/// [`MAX_USER_AGENT`] bytes. Identity and test are clipped first if even they do not fit.
/// Every byte of the result is printable ASCII: it is a valid header value, whatever the input.
pub fn render(
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
        pct::push_pct_text(&mut ua, existing);
        clip_escaped(&mut ua, MAX_USER_AGENT - IDENTITY_ROOM - start);
        tail.push_str(&ua);
    }

    let mut head = String::with_capacity(identity.len() + 64);
    pct::push_printable(&mut head, identity);
    if head.is_empty() {
        head.push_str("unknown");
    }
    if let Some(test) = test {
        head.push_str(" -- ");
        pct::push_printable(&mut head, test);
    }
    clip_escaped(&mut head, MAX_USER_AGENT - tail.len());

    let mut out = String::with_capacity(MAX_USER_AGENT);
    out.push_str(&head);
    out.push_str(&tail);
    let mut token = String::with_capacity(128);
    for frame in frames {
        token.clear();
        frame.push_token(&mut token);
        if out.len() + 1 + token.len() > MAX_USER_AGENT {
            break;
        }
        out.push(' ');
        out.push_str(&token);
    }
    out
}

/// A parsed user agent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAgent {
    /// Who the program says it is.
    #[serde(default)]
    pub identity: Identity,
    /// The test it runs, from the ` -- <test>` suffix.
    #[serde(default)]
    pub test: Option<TestInfo>,
    /// whakapapa's purpose fingerprint (`fp=`); 16 hex digits in JSON, as on the wire.
    #[serde(
        default,
        serialize_with = "serialize_opt_fingerprint",
        deserialize_with = "deserialize_opt_fingerprint"
    )]
    pub fingerprint: Option<u64>,
    /// Call stack frames, innermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// kube-apiserver cut the user agent.
    #[serde(default)]
    pub truncated: bool,
    /// The User-Agent the request had before whakapapa (`ua=`).
    #[serde(default)]
    pub original_ua: Option<String>,
}

impl UserAgent {
    /// The user agent's text: [`render`]ed when it has a fingerprint, else the identity and
    /// ` -- ` test as they are. `truncated` is not rendered.
    pub fn render(&self) -> String {
        let identity = self.identity.render();
        let test = self.test.as_ref().map(|t| t.name.as_str());
        match self.fingerprint {
            Some(fp) => render(
                &identity,
                test,
                fp,
                self.original_ua.as_deref(),
                &self.frames,
            ),
            None => match test {
                Some(test) => format!("{identity} -- {test}"),
                None => identity,
            },
        }
    }
}

/// Parses a user agent; never fails.
pub fn parse(ua: &str) -> UserAgent {
    split(ua).parse()
}

/// A user agent split into its parts, borrowed from the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    /// Identity and ` -- ` test as sent: before the marker in a whakapapa user agent (with
    /// its escapes), else the whole user agent without [`TRUNCATED_SUFFIX`].
    pub head: &'a str,
    /// kube-apiserver cut the user agent.
    pub truncated: bool,
    /// The whakapapa part, if it is a whakapapa user agent.
    pub tail: Option<Tail<'a>>,
}

/// The whakapapa part of a user agent: the fingerprint and the tokens after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail<'a> {
    /// The purpose fingerprint.
    pub fingerprint: u64,
    /// The space-separated tokens after `fp=` (`ua=`, frames), without the partial last one
    /// of a cut user agent.
    pub tokens: &'a str,
}

impl<'a> Tail<'a> {
    /// The frames, innermost first; a token that is not a frame (`ua=`, a malformed one) is
    /// skipped, and the frames around it still count.
    pub fn frames(&self) -> impl Iterator<Item = Frame> + 'a {
        self.tokens
            .split(' ')
            .filter(|t| !t.is_empty() && !t.starts_with("ua="))
            .filter_map(Frame::parse_token)
    }
}

/// Splits a user agent without copying it; never fails.
pub fn split(ua: &str) -> Split<'_> {
    let (cut, truncated) = match ua.strip_suffix(TRUNCATED_SUFFIX) {
        Some(cut) => (cut, true),
        None => (ua, false),
    };
    match whakapapa_tail(cut, truncated) {
        Some((head, tail)) => Split {
            head,
            truncated,
            tail: Some(tail),
        },
        None => Split {
            head: cut,
            truncated,
            tail: None,
        },
    }
}

/// The head and tail of a whakapapa user agent (already without `...TRUNCATED`).
fn whakapapa_tail(ua: &str, truncated: bool) -> Option<(&str, Tail<'_>)> {
    let (head, mut rest) = match ua.rfind(NEEDLE) {
        Some(i) => (&ua[..i], &ua[i + NEEDLE.len()..]),
        // No identity at all before the marker.
        None => ("", ua.strip_prefix(&NEEDLE[1..])?),
    };
    if truncated && let Some(last) = rest.rfind(' ') {
        // The cut fell inside the last token, or right after it: we cannot tell, so drop it.
        rest = &rest[..last];
    }
    let (fp, tokens) = rest.split_once(' ').unwrap_or((rest, ""));
    let fingerprint = crate::record::parse_fingerprint(fp)?;
    Some((
        head,
        Tail {
            fingerprint,
            tokens,
        },
    ))
}

impl<'a> Split<'a> {
    /// The identity and test of [`head`](Self::head) as sent (escapes not decoded).
    pub fn identity_and_test_text(&self) -> (&'a str, Option<&'a str>) {
        match self.head.split_once(" -- ") {
            Some((identity, test)) => (identity, Some(test)),
            None => (self.head, None),
        }
    }

    /// The identity and test of [`head`](Self::head), with whakapapa's escapes decoded when
    /// it is a whakapapa user agent (a user agent of another client is read as it is).
    pub fn identity_and_test(&self) -> (Identity, Option<TestInfo>) {
        let (identity, test) = self.identity_and_test_text();
        if self.tail.is_some() {
            (
                Identity::parse(&pct::decode_printable(identity)),
                test.map(|t| TestInfo::parse(&pct::decode_printable(t))),
            )
        } else {
            (Identity::parse(identity), test.map(TestInfo::parse))
        }
    }

    /// The parsed user agent.
    pub fn parse(&self) -> UserAgent {
        let (identity, test) = self.identity_and_test();
        let mut parsed = UserAgent {
            identity,
            test,
            truncated: self.truncated,
            ..UserAgent::default()
        };
        let Some(tail) = self.tail else {
            return parsed;
        };
        parsed.fingerprint = Some(tail.fingerprint);
        for token in tail.tokens.split(' ') {
            if let Some(value) = token.strip_prefix("ua=") {
                // Only the first, before any frame, is the request's earlier user agent.
                if parsed.original_ua.is_none() && parsed.frames.is_empty() {
                    parsed.original_ua = pct::decode(value).map(|v| v.into_owned());
                }
            } else if let Some(frame) = Frame::parse_token(token) {
                parsed.frames.push(frame);
            }
        }
        parsed
    }
}

fn serialize_opt_fingerprint<S: Serializer>(fp: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
    fp.map(crate::record::fingerprint_hex).serialize(s)
}

fn deserialize_opt_fingerprint<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(text) = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)? else {
        return Ok(None);
    };
    crate::record::parse_fingerprint(&text)
        .map(Some)
        .ok_or_else(|| {
            serde::de::Error::custom(format_args!("fingerprint {text:?} is not 16 hex digits"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1";

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
    fn keeps_an_existing_user_agent_as_a_parameter() {
        let ua = render(ID, None, 1, Some("kubectl/v1.36.0 (linux/amd64)"), &[]);
        assert!(
            ua.ends_with(" whakapapa/1 fp=0000000000000001 ua=kubectl/v1.36.0%20(linux/amd64)"),
            "{ua}"
        );
        assert_eq!(
            parse(&ua).original_ua.as_deref(),
            Some("kubectl/v1.36.0 (linux/amd64)")
        );
    }

    #[test]
    fn two_hundred_long_frames_fit_in_1024_printable_bytes() {
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
            let ua = render(identity, test, u64::MAX, existing.as_deref(), &frames);
            assert!(ua.len() <= MAX_USER_AGENT, "{} bytes", ua.len());
            assert!(ua.bytes().all(|b| (0x20..0x7f).contains(&b)), "{ua}");
            let parsed = parse(&ua);
            assert_eq!(parsed.fingerprint, Some(u64::MAX));
            assert!(frames.starts_with(&parsed.frames), "{ua}");
        }
    }

    #[test]
    fn frames_are_added_while_they_fit() {
        let frames = long_frames(200);
        let ua = render(ID, None, 7, None, &frames);
        let n = parse(&ua).frames.len();
        assert!(n >= 3, "only {n} frames");
        assert!(ua.len() + 1 + frames[n].token().len() > MAX_USER_AGENT);
    }

    #[test]
    fn an_empty_identity_is_sent_as_unknown() {
        let ua = render("", Some("t"), 3, None, &[]);
        assert_eq!(ua, "unknown -- t whakapapa/1 fp=0000000000000003");
    }

    #[test]
    fn user_agents_render_back_from_their_parse() {
        for ua in [
            "kubelet/v1.36.0 (linux/amd64) kubernetes/abc1234",
            "e2e.test/v1.36.0 (linux/amd64) kubernetes/abc1234 -- [sig-apps] x [Conformance]",
            "app/v1 (linux/amd64) git/abc -- tests::caf%C3%A9 whakapapa/1 fp=000000000000feed ua=curl/8 app::main@src/main.rs:1",
            "Mozilla/5.0 (X11; Linux x86_64)",
        ] {
            assert_eq!(parse(ua).render(), ua);
        }
    }

    /// Arbitrary bytes (as lossy text) never make the parser panic.
    #[test]
    fn never_panics_on_garbage() {
        let mut rng = fastrand::Rng::with_seed(0x2545_f491_4f6c_dd1d);
        let alphabet: Vec<char> = " -/()[]%@:.whakpT0123456789abcdefWXYZé".chars().collect();
        for _ in 0..20_000 {
            let len = rng.usize(..80);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let _ = parse(&text);
            let _ = parse(&format!("{text}{TRUNCATED_SUFFIX}"));
            let _ = parse(&format!(
                "a/b (c/d) e/f whakapapa/1 fp=0000000000000001 {text}"
            ));
            let _ = crate::audit_id::decode(&text);
            let _ = pct::decode(&text);
            let _ = pct::decode_printable(&text);
        }
    }
}
