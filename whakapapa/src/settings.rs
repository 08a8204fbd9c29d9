//! What the layer does, from code or from the environment: [`Settings`].
//!
//! ```
//! use whakapapa::Settings;
//! let settings = Settings::from_env(whakapapa::identity!()).with_queue_capacity(4096);
//! # drop(settings);
//! ```

use crate::identity::Identity;
use std::path::PathBuf;

/// Switches purpose on when set to anything but empty, `0`, `false`, `no` or `off`.
pub const ENV_SUBMIT_PURPOSE: &str = "KUBE_CLIENT_SUBMIT_PURPOSE";
/// Base URL of the collector, `http://host[:port][/path]`; full purposes are posted to
/// `{url}/purposes`.
pub const ENV_COLLECTOR_URL: &str = "WHAKAPAPA_COLLECTOR_URL";
/// A file full purposes are appended to as JSON lines.
pub const ENV_SPOOL: &str = "WHAKAPAPA_SPOOL";
/// Side-channel queue length, a whole number from 1 to [`QUEUE_CAPACITY_MAX`].
pub const ENV_QUEUE_CAPACITY: &str = "WHAKAPAPA_QUEUE_CAPACITY";
/// With purpose off, `1`, `true`, `yes` or `on` sends the identity alone as the `User-Agent`
/// (as client-go programs always do); `0`, `false`, `no`, `off` or unset sends nothing.
pub const ENV_IDENTITY: &str = "WHAKAPAPA_IDENTITY";

/// The side-channel queue length unless set otherwise.
pub const QUEUE_CAPACITY_DEFAULT: usize = 1024;
/// The longest side-channel queue: its slots are allocated up front.
pub const QUEUE_CAPACITY_MAX: usize = 65_536;

/// A setting given in code that whakapapa cannot use.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// The collector URL is not a URL.
    #[error("collector URL {url:?} is not a valid URL")]
    CollectorUrl {
        /// The value given.
        url: String,
        /// Why it does not parse.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The collector URL is not a plain `http://host[:port][/path]` URL.
    #[error("collector URL {url:?} must be an http:// URL with a host")]
    CollectorScheme {
        /// The value given.
        url: String,
    },
}

/// What the layer does: whether purpose is on, who the program is and where full purposes go.
/// Built by [`Settings::new`], [`Settings::off`] or [`Settings::from_env`] and the `with_…`
/// builders, which check every value; read through the accessors.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Attach identity and purpose to requests; off, the layer changes nothing.
    pub(crate) purpose: bool,
    /// Who the program is.
    pub(crate) identity: Identity,
    /// Collector base URL for full purposes.
    pub(crate) collector_url: Option<http::Uri>,
    /// File full purposes are appended to.
    pub(crate) spool: Option<PathBuf>,
    /// Side-channel queue length (at most [`QUEUE_CAPACITY_MAX`]); records beyond it are
    /// dropped and counted.
    pub(crate) queue_capacity: usize,
    /// With purpose off, still send the identity as the `User-Agent` of requests that have
    /// none (no purpose, no fingerprint, no `Audit-ID`); with purpose on it changes nothing.
    pub(crate) identity_when_off: bool,
    /// Environment values [`Settings::from_vars`] could not use: where the layer's
    /// [`Stats::settings_rejected`](crate::Stats) starts.
    pub(crate) rejected: u64,
}

impl Settings {
    /// Purpose on, no side channel.
    pub fn new(identity: Identity) -> Self {
        Self {
            purpose: true,
            identity,
            collector_url: None,
            spool: None,
            queue_capacity: QUEUE_CAPACITY_DEFAULT,
            identity_when_off: false,
            rejected: 0,
        }
    }

    /// Purpose off: the layer is a pass-through.
    pub fn off(identity: Identity) -> Self {
        Self {
            purpose: false,
            ..Self::new(identity)
        }
    }

    /// Reads [`ENV_SUBMIT_PURPOSE`], then, when it switches purpose on, [`ENV_COLLECTOR_URL`],
    /// [`ENV_SPOOL`] and [`ENV_QUEUE_CAPACITY`], and when it leaves purpose off,
    /// [`ENV_IDENTITY`] (a value other than `1`, `true`, `yes`, `on`, `0`, `false`, `no`,
    /// `off` is rejected as below, and the identity is not sent). Never fails: a value it cannot use (a
    /// collector URL that is not `http://host[:port][/path]`, a spool file this process cannot
    /// create or append to, a capacity that is not a whole number from 1 to
    /// [`QUEUE_CAPACITY_MAX`]) is logged once as a `tracing` warning naming the variable, the
    /// value and the rule, counted in [`Stats::settings_rejected`](crate::Stats), and only
    /// that part is left off (that sink, or the default capacity); requests still get
    /// identity and purpose. An empty value counts as unset.
    pub fn from_env(identity: Identity) -> Self {
        Self::from_vars(identity, |name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), reading variables through `var`.
    pub fn from_vars(identity: Identity, var: impl Fn(&str) -> Option<String>) -> Self {
        let purpose = var(ENV_SUBMIT_PURPOSE).is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            !matches!(v.as_str(), "" | "0" | "false" | "no" | "off")
        });
        let mut settings = Self {
            purpose,
            ..Self::new(identity)
        };
        if !purpose {
            // Switched off changes nothing, not even a warning about a side-channel setting;
            // only the identity can be asked for.
            if let Some(value) = var(ENV_IDENTITY).filter(|v| !v.trim().is_empty()) {
                match value.trim().to_ascii_lowercase().as_str() {
                    "1" | "true" | "yes" | "on" => settings.identity_when_off = true,
                    "0" | "false" | "no" | "off" => {}
                    _ => settings.reject(
                        ENV_IDENTITY,
                        &value,
                        "must be 1, true, yes or on (send the identity) or 0, false, no or off",
                        &"not a switch",
                        "the identity is not sent and requests go out unchanged",
                    ),
                }
            }
            return settings;
        }
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        if let Some(url) = set(ENV_COLLECTOR_URL) {
            match settings.clone().with_collector_url(&url) {
                Ok(with) => settings = with,
                Err(err) => {
                    let reason = match &err {
                        SettingsError::CollectorUrl { source, .. } => source.to_string(),
                        SettingsError::CollectorScheme { .. } => "no http scheme or host".into(),
                    };
                    settings.reject(
                        ENV_COLLECTOR_URL,
                        &url,
                        "must be an http://host[:port][/path] URL",
                        &reason,
                        "full purposes are not posted to a collector, requests still carry identity and purpose",
                    );
                }
            }
        }
        if let Some(spool) = set(ENV_SPOOL) {
            // Opened now, so that a path it can never write is one warning, not one per batch.
            let opened = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&spool);
            match opened {
                Ok(_) => settings.spool = Some(spool.into()),
                Err(err) => settings.reject(
                    ENV_SPOOL,
                    &spool,
                    "must be a file this process can create or append to",
                    &err,
                    "full purposes are not spooled, requests still carry identity and purpose",
                ),
            }
        }
        if let Some(capacity) = set(ENV_QUEUE_CAPACITY) {
            let reason = match capacity.trim().parse::<usize>() {
                Ok(n) if (1..=QUEUE_CAPACITY_MAX).contains(&n) => {
                    settings.queue_capacity = n;
                    None
                }
                Ok(n) => Some(format!("{n} is out of range")),
                Err(err) => Some(err.to_string()),
            };
            if let Some(reason) = reason {
                settings.reject(
                    ENV_QUEUE_CAPACITY,
                    &capacity,
                    &format!("must be a whole number from 1 to {QUEUE_CAPACITY_MAX}"),
                    &reason,
                    &format!(
                        "the queue keeps its default length of {}, requests still carry \
                         identity and purpose",
                        settings.queue_capacity
                    ),
                );
            }
        }
        settings
    }

    /// Whether purpose is on.
    pub fn purpose(&self) -> bool {
        self.purpose
    }

    /// Who the program is.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The collector base URL full purposes are posted to, if any.
    pub fn collector_url(&self) -> Option<&http::Uri> {
        self.collector_url.as_ref()
    }

    /// The file full purposes are appended to, if any.
    pub fn spool(&self) -> Option<&std::path::Path> {
        self.spool.as_deref()
    }

    /// The side-channel queue length.
    pub fn queue_capacity(&self) -> usize {
        self.queue_capacity
    }

    /// Whether, with purpose off, requests get the identity as their `User-Agent`.
    pub fn identity_when_off(&self) -> bool {
        self.identity_when_off
    }

    /// Sets whether purpose is on.
    pub fn with_purpose(mut self, on: bool) -> Self {
        self.purpose = on;
        self
    }

    /// Sets whether, with purpose off, requests without a `User-Agent` get the identity as
    /// theirs ([`ENV_IDENTITY`] from the environment).
    pub fn with_identity_when_off(mut self, on: bool) -> Self {
        self.identity_when_off = on;
        self
    }

    /// Posts full purposes to `{url}/purposes`; an error unless `url` is
    /// `http://host[:port][/path]`.
    pub fn with_collector_url(mut self, url: &str) -> Result<Self, SettingsError> {
        let uri: http::Uri = url
            .trim()
            .parse()
            .map_err(|source| SettingsError::CollectorUrl {
                url: url.into(),
                source,
            })?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(SettingsError::CollectorScheme { url: url.into() });
        }
        self.collector_url = Some(uri);
        Ok(self)
    }

    /// Appends full purposes to `path` as JSON lines. A path that cannot be written is found
    /// when records are delivered: counted in [`Stats::sink_failures`](crate::Stats) and
    /// reported by [`PurposeHandle::flush`](crate::PurposeHandle::flush).
    pub fn with_spool(mut self, path: impl Into<PathBuf>) -> Self {
        self.spool = Some(path.into());
        self
    }

    /// Sets the side-channel queue length; 0 is taken as 1 and anything above
    /// [`QUEUE_CAPACITY_MAX`] as that.
    pub fn with_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.clamp(1, QUEUE_CAPACITY_MAX);
        self
    }
}

impl Settings {
    /// An environment value that cannot be used: one warning naming the variable, the value
    /// and the rule, and a count in [`Stats::settings_rejected`](crate::Stats).
    fn reject(
        &mut self,
        variable: &str,
        value: &str,
        rule: &str,
        reason: &dyn std::fmt::Display,
        consequence: &str,
    ) {
        self.rejected += 1;
        tracing::warn!(
            variable,
            value,
            rule,
            reason = %reason,
            "whakapapa: ignoring {variable}={value:?}: it {rule} ({reason}); {consequence}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn id() -> Identity {
        Identity::new("app", "1")
    }

    #[test]
    fn env_switch_table() {
        for (pairs, on) in [
            (&[][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "0")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "False")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, " off ")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "no")][..], false),
            (&[(ENV_SUBMIT_PURPOSE, "1")][..], true),
            (&[(ENV_SUBMIT_PURPOSE, "true")][..], true),
            (&[(ENV_SUBMIT_PURPOSE, "yes")][..], true),
        ] {
            let s = Settings::from_vars(id(), vars(pairs));
            assert_eq!(s.purpose, on, "{pairs:?}");
        }
    }

    #[test]
    fn side_channel_settings_table() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("p.jsonl");
        let spool_text = spool.to_str().unwrap().to_owned();
        let on = Settings::from_vars(id(), |name| match name {
            ENV_SUBMIT_PURPOSE => Some("1".into()),
            ENV_COLLECTOR_URL => Some("http://127.0.0.1:9/x".into()),
            ENV_SPOOL => Some(spool_text.clone()),
            ENV_QUEUE_CAPACITY => Some(" 16 ".into()),
            _ => None,
        });
        assert_eq!(
            on.collector_url.unwrap().to_string(),
            "http://127.0.0.1:9/x"
        );
        assert_eq!(on.spool.unwrap(), spool);
        assert_eq!(on.queue_capacity, 16);
        // Off: side-channel variables are not even read, so a bad one cannot matter.
        let off = Settings::from_vars(id(), vars(&[(ENV_COLLECTOR_URL, "ftp://nope")]));
        assert!(!off.purpose && off.collector_url.is_none() && off.spool.is_none());
    }

    #[test]
    fn bad_env_values_leave_just_their_part_off() {
        for (name, value) in [
            (ENV_COLLECTOR_URL, "ftp://nope"),
            (ENV_COLLECTOR_URL, "https://c:1"),
            (ENV_COLLECTOR_URL, "http://exa mple"),
            (ENV_SPOOL, "/nonexistent-dir-of-whakapapa/p.jsonl"),
            (ENV_QUEUE_CAPACITY, "0"),
            (ENV_QUEUE_CAPACITY, "65537"),
            (ENV_QUEUE_CAPACITY, "lots"),
        ] {
            let s = Settings::from_vars(id(), |n| match n {
                ENV_SUBMIT_PURPOSE => Some("1".into()),
                n if n == name => Some(value.into()),
                _ => None,
            });
            assert!(s.purpose, "{name}={value}");
            assert!(
                s.collector_url.is_none() && s.spool.is_none(),
                "{name}={value}"
            );
            assert_eq!(s.queue_capacity, QUEUE_CAPACITY_DEFAULT, "{name}={value}");
        }
    }

    #[test]
    fn identity_switch_table() {
        for (value, want) in [
            (None, false),
            (Some(""), false),
            (Some("1"), true),
            (Some(" TRUE "), true),
            (Some("yes"), true),
            (Some("on"), true),
            (Some("0"), false),
            (Some("off"), false),
            (Some("no"), false),
            (Some("maybe"), false),
            (Some("2"), false),
        ] {
            let s = Settings::from_vars(id(), |n| {
                (n == ENV_IDENTITY)
                    .then(|| value.map(str::to_owned))
                    .flatten()
            });
            assert!(!s.purpose, "{value:?}");
            assert_eq!(s.identity_when_off, want, "{value:?}");
        }
        // With purpose on the identity is sent anyway; the variable is not read.
        let on = Settings::from_vars(id(), |n| match n {
            ENV_SUBMIT_PURPOSE => Some("1".into()),
            ENV_IDENTITY => Some("garbage".into()),
            _ => None,
        });
        assert!(on.purpose && !on.identity_when_off);
    }

    #[test]
    fn bad_collector_urls_are_errors_from_code() {
        for (url, want) in [
            ("https://c:1", "must be an http:// URL"),
            ("/purposes", "must be an http:// URL"),
            ("http://exa mple", "is not a valid URL"),
        ] {
            let err = Settings::new(id()).with_collector_url(url).unwrap_err();
            assert!(err.to_string().contains(want), "{url}: {err}");
            assert!(err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn queue_capacity_from_code_is_clamped() {
        assert_eq!(Settings::new(id()).with_queue_capacity(0).queue_capacity, 1);
        assert_eq!(
            Settings::new(id())
                .with_queue_capacity(usize::MAX)
                .queue_capacity,
            QUEUE_CAPACITY_MAX
        );
    }
}
