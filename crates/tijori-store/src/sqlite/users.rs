//! Operators and sessions in SQLite. The failure count, the lock and the TOTP replay guard
//! change in single conditional statements (see [`UserStore`]).

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, OptionalExtension, Row};

use super::SqliteStore;
use crate::{LoginFailure, SessionRecord, StoreError, UserRecord, UserStore};

const USER_COLUMNS: &str = "id, username, roles, password_hash, password_history, \
    enrollment_hash, enrollment_expires_at, totp_sealed, totp_confirmed, last_totp_step, \
    failed_logins, locked_until, last_active_at, last_login_at, training_valid_until, \
    created_at, disabled, issued_by, revision";

/// PHC strings hold commas but never newlines.
const HISTORY_SEPARATOR: char = '\n';

fn user_from_row(r: &Row<'_>) -> Result<UserRecord, rusqlite::Error> {
    let roles: String = r.get(2)?;
    let history: String = r.get(4)?;
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        roles: roles
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        password_hash: r.get(3)?,
        password_history: history
            .split(HISTORY_SEPARATOR)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        enrollment_hash: r.get(5)?,
        enrollment_expires_at: r.get(6)?,
        totp_sealed: r.get(7)?,
        totp_confirmed: r.get(8)?,
        last_totp_step: r.get(9)?,
        failed_logins: r.get(10)?,
        locked_until: r.get(11)?,
        last_active_at: r.get(12)?,
        last_login_at: r.get(13)?,
        training_valid_until: r.get(14)?,
        created_at: r.get(15)?,
        disabled: r.get(16)?,
        issued_by: r.get(17)?,
        revision: r.get(18)?,
    })
}

fn session_from_row(r: &Row<'_>) -> Result<SessionRecord, rusqlite::Error> {
    Ok(SessionRecord {
        hash: r.get(0)?,
        user_id: r.get(1)?,
        created_at: r.get(2)?,
        last_seen_at: r.get(3)?,
    })
}

/// A user's columns, in [`USER_COLUMNS`] order, as `?1`..`?19`.
fn user_values(u: &UserRecord) -> [Value; 19] {
    let history = u.password_history.join(&HISTORY_SEPARATOR.to_string());
    [
        u.id.clone().into(),
        u.username.clone().into(),
        u.roles.join(",").into(),
        u.password_hash.clone().into(),
        history.into(),
        u.enrollment_hash.clone().into(),
        u.enrollment_expires_at.into(),
        u.totp_sealed.clone().into(),
        u.totp_confirmed.into(),
        u.last_totp_step.into(),
        u.failed_logins.into(),
        u.locked_until.into(),
        u.last_active_at.into(),
        u.last_login_at.into(),
        u.training_valid_until.into(),
        u.created_at.into(),
        u.disabled.into(),
        u.issued_by.clone().into(),
        u.revision.into(),
    ]
}

impl SqliteStore {
    fn user_where(
        &self,
        clause: &'static str,
        key: String,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE {clause} = ?1"),
                params![key],
                user_from_row,
            )
            .optional()
        })
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            let rows = stmt.query_map([], user_from_row)?;
            rows.collect()
        })
    }

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("id", id.to_owned())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where("username", username.to_owned())
    }

    async fn insert_user(&self, u: UserRecord) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    &format!(
                        "INSERT INTO users ({USER_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19) \
                         ON CONFLICT(username) DO NOTHING"
                    ),
                    params_from_iter(user_values(&u)),
                )?;
                Ok(n > 0)
            })
            .await
    }

    async fn update_user(&self, u: UserRecord) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE users SET username = ?2, roles = ?3, password_hash = ?4, \
                     password_history = ?5, enrollment_hash = ?6, enrollment_expires_at = ?7, \
                     totp_sealed = ?8, totp_confirmed = ?9, last_totp_step = ?10, \
                     failed_logins = ?11, locked_until = ?12, last_active_at = ?13, \
                     last_login_at = ?14, training_valid_until = ?15, created_at = ?16, \
                     disabled = ?17, issued_by = ?18, revision = revision + 1 \
                     WHERE id = ?1 AND revision = ?19",
                    params_from_iter(user_values(&u)),
                )?;
                Ok(n > 0)
            })
            .await
    }

    async fn login_failed(
        &self,
        id: &str,
        now: i64,
        max: i64,
        lock_until: i64,
    ) -> Result<LoginFailure, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                tx.query_row(
                    "UPDATE users SET
                       revision = revision + 1,
                       failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= ?2
                                            THEN 1 ELSE failed_logins + 1 END,
                       locked_until = CASE
                         WHEN locked_until IS NOT NULL AND locked_until <= ?2
                           THEN CASE WHEN ?3 <= 1 THEN ?4 END
                         WHEN locked_until IS NOT NULL THEN locked_until
                         WHEN failed_logins + 1 >= ?3 THEN ?4
                         ELSE locked_until END
                     WHERE id = ?1
                     RETURNING failed_logins, locked_until",
                    params![id, now, max, lock_until],
                    |r| {
                        Ok(LoginFailure {
                            failed_logins: r.get(0)?,
                            locked_until: r.get(1)?,
                        })
                    },
                )
                .optional()
                .map(|r| {
                    // No such user (deleted meanwhile): nothing to count.
                    r.unwrap_or(LoginFailure {
                        failed_logins: 0,
                        locked_until: None,
                    })
                })
                .map_err(StoreError::from)
            })
            .await
    }

    async fn login_succeeded(&self, id: &str, step: i64, now: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE users SET last_totp_step = ?2, failed_logins = 0, locked_until = NULL,
                       last_login_at = ?3, last_active_at = ?3, totp_confirmed = 1,
                       revision = revision + 1
                     WHERE id = ?1 AND last_totp_step < ?2 AND disabled = 0
                       AND (locked_until IS NULL OR locked_until <= ?3)",
                    params![id, step, now],
                )? > 0)
            })
            .await
    }

    async fn insert_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO sessions (hash, user_id, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4)",
                    params![s.hash, s.user_id, s.created_at, s.last_seen_at],
                )?;
                Ok(())
            })
            .await
    }

    async fn session(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        let hash = hash.to_vec();
        self.read(move |c| {
            c.query_row(
                "SELECT hash, user_id, created_at, last_seen_at FROM sessions WHERE hash = ?1",
                params![hash],
                session_from_row,
            )
            .optional()
        })
    }

    async fn touch_session(&self, hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let hash = hash.to_vec();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE sessions SET last_seen_at = MAX(last_seen_at, ?2) WHERE hash = ?1",
                    params![hash, now],
                )? > 0)
            })
            .await
    }

    async fn delete_session(&self, hash: &[u8]) -> Result<bool, StoreError> {
        let hash = hash.to_vec();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute("DELETE FROM sessions WHERE hash = ?1", params![hash])? > 0)
            })
            .await
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        let id = user_id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute("DELETE FROM sessions WHERE user_id = ?1", params![id])? as u64)
            })
            .await
    }

    async fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM sessions WHERE last_seen_at < ?1 OR created_at < ?2",
                    params![idle_before, created_before],
                )? as u64)
            })
            .await
    }
}
