//! Integration tests of whakapapa-collector: one binary, one module per area under `it/`.

#[path = "it/admission.rs"]
mod admission;
#[path = "it/bomb.rs"]
mod bomb;
#[path = "it/conformance_meta.rs"]
mod conformance_meta;
#[path = "it/crash.rs"]
mod crash;
#[path = "it/deploy.rs"]
mod deploy;
#[path = "it/deprecated.rs"]
mod deprecated;
#[path = "../benches/support/events.rs"]
mod events;
#[path = "it/fixture.rs"]
mod fixture;
#[path = "it/gcs.rs"]
mod gcs;
#[path = "it/ingest.rs"]
mod ingest;
#[path = "it/managed.rs"]
mod managed;
#[path = "it/query.rs"]
mod query;
#[path = "it/real_conformance.rs"]
mod real_conformance;
#[path = "it/remap.rs"]
mod remap;
#[path = "it/security.rs"]
mod security;
#[path = "it/shapes.rs"]
mod shapes;
#[path = "it/store.rs"]
mod store;
#[path = "it/web.rs"]
mod web;
#[path = "it/webhook.rs"]
mod webhook;
