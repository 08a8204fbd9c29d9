//! Examples and end-to-end tests for whakapapa and its collector: see `examples/` and `tests/`.
