//! What the vault offers around its trail: signed checkpoints of the chain head, the public key
//! that checks them, and HMACs of values for investigators.

use tijori_crypto::PublicKey;
use tijori_store::AuditCheckpoint;
use tijori_types::validate::normalize;
use tijori_types::DataType;

use super::checkpoint_message;
use crate::{CoreError, Vault};

/// Where the audit public key is kept in the store's meta (public, for offline checks).
const META_PUBLIC_KEY: &str = "audit.public_key";

impl Vault {
    /// Signs the chain head, unless it is signed already. `None` if there is nothing new to
    /// sign. Needs the vault unsealed (the signing key lives in the key hierarchy).
    pub async fn checkpoint_audit(&self) -> Result<Option<AuditCheckpoint>, CoreError> {
        let keys = self.keyring.keys()?;
        let Some(head) = self.store.audit_head().await? else {
            return Ok(None);
        };
        let time = self.clock.now();
        let signature = keys
            .audit_signer
            .sign(&checkpoint_message(head.seq, &head.hash, time));
        let cp = AuditCheckpoint {
            seq: head.seq,
            hash: head.hash,
            time,
            signature,
        };
        Ok(self
            .store
            .insert_checkpoint(cp.clone())
            .await?
            .then_some(cp))
    }

    /// The public key that checks this vault's checkpoints, as published at its first unseal;
    /// readable while sealed. `None` for a vault never unsealed.
    pub async fn audit_public_key(&self) -> Result<Option<PublicKey>, CoreError> {
        stored_public_key(self.store.as_ref()).await
    }

    /// Publishes the signing key's public half at unseal, or checks it against the one
    /// published before: a mismatch means the data dir or its keys were swapped.
    pub(crate) async fn publish_audit_key(&self) -> Result<(), CoreError> {
        let public = self.keyring.keys()?.audit_signer.public_key();
        match stored_public_key(self.store.as_ref()).await? {
            None => Ok(self
                .store
                .set_meta(META_PUBLIC_KEY, &public.to_string())
                .await?),
            Some(stored) if stored == public => Ok(()),
            Some(_) => Err(CoreError::Internal(
                "the audit public key stored in the data dir is not this vault's signing key: \
                 the data dir or its keys were altered; investigate before using it"
                    .into(),
            )),
        }
    }

    /// The HMAC under the audit key of a value of type `data_type`, after normalization, as
    /// audit records carry it (`hmac-sha256:` and hex). Errors name the problem, never the
    /// value.
    pub fn audit_hash(&self, data_type: DataType, value: &str) -> Result<String, CoreError> {
        let keys = self.keyring.keys()?;
        let normal = zeroize::Zeroizing::new(normalize(data_type, value)?);
        Ok(format!(
            "hmac-sha256:{}",
            hex::encode(keys.audit_hmac.index(data_type.as_str(), normal.as_bytes()))
        ))
    }

    /// [`Vault::audit_hash`] asked for by `principal_id`, within its hourly quota
    /// ([`VaultConfig::audit_hash_per_hour`](crate::VaultConfig)): `RateLimited` beyond it.
    pub fn audit_hash_for(
        &self,
        principal_id: &str,
        data_type: DataType,
        value: &str,
    ) -> Result<String, CoreError> {
        self.hash_quota.take(principal_id, self.clock.now())?;
        self.audit_hash(data_type, value)
    }

    /// The HMAC a request's audit record carries for a value: `None` where there is none to
    /// give (unknown type, invalid value, sealed vault) and for card security codes, whose
    /// thousand possible values an HMAC would not hide from anyone allowed to compute HMACs.
    pub fn audit_value_hmac(&self, data_type: &str, value: &str) -> Option<String> {
        let ty = DataType::parse(data_type)?;
        if ty.is_ephemeral() {
            return None;
        }
        self.audit_hash(ty, value).ok()
    }
}

impl Vault {
    /// One archiving run (see [`super::archive`]), audited in this vault's trail.
    pub async fn archive_audit(
        &self,
        retention: &super::archive::Retention,
        progress: impl FnMut(u64),
    ) -> Result<super::archive::ArchiveReport, CoreError> {
        super::archive_and_audit(
            self.store.as_ref(),
            self,
            retention,
            self.clock.now(),
            progress,
        )
        .await
    }
}

/// The vault's own sink: records appended this way wake the trail's followers too.
#[async_trait::async_trait]
impl super::AuditSink for Vault {
    async fn append(&self, events: Vec<super::AuditEvent>) -> Result<(), CoreError> {
        self.audit(events).await
    }
}

/// The published audit public key of the vault in `store`.
pub async fn stored_public_key(
    store: &dyn tijori_store::Store,
) -> Result<Option<PublicKey>, CoreError> {
    match store.meta(META_PUBLIC_KEY).await? {
        None => Ok(None),
        Some(text) => PublicKey::parse(&text)
            .map(Some)
            .map_err(|_| CoreError::Internal("the stored audit public key is unreadable".into())),
    }
}
