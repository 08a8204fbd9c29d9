//! The quickstart's parts, shared by `cargo run --example quickstart` (`main.rs`) and its test
//! (`tests/e2e/quickstart.rs`): a small controller, the collector in-process, and the loop that
//! wires them to a stand-in API server.

pub mod collector;
pub mod controller;
pub mod wiring;

/// The controller's source file as purpose frames name it (relative to the workspace, whose
/// root package builds the program).
pub const CONTROLLER_FILE: &str = "examples/quickstart/controller.rs";

/// The controller's source, for finding the line of a call.
pub const CONTROLLER_SOURCE: &str = include_str!("controller.rs");
