//! Custom roles and dual-control approvals in PostgreSQL. A role change is an insert of the
//! next version, made only if the newest stored version is the one before it, in one
//! statement; the primary key makes a concurrent second change of the same version do nothing.
//! An approval moves from one status to the next in one conditional `UPDATE`.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{col, PgStore};
use crate::{ApprovalRecord, PolicyStore, RoleRecord, StoreError};

const ROLE_COLUMNS: &str = "name, rules, version, changed_at, changed_by, deleted";
const APPROVAL_COLUMNS: &str = "id, operation, fingerprint, summary, requested_by, \
    requested_at, expires_at, status, decided_by, decided_at";

fn role_from_row(r: &Row) -> Result<RoleRecord, StoreError> {
    Ok(RoleRecord {
        name: col(r, 0)?,
        rules: col(r, 1)?,
        version: col(r, 2)?,
        changed_at: col(r, 3)?,
        changed_by: col(r, 4)?,
        deleted: col(r, 5)?,
    })
}

fn approval_from_row(r: &Row) -> Result<ApprovalRecord, StoreError> {
    Ok(ApprovalRecord {
        id: col(r, 0)?,
        operation: col(r, 1)?,
        fingerprint: col(r, 2)?,
        summary: col(r, 3)?,
        requested_by: col(r, 4)?,
        requested_at: col(r, 5)?,
        expires_at: col(r, 6)?,
        status: col(r, 7)?,
        decided_by: col(r, 8)?,
        decided_at: col(r, 9)?,
    })
}

#[async_trait]
impl PolicyStore for PgStore {
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.query(
            &format!(
                "SELECT {ROLE_COLUMNS} FROM role_versions v
                 WHERE version = (SELECT MAX(version) FROM role_versions w WHERE w.name = v.name)
                   AND NOT deleted
                 ORDER BY name"
            ),
            &[],
            role_from_row,
        )
        .await
    }

    async fn role_history(&self, name: &str) -> Result<Vec<RoleRecord>, StoreError> {
        self.query(
            &format!("SELECT {ROLE_COLUMNS} FROM role_versions WHERE name = $1 ORDER BY version"),
            &[&name],
            role_from_row,
        )
        .await
    }

    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        // A change racing this one either is not committed yet (then its INSERT and ours meet on
        // the primary key, and the later one does nothing) or is, and our check sees it.
        let n = self
            .execute(
                &format!(
                    "INSERT INTO role_versions ({ROLE_COLUMNS})
                     SELECT $1, $2, $3::BIGINT, $4, $5, $6
                     WHERE (SELECT COALESCE(MAX(version), 0) FROM role_versions WHERE name = $1)
                           = $3::BIGINT - 1
                     ON CONFLICT (name, version) DO NOTHING"
                ),
                &[
                    &role.name,
                    &role.rules,
                    &role.version,
                    &role.changed_at,
                    &role.changed_by,
                    &role.deleted,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn insert_approval(&self, a: ApprovalRecord) -> Result<(), StoreError> {
        self.execute(
            &format!(
                "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ),
            &[
                &a.id,
                &a.operation,
                &a.fingerprint,
                &a.summary,
                &a.requested_by,
                &a.requested_at,
                &a.expires_at,
                &a.status,
                &a.decided_by,
                &a.decided_at,
            ],
        )
        .await?;
        Ok(())
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        self.query_opt(
            &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = $1"),
            &[&id],
            approval_from_row,
        )
        .await
    }

    async fn approvals(&self, since: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.query(
            &format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE requested_at >= $1
                 ORDER BY requested_at DESC, id"
            ),
            &[&since],
            approval_from_row,
        )
        .await
    }

    async fn decide_approval(
        &self,
        id: &str,
        from: &str,
        to: &str,
        by: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE approvals SET status = $3,
                   decided_by = COALESCE($4::TEXT, decided_by),
                   decided_at = CASE WHEN $4::TEXT IS NULL THEN decided_at ELSE $5::BIGINT END
                 WHERE id = $1 AND status = $2",
                &[&id, &from, &to, &by, &at],
            )
            .await?;
        Ok(n > 0)
    }
}
