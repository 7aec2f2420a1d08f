//! Errors of the vault's services. Each maps to exactly one API error code at the server's
//! boundary. No variant carries a plaintext value; `Unavailable` and `Internal` carry a cause
//! for the log only, and the server never sends it to a client.

use tijori_types::{ErrorCode, ValidationError};

/// What a vault operation can answer instead of a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The value or a field failed validation.
    #[error("{0}")]
    Invalid(#[from] ValidationError),
    /// A request field is out of range or inconsistent; the message names the field.
    #[error("{0}")]
    InvalidRequest(&'static str),
    /// No credential, or one that names no active principal.
    #[error(
        "a valid credential is required: send 'Authorization: Bearer <api key or session token>'"
    )]
    Unauthenticated,
    /// A login that failed, for whatever reason: the message never says which factor was wrong,
    /// or whether the account exists, is locked or disabled.
    #[error(
        "login failed: the username, password or one-time code is wrong, or the account is \
         locked or disabled. Repeated failures lock the account; an administrator can unlock it"
    )]
    LoginFailed,
    /// An enrollment code that is wrong, used or expired (or names no account).
    #[error(
        "enrollment failed: the username or enrollment code is wrong, used or expired; ask an \
         administrator for a new code"
    )]
    EnrollmentFailed,
    /// No such object (role, approval); the message says which.
    #[error("{0}")]
    NoSuch(&'static str),
    /// No operator account has this id.
    #[error("no such user")]
    UserNotFound,
    /// An operator's session idled out, outlived its lifetime, or was ended.
    #[error("the session has expired or ended; log in again (POST /v1/auth/login)")]
    SessionExpired,
    /// An operator's data-protection training attestation has lapsed: no reveal until renewed.
    #[error(
        "your data-protection training has lapsed, so values cannot be revealed to you; ask an \
         administrator to record your renewed training"
    )]
    TrainingExpired,
    /// The name is taken, or the object's state does not allow the request; the message says
    /// which.
    #[error("{0}")]
    Conflict(&'static str),
    /// Authenticated, but the principal's roles do not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Unknown, deleted or expired token.
    #[error("no such token: it is unknown, deleted or expired")]
    NotFound,
    /// The same `Idempotency-Key` was used with a different request.
    #[error(
        "this Idempotency-Key was used with a different request; use a new key for a new request"
    )]
    IdempotencyConflict,
    /// A batch has more items than allowed.
    #[error("the request has more items than the limit (10,000 by default); split it")]
    TooManyItems,
    /// The root of trust offered (shares, HSM key, key file) does not unwrap this vault's
    /// key-encryption keys.
    #[error("the root key offered does not open this vault's keys")]
    RootMismatch,
    /// Key material is not in memory.
    #[error("the vault is sealed; unseal it before data operations")]
    Sealed,
    /// A bounded in-memory store is full for now; the message says which and when it frees.
    #[error("{0}")]
    Full(&'static str),
    /// Over a rate limit; `what` says which and how to change it.
    #[error("{what}; retry in {retry_after} s")]
    RateLimited {
        what: &'static str,
        /// Seconds until a call would be allowed.
        retry_after: u64,
    },
    /// Storage or another dependency failed; the cause is for the log only.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or an impossible state; the cause is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl CoreError {
    /// A lock whose holder panicked: the state behind it can no longer be trusted.
    pub(crate) fn poisoned(what: &str) -> CoreError {
        CoreError::Internal(format!("{what} lock poisoned"))
    }

    /// The stable API code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Invalid(v) => v.code,
            CoreError::InvalidRequest(_) => ErrorCode::InvalidValue,
            CoreError::Unauthenticated
            | CoreError::LoginFailed
            | CoreError::SessionExpired
            | CoreError::EnrollmentFailed => ErrorCode::Unauthenticated,
            CoreError::UserNotFound | CoreError::NoSuch(_) => ErrorCode::NotFound,
            CoreError::TrainingExpired => ErrorCode::TrainingExpired,
            CoreError::Conflict(_) => ErrorCode::Conflict,
            CoreError::Forbidden(_) => ErrorCode::Forbidden,
            CoreError::NotFound => ErrorCode::NotFound,
            CoreError::IdempotencyConflict => ErrorCode::IdempotencyConflict,
            CoreError::TooManyItems => ErrorCode::PayloadTooLarge,
            CoreError::RootMismatch => ErrorCode::InvalidValue,
            CoreError::Sealed => ErrorCode::Sealed,
            CoreError::RateLimited { .. } => ErrorCode::RateLimited,
            CoreError::Full(_) | CoreError::Unavailable(_) => ErrorCode::Unavailable,
            CoreError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a client may see: never a value, never an internal cause.
    pub fn public_message(&self) -> String {
        match self {
            CoreError::Unavailable(_) => {
                "the vault's storage cannot be used just now (a full or read-only disk, or an \
                 unreachable database); nothing was done. Retry later; operators find the cause \
                 in the server's log"
                    .to_owned()
            }
            CoreError::Internal(_) => {
                "an internal error occurred; nothing was revealed. Report the request id".to_owned()
            }
            other => other.to_string(),
        }
    }
}

impl From<tijori_store::StoreError> for CoreError {
    fn from(e: tijori_store::StoreError) -> CoreError {
        CoreError::Unavailable(e.to_string())
    }
}

impl From<tijori_crypto::CryptoError> for CoreError {
    fn from(e: tijori_crypto::CryptoError) -> CoreError {
        CoreError::Internal(e.to_string())
    }
}
