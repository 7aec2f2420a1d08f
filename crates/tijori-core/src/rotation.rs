//! Key rotation (PCI DSS 3.6-3.7: defined cryptoperiods, rotation, retirement).
//!
//! Rotating adds a version and makes it the one new writes use; old versions stay readable, so
//! a rotation is instant. Two jobs then move existing material, in small steps that each commit
//! on their own, so that a crash loses nothing and the next step carries on where the last one
//! stopped (the store is the only state):
//! - **rewrap** re-wraps every data key still under an older key-encryption key under the
//!   newest one;
//! - **re-encrypt** moves every value still under a retired data key to the active key of its
//!   scope, and destroys each retired key once no value uses it.
//!
//! Rotated here: the key-encryption key and the vault-wide data key. Subjects' own keys are
//! rewrapped with the rest; the blind-index key is not rotated (every deterministic token's
//! index would change with it).

use serde::Serialize;
use tijori_crypto::{open, seal, SecretKey};
use tijori_store::{DataKeyRecord, KekRecord, KeyUsage};

use crate::keyring::{kek_ad, PURPOSE_DATA};
use crate::policy::{Authorized, Manage};
use crate::tokens::value_ad;
use crate::{rfc3339, CoreError, Vault};

/// Most records one step of a job moves.
pub const MAX_STEP: usize = 1000;

/// Which key a rotation makes a new version of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// The key-encryption key (wrapped by the root of trust).
    Kek,
    /// The vault-wide data key (values without a subject).
    Data,
}

impl KeyKind {
    pub fn parse(s: &str) -> Option<KeyKind> {
        match s {
            "kek" => Some(KeyKind::Kek),
            "data" => Some(KeyKind::Data),
            _ => None,
        }
    }
}

/// What one step of a job did, and what is left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct JobStep {
    pub moved: u64,
    pub remaining: u64,
    /// Retired data keys destroyed in this step (re-encrypt only).
    pub destroyed: u64,
}

/// One key version in the report.
#[derive(Clone, Debug, Serialize)]
pub struct KeyVersion {
    pub version: i64,
    pub created_at: String,
    /// Data keys under this KEK version, or values under this data key.
    pub records: u64,
    pub active: bool,
    /// Whether the key is older than its cryptoperiod.
    pub cryptoperiod_passed: bool,
}

/// `GET /v1/sys/keys`.
#[derive(Clone, Debug, Serialize)]
pub struct KeyReport {
    pub kek: KeyFamily,
    pub data: KeyFamily,
    /// Subjects' own data keys (one per subject; erased with it).
    pub subject_keys: u64,
    /// Data keys still wrapped under an older KEK: the rewrap job's work.
    pub rewrap_pending: u64,
    /// Values still under a retired data key: the re-encrypt job's work.
    pub reencrypt_pending: u64,
}

/// The versions of one kind of key and its cryptoperiod.
#[derive(Clone, Debug, Serialize)]
pub struct KeyFamily {
    pub cryptoperiod_days: i64,
    pub versions: Vec<KeyVersion>,
}

const DAY: i64 = 86_400;

impl Vault {
    /// Makes a new version of `kind`; new writes use it from now on. Answers the new version
    /// (a KEK version number, or a data key id).
    pub async fn rotate_key(
        &self,
        _auth: &Authorized<'_, Manage>,
        kind: KeyKind,
    ) -> Result<i64, CoreError> {
        let keys = self.keyring.keys()?;
        let now = self.clock.now();
        let fresh = SecretKey::generate()?;
        let version = match kind {
            KeyKind::Kek => {
                let version = keys.current_kek() + 1;
                let wrapped = keys.root().wrap(&kek_ad(version), &fresh)?;
                let stored = self
                    .store
                    .insert_kek(KekRecord {
                        version,
                        provider: keys.root().name().into(),
                        wrapped,
                        created_at: now,
                    })
                    .await?;
                if !stored {
                    return Err(CoreError::InvalidRequest(
                        "another rotation made this version at the same time; look at GET /v1/sys/keys",
                    ));
                }
                version
            }
            KeyKind::Data => {
                let wrapped = keys.wrap_data_key(PURPOSE_DATA, "", &fresh)?;
                let rec = DataKeyRecord {
                    id: 0,
                    purpose: PURPOSE_DATA.into(),
                    scope: String::new(),
                    kek_version: keys.current_kek(),
                    wrapped,
                    created_at: now,
                };
                self.store.rotate_data_key(rec).await?.id
            }
        };
        self.keyring.reload(self.store.as_ref(), now).await?;
        self.publish(crate::changes::KEYS).await;
        Ok(version)
    }

    /// One step of the rewrap job: up to `limit` data keys moved under the newest KEK.
    pub async fn rewrap_step(
        &self,
        _auth: &Authorized<'_, Manage>,
        limit: usize,
    ) -> Result<JobStep, CoreError> {
        let keys = self.keyring.keys()?;
        let current = keys.current_kek();
        let mut moved = 0;
        for rec in self
            .store
            .data_keys_below_kek(current, limit.min(MAX_STEP))
            .await?
        {
            let key = keys.unwrap_data_key(&rec)?;
            let wrapped = keys.wrap_data_key(&rec.purpose, &rec.scope, &key)?;
            if self
                .store
                .rewrap_data_key(rec.id, rec.kek_version, current, wrapped)
                .await?
            {
                moved += 1;
            }
        }
        let remaining = rewrap_backlog(&self.store.key_usage().await?, current);
        Ok(JobStep {
            moved,
            remaining,
            destroyed: 0,
        })
    }

    /// One step of the re-encrypt job: up to `limit` values moved from retired data keys to
    /// the active key of their scope; retired keys left with no value are destroyed.
    pub async fn reencrypt_step(
        &self,
        _auth: &Authorized<'_, Manage>,
        limit: usize,
    ) -> Result<JobStep, CoreError> {
        let keys = self.keyring.keys()?;
        let now = self.clock.now();
        let mut budget = limit.clamp(1, MAX_STEP);
        let (mut moved, mut destroyed) = (0, 0);
        for retired in self.store.retired_data_keys(PURPOSE_DATA).await? {
            let tokens = self.store.tokens_under_key(retired.id, budget).await?;
            if tokens.is_empty() {
                continue;
            }
            let old = keys.data_key(self.store.as_ref(), retired.id).await?;
            for t in tokens {
                let plain = open(
                    &old,
                    &value_ad(&t.token, &t.data_type, retired.id),
                    &t.ciphertext,
                )
                .map_err(|_| {
                    CoreError::Internal(format!(
                        "token under data key {} does not decrypt",
                        retired.id
                    ))
                })?;
                let (new_id, new_key) = keys
                    .write_key(self.store.as_ref(), t.subject.as_deref(), now)
                    .await?;
                let sealed = seal(&new_key, &value_ad(&t.token, &t.data_type, new_id), &plain)?;
                if self
                    .store
                    .reencrypt_token(&t.token, retired.id, new_id, sealed)
                    .await?
                {
                    moved += 1;
                }
                budget -= 1;
            }
            if budget == 0 {
                break;
            }
        }
        // Retired keys that no value uses any more are destroyed (the store checks again).
        for retired in self.store.retired_data_keys(PURPOSE_DATA).await? {
            if self.store.destroy_retired_key(retired.id).await? {
                destroyed += 1;
            }
        }
        if destroyed > 0 {
            // Drop the destroyed keys from memory too (fresh caches; they zeroize when the
            // last in-flight request lets go).
            self.keyring.reload(self.store.as_ref(), now).await?;
            self.publish(crate::changes::KEYS).await;
        }
        let remaining = self.store.key_usage().await?.tokens_under_retired;
        Ok(JobStep {
            moved,
            remaining,
            destroyed,
        })
    }

    /// Versions, creation dates, records per version, cryptoperiods, and the jobs' backlog.
    pub async fn key_report(&self, _auth: &Authorized<'_, Manage>) -> Result<KeyReport, CoreError> {
        let now = self.clock.now();
        let usage = self.store.key_usage().await?;
        let keks = self.store.keks().await?;
        let current = keks.iter().map(|k| k.version).max().unwrap_or(0);
        let (kek_days, data_days) = (
            self.config.kek_cryptoperiod_days,
            self.config.data_key_cryptoperiod_days,
        );
        let passed = |created: i64, days: i64| now >= created.saturating_add(days * DAY);
        let kek = KeyFamily {
            cryptoperiod_days: kek_days,
            versions: keks
                .iter()
                .map(|k| KeyVersion {
                    version: k.version,
                    created_at: rfc3339(k.created_at),
                    records: usage
                        .per_kek
                        .iter()
                        .find(|(v, _)| *v == k.version)
                        .map(|(_, n)| *n)
                        .unwrap_or(0),
                    active: k.version == current,
                    cryptoperiod_passed: passed(k.created_at, kek_days),
                })
                .collect(),
        };
        let data = KeyFamily {
            cryptoperiod_days: data_days,
            versions: usage
                .shared
                .iter()
                .map(|(rec, tokens, active)| KeyVersion {
                    version: rec.id,
                    created_at: rfc3339(rec.created_at),
                    records: *tokens,
                    active: *active,
                    cryptoperiod_passed: passed(rec.created_at, data_days),
                })
                .collect(),
        };
        let rewrap_pending = rewrap_backlog(&usage, current);
        Ok(KeyReport {
            kek,
            data,
            subject_keys: usage.subject_keys,
            rewrap_pending,
            reencrypt_pending: usage.tokens_under_retired,
        })
    }
}

/// Data keys still wrapped under a KEK version older than `current`.
fn rewrap_backlog(usage: &KeyUsage, current: i64) -> u64 {
    usage
        .per_kek
        .iter()
        .filter(|(v, _)| *v < current)
        .map(|(_, n)| n)
        .sum()
}
