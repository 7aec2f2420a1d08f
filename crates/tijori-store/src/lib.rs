//! Durable storage for the vault, behind traits split by capability so that the embedded SQLite
//! store (the default) and the PostgreSQL store (several nodes) are interchangeable. A store only
//! ever sees ciphertexts, wrapped keys, keyed hashes and masked forms: it must never be handed,
//! and so can never log, a plaintext value or an unwrapped key.
#![forbid(unsafe_code)]

mod error;
mod model;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;

pub use error::StoreError;
pub use model::{ApprovalRecord, RoleRecord};
pub use model::{
    AuditAfter, AuditCheckpoint, AuditRow, AuditWith, ChainFn, DataKeyRecord, Erased,
    IdempotencyRecord, InsertOutcome, Joined, KekRecord, KeyUsage, LoginFailure, MakeRecords,
    PrincipalRecord, SessionRecord, TokenRecord, UserRecord,
};

/// Tokens: the encrypted values and what is shown of them.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts records in one durable commit; each item answers for itself. A record with a
    /// blind index whose (type, index) already names a live token answers `Existing`; one whose
    /// token string is taken answers `TokenTaken` (the caller draws another token); one whose
    /// data key is not active (any more) answers `StaleKey`, so that no node ever writes under
    /// a key another node has rotated away or destroyed.
    async fn insert_tokens(
        &self,
        records: Vec<TokenRecord>,
        now: i64,
    ) -> Result<Vec<InsertOutcome>, StoreError>;
    /// [`insert_tokens`](Self::insert_tokens), appending the records `audit` makes from the
    /// outcomes to the audit chain in the same commit; answers whether any were appended. A
    /// store that cannot join the two (this default) writes the tokens alone and answers
    /// `false`, and the caller appends its records itself.
    async fn insert_tokens_audited(
        &self,
        records: Vec<TokenRecord>,
        now: i64,
        audit: AuditWith,
    ) -> Result<(Vec<InsertOutcome>, bool), StoreError> {
        drop(audit);
        Ok((self.insert_tokens(records, now).await?, false))
    }
    /// Whether the `_audited` writes of `what` join records to their commit; where they do
    /// not, a caller need not make them.
    fn joins_audit(&self, what: Joined) -> bool {
        let _ = what;
        false
    }
    /// A live (unexpired at `now`) token.
    async fn token(&self, token: &str, now: i64) -> Result<Option<TokenRecord>, StoreError>;
    /// Live tokens among `tokens`, in no particular order.
    async fn tokens(&self, tokens: &[String], now: i64) -> Result<Vec<TokenRecord>, StoreError>;
    /// The live token with this blind index.
    async fn token_by_index(
        &self,
        data_type: &str,
        index: &[u8],
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError>;
    /// Deletes a token for good; `false` if there was no such live token.
    async fn delete_token(&self, token: &str, now: i64) -> Result<bool, StoreError> {
        Ok(self.delete_token_audited(token, now, None).await?.0)
    }
    /// Crypto-shredding: deletes every token of `subject` and destroys the data keys of
    /// `key_scope` (the subject's own) in one commit, leaving no copy of the keys in the files
    /// (deleted rows are zeroed, the write-ahead log emptied). Answers the counts.
    async fn erase_subject(&self, subject: &str, key_scope: &str) -> Result<Erased, StoreError> {
        Ok(self
            .erase_subject_audited(subject, key_scope, None)
            .await?
            .0)
    }
    /// [`delete_token`](Self::delete_token), with the records `audit` makes of its outcome
    /// (if given) appended in the same commit, as
    /// [`insert_tokens_audited`](Self::insert_tokens_audited) does; answers whether any were.
    async fn delete_token_audited(
        &self,
        token: &str,
        now: i64,
        audit: Option<AuditAfter<bool>>,
    ) -> Result<(bool, bool), StoreError>;
    /// [`erase_subject`](Self::erase_subject), with the records `audit` makes of its outcome
    /// (if given) appended in the same commit; answers whether any were.
    async fn erase_subject_audited(
        &self,
        subject: &str,
        key_scope: &str,
        audit: Option<AuditAfter<Erased>>,
    ) -> Result<(Erased, bool), StoreError>;
    /// Deletes tokens expired at `now`; how many.
    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError>;
}

/// Key-encryption keys and wrapped data keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn keks(&self) -> Result<Vec<KekRecord>, StoreError>;
    /// Stores a new key-encryption key version; `false` if the version exists (another node won).
    async fn insert_kek(&self, kek: KekRecord) -> Result<bool, StoreError>;
    /// Stores a data key as the active one of its (purpose, scope) unless one is active already,
    /// and answers the active record either way, so concurrent creators agree on one key.
    async fn insert_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError>;
    async fn data_key(&self, id: i64) -> Result<Option<DataKeyRecord>, StoreError>;
    async fn active_data_key(
        &self,
        purpose: &str,
        scope: &str,
    ) -> Result<Option<DataKeyRecord>, StoreError>;
    /// Rotation: retires the active key of `key`'s (purpose, scope) and stores `key` as the
    /// active one, in one commit; answers it with its id.
    async fn rotate_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError>;
    /// Up to `limit` data keys still wrapped under a KEK version below `version`.
    async fn data_keys_below_kek(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<DataKeyRecord>, StoreError>;
    /// Replaces a data key's wrapping if it is still under KEK version `from`; `false` if
    /// another job moved it first.
    async fn rewrap_data_key(
        &self,
        id: i64,
        from: i64,
        to: i64,
        wrapped: Vec<u8>,
    ) -> Result<bool, StoreError>;
    /// Retired (no longer active) keys of `purpose`.
    async fn retired_data_keys(&self, purpose: &str) -> Result<Vec<DataKeyRecord>, StoreError>;
    /// Up to `limit` tokens (live or expired) encrypted under this data key.
    async fn tokens_under_key(
        &self,
        data_key_id: i64,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, StoreError>;
    /// Replaces a token's ciphertext and key if it is still under `from_key`; `false` if it
    /// was moved, or deleted, meanwhile.
    async fn reencrypt_token(
        &self,
        token: &str,
        from_key: i64,
        to_key: i64,
        ciphertext: Vec<u8>,
    ) -> Result<bool, StoreError>;
    /// Deletes a retired data key that no token uses any more; `false` otherwise.
    async fn destroy_retired_key(&self, id: i64) -> Result<bool, StoreError>;
    /// Counts for the key report.
    async fn key_usage(&self) -> Result<KeyUsage, StoreError>;
}

/// Service principals (API keys are stored as hashes only). Every change is one conditional
/// statement, so that nodes sharing a store never interleave a read and a write of the same
/// principal: a node's in-memory directory is only a cache, reloaded after a change.
#[async_trait]
pub trait PrincipalStore: Send + Sync {
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError>;
    async fn insert_principal(&self, p: PrincipalRecord) -> Result<(), StoreError>;
    /// Replaces a principal's key hash and drops any previous (grace) key, so that exactly
    /// this key works afterwards; `false` if there is no such principal.
    async fn set_principal_key(&self, id: &str, key_hash: Vec<u8>) -> Result<bool, StoreError>;
    /// `false` if there is no such principal.
    async fn set_principal_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError>;
    /// Key rotation: `key_hash` becomes the current key and, with `previous_expires_at`, the
    /// key current until now becomes the previous one, valid until then (replacing an earlier
    /// previous key: there is at most one). With `None` the key current until now is dropped
    /// at once, and any earlier previous key with it. `false` if there is no such principal.
    async fn rotate_principal_key(
        &self,
        id: &str,
        key_hash: Vec<u8>,
        previous_expires_at: Option<i64>,
    ) -> Result<bool, StoreError>;
    /// Replaces a principal's expiry, allowed networks and client-certificate binding (the
    /// fields of [`PrincipalRecord`] of the same names); `false` if there is no such principal.
    async fn set_principal_restrictions(
        &self,
        id: &str,
        expires_at: Option<i64>,
        allowed_cidrs: Vec<String>,
        client_cert_sha256: Option<Vec<u8>>,
    ) -> Result<bool, StoreError>;
}

/// Operators (people) and their sessions. Counters and the replay guard change in single
/// conditional statements, so that several nodes racing on one account agree.
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError>;
    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// `false` if the username is taken.
    async fn insert_user(&self, user: UserRecord) -> Result<bool, StoreError>;
    /// Replaces every field of the user with this id and bumps its revision, only if the
    /// stored revision is still `user.revision`; `false` if there is no such user or it was
    /// changed meanwhile (read it again and retry).
    async fn update_user(&self, user: UserRecord) -> Result<bool, StoreError>;
    /// Counts a failed login. Once `max` failures are counted the account is locked until
    /// `lock_until`; a failure while locked does not extend the lock; the first failure after
    /// a lock has passed starts a new count.
    async fn login_failed(
        &self,
        id: &str,
        now: i64,
        max: i64,
        lock_until: i64,
    ) -> Result<LoginFailure, StoreError>;
    /// Records a successful login with the code of TOTP step `step`: only if that step is newer
    /// than the last one accepted (`false`: a replayed code) and the account is neither locked
    /// at `now` nor disabled. Clears the failure count and the lock, confirms the
    /// authenticator.
    async fn login_succeeded(&self, id: &str, step: i64, now: i64) -> Result<bool, StoreError>;
    async fn insert_session(&self, session: SessionRecord) -> Result<(), StoreError>;
    async fn session(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError>;
    /// Moves a session's last activity to `now`; `false` if it is gone.
    async fn touch_session(&self, hash: &[u8], now: i64) -> Result<bool, StoreError>;
    async fn delete_session(&self, hash: &[u8]) -> Result<bool, StoreError>;
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError>;
    /// Deletes sessions idle since before `idle_before` or created before `created_before`.
    async fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<u64, StoreError>;
}

/// Custom roles, versioned (every change is a new row, the old ones stay as history), and
/// requests awaiting dual-control approval.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// The newest version of every role that is not deleted.
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    /// Every version of `name`, oldest first.
    async fn role_history(&self, name: &str) -> Result<Vec<RoleRecord>, StoreError>;
    /// Stores `role` as the next version, only if the newest stored version is
    /// `role.version - 1` (0: none yet); `false` if another change came first.
    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError>;
    async fn insert_approval(&self, approval: ApprovalRecord) -> Result<(), StoreError>;
    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError>;
    /// Approvals requested at or after `since`, newest first.
    async fn approvals(&self, since: i64) -> Result<Vec<ApprovalRecord>, StoreError>;
    /// Moves an approval from status `from` to `to` (recording who and when); `false` if it
    /// was not in `from` (decided or used meanwhile, by this node or another).
    async fn decide_approval(
        &self,
        id: &str,
        from: &str,
        to: &str,
        by: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError>;
}

/// What changed, told to every node that shares the store, so that each reloads what it holds
/// in memory (principals, roles, keys). A single SQLite node tells only itself; PostgreSQL
/// nodes tell each other with LISTEN/NOTIFY.
#[async_trait]
pub trait ChangeFeed: Send + Sync {
    /// Tells every node, this one included, that `topic` changed: `principals`, `roles`,
    /// `keys`, `subject:<subject>`. Only after the change is committed.
    async fn publish(&self, topic: &str) -> Result<(), StoreError>;
    /// Topics published from now on by any node. [`EVERYTHING`] means changes may have been
    /// missed (a lost connection): reload all.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<String>;
}

/// The topic that stands for every topic.
pub const EVERYTHING: &str = "*";

/// Topics held for a slow follower before it must reload everything.
pub(crate) fn feed_channel() -> tokio::sync::broadcast::Sender<String> {
    tokio::sync::broadcast::channel(256).0
}

/// Saved answers for `Idempotency-Key` retries.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn idempotency(
        &self,
        principal_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Saves an answer, replacing an expired one of the same key; `true` if a row was written.
    async fn put_idempotency(&self, rec: IdempotencyRecord) -> Result<bool, StoreError>;
    async fn purge_idempotency(&self, before: i64) -> Result<u64, StoreError>;
}

/// Small settings of the vault itself (its id, schema facts).
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Before a clean stop: moves what the store's write-ahead logs hold into its files and
    /// empties the logs, so that each file is whole on its own (a copy of the trail's file
    /// alone holds every record). A store without such logs has nothing to do.
    async fn settle_logs(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The append-only audit trail.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends records in one durable commit, chaining each to the one before with `chain`;
    /// answers their sequence numbers. Nothing is acknowledged before it is on disk.
    async fn append_audit(
        &self,
        records: Vec<String>,
        chain: ChainFn,
    ) -> Result<Vec<i64>, StoreError>;
    /// Up to `limit` records with `seq > after`, in order.
    async fn audit_rows(&self, after: i64, limit: usize) -> Result<Vec<AuditRow>, StoreError>;
    /// The newest record, if any.
    async fn audit_head(&self) -> Result<Option<AuditRow>, StoreError>;
    /// Stores a checkpoint; `false` if one for that record exists already.
    async fn insert_checkpoint(&self, cp: AuditCheckpoint) -> Result<bool, StoreError>;
    /// Up to `limit` checkpoints with `seq > after`, in order.
    async fn checkpoints(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<AuditCheckpoint>, StoreError>;
    /// Among the checkpoints signed at or before `time` of records numbered below `below`,
    /// the one of the highest record: where the trail may be cut for archiving.
    async fn last_checkpoint_before(
        &self,
        time: i64,
        below: i64,
    ) -> Result<Option<AuditCheckpoint>, StoreError>;
    /// Removes (once archived) up to `limit` of the oldest records numbered `through` or below,
    /// and every checkpoint below `through`: the checkpoint of `through` itself stays, as the
    /// signed anchor the remaining trail starts from. Answers how many records went.
    async fn prune_audit(&self, through: i64, limit: usize) -> Result<u64, StoreError>;
}

/// Everything a vault needs from its storage.
pub trait Store:
    TokenStore
    + KeyStore
    + PrincipalStore
    + UserStore
    + PolicyStore
    + IdempotencyStore
    + MetaStore
    + AuditStore
    + ChangeFeed
{
}
impl<
        T: TokenStore
            + KeyStore
            + PrincipalStore
            + UserStore
            + PolicyStore
            + IdempotencyStore
            + MetaStore
            + AuditStore
            + ChangeFeed,
    > Store for T
{
}
