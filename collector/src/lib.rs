//! Kubernetes audit events into SQLite.
pub mod store;
