//! Production initialization and unsealing with custodians' key shares.
//!
//! `init` makes the root key, builds the key hierarchy under it, splits it into shares and hands
//! them out once: nothing of the root key or a share is stored. A production vault starts
//! sealed; custodians then give their shares one by one ([`Vault::submit_share`]), and at the
//! threshold the root key is rebuilt, unwraps the key-encryption keys, and is dropped
//! (zeroized). A share of another vault, a mistyped one, or one given twice is refused when
//! given; a set of shares that rebuilds a wrong key (a bad share with valid check digits) is
//! refused at the threshold, and unsealing starts over.

use tijori_crypto::{combine_shares, random_bytes, split_key, KeyShare, RootKey, SecretKey};
use zeroize::Zeroizing;

use crate::{CoreError, Vault};

/// How the vault's root key is held: `shamir` (custodians' shares) or `pkcs11` (an HSM).
pub const META_SEAL: &str = "seal.type";
const META_TAG: &str = "seal.vault_tag";
const META_THRESHOLD: &str = "seal.threshold";
const META_SHARES: &str = "seal.shares";
/// The provider name the key records carry for a Shamir-split root.
const SHAMIR: &str = "shamir";

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
        if self.store.meta(META_SEAL).await?.is_some() || !self.store.keks().await?.is_empty() {
            return Err(CoreError::InvalidRequest(
                "this data dir holds a vault already; initialize a new, empty data dir",
            ));
        }
        let tag: [u8; 4] = random_bytes()?;
        let root = SecretKey::generate()?;
        let shares = split_key(&root, tag, threshold, count)?;
        self.unseal(&RootKey::new(root, SHAMIR)).await?;
        let root_token = Zeroizing::new(self.generate_root_token().await?);
        for (k, v) in [
            (META_TAG, hex::encode(tag)),
            (META_THRESHOLD, threshold.to_string()),
            (META_SHARES, count.to_string()),
            (META_SEAL, SHAMIR.to_owned()),
        ] {
            self.store.set_meta(k, &v).await?;
        }
        self.audit_system("system.init").await?;
        self.checkpoint_audit().await?;
        self.keyring.seal()?;
        Ok(Initialized {
            shares: shares.iter().map(KeyShare::to_text).collect(),
            root_token,
            threshold,
        })
    }

    /// How this vault's root key is held, as set at init (`None` for a dev vault).
    pub async fn seal_type(&self) -> Result<Option<String>, CoreError> {
        Ok(self.store.meta(META_SEAL).await?)
    }

    /// Where unsealing stands.
    pub async fn unseal_progress(&self) -> Result<UnsealProgress, CoreError> {
        let threshold = self.shamir_setup().await.map(|(_, t)| t).unwrap_or(0);
        let progress = if self.is_sealed() {
            self.pending.0.lock().await.len() as u8
        } else {
            0
        };
        Ok(UnsealProgress {
            sealed: self.is_sealed(),
            progress,
            threshold,
        })
    }

    /// Takes one custodian's share; at the threshold, rebuilds the root key and unseals.
    pub async fn submit_share(&self, text: &str) -> Result<UnsealProgress, CoreError> {
        let (tag, threshold) = self.shamir_setup().await?;
        let mut pending = self.pending.0.lock().await;
        if !self.is_sealed() {
            pending.clear();
            return self.unseal_progress_locked(0, threshold);
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
            return self.unseal_progress_locked(pending.len(), threshold);
        }
        let shares = std::mem::take(&mut *pending);
        let root = combine_shares(&shares).map_err(|_| wrong_shares())?;
        drop(shares);
        match self.unseal(&RootKey::new(root, SHAMIR)).await {
            Ok(()) => self.unseal_progress_locked(0, threshold),
            Err(CoreError::RootMismatch) => Err(wrong_shares()),
            Err(e) => Err(e),
        }
    }

    fn unseal_progress_locked(
        &self,
        received: usize,
        threshold: u8,
    ) -> Result<UnsealProgress, CoreError> {
        Ok(UnsealProgress {
            sealed: self.is_sealed(),
            progress: received as u8,
            threshold,
        })
    }

    /// The vault tag and threshold of a share-sealed vault.
    async fn shamir_setup(&self) -> Result<([u8; 4], u8), CoreError> {
        if self.seal_type().await?.as_deref() != Some(SHAMIR) {
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
