//! Integration tests: real `kube::Client`s with the layer against a stand-in API server on
//! loopback. One test binary; the modules are under `it/`.

mod it;
