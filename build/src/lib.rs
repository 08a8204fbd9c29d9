//! Build-script helper for [whakapapa](https://docs.rs/whakapapa): records the application's
//! git commit, who built it and when, for `whakapapa::identity!()`. It has no dependencies, so
//! putting it under `[build-dependencies]` costs one small crate, not a second build of kube.
//!
//! # Example
//!
//! ```toml
//! [build-dependencies]
//! whakapapa-build = "0.1"
//! ```
//!
//! In `build.rs`, `fn main` calls it:
//!
//! ```no_run
//! whakapapa_build::emit();
//! ```
//!
//! Uses only the standard library and `git` on `PATH`; anything it cannot learn is left out and
//! the identity says `unknown`. The build time is `SOURCE_DATE_EPOCH` when set, so reproducible
//! builds stay reproducible. A variable from [`vars`] already set in the environment of
//! `cargo build` (a CI job that knows the commit, a source tarball without `.git`) wins over
//! what this crate would learn.

use std::process::Command;

/// Names of the compile-time variables [`emit`] sets and `whakapapa::identity!()` reads; set
/// in the environment of `cargo build` they work without a build script too.
pub mod vars {
    /// Short git commit of the application's source (`git rev-parse --short HEAD`).
    pub const COMMIT: &str = "WHAKAPAPA_GIT_COMMIT";
    /// `user@host` that built the application.
    pub const BUILT_BY: &str = "WHAKAPAPA_BUILT_BY";
    /// RFC 3339 UTC build time (from `SOURCE_DATE_EPOCH` when set).
    pub const BUILT_AT: &str = "WHAKAPAPA_BUILT_AT";
}

/// What a build knows about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BuildFacts {
    /// Short git commit.
    pub commit: Option<String>,
    /// Name of the user running the build.
    pub user: Option<String>,
    /// Host name of the build machine.
    pub host: Option<String>,
    /// Build time as Unix seconds.
    pub time: Option<i64>,
    /// Problems worth a `cargo:warning`.
    pub warnings: Vec<String>,
    /// The git directory, whose `HEAD` changes should re-run the build script.
    pub git_dir: Option<String>,
}

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl BuildFacts {
    /// Learns the facts from git, the environment and the clock.
    pub fn gather() -> Self {
        let mut facts = Self {
            commit: run("git", &["rev-parse", "--short", "HEAD"]),
            git_dir: run("git", &["rev-parse", "--absolute-git-dir"]),
            user: env("USER").or_else(|| env("USERNAME")),
            host: env("HOSTNAME")
                .or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|s| s.trim().to_owned())
                })
                .filter(|s| !s.is_empty())
                .or_else(|| run("hostname", &[])),
            ..Self::default()
        };
        match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(raw) => match raw.trim().parse::<i64>() {
                Ok(secs) => facts.time = Some(secs),
                Err(_) => facts.warnings.push(format!(
                    "whakapapa: SOURCE_DATE_EPOCH={raw:?} is not a number of seconds; build time left out"
                )),
            },
            Err(_) => {
                facts.time = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .and_then(|d| i64::try_from(d.as_secs()).ok());
            }
        }
        facts
    }

    /// The `cargo:` lines that hand these facts to the crate being built. A fact whose
    /// variable is already set in the environment of the build is not emitted: the
    /// environment wins, and the crate sees it as it is.
    pub fn instructions(&self) -> Vec<String> {
        self.instructions_with(|name| env(name).is_some())
    }

    /// As [`instructions`](Self::instructions), asking `preset` whether a variable is already
    /// set in the build's environment.
    pub fn instructions_with(&self, preset: impl Fn(&str) -> bool) -> Vec<String> {
        let mut out = vec!["cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH".to_owned()];
        for name in [vars::COMMIT, vars::BUILT_BY, vars::BUILT_AT] {
            out.push(format!("cargo:rerun-if-env-changed={name}"));
        }
        if let Some(dir) = &self.git_dir {
            out.push(format!("cargo:rerun-if-changed={dir}/HEAD"));
            out.push(format!("cargo:rerun-if-changed={dir}/refs/heads"));
        }
        if let Some(commit) = &self.commit
            && !preset(vars::COMMIT)
        {
            out.push(format!("cargo:rustc-env={}={commit}", vars::COMMIT));
        }
        let by = match (&self.user, &self.host) {
            (Some(u), Some(h)) => Some(format!("{u}@{h}")),
            (Some(u), None) => Some(u.clone()),
            (None, Some(h)) => Some(format!("unknown@{h}")),
            (None, None) => None,
        };
        if let Some(by) = by
            && !preset(vars::BUILT_BY)
        {
            // A space would make the identity ambiguous; the user agent keeps it printable.
            out.push(format!(
                "cargo:rustc-env={}={}",
                vars::BUILT_BY,
                by.replace(' ', "_")
            ));
        }
        if let Some(at) = self.time.and_then(rfc3339_utc)
            && !preset(vars::BUILT_AT)
        {
            out.push(format!("cargo:rustc-env={}={at}", vars::BUILT_AT));
        }
        for w in &self.warnings {
            out.push(format!("cargo:warning={w}"));
        }
        out
    }
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`, for years 0 to 9999 (a wrong clock past that is
/// left out rather than written in a shape parsers reject).
pub fn rfc3339_utc(secs: i64) -> Option<String> {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil, on the proleptic Gregorian calendar.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    Some(format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// Prints the `cargo:` instructions for `whakapapa::identity!()`; call it from `build.rs`.
pub fn emit() {
    for line in BuildFacts::gather().instructions() {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_table() {
        let full = BuildFacts {
            commit: Some("4f2a9c1".into()),
            user: Some("ci".into()),
            host: Some("runner-4".into()),
            time: Some(1_795_168_800),
            ..BuildFacts::default()
        };
        let lines = full.instructions_with(|_| false);
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_GIT_COMMIT=4f2a9c1".to_owned()));
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_BY=ci@runner-4".to_owned()));
        assert!(
            lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_AT=2026-11-20T10:00:00Z".to_owned()),
            "{lines:?}"
        );

        let empty = BuildFacts::default().instructions_with(|_| false);
        assert!(
            empty
                .iter()
                .all(|l| l.starts_with("cargo:rerun-if-env-changed=")),
            "{empty:?}"
        );

        let odd = BuildFacts {
            user: Some("Jane Doe".into()),
            warnings: vec!["bad".into()],
            ..BuildFacts::default()
        };
        let lines = odd.instructions_with(|_| false);
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_BY=Jane_Doe".to_owned()));
        assert!(lines.contains(&"cargo:warning=bad".to_owned()));
    }

    #[test]
    fn the_environment_wins_over_what_git_says() {
        let full = BuildFacts {
            commit: Some("4f2a9c1".into()),
            user: Some("ci".into()),
            time: Some(0),
            ..BuildFacts::default()
        };
        let lines = full.instructions_with(|name| name == vars::COMMIT);
        assert!(
            !lines.iter().any(|l| l.contains("WHAKAPAPA_GIT_COMMIT=")),
            "{lines:?}"
        );
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_BY=ci".to_owned()));
        assert!(
            lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_AT=1970-01-01T00:00:00Z".to_owned())
        );
        // A change of the preset variable re-runs the script.
        assert!(lines.contains(&"cargo:rerun-if-env-changed=WHAKAPAPA_GIT_COMMIT".to_owned()));
    }

    #[test]
    fn rfc3339_table() {
        for (secs, want) in [
            (0, Some("1970-01-01T00:00:00Z")),
            (951_782_400, Some("2000-02-29T00:00:00Z")),
            (1_795_168_800, Some("2026-11-20T10:00:00Z")),
            (4_107_542_399, Some("2100-02-28T23:59:59Z")),
            (-1, Some("1969-12-31T23:59:59Z")),
            (253_402_300_799, Some("9999-12-31T23:59:59Z")),
            (253_402_300_800, None),
            (i64::MIN / 2, None),
        ] {
            assert_eq!(rfc3339_utc(secs).as_deref(), want, "{secs}");
        }
    }

    #[test]
    fn gathers_this_checkout() {
        let facts = BuildFacts::gather();
        // The test runs inside the repository's git checkout when git is installed.
        if run("git", &["--version"]).is_some() {
            assert!(
                facts.commit.as_deref().is_some_and(|c| c.len() >= 7),
                "{facts:?}"
            );
        }
        if std::env::var_os("SOURCE_DATE_EPOCH").is_none() {
            assert!(facts.time.is_some());
        }
    }
}
