//! Errors of the crypto layer. `DecryptionFailed` is deliberately opaque: it never says whether
//! the key, the associated data or the ciphertext was wrong, so it cannot serve as an oracle.

/// What can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// Authentication of a ciphertext or wrapped key failed.
    #[error("decryption failed")]
    DecryptionFailed,
    /// The operating system's random number generator did not answer.
    #[error("the operating system's random number generator failed")]
    Rng,
    /// A public key or signature is not in the expected form.
    #[error("{0}")]
    Malformed(&'static str),
    /// The root key file could not be read or created.
    #[error("root key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
}
