//! Key records in PostgreSQL: key-encryption key versions and wrapped data keys, with what
//! rotation needs (a new active version in one commit, rewrapping under the newest KEK, moving
//! values off retired data keys, and counts for `GET /v1/sys/keys`).
//!
//! At most one data key of a (purpose, scope) is active: a partial unique index says so, and
//! concurrent creators meet on it (`ON CONFLICT DO NOTHING`, then everyone reads the winner).
//! Rotations of one vault take turns under a transaction-scoped advisory lock, so that a second
//! rotation retires the first one's new key instead of colliding with it.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::IsolationLevel;

use super::{
    col, data_key_from_row, limit, token_from_row, xact_lock, PgStore, DATA_KEY_COLUMNS,
    ROTATION_LOCK, TOKEN_COLUMNS,
};
use crate::{DataKeyRecord, KekRecord, KeyStore, KeyUsage, StoreError, TokenRecord};

/// The active key of (purpose, scope), read in a statement of its own (so it sees what other
/// nodes committed up to now).
async fn active_key(
    c: &impl GenericClient,
    purpose: &str,
    scope: &str,
) -> Result<Option<DataKeyRecord>, StoreError> {
    let stmt = c
        .prepare_cached(&format!(
            "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE purpose = $1 AND scope = $2 AND active"
        ))
        .await?;
    c.query_opt(&stmt, &[&purpose, &scope])
        .await?
        .as_ref()
        .map(data_key_from_row)
        .transpose()
}

fn just_stored() -> StoreError {
    StoreError::Unavailable("the data key just stored is not active".into())
}

fn count(r: &tokio_postgres::Row, i: usize) -> Result<u64, StoreError> {
    let n: i64 = col(r, i)?;
    u64::try_from(n).map_err(|_| StoreError::Corrupt("a negative count".into()))
}

#[async_trait]
impl KeyStore for PgStore {
    async fn keks(&self) -> Result<Vec<KekRecord>, StoreError> {
        self.query(
            "SELECT version, provider, wrapped, created_at FROM keks ORDER BY version",
            &[],
            |r| {
                Ok(KekRecord {
                    version: col(r, 0)?,
                    provider: col(r, 1)?,
                    wrapped: col(r, 2)?,
                    created_at: col(r, 3)?,
                })
            },
        )
        .await
    }

    async fn insert_kek(&self, kek: KekRecord) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "INSERT INTO keks (version, provider, wrapped, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (version) DO NOTHING",
                &[&kek.version, &kek.provider, &kek.wrapped, &kek.created_at],
            )
            .await?;
        Ok(n > 0)
    }

    async fn insert_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError> {
        let client = self.client().await?;
        // Two statements, not one: a losing INSERT waits for the winner to commit, and only a
        // statement started after that sees the winner's row.
        let insert = client
            .prepare_cached(
                "INSERT INTO data_keys (purpose, scope, kek_version, wrapped, created_at, active)
                 VALUES ($1, $2, $3, $4, $5, TRUE) ON CONFLICT DO NOTHING",
            )
            .await?;
        client
            .execute(
                &insert,
                &[
                    &key.purpose,
                    &key.scope,
                    &key.kek_version,
                    &key.wrapped,
                    &key.created_at,
                ],
            )
            .await?;
        active_key(&client, &key.purpose, &key.scope)
            .await?
            .ok_or_else(just_stored)
    }

    async fn data_key(&self, id: i64) -> Result<Option<DataKeyRecord>, StoreError> {
        self.query_opt(
            &format!("SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE id = $1"),
            &[&id],
            data_key_from_row,
        )
        .await
    }

    async fn active_data_key(
        &self,
        purpose: &str,
        scope: &str,
    ) -> Result<Option<DataKeyRecord>, StoreError> {
        let client = self.client().await?;
        active_key(&client, purpose, scope).await
    }

    async fn rotate_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Without the lock a second rotation's UPDATE would not see the first one's new key
        // (not yet committed when its snapshot was taken) and its INSERT would then collide.
        xact_lock(&tx, ROTATION_LOCK).await?;
        tx.execute(
            "UPDATE data_keys SET active = FALSE WHERE purpose = $1 AND scope = $2 AND active",
            &[&key.purpose, &key.scope],
        )
        .await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO data_keys (purpose, scope, kek_version, wrapped, created_at, active)
                     VALUES ($1, $2, $3, $4, $5, TRUE) RETURNING {DATA_KEY_COLUMNS}"
                ),
                &[
                    &key.purpose,
                    &key.scope,
                    &key.kek_version,
                    &key.wrapped,
                    &key.created_at,
                ],
            )
            .await?;
        let stored = data_key_from_row(&row)?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn data_keys_below_kek(
        &self,
        version: i64,
        n: usize,
    ) -> Result<Vec<DataKeyRecord>, StoreError> {
        self.query(
            &format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE kek_version < $1 ORDER BY id LIMIT $2"
            ),
            &[&version, &limit(n)],
            data_key_from_row,
        )
        .await
    }

    async fn rewrap_data_key(
        &self,
        id: i64,
        from: i64,
        to: i64,
        wrapped: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE data_keys SET kek_version = $3, wrapped = $4 WHERE id = $1 AND kek_version = $2",
                &[&id, &from, &to, &wrapped],
            )
            .await?;
        Ok(n == 1)
    }

    async fn retired_data_keys(&self, purpose: &str) -> Result<Vec<DataKeyRecord>, StoreError> {
        self.query(
            &format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE purpose = $1 AND NOT active ORDER BY id"
            ),
            &[&purpose],
            data_key_from_row,
        )
        .await
    }

    async fn tokens_under_key(
        &self,
        data_key_id: i64,
        n: usize,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE data_key_id = $1 LIMIT $2"),
            &[&data_key_id, &limit(n)],
            token_from_row,
        )
        .await
    }

    async fn reencrypt_token(
        &self,
        token: &str,
        from_key: i64,
        to_key: i64,
        ciphertext: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE tokens SET data_key_id = $3, ciphertext = $4 WHERE token = $1 AND data_key_id = $2",
                &[&token, &from_key, &to_key, &ciphertext],
            )
            .await?;
        Ok(n == 1)
    }

    async fn destroy_retired_key(&self, id: i64) -> Result<bool, StoreError> {
        // A token re-encrypted onto this key concurrently cannot slip in: the foreign key
        // makes the DELETE and that UPDATE wait for each other, and the loser fails.
        let n = self
            .execute(
                "DELETE FROM data_keys WHERE id = $1 AND NOT active \
                 AND NOT EXISTS (SELECT 1 FROM tokens WHERE data_key_id = $1)",
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    async fn key_usage(&self) -> Result<KeyUsage, StoreError> {
        let mut client = self.client().await?;
        // One snapshot for the whole report, so its counts agree with each other.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let per_kek = tx
            .query(
                "SELECT kek_version, count(*) FROM data_keys GROUP BY kek_version ORDER BY kek_version",
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok((col(r, 0)?, count(r, 1)?)))
            .collect::<Result<_, StoreError>>()?;
        let qualified = DATA_KEY_COLUMNS
            .split(", ")
            .map(|c| format!("k.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let shared = tx
            .query(
                &format!(
                    "SELECT {qualified}, (SELECT count(*) FROM tokens t WHERE t.data_key_id = k.id), \
                     k.active FROM data_keys k WHERE k.purpose = 'data' AND k.scope = '' ORDER BY k.id"
                ),
                &[],
            )
            .await?
            .iter()
            .map(|r| Ok((data_key_from_row(r)?, count(r, 6)?, col(r, 7)?)))
            .collect::<Result<_, StoreError>>()?;
        let subject_keys = tx
            .query_one(
                "SELECT count(*) FROM data_keys WHERE purpose = 'data' AND scope LIKE 'subject:%'",
                &[],
            )
            .await?;
        let under_retired = tx
            .query_one(
                "SELECT count(*) FROM tokens WHERE data_key_id IN \
                 (SELECT id FROM data_keys WHERE NOT active)",
                &[],
            )
            .await?;
        let usage = KeyUsage {
            per_kek,
            shared,
            subject_keys: count(&subject_keys, 0)?,
            tokens_under_retired: count(&under_retired, 0)?,
        };
        tx.commit().await?;
        Ok(usage)
    }
}
