//! Build-script helper: [`whakapapa-build`](whakapapa_build), re-exported. Put that crate,
//! not `whakapapa`, under `[build-dependencies]`: it has no dependencies, while `whakapapa`
//! there would build kube and k8s-openapi a second time for the host (and k8s-openapi fails
//! there, since the application's `v1_*` feature does not reach build dependencies).
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

pub use whakapapa_build::{BuildFacts, emit, rfc3339_utc, vars};
