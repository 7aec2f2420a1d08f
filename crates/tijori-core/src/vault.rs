//! The [`Vault`]: its lifecycle (open, unseal, seal), its principals, idempotency and
//! housekeeping. The data operations are in `service.rs`.

use std::sync::Arc;

use tijori_crypto::{random_hex, KeyProvider};
use tijori_store::{IdempotencyRecord, PrincipalRecord, Store};
use tijori_types::api::CreatePrincipalRequest;
use tijori_types::DataType;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditSink, StoreAudit};
use crate::cvc::CvcStore;
use crate::idempotency::{check_key, same_fingerprint, IdempotencyGuard, Locks, Replay};
use crate::keyring::Keyring;
use crate::policy::{Authorized, Manage, Role};
use crate::principal::{check_name, key_hash, parse_roles, to_principal, Directory};
use crate::{Clock, CoreError, NewPrincipal, Principal};

/// Limits and lifetimes; defaults are API.md's.
#[derive(Clone, Debug)]
pub struct VaultConfig {
    /// Most items in a batch tokenize or detokenize.
    pub max_batch: usize,
    /// How long an idempotency key's first answer is kept, in seconds.
    pub idempotency_ttl: i64,
    /// Longest `ttl_seconds` accepted for stored types.
    pub max_ttl: u64,
    /// Cryptoperiods (PCI DSS 3.6.1.1), in days: `GET /v1/sys/keys` shows a key older than
    /// its period as due for rotation.
    pub kek_cryptoperiod_days: i64,
    pub data_key_cryptoperiod_days: i64,
}

impl Default for VaultConfig {
    fn default() -> VaultConfig {
        VaultConfig {
            max_batch: 10_000,
            idempotency_ttl: 24 * 3600,
            max_ttl: 10 * 366 * 24 * 3600,
            kek_cryptoperiod_days: 365,
            data_key_cryptoperiod_days: 365,
        }
    }
}

/// One answer of detokenize. No `Debug`: it holds a value.
pub struct Detokenized {
    pub token: String,
    pub data_type: DataType,
    /// In full or masked, by the caller's reveal level.
    pub value: Zeroizing<String>,
}

/// The id of the principal that `--dev-root-token` and the printed root token name.
pub const ROOT_ID: &str = "root";

/// A vault over one store.
pub struct Vault {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) keyring: Keyring,
    pub(crate) directory: Directory,
    pub(crate) cvc: CvcStore,
    idem_locks: Arc<Locks>,
    /// Serializes "read principals, load them": two reloads finishing out of order could
    /// otherwise bring back a stale map (and a disabled key).
    reload: tokio::sync::Mutex<()>,
    audit: Arc<dyn AuditSink>,
    /// Told after every audit append (forwarders wait on them).
    audit_watchers: std::sync::Mutex<Vec<Arc<tokio::sync::Notify>>>,
    pub(crate) config: VaultConfig,
    /// Key shares given towards unsealing.
    pub(crate) pending: crate::seal::Pending,
}

impl Vault {
    /// Opens a vault over `store`, sealed, auditing into the same store.
    pub async fn open(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: VaultConfig,
    ) -> Result<Vault, CoreError> {
        let audit = Arc::new(StoreAudit(store.clone()));
        Vault::open_with_audit(store, clock, config, audit).await
    }

    /// As [`Vault::open`], with the audit trail going to `audit` (tests inject failures here).
    pub async fn open_with_audit(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: VaultConfig,
        audit: Arc<dyn AuditSink>,
    ) -> Result<Vault, CoreError> {
        let vault = Vault {
            store,
            clock,
            keyring: Keyring::default(),
            directory: Directory::default(),
            cvc: CvcStore::new()?,
            idem_locks: Arc::default(),
            reload: tokio::sync::Mutex::new(()),
            audit,
            audit_watchers: Default::default(),
            config,
            pending: Default::default(),
        };
        vault.reload_principals().await?;
        Ok(vault)
    }

    /// Makes audit records durable. Any failure is `Unavailable`: the caller must then refuse
    /// the operation the records describe and reveal nothing.
    pub async fn audit(&self, events: Vec<AuditEvent>) -> Result<(), CoreError> {
        self.audit.append(events).await.map_err(|e| {
            tracing::error!(error = %e, "audit trail unavailable; refusing");
            CoreError::Unavailable(format!("audit trail: {e}"))
        })?;
        if let Ok(watchers) = self.audit_watchers.lock() {
            watchers.iter().for_each(|w| w.notify_one());
        }
        Ok(())
    }

    /// A wake-up that fires after each audit append (at most one is kept while nobody waits),
    /// for tasks that follow the trail, such as syslog forwarding.
    pub fn watch_audit(&self) -> Arc<tokio::sync::Notify> {
        let n = Arc::new(tokio::sync::Notify::new());
        if let Ok(mut watchers) = self.audit_watchers.lock() {
            watchers.push(n.clone());
        }
        n
    }

    /// Records a system event (start, seal, ...).
    pub async fn audit_system(&self, operation: &str) -> Result<(), CoreError> {
        self.audit(vec![AuditEvent::system(
            self.clock.now(),
            operation,
            crate::audit::Outcome::Success,
            None,
        )])
        .await
    }

    pub fn config(&self) -> &VaultConfig {
        &self.config
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Unwraps the key hierarchy under `provider`, which the vault keeps until sealed (a KEK
    /// rotation wraps the new key under it).
    pub async fn unseal(&self, provider: Arc<dyn KeyProvider>) -> Result<(), CoreError> {
        self.keyring
            .unseal(self.store.as_ref(), provider, self.clock.now())
            .await?;
        if let Err(e) = self.publish_audit_key().await {
            self.keyring.seal()?;
            return Err(e);
        }
        Ok(())
    }

    /// Drops every key from memory and forgets every card security code.
    pub fn seal(&self, _auth: &Authorized<'_, Manage>) -> Result<(), CoreError> {
        self.keyring.seal()?;
        self.cvc.clear()
    }

    pub fn is_sealed(&self) -> bool {
        self.keyring.is_sealed()
    }

    /// The principal a bearer credential names.
    pub fn authenticate(&self, credential: &str) -> Result<Principal, CoreError> {
        self.directory.authenticate(credential)
    }

    async fn reload_principals(&self) -> Result<(), CoreError> {
        let _serial = self.reload.lock().await;
        self.directory.load(self.store.principals().await?)
    }

    /// Whether the root principal exists (its token was printed at first start).
    pub async fn has_root(&self) -> Result<bool, CoreError> {
        Ok(self
            .store
            .principals()
            .await?
            .iter()
            .any(|p| p.id == ROOT_ID))
    }

    /// Makes `token` the root (admin) credential, creating the root principal if needed.
    /// For dev mode and first initialization; not reachable over HTTP.
    pub async fn install_root_token(&self, token: &str) -> Result<(), CoreError> {
        if token.is_empty() || token.len() > 512 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(CoreError::InvalidRequest(
                "the root token must be 1-512 visible ASCII characters",
            ));
        }
        let hash = key_hash(token).to_vec();
        if !self.store.set_principal_key(ROOT_ID, hash.clone()).await? {
            self.store
                .insert_principal(PrincipalRecord {
                    id: ROOT_ID.into(),
                    name: ROOT_ID.into(),
                    roles: vec![Role::Admin.as_str().into()],
                    key_hash: hash,
                    created_at: self.clock.now(),
                    disabled: false,
                })
                .await?;
        }
        self.reload_principals().await
    }

    /// A fresh high-entropy root token, installed and returned (to print once).
    pub async fn generate_root_token(&self) -> Result<String, CoreError> {
        let token = format!("tjr_{}", random_hex(32)?);
        self.install_root_token(&token).await?;
        Ok(token)
    }

    /// Creates a service principal; its API key is in the answer and nowhere else.
    pub async fn create_principal(
        &self,
        _auth: &Authorized<'_, Manage>,
        req: CreatePrincipalRequest,
    ) -> Result<NewPrincipal, CoreError> {
        check_name(&req.name)?;
        let roles = parse_roles(&req.roles)?;
        let id = format!("prn_{}", random_hex(8)?);
        let api_key = format!("tjk_{}", random_hex(32)?);
        let rec = PrincipalRecord {
            id,
            name: req.name,
            roles: roles.iter().map(|r| r.as_str().to_owned()).collect(),
            key_hash: key_hash(&api_key).to_vec(),
            created_at: self.clock.now(),
            disabled: false,
        };
        self.store.insert_principal(rec.clone()).await?;
        self.reload_principals().await?;
        Ok(NewPrincipal {
            principal: to_principal(rec)?,
            api_key,
        })
    }

    pub async fn principals(
        &self,
        _auth: &Authorized<'_, Manage>,
    ) -> Result<Vec<Principal>, CoreError> {
        self.store
            .principals()
            .await?
            .into_iter()
            .map(to_principal)
            .collect()
    }

    /// Disables (or enables again) a principal; its key stops working at once.
    pub async fn set_principal_disabled(
        &self,
        auth: &Authorized<'_, Manage>,
        id: &str,
        disabled: bool,
    ) -> Result<Principal, CoreError> {
        if id == auth.principal().id && disabled {
            return Err(CoreError::InvalidRequest(
                "a principal cannot disable itself",
            ));
        }
        if !self.store.set_principal_disabled(id, disabled).await? {
            return Err(CoreError::NotFound);
        }
        if disabled {
            // Effective now, even if the reload below fails.
            self.directory.set_disabled(id, true)?;
        }
        self.reload_principals().await?;
        self.principals(auth)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(CoreError::NotFound)
    }

    /// Starts a request made with an `Idempotency-Key`: either the saved first answer, or a
    /// guard to hand back to [`Vault::idempotency_finish`] with this answer.
    pub async fn idempotency_begin(
        &self,
        principal: &Principal,
        key: &str,
        route: &str,
        body: &[u8],
    ) -> Result<Result<IdempotencyGuard, Replay>, CoreError> {
        check_key(key)?;
        let fingerprint = self.keyring.keys()?.idempotency.index(route, body);
        let lock = self
            .idem_locks
            .acquire((principal.id.clone(), key.to_owned()))
            .await?;
        if let Some(saved) = self.store.idempotency(&principal.id, key).await? {
            if saved.created_at > self.clock.now() - self.config.idempotency_ttl {
                if !same_fingerprint(&saved.fingerprint, &fingerprint) {
                    return Err(CoreError::IdempotencyConflict);
                }
                return Ok(Err(Replay {
                    status: saved.status,
                    body: saved.body,
                }));
            }
        }
        Ok(Ok(IdempotencyGuard {
            principal_id: principal.id.clone(),
            key: key.to_owned(),
            fingerprint,
            _lock: lock,
        }))
    }

    /// Saves the first answer of an idempotent request (server errors are not saved, so a
    /// retry after one does the work again).
    pub async fn idempotency_finish(
        &self,
        guard: IdempotencyGuard,
        status: u16,
        body: Vec<u8>,
    ) -> Result<(), CoreError> {
        if status >= 500 {
            return Ok(());
        }
        self.store
            .put_idempotency(IdempotencyRecord {
                principal_id: guard.principal_id.clone(),
                key: guard.key.clone(),
                fingerprint: guard.fingerprint.to_vec(),
                status,
                body,
                created_at: self.clock.now(),
            })
            .await?;
        Ok(())
    }

    /// Removes what has expired: tokens, card security codes, idempotency answers.
    pub async fn housekeeping(&self) -> Result<(), CoreError> {
        let now = self.clock.now();
        self.cvc.purge(now)?;
        self.store.purge_expired(now).await?;
        self.store
            .purge_idempotency(now - self.config.idempotency_ttl)
            .await?;
        Ok(())
    }
}
