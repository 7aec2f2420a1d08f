//! Tijori's cryptography, as thin glue over RustCrypto: secret key newtypes that zeroize and
//! never print, AEAD sealing bound to associated data, key wrapping, the keyed blind index,
//! token randomness, operators' password hashes (Argon2id) and one-time codes (TOTP), Ed25519 signatures for the audit trail's checkpoints, and the [`KeyProvider`] joint where each root of trust plugs in.
//! No cipher, MAC or RNG is written here; nothing in this crate logs.
#![forbid(unsafe_code)]

mod aead;
mod blind;
mod error;
mod password;
mod provider;
mod random;
mod secret;
mod shamir;
mod sign;
mod totp;

pub use aead::{open, seal, unwrap_key, wrap_key, Sealer};
pub use blind::{audit_chain_hash, hmac_sha256, sha256, BlindIndexKey};
pub use error::CryptoError;
pub use password::{dummy_verify, hash_password, verify_password};
pub use provider::{DevKeyFile, KeyProvider, RootKey};
pub use random::{random_bytes, random_hex, RandomPool};
pub use secret::SecretKey;
pub use shamir::{combine as combine_shares, split as split_key, KeyShare};
pub use sign::{PublicKey, SigningKey};
pub use totp::{TotpSecret, TOTP_SECRET_LEN, TOTP_STEP};
