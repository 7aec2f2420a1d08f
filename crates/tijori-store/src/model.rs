//! Rows as the stores keep them. Byte fields are ciphertexts, wrapped keys or keyed hashes.

/// One token and its encrypted value.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: String,
    pub data_type: String,
    /// AEAD output, bound by associated data to token, type and data key.
    pub ciphertext: Vec<u8>,
    pub data_key_id: i64,
    /// Keyed HMAC of the normalized value, for deterministic tokens only.
    pub blind_index: Option<Vec<u8>>,
    pub masked: String,
    pub subject: Option<String>,
    /// JSON object text, as the caller gave it (not secret by contract).
    pub metadata: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for TokenRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenRecord")
            .field("token", &self.token)
            .field("data_type", &self.data_type)
            .field("data_key_id", &self.data_key_id)
            .finish_non_exhaustive()
    }
}

/// What became of one record of [`crate::TokenStore::insert_tokens`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    /// A deterministic token of the same value exists; here it is.
    Existing(TokenRecord),
    /// The token string is in use; draw another.
    TokenTaken,
    /// The record's data key is no longer the active one (rotated, or destroyed by an erasure,
    /// maybe on another node): nothing was written; encrypt under the current key and retry.
    StaleKey,
}

/// A version of the key-encryption key, wrapped by the root of trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KekRecord {
    pub version: i64,
    pub provider: String,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// A data key (or blind-index key), wrapped by a key-encryption key version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataKeyRecord {
    /// Assigned by the store; ignored on insert.
    pub id: i64,
    /// `data`, `blind_index`, `idempotency`.
    pub purpose: String,
    /// `""` for the vault-wide key, `subject:<name>` for a subject's own key.
    pub scope: String,
    pub kek_version: i64,
    pub wrapped: Vec<u8>,
    pub created_at: i64,
}

/// A service principal (or the root token's principal) and the rules its keys are held to.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// SHA-256 of the API key.
    pub key_hash: Vec<u8>,
    pub created_at: i64,
    pub disabled: bool,
    /// From this time on the principal no longer authenticates, with any of its keys.
    pub expires_at: Option<i64>,
    /// SHA-256 of the key the last rotation replaced: it keeps working until
    /// `previous_key_expires_at`, so that callers can move to the new key without an outage.
    pub previous_key_hash: Option<Vec<u8>>,
    pub previous_key_expires_at: Option<i64>,
    /// Networks (CIDR text, e.g. `10.0.0.0/8`) the principal may call from; empty: any.
    pub allowed_cidrs: Vec<String>,
    /// SHA-256 of the DER client certificate the principal must present over mutual TLS;
    /// `None`: no certificate is required.
    pub client_cert_sha256: Option<Vec<u8>>,
}

/// Hashes stay out of `Debug`: a key hash is what the directory looks keys up by.
impl std::fmt::Debug for PrincipalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("expires_at", &self.expires_at)
            .field("previous_key_expires_at", &self.previous_key_expires_at)
            .field("allowed_cidrs", &self.allowed_cidrs)
            .finish_non_exhaustive()
    }
}

/// An operator: a person who logs in with a password and a one-time code.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: String,
    pub username: String,
    pub roles: Vec<String>,
    /// Argon2id PHC string; `None` until the person enrolls (or after a reset).
    pub password_hash: Option<String>,
    /// PHC strings of earlier passwords, newest first, for the no-reuse rule.
    pub password_history: Vec<String>,
    /// SHA-256 of the one-time enrollment code; `None` once it is used.
    pub enrollment_hash: Option<Vec<u8>>,
    pub enrollment_expires_at: Option<i64>,
    /// The TOTP secret, encrypted under the vault's operator key.
    pub totp_sealed: Option<Vec<u8>>,
    /// Whether a first code has confirmed the authenticator.
    pub totp_confirmed: bool,
    /// The newest TOTP step accepted: a code of this step or an older one is a replay.
    pub last_totp_step: i64,
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
    /// Last login, enrollment, creation or re-enabling: what inactivity is measured from.
    pub last_active_at: i64,
    pub last_login_at: Option<i64>,
    /// End of the data-protection training attestation.
    pub training_valid_until: Option<i64>,
    pub created_at: i64,
    pub disabled: bool,
    /// Who created the account or last reset it, and so held its enrollment code: that
    /// principal's dual-control requests cannot be approved from this account.
    pub issued_by: String,
    /// Bumped by every write; [`crate::UserStore::update_user`] succeeds only on the revision it
    /// read, so a change made from a stale read is refused, never written over a newer one.
    pub revision: i64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// A logged-in operator's session, found by the SHA-256 of its token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub hash: Vec<u8>,
    pub user_id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}

/// Where a failed login left an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginFailure {
    pub failed_logins: i64,
    pub locked_until: Option<i64>,
}

/// One version of a custom role: its rules as JSON (the policy language of tijori-core).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: String,
    pub rules: String,
    /// 1 for the first version; each change adds one.
    pub version: i64,
    pub changed_at: i64,
    pub changed_by: String,
    /// This version removes the role.
    pub deleted: bool,
}

/// A request for a dangerous operation awaiting a second person's approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub id: String,
    /// What is asked: `policy_change`, `key_rotation`, `bulk_reveal`, `audit_export`.
    pub operation: String,
    /// SHA-256 of the exact request, so the approval covers that request only.
    pub fingerprint: Vec<u8>,
    /// What the approver is shown (never a value): e.g. the role and its rules, or a count.
    pub summary: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    /// `pending`, `approved`, `denied` or `used`.
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// The first answer to a request made with an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub principal_id: String,
    pub key: String,
    /// Keyed HMAC of the request body (never the body: it holds a value).
    pub fingerprint: Vec<u8>,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: i64,
}

/// One stored audit record: its canonical JSON text and its place in the hash chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub record: String,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// A signature over the audit chain's head at `seq`: its hash, when it was signed, and the
/// signature (see tijori-core's audit module for the signed message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditCheckpoint {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub time: i64,
    pub signature: Vec<u8>,
}

/// How a record's chain hash is computed from the previous hash, its number and its text.
/// The store calls it inside the write that appends, so the chain follows commit order.
pub type ChainFn = fn(prev_hash: &[u8], seq: i64, record: &str) -> Vec<u8>;

/// Audit records that a write makes from its own outcome `T`, to append to the chain in the
/// same durable commit as the write (one fsync for both, where the store can; and no write
/// without its record). The function answers no records when the outcome is not what it
/// describes; the caller then appends its record the usual way.
pub struct AuditAfter<T: ?Sized> {
    pub records: MakeRecords<T>,
    pub chain: ChainFn,
}

/// Makes audit records (their text) from a write's outcome.
pub type MakeRecords<T> = Box<dyn FnOnce(&T) -> Vec<String> + Send>;

/// The records of a token insert, made from its outcomes.
pub type AuditWith = AuditAfter<[InsertOutcome]>;

/// Which writes a store joins to their audit records ([`AuditAfter`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Joined {
    /// New tokens (`insert_tokens_audited`): the hot path, one commit for both.
    Tokens,
    /// A token's deletion and a subject's erasure (`delete_token_audited`,
    /// `erase_subject_audited`): rare, and never to stand without their record.
    Removals,
}

/// What an erasure removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Erased {
    pub tokens: u64,
    pub keys: u64,
}

/// How keys are used, for the key report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUsage {
    /// (KEK version, data keys wrapped under it).
    pub per_kek: Vec<(i64, u64)>,
    /// The vault-wide data key's versions: (record, tokens under it, active).
    pub shared: Vec<(DataKeyRecord, u64, bool)>,
    /// Subjects' own data keys.
    pub subject_keys: u64,
    /// Tokens still encrypted under a retired data key (the re-encrypt job's work).
    pub tokens_under_retired: u64,
}
