//! Build-script helper: records the application's git commit, who built it and when, for
//! [`identity!`](crate::identity!).
//!
//! # Example
//!
//! In the application's `build.rs` (with `whakapapa` under `[build-dependencies]`):
//!
//! ```no_run
//! // build.rs
//! whakapapa::build::emit();
//! ```
//!
//! Uses only the standard library and `git` on `PATH`; anything it cannot learn is left out and
//! the identity says `unknown`. The build time is `SOURCE_DATE_EPOCH` when set, so reproducible
//! builds stay reproducible.

use crate::identity::vars;
use std::process::Command;

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
            Err(_) => facts.time = jiff::Timestamp::now().as_second().into(),
        }
        facts
    }

    /// The `cargo:` lines that hand these facts to the crate being built.
    pub fn instructions(&self) -> Vec<String> {
        let mut out = vec!["cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH".to_owned()];
        if let Some(dir) = &self.git_dir {
            out.push(format!("cargo:rerun-if-changed={dir}/HEAD"));
            out.push(format!("cargo:rerun-if-changed={dir}/refs/heads"));
        }
        if let Some(commit) = &self.commit {
            out.push(format!("cargo:rustc-env={}={commit}", vars::COMMIT));
        }
        let by = match (&self.user, &self.host) {
            (Some(u), Some(h)) => Some(format!("{u}@{h}")),
            (Some(u), None) => Some(u.clone()),
            (None, Some(h)) => Some(format!("unknown@{h}")),
            (None, None) => None,
        };
        if let Some(by) = by {
            // A space would make the identity ambiguous; the user agent keeps it printable.
            out.push(format!(
                "cargo:rustc-env={}={}",
                vars::BUILT_BY,
                by.replace(' ', "_")
            ));
        }
        if let Some(at) = self.time.and_then(|t| jiff::Timestamp::from_second(t).ok()) {
            out.push(format!("cargo:rustc-env={}={at}", vars::BUILT_AT));
        }
        for w in &self.warnings {
            out.push(format!("cargo:warning={w}"));
        }
        out
    }
}

/// Prints the `cargo:` instructions for [`identity!`](crate::identity!); call it from `build.rs`.
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
        let lines = full.instructions();
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_GIT_COMMIT=4f2a9c1".to_owned()));
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_BY=ci@runner-4".to_owned()));
        assert!(
            lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_AT=2026-11-20T10:00:00Z".to_owned()),
            "{lines:?}"
        );

        let empty = BuildFacts::default().instructions();
        assert_eq!(
            empty,
            vec!["cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH".to_owned()]
        );

        let odd = BuildFacts {
            user: Some("Jane Doe".into()),
            warnings: vec!["bad".into()],
            ..BuildFacts::default()
        };
        let lines = odd.instructions();
        assert!(lines.contains(&"cargo:rustc-env=WHAKAPAPA_BUILT_BY=Jane_Doe".to_owned()));
        assert!(lines.contains(&"cargo:warning=bad".to_owned()));
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
