//! The whakapapa wire format: what the library sends and the collector reads, in one place.
//!
//! A Kubernetes API request made through whakapapa carries who is calling and why in two
//! headers that kube-apiserver keeps in its audit log, and the full purpose goes once per
//! fingerprint through a side channel (KEP.md "Wire format"). This crate renders and parses
//! all three, with no I/O and no dependency but serde, so that the library, the collector
//! and any other tool agree by construction (kube-core's role under kube-client). The
//! `addr2line` feature adds [`stack::symbols_at`], the one way both name an address from debug
//! info.
//!
//! - [`user_agent`]: the `User-Agent` grammar, [`user_agent::render`] and
//!   [`user_agent::parse`] (and [`user_agent::split`], the same without copying);
//! - [`audit_id`]: the `Audit-ID` UUIDv8 that carries the fingerprint;
//! - [`Record`]: the side-channel JSON line;
//! - [`Identity`], [`TestInfo`], [`Frame`]: the entities all three are made of;
//! - [`pct`]: the percent codec of the grammar.
//!
//! # Example
//!
//! ```
//! use whakapapa_wire::{Frame, Identity, audit_id, user_agent};
//!
//! let me = Identity::parse("shop/v0.3.1 (linux/amd64) git/4f2a9c1");
//! let frames = [
//!     Frame::new("kube_client::api::Api<K>::list", "kube-client-5.0.0/src/api/core_methods.rs", 106),
//!     Frame::new("shop::inventory::count_pods", "src/inventory.rs", 42),
//! ];
//! let fp = 0x9c0e4b7d12aa03f1;
//! let ua = user_agent::render(&me.render(), Some("tests::counts_pods"), fp, None, &frames);
//! assert_eq!(
//!     ua,
//!     "shop/v0.3.1 (linux/amd64) git/4f2a9c1 -- tests::counts_pods whakapapa/1 fp=9c0e4b7d12aa03f1 \
//!      kube_client::api::Api<K>::list@kube-client-5.0.0/src/api/core_methods.rs:106 \
//!      shop::inventory::count_pods@src/inventory.rs:42"
//! );
//!
//! // What the collector reads back from the audit log, even when kube-apiserver cut it.
//! let cut = format!("{}{}", &ua[..200], whakapapa_wire::TRUNCATED_SUFFIX);
//! let parsed = user_agent::parse(&cut);
//! assert_eq!((parsed.fingerprint, parsed.truncated), (Some(fp), true));
//! assert_eq!(parsed.identity, me);
//! assert_eq!(parsed.frames, frames[..1]); // whole frames only
//!
//! assert_eq!(audit_id::decode(&audit_id::encode(fp, 0x1234)), Some(fp));
//! ```
//!
//! # Test vectors
//!
//! `testdata/vectors.json` in this crate holds the grammar's test vectors for any other
//! implementation of the format, in any language: user agents with the parse each must give
//! (`parse`), inputs with the user agent each must render to (`render`), and Audit-IDs with
//! the fingerprint each carries (`audit_id`). The crate's own tests check every one of them.
//! Fingerprints are written as 16 hex digits there, as on the wire, since JSON numbers lose
//! 64-bit precision in many readers.

pub mod audit_id;
mod frame;
mod identity;
pub mod pct;
mod record;
pub mod stack;
pub mod user_agent;

pub use frame::Frame;
pub use identity::{Identity, TestInfo};
pub use record::{Address, RECORD_VERSION, Record, fingerprint_hex, parse_fingerprint};
pub use user_agent::UserAgent;

/// The marker that starts whakapapa's part of a user agent (version 1 of the grammar).
pub const MARKER: &str = "whakapapa/1";

/// The most bytes of a user agent kube-apiserver keeps in its audit log (its
/// `maxUserAgentLength`); the renderer never writes more.
pub const MAX_USER_AGENT: usize = 1024;

/// What kube-apiserver appends to a user agent it cut at [`MAX_USER_AGENT`] bytes (its
/// `userAgentTruncateSuffix`).
pub const TRUNCATED_SUFFIX: &str = "...TRUNCATED";

/// The magic byte that marks an `Audit-ID` as whakapapa's UUIDv8 (`'W'`).
pub const AUDIT_ID_MAGIC: u8 = 0x57;
