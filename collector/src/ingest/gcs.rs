//! Public GCS objects over HTTP(S), through the subset of the GCS JSON API anonymous reads
//! need (list with `prefix`/`delimiter`/`pageToken`, `alt=media` downloads), and the layout of
//! Prow job artifacts in them (`logs/JOB/latest-build.txt`, `logs/JOB/BUILD/started.json`, ...).
//!
//! Downloads are streams: [`Client::open`] hands back a [`Read`] that pulls the body frame by
//! frame, so a log is never held whole in memory. A download cut off (connection dropped, a
//! stall, a 5xx) is resumed where it stopped with an HTTP `Range` request, after a backoff, a
//! bounded number of times. Objects are asked for with `Accept-Encoding: gzip`, so gzipped
//! ones arrive as stored (the reader decompresses them by their magic bytes) and ranges are
//! ranges of the stored bytes.
//!
//! The endpoint is `https://storage.googleapis.com`, or `STORAGE_EMULATOR_HOST` when set (as
//! Google's client libraries read it; `host:port` without a scheme is `http://`).

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::source::looks_like_input;

/// Where GCS is when `STORAGE_EMULATOR_HOST` is not set.
pub const DEFAULT_ENDPOINT: &str = "https://storage.googleapis.com";
/// The bucket Prow's community jobs write to (APISnoop reads it).
pub const DEFAULT_BUCKET: &str = "kubernetes-ci-logs";

/// Largest metadata object read whole (`started.json`, `latest-build.txt`, ...).
const MAX_SMALL: usize = 4 << 20;
/// A response (or the next piece of a body) not come in this long is a failure.
const STALL: Duration = Duration::from_secs(60);

/// What went wrong talking to GCS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL or a name cannot make a request.
    #[error("bad GCS address {0}")]
    Address(String),
    /// No TLS roots.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
    /// The request failed every attempt (connection refused, reset, 5xx, stall).
    #[error("{what}: {reason} (after {attempts} attempts)")]
    Transport {
        /// The object or listing.
        what: String,
        /// The last failure.
        reason: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The server answered something that is not to be retried (403, 404, ...).
    #[error("{what}: server answered {status}")]
    Status {
        /// The object or listing.
        what: String,
        /// Its status.
        status: http::StatusCode,
    },
    /// The answer is not what the GCS JSON API answers.
    #[error("{what}: {reason}")]
    Answer {
        /// The object or listing.
        what: String,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// Whether trying again later may succeed (the transport failed, not the object).
    pub fn is_transport(&self) -> bool {
        matches!(self, Error::Transport { .. })
    }
}

/// Whether a read error came from the transport (retry later), not from the object's bytes.
pub fn is_transport(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|e| e.downcast_ref::<Error>())
        .is_some_and(Error::is_transport)
}

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts per request or per resumed download (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled each time, up to 8 s.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

impl Retry {
    fn wait(&self, attempt: u32) -> Duration {
        (self.backoff * 2u32.saturating_pow(attempt.saturating_sub(1))).min(Duration::from_secs(8))
    }
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    /// Full name in the bucket.
    pub name: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Generation (changes when the object is rewritten).
    pub generation: String,
}

/// A listing: objects, and with a delimiter the "directories" below the prefix.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Objects, in name order.
    pub objects: Vec<Object>,
    /// Common prefixes (with the delimiter at their end).
    pub prefixes: Vec<String>,
}

/// The endpoint from `STORAGE_EMULATOR_HOST`, else [`DEFAULT_ENDPOINT`].
pub fn endpoint_from_env() -> String {
    match std::env::var("STORAGE_EMULATOR_HOST") {
        Ok(v) if !v.trim().is_empty() => endpoint_of(v.trim()),
        _ => DEFAULT_ENDPOINT.to_owned(),
    }
}

fn endpoint_of(host: &str) -> String {
    let e = if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    };
    e.trim_end_matches('/').to_owned()
}

/// `gs://BUCKET/PREFIX` → (bucket, prefix).
pub fn parse_url(url: &str) -> Result<(String, String), Error> {
    let rest = url
        .strip_prefix("gs://")
        .ok_or_else(|| Error::Address(format!("{url}: expected gs://BUCKET/PREFIX")))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Address(format!("{url}: no bucket")));
    }
    Ok((bucket.to_owned(), prefix.to_owned()))
}

/// Percent-encodes all but RFC 3986's unreserved characters (`/` too: an object name is one
/// path segment of the JSON API).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

struct Inner {
    runtime: tokio::runtime::Runtime,
    http: HyperClient<Https, Empty<Bytes>>,
    endpoint: String,
    retry: Retry,
}

/// A blocking client of the GCS JSON API (it runs its own small runtime): anonymous, for
/// public buckets.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.inner.endpoint)
            .finish()
    }
}

impl Client {
    /// A client of `endpoint` (`https://storage.googleapis.com`, or an emulator's URL). Must
    /// not be called from inside an async runtime.
    pub fn new(endpoint: &str, retry: Retry) -> Result<Client, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gcs")
            .enable_all()
            .build()
            .map_err(|e| Error::Tls(format!("cannot start the runtime: {e}")))?;
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| Error::Tls(format!("no TLS root certificates: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new()).build(https);
        Ok(Client {
            inner: Arc::new(Inner {
                runtime,
                http,
                endpoint: endpoint_of(endpoint),
                retry: Retry {
                    attempts: retry.attempts.max(1),
                    ..retry
                },
            }),
        })
    }

    /// The endpoint requests go to.
    pub fn endpoint(&self) -> &str {
        &self.inner.endpoint
    }

    /// Every object under `prefix` (below any delimiter too when `delimiter` is `None`),
    /// following `nextPageToken` to the last page.
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
    ) -> Result<Listing, Error> {
        let what = format!("listing gs://{bucket}/{prefix}");
        let mut listing = Listing::default();
        let mut token: Option<String> = None;
        loop {
            let mut url = format!(
                "{}/storage/v1/b/{}/o?prefix={}&maxResults=1000&fields=items(name,size,generation),prefixes,nextPageToken",
                self.inner.endpoint,
                encode(bucket),
                encode(prefix)
            );
            if let Some(d) = delimiter {
                url.push_str(&format!("&delimiter={}", encode(d)));
            }
            if let Some(t) = &token {
                url.push_str(&format!("&pageToken={}", encode(t)));
            }
            let body = self.get_body(&what, &url, MAX_SMALL)?;
            let page: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| Error::Answer {
                    what: what.clone(),
                    reason: format!("not a JSON object listing: {e}"),
                })?;
            for item in page["items"].as_array().into_iter().flatten() {
                let name = item["name"].as_str().ok_or_else(|| Error::Answer {
                    what: what.clone(),
                    reason: "an item without a name".into(),
                })?;
                // The JSON API writes 64-bit numbers as strings.
                let number = |v: &serde_json::Value| {
                    v.as_str()
                        .and_then(|s| s.parse::<u64>().ok())
                        .or_else(|| v.as_u64())
                };
                listing.objects.push(Object {
                    name: name.to_owned(),
                    size: number(&item["size"]).unwrap_or(0),
                    generation: match &item["generation"] {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => String::new(),
                    },
                });
            }
            for p in page["prefixes"].as_array().into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    listing.prefixes.push(p.to_owned());
                }
            }
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() && token.as_deref() != Some(t) => {
                    token = Some(t.to_owned())
                }
                _ => break,
            }
        }
        listing.objects.sort_by(|a, b| a.name.cmp(&b.name));
        listing.prefixes.sort();
        Ok(listing)
    }

    /// A small object whole (at most 4 MiB); `None` if there is no such object.
    pub fn get_small(&self, bucket: &str, name: &str) -> Result<Option<Vec<u8>>, Error> {
        let what = format!("gs://{bucket}/{name}");
        match self.get_body(&what, &self.media_url(bucket, name, None), MAX_SMALL) {
            Ok(b) => Ok(Some(b)),
            Err(Error::Status { status, .. }) if status == http::StatusCode::NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A stream of an object's stored bytes, resumed with `Range` requests if cut off.
    pub fn open(&self, bucket: &str, object: &Object) -> ObjectReader {
        ObjectReader {
            client: self.clone(),
            what: format!("gs://{bucket}/{}", object.name),
            url: self.media_url(
                bucket,
                &object.name,
                Some(&object.generation).filter(|g| !g.is_empty()),
            ),
            size: object.size,
            offset: 0,
            skip: 0,
            body: None,
            pending: Bytes::new(),
            failures: 0,
            done: false,
        }
    }

    fn media_url(&self, bucket: &str, name: &str, generation: Option<&String>) -> String {
        let mut url = format!(
            "{}/storage/v1/b/{}/o/{}?alt=media",
            self.inner.endpoint,
            encode(bucket),
            encode(name)
        );
        if let Some(g) = generation {
            url.push_str(&format!("&generation={}", encode(g)));
        }
        url
    }

    /// GET with retries; the whole body, at most `limit` bytes.
    fn get_body(&self, what: &str, url: &str, limit: usize) -> Result<Vec<u8>, Error> {
        let retry = self.inner.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let response = self.send(what, url, None, attempt)?;
            let result = self.inner.runtime.block_on(async {
                let limited = http_body_util::Limited::new(response.into_body(), limit);
                tokio::time::timeout(STALL * 4, limited.collect()).await
            });
            match result {
                Ok(Ok(body)) => return Ok(body.to_bytes().to_vec()),
                Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(Error::Answer {
                        what: what.to_owned(),
                        reason: format!("larger than {} MiB", limit >> 20),
                    });
                }
                failed if attempt < retry.attempts => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timed out".into(),
                    };
                    tracing::warn!(what, %reason, attempt, "download cut off; retrying");
                    std::thread::sleep(retry.wait(attempt));
                }
                failed => {
                    return Err(Error::Transport {
                        what: what.to_owned(),
                        reason: match failed {
                            Ok(Err(e)) => format!("reading the body: {e}"),
                            _ => "timed out".into(),
                        },
                        attempts: attempt,
                    });
                }
            }
        }
    }

    /// Sends a GET (from byte `from`, if given), retrying connection failures, 429 and 5xx
    /// with backoff; `attempt` is the number of the first attempt (earlier ones were made by
    /// the caller). Answers 2xx (and 416 for a range past the end).
    fn send(
        &self,
        what: &str,
        url: &str,
        from: Option<u64>,
        mut attempt: u32,
    ) -> Result<http::Response<Incoming>, Error> {
        let retry = self.inner.retry;
        loop {
            let mut request = http::Request::get(url)
                .header(http::header::ACCEPT_ENCODING, "gzip")
                .header(
                    http::header::USER_AGENT,
                    concat!("whakapapa-collector/", env!("CARGO_PKG_VERSION")),
                );
            if let Some(from) = from.filter(|&f| f > 0) {
                request = request.header(http::header::RANGE, format!("bytes={from}-"));
            }
            let request = request
                .body(Empty::new())
                .map_err(|e| Error::Address(format!("{url}: {e}")))?;
            let sent = self.inner.runtime.block_on(async {
                tokio::time::timeout(STALL, self.inner.http.request(request)).await
            });
            let reason = match sent {
                Ok(Ok(r))
                    if r.status().is_success()
                        || r.status() == http::StatusCode::RANGE_NOT_SATISFIABLE =>
                {
                    return Ok(r);
                }
                Ok(Ok(r))
                    if r.status().is_server_error()
                        || r.status() == http::StatusCode::TOO_MANY_REQUESTS
                        || r.status() == http::StatusCode::REQUEST_TIMEOUT =>
                {
                    format!("server answered {}", r.status())
                }
                Ok(Ok(r)) => {
                    return Err(Error::Status {
                        what: what.to_owned(),
                        status: r.status(),
                    });
                }
                Ok(Err(e)) => format!("request failed: {e}"),
                Err(_) => format!("no answer in {} s", STALL.as_secs()),
            };
            if attempt >= retry.attempts {
                return Err(Error::Transport {
                    what: what.to_owned(),
                    reason,
                    attempts: attempt,
                });
            }
            tracing::warn!(what, %reason, attempt, "GCS request failed; retrying");
            std::thread::sleep(retry.wait(attempt));
            attempt += 1;
        }
    }
}

/// An object's bytes as a blocking stream (see [`Client::open`]).
pub struct ObjectReader {
    client: Client,
    what: String,
    url: String,
    /// Stored size, as listed.
    size: u64,
    /// Bytes handed out so far.
    offset: u64,
    /// Bytes of the current body to drop (a server that ignored our `Range`).
    skip: u64,
    body: Option<Incoming>,
    pending: Bytes,
    /// Failures since the last byte came in.
    failures: u32,
    done: bool,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("what", &self.what)
            .field("offset", &self.offset)
            .finish()
    }
}

impl ObjectReader {
    /// Opens (or reopens from `offset`) the body.
    fn connect(&mut self) -> io::Result<()> {
        let response = self
            .client
            .send(&self.what, &self.url, Some(self.offset), self.failures + 1)
            .map_err(io::Error::other)?;
        self.skip = 0;
        match response.status() {
            http::StatusCode::PARTIAL_CONTENT => {}
            http::StatusCode::RANGE_NOT_SATISFIABLE => {
                self.done = true;
                return Ok(());
            }
            // The whole object again: drop what was handed out already.
            _ => self.skip = self.offset,
        }
        self.body = Some(response.into_body());
        Ok(())
    }

    /// A failure while reading the body: retry from `offset` after a backoff, or give up.
    fn cut_off(&mut self, reason: String) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        let retry = self.client.inner.retry;
        if self.failures >= retry.attempts {
            return Err(io::Error::other(Error::Transport {
                what: self.what.clone(),
                reason: format!("{reason} at byte {}", self.offset),
                attempts: self.failures,
            }));
        }
        tracing::warn!(what = %self.what, %reason, offset = self.offset, "download cut off; resuming");
        std::thread::sleep(retry.wait(self.failures));
        Ok(())
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.pending.is_empty() {
                let n = buf.len().min(self.pending.len());
                buf[..n].copy_from_slice(&self.pending[..n]);
                let _ = self.pending.split_to(n);
                self.offset += n as u64;
                return Ok(n);
            }
            if self.done || buf.is_empty() {
                return Ok(0);
            }
            let Some(body) = self.body.as_mut() else {
                self.connect()?;
                continue;
            };
            let next = self
                .client
                .inner
                .runtime
                .block_on(async { tokio::time::timeout(STALL, body.frame()).await });
            match next {
                Ok(Some(Ok(frame))) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers
                    };
                    if self.skip > 0 {
                        let drop = (self.skip as usize).min(data.len());
                        let _ = data.split_to(drop);
                        self.skip -= drop as u64;
                    }
                    if !data.is_empty() {
                        self.failures = 0;
                        self.pending = data;
                    }
                }
                Ok(None) if self.offset >= self.size || self.size == 0 => {
                    self.body = None;
                    self.done = true;
                }
                // The body ended before the listed size: the connection was cut cleanly.
                Ok(None) => self.cut_off(format!(
                    "body ended at {} of {} bytes",
                    self.offset, self.size
                ))?,
                Ok(Some(Err(e))) => self.cut_off(format!("reading the body: {e}"))?,
                Err(_) => self.cut_off(format!("no data in {} s", STALL.as_secs()))?,
            }
        }
    }
}

/// A Prow build's directory, or a prefix given by URL that is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Bucket.
    pub bucket: String,
    /// Directory, ending in `/` (or empty: the whole bucket).
    pub prefix: String,
    /// A Prow build (has `started.json`, `finished.json` or `prowjob.json`): job and build id
    /// from the path `.../JOB/BUILD/`.
    pub prow: Option<(String, String)>,
}

/// `logs/JOB/BUILD/` of `--prow-job JOB --build BUILD` (`latest` reads
/// `logs/JOB/latest-build.txt`).
pub fn prow_build(client: &Client, bucket: &str, job: &str, build: &str) -> Result<Target, Error> {
    if job.is_empty() || job.contains('/') {
        return Err(Error::Address(format!("{job:?} is not a Prow job name")));
    }
    let build = if build == "latest" {
        latest_build(client, bucket, &format!("logs/{job}/"))?
    } else {
        build.to_owned()
    };
    Ok(Target {
        bucket: bucket.to_owned(),
        prefix: format!("logs/{job}/{build}/"),
        prow: Some((job.to_owned(), build)),
    })
}

/// The build id in `JOBDIR/latest-build.txt`.
fn latest_build(client: &Client, bucket: &str, job_dir: &str) -> Result<String, Error> {
    let name = format!("{job_dir}latest-build.txt");
    let what = format!("gs://{bucket}/{name}");
    let text = client
        .get_small(bucket, &name)?
        .ok_or_else(|| Error::Answer {
            what: what.clone(),
            reason: "no such object: is the job name right, and does the job run in this bucket?"
                .into(),
        })?;
    let id = String::from_utf8_lossy(&text).trim().to_owned();
    if id.is_empty() || id.contains('/') || id.chars().any(char::is_whitespace) {
        return Err(Error::Answer {
            what,
            reason: format!("{id:?} is not a build id"),
        });
    }
    Ok(id)
}

/// What `gs://BUCKET/PREFIX` is: a build's directory (it holds `started.json`,
/// `finished.json` or `prowjob.json`), a job's (it holds `latest-build.txt`: the newest build
/// is read), or any other prefix (its audit-looking objects are read).
pub fn resolve_url(client: &Client, url: &str) -> Result<Target, Error> {
    let (bucket, mut prefix) = parse_url(url)?;
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let top = client.list(&bucket, &prefix, Some("/"))?;
    let has = |file: &str| top.objects.iter().any(|o| o.name[prefix.len()..] == *file);
    if has("started.json") || has("finished.json") || has("prowjob.json") {
        let parts: Vec<&str> = prefix.trim_end_matches('/').rsplit('/').collect();
        let prow = match parts.as_slice() {
            [build, job, ..] => Some(((*job).to_owned(), (*build).to_owned())),
            [build] => Some((String::new(), (*build).to_owned())),
            [] => None,
        };
        return Ok(Target {
            bucket,
            prefix,
            prow,
        });
    }
    if has("latest-build.txt") {
        let build = latest_build(client, &bucket, &prefix)?;
        let job = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        return Ok(Target {
            prefix: format!("{prefix}{build}/"),
            bucket,
            prow: Some((job, build)),
        });
    }
    Ok(Target {
        bucket,
        prefix,
        prow: None,
    })
}

/// Files of a Prow build that describe it and are never audit events.
const PROW_FILES: &[&str] = &[
    "started.json",
    "finished.json",
    "prowjob.json",
    "podinfo.json",
    "metadata.json",
    "clone-records.json",
];

/// Whether an object (its name relative to the target's prefix) is to be read as audit
/// events: `glob` if given; else in a Prow build the audit logs kind jobs
/// (`artifacts/.../audit/*.log`) and GCE jobs (`*kube-apiserver-audit.log*`, rotated, maybe
/// gzipped) keep; else any audit-looking file.
pub fn wanted(relative: &str, prow: bool, glob: Option<&str>) -> bool {
    if let Some(g) = glob {
        return glob_match(g.as_bytes(), relative.as_bytes());
    }
    let (dir, file) = relative.rsplit_once('/').unwrap_or(("", relative));
    if PROW_FILES.contains(&file) && !dir.contains('/') {
        return false;
    }
    if !prow {
        return looks_like_input(file);
    }
    if !relative.starts_with("artifacts/") {
        return false;
    }
    let in_audit_dir = dir == "artifacts/audit" || dir.ends_with("/audit");
    (in_audit_dir && looks_like_input(file)) || file.contains("kube-apiserver-audit.log")
}

/// Shell-style glob over a `/`-separated name: `*` is any run within a segment, `**` any
/// run across segments, `?` one character (not `/`).
pub fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match pattern {
        [] => name.is_empty(),
        // `**/x` also matches `x` at the top.
        [b'*', b'*', rest @ ..] => {
            (0..=name.len()).any(|i| glob_match(rest, &name[i..]))
                || rest
                    .strip_prefix(b"/")
                    .is_some_and(|top| glob_match(top, name))
        }
        [b'*', rest @ ..] => {
            let end = name.iter().position(|&b| b == b'/').unwrap_or(name.len());
            (0..=end).any(|i| glob_match(rest, &name[i..]))
        }
        [b'?', rest @ ..] => {
            name.first().is_some_and(|&b| b != b'/') && glob_match(rest, &name[1..])
        }
        [c, rest @ ..] => name.first() == Some(c) && glob_match(rest, &name[1..]),
    }
}

/// What a build's metadata files say of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildInfo {
    /// `prowjob.json` `spec.job`.
    pub job: Option<String>,
    /// `finished.json` `result` (else `passed`, else `prowjob.json` `status.state`).
    pub result: Option<String>,
    /// Kubernetes version: `finished.json` `metadata.job-version` (else its `job-version` or
    /// `version`, else kind's `kubernetes-version.txt`, else `started.json` `repo-version`).
    pub version: Option<String>,
    /// Kubernetes commit: `started.json` `repo-commit` (else `finished.json` `revision`, else
    /// the `+hash` of the version).
    pub commit: Option<String>,
    /// `started.json` `timestamp`, RFC 3339.
    pub started_at: Option<String>,
    /// `finished.json` `timestamp`, RFC 3339.
    pub finished_at: Option<String>,
    /// `finished.json` is there.
    pub finished: bool,
}

/// Reads a build's `started.json`, `finished.json`, `prowjob.json` and kind's
/// `kubernetes-version.txt` (each `None` if absent). A file that is not JSON is an error naming
/// it.
pub fn build_info(
    started: Option<(&str, &[u8])>,
    finished: Option<(&str, &[u8])>,
    prowjob: Option<(&str, &[u8])>,
    kind_version: Option<&[u8]>,
) -> Result<BuildInfo, Error> {
    let json = |f: Option<(&str, &[u8])>| -> Result<serde_json::Value, Error> {
        match f {
            None => Ok(serde_json::Value::Null),
            Some((what, bytes)) => serde_json::from_slice(bytes).map_err(|e| Error::Answer {
                what: what.to_owned(),
                reason: format!("not JSON: {e}"),
            }),
        }
    };
    let (s, f, p) = (json(started)?, json(finished)?, json(prowjob)?);
    let text = |v: &serde_json::Value| {
        v.as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let time = |v: &serde_json::Value| {
        let secs = v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))?;
        jiff::Timestamp::from_second(secs)
            .ok()
            .map(|t| t.to_string())
    };
    let version = text(&f["metadata"]["job-version"])
        .or_else(|| text(&f["job-version"]))
        .or_else(|| text(&f["version"]))
        .or_else(|| {
            kind_version
                .map(|b| String::from_utf8_lossy(b).trim().to_owned())
                .filter(|v| !v.is_empty())
        })
        .or_else(|| text(&s["repo-version"]));
    let commit = text(&s["repo-commit"])
        .or_else(|| text(&f["revision"]))
        .or_else(|| text(&f["metadata"]["revision"]))
        .or_else(|| {
            version
                .as_deref()
                .and_then(|v| v.rsplit_once('+'))
                .map(|(_, h)| h.to_owned())
        });
    let result = text(&f["result"])
        .or_else(|| {
            f["passed"]
                .as_bool()
                .map(|p| if p { "SUCCESS" } else { "FAILURE" }.to_owned())
        })
        .or_else(|| text(&p["status"]["state"]).map(|s| s.to_uppercase()));
    Ok(BuildInfo {
        job: text(&p["spec"]["job"]),
        result,
        version,
        commit,
        started_at: time(&s["timestamp"]),
        finished_at: time(&f["timestamp"]),
        finished: finished.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_and_urls() {
        assert_eq!(endpoint_of("127.0.0.1:4443"), "http://127.0.0.1:4443");
        assert_eq!(endpoint_of("https://gcs.example/"), "https://gcs.example");
        assert_eq!(
            parse_url("gs://kubernetes-ci-logs/logs/job/1").unwrap(),
            ("kubernetes-ci-logs".into(), "logs/job/1".into())
        );
        assert_eq!(parse_url("gs://b").unwrap(), ("b".into(), String::new()));
        assert!(parse_url("s3://b/x").is_err());
        assert!(parse_url("gs:///x").is_err());
        assert_eq!(encode("logs/a b+c.log"), "logs%2Fa%20b%2Bc.log");
    }

    #[test]
    fn audit_logs_among_artifacts() {
        for (name, want) in [
            ("artifacts/audit/audit.log", true),
            ("artifacts/audit/audit-2026-11-20T10-00-00.log.gz", true),
            ("artifacts/logs/kind-control-plane/audit/audit.log", true),
            (
                "artifacts/cluster-logs/bootstrap-e2e-master/kube-apiserver-audit.log",
                true,
            ),
            (
                "artifacts/cluster-logs/bootstrap-e2e-master/kube-apiserver-audit.log-20261120-1.gz",
                true,
            ),
            (
                "artifacts/cluster-logs/bootstrap-e2e-master/kube-apiserver.log",
                false,
            ),
            (
                "artifacts/logs/kind-control-plane/kubernetes-version.txt",
                false,
            ),
            ("artifacts/junit_01.xml", false),
            ("build-log.txt", false),
            ("started.json", false),
            ("finished.json", false),
            ("prowjob.json", false),
        ] {
            assert_eq!(wanted(name, true, None), want, "{name}");
        }
        assert!(wanted("events.json", false, None));
        assert!(!wanted("started.json", false, None));
        assert!(wanted(
            "artifacts/x/y/apiserver.jsonl",
            true,
            Some("artifacts/**/*.jsonl")
        ));
        assert!(!wanted(
            "artifacts/x/apiserver.log",
            true,
            Some("artifacts/*/*.jsonl")
        ));
        assert!(glob_match(b"artifacts/*.log", b"artifacts/a.log"));
        assert!(!glob_match(b"artifacts/*.log", b"artifacts/x/a.log"));
        assert!(glob_match(b"**/audit?.log", b"a/b/audit1.log"));
        assert!(glob_match(b"**", b"a/b"));
    }

    #[test]
    fn build_metadata() {
        let info = build_info(
            Some(("started.json", br#"{"timestamp": 1795687200, "repo-commit": "0123abcd4567"}"#)),
            Some((
                "finished.json",
                br#"{"timestamp": 1795690800, "passed": true, "result": "SUCCESS", "metadata": {"job-version": "v1.36.0-alpha.1.23+0123abcd"}}"#,
            )),
            Some(("prowjob.json", br#"{"spec": {"job": "ci-kubernetes-audit-kind-conformance"}, "status": {"state": "success"}}"#)),
            None,
        )
        .unwrap();
        assert_eq!(
            info.job.as_deref(),
            Some("ci-kubernetes-audit-kind-conformance")
        );
        assert_eq!(info.result.as_deref(), Some("SUCCESS"));
        assert_eq!(info.version.as_deref(), Some("v1.36.0-alpha.1.23+0123abcd"));
        assert_eq!(info.commit.as_deref(), Some("0123abcd4567"));
        assert_eq!(info.started_at.as_deref(), Some("2026-11-26T10:00:00Z"));
        assert_eq!(info.finished_at.as_deref(), Some("2026-11-26T11:00:00Z"));
        assert!(info.finished);
        // Still running: kind's version file, the commit from the version.
        let info = build_info(None, None, None, Some(b"v1.36.1+feedbeef\n")).unwrap();
        assert_eq!(info.version.as_deref(), Some("v1.36.1+feedbeef"));
        assert_eq!(info.commit.as_deref(), Some("feedbeef"));
        assert!(!info.finished && info.result.is_none());
        let bad = build_info(
            None,
            Some(("gs://b/logs/j/1/finished.json", b"{")),
            None,
            None,
        );
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("gs://b/logs/j/1/finished.json")
        );
    }
}
