//! The [`Vault`]: its lifecycle (open, unseal, seal), its principals, idempotency and
//! housekeeping. The data operations are in `service.rs`.

use std::sync::Arc;

use tijori_crypto::{random_hex, KeyProvider};
use tijori_store::{IdempotencyRecord, PrincipalRecord, Store};
use tijori_types::api::{
    CreatePrincipalRequest, PrincipalResponse, RestrictPrincipalRequest, RotatePrincipalRequest,
};
use tijori_types::DataType;
use zeroize::Zeroizing;

use crate::audit::{AuditEvent, AuditSink, StoreAudit};
use crate::cvc::CvcStore;
use crate::idempotency::{check_key, same_fingerprint, IdempotencyGuard, Locks, Replay};
use crate::keyring::Keyring;
use crate::policy::{Authorized, Manage, Role};
use crate::principal::{
    admit, check_name, grace_until, key_hash, view, Directory, KeySlot, Rules, Source,
};
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
    /// Operators' account rules (lockout, timeouts, training).
    pub operators: crate::operator::OperatorPolicy,
    /// Operations that need a second person's approval.
    pub dual_control: crate::approval::DualControl,
    /// Value HMACs (`POST /v1/audit/hash`) each principal may ask for an hour: enough to
    /// look up the values of an investigation, too few to search a value's candidates for one
    /// that matches an HMAC on the trail (see `audit::quota`).
    pub audit_hash_per_hour: u32,
}

impl Default for VaultConfig {
    fn default() -> VaultConfig {
        VaultConfig {
            max_batch: 10_000,
            idempotency_ttl: 24 * 3600,
            max_ttl: 10 * 366 * 24 * 3600,
            kek_cryptoperiod_days: 365,
            data_key_cryptoperiod_days: 365,
            operators: Default::default(),
            dual_control: Default::default(),
            audit_hash_per_hour: crate::audit::DEFAULT_HASH_PER_HOUR,
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
    /// Each caller's current group of random tokens.
    pub(crate) token_groups: crate::tokens::TokenGroups,
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
    /// Custom roles.
    pub(crate) role_book: crate::policy::RoleBook,
    /// Each principal's calls for value HMACs this hour.
    pub(crate) hash_quota: crate::audit::quota::HashQuota,
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
            hash_quota: crate::audit::quota::HashQuota::new(config.audit_hash_per_hour),
            store,
            clock,
            keyring: Keyring::default(),
            directory: Directory::default(),
            cvc: CvcStore::new()?,
            token_groups: Default::default(),
            idem_locks: Arc::default(),
            reload: tokio::sync::Mutex::new(()),
            audit,
            audit_watchers: Default::default(),
            config,
            pending: Default::default(),
            role_book: Default::default(),
        };
        vault.role_book.load(vault.store.as_ref()).await?;
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
        self.audit_appended();
        Ok(())
    }

    /// Wakes whatever follows the trail (after records were appended, by any path).
    pub(crate) fn audit_appended(&self) {
        if let Ok(watchers) = self.audit_watchers.lock() {
            watchers.iter().for_each(|w| w.notify_one());
        }
    }

    /// The request's `record`, and the function that chains it, for a store write that appends
    /// it in its own commit: only where the trail lives in the vault's store (see
    /// [`AuditSink::chain`]) and the store can join the two. `None` otherwise: the caller then
    /// records the request as it ends.
    pub(crate) fn joined_record(
        &self,
        record: Option<AuditEvent>,
        what: tijori_store::Joined,
    ) -> Option<(AuditEvent, tijori_store::ChainFn)> {
        let chain = self
            .audit
            .chain()
            .filter(|_| self.store.joins_audit(what))?;
        Some((record?, chain))
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

    /// The principal a bearer credential names, for a caller whose source is unknown: a
    /// principal bound to networks or to a client certificate is refused (fail closed). The
    /// server uses [`Vault::authenticate_from`].
    pub fn authenticate(&self, credential: &str) -> Result<Principal, CoreError> {
        self.authenticate_from(credential, &Source::default())
    }

    /// The principal a bearer credential (an API key or the root token) names, if its rules
    /// admit a request now from `peer_ip`, over a connection whose verified client certificate
    /// has the SHA-256 `client_cert_sha256`. Every refusal is the same `Unauthenticated`.
    pub fn authenticate_from(
        &self,
        credential: &str,
        source: &Source,
    ) -> Result<Principal, CoreError> {
        self.directory
            .authenticate(credential, source, self.clock.now())
    }

    /// Rebuilds the in-memory principal directory from the store: after every change made
    /// here, and (with several nodes) whenever another node reports a change; nothing else is
    /// needed to catch up.
    pub async fn reload_principals(&self) -> Result<(), CoreError> {
        let _serial = self.reload.lock().await;
        self.directory
            .load(self.store.principals().await?, &self.role_book)
    }

    /// After a store change of principal `id`: the same change in the directory at once, then
    /// a reload for whatever else changed. The patch is made under the reload lock, so that no
    /// reload that read the store before the change can undo it. A failed reload is only
    /// logged: the change is stored and in effect here, and the caller must hear of it (a new
    /// key is in the answer and nowhere else). Answers the principal as it is now.
    async fn principal_changed(
        &self,
        id: &str,
        change: impl FnOnce(&mut Vec<PrincipalRecord>),
    ) -> Result<PrincipalResponse, CoreError> {
        {
            let _serial = self.reload.lock().await;
            self.directory.patch(change, &self.role_book)?;
        }
        self.publish(crate::changes::PRINCIPALS).await;
        if let Err(e) = self.reload_principals().await {
            tracing::warn!(error = %e, "reloading principals failed; the change is in effect here");
        }
        let rec = self.directory.record(id)?.ok_or_else(|| {
            CoreError::Unavailable(format!("principal {id} is stored but not in the directory"))
        })?;
        Ok(view(&rec, self.clock.now()))
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
                    ..PrincipalRecord::default()
                })
                .await?;
        }
        self.publish(crate::changes::PRINCIPALS).await;
        self.reload_principals().await
    }

    /// A fresh high-entropy root token, installed and returned (to print once).
    pub async fn generate_root_token(&self) -> Result<String, CoreError> {
        let token = format!("tjr_{}", random_hex(32)?);
        self.install_root_token(&token).await?;
        Ok(token)
    }

    /// Creates a service principal, with the restrictions the request names; its API key is in
    /// the answer and nowhere else.
    pub async fn create_principal(
        &self,
        _auth: &Authorized<'_, Manage>,
        req: CreatePrincipalRequest,
    ) -> Result<NewPrincipal, CoreError> {
        check_name(&req.name)?;
        let roles = self.role_book.check_names(&req.roles)?;
        let now = self.clock.now();
        let rules = Rules::requested(
            req.expires_at.as_deref(),
            &req.allowed_cidrs,
            req.client_cert_sha256.as_deref(),
            now,
        )?;
        let id = format!("prn_{}", random_hex(8)?);
        let api_key = format!("tjk_{}", random_hex(32)?);
        let rec = PrincipalRecord {
            id: id.clone(),
            name: req.name,
            roles,
            key_hash: key_hash(&api_key).to_vec(),
            created_at: now,
            disabled: false,
            expires_at: rules.expires_at,
            previous_key_hash: None,
            previous_key_expires_at: None,
            allowed_cidrs: rules.cidr_texts(),
            client_cert_sha256: rules.client_cert.map(|c| c.to_vec()),
        };
        self.store.insert_principal(rec.clone()).await?;
        let principal = self
            .principal_changed(&id, |records| records.push(rec))
            .await?;
        Ok(NewPrincipal { principal, api_key })
    }

    /// Every principal as the store has it now (another node's changes included).
    pub async fn principals(
        &self,
        _auth: &Authorized<'_, Manage>,
    ) -> Result<Vec<PrincipalResponse>, CoreError> {
        let now = self.clock.now();
        Ok(self
            .store
            .principals()
            .await?
            .iter()
            .map(|r| view(r, now))
            .collect())
    }

    /// Disables (or enables again) a principal; its keys stop working at once.
    pub async fn set_principal_disabled(
        &self,
        auth: &Authorized<'_, Manage>,
        id: &str,
        disabled: bool,
    ) -> Result<PrincipalResponse, CoreError> {
        if id == auth.principal().id && disabled {
            return Err(CoreError::InvalidRequest(
                "a principal cannot disable itself",
            ));
        }
        if !self.store.set_principal_disabled(id, disabled).await? {
            return Err(CoreError::NotFound);
        }
        self.principal_changed(id, |records| {
            for r in records.iter_mut().filter(|r| r.id == id) {
                r.disabled = disabled;
            }
        })
        .await
    }

    /// Gives a principal a new API key. The key current until now keeps working for the grace
    /// period (a day unless the request says otherwise; 0 ends it at once), so that its callers
    /// can move to the new key without an outage; a key replaced by an earlier rotation stops
    /// at once. Answers the new key, shown this once.
    pub async fn rotate_principal_key(
        &self,
        _auth: &Authorized<'_, Manage>,
        id: &str,
        req: RotatePrincipalRequest,
    ) -> Result<NewPrincipal, CoreError> {
        let now = self.clock.now();
        let until = grace_until(req.grace_seconds, now)?;
        let prefix = if id == ROOT_ID { "tjr" } else { "tjk" };
        let api_key = format!("{prefix}_{}", random_hex(32)?);
        let hash = key_hash(&api_key).to_vec();
        if !self
            .store
            .rotate_principal_key(id, hash.clone(), until)
            .await?
        {
            return Err(CoreError::NotFound);
        }
        let principal = self
            .principal_changed(id, |records| {
                for r in records.iter_mut().filter(|r| r.id == id) {
                    r.previous_key_hash = until.map(|_| r.key_hash.clone());
                    r.previous_key_expires_at = until;
                    r.key_hash = hash.clone();
                }
            })
            .await?;
        Ok(NewPrincipal { principal, api_key })
    }

    /// Replaces a principal's expiry, allowed networks and client-certificate binding; they
    /// hold from the next request on. A principal may not restrict itself so that the request
    /// making the change (from `peer_ip`, with that client certificate) would be refused:
    /// nobody could lift such a restriction with its key.
    pub async fn restrict_principal(
        &self,
        auth: &Authorized<'_, Manage>,
        id: &str,
        req: RestrictPrincipalRequest,
        caller: &Source,
    ) -> Result<PrincipalResponse, CoreError> {
        let now = self.clock.now();
        let rules = Rules::requested(
            req.expires_at.as_deref(),
            &req.allowed_cidrs,
            req.client_cert_sha256.as_deref(),
            now,
        )?;
        if id == auth.principal().id && admit(&rules, KeySlot::Current, caller, now).is_err() {
            return Err(CoreError::InvalidRequest(
                "these restrictions would refuse this very request, and a principal cannot lock \
                 itself out: include the network and client certificate you call with, or \
                 restrict this principal with another administrator's credential",
            ));
        }
        let (cidrs, cert) = (rules.cidr_texts(), rules.client_cert.map(|c| c.to_vec()));
        let stored = self
            .store
            .set_principal_restrictions(id, rules.expires_at, cidrs.clone(), cert.clone())
            .await?;
        if !stored {
            return Err(CoreError::NotFound);
        }
        self.principal_changed(id, |records| {
            for r in records.iter_mut().filter(|r| r.id == id) {
                r.expires_at = rules.expires_at;
                r.allowed_cidrs = cidrs.clone();
                r.client_cert_sha256 = cert.clone();
            }
        })
        .await
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

    /// Removes what has expired: tokens, card security codes, idempotency answers, sessions.
    pub async fn housekeeping(&self) -> Result<(), CoreError> {
        let now = self.clock.now();
        self.cvc.purge(now)?;
        self.store.purge_expired(now).await?;
        self.store
            .purge_idempotency(now - self.config.idempotency_ttl)
            .await?;
        self.purge_sessions(now).await?;
        Ok(())
    }
}
