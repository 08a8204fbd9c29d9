//! One module per area.

mod access;
mod admission;
mod bomb;
mod conform;
mod conformance_meta;
mod crash;
mod deploy;
mod deprecated;
mod fixture;
mod gcs;
mod indirect;
mod ingest;
mod journeys;
mod managed;
mod progress;
mod query;
mod real_conformance;
mod remap;
mod security;
mod shapes;
mod store;
mod web;
mod webhook;
