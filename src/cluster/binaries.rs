//! Where `scripts/kube-binaries.sh` left the Kubernetes binaries.

use std::path::{Path, PathBuf};

/// The Kubernetes release the binaries are built from by default: the one of the embedded
/// OpenAPI catalog.
pub const DEFAULT_VERSION: &str = "v1.36.3";

/// Every file the script leaves in the cache: the binaries, and kwok's default stages.
pub const BINARIES: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "e2e.test",
    "ginkgo",
    "kwok",
    "kwok-stages.yaml",
];

/// A directory holding the built binaries.
#[derive(Debug, Clone)]
pub struct KubeBinaries {
    dir: PathBuf,
}

impl KubeBinaries {
    /// The cache `scripts/kube-binaries.sh` fills: `$WHAKAPAPA_KUBE_CACHE`, else
    /// `$XDG_CACHE_HOME` or `~/.cache`, then `whakapapa/kubernetes/v1.36.3`.
    pub fn cache_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("WHAKAPAPA_KUBE_CACHE") {
            return dir.into();
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
            .unwrap_or_else(|| PathBuf::from(".cache"));
        base.join("whakapapa/kubernetes").join(DEFAULT_VERSION)
    }

    /// The binaries in the cache, or why they cannot be used (the text a skipped test prints).
    pub fn find() -> Result<Self, String> {
        let dir = Self::cache_dir();
        let missing: Vec<&str> = BINARIES
            .iter()
            .copied()
            .filter(|b| !dir.join(b).is_file())
            .collect();
        if missing.is_empty() {
            Ok(Self { dir })
        } else {
            Err(format!(
                "no {} in {} (run scripts/kube-binaries.sh)",
                missing.join(", "),
                dir.display()
            ))
        }
    }

    /// The path of one binary, e.g. `kube-apiserver`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
