//! Integration tests of whakapapa-collector: one binary, one module per area under `it/`.

#[path = "../benches/support/events.rs"]
mod events;
mod it;
