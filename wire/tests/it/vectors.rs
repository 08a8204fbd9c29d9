//! `testdata/vectors.json`, the vectors other implementations test against, hold for this one.

use serde::Deserialize;
use whakapapa_wire::{Frame, UserAgent, audit_id, parse_fingerprint, user_agent};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vectors {
    #[allow(dead_code)]
    about: String,
    parse: Vec<ParseVector>,
    render: Vec<RenderVector>,
    audit_id: Vec<AuditIdVector>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParseVector {
    name: String,
    user_agent: String,
    expect: UserAgent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenderVector {
    name: String,
    identity: String,
    #[serde(default)]
    test: Option<String>,
    fingerprint: String,
    #[serde(default)]
    existing: Option<String>,
    #[serde(default)]
    frames: Vec<Frame>,
    user_agent: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditIdVector {
    audit_id: String,
    fingerprint: Option<String>,
}

fn vectors() -> Vectors {
    let text = include_str!("../../testdata/vectors.json");
    serde_json::from_str(text).expect("testdata/vectors.json is valid")
}

#[test]
fn parse_vectors() {
    let v = vectors();
    assert!(v.parse.len() >= 20, "{} parse vectors", v.parse.len());
    for vector in &v.parse {
        let name = &vector.name;
        let got = user_agent::parse(&vector.user_agent);
        assert_eq!(got, vector.expect, "{name}");
        // The borrowed split reads the same frames, and its head is part of the input.
        let split = user_agent::split(&vector.user_agent);
        let frames: Vec<Frame> = split.tail.iter().flat_map(|t| t.frames()).collect();
        assert_eq!(frames, got.frames, "{name}");
        assert!(vector.user_agent.starts_with(split.head), "{name}");
    }
}

#[test]
fn render_vectors() {
    for vector in vectors().render {
        let fp = parse_fingerprint(&vector.fingerprint).expect("16 hex digits");
        let got = user_agent::render(
            &vector.identity,
            vector.test.as_deref(),
            fp,
            vector.existing.as_deref(),
            &vector.frames,
        );
        assert_eq!(got, vector.user_agent, "{}", vector.name);
        // What is rendered parses back to its inputs.
        let parsed = user_agent::parse(&got);
        assert_eq!(parsed.fingerprint, Some(fp), "{}", vector.name);
        assert_eq!(parsed.original_ua, vector.existing, "{}", vector.name);
        let want_frames: Vec<Frame> = vector
            .frames
            .iter()
            .map(|f| {
                let or_q = |s: &str| {
                    if s.is_empty() {
                        "?".to_owned()
                    } else {
                        s.to_owned()
                    }
                };
                Frame::new(or_q(&f.function), or_q(&f.file), f.line)
            })
            .collect();
        assert_eq!(parsed.frames, want_frames, "{}", vector.name);
    }
}

#[test]
fn audit_id_vectors() {
    let v = vectors();
    for vector in &v.audit_id {
        let want = vector
            .fingerprint
            .as_deref()
            .map(|fp| parse_fingerprint(fp).expect("16 hex digits"));
        assert_eq!(
            audit_id::decode(&vector.audit_id),
            want,
            "{}",
            vector.audit_id
        );
    }
    // Every fingerprint-carrying vector is also what the encoder writes for its bits.
    for vector in v.audit_id.iter().filter(|v| v.fingerprint.is_some()) {
        let id = vector.audit_id.to_lowercase();
        let fp = audit_id::decode(&id).unwrap();
        let hex: String = id.chars().filter(|c| *c != '-').collect();
        let bits = u128::from_str_radix(&hex, 16).unwrap();
        let random = (bits & 0xffff_ffff_ffff) << 2 | (bits >> 48 & 0b11);
        assert_eq!(audit_id::encode(fp, random as u64), id);
    }
}
