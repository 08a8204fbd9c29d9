//! Kubernetes audit events into SQLite.

pub mod admission;
pub mod audit;
pub mod auth;
pub mod catalog;
pub mod cli;
pub mod deploy;
pub mod http;
pub mod ingest;
pub mod mapping;
pub mod metrics;
pub mod purpose;
pub mod query;
pub mod store;
pub mod useragent;
pub mod web;
