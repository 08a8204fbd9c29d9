//! Test modules and the stand-in API server they share.

mod passthrough;
mod plain;
mod release;
mod requests;
mod sidechannel;
pub mod standin;
mod trap;

use std::path::Path;
use std::time::{Duration, Instant};
use whakapapa::{PurposeLayer, Record, Settings};

/// A user agent split as the collector's parser does (KEP.md grammar).
#[derive(Debug)]
pub struct ParsedUa {
    pub head: String,
    pub fingerprint: u64,
    pub ua: Option<String>,
    /// `function@file:line` tokens, decoded, innermost first.
    pub frames: Vec<String>,
}

fn pct_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("escape"));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).expect("utf-8")
}

pub fn parse_ua(ua: &str) -> ParsedUa {
    let at = ua
        .rfind(" whakapapa/1 fp=")
        .unwrap_or_else(|| panic!("no marker in {ua}"));
    let mut tokens = ua[at + 1..].split(' ');
    assert_eq!(tokens.next(), Some("whakapapa/1"));
    let fp = tokens.next().unwrap().strip_prefix("fp=").unwrap();
    assert_eq!(fp.len(), 16);
    let mut parsed = ParsedUa {
        head: ua[..at].to_owned(),
        fingerprint: u64::from_str_radix(fp, 16).unwrap(),
        ua: None,
        frames: vec![],
    };
    for token in tokens {
        if let Some(v) = token.strip_prefix("ua=") {
            parsed.ua = Some(pct_decode(v));
            continue;
        }
        let (function, rest) = token.split_once('@').expect("function@file:line");
        let (file, line) = rest.rsplit_once(':').expect("file:line");
        line.parse::<u32>().expect("line number");
        parsed.frames.push(format!(
            "{}@{}:{line}",
            pct_decode(function),
            pct_decode(file)
        ));
    }
    parsed
}

/// The frame token a function of module `module` (under `tests::it`) at `line` must show.
pub fn frame(module: &str, function: &str, line: u32) -> String {
    format!("tests::it::{module}::{function}@tests/it/{module}.rs:{line}")
}

/// Settings with purpose on, this test crate's identity and a spool file.
pub fn settings(spool: &Path) -> Settings {
    Settings::new(whakapapa::identity!()).with_spool(spool)
}

/// A client from kube's default stack with `layer` on top.
pub fn default_stack_client(
    server: &standin::StandInApiServer,
    layer: &PurposeLayer,
) -> kube::Client {
    kube::client::ClientBuilder::try_from(server.config())
        .unwrap()
        .with_layer(layer)
        .build()
}

/// The spool's records, waiting up to 10 s until `done` holds for them.
pub fn spool_records(path: &Path, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let records: Vec<Record> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("spool line is a record"))
            .collect();
        if done(&records) || Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
