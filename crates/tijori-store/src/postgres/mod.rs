//! The multi-node store: one PostgreSQL database shared by every node of a vault, reached
//! through a `deadpool-postgres` pool of `tokio-postgres` connections. Each trait method is one
//! statement or one transaction; whatever several nodes could race on is settled by the
//! database (unique indexes with `ON CONFLICT`, conditional `UPDATE`s, and transaction-scoped
//! advisory locks for the audit chain and key rotation), never by a read in Rust followed by a
//! write. Like the SQLite store it only ever sees ciphertexts, wrapped keys, keyed hashes and
//! masked forms, and it never puts a statement's parameters into an error.
//!
//! The connection to the database is plain TCP (`NoTls`) for now: run the database on the same
//! host, a private network or behind a TLS tunnel, and do not put `sslmode=require` in the URL
//! (it is refused, since no TLS connector is configured).

mod audit;
mod feed;
mod keys;
mod policy;
mod principals;
mod schema;
mod tokens;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Config, NoTls, Row};

use crate::{
    DataKeyRecord, IdempotencyRecord, IdempotencyStore, MetaStore, StoreError, TokenRecord,
};

/// Most connections one node holds open. A request needs one for a few milliseconds; the
/// audit append of every request queues on its advisory lock, not on the pool.
const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection before the request fails `unavailable`.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long opening a new connection may take, unless the URL says (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Two-key advisory lock classes (`pg_advisory_xact_lock(class, hashtext(current_schema()))`),
/// so that vaults kept in different schemas of one database do not wait on each other. The
/// one-key lock space of [`schema`]'s migration lock does not overlap with the two-key one.
pub(crate) const AUDIT_LOCK: i32 = 0x7469_6a01;
pub(crate) const ROTATION_LOCK: i32 = 0x7469_6a02;

/// The PostgreSQL store.
pub struct PgStore {
    pool: Pool,
    /// The vault's LISTEN/NOTIFY channel.
    channel: String,
    changes: tokio::sync::broadcast::Sender<String>,
    /// The task listening for other nodes' changes; stopped with the store.
    listener: tokio::task::AbortHandle,
    /// The node's audit writer (group commit); it ends when this sender is dropped.
    appends: tokio::sync::mpsc::UnboundedSender<audit::Append>,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

pub(crate) const TOKEN_COLUMNS: &str =
    "token, type, ciphertext, data_key_id, blind_index, masked, subject, metadata, created_at, expires_at";
pub(crate) const DATA_KEY_COLUMNS: &str = "id, purpose, scope, kek_version, wrapped, created_at";

impl PgStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/dbname?...`),
    /// brings its schema up to date and answers a pooled store. Nodes starting together run the
    /// migrations one after another (an advisory lock), so none sees a half-made schema.
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::open(url, None).await
    }

    /// Like [`PgStore::connect`], keeping every table in the schema `schema` (created if
    /// missing) instead of the connection's default one: for operators who keep one vault per
    /// schema in a shared database, and for tests, which each take a fresh schema. The name
    /// is an unquoted identifier: lowercase ASCII letters, digits and `_`, at most 48 bytes.
    pub async fn connect_in_schema(url: &str, schema: &str) -> Result<PgStore, StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Unavailable(
                "a schema name takes lowercase ASCII letters, digits and _ (at most 48), \
                 and does not start with a digit"
                    .into(),
            ));
        }
        PgStore::open(url, Some(schema)).await
    }

    async fn open(url: &str, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let config: Config = url
            .parse()
            .map_err(|e| StoreError::Unavailable(format!("database URL: {e}")))?;
        PgStore::open_config(config, schema).await
    }

    async fn open_config(mut config: Config, schema: Option<&str>) -> Result<PgStore, StoreError> {
        let mut options = config.get_options().unwrap_or("").to_owned();
        if let Some(schema) = schema {
            // Every connection, pooled or not, starts with this search path, so statements
            // name tables unqualified and a prepared statement never sees another schema.
            options.push_str(&format!(" -c search_path={schema}"));
        }
        // A write, and above all an audit record, is answered only once its commit is flushed.
        // A database or role whose default is `synchronous_commit = off` would answer before
        // that; the vault's own sessions turn it on, unless the URL's options set it.
        if !options.contains("synchronous_commit") {
            options.push_str(" -c synchronous_commit=on");
        }
        config.options(options.trim_start());
        if config.get_application_name().is_none() {
            config.application_name("tijori");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        schema::migrate(&config, schema).await?;
        let channel = feed::channel(schema);
        let changes = crate::feed_channel();
        let listener = tokio::spawn(feed::listen(
            config.clone(),
            channel.clone(),
            changes.clone(),
        ))
        .abort_handle();
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A connection the server closed is noticed without a round trip; one that fails
                // later fails its request, and the pool drops it.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Unavailable(format!("database pool: {e}")))?;
        let (appends, queue) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(audit::writer(pool.clone(), queue));
        Ok(PgStore {
            pool,
            channel,
            changes,
            listener,
            appends,
        })
    }

    /// A connection from the pool.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        Ok(self.pool.get().await?)
    }

    /// Runs one statement (prepared once per connection); answers the rows it changed.
    pub(crate) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        Ok(client.execute(&stmt, params).await?)
    }

    /// Runs one query and decodes every row.
    pub(crate) async fn query<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        client
            .query(&stmt, params)
            .await?
            .iter()
            .map(decode)
            .collect()
    }

    /// Runs a query of at most one row and decodes it.
    pub(crate) async fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        decode: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        client
            .query_opt(&stmt, params)
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }
}

/// An unquoted, lowercase identifier: safe to put into `search_path` and `CREATE SCHEMA` as is.
fn valid_schema_name(s: &str) -> bool {
    // 48, not PostgreSQL's 63: the change feed's channel is `tijori_changes_<schema>`, and a
    // channel name must stay under 64 bytes.
    !s.is_empty()
        && s.len() <= 48
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
        && !s.starts_with("pg_")
}

/// Column `i` of `r`. A value of the wrong type or out of range is something this version
/// cannot read, not an outage.
pub(crate) fn col<'a, T: FromSql<'a>>(r: &'a Row, i: usize) -> Result<T, StoreError> {
    r.try_get(i)
        .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))
}

/// A `LIMIT` parameter (PostgreSQL's is a `bigint`).
pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Unexpired at `now`, as in the SQLite store.
pub(crate) fn live(expires_at: Option<i64>, now: i64) -> bool {
    expires_at.is_none_or(|e| e > now)
}

/// Lists are stored as comma-separated text, exactly as in the SQLite store: role names and
/// CIDR networks never hold a comma.
pub(crate) fn split(list: &str) -> Vec<String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A row of [`TOKEN_COLUMNS`].
pub(crate) fn token_from_row(r: &Row) -> Result<TokenRecord, StoreError> {
    Ok(TokenRecord {
        token: col(r, 0)?,
        data_type: col(r, 1)?,
        ciphertext: col(r, 2)?,
        data_key_id: col(r, 3)?,
        blind_index: col(r, 4)?,
        masked: col(r, 5)?,
        subject: col(r, 6)?,
        metadata: col(r, 7)?,
        created_at: col(r, 8)?,
        expires_at: col(r, 9)?,
    })
}

/// A row of [`DATA_KEY_COLUMNS`].
pub(crate) fn data_key_from_row(r: &Row) -> Result<DataKeyRecord, StoreError> {
    Ok(DataKeyRecord {
        id: col(r, 0)?,
        purpose: col(r, 1)?,
        scope: col(r, 2)?,
        kek_version: col(r, 3)?,
        wrapped: col(r, 4)?,
        created_at: col(r, 5)?,
    })
}

/// Takes the advisory lock `class` of this schema until the end of the transaction.
pub(crate) async fn xact_lock(
    tx: &deadpool_postgres::Transaction<'_>,
    class: i32,
) -> Result<(), StoreError> {
    // With no schema on the search path `hashtext` would be NULL and the (strict) lock function
    // would lock nothing: the COALESCE keeps it a lock, whatever follows.
    let stmt = tx
        .prepare_cached(
            "SELECT pg_advisory_xact_lock($1::INTEGER, hashtext(COALESCE(current_schema(), '')))",
        )
        .await?;
    tx.execute(&stmt, &[&class]).await?;
    Ok(())
}

fn idempotency_from_row(r: &Row) -> Result<IdempotencyRecord, StoreError> {
    let status: i32 = col(r, 3)?;
    Ok(IdempotencyRecord {
        principal_id: col(r, 0)?,
        key: col(r, 1)?,
        fingerprint: col(r, 2)?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Corrupt("idempotency status out of range".into()))?,
        body: col(r, 4)?,
        created_at: col(r, 5)?,
    })
}

#[async_trait]
impl IdempotencyStore for PgStore {
    async fn idempotency(
        &self,
        principal_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.query_opt(
            "SELECT principal_id, key, fingerprint, status, body, created_at FROM idempotency
             WHERE principal_id = $1 AND key = $2",
            &[&principal_id, &key],
            idempotency_from_row,
        )
        .await
    }

    async fn put_idempotency(&self, rec: IdempotencyRecord) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "INSERT INTO idempotency (principal_id, key, fingerprint, status, body, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (principal_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                   status = excluded.status, body = excluded.body, created_at = excluded.created_at",
                &[
                    &rec.principal_id,
                    &rec.key,
                    &rec.fingerprint,
                    &i32::from(rec.status),
                    &rec.body,
                    &rec.created_at,
                ],
            )
            .await?;
        Ok(n > 0)
    }

    async fn purge_idempotency(&self, before: i64) -> Result<u64, StoreError> {
        self.execute("DELETE FROM idempotency WHERE created_at < $1", &[&before])
            .await
    }
}

#[async_trait]
impl MetaStore for PgStore {
    async fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.query_opt("SELECT value FROM meta WHERE key = $1", &[&key], |r| {
            col(r, 0)
        })
        .await
    }

    async fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }
}

#[async_trait]
impl crate::ChangeFeed for PgStore {
    async fn publish(&self, topic: &str) -> Result<(), StoreError> {
        self.execute("SELECT pg_notify($1, $2)", &[&self.channel, &topic])
            .await
            .map(|_| ())
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A role whose default is `synchronous_commit = off` still gets durable commits from the
    /// vault's connections. Needs `DATABASE_URL` with the right to make roles (as in CI);
    /// passes with a note without it.
    #[tokio::test]
    async fn commits_are_flushed_whatever_the_roles_default() {
        let Ok(url) = std::env::var("DATABASE_URL") else {
            eprintln!("DATABASE_URL is not set: skipped");
            return;
        };
        let admin: Config = url.parse().unwrap();
        let db = admin.get_dbname().unwrap_or("postgres").to_owned();
        let role = format!("t_sync_off_{}", std::process::id());
        let schema = role.clone();
        let (client, conn) = admin.connect(NoTls).await.unwrap();
        let driver = tokio::spawn(conn);
        let made = client
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN; ALTER ROLE {role} SET synchronous_commit = off; \
                 GRANT CREATE ON DATABASE \"{db}\" TO {role}"
            ))
            .await;
        if let Err(e) = made {
            eprintln!("cannot make a role at DATABASE_URL ({e}): skipped");
            return;
        }
        let mut config = admin.clone();
        config.user(&role);
        let store = PgStore::open_config(config.clone(), Some(&schema)).await;
        // The role's default, as a session of its own outside the store sees it.
        let (plain, plain_conn) = config.connect(NoTls).await.unwrap();
        let plain_driver = tokio::spawn(plain_conn);
        let mode = |row: tokio_postgres::Row| row.get::<_, String>(0);
        let default = mode(
            plain
                .query_one("SHOW synchronous_commit", &[])
                .await
                .unwrap(),
        );
        drop(plain);
        let _ = plain_driver.await;
        let in_store = match &store {
            Ok(store) => {
                let c = store.client().await.unwrap();
                Some(mode(
                    c.query_one("SHOW synchronous_commit", &[]).await.unwrap(),
                ))
            }
            Err(_) => None,
        };
        drop(store);
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {schema} CASCADE; REVOKE CREATE ON DATABASE \"{db}\" FROM {role}; \
                 DROP OWNED BY {role}; DROP ROLE {role}"
            ))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
        assert_eq!(default, "off");
        assert_eq!(in_store.as_deref(), Some("on"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        for good in ["tijori", "vault_2", "_x", "t_pg_tokens_123_abc"] {
            assert!(valid_schema_name(good), "{good}");
        }
        let long = "a".repeat(64);
        for bad in [
            "",
            "Tijori",
            "2vault",
            "a-b",
            "a;drop",
            "a b",
            "\"x\"",
            "pg_catalog",
            long.as_str(),
        ] {
            assert!(!valid_schema_name(bad), "{bad}");
        }
    }
}
