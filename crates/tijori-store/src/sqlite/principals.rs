//! Service principals in SQLite. A rotation moves the current key hash into the previous-key
//! column in the same statement that writes the new one (an `UPDATE`'s right-hand sides all
//! read the row as it was), so two nodes rotating at once cannot lose a key between a read and
//! a write.

use async_trait::async_trait;
use rusqlite::{params, Row};

use super::SqliteStore;
use crate::{PrincipalRecord, PrincipalStore, StoreError};

const PRINCIPAL_COLUMNS: &str = "id, name, roles, key_hash, created_at, disabled, expires_at, \
    previous_key_hash, previous_key_expires_at, allowed_cidrs, client_cert_sha256";

/// Lists are stored as comma-separated text: role names and CIDR networks never hold a comma.
fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

fn principal_from_row(r: &Row<'_>) -> Result<PrincipalRecord, rusqlite::Error> {
    let roles: String = r.get(2)?;
    let cidrs: String = r.get(9)?;
    Ok(PrincipalRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        roles: split(&roles),
        key_hash: r.get(3)?,
        created_at: r.get(4)?,
        disabled: r.get(5)?,
        expires_at: r.get(6)?,
        previous_key_hash: r.get(7)?,
        previous_key_expires_at: r.get(8)?,
        allowed_cidrs: split(&cidrs),
        client_cert_sha256: r.get(10)?,
    })
}

#[async_trait]
impl PrincipalStore for SqliteStore {
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY created_at, id"
            ))?;
            let rows = stmt.query_map([], principal_from_row)?;
            rows.collect()
        })
    }

    async fn insert_principal(&self, p: PrincipalRecord) -> Result<(), StoreError> {
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO principals ({PRINCIPAL_COLUMNS}) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                    ),
                    params![
                        p.id,
                        p.name,
                        p.roles.join(","),
                        p.key_hash,
                        p.created_at,
                        p.disabled,
                        p.expires_at,
                        p.previous_key_hash,
                        p.previous_key_expires_at,
                        p.allowed_cidrs.join(","),
                        p.client_cert_sha256
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn set_principal_key(&self, id: &str, key_hash: Vec<u8>) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE principals SET key_hash = ?2, previous_key_hash = NULL, \
                     previous_key_expires_at = NULL WHERE id = ?1",
                    params![id, key_hash],
                )? > 0)
            })
            .await
    }

    async fn set_principal_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE principals SET disabled = ?2 WHERE id = ?1",
                    params![id, disabled],
                )? > 0)
            })
            .await
    }

    async fn rotate_principal_key(
        &self,
        id: &str,
        key_hash: Vec<u8>,
        previous_expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE principals SET \
                       previous_key_hash = CASE WHEN ?3 IS NULL THEN NULL ELSE key_hash END, \
                       previous_key_expires_at = ?3, \
                       key_hash = ?2 \
                     WHERE id = ?1",
                    params![id, key_hash, previous_expires_at],
                )? > 0)
            })
            .await
    }

    async fn set_principal_restrictions(
        &self,
        id: &str,
        expires_at: Option<i64>,
        allowed_cidrs: Vec<String>,
        client_cert_sha256: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE principals SET expires_at = ?2, allowed_cidrs = ?3, \
                     client_cert_sha256 = ?4 WHERE id = ?1",
                    params![id, expires_at, allowed_cidrs.join(","), client_cert_sha256],
                )? > 0)
            })
            .await
    }
}
