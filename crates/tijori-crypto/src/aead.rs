//! AES-256-GCM sealing with associated data. Every ciphertext in the vault is bound to what it
//! belongs to (token, type, key version) through `ad`, so moving a ciphertext to another row
//! makes it undecryptable. Nonces are 96 random bits per message; keys are rotated long before
//! the 2^32-message bound of random GCM nonces matters.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::Zeroizing;

use crate::{random_bytes, CryptoError, RandomPool, SecretKey};

const NONCE_LEN: usize = 12;

/// Encrypts `plaintext` under `key`, bound to `ad`. Output: nonce || ciphertext || tag.
pub fn seal(key: &SecretKey, ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    seal_with(&cipher, random_bytes::<NONCE_LEN>()?, ad, plaintext)
}

/// A key made ready to seal many values, as [`seal`] does one: its AES key schedule is
/// expanded once (zeroized on drop), and the nonces come from a [`RandomPool`].
pub struct Sealer(Aes256Gcm);

impl Sealer {
    pub fn new(key: &SecretKey) -> Sealer {
        Sealer(Aes256Gcm::new(key.expose_secret().into()))
    }

    /// [`seal`], with the nonce drawn from `pool`.
    pub fn seal(
        &self,
        pool: &mut RandomPool,
        ad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        seal_with(&self.0, pool.bytes::<NONCE_LEN>()?, ad, plaintext)
    }
}

fn seal_with(
    cipher: &Aes256Gcm,
    nonce: [u8; NONCE_LEN],
    ad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: ad,
            },
        )
        .map_err(|_| CryptoError::DecryptionFailed)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypts what [`seal`] made with the same key and `ad`. The plaintext is zeroized on drop.
pub fn open(key: &SecretKey, ad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(CryptoError::DecryptionFailed);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: ad })
        .map(Zeroizing::new)
        .map_err(|_| CryptoError::DecryptionFailed)
}

/// Wraps (encrypts) a key under a key-encryption key, bound to `ad`.
pub fn wrap_key(kek: &SecretKey, ad: &[u8], key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
    seal(kek, ad, key.expose_secret())
}

/// Unwraps a key made by [`wrap_key`].
pub fn unwrap_key(kek: &SecretKey, ad: &[u8], wrapped: &[u8]) -> Result<SecretKey, CryptoError> {
    let bytes = open(kek, ad, wrapped)?;
    SecretKey::from_slice(&bytes).ok_or(CryptoError::DecryptionFailed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = SecretKey::generate().unwrap();
        let sealed = seal(&k, b"tok_a|card_number|1", b"4111111111111111").unwrap();
        assert_eq!(
            &open(&k, b"tok_a|card_number|1", &sealed).unwrap()[..],
            b"4111111111111111"
        );
        // Another row's associated data: refused.
        assert!(open(&k, b"tok_b|card_number|1", &sealed).is_err());
        // Another key: refused.
        assert!(open(
            &SecretKey::generate().unwrap(),
            b"tok_a|card_number|1",
            &sealed
        )
        .is_err());
        // A flipped bit: refused.
        let mut bad = sealed.clone();
        bad[20] ^= 1;
        assert!(open(&k, b"tok_a|card_number|1", &bad).is_err());
        assert!(open(&k, b"", &sealed[..10]).is_err());
        // Fresh nonce each time.
        assert_ne!(
            sealed,
            seal(&k, b"tok_a|card_number|1", b"4111111111111111").unwrap()
        );
    }

    /// A sealer's output opens as `seal`'s does, with a fresh nonce each time.
    #[test]
    fn a_sealer_seals_as_seal_does() {
        let k = SecretKey::generate().unwrap();
        let sealer = Sealer::new(&k);
        let mut pool = RandomPool::new(64);
        let a = sealer.seal(&mut pool, b"ad", b"4111111111111111").unwrap();
        let b = sealer.seal(&mut pool, b"ad", b"4111111111111111").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        for sealed in [a, b] {
            assert_eq!(&open(&k, b"ad", &sealed).unwrap()[..], b"4111111111111111");
            assert!(open(&k, b"other", &sealed).is_err());
        }
    }

    #[test]
    fn wrap_round_trip() {
        let kek = SecretKey::generate().unwrap();
        let dek = SecretKey::generate().unwrap();
        let w = wrap_key(&kek, b"dek|7", &dek).unwrap();
        assert_eq!(
            unwrap_key(&kek, b"dek|7", &w).unwrap().expose_secret(),
            dek.expose_secret()
        );
        assert!(unwrap_key(&kek, b"dek|8", &w).is_err());
    }
}
