//! The `Audit-ID` header: an RFC 9562 UUIDv8 that carries the purpose fingerprint.
//!
//! # Example
//!
//! ```
//! use whakapapa_wire::audit_id;
//!
//! let id = audit_id::encode(0x9c0e4b7d12aa03f1, 0);
//! assert_eq!(id, "9c0e4b7d-12aa-803f-855c-000000000000");
//! assert_eq!(audit_id::decode(&id), Some(0x9c0e4b7d12aa03f1));
//! // kube-apiserver's own UUIDv4s carry none.
//! assert_eq!(audit_id::decode("4d2b0a3e-5f7c-4b8a-9e1d-0c6f2a7b3d91"), None);
//! ```
//!
//! Layout (KEP.md "Audit-ID"): bytes 0–5 are fingerprint bits 63..16; byte 6 is version 8
//! and bits 15..12; byte 7 bits 11..4; byte 8 the variant `10`, bits 3..0 and the top two
//! bits of [`AUDIT_ID_MAGIC`]; byte 9 its low six bits and two random bits; bytes 10–15
//! random: 50 random bits in all.

use crate::AUDIT_ID_MAGIC;
use crate::pct::hex_value;

/// The 16 bytes of the UUIDv8 carrying `fingerprint`; the low 50 bits of `random` fill its
/// random bits.
pub fn bytes(fingerprint: u64, random: u64) -> [u8; 16] {
    let fp = fingerprint;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&(fp >> 16).to_be_bytes()[2..]);
    b[6] = 0x80 | ((fp >> 12) & 0x0f) as u8;
    b[7] = ((fp >> 4) & 0xff) as u8;
    b[8] = 0x80 | (((fp & 0x0f) as u8) << 2) | (AUDIT_ID_MAGIC >> 6);
    b[9] = ((AUDIT_ID_MAGIC & 0x3f) << 2) | (random & 0b11) as u8;
    b[10..].copy_from_slice(&(random >> 2).to_be_bytes()[2..]);
    b
}

/// The header text, the canonical lowercase 8-4-4-4-12 form of [`bytes`], as 36 ASCII bytes
/// without allocating.
pub fn encode_ascii(fingerprint: u64, random: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bytes(fingerprint, random).iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1; // the '-' already there
        }
        out[at] = HEX[usize::from(byte >> 4)];
        out[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    out
}

/// The header text, the canonical lowercase 8-4-4-4-12 form of [`bytes`].
pub fn encode(fingerprint: u64, random: u64) -> String {
    encode_ascii(fingerprint, random)
        .iter()
        .map(|&b| char::from(b))
        .collect()
}

/// The fingerprint an `Audit-ID` carries, if it is whakapapa's UUIDv8 (8-4-4-4-12 hex of
/// either case, version 8, variant `10`, magic `0x57`); `None` for any other text.
pub fn decode(id: &str) -> Option<u64> {
    let s = id.as_bytes();
    if s.len() != 36 {
        return None;
    }
    let mut b = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if s[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        b[n] = hex_value(s[i])? << 4 | hex_value(s[i + 1])?;
        n += 1;
        i += 2;
    }
    let magic = (b[8] & 0b11) << 6 | b[9] >> 2;
    if b[6] >> 4 != 8 || b[8] >> 6 != 0b10 || magic != AUDIT_ID_MAGIC {
        return None;
    }
    let high = b[..6].iter().fold(0u64, |acc, &x| acc << 8 | u64::from(x));
    Some(
        high << 16
            | u64::from(b[6] & 0x0f) << 12
            | u64::from(b[7]) << 4
            | u64::from(b[8] >> 2 & 0x0f),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UUID of KEP.md's layout, built bit by bit from the KEP text.
    fn kep_audit_id(fp: u64, random: [u8; 7]) -> String {
        let mut b = [0u8; 16];
        b[..6].copy_from_slice(&fp.to_be_bytes()[..6]);
        b[6] = 0x80 | (fp >> 12 & 0x0f) as u8;
        b[7] = (fp >> 4 & 0xff) as u8;
        b[8] = 0x80 | ((fp & 0x0f) as u8) << 2 | 0b01;
        b[9] = (0x57 & 0x3f) << 2 | (random[0] & 0b11);
        b[10..].copy_from_slice(&random[1..]);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &hex[..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..]
        )
    }

    #[test]
    fn follows_the_kep_layout() {
        for fp in [0x9c0e_4b7d_12aa_03f1, 0, u64::MAX, 0x0123_4567_89ab_cdef, 1] {
            for (random, bits) in [
                ([0u8; 7], 0u64),
                ([3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], (1 << 50) - 1),
                (
                    [1, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23],
                    0xdead_beef_0123 << 2 | 1,
                ),
            ] {
                let id = kep_audit_id(fp, random);
                assert_eq!(encode(fp, bits), id);
                assert_eq!(decode(&id), Some(fp), "{id}");
                assert_eq!(decode(&id.to_uppercase()), Some(fp));
                assert_eq!(&id[14..15], "8", "version nibble in {id}");
                assert!(
                    matches!(&id[19..20], "8" | "9" | "a" | "b"),
                    "variant in {id}"
                );
            }
        }
    }

    #[test]
    fn other_texts_carry_no_fingerprint() {
        let good = kep_audit_id(0xfeed, [0; 7]);
        let cases = [
            // kube-apiserver's own UUIDv4.
            "4d2b0a3e-5f7c-4b8a-9e1d-0c6f2a7b3d91".to_owned(),
            // Version 7 instead of 8.
            format!("{}7{}", &good[..14], &good[15..]),
            // Variant 11 instead of 10.
            format!("{}c{}", &good[..19], &good[20..]),
            // Wrong magic.
            format!("{}0{}", &good[..21], &good[22..]),
            // Not the canonical form.
            good.replace('-', ""),
            format!("{good}0"),
            good.replacen('-', "x", 1),
            format!("{}-{}", &good[..7], &good[9..]),
            format!("{}é{}", &good[..34], &good[36..]),
            String::new(),
            "not an id".to_owned(),
        ];
        for id in cases {
            assert_eq!(decode(&id), None, "{id}");
        }
    }
}
