//! What the workspace's tests, benches and examples share (never published):
//!
//! - [`StandInApiServer`], a stand-in for kube-apiserver on loopback that answers kube-rs
//!   requests from an in-memory store, audits them to a webhook the way kube-apiserver does,
//!   and records what clients sent;
//! - [`fixtures`]: objects the tests seed it with;
//! - [`figures`]: the benches' settings and medians;
//! - `browser` (feature `browser`): headless Chromium through chromedriver;
//! - `events` (feature `events`): generated audit events over a catalog, for the collector's
//!   benches and tests.

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(feature = "events")]
pub mod events;
pub mod figures;
pub mod fixtures;
mod standin;

pub use standin::{AuditStats, Seen, StandInApiServer, StandInConfig, StandInError, UserInfo};
