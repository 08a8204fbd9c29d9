//! The dedupe key of a request: `(auditID, requestReceivedTimestamp)` folded into 63 bits,
//! and the lookup key of an identity's text (migration 14).
//!
//! The high 42 bits are the receive time in milliseconds, so keys of a log (roughly in time
//! order) land at the right edge of `request_keys`' B-tree instead of all over it; the low
//! 21 bits are a hash. The layout is persisted: changing it needs a migration.

/// Bits of hash below the millisecond timestamp.
const HASH_BITS: u32 = 21;

/// The key of a request. Pure and stable across builds (FNV-1a and a SplitMix64 finaliser).
pub fn request_key(audit_id: &str, received_us: i64) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in audit_id.bytes().chain(received_us.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    let ms = (received_us.max(0) / 1000) as u64 & ((1 << 42) - 1);
    ((ms << HASH_BITS) | (h & ((1 << HASH_BITS) - 1))) as i64
}

/// The key `identities` are looked up by: a 63-bit hash of the text. Pure and stable across
/// builds (persisted). Eight bytes at a time, as identity texts run to a user agent's 1 KiB
/// and the writer hashes each one it has not cached.
pub(crate) fn identity_key(text: &str) -> i64 {
    let bytes = text.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^= h >> 29;
    }
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    h = (h ^ u64::from_le_bytes(last)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h & i64::MAX as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_keys_are_stable_and_tell_texts_apart() {
        // Persisted: these values are in databases.
        assert_eq!(
            identity_key("kubelet/v1.36.3 (linux/amd64) kubernetes/abc1234"),
            5_548_628_772_129_260_405
        );
        assert_eq!(identity_key(""), 577_409_809_830_185_139);
        let texts = [
            "",
            "a",
            "kubelet/v1.36.3 (linux/amd64) kubernetes/abc1234",
            "kubelet/v1.36.3 (linux/amd64) kubernetes/abc1235",
            "kubelet/v1.36.3 (linux/amd64) kubernetes/abc123",
            "12345678",
            "12345678\0",
        ];
        let keys: std::collections::BTreeSet<i64> = texts.iter().map(|t| identity_key(t)).collect();
        assert_eq!(keys.len(), texts.len());
        assert!(keys.iter().all(|&k| k >= 0));
    }

    #[test]
    fn keys_are_positive_time_ordered_and_spread() {
        let t = 1_795_000_000_000_000; // 2026-11
        let a = request_key("a", t);
        let b = request_key("b", t);
        let later = request_key("a", t + 1000);
        assert!(a >= 0 && b >= 0);
        assert_ne!(a, b);
        assert_eq!(a >> HASH_BITS, b >> HASH_BITS);
        assert!(later >> HASH_BITS > a >> HASH_BITS);
        assert_ne!(request_key("a", t), request_key("a", t + 1));
        // stable across builds: the value is persisted
        assert_eq!(request_key("x", 0), request_key("x", 0));
        assert_eq!(request_key("", -5) >> HASH_BITS, 0);
    }
}
