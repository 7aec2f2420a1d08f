//! Key records in SQLite: key-encryption key versions and wrapped data keys, with what
//! rotation needs (a new active version in one commit, rewrapping under the newest KEK,
//! moving values off retired data keys, and counts for `GET /v1/sys/keys`).

use async_trait::async_trait;
use rusqlite::{params, OptionalExtension};

use super::{
    active_key, data_key_from_row, token_from_row, SqliteStore, DATA_KEY_COLUMNS, TOKEN_COLUMNS,
};
use crate::{DataKeyRecord, KekRecord, KeyStore, KeyUsage, StoreError, TokenRecord};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn keks(&self) -> Result<Vec<KekRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT version, provider, wrapped, created_at FROM keks ORDER BY version",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(KekRecord {
                    version: r.get(0)?,
                    provider: r.get(1)?,
                    wrapped: r.get(2)?,
                    created_at: r.get(3)?,
                })
            })?;
            rows.collect()
        })
    }

    async fn insert_kek(&self, kek: KekRecord) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                let n = tx.execute(
                    "INSERT INTO keks (version, provider, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(version) DO NOTHING",
                    params![kek.version, kek.provider, kek.wrapped, kek.created_at],
                )?;
                Ok(n > 0)
            })
            .await
    }

    async fn insert_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError> {
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO data_keys (purpose, scope, kek_version, wrapped, created_at, active)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1) ON CONFLICT DO NOTHING",
                    params![key.purpose, key.scope, key.kek_version, key.wrapped, key.created_at],
                )?;
                active_key(tx, &key.purpose, &key.scope)?.ok_or_else(|| {
                    StoreError::Unavailable("the data key just stored is not active".into())
                })
            })
            .await
    }

    async fn data_key(&self, id: i64) -> Result<Option<DataKeyRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE id = ?1"
            ))?
            .query_row(params![id], data_key_from_row)
            .optional()
        })
    }

    async fn active_data_key(
        &self,
        purpose: &str,
        scope: &str,
    ) -> Result<Option<DataKeyRecord>, StoreError> {
        self.read(|c| active_key(c, purpose, scope))
    }

    async fn rotate_data_key(&self, key: DataKeyRecord) -> Result<DataKeyRecord, StoreError> {
        self.writer()?
            .write(move |tx| {
                tx.execute(
                    "UPDATE data_keys SET active = 0 WHERE purpose = ?1 AND scope = ?2 AND active = 1",
                    params![key.purpose, key.scope],
                )?;
                tx.execute(
                    "INSERT INTO data_keys (purpose, scope, kek_version, wrapped, created_at, active)
                     VALUES (?1, ?2, ?3, ?4, ?5, 1)",
                    params![key.purpose, key.scope, key.kek_version, key.wrapped, key.created_at],
                )?;
                active_key(tx, &key.purpose, &key.scope)?.ok_or_else(|| {
                    StoreError::Unavailable("the data key just stored is not active".into())
                })
            })
            .await
    }

    async fn data_keys_below_kek(
        &self,
        version: i64,
        limit: usize,
    ) -> Result<Vec<DataKeyRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE kek_version < ?1 ORDER BY id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![version, limit as i64], data_key_from_row)?;
            rows.collect()
        })
    }

    async fn rewrap_data_key(
        &self,
        id: i64,
        from: i64,
        to: i64,
        wrapped: Vec<u8>,
    ) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE data_keys SET kek_version = ?3, wrapped = ?4 WHERE id = ?1 AND kek_version = ?2",
                    params![id, from, to, wrapped],
                )? == 1)
            })
            .await
    }

    async fn retired_data_keys(&self, purpose: &str) -> Result<Vec<DataKeyRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {DATA_KEY_COLUMNS} FROM data_keys WHERE purpose = ?1 AND active = 0 ORDER BY id"
            ))?;
            let rows = stmt.query_map(params![purpose], data_key_from_row)?;
            rows.collect()
        })
    }

    async fn tokens_under_key(
        &self,
        data_key_id: i64,
        limit: usize,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE data_key_id = ?1 LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![data_key_id, limit as i64], token_from_row)?;
            rows.collect()
        })
    }

    async fn reencrypt_token(
        &self,
        token: &str,
        from_key: i64,
        to_key: i64,
        ciphertext: Vec<u8>,
    ) -> Result<bool, StoreError> {
        let token = token.to_owned();
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE tokens SET data_key_id = ?3, ciphertext = ?4 WHERE token = ?1 AND data_key_id = ?2",
                    params![token, from_key, to_key, ciphertext],
                )? == 1)
            })
            .await
    }

    async fn destroy_retired_key(&self, id: i64) -> Result<bool, StoreError> {
        self.writer()?
            .write(move |tx| {
                Ok(tx.execute(
                    "DELETE FROM data_keys WHERE id = ?1 AND active = 0 \
                     AND NOT EXISTS (SELECT 1 FROM tokens WHERE data_key_id = ?1)",
                    params![id],
                )? == 1)
            })
            .await
    }

    async fn key_usage(&self) -> Result<KeyUsage, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT kek_version, count(*) FROM data_keys GROUP BY kek_version ORDER BY kek_version",
            )?;
            let per_kek = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
                .collect::<Result<_, _>>()?;
            let mut stmt = c.prepare(&format!(
                "SELECT {}, (SELECT count(*) FROM tokens t WHERE t.data_key_id = k.id), k.active \
                 FROM data_keys k WHERE k.purpose = 'data' AND k.scope = '' ORDER BY k.id",
                DATA_KEY_COLUMNS
                    .split(", ")
                    .map(|c| format!("k.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?;
            let shared = stmt
                .query_map([], |r| {
                    Ok((data_key_from_row(r)?, r.get::<_, i64>(6)? as u64, r.get(7)?))
                })?
                .collect::<Result<_, _>>()?;
            let subject_keys: i64 = c.query_row(
                "SELECT count(*) FROM data_keys WHERE purpose = 'data' AND scope LIKE 'subject:%'",
                [],
                |r| r.get(0),
            )?;
            let under_retired: i64 = c.query_row(
                "SELECT count(*) FROM tokens WHERE data_key_id IN \
                 (SELECT id FROM data_keys WHERE active = 0)",
                [],
                |r| r.get(0),
            )?;
            Ok(KeyUsage {
                per_kek,
                shared,
                subject_keys: subject_keys as u64,
                tokens_under_retired: under_retired as u64,
            })
        })
    }
}
