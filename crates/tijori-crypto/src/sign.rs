//! Ed25519 signatures (RustCrypto's `ed25519-dalek`) for the audit trail's checkpoints. The
//! signing key is a 32-byte seed kept like any data key, wrapped under the key hierarchy; the
//! public key is meant to be exported and kept apart from the vault, so that whoever holds it
//! can check a trail (or an exported copy) without any secret, and an insider who rewrites the
//! trail cannot also forge the signatures.

use ed25519_dalek::{Signer, Verifier};

use crate::{sha256, CryptoError, SecretKey};

/// The text form of a public key starts with this.
const PREFIX: &str = "ed25519:";

/// A signing key. No `Debug` or `Clone`; the inner key zeroizes on drop.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The signing key whose seed is `seed`.
    pub fn from_seed(seed: &SecretKey) -> SigningKey {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed.expose_secret()))
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// The 64-byte signature of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.0.sign(message).to_bytes().to_vec()
    }
}

/// A public key: shown and read as `ed25519:` followed by 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// Reads the text form (surrounding whitespace allowed).
    pub fn parse(text: &str) -> Result<PublicKey, CryptoError> {
        const WRONG: &str = "a public key is written ed25519: followed by 64 hex digits";
        let hex_part = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(CryptoError::Malformed(WRONG))?;
        let bytes: [u8; 32] = hex::decode(hex_part)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(CryptoError::Malformed(WRONG))?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|_| CryptoError::Malformed("that is not a valid Ed25519 public key"))
    }

    /// Whether `signature` is this key's signature of `message` (strict verification: no
    /// malleable or small-order forms).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
            return false;
        };
        self.0.verify_strict(message, &sig).is_ok() && self.0.verify(message, &sig).is_ok()
    }

    /// A short name for the key, for logs and reports: the first 8 bytes of its SHA-256, hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(&sha256(self.0.as_bytes())[..8])
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{PREFIX}{}", hex::encode(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 section 7.1, test 2 (one-byte message).
    #[test]
    fn rfc8032_test_vector() {
        let seed = hex::decode("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
            .unwrap();
        let key = SigningKey::from_seed(&SecretKey::from_slice(&seed).unwrap());
        assert_eq!(
            key.public_key().to_string(),
            "ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        let sig = key.sign(&[0x72]);
        assert_eq!(
            hex::encode(&sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
        assert!(key.public_key().verify(&[0x72], &sig));
    }

    #[test]
    fn a_changed_message_signature_or_key_fails() {
        let key = SigningKey::from_seed(&SecretKey::generate().unwrap());
        let other = SigningKey::from_seed(&SecretKey::generate().unwrap());
        let sig = key.sign(b"head 42");
        let public = key.public_key();
        assert!(public.verify(b"head 42", &sig));
        assert!(!public.verify(b"head 43", &sig));
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!public.verify(b"head 42", &bad));
        assert!(!public.verify(b"head 42", &sig[..63]));
        assert!(!other.public_key().verify(b"head 42", &sig));
    }

    #[test]
    fn public_keys_round_trip_through_text_and_bad_text_is_refused() {
        let public = SigningKey::from_seed(&SecretKey::generate().unwrap()).public_key();
        assert_eq!(PublicKey::parse(&format!(" {public}\n")).unwrap(), public);
        for bad in [
            "",
            "ed25519:",
            "ed25519:zz",
            "rsa:00",
            &public.to_string()[..40],
        ] {
            assert!(PublicKey::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(public.fingerprint().len(), 16);
    }
}
