//! Token strings and the associated data that binds each ciphertext to its row.

use tijori_crypto::{random_digit, random_hex};
use tijori_types::api::TokenFormat;
use tijori_types::{format, DataType};

use crate::CoreError;

/// Prefix of random tokens: says "this is a Tijori token" and never resembles a value.
pub(crate) const RANDOM_PREFIX: &str = "tok_";

/// A fresh token for a value: 128 random bits, or a format-preserving token.
pub(crate) fn new_token(
    ty: DataType,
    fmt: TokenFormat,
    normalized: &str,
    raw: &str,
) -> Result<String, CoreError> {
    match fmt {
        TokenFormat::Random => Ok(format!("{RANDOM_PREFIX}{}", random_hex(16)?)),
        TokenFormat::Preserving => {
            let mut rng_failed = false;
            let mut digit = || {
                random_digit().unwrap_or_else(|_| {
                    rng_failed = true;
                    0
                })
            };
            let token = format::preserving_token(ty, normalized, raw, &mut digit)?;
            if rng_failed {
                return Err(CoreError::Internal(
                    "the OS random number generator failed".into(),
                ));
            }
            Ok(token)
        }
    }
}

/// Associated data of a value's ciphertext: moving it to another token, type or key fails.
pub(crate) fn value_ad(token: &str, ty: &str, data_key_id: i64) -> Vec<u8> {
    format!("tijori:value:v1:{token}:{ty}:{data_key_id}").into_bytes()
}
