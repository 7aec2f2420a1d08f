//! Service principals in PostgreSQL. Every change is one conditional `UPDATE`: a rotation moves
//! the current key hash into the previous-key column in the same statement that writes the new
//! one (its right-hand sides all read the row as it was, and a concurrent rotation of the same
//! principal waits on the row lock and then applies to the row as this one left it), so two
//! nodes rotating at once cannot lose a key between a read and a write.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{col, split, PgStore};
use crate::{PrincipalRecord, PrincipalStore, StoreError};

const PRINCIPAL_COLUMNS: &str = "id, name, roles, key_hash, created_at, disabled, expires_at, \
    previous_key_hash, previous_key_expires_at, allowed_cidrs, client_cert_sha256";

fn principal_from_row(r: &Row) -> Result<PrincipalRecord, StoreError> {
    let roles: String = col(r, 2)?;
    let cidrs: String = col(r, 9)?;
    Ok(PrincipalRecord {
        id: col(r, 0)?,
        name: col(r, 1)?,
        roles: split(&roles),
        key_hash: col(r, 3)?,
        created_at: col(r, 4)?,
        disabled: col(r, 5)?,
        expires_at: col(r, 6)?,
        previous_key_hash: col(r, 7)?,
        previous_key_expires_at: col(r, 8)?,
        allowed_cidrs: split(&cidrs),
        client_cert_sha256: col(r, 10)?,
    })
}

#[async_trait]
impl PrincipalStore for PgStore {
    async fn principals(&self) -> Result<Vec<PrincipalRecord>, StoreError> {
        self.query(
            &format!("SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY created_at, id"),
            &[],
            principal_from_row,
        )
        .await
    }

    async fn insert_principal(&self, p: PrincipalRecord) -> Result<(), StoreError> {
        self.execute(
            &format!(
                "INSERT INTO principals ({PRINCIPAL_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            ),
            &[
                &p.id,
                &p.name,
                &p.roles.join(","),
                &p.key_hash,
                &p.created_at,
                &p.disabled,
                &p.expires_at,
                &p.previous_key_hash,
                &p.previous_key_expires_at,
                &p.allowed_cidrs.join(","),
                &p.client_cert_sha256,
            ],
        )
        .await?;
        Ok(())
    }

    async fn set_principal_key(&self, id: &str, key_hash: Vec<u8>) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE principals SET key_hash = $2, previous_key_hash = NULL, \
                 previous_key_expires_at = NULL WHERE id = $1",
                &[&id, &key_hash],
            )
            .await?;
        Ok(n > 0)
    }

    async fn set_principal_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE principals SET disabled = $2 WHERE id = $1",
                &[&id, &disabled],
            )
            .await?;
        Ok(n > 0)
    }

    async fn rotate_principal_key(
        &self,
        id: &str,
        key_hash: Vec<u8>,
        previous_expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE principals SET \
                   previous_key_hash = CASE WHEN $3::BIGINT IS NULL THEN NULL ELSE key_hash END, \
                   previous_key_expires_at = $3::BIGINT, \
                   key_hash = $2 \
                 WHERE id = $1",
                &[&id, &key_hash, &previous_expires_at],
            )
            .await?;
        Ok(n > 0)
    }

    async fn set_principal_restrictions(
        &self,
        id: &str,
        expires_at: Option<i64>,
        allowed_cidrs: Vec<String>,
        client_cert_sha256: Option<Vec<u8>>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE principals SET expires_at = $2, allowed_cidrs = $3, \
                 client_cert_sha256 = $4 WHERE id = $1",
                &[
                    &id,
                    &expires_at,
                    &allowed_cidrs.join(","),
                    &client_cert_sha256,
                ],
            )
            .await?;
        Ok(n > 0)
    }
}
