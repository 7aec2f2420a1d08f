//! Custom roles and dual-control approvals in SQLite. A role change is an insert of the next
//! version (the primary key makes a concurrent second change of the same version fail), so
//! the history is the table itself.

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension, Row};

use super::SqliteStore;
use crate::{ApprovalRecord, PolicyStore, RoleRecord, StoreError};

const ROLE_COLUMNS: &str = "name, rules, version, changed_at, changed_by, deleted";
const APPROVAL_COLUMNS: &str = "id, operation, fingerprint, summary, requested_by, \
    requested_at, expires_at, status, decided_by, decided_at";

fn role_from_row(r: &Row<'_>) -> Result<RoleRecord, rusqlite::Error> {
    Ok(RoleRecord {
        name: r.get(0)?,
        rules: r.get(1)?,
        version: r.get(2)?,
        changed_at: r.get(3)?,
        changed_by: r.get(4)?,
        deleted: r.get(5)?,
    })
}

fn approval_from_row(r: &Row<'_>) -> Result<ApprovalRecord, rusqlite::Error> {
    Ok(ApprovalRecord {
        id: r.get(0)?,
        operation: r.get(1)?,
        fingerprint: r.get(2)?,
        summary: r.get(3)?,
        requested_by: r.get(4)?,
        requested_at: r.get(5)?,
        expires_at: r.get(6)?,
        status: r.get(7)?,
        decided_by: r.get(8)?,
        decided_at: r.get(9)?,
    })
}

#[async_trait]
impl PolicyStore for SqliteStore {
    async fn roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROLE_COLUMNS} FROM role_versions v
                 WHERE version = (SELECT MAX(version) FROM role_versions w WHERE w.name = v.name)
                   AND deleted = 0
                 ORDER BY name"
            ))?;
            let rows = stmt.query_map([], role_from_row)?;
            rows.collect()
        })
    }

    async fn role_history(&self, name: &str) -> Result<Vec<RoleRecord>, StoreError> {
        let name = name.to_owned();
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {ROLE_COLUMNS} FROM role_versions WHERE name = ?1 ORDER BY version"
            ))?;
            let rows = stmt.query_map(params![name], role_from_row)?;
            rows.collect()
        })
    }

    async fn put_role(&self, role: RoleRecord) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let newest: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM role_versions WHERE name = ?1",
                    params![role.name],
                    |r| r.get(0),
                )?;
                if newest != role.version - 1 {
                    return Ok(false);
                }
                let n = tx.execute(
                    &format!(
                        "INSERT INTO role_versions ({ROLE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT(name, version) DO NOTHING"
                    ),
                    params![
                        role.name,
                        role.rules,
                        role.version,
                        role.changed_at,
                        role.changed_by,
                        role.deleted
                    ],
                )?;
                Ok(n > 0)
            })
            .await
    }

    async fn insert_approval(&self, a: ApprovalRecord) -> Result<(), StoreError> {
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO approvals ({APPROVAL_COLUMNS}) VALUES \
                         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        a.id,
                        a.operation,
                        a.fingerprint,
                        a.summary,
                        a.requested_by,
                        a.requested_at,
                        a.expires_at,
                        a.status,
                        a.decided_by,
                        a.decided_at
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn approval(&self, id: &str) -> Result<Option<ApprovalRecord>, StoreError> {
        let id = id.to_owned();
        self.read(move |c| {
            c.query_row(
                &format!("SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ?1"),
                params![id],
                approval_from_row,
            )
            .optional()
        })
    }

    async fn approvals(&self, since: i64) -> Result<Vec<ApprovalRecord>, StoreError> {
        self.read(move |c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE requested_at >= ?1
                 ORDER BY requested_at DESC, id"
            ))?;
            let rows = stmt.query_map(params![since], approval_from_row)?;
            rows.collect()
        })
    }

    async fn decide_approval(
        &self,
        id: &str,
        from: &str,
        to: &str,
        by: Option<&str>,
        at: i64,
    ) -> Result<bool, StoreError> {
        let (id, from, to, by) = (
            id.to_owned(),
            from.to_owned(),
            to.to_owned(),
            by.map(str::to_owned),
        );
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE approvals SET status = ?3,
                       decided_by = COALESCE(?4, decided_by),
                       decided_at = CASE WHEN ?4 IS NULL THEN decided_at ELSE ?5 END
                     WHERE id = ?1 AND status = ?2",
                    params![id, from, to, by, at],
                )?;
                Ok(n > 0)
            })
            .await
    }
}
