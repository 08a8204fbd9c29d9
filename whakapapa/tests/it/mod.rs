//! Test modules and what they share: the test kit's stand-in API server, seeded with the pods
//! they ask for.

mod build_script;
mod passthrough;
mod plain;
mod release;
mod requests;
mod settings;
mod sidechannel;
mod trap;

use std::path::Path;
use std::time::{Duration, Instant};
use whakapapa::wire::user_agent;
use whakapapa::{PurposeLayer, Record, Settings};
use whakapapa_testkit::{StandInApiServer, StandInConfig, fixtures};

/// How long a test waits for debug info to load before its requests, which would otherwise go
/// with their fingerprint alone until it has (a debug build's first load takes seconds).
pub const WARM_UP: Duration = Duration::from_secs(60);

/// A whakapapa user agent as the wire crate parses it, its frames as `function@file:line`
/// text for the tests to match.
#[derive(Debug)]
pub struct ParsedUa {
    /// Identity and ` -- ` test, as sent.
    pub head: String,
    pub fingerprint: u64,
    /// The request's earlier user agent (`ua=`).
    pub ua: Option<String>,
    /// `function@file:line`, decoded, innermost first.
    pub frames: Vec<String>,
}

/// Parses a user agent the layer sent, which must be a whakapapa one whose every token after
/// the fingerprint is a frame or `ua=`.
pub fn parse_ua(ua: &str) -> ParsedUa {
    let split = user_agent::split(ua);
    let tail = split
        .tail
        .unwrap_or_else(|| panic!("not a whakapapa user agent: {ua}"));
    let parsed = split.parse();
    let frame_tokens = tail.tokens.split(' ').filter(|t| !t.starts_with("ua="));
    assert_eq!(
        frame_tokens.count(),
        parsed.frames.len(),
        "a token is no frame: {ua}"
    );
    ParsedUa {
        head: split.head.to_owned(),
        fingerprint: tail.fingerprint,
        ua: parsed.original_ua,
        frames: parsed
            .frames
            .iter()
            .map(|f| format!("{}@{}:{}", f.function, f.file, f.line))
            .collect(),
    }
}

/// The frame token a function of module `module` (under `tests::it`) at `line` must show.
pub fn frame(module: &str, function: &str, line: u32) -> String {
    format!("tests::it::{module}::{function}@tests/it/{module}.rs:{line}")
}

/// Settings with purpose on, this test crate's identity and a spool file.
pub fn settings(spool: &Path) -> Settings {
    Settings::new(whakapapa::identity!()).with_spool(spool)
}

/// A stand-in API server holding the pods `default/NAME`, one for each of `pods`.
pub async fn standin(pods: &[&str]) -> StandInApiServer {
    let config = pods.iter().fold(StandInConfig::default(), |config, name| {
        config.with_object(fixtures::pod("default", name))
    });
    StandInApiServer::start(config).await.unwrap()
}

/// A client from kube's default stack with `layer` on top.
pub fn default_stack_client(server: &StandInApiServer, layer: &PurposeLayer) -> kube::Client {
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
