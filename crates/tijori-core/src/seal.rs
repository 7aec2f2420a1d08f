//! Production initialization and unsealing, under one of two roots of trust.
//!
//! With custodians' key shares, `init` makes the root key, builds the key hierarchy under it,
//! splits it into shares and hands them out once: nothing of the root key or a share is stored.
//! A production vault starts sealed; custodians then give their shares one by one
//! ([`Vault::submit_share`]), and at the threshold the root key is rebuilt, unwraps the
//! key-encryption keys, and is dropped (zeroized). A share of another vault, a mistyped one, or
//! one given twice is refused when given; a set of shares that rebuilds a wrong key (a bad share
//! with valid check digits) is refused at the threshold, and unsealing starts over.
//!
//! With an external root of trust (an HSM behind a [`KeyProvider`]), `init` builds the key
//! hierarchy under the provider's key ([`Vault::init_with_provider`]); the server unseals with
//! [`Vault::unseal`] and the same provider whenever the HSM is reachable. Both ways share one
//! initialization path (`init_under`): the same checks, records, audit and seal.

use std::sync::Arc;

use tijori_crypto::{
    combine_shares, random_bytes, split_key, KeyProvider, KeyShare, RootKey, SecretKey,
};
use zeroize::Zeroizing;

use crate::{CoreError, Vault};

/// How the vault's root key is held: [`SEAL_SHAMIR`] or [`SEAL_PKCS11`].
pub const META_SEAL: &str = "seal.type";
const META_TAG: &str = "seal.vault_tag";
const META_THRESHOLD: &str = "seal.threshold";
const META_SHARES: &str = "seal.shares";
/// Seal type of a vault whose root key is split among custodians (Shamir); also the provider
/// name its key records carry.
pub const SEAL_SHAMIR: &str = "shamir";
/// Seal type of a vault whose root key lives in a PKCS#11 HSM.
pub const SEAL_PKCS11: &str = "pkcs11";

/// What `init` hands out once. No `Debug`: it holds the shares and the root token.
pub struct Initialized {
    pub shares: Vec<Zeroizing<String>>,
    pub root_token: Zeroizing<String>,
    pub threshold: u8,
}

/// Where unsealing stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct UnsealProgress {
    pub sealed: bool,
    /// Shares received towards the threshold (0 once unsealed).
    pub progress: u8,
    pub threshold: u8,
}

/// Shares given so far, waiting for the threshold; dropped (zeroized) at unseal or reset.
#[derive(Default)]
pub(crate) struct Pending(tokio::sync::Mutex<Vec<KeyShare>>);

impl Vault {
    /// Initializes a new, empty vault whose root key is split into `count` shares, any
    /// `threshold` of which unseal it. Leaves the vault sealed.
    pub async fn init_with_shares(
        &self,
        count: u8,
        threshold: u8,
    ) -> Result<Initialized, CoreError> {
        if !(2..=count).contains(&threshold) {
            return Err(CoreError::InvalidRequest(
                "the threshold must be at least 2 and at most the number of shares",
            ));
        }
        self.refuse_initialized().await?;
        let tag: [u8; 4] = random_bytes()?;
        let root = SecretKey::generate()?;
        let shares = split_key(&root, tag, threshold, count)?;
        let settings = [
            (META_TAG, hex::encode(tag)),
            (META_THRESHOLD, threshold.to_string()),
            (META_SHARES, count.to_string()),
        ];
        let root_token = self
            .init_under(
                Arc::new(RootKey::new(root, SEAL_SHAMIR)),
                SEAL_SHAMIR,
                &settings,
            )
            .await?;
        Ok(Initialized {
            shares: shares.iter().map(KeyShare::to_text).collect(),
            root_token,
            threshold,
        })
    }

    /// Initializes a new, empty vault under an external root of trust, such as a PKCS#11 HSM:
    /// `provider` wraps the first key-encryption key, and `seal_type` (e.g. [`SEAL_PKCS11`]) is
    /// recorded so that the server knows how to unseal. Answers the initial root token (to print
    /// once). Leaves the vault sealed; [`Vault::unseal`] with the same provider opens it.
    pub async fn init_with_provider(
        &self,
        provider: Arc<dyn KeyProvider>,
        seal_type: &str,
    ) -> Result<Zeroizing<String>, CoreError> {
        if seal_type == SEAL_SHAMIR {
            return Err(CoreError::InvalidRequest(
                "a vault sealed with key shares is initialized with init_with_shares",
            ));
        }
        if seal_type.is_empty() || !seal_type.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CoreError::InvalidRequest(
                "the seal type must be a short name such as pkcs11",
            ));
        }
        self.refuse_initialized().await?;
        self.init_under(provider, seal_type, &[]).await
    }

    /// Whether the store holds a vault already: initialized for production, or with key records
    /// (a dev vault, or an initialization cut short).
    pub async fn holds_vault(&self) -> Result<bool, CoreError> {
        Ok(self.store.meta(META_SEAL).await?.is_some() || !self.store.keks().await?.is_empty())
    }

    async fn refuse_initialized(&self) -> Result<(), CoreError> {
        if self.holds_vault().await? {
            return Err(CoreError::InvalidRequest(
                "this data dir holds a vault already; initialize a new, empty data dir",
            ));
        }
        Ok(())
    }

    /// What every production initialization does once the root of trust is at hand: builds the
    /// key hierarchy under `provider`, makes the root token, records the seal settings (the seal
    /// type last, as the mark of a finished init), audits `system.init`, signs the audit trail,
    /// and seals, also when a step fails.
    async fn init_under(
        &self,
        provider: Arc<dyn KeyProvider>,
        seal_type: &str,
        settings: &[(&str, String)],
    ) -> Result<Zeroizing<String>, CoreError> {
        let done = async {
            self.unseal(provider).await?;
            let root_token = Zeroizing::new(self.generate_root_token().await?);
            for (k, v) in settings {
                self.store.set_meta(k, v).await?;
            }
            self.store.set_meta(META_SEAL, seal_type).await?;
            self.audit_system("system.init").await?;
            self.checkpoint_audit().await?;
            Ok::<_, CoreError>(root_token)
        }
        .await;
        let sealed = self.keyring.seal();
        let root_token = done?;
        sealed?;
        Ok(root_token)
    }

    /// How this vault's root key is held, as set at init (`None` for a dev vault).
    pub async fn seal_type(&self) -> Result<Option<String>, CoreError> {
        Ok(self.store.meta(META_SEAL).await?)
    }

    /// Where unsealing stands.
    pub async fn unseal_progress(&self) -> Result<UnsealProgress, CoreError> {
        let threshold = self.shamir_setup().await.map(|(_, t)| t).unwrap_or(0);
        let received = if self.is_sealed() {
            self.pending.0.lock().await.len()
        } else {
            0
        };
        Ok(self.progress(received, threshold))
    }

    /// Takes one custodian's share; at the threshold, rebuilds the root key and unseals.
    pub async fn submit_share(&self, text: &str) -> Result<UnsealProgress, CoreError> {
        let (tag, threshold) = self.shamir_setup().await?;
        let mut pending = self.pending.0.lock().await;
        if !self.is_sealed() {
            pending.clear();
            return Ok(self.progress(0, threshold));
        }
        let share = KeyShare::parse(text).map_err(|e| match e {
            tijori_crypto::CryptoError::Malformed(m) => CoreError::InvalidRequest(m),
            other => CoreError::from(other),
        })?;
        if share.vault() != tag || share.threshold() != threshold {
            return Err(CoreError::InvalidRequest(
                "this key share belongs to another vault (or another split of this one's key)",
            ));
        }
        if pending.iter().any(|s| s.index() == share.index()) {
            return Err(CoreError::InvalidRequest(
                "this share was given already; the next custodian's share is needed",
            ));
        }
        pending.push(share);
        if pending.len() < usize::from(threshold) {
            return Ok(self.progress(pending.len(), threshold));
        }
        let shares = std::mem::take(&mut *pending);
        let root = combine_shares(&shares).map_err(|_| wrong_shares())?;
        drop(shares);
        match self.unseal(Arc::new(RootKey::new(root, SEAL_SHAMIR))).await {
            Ok(()) => Ok(self.progress(0, threshold)),
            Err(CoreError::RootMismatch) => Err(wrong_shares()),
            Err(e) => Err(e),
        }
    }

    fn progress(&self, received: usize, threshold: u8) -> UnsealProgress {
        UnsealProgress {
            sealed: self.is_sealed(),
            progress: received as u8,
            threshold,
        }
    }

    /// The vault tag and threshold of a share-sealed vault.
    async fn shamir_setup(&self) -> Result<([u8; 4], u8), CoreError> {
        if self.seal_type().await?.as_deref() != Some(SEAL_SHAMIR) {
            return Err(CoreError::InvalidRequest(
                "this vault is not unsealed with key shares",
            ));
        }
        let broken = || CoreError::Internal("the vault's seal settings are unreadable".into());
        let tag = self.store.meta(META_TAG).await?.ok_or_else(broken)?;
        let mut t = [0u8; 4];
        hex::decode_to_slice(tag, &mut t).map_err(|_| broken())?;
        let threshold = self
            .store
            .meta(META_THRESHOLD)
            .await?
            .and_then(|v| v.parse().ok())
            .ok_or_else(broken)?;
        Ok((t, threshold))
    }
}

fn wrong_shares() -> CoreError {
    CoreError::InvalidRequest(
        "these shares do not open this vault: one of them is wrong. Unsealing starts over",
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tijori_store::sqlite::SqliteStore;
    use tijori_store::{AuditStore, KeyStore};

    use super::*;
    use crate::{SystemClock, VaultConfig};

    async fn empty_vault(name: &str) -> (Vault, Arc<SqliteStore>, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("tijori-seal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let store = Arc::new(SqliteStore::open(&dir).unwrap());
        let vault = Vault::open(store.clone(), Arc::new(SystemClock), VaultConfig::default())
            .await
            .unwrap();
        (vault, store, dir)
    }

    #[tokio::test]
    async fn init_with_provider_builds_the_hierarchy_under_it_and_seals() {
        let (vault, store, dir) = empty_vault("provider").await;
        let hsm: Arc<dyn KeyProvider> =
            Arc::new(RootKey::new(SecretKey::generate().unwrap(), SEAL_PKCS11));
        let token = vault
            .init_with_provider(hsm.clone(), SEAL_PKCS11)
            .await
            .unwrap();
        assert!(token.starts_with("tjr_"));
        assert!(vault.is_sealed(), "init leaves the vault sealed");
        assert_eq!(
            vault.seal_type().await.unwrap().as_deref(),
            Some(SEAL_PKCS11)
        );
        let keks = store.keks().await.unwrap();
        assert_eq!(keks.len(), 1);
        assert_eq!(keks[0].provider, SEAL_PKCS11);
        assert_eq!(vault.authenticate(&token).unwrap().id, crate::ROOT_ID);
        let ops: Vec<String> = store
            .audit_rows(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.record)
            .collect();
        assert!(ops.iter().any(|r| r.contains("system.init")), "{ops:?}");

        // Not twice, and not as a share-sealed vault.
        for again in [
            vault
                .init_with_provider(hsm.clone(), SEAL_PKCS11)
                .await
                .err(),
            vault.init_with_shares(3, 2).await.err(),
        ] {
            assert!(
                matches!(again, Some(CoreError::InvalidRequest(m)) if m.contains("holds a vault")),
                "{:?}",
                again.map(|e| e.to_string())
            );
        }
        assert!(matches!(
            vault.submit_share("tjs1-x").await,
            Err(CoreError::InvalidRequest(_))
        ));

        // The same root of trust opens it; another does not.
        let other = Arc::new(RootKey::new(SecretKey::generate().unwrap(), SEAL_PKCS11));
        assert!(matches!(
            vault.unseal(other).await,
            Err(CoreError::RootMismatch)
        ));
        vault.unseal(hsm).await.unwrap();
        assert!(!vault.is_sealed());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn init_with_provider_refuses_a_share_seal_type_and_a_used_dir() {
        let (vault, _store, dir) = empty_vault("provider-refuse").await;
        let hsm: Arc<dyn KeyProvider> =
            Arc::new(RootKey::new(SecretKey::generate().unwrap(), SEAL_PKCS11));
        for bad in [SEAL_SHAMIR, "", "pk cs11"] {
            assert!(matches!(
                vault.init_with_provider(hsm.clone(), bad).await,
                Err(CoreError::InvalidRequest(_))
            ));
        }
        assert!(
            !vault.holds_vault().await.unwrap(),
            "a refused init leaves nothing"
        );
        vault.init_with_shares(3, 2).await.unwrap();
        assert!(vault.holds_vault().await.unwrap());
        assert!(matches!(
            vault.init_with_provider(hsm.clone(), SEAL_PKCS11).await,
            Err(CoreError::InvalidRequest(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
