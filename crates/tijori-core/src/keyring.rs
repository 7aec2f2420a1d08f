//! The key hierarchy in memory and the seal state.
//!
//! root of trust ([`KeyProvider`]) -> key-encryption keys (versioned, `keks` table) -> data keys
//! (`data_keys` table: one vault-wide key, one per subject for erasure by crypto-shredding, the
//! blind-index key, the idempotency-fingerprint key, the audit trail's signing seed and value-HMAC
//! key, the key of operators' TOTP secrets) -> values. Each wrapped key is bound by
//! associated data to its purpose, scope and KEK version; each value to its token, type and data
//! key id. Rotation adds a KEK version or a data key; old ones stay readable, so neither needs a
//! data migration. Sealing drops every unwrapped key at once: they zeroize as the last reference
//! goes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use tijori_crypto::{unwrap_key, wrap_key, BlindIndexKey, KeyProvider, SecretKey, SigningKey};
use tijori_store::{DataKeyRecord, KekRecord, Store};

use crate::CoreError;

pub(crate) const PURPOSE_DATA: &str = "data";
const PURPOSE_BLIND: &str = "blind_index";
const PURPOSE_IDEMPOTENCY: &str = "idempotency";
const PURPOSE_AUDIT_SIGNING: &str = "audit_signing";
const PURPOSE_AUDIT_HMAC: &str = "audit_hmac";
const PURPOSE_OPERATOR: &str = "operator";
/// Subjects' own keys are cached up to this many; past it the cache starts afresh.
const SUBJECT_CACHE: usize = 100_000;

/// Unwrapped key-encryption keys by version, and the version new data keys are wrapped under.
struct Keks {
    by_version: HashMap<i64, SecretKey>,
    current: i64,
}

/// Unwrapped key material: exists only while unsealed.
pub(crate) struct Keys {
    /// The root of trust, kept while unsealed so that a new key-encryption key can be wrapped
    /// (rotation); dropped, and zeroized where it holds the key, at seal.
    root: Arc<dyn KeyProvider>,
    keks: Keks,
    /// The vault-wide data key, for values without a subject.
    shared: (i64, Arc<SecretKey>),
    pub(crate) blind: BlindIndexKey,
    pub(crate) idempotency: BlindIndexKey,
    /// Signs the audit chain's checkpoints.
    pub(crate) audit_signer: SigningKey,
    /// Keys the HMACs of values in audit records.
    pub(crate) audit_hmac: BlindIndexKey,
    /// Encrypts operators' TOTP secrets.
    pub(crate) operator: SecretKey,
    /// Data keys (of purpose `data`) unwrapped so far, by id.
    deks: RwLock<HashMap<i64, Arc<SecretKey>>>,
    subjects: RwLock<HashMap<String, (i64, Arc<SecretKey>)>>,
}

/// The seal state: `None` while sealed.
#[derive(Default)]
pub(crate) struct Keyring {
    keys: RwLock<Option<Arc<Keys>>>,
    /// Reloads take turns, so an older one never replaces a newer one's keys.
    reloading: tokio::sync::Mutex<()>,
}

/// The key scope of a subject's own data keys.
pub(crate) fn subject_scope(subject: &str) -> String {
    format!("subject:{subject}")
}

pub(crate) fn kek_ad(version: i64) -> Vec<u8> {
    format!("tijori:kek:{version}").into_bytes()
}

fn dek_ad(purpose: &str, scope: &str, kek_version: i64) -> Vec<u8> {
    format!("tijori:dek:{purpose}:{scope}:{kek_version}").into_bytes()
}

impl Keyring {
    pub(crate) fn keys(&self) -> Result<Arc<Keys>, CoreError> {
        self.keys
            .read()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .clone()
            .ok_or(CoreError::Sealed)
    }

    pub(crate) fn is_sealed(&self) -> bool {
        self.keys.read().map(|k| k.is_none()).unwrap_or(true)
    }

    /// Drops all key material from memory.
    pub(crate) fn seal(&self) -> Result<(), CoreError> {
        *self
            .keys
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))? = None;
        Ok(())
    }

    /// Unwraps the hierarchy again under the root of trust it was unsealed with, after a
    /// rotation changed the active keys. One reload at a time; and the result is installed
    /// only if the keys it started from are still in place: a seal (or another unseal) that
    /// came meanwhile wins, so a reload never unseals a node that was just sealed.
    pub(crate) async fn reload(&self, store: &dyn Store, now: i64) -> Result<(), CoreError> {
        let _one = self.reloading.lock().await;
        let before = self.keys()?;
        let keys = Arc::new(build(store, before.root.clone(), now).await?);
        let mut slot = self
            .keys
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?;
        match slot.as_ref() {
            Some(current) if Arc::ptr_eq(current, &before) => {
                *slot = Some(keys);
                Ok(())
            }
            Some(_) => Ok(()),
            None => Err(CoreError::Sealed),
        }
    }

    /// Unwraps the hierarchy under `provider`, creating the first KEK and data keys of a new
    /// vault, and puts it in place.
    pub(crate) async fn unseal(
        &self,
        store: &dyn Store,
        provider: Arc<dyn KeyProvider>,
        now: i64,
    ) -> Result<(), CoreError> {
        let keys = build(store, provider, now).await?;
        *self
            .keys
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))? = Some(Arc::new(keys));
        Ok(())
    }
}

/// Unwraps the hierarchy under `provider`, creating the first KEK and data keys of a new vault.
async fn build(
    store: &dyn Store,
    provider: Arc<dyn KeyProvider>,
    now: i64,
) -> Result<Keys, CoreError> {
    let mut records = store.keks().await?;
    if records.is_empty() {
        let kek = SecretKey::generate()?;
        let wrapped = provider.wrap(&kek_ad(1), &kek)?;
        store
            .insert_kek(KekRecord {
                version: 1,
                provider: provider.name().into(),
                wrapped,
                created_at: now,
            })
            .await?;
        records = store.keks().await?;
    }
    let mut by_version = HashMap::new();
    for r in &records {
        let key = provider
            .unwrap(&kek_ad(r.version), &r.wrapped)
            .map_err(|_| CoreError::RootMismatch)?;
        by_version.insert(r.version, key);
    }
    let current = records
        .iter()
        .map(|r| r.version)
        .max()
        .ok_or(CoreError::Sealed)?;
    let keks = Keks {
        by_version,
        current,
    };
    let (shared_rec, shared) = keks.active(store, PURPOSE_DATA, "", now).await?;
    let shared = (shared_rec.id, Arc::new(shared));
    let blind = BlindIndexKey::new(keks.active(store, PURPOSE_BLIND, "", now).await?.1);
    let idempotency = BlindIndexKey::new(keks.active(store, PURPOSE_IDEMPOTENCY, "", now).await?.1);
    let audit_signer =
        SigningKey::from_seed(&keks.active(store, PURPOSE_AUDIT_SIGNING, "", now).await?.1);
    let audit_hmac = BlindIndexKey::new(keks.active(store, PURPOSE_AUDIT_HMAC, "", now).await?.1);
    let operator = keks.active(store, PURPOSE_OPERATOR, "", now).await?.1;
    let deks = HashMap::from([(shared.0, shared.1.clone())]);
    let keys = Keys {
        root: provider,
        keks,
        shared,
        blind,
        idempotency,
        audit_signer,
        audit_hmac,
        operator,
        deks: RwLock::new(deks),
        subjects: RwLock::new(HashMap::new()),
    };
    Ok(keys)
}

impl Keks {
    /// The active key of (purpose, scope), created if there is none yet, unwrapped.
    async fn active(
        &self,
        store: &dyn Store,
        purpose: &str,
        scope: &str,
        now: i64,
    ) -> Result<(DataKeyRecord, SecretKey), CoreError> {
        let rec = match store.active_data_key(purpose, scope).await? {
            Some(rec) => rec,
            None => {
                let fresh = SecretKey::generate()?;
                let kek = self
                    .by_version
                    .get(&self.current)
                    .ok_or(CoreError::Sealed)?;
                let wrapped = wrap_key(kek, &dek_ad(purpose, scope, self.current), &fresh)?;
                // Another request (or node) may win the race; the store answers the winner.
                store
                    .insert_data_key(DataKeyRecord {
                        id: 0,
                        purpose: purpose.into(),
                        scope: scope.into(),
                        kek_version: self.current,
                        wrapped,
                        created_at: now,
                    })
                    .await?
            }
        };
        let key = self.unwrap(&rec)?;
        Ok((rec, key))
    }

    fn unwrap(&self, rec: &DataKeyRecord) -> Result<SecretKey, CoreError> {
        let kek = self.by_version.get(&rec.kek_version).ok_or_else(|| {
            CoreError::Internal(format!(
                "data key {} names unknown KEK v{}",
                rec.id, rec.kek_version
            ))
        })?;
        unwrap_key(
            kek,
            &dek_ad(&rec.purpose, &rec.scope, rec.kek_version),
            &rec.wrapped,
        )
        .map_err(|_| CoreError::Internal(format!("data key {} does not unwrap", rec.id)))
    }
}

impl Keys {
    /// The root of trust the vault was unsealed with.
    pub(crate) fn root(&self) -> &dyn KeyProvider {
        self.root.as_ref()
    }

    /// The KEK version new data keys are wrapped under.
    pub(crate) fn current_kek(&self) -> i64 {
        self.keks.current
    }

    /// `key` wrapped as a data key of (purpose, scope) under the current KEK.
    pub(crate) fn wrap_data_key(
        &self,
        purpose: &str,
        scope: &str,
        key: &SecretKey,
    ) -> Result<Vec<u8>, CoreError> {
        let current = self.keks.current;
        let kek = self
            .keks
            .by_version
            .get(&current)
            .ok_or(CoreError::Sealed)?;
        Ok(wrap_key(kek, &dek_ad(purpose, scope, current), key)?)
    }

    /// A data key record's key, unwrapped.
    pub(crate) fn unwrap_data_key(&self, rec: &DataKeyRecord) -> Result<SecretKey, CoreError> {
        self.keks.unwrap(rec)
    }

    /// The key new values are written under: the subject's own, or the vault-wide one.
    pub(crate) async fn write_key(
        &self,
        store: &dyn Store,
        subject: Option<&str>,
        now: i64,
    ) -> Result<(i64, Arc<SecretKey>), CoreError> {
        let Some(subject) = subject else {
            return Ok(self.shared.clone());
        };
        if let Some(hit) = self
            .subjects
            .read()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .get(subject)
        {
            return Ok(hit.clone());
        }
        let scope = subject_scope(subject);
        let (rec, key) = self.keks.active(store, PURPOSE_DATA, &scope, now).await?;
        let found = (rec.id, Arc::new(key));
        self.deks
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .insert(rec.id, found.1.clone());
        let mut cache = self
            .subjects
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?;
        if cache.len() >= SUBJECT_CACHE {
            cache.clear();
        }
        cache.insert(subject.to_owned(), found.clone());
        Ok(found)
    }

    /// Drops a subject's key from the caches (after its erasure): the last reference zeroizes
    /// it.
    pub(crate) fn forget_subject(&self, subject: &str) -> Result<(), CoreError> {
        let removed = self
            .subjects
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .remove(subject);
        let mut deks = self
            .deks
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?;
        match removed {
            Some((id, _)) => {
                deks.remove(&id);
            }
            // Its key may be cached by id alone (read, not written, since unseal): start over,
            // keeping the vault-wide key.
            None => deks.retain(|id, _| *id == self.shared.0),
        }
        Ok(())
    }

    /// The data key with this id, for decryption.
    pub(crate) async fn data_key(
        &self,
        store: &dyn Store,
        id: i64,
    ) -> Result<Arc<SecretKey>, CoreError> {
        if let Some(k) = self
            .deks
            .read()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .get(&id)
        {
            return Ok(k.clone());
        }
        let rec = store
            .data_key(id)
            .await?
            .ok_or_else(|| CoreError::Internal(format!("data key {id} is missing")))?;
        let key = Arc::new(self.keks.unwrap(&rec)?);
        self.deks
            .write()
            .map_err(|_| CoreError::poisoned("keyring"))?
            .insert(id, key.clone());
        Ok(key)
    }
}
