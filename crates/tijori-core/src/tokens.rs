//! Token strings and the associated data that binds each ciphertext to its row.

use std::collections::HashMap;
use std::sync::Mutex;

use tijori_crypto::{random_hex, RandomPool};
use tijori_types::api::TokenFormat;
use tijori_types::{format, DataType};

use crate::CoreError;

/// Prefix of random tokens: says "this is a Tijori token" and never resembles a value.
pub(crate) const RANDOM_PREFIX: &str = "tok_";

/// Random bytes a random token's group takes (shown as twice as many hex digits).
const GROUP_BYTES: usize = 4;

/// Random bytes that make a random token its own (128 bits, as the API promises).
const OWN_BYTES: usize = 16;

/// The leading random part shared by a run of random tokens: `tok_`, then the group's 8 hex
/// digits, then each token's own 32. Tokens are stored in their string's order, so tokens of
/// one group land side by side on a few fresh pages of the token table instead of each on a
/// random page of it, which would be written to the log and again at the checkpoint: a
/// 1,000-item batch writes tens of pages, not a thousand, and so do a thousand single tokenizes.
/// A group tells a holder of two of its tokens only that one caller made both within the same
/// second (see [`TokenGroups`]); tokens of different callers or seconds share nothing.
pub(crate) struct TokenGroup(String);

impl TokenGroup {
    /// A new group, drawn from the OS CSPRNG.
    pub(crate) fn new() -> Result<TokenGroup, CoreError> {
        Ok(TokenGroup(random_hex(GROUP_BYTES)?))
    }
}

/// Most single tokenizes that share one group.
const GROUP_RUN: u32 = 256;

/// Callers' current groups beyond which the map is pruned of past seconds' groups.
const GROUPS_KEPT: usize = 1024;

/// The group each caller's single-token requests share: a caller's requests within one second
/// of the vault's clock, at most [`GROUP_RUN`] of them, draw one group. Without this, each
/// single tokenize puts its token on a random page of a large table; measured with `wrk`, one
/// shared group lifted tokenize by half (BENCHMARKS.md). A batch draws its own group instead.
#[derive(Default)]
pub(crate) struct TokenGroups(Mutex<Runs>);

#[derive(Default)]
struct Runs {
    by_caller: HashMap<String, Run>,
    /// The second of the last pruning: at most one a second, however many callers are active.
    pruned_at: i64,
}

struct Run {
    group: String,
    second: i64,
    left: u32,
}

impl TokenGroups {
    /// The group for one more token of `caller` (a principal's id) at `now`.
    pub(crate) fn next(&self, caller: &str, now: i64) -> Result<TokenGroup, CoreError> {
        // Nothing is left half-changed under the lock, so a poisoned lock is still sound.
        let runs = &mut *self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(run) = runs.by_caller.get_mut(caller) {
            if run.second == now && run.left > 0 {
                run.left -= 1;
                return Ok(TokenGroup(run.group.clone()));
            }
        }
        if runs.by_caller.len() >= GROUPS_KEPT && runs.pruned_at != now {
            // `>=`: a request that read the clock just before another keeps the newer runs.
            runs.by_caller.retain(|_, run| run.second >= now);
            runs.pruned_at = now;
        }
        let TokenGroup(group) = TokenGroup::new()?;
        let run = Run {
            group: group.clone(),
            second: now,
            left: GROUP_RUN - 1,
        };
        runs.by_caller.insert(caller.to_owned(), run);
        Ok(TokenGroup(group))
    }
}

/// Bytes of randomness a new token takes with its nonce (16 of its own and 12; a preserving
/// token's digits take fewer): a request's [`RandomPool`] holds this much a value, and draws
/// again if a token needs more.
pub(crate) const RANDOM_PER_TOKEN: usize = 32;

/// A fresh token for a value: a random token of `group` (128 bits of its own), or a
/// format-preserving token.
pub(crate) fn new_token(
    ty: DataType,
    fmt: TokenFormat,
    normalized: &str,
    raw: &str,
    group: &TokenGroup,
    pool: &mut RandomPool,
) -> Result<String, CoreError> {
    match fmt {
        TokenFormat::Random => Ok(format!(
            "{RANDOM_PREFIX}{}{}",
            group.0,
            pool.hex(OWN_BYTES)?
        )),
        TokenFormat::Preserving => {
            let mut rng_failed = false;
            let mut digit = || {
                pool.digit().unwrap_or_else(|_| {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    fn group(groups: &TokenGroups, caller: &str, now: i64) -> String {
        groups.next(caller, now).unwrap().0
    }

    /// One caller's tokens share a group within a second, for at most `GROUP_RUN` tokens; other
    /// callers and later seconds draw their own. (Two 32-bit groups drawn alike would fail an
    /// inequality here: one chance in four billion.)
    #[test]
    fn a_group_serves_one_caller_for_one_second_and_a_bounded_run() {
        let groups = TokenGroups::default();
        let first = group(&groups, "a", 100);
        assert_eq!(first.len(), 2 * GROUP_BYTES);
        for _ in 1..GROUP_RUN {
            assert_eq!(group(&groups, "a", 100), first);
        }
        let second_run = group(&groups, "a", 100);
        assert_ne!(second_run, first, "a run ends after GROUP_RUN tokens");
        assert_ne!(
            group(&groups, "b", 100),
            second_run,
            "callers share nothing"
        );
        assert_ne!(group(&groups, "a", 101), second_run, "nor do seconds");
    }

    /// Past `GROUPS_KEPT` callers, past seconds' runs are dropped; the current second's runs
    /// are kept and go on.
    #[test]
    fn past_seconds_groups_are_pruned() {
        let groups = TokenGroups::default();
        for i in 0..GROUPS_KEPT - 1 {
            group(&groups, &i.to_string(), 1);
        }
        let current = group(&groups, "current", 2);
        group(&groups, "late", 2);
        let runs = &groups.0.lock().unwrap().by_caller;
        assert_eq!(runs.len(), 2);
        assert_eq!(runs["current"].group, current);
    }

    /// Preserving tokens draw their digits from the pool, through its refills, and keep the
    /// value's shape.
    #[test]
    fn preserving_tokens_draw_digits_from_the_pool() {
        let mut pool = RandomPool::new(64);
        let group = TokenGroup::new().unwrap();
        let card = "4111111111111111";
        let tokens: std::collections::HashSet<String> = (0..100)
            .map(|_| {
                let t = new_token(
                    DataType::CardNumber,
                    TokenFormat::Preserving,
                    card,
                    card,
                    &group,
                    &mut pool,
                )
                .unwrap();
                assert_eq!(t.len(), 16);
                assert!(t.starts_with("411111") && t.ends_with("1111"), "{t}");
                t
            })
            .collect();
        assert!(tokens.len() > 90, "middle digits vary: {}", tokens.len());
    }
}
