//! Who the program is: the application's name, version, platform, source commit and build,
//! rendered in client-go's user agent shape.
//!
//! # Example
//!
//! ```
//! let me = whakapapa::identity!();
//! // "whakapapa/v0.1.0 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z"
//! assert!(me.user_agent().starts_with("whakapapa/v"));
//! ```
//!
//! [`identity!`](crate::identity!) must be expanded in the application's crate: it reads that
//! crate's `CARGO_PKG_*` at compile time, plus the [`vars`] (`WHAKAPAPA_GIT_COMMIT`,
//! `WHAKAPAPA_BUILT_BY`, `WHAKAPAPA_BUILT_AT`) from whichever route set them: the
//! application's build script calling `whakapapa_build::emit()`, or the environment of
//! `cargo build` (which wins when both are present).

/// Names of the compile-time variables `identity!()` reads, set by
/// [`whakapapa_build::emit`](crate::build::emit) or in the environment of `cargo build`.
pub use whakapapa_build::vars;

/// The self-identity of a program, as sent at the start of its user agent: what the program
/// knows of itself when it is built (and where its sources are, which is never sent). What
/// goes on the wire is its [`wire`](Identity::wire) form, the one the collector parses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// Program name (`shop-controller`).
    pub name: String,
    /// Version with a `v` prefix (`v0.3.1`), or `unknown`.
    pub version: String,
    /// Operating system in Go's naming (`linux`, `darwin`, `windows`).
    pub os: String,
    /// CPU architecture in Go's naming (`amd64`, `arm64`).
    pub arch: String,
    /// Where the commit comes from (`git`).
    pub source: String,
    /// Source commit, or `unknown`.
    pub commit: String,
    /// `user@host` that built the program, when known.
    pub built_by: Option<String>,
    /// RFC 3339 build time, when known.
    pub built_at: Option<String>,
    /// The application crate's directory at build time; source paths under it are sent
    /// relative to it (`src/main.rs`). Never sent itself.
    pub source_dir: Option<String>,
}

/// Compile-time facts about the application crate, filled by [`identity!`](crate::identity!).
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct BuildInfo {
    pub name: &'static str,
    pub version: &'static str,
    pub commit: Option<&'static str>,
    pub built_by: Option<&'static str>,
    pub built_at: Option<&'static str>,
    pub source_dir: &'static str,
}

/// The identity of the application crate this macro is expanded in: its package name and
/// version, and the commit, builder and build time that its build script recorded through
/// `whakapapa_build::emit()` or that were set in the environment of `cargo build`.
#[macro_export]
macro_rules! identity {
    () => {
        $crate::Identity::from_build($crate::identity::BuildInfo {
            name: env!("CARGO_PKG_NAME"),
            version: env!("CARGO_PKG_VERSION"),
            commit: option_env!("WHAKAPAPA_GIT_COMMIT"),
            built_by: option_env!("WHAKAPAPA_BUILT_BY"),
            built_at: option_env!("WHAKAPAPA_BUILT_AT"),
            source_dir: env!("CARGO_MANIFEST_DIR"),
        })
    };
}

/// Go's `GOOS` for a Rust target OS, as client-go writes it.
pub(crate) fn go_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's `GOARCH` for a Rust target architecture, as client-go writes it.
pub(crate) fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn with_v(version: &str) -> String {
    match version.trim() {
        "" => "unknown".into(),
        v if v.starts_with('v') => v.into(),
        v => format!("v{v}"),
    }
}

impl Identity {
    /// An identity from a name and version; platform from this process, commit `unknown`.
    pub fn new(name: impl Into<String>, version: impl AsRef<str>) -> Self {
        let name = name.into();
        Self {
            name: if name.trim().is_empty() {
                "unknown".into()
            } else {
                name
            },
            version: with_v(version.as_ref()),
            os: go_os(std::env::consts::OS).into(),
            arch: go_arch(std::env::consts::ARCH).into(),
            source: "git".into(),
            commit: "unknown".into(),
            built_by: None,
            built_at: None,
            source_dir: None,
        }
    }

    /// The identity [`identity!`](crate::identity!) builds from compile-time facts.
    #[doc(hidden)]
    pub fn from_build(info: BuildInfo) -> Self {
        let mut me = Self::new(info.name, info.version);
        me.commit = non_empty(info.commit).unwrap_or_else(|| "unknown".into());
        me.built_by = non_empty(info.built_by);
        me.built_at = non_empty(info.built_at);
        me.source_dir = non_empty(Some(info.source_dir));
        me
    }

    /// What can be known at run time alone: the executable's name, version `unknown`.
    pub fn from_runtime() -> Self {
        let name = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Self::new(name, "")
    }

    /// The identity as client-go shapes a user agent, plus who built it and when:
    /// `name/version (os/arch) source/commit[ built-by user@host[ at time]]`.
    pub fn user_agent(&self) -> String {
        self.wire().text
    }

    /// The identity as it goes on the wire (the side-channel record's `identity`), its text
    /// rendered by [`wire::Identity::render`](crate::wire::Identity::render).
    pub fn wire(&self) -> crate::wire::Identity {
        let mut id = crate::wire::Identity {
            name: Some(self.name.clone()),
            version: Some(self.version.clone()),
            os: Some(self.os.clone()),
            arch: Some(self.arch.clone()),
            source: Some(self.source.clone()),
            commit: Some(self.commit.clone()),
            built_by: self.built_by.clone(),
            built_at: self.built_at.clone(),
            ..Default::default()
        };
        id.text = id.render();
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> BuildInfo {
        BuildInfo {
            name: "shop-controller",
            version: "0.3.1",
            commit: Some("4f2a9c1"),
            built_by: Some("ci@runner-4"),
            built_at: Some("2026-11-20T10:00:00Z"),
            source_dir: "/src/shop",
        }
    }

    #[test]
    fn renders_client_go_shape_with_build() {
        let mut me = Identity::from_build(info());
        me.os = "linux".into();
        me.arch = "amd64".into();
        assert_eq!(
            me.user_agent(),
            "shop-controller/v0.3.1 (linux/amd64) git/4f2a9c1 built-by ci@runner-4 at 2026-11-20T10:00:00Z"
        );
    }

    #[test]
    fn fallbacks_table() {
        let cases = [
            (
                BuildInfo {
                    commit: None,
                    built_by: None,
                    built_at: None,
                    ..info()
                },
                "git/unknown",
                false,
            ),
            (
                BuildInfo {
                    commit: Some("  "),
                    ..info()
                },
                "git/unknown",
                true,
            ),
            (
                BuildInfo {
                    version: "",
                    ..info()
                },
                "/unknown (",
                true,
            ),
            (
                BuildInfo {
                    version: "v2.0.0",
                    ..info()
                },
                "/v2.0.0 (",
                true,
            ),
            (BuildInfo { name: "", ..info() }, "unknown/v0.3.1", true),
        ];
        for (info, want, built) in cases {
            let ua = Identity::from_build(info).user_agent();
            assert!(ua.contains(want), "{ua} lacks {want}");
            assert_eq!(ua.contains(" built-by "), built, "{ua}");
        }
    }

    #[test]
    fn go_platform_names() {
        for (rust, go) in [
            ("x86_64", "amd64"),
            ("aarch64", "arm64"),
            ("x86", "386"),
            ("s390x", "s390x"),
        ] {
            assert_eq!(go_arch(rust), go);
        }
        for (rust, go) in [
            ("linux", "linux"),
            ("macos", "darwin"),
            ("windows", "windows"),
        ] {
            assert_eq!(go_os(rust), go);
        }
    }

    #[test]
    fn runtime_identity_names_the_executable() {
        let me = Identity::from_runtime();
        assert!(!me.name.is_empty());
        assert_eq!(me.version, "unknown");
        assert_eq!(me.commit, "unknown");
    }
}
