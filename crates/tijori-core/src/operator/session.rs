//! Logging in and sessions. A session token is 256 random bits, shown once and stored as its
//! SHA-256 (like API keys); it ends after the idle timeout, after its longest life, at logout,
//! or when its account is disabled or reset.

use tijori_crypto::{random_hex, sha256};
use tijori_store::{SessionRecord, UserRecord};
use zeroize::Zeroizing;

use super::{password_matches, totp_secret, User, TOTP_DRIFT};
use crate::audit::{AuditEvent, Outcome};
use crate::{CoreError, Principal, PrincipalKind, Vault};

/// Session tokens start with this, so the server knows to look them up as sessions.
pub const SESSION_PREFIX: &str = "tjo_";

/// A logged-in operator's session. No `Debug`: it holds the token.
pub struct Session {
    pub token: Zeroizing<String>,
    pub user: User,
    /// Seconds of inactivity after which the session ends.
    pub idle_timeout_secs: i64,
}

/// The outcome of a login, with the account it concerned (for the audit record) when the
/// username named one.
pub struct LoginAttempt {
    pub user_id: Option<String>,
    pub result: Result<Session, CoreError>,
}

impl Vault {
    /// Checks username, password and one-time code. Any failure answers the same
    /// [`CoreError::LoginFailed`] after the same work: one counted attempt and one Argon2 run,
    /// whether or not the name exists. A sealed vault answers `Sealed` for every name.
    pub async fn login(
        &self,
        username: &str,
        password: Zeroizing<String>,
        code: &str,
    ) -> LoginAttempt {
        if let Err(e) = self.keyring.keys() {
            return LoginAttempt {
                user_id: None,
                result: Err(e),
            };
        }
        let user = match self.store.user_by_name(username).await {
            Ok(u) => u,
            Err(e) => {
                return LoginAttempt {
                    user_id: None,
                    result: Err(e.into()),
                }
            }
        };
        let user_id = user.as_ref().map(|u| u.id.clone());
        let result = match user {
            Some(user) => self.login_as(user, password, code).await,
            None => self.no_such_user(password).await,
        };
        LoginAttempt { user_id, result }
    }

    /// The work of a login for a name without an account: a counted attempt that finds no
    /// row, and an Argon2 run.
    async fn no_such_user(&self, password: Zeroizing<String>) -> Result<Session, CoreError> {
        let now = self.clock.now();
        self.store.login_failed("", now, 1, now).await?;
        password_matches(password, None).await?;
        Err(CoreError::LoginFailed)
    }

    async fn login_as(
        &self,
        user: UserRecord,
        password: Zeroizing<String>,
        code: &str,
    ) -> Result<Session, CoreError> {
        let keys = self.keyring.keys()?;
        let now = self.clock.now();
        let policy = &self.config.operators;
        // Every attempt is counted before it is checked, and a success clears the count: so
        // attempts made in parallel get no more checks than the limit allows.
        let lock_until = now + policy.lockout_secs;
        let attempt = self
            .store
            .login_failed(&user.id, now, policy.max_failures, lock_until)
            .await?;
        // The store never extends a lock, so a lock ending at `lock_until` is this attempt's.
        if attempt.locked_until == Some(lock_until) {
            self.audit_user_event(&user.id, "user.lock").await?;
        }
        let locked = attempt.locked_until.is_some_and(|t| t > now);
        let inactive = now - user.last_active_at > policy.inactive_days * 86_400;
        // Work is the same whatever the state: one Argon2 run.
        let stored = if user.disabled || locked || inactive {
            None
        } else {
            user.password_hash.clone()
        };
        let password_ok = password_matches(password, stored).await?;
        if inactive && !user.disabled {
            self.disable_inactive(&user.id).await?;
            return Err(CoreError::LoginFailed);
        }
        if user.disabled || locked {
            return Err(CoreError::LoginFailed);
        }
        let step = if password_ok {
            totp_secret(&keys.operator, &user)?.matching_step(code, now.max(0) as u64, TOTP_DRIFT)
        } else {
            None
        };
        let accepted = match step {
            // The store takes each step once, and none while the account is locked or
            // disabled (by a parallel attempt or an administrator): a replay fails here.
            Some(step) => {
                self.store
                    .login_succeeded(&user.id, step as i64, now)
                    .await?
            }
            None => false,
        };
        if !accepted {
            return Err(CoreError::LoginFailed);
        }
        let token = Zeroizing::new(format!("{SESSION_PREFIX}{}", random_hex(32)?));
        self.store
            .insert_session(SessionRecord {
                hash: sha256(token.as_bytes()).to_vec(),
                user_id: user.id.clone(),
                created_at: now,
                last_seen_at: now,
            })
            .await?;
        let user = self
            .store
            .user(&user.id)
            .await?
            .ok_or(CoreError::LoginFailed)?;
        Ok(Session {
            token,
            user: self.user_view(&user),
            idle_timeout_secs: policy.idle_secs,
        })
    }

    /// The operator a session token names, if the session is live; each use restarts its
    /// idle timer.
    pub async fn authenticate_session(&self, token: &str) -> Result<Principal, CoreError> {
        let hash = sha256(token.as_bytes());
        let session = self
            .store
            .session(&hash)
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        let now = self.clock.now();
        let policy = &self.config.operators;
        if now - session.last_seen_at >= policy.idle_secs
            || now - session.created_at >= policy.session_max_secs
        {
            self.store.delete_session(&hash).await?;
            return Err(CoreError::SessionExpired);
        }
        let user = match self.store.user(&session.user_id).await? {
            Some(u) if !u.disabled && u.password_hash.is_some() => u,
            _ => {
                self.store.delete_session(&hash).await?;
                return Err(CoreError::SessionExpired);
            }
        };
        if now > session.last_seen_at {
            self.store.touch_session(&hash, now).await?;
        }
        let (roles, custom_rules) = self.role_book.resolve(&user.roles);
        Ok(Principal {
            id: user.id,
            name: user.username,
            kind: PrincipalKind::Operator,
            roles,
            created_at: user.created_at,
            disabled: false,
            training_lapsed: super::view::lapsed(user.training_valid_until, now),
            custom_rules,
        })
    }

    /// Ends a session; `false` if it was not live.
    pub async fn logout(&self, token: &str) -> Result<bool, CoreError> {
        Ok(self.store.delete_session(&sha256(token.as_bytes())).await?)
    }

    /// Removes sessions past their idle timeout or lifetime.
    pub(crate) async fn purge_sessions(&self, now: i64) -> Result<u64, CoreError> {
        let p = &self.config.operators;
        Ok(self
            .store
            .purge_sessions(now - p.idle_secs, now - p.session_max_secs)
            .await?)
    }

    /// Disables an account unused past the inactivity limit, ending its sessions, audited.
    async fn disable_inactive(&self, id: &str) -> Result<(), CoreError> {
        for _ in 0..3 {
            let Some(mut user) = self.store.user(id).await? else {
                return Ok(());
            };
            user.disabled = true;
            if self.store.update_user(user).await? {
                self.store.delete_user_sessions(id).await?;
                return self.audit_user_event(id, "user.disable_inactive").await;
            }
        }
        Ok(())
    }

    /// A system record about an account (lock, disabling for inactivity), written before the
    /// refusal is answered.
    async fn audit_user_event(&self, user_id: &str, operation: &str) -> Result<(), CoreError> {
        let mut event = AuditEvent::system(self.clock.now(), operation, Outcome::Success, None);
        event.resource = Some(user_id.to_owned());
        self.audit(vec![event]).await
    }
}
