//! Token strings and the associated data that binds each ciphertext to its row.

use tijori_crypto::{random_digit, random_hex};
use tijori_types::api::TokenFormat;
use tijori_types::{format, DataType};

use crate::CoreError;

/// Prefix of random tokens: says "this is a Tijori token" and never resembles a value.
pub(crate) const RANDOM_PREFIX: &str = "tok_";

/// Random bytes a random token's group takes (shown as twice as many hex digits).
const GROUP_BYTES: usize = 4;

/// Random bytes that make a random token its own (128 bits, as the API promises).
const OWN_BYTES: usize = 16;

/// The leading random part shared by the random tokens of one request: `tok_`, then the
/// group's 8 hex digits, then each token's own 32. Tokens are stored in their string's order,
/// so a batch's tokens land side by side on a few fresh pages of the token table instead of
/// each on a random page of it: a 1,000-item batch writes tens of pages, not a thousand. It
/// tells a holder of two tokens only that they came from the same request, which that request's
/// caller knows already; tokens of different requests share nothing.
pub(crate) struct TokenGroup(String);

impl TokenGroup {
    /// A new group, drawn from the OS CSPRNG.
    pub(crate) fn new() -> Result<TokenGroup, CoreError> {
        Ok(TokenGroup(random_hex(GROUP_BYTES)?))
    }
}

/// A fresh token for a value: a random token of `group` (128 bits of its own), or a
/// format-preserving token.
pub(crate) fn new_token(
    ty: DataType,
    fmt: TokenFormat,
    normalized: &str,
    raw: &str,
    group: &TokenGroup,
) -> Result<String, CoreError> {
    match fmt {
        TokenFormat::Random => Ok(format!(
            "{RANDOM_PREFIX}{}{}",
            group.0,
            random_hex(OWN_BYTES)?
        )),
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
