//! Examples and end-to-end tests for whakapapa and its collector: see `examples/` and `tests/`.
//!
//! The library holds what they share beyond the test kit (`whakapapa-testkit`, with the
//! stand-in API server): [`cluster::ControlPlane`], the real kube-apiserver, etcd and
//! controllers on loopback.

pub mod cluster;
