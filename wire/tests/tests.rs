//! Integration tests of whakapapa-wire: one binary, one module per area under `it/`.

mod it;
