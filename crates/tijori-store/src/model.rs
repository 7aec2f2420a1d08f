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

/// A service principal.
#[derive(Clone, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    /// SHA-256 of the API key.
    pub key_hash: Vec<u8>,
    pub created_at: i64,
    pub disabled: bool,
}

impl std::fmt::Debug for PrincipalRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalRecord")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
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
