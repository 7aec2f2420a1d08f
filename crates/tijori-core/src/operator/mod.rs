//! Operators: the people who use the vault (PCI DSS 8). Each has a unique username, roles, a
//! password hashed with Argon2id and a mandatory TOTP second factor, and logs in for a session
//! that idles out. An administrator creates the account and hands over a one-time enrollment
//! code; the person then sets their own password and receives their own TOTP secret. The
//! administrator held the code, and could have enrolled in the person's place: so the account
//! records who issued it, and can never approve that principal's dual-control requests
//! (under dual control, creating and resetting accounts needs a second operator too). The
//! first login with a valid code confirms the authenticator.
//!
//! A failed login never says which factor was wrong, or whether the account exists, is locked
//! or disabled, and it costs one Argon2 run either way. Codes are accepted once (the store
//! keeps the newest step used) within one step of clock drift. Never logged: passwords, codes,
//! secrets, session tokens.

mod password;
mod session;
mod view;

use tijori_crypto::{
    dummy_verify, hash_password, open, random_hex, seal, sha256, verify_password, TotpSecret,
};
use tijori_store::UserRecord;
use zeroize::Zeroizing;

use crate::policy::{Authorized, Manage, ReadAudit};
use crate::principal::check_name;
use crate::{CoreError, Vault};

pub use session::{LoginAttempt, Session, SESSION_PREFIX};
pub use view::{Enrollment, NewUser, User, UserStatus};

/// Account rules, with PCI DSS 8's values as defaults.
#[derive(Clone, Debug)]
pub struct OperatorPolicy {
    /// Failed logins that lock an account (8.3.4: at most 10).
    pub max_failures: i64,
    /// How long a lock lasts, in seconds (8.3.4: at least 30 minutes).
    pub lockout_secs: i64,
    /// Idle time that ends a session, in seconds (8.2.8: 15 minutes).
    pub idle_secs: i64,
    /// Longest life of a session, idle or not, in seconds.
    pub session_max_secs: i64,
    /// Days without login after which an account is disabled (8.2.6: 90).
    pub inactive_days: i64,
    /// How long an enrollment code stays valid, in seconds.
    pub enrollment_secs: i64,
    /// How long a training attestation lasts, in days (12.6.1: yearly).
    pub training_valid_days: i64,
}

impl Default for OperatorPolicy {
    fn default() -> OperatorPolicy {
        OperatorPolicy {
            max_failures: 10,
            lockout_secs: 30 * 60,
            idle_secs: 15 * 60,
            session_max_secs: 12 * 3600,
            inactive_days: 90,
            enrollment_secs: 72 * 3600,
            training_valid_days: 365,
        }
    }
}

/// Steps of clock drift accepted either side of now.
const TOTP_DRIFT: u64 = 1;
/// Issuer shown in authenticator apps.
const ISSUER: &str = "Tijori";

fn totp_ad(user_id: &str) -> Vec<u8> {
    format!("tijori:totp:{user_id}").into_bytes()
}

/// Runs CPU-heavy work (Argon2) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, CoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| CoreError::Internal("password hashing stopped".into()))
}

impl Vault {
    /// Creates an operator account awaiting enrollment; the answer holds the one-time
    /// enrollment code, to hand to the person (it is stored only as a hash).
    pub async fn create_user(
        &self,
        auth: &Authorized<'_, Manage>,
        username: &str,
        roles: &[String],
    ) -> Result<NewUser, CoreError> {
        check_name(username)?;
        let roles = self.role_book.check_names(roles)?;
        let now = self.clock.now();
        let (code, hash) = enrollment_code()?;
        let expires = now + self.config.operators.enrollment_secs;
        let rec = UserRecord {
            id: format!("usr_{}", random_hex(12)?),
            username: username.to_owned(),
            roles,
            password_hash: None,
            password_history: Vec::new(),
            enrollment_hash: Some(hash),
            enrollment_expires_at: Some(expires),
            totp_sealed: None,
            totp_confirmed: false,
            last_totp_step: 0,
            failed_logins: 0,
            locked_until: None,
            last_active_at: now,
            last_login_at: None,
            training_valid_until: None,
            created_at: now,
            disabled: false,
            issued_by: auth.principal().id.clone(),
            revision: 0,
        };
        if !self.store.insert_user(rec.clone()).await? {
            return Err(CoreError::Conflict(
                "that username is taken; choose another",
            ));
        }
        Ok(NewUser {
            user: self.user_view(&rec),
            enrollment_code: code,
            enrollment_expires_at: expires,
        })
    }

    /// The person's side of enrollment: with the code from the administrator, sets their
    /// password and receives their TOTP secret (as an `otpauth://` URI). The code is spent.
    pub async fn enroll_user(
        &self,
        username: &str,
        code: &str,
        password: Zeroizing<String>,
    ) -> Result<Enrollment, CoreError> {
        let refused = CoreError::EnrollmentFailed;
        let keys = self.keyring.keys()?;
        let now = self.clock.now();
        let Some(mut user) = self.store.user_by_name(username).await? else {
            return Err(refused);
        };
        let valid = match (&user.enrollment_hash, user.enrollment_expires_at) {
            (Some(h), Some(exp)) => {
                exp > now
                    && bool::from(subtle::ConstantTimeEq::ct_eq(
                        &sha256(code.as_bytes())[..],
                        &h[..],
                    ))
            }
            _ => false,
        };
        if !valid || user.disabled {
            return Err(refused);
        }
        password::check_rules(&password, &user.username)?;
        let history = user.password_history.clone();
        let hash = blocking(move || {
            let refs: Vec<&str> = history.iter().map(String::as_str).collect();
            password::check_not_reused(&password, &refs)?;
            Ok::<_, CoreError>(hash_password(&password)?)
        })
        .await??;
        let secret = TotpSecret::generate()?;
        user.totp_sealed = Some(seal(
            &keys.operator,
            &totp_ad(&user.id),
            secret.expose_secret(),
        )?);
        user.password_hash = Some(hash);
        user.enrollment_hash = None;
        user.enrollment_expires_at = None;
        user.totp_confirmed = false;
        user.last_active_at = now;
        if !self.store.update_user(user.clone()).await? {
            return Err(refused);
        }
        Ok(Enrollment {
            user_id: user.id,
            otpauth_uri: Zeroizing::new(secret.otpauth_uri(ISSUER, &user.username)),
            secret: Zeroizing::new(secret.base32()),
        })
    }

    /// Changes a logged-in operator's own password. The new one must follow the rules and
    /// differ from the last four.
    pub async fn change_password(
        &self,
        user_id: &str,
        current: Zeroizing<String>,
        new: Zeroizing<String>,
    ) -> Result<(), CoreError> {
        let mut user = self
            .store
            .user(user_id)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let Some(stored) = user.password_hash.clone() else {
            return Err(CoreError::Unauthenticated);
        };
        password::check_rules(&new, &user.username)?;
        let history = user.password_history.clone();
        let checked = stored.clone();
        let verified = blocking(move || {
            if !verify_password(&current, &checked) {
                return Ok(None);
            }
            let mut previous = vec![checked.as_str()];
            previous.extend(history.iter().map(String::as_str));
            password::check_not_reused(&new, &previous)?;
            Ok::<_, CoreError>(Some(hash_password(&new)?))
        })
        .await??;
        let Some(hash) = verified else {
            // A wrong current password counts like a failed login: a stolen session cannot
            // guess the password without locking the account.
            let now = self.clock.now();
            let p = &self.config.operators;
            self.store
                .login_failed(&user.id, now, p.max_failures, now + p.lockout_secs)
                .await?;
            return Err(CoreError::InvalidRequest(
                "the current password is wrong; nothing was changed",
            ));
        };
        push_history(&mut user, stored);
        user.password_hash = Some(hash);
        if !self.store.update_user(user).await? {
            return Err(CoreError::Conflict(
                "the account changed meanwhile; nothing was changed, try again",
            ));
        }
        // Every session ends, this one included: the new password starts afresh.
        self.store.delete_user_sessions(user_id).await?;
        Ok(())
    }

    /// Every operator, by username.
    pub async fn users(&self, _auth: &Authorized<'_, Manage>) -> Result<Vec<User>, CoreError> {
        let users = self.store.users().await?;
        Ok(users.iter().map(|u| self.user_view(u)).collect())
    }

    /// Disables (ending every session) or re-enables an account. Re-enabling starts a fresh
    /// inactivity period and clears failures.
    pub async fn set_user_disabled(
        &self,
        _auth: &Authorized<'_, Manage>,
        id: &str,
        disabled: bool,
    ) -> Result<User, CoreError> {
        let now = self.clock.now();
        self.change_user(id, |u| {
            u.disabled = disabled;
            if !disabled {
                u.last_active_at = now;
                u.failed_logins = 0;
                u.locked_until = None;
            }
        })
        .await
    }

    /// Lifts a lockout.
    pub async fn unlock_user(
        &self,
        _auth: &Authorized<'_, Manage>,
        id: &str,
    ) -> Result<User, CoreError> {
        self.change_user(id, |u| {
            u.failed_logins = 0;
            u.locked_until = None;
        })
        .await
    }

    /// Starts enrollment over (a lost authenticator or forgotten password): the password
    /// and TOTP secret are dropped, every session ends, and a new enrollment code is issued.
    pub async fn reset_user(
        &self,
        auth: &Authorized<'_, Manage>,
        id: &str,
    ) -> Result<NewUser, CoreError> {
        let now = self.clock.now();
        let (code, hash) = enrollment_code()?;
        let expires = now + self.config.operators.enrollment_secs;
        let issuer = auth.principal().id.clone();
        let user = self
            .change_user(id, |u| {
                if let Some(old) = u.password_hash.take() {
                    push_history(u, old);
                }
                u.totp_sealed = None;
                u.totp_confirmed = false;
                u.issued_by = issuer.clone();
                u.enrollment_hash = Some(hash.clone());
                u.enrollment_expires_at = Some(expires);
                u.failed_logins = 0;
                u.locked_until = None;
            })
            .await?;
        Ok(NewUser {
            user,
            enrollment_code: code,
            enrollment_expires_at: expires,
        })
    }

    /// Records a data-protection training attestation completed at `completed_at`: valid for
    /// a year (the configured period) from then.
    pub async fn record_training(
        &self,
        _auth: &Authorized<'_, Manage>,
        id: &str,
        completed_at: i64,
    ) -> Result<User, CoreError> {
        if completed_at > self.clock.now() {
            return Err(CoreError::InvalidRequest(
                "completed_at is in the future; give the date the training was completed",
            ));
        }
        let until = completed_at + self.config.operators.training_valid_days * 86_400;
        self.change_user(id, |u| u.training_valid_until = Some(until))
            .await
    }

    /// Operators whose training has lapsed or lapses within `within_days`, soonest first.
    pub async fn training_report(
        &self,
        _auth: &Authorized<'_, ReadAudit>,
        within_days: i64,
    ) -> Result<Vec<User>, CoreError> {
        let horizon = self.clock.now() + within_days * 86_400;
        let mut due: Vec<User> = self
            .store
            .users()
            .await?
            .iter()
            .filter(|u| !u.disabled && view::lapsed(u.training_valid_until, horizon))
            .map(|u| self.user_view(u))
            .collect();
        due.sort_by_key(|u| u.training_valid_until.unwrap_or(i64::MIN));
        Ok(due)
    }

    /// Reads, changes and writes one account, reading again if another write came between
    /// (logins change counters all the time). Disabling or resetting ends its sessions at once.
    async fn change_user(
        &self,
        id: &str,
        change: impl Fn(&mut UserRecord),
    ) -> Result<User, CoreError> {
        for _ in 0..CHANGE_ATTEMPTS {
            let mut user = self.store.user(id).await?.ok_or(CoreError::UserNotFound)?;
            let before = (user.disabled, user.password_hash.is_some());
            change(&mut user);
            if !self.store.update_user(user.clone()).await? {
                continue;
            }
            if user.disabled && !before.0 || before.1 && user.password_hash.is_none() {
                self.store.delete_user_sessions(&user.id).await?;
            }
            user.revision += 1;
            return Ok(self.user_view(&user));
        }
        Err(CoreError::Conflict(
            "the account keeps changing (logins under way?); try again",
        ))
    }
}

/// Tries of a read-change-write that lost to another write.
const CHANGE_ATTEMPTS: usize = 5;

/// Keeps `old` as the newest remembered password.
fn push_history(user: &mut UserRecord, old: String) {
    user.password_history.insert(0, old);
    user.password_history.truncate(password::REMEMBERED - 1);
}

/// A fresh enrollment code and its hash.
fn enrollment_code() -> Result<(Zeroizing<String>, Vec<u8>), CoreError> {
    let code = Zeroizing::new(format!("tje_{}", random_hex(16)?));
    let hash = sha256(code.as_bytes()).to_vec();
    Ok((code, hash))
}

/// Verifies a password against an optional stored hash in constant work: a missing hash
/// still costs one Argon2 run.
async fn password_matches(
    password: Zeroizing<String>,
    stored: Option<String>,
) -> Result<bool, CoreError> {
    blocking(move || match stored {
        Some(h) => verify_password(&password, &h),
        None => dummy_verify(&password),
    })
    .await
}

/// A stored TOTP secret, decrypted.
fn totp_secret(
    vault_key: &tijori_crypto::SecretKey,
    user: &UserRecord,
) -> Result<TotpSecret, CoreError> {
    let sealed = user.totp_sealed.as_deref().ok_or(CoreError::LoginFailed)?;
    let bytes = open(vault_key, &totp_ad(&user.id), sealed).map_err(|_| {
        CoreError::Internal(format!("the TOTP secret of {} does not decrypt", user.id))
    })?;
    Ok(TotpSecret::from_bytes(&bytes)?)
}
