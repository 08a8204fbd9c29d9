//! Kubernetes audit events into SQLite.
//!
//! The user agents, Audit-IDs and side-channel records it reads are parsed by the wire crate
//! the whakapapa library renders them with, re-exported as [`wire`].

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
pub mod symbolize;
pub mod web;

/// The wire format the collector reads (`whakapapa-wire`): user agents, Audit-IDs and
/// side-channel records.
pub use whakapapa_wire as wire;
