//! Kubernetes audit events into SQLite.
pub mod store;
pub mod audit;
pub mod catalog;
pub mod mapping;
pub mod purpose;
pub mod useragent;
pub mod web;
pub mod ingest;
pub mod query;
