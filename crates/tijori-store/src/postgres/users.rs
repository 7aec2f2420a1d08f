//! Operators and sessions in PostgreSQL. The failure count, the lock and the TOTP replay guard
//! change in single conditional statements (see [`UserStore`]), the SQLite store's SQL ported:
//! every right-hand side of an `UPDATE` reads the row as it was, and `RETURNING` answers it as
//! it became, so nodes racing on one account each see a count no other node also saw.

use async_trait::async_trait;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{col, split, PgStore};
use crate::{LoginFailure, SessionRecord, StoreError, UserRecord, UserStore};

const USER_COLUMNS: &str = "id, username, roles, password_hash, password_history, \
    enrollment_hash, enrollment_expires_at, totp_sealed, totp_confirmed, last_totp_step, \
    failed_logins, locked_until, last_active_at, last_login_at, training_valid_until, \
    created_at, disabled, issued_by, revision";

/// PHC strings hold commas but never newlines (as in the SQLite store).
const HISTORY_SEPARATOR: char = '\n';

fn user_from_row(r: &Row) -> Result<UserRecord, StoreError> {
    let roles: String = col(r, 2)?;
    let history: String = col(r, 4)?;
    Ok(UserRecord {
        id: col(r, 0)?,
        username: col(r, 1)?,
        roles: split(&roles),
        password_hash: col(r, 3)?,
        password_history: history
            .split(HISTORY_SEPARATOR)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        enrollment_hash: col(r, 5)?,
        enrollment_expires_at: col(r, 6)?,
        totp_sealed: col(r, 7)?,
        totp_confirmed: col(r, 8)?,
        last_totp_step: col(r, 9)?,
        failed_logins: col(r, 10)?,
        locked_until: col(r, 11)?,
        last_active_at: col(r, 12)?,
        last_login_at: col(r, 13)?,
        training_valid_until: col(r, 14)?,
        created_at: col(r, 15)?,
        disabled: col(r, 16)?,
        issued_by: col(r, 17)?,
        revision: col(r, 18)?,
    })
}

fn session_from_row(r: &Row) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        hash: col(r, 0)?,
        user_id: col(r, 1)?,
        created_at: col(r, 2)?,
        last_seen_at: col(r, 3)?,
    })
}

/// A user's columns as statement parameters: the lists joined as the SQLite store joins them.
struct UserParams<'a> {
    user: &'a UserRecord,
    roles: String,
    history: String,
}

impl<'a> UserParams<'a> {
    fn new(user: &'a UserRecord) -> UserParams<'a> {
        UserParams {
            user,
            roles: user.roles.join(","),
            history: user.password_history.join(&HISTORY_SEPARATOR.to_string()),
        }
    }

    /// In [`USER_COLUMNS`] order, as `$1`..`$19`.
    fn params(&self) -> [&(dyn ToSql + Sync); 19] {
        let u = self.user;
        [
            &u.id,
            &u.username,
            &self.roles,
            &u.password_hash,
            &self.history,
            &u.enrollment_hash,
            &u.enrollment_expires_at,
            &u.totp_sealed,
            &u.totp_confirmed,
            &u.last_totp_step,
            &u.failed_logins,
            &u.locked_until,
            &u.last_active_at,
            &u.last_login_at,
            &u.training_valid_until,
            &u.created_at,
            &u.disabled,
            &u.issued_by,
            &u.revision,
        ]
    }
}

#[async_trait]
impl UserStore for PgStore {
    async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.query(
            &format!("SELECT {USER_COLUMNS} FROM users ORDER BY username"),
            &[],
            user_from_row,
        )
        .await
    }

    async fn user(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
            &[&id],
            user_from_row,
        )
        .await
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        self.query_opt(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1"),
            &[&username],
            user_from_row,
        )
        .await
    }

    async fn insert_user(&self, u: UserRecord) -> Result<bool, StoreError> {
        let p = UserParams::new(&u);
        let n = self
            .execute(
                &format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
                     ON CONFLICT (username) DO NOTHING"
                ),
                &p.params(),
            )
            .await?;
        Ok(n > 0)
    }

    async fn update_user(&self, u: UserRecord) -> Result<bool, StoreError> {
        let p = UserParams::new(&u);
        let n = self
            .execute(
                "UPDATE users SET username = $2, roles = $3, password_hash = $4, \
                 password_history = $5, enrollment_hash = $6, enrollment_expires_at = $7, \
                 totp_sealed = $8, totp_confirmed = $9, last_totp_step = $10, \
                 failed_logins = $11, locked_until = $12, last_active_at = $13, \
                 last_login_at = $14, training_valid_until = $15, created_at = $16, \
                 disabled = $17, issued_by = $18, revision = revision + 1 \
                 WHERE id = $1 AND revision = $19",
                &p.params(),
            )
            .await?;
        Ok(n > 0)
    }

    async fn login_failed(
        &self,
        id: &str,
        now: i64,
        max: i64,
        lock_until: i64,
    ) -> Result<LoginFailure, StoreError> {
        // The casts pin every parameter to BIGINT: `$3 <= 1` alone would make it an INTEGER.
        let failure = self
            .query_opt(
                "UPDATE users SET
                   revision = revision + 1,
                   failed_logins = CASE WHEN locked_until IS NOT NULL AND locked_until <= $2::BIGINT
                                        THEN 1 ELSE failed_logins + 1 END,
                   locked_until = CASE
                     WHEN locked_until IS NOT NULL AND locked_until <= $2::BIGINT
                       THEN CASE WHEN $3::BIGINT <= 1 THEN $4::BIGINT END
                     WHEN locked_until IS NOT NULL THEN locked_until
                     WHEN failed_logins + 1 >= $3::BIGINT THEN $4::BIGINT
                     ELSE locked_until END
                 WHERE id = $1
                 RETURNING failed_logins, locked_until",
                &[&id, &now, &max, &lock_until],
                |r| {
                    Ok(LoginFailure {
                        failed_logins: col(r, 0)?,
                        locked_until: col(r, 1)?,
                    })
                },
            )
            .await?;
        // No such user (deleted meanwhile): nothing to count.
        Ok(failure.unwrap_or(LoginFailure {
            failed_logins: 0,
            locked_until: None,
        }))
    }

    async fn login_succeeded(&self, id: &str, step: i64, now: i64) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE users SET last_totp_step = $2, failed_logins = 0, locked_until = NULL,
                   last_login_at = $3, last_active_at = $3, totp_confirmed = TRUE,
                   revision = revision + 1
                 WHERE id = $1 AND last_totp_step < $2 AND NOT disabled
                   AND (locked_until IS NULL OR locked_until <= $3)",
                &[&id, &step, &now],
            )
            .await?;
        Ok(n > 0)
    }

    async fn insert_session(&self, s: SessionRecord) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO sessions (hash, user_id, created_at, last_seen_at) VALUES ($1, $2, $3, $4)",
            &[&s.hash, &s.user_id, &s.created_at, &s.last_seen_at],
        )
        .await?;
        Ok(())
    }

    async fn session(&self, hash: &[u8]) -> Result<Option<SessionRecord>, StoreError> {
        self.query_opt(
            "SELECT hash, user_id, created_at, last_seen_at FROM sessions WHERE hash = $1",
            &[&hash],
            session_from_row,
        )
        .await
    }

    async fn touch_session(&self, hash: &[u8], now: i64) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE hash = $1",
                &[&hash, &now],
            )
            .await?;
        Ok(n > 0)
    }

    async fn delete_session(&self, hash: &[u8]) -> Result<bool, StoreError> {
        let n = self
            .execute("DELETE FROM sessions WHERE hash = $1", &[&hash])
            .await?;
        Ok(n > 0)
    }

    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64, StoreError> {
        self.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id])
            .await
    }

    async fn purge_sessions(
        &self,
        idle_before: i64,
        created_before: i64,
    ) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2",
            &[&idle_before, &created_before],
        )
        .await
    }
}
