//! Examples and end-to-end tests for whakapapa and its collector: see `examples/` and `tests/`.
//!
//! The library holds what they share: [`StandInApiServer`], a stand-in for kube-apiserver that
//! answers kube-rs requests and sends audit batches to a webhook the way kube-apiserver does,
//! and [`cluster::ControlPlane`], the real kube-apiserver, etcd and controllers on loopback.

pub mod cluster;
mod standin;

pub use standin::{AuditStats, StandInApiServer, StandInConfig, StandInError, UserInfo};
