//! The keyed blind index: HMAC-SHA-256 under a key of its own, so deterministic tokens and
//! search find a value without the plaintext, and without an unkeyed hash that anyone holding
//! the database could brute-force (card numbers have little entropy).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::SecretKey;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA-256 of `data` under `key` (any length, as RFC 2104 allows).
pub fn hmac_sha256(key: &[u8], data: &[&[u8]]) -> [u8; 32] {
    // new_from_slice accepts every key length for HMAC; the error arm cannot occur.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    for part in data {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// SHA-256 of `data`: for hashes of high-entropy secrets (API keys), never of customer values.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    Sha256::digest(data).into()
}

/// The audit trail's chain hash: SHA-256 over a domain tag, the previous record's hash, this
/// record's sequence number and its exact text. Binding the number makes reordering and
/// renumbering visible; binding the previous hash makes deletion and insertion visible.
pub fn audit_chain_hash(prev_hash: &[u8], seq: i64, record: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut h = Sha256::new();
    h.update(b"tijori-audit-v1\0");
    h.update(prev_hash);
    h.update(seq.to_be_bytes());
    h.update(record.as_bytes());
    h.finalize().to_vec()
}

/// A blind-index key. The domain separates uses (each data type, idempotency fingerprints).
pub struct BlindIndexKey(SecretKey);

impl BlindIndexKey {
    pub fn new(key: SecretKey) -> BlindIndexKey {
        BlindIndexKey(key)
    }

    /// HMAC(key, domain || 0x00 || value). The zero byte keeps domains from running into values.
    pub fn index(&self, domain: &str, value: &[u8]) -> [u8; 32] {
        hmac_sha256(self.0.expose_secret(), &[domain.as_bytes(), &[0u8], value])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 known answers, from the repository's copy of the public vectors.
    #[test]
    fn hmac_known_answers() {
        let csv = include_str!("../../../tests/vectors/hmac_sha256.csv");
        let mut n = 0;
        for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').collect();
            let key = hex::decode(f[0]).unwrap();
            let data = hex::decode(f[1]).unwrap();
            assert_eq!(
                hex::encode(hmac_sha256(&key, &[&data])),
                f[2].to_lowercase()
            );
            // Split input gives the same MAC.
            let (a, b) = data.split_at(data.len() / 2);
            assert_eq!(hex::encode(hmac_sha256(&key, &[a, b])), f[2].to_lowercase());
            n += 1;
        }
        assert!(n >= 2);
    }

    #[test]
    fn index_is_keyed_and_domain_separated() {
        let k1 = BlindIndexKey::new(SecretKey::from_bytes([1; 32]));
        let k2 = BlindIndexKey::new(SecretKey::from_bytes([2; 32]));
        let v = b"4111111111111111";
        assert_eq!(k1.index("card_number", v), k1.index("card_number", v));
        assert_ne!(k1.index("card_number", v), k2.index("card_number", v));
        assert_ne!(k1.index("card_number", v), k1.index("bank_account", v));
    }
}
