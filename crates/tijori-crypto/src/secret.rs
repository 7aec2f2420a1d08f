//! `SecretKey`: a 256-bit key that is zeroized on drop and has no `Debug`, `Display`, `Clone`
//! or `Serialize`, so it cannot leak through a log line, an error or a careless copy.
//! The only way to its bytes is the explicit, greppable [`SecretKey::expose_secret`].

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{random_bytes, CryptoError};

/// A 256-bit symmetric key (AES-256-GCM key, HMAC key).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    /// Length in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<SecretKey, CryptoError> {
        Ok(SecretKey(random_bytes::<32>()?))
    }

    /// Takes ownership of key bytes; the caller's copy should be zeroized by the caller.
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(bytes)
    }

    /// Builds a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<SecretKey> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(SecretKey(arr))
    }

    /// The raw key bytes. Every call site is a place where key material is handled.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_differ() {
        let a = SecretKey::generate().unwrap();
        let b = SecretKey::generate().unwrap();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(SecretKey::from_slice(&[0u8; 31]).is_none());
    }
}
