//! Tokens in PostgreSQL: inserts that settle races between nodes on the database's unique
//! indexes, lookups, deletion, crypto-shredding of a subject and the expiry purge.
//!
//! Several nodes may tokenize one value deterministically at the same moment. Each tries an
//! `INSERT ... ON CONFLICT DO NOTHING`: PostgreSQL lets exactly one of them in (the others wait
//! on the winner's uncommitted index entry and then see it), and a loser reads the winner's row
//! in a fresh statement. No node decides from a read it made before writing.

use async_trait::async_trait;
use deadpool_postgres::Transaction;

use super::{col, live, token_from_row, PgStore, TOKEN_COLUMNS};
use crate::{AuditAfter, Erased, InsertOutcome, Joined, StoreError, TokenRecord, TokenStore};

/// How often one record is tried again when the row it collided with went away before it could
/// be read (deleted or expired and purged by another node meanwhile).
const ATTEMPTS: usize = 8;

/// Inserts one token inside the batch's transaction with the SQLite store's outcomes: a live
/// token with the same (type, blind index) answers `Existing`, a live token with the same string
/// `TokenTaken`, and an expired one of either kind gives way (it is deleted).
async fn insert_one(
    tx: &Transaction<'_>,
    rec: &TokenRecord,
    now: i64,
) -> Result<InsertOutcome, StoreError> {
    // FOR SHARE: a rotation retiring this key waits for this transaction, or this one sees the
    // key retired; never a write under a key that was rotated away before it committed.
    let active = tx
        .query_opt(
            "SELECT active FROM data_keys WHERE id = $1 FOR SHARE",
            &[&rec.data_key_id],
        )
        .await?
        .map(|r| col::<bool>(&r, 0))
        .transpose()?;
    if active != Some(true) {
        return Ok(InsertOutcome::StaleKey);
    }
    let insert = tx
        .prepare_cached(&format!(
            "INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING"
        ))
        .await?;
    let by_index = tx
        .prepare_cached(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE type = $1 AND blind_index = $2"
        ))
        .await?;
    let by_token = tx
        .prepare_cached("SELECT expires_at FROM tokens WHERE token = $1")
        .await?;
    // The expiry test is repeated in the DELETE: under READ COMMITTED it is checked again
    // against the newest version of the row, so a live token another node put in its place
    // meanwhile is never deleted.
    let drop_expired = tx
        .prepare_cached(
            "DELETE FROM tokens WHERE token = $1 AND expires_at IS NOT NULL AND expires_at <= $2",
        )
        .await?;
    for _ in 0..ATTEMPTS {
        let inserted = tx
            .execute(
                &insert,
                &[
                    &rec.token,
                    &rec.data_type,
                    &rec.ciphertext,
                    &rec.data_key_id,
                    &rec.blind_index,
                    &rec.masked,
                    &rec.subject,
                    &rec.metadata,
                    &rec.created_at,
                    &rec.expires_at,
                ],
            )
            .await?;
        if inserted == 1 {
            return Ok(InsertOutcome::Inserted);
        }
        // Another row holds this blind index or this token string. Each statement below reads
        // what is committed now (and this transaction's own rows), the winner's row included.
        if let Some(index) = &rec.blind_index {
            if let Some(row) = tx.query_opt(&by_index, &[&rec.data_type, index]).await? {
                let existing = token_from_row(&row)?;
                if live(existing.expires_at, now) {
                    return Ok(InsertOutcome::Existing(existing));
                }
                tx.execute(&drop_expired, &[&existing.token, &now]).await?;
            }
        }
        if let Some(row) = tx.query_opt(&by_token, &[&rec.token]).await? {
            let expires_at: Option<i64> = col(&row, 0)?;
            if live(expires_at, now) {
                return Ok(InsertOutcome::TokenTaken);
            }
            tx.execute(&drop_expired, &[&rec.token, &now]).await?;
        }
    }
    Err(StoreError::Unavailable(
        "a token insert kept colliding with concurrent changes".into(),
    ))
}

#[async_trait]
impl TokenStore for PgStore {
    /// Two batches holding the same blind indexes in different orders can deadlock; PostgreSQL
    /// then fails one of them (`unavailable`, nothing of it stored) and the caller retries.
    async fn insert_tokens(
        &self,
        records: Vec<TokenRecord>,
        now: i64,
    ) -> Result<Vec<InsertOutcome>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut out = Vec::with_capacity(records.len());
        for rec in &records {
            out.push(insert_one(&tx, rec, now).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Deletions and erasures commit with their records; new tokens do not: a token insert
    /// holding the chain's lock until its commit would make every tokenize of the cluster wait
    /// for the one before it, where the audit writer appends many requests' records at once.
    fn joins_audit(&self, what: Joined) -> bool {
        what == Joined::Removals
    }

    async fn token(&self, token: &str, now: i64) -> Result<Option<TokenRecord>, StoreError> {
        let rec = self
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token = $1"),
                &[&token],
                token_from_row,
            )
            .await?;
        Ok(rec.filter(|r| live(r.expires_at, now)))
    }

    async fn tokens(&self, tokens: &[String], now: i64) -> Result<Vec<TokenRecord>, StoreError> {
        let mut recs = self
            .query(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE token = ANY($1)"),
                &[&tokens],
                token_from_row,
            )
            .await?;
        recs.retain(|r| live(r.expires_at, now));
        Ok(recs)
    }

    async fn token_by_index(
        &self,
        data_type: &str,
        index: &[u8],
        now: i64,
    ) -> Result<Option<TokenRecord>, StoreError> {
        let rec = self
            .query_opt(
                &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE type = $1 AND blind_index = $2"),
                &[&data_type, &index],
                token_from_row,
            )
            .await?;
        Ok(rec.filter(|r| live(r.expires_at, now)))
    }

    async fn delete_token_audited(
        &self,
        token: &str,
        now: i64,
        audit: Option<AuditAfter<bool>>,
    ) -> Result<(bool, bool), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let expires = tx
            .query_opt(
                "DELETE FROM tokens WHERE token = $1 RETURNING expires_at",
                &[&token],
            )
            .await?
            .map(|r| col::<Option<i64>>(&r, 0))
            .transpose()?;
        // An expired token is deleted all the same, but answers as if it was not there.
        let deleted = expires.is_some_and(|e| live(e, now));
        let joined = join(&tx, audit, &deleted).await?;
        tx.commit().await?;
        Ok((deleted, joined))
    }

    /// PostgreSQL does not overwrite a deleted row in place: its bytes stay in the table's
    /// pages until VACUUM reclaims them and the space is reused, and in the write-ahead log
    /// (and any WAL archive or replica) until those segments are recycled. Erasure here is the
    /// deletion of the wrapped keys; physical removal is the database operator's (autovacuum,
    /// WAL retention), and nothing more is run from here.
    async fn erase_subject_audited(
        &self,
        subject: &str,
        key_scope: &str,
        audit: Option<AuditAfter<Erased>>,
    ) -> Result<(Erased, bool), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let tokens = tx
            .execute("DELETE FROM tokens WHERE subject = $1", &[&subject])
            .await?;
        let keys = tx
            .execute("DELETE FROM data_keys WHERE scope = $1", &[&key_scope])
            .await?;
        let erased = Erased { tokens, keys };
        let joined = join(&tx, audit, &erased).await?;
        tx.commit().await?;
        Ok((erased, joined))
    }

    async fn purge_expired(&self, now: i64) -> Result<u64, StoreError> {
        self.execute(
            "DELETE FROM tokens WHERE expires_at IS NOT NULL AND expires_at <= $1",
            &[&now],
        )
        .await
    }
}

/// Appends the records `audit` makes of `outcome` inside `tx`; whether there were any.
async fn join<T>(
    tx: &Transaction<'_>,
    audit: Option<AuditAfter<T>>,
    outcome: &T,
) -> Result<bool, StoreError> {
    let Some(audit) = audit else {
        return Ok(false);
    };
    let records = (audit.records)(outcome);
    if records.is_empty() {
        return Ok(false);
    }
    super::audit::append_in(tx, &records, audit.chain).await?;
    Ok(true)
}
