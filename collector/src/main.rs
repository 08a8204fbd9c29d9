//! whakapapa-collector binary.
fn main() {}
