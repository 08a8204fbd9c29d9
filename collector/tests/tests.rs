//! Integration tests of whakapapa-collector: one binary, one module per area under `it/`.

use whakapapa_testkit::events;
mod it;
