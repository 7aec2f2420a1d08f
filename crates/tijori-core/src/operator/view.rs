//! What the API shows of operators: never a hash, a secret or a code, except the one-time
//! enrollment code and TOTP secret in the answers that issue them.

use tijori_store::UserRecord;
use zeroize::Zeroizing;

use crate::Vault;

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// Created or reset; waiting for the person to enroll with their code.
    EnrollmentPending,
    /// Enrolled; the first login with a valid code confirms the authenticator.
    ConfirmationPending,
    Active,
    /// Too many failed logins; until `locked_until`, or an administrator unlocks it.
    Locked,
    /// Unused for longer than the inactivity limit: disabled at the next login attempt.
    Inactive,
    Disabled,
}

impl UserStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::EnrollmentPending => "enrollment_pending",
            UserStatus::ConfirmationPending => "confirmation_pending",
            UserStatus::Active => "active",
            UserStatus::Locked => "locked",
            UserStatus::Inactive => "inactive",
            UserStatus::Disabled => "disabled",
        }
    }
}

/// An operator as shown to administrators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// Built-in and custom role names.
    pub roles: Vec<String>,
    pub status: UserStatus,
    pub created_at: i64,
    pub last_login_at: Option<i64>,
    pub locked_until: Option<i64>,
    pub training_valid_until: Option<i64>,
}

impl User {
    /// Whether the training attestation has lapsed (or was never recorded) at `now`.
    pub fn training_lapsed(&self, now: i64) -> bool {
        lapsed(self.training_valid_until, now)
    }
}

/// Training valid until `valid_until` has lapsed at `now` (none recorded: lapsed).
pub(crate) fn lapsed(valid_until: Option<i64>, now: i64) -> bool {
    valid_until.is_none_or(|t| t <= now)
}

/// A created (or reset) account and its one-time enrollment code. No `Debug`.
pub struct NewUser {
    pub user: User,
    pub enrollment_code: Zeroizing<String>,
    pub enrollment_expires_at: i64,
}

/// What enrollment gives the person: their TOTP secret, as a URI for an app and in base32
/// for typing. No `Debug`.
pub struct Enrollment {
    pub user_id: String,
    pub otpauth_uri: Zeroizing<String>,
    pub secret: Zeroizing<String>,
}

impl Vault {
    pub(crate) fn user_view(&self, u: &UserRecord) -> User {
        let now = self.clock.now();
        let inactive = now - u.last_active_at > self.config.operators.inactive_days * 86_400;
        let status = if u.disabled {
            UserStatus::Disabled
        } else if u.password_hash.is_none() {
            UserStatus::EnrollmentPending
        } else if u.locked_until.is_some_and(|t| t > now) {
            UserStatus::Locked
        } else if inactive {
            UserStatus::Inactive
        } else if !u.totp_confirmed {
            UserStatus::ConfirmationPending
        } else {
            UserStatus::Active
        };
        User {
            id: u.id.clone(),
            username: u.username.clone(),
            roles: u.roles.clone(),
            status,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
            locked_until: u.locked_until.filter(|t| *t > now),
            training_valid_until: u.training_valid_until,
        }
    }
}
