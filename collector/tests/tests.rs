//! Integration tests of whakapapa-collector: one binary, one module per area under `it/`.
#[path = "../benches/support/events.rs"]
mod events;
#[path = "it/fixture.rs"]
mod fixture;
#[path = "it/store.rs"]
mod store;
