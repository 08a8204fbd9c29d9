//! The side-channel record: one full purpose (identity and every frame) as a JSON line.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Frame, Identity};

/// The side-channel format version, the value of a record's `whakapapa` key.
pub const RECORD_VERSION: u32 = 1;

/// One full purpose, as a side-channel JSON line (KEP.md "Side channel").
///
/// ```
/// use whakapapa_wire::Record;
///
/// let line = r#"{"whakapapa":1,"fingerprint":"9c0e4b7d12aa03f1","identity":{"name":"shop"},"frames":[{"function":"shop::main","file":"src/main.rs","line":17}],"seen_at":"2026-11-20T10:03:11.402Z"}"#;
/// let record: Record = serde_json::from_str(line).unwrap();
/// assert_eq!(record.fingerprint, 0x9c0e4b7d12aa03f1);
/// assert_eq!(record.frames[0].token(), "shop::main@src/main.rs:17");
/// ```
///
/// `test`, `span` and `seen_at` may be absent or null; so may every identity field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Format version ([`RECORD_VERSION`]); a reader recognises records by this key.
    pub whakapapa: u32,
    /// The purpose fingerprint, 16 lower-case hex digits on the wire.
    #[serde(
        serialize_with = "serialize_fingerprint",
        deserialize_with = "deserialize_fingerprint"
    )]
    pub fingerprint: u64,
    /// Who sent it; `identity.text` is the object's `user_agent`.
    pub identity: Identity,
    /// The test the purpose was seen in, if any.
    #[serde(default)]
    pub test: Option<String>,
    /// Every kept frame, innermost first.
    pub frames: Vec<Frame>,
    /// The `tracing` span the request was made in, if any.
    #[serde(default)]
    pub span: Option<String>,
    /// When the process first saw the purpose (RFC 3339, UTC, milliseconds).
    #[serde(default)]
    pub seen_at: Option<String>,
    /// The stack as module addresses, when the program could not name its frames (built
    /// without debug info): `whakapapa-collector symbolize` resolves them later. Empty (and
    /// absent on the wire) when `frames` were resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Address>,
    /// The requesting thread's name (the test's under libtest), for `symbolize` to tell the
    /// test; sent with `addresses` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<String>,
    /// The application crate's directory at build time, for `symbolize` to make paths
    /// relative as the program would have; sent with `addresses` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_dir: Option<String>,
}

/// One frame of a stack the program could not name: its module and the address to look up
/// there, as profilers record them. The same code has the same pair in every process of one
/// build, whatever address-space randomisation did.
///
/// ```
/// use whakapapa_wire::Address;
///
/// let a: Address = serde_json::from_str(r#"{"build_id":"5d0e3a7f","offset":1703936}"#).unwrap();
/// assert_eq!(a.offset, 0x1a0000);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Address {
    /// The module's GNU build-id (`readelf -n`), lower-case hex.
    pub build_id: String,
    /// The address to look up in that module's ELF file, as `addr2line -e FILE` takes it:
    /// the call instruction's (one byte before the return address), in the file's own
    /// virtual addresses.
    pub offset: u64,
}

/// The fingerprint as the grammar writes it: 16 lower-case hex digits.
pub fn fingerprint_hex(fingerprint: u64) -> String {
    format!("{fingerprint:016x}")
}

/// A fingerprint from its 16 hex digits (either case); `None` for any other text.
pub fn parse_fingerprint(text: &str) -> Option<u64> {
    if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

fn serialize_fingerprint<S: Serializer>(fp: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&fingerprint_hex(*fp))
}

fn deserialize_fingerprint<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse_fingerprint(&text).ok_or_else(|| {
        serde::de::Error::custom(format_args!("fingerprint {text:?} is not 16 hex digits"))
    })
}
