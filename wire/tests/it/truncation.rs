//! kube-apiserver may cut a user agent: whatever survives, a parser reads only whole frames.
//!
//! kube-apiserver (`k8s.io/apiserver/pkg/audit/request.go`) keeps a user agent longer than
//! `maxUserAgentLength = 1024` bytes as its first 1024 bytes plus `userAgentTruncateSuffix =
//! "...TRUNCATED"`, cut on bytes as Go slices a string. The renderer stays within 1024 bytes,
//! but a proxy or a later layer may add to it, so every cut is tried: random identities,
//! tests, earlier user agents and frames (fixed seeds), rendered, cut at every byte length and
//! suffixed, then parsed.

use whakapapa_wire::{
    Frame, Identity, MARKER, MAX_USER_AGENT, TRUNCATED_SUFFIX, TestInfo, UserAgent, user_agent,
};

/// Text of `len` characters from `alphabet`.
fn text(rng: &mut fastrand::Rng, alphabet: &[char], len: usize) -> String {
    (0..len)
        .map(|_| alphabet[rng.usize(..alphabet.len())])
        .collect()
}

/// Characters of names and paths: ASCII that the grammar escapes or keeps, and non-ASCII.
fn name_chars() -> Vec<char> {
    "abcxyzABC0189_-.:/<>{}()[]@%?&!~ é中\t".chars().collect()
}

fn token(rng: &mut fastrand::Rng, len: std::ops::Range<usize>) -> String {
    let alphabet: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789-._".chars().collect();
    let len = rng.usize(len);
    text(rng, &alphabet, len)
}

fn identity(rng: &mut fastrand::Rng) -> Identity {
    let mut id = Identity {
        name: Some(token(rng, 1..20)),
        version: Some(format!("v{}.{}.{}", rng.u8(..), rng.u8(..), rng.u8(..))),
        os: Some(["linux", "darwin", "windows"][rng.usize(..3)].into()),
        arch: Some(["amd64", "arm64", "s390x"][rng.usize(..3)].into()),
        source: Some(["git", "kubernetes"][rng.usize(..2)].into()),
        commit: Some(token(rng, 1..12)),
        ..Identity::default()
    };
    if rng.bool() {
        id.detail = Some(format!(
            "system:serviceaccount:kube-system:{}",
            token(rng, 1..30)
        ));
    }
    if rng.bool() {
        id.built_by = Some(format!("{}@{}", token(rng, 1..8), token(rng, 1..8)));
        if rng.bool() {
            id.built_at = Some("2026-11-20T10:00:00Z".into());
        }
    }
    id.text = id.render();
    id
}

/// A test name. Identity and test keep printable ASCII as it is, so a literal `%XX` naming a
/// byte outside it would read back decoded: the grammar's one ambiguity, kept out of the case
/// by writing `%` as `%25` (which reads back as written).
fn test_name(rng: &mut fastrand::Rng) -> Option<String> {
    let len = rng.usize(1..60);
    let name = match rng.u8(..4) {
        0 => None,
        1 => Some(format!("tests::{}", token(rng, 1..60))),
        2 => Some(format!(
            "[sig-{}] {} [Conformance]",
            token(rng, 1..10),
            text(rng, &name_chars(), len)
        )),
        _ => Some(text(rng, &name_chars(), len)),
    };
    name.map(|n| n.replace('%', "%25"))
}

fn frame(rng: &mut fastrand::Rng) -> Frame {
    let chars = name_chars();
    let fn_len = rng.usize(1..90);
    let file_len = rng.usize(1..40);
    Frame::new(
        format!("app::{}", text(rng, &chars, fn_len)),
        format!("src/{}.rs", text(rng, &chars, file_len)),
        rng.u32(..),
    )
}

/// A random whole purpose as it would be sent, and the user agent it renders to.
fn case(rng: &mut fastrand::Rng) -> (UserAgent, String) {
    let identity = identity(rng);
    let test = test_name(rng);
    let fingerprint = rng.u64(..);
    let original_ua = rng.bool().then(|| text(rng, &name_chars(), 30));
    let n = rng.usize(0..30);
    let frames: Vec<Frame> = (0..n).map(|_| frame(rng)).collect();
    let ua = user_agent::render(
        &identity.render(),
        test.as_deref(),
        fingerprint,
        original_ua.as_deref(),
        &frames,
    );
    let sent = UserAgent {
        identity,
        test: test.as_deref().map(TestInfo::parse),
        fingerprint: Some(fingerprint),
        frames,
        truncated: false,
        original_ua,
    };
    (sent, ua)
}

/// Where each frame token of `ua` ends (the byte after its last one).
fn frame_ends(ua: &str) -> Vec<usize> {
    let marker = format!(" {MARKER} fp=");
    let start = ua.rfind(&marker).expect("marker") + marker.len();
    let mut ends = Vec::new();
    let mut at = start;
    for (i, token) in ua[start..].split(' ').enumerate() {
        at += token.len();
        if i > 0 && !token.starts_with("ua=") {
            ends.push(at);
        }
        at += 1;
    }
    ends
}

#[test]
fn every_cut_parses_to_whole_frames() {
    let mut cuts = 0;
    for seed in [1, 2, 3, 0x5eed, 0x9c0e_4b7d_12aa_03f1] {
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..40 {
            let (sent, ua) = case(&mut rng);
            assert!(ua.len() <= MAX_USER_AGENT, "{} bytes", ua.len());
            assert!(ua.is_ascii(), "{ua}");

            // Whole, it reads back as sent, but for the frames that did not fit.
            let whole = user_agent::parse(&ua);
            assert!(sent.frames.starts_with(&whole.frames), "seed {seed}: {ua}");
            let ends = frame_ends(&ua);
            assert_eq!(whole.frames.len(), ends.len(), "seed {seed}: {ua}");
            assert_eq!(
                whole,
                UserAgent {
                    frames: whole.frames.clone(),
                    ..sent.clone()
                },
                "seed {seed}: {ua}"
            );

            for cut in 0..=ua.len().min(MAX_USER_AGENT) {
                cuts += 1;
                let text = format!("{}{TRUNCATED_SUFFIX}", &ua[..cut]);
                let got = user_agent::parse(&text);
                assert!(got.truncated, "cut {cut}: {text}");
                assert!(
                    whole.frames.starts_with(&got.frames),
                    "cut {cut} gave a frame that was not sent: {text}\n{:?}",
                    got.frames
                );
                if got.fingerprint.is_some() {
                    // The marker survived: so did the head, whole, and every frame whose
                    // token is followed by its space; the last token may be partial and goes.
                    assert_eq!(got.fingerprint, sent.fingerprint, "cut {cut}: {text}");
                    assert_eq!(got.identity, sent.identity, "cut {cut}: {text}");
                    assert_eq!(got.test, sent.test, "cut {cut}: {text}");
                    let kept = ends.iter().filter(|&&end| end < cut).count();
                    assert_eq!(got.frames.len(), kept, "cut {cut}: {text}");
                } else {
                    assert!(got.frames.is_empty(), "cut {cut}: {text}");
                }
                if let Some(original) = &got.original_ua {
                    assert_eq!(
                        Some(original),
                        sent.original_ua.as_ref(),
                        "cut {cut}: {text}"
                    );
                }
            }
        }
    }
    assert!(cuts > 50_000, "{cuts} cuts");
}
