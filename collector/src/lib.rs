//! Kubernetes audit events into SQLite.
