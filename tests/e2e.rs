//! End-to-end tests: the stand-in API server, the whakapapa layer and the collector together,
//! over real sockets on loopback.

mod e2e {
    mod quickstart;
    mod real;
    mod shutdown;
    pub mod sink;
    mod standin;
    mod symbolize;
}
