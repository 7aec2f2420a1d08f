//! The PostgreSQL schema, as numbered migrations recorded in `tijori_schema_migrations` (not
//! `schema_migrations`, which other tools use in shared databases). A migration is never edited
//! once released; a change is a new entry. Nodes starting together take turns under one
//! session advisory lock, on a connection of its own that is closed afterwards (a lock left
//! behind by an error goes with it, and never into the pool).
//!
//! The tables mirror the SQLite store's, column for column, so both answer alike: `BIGINT` for
//! every integer, `BYTEA` for bytes, `BOOLEAN` for flags, lists as comma-separated `TEXT`. Text
//! columns that answers are ordered by use the "C" collation: byte order, as SQLite sorts.

use tokio_postgres::{Client, Config, NoTls};

use crate::StoreError;

/// The one-key advisory lock the migrations run under ("tijori" and 1).
const MIGRATION_LOCK: i64 = 0x7469_6a6f_7269_0001;

const MIGRATIONS: &[&str] = &[
    // 1: everything of the SQLite store's migrations 1 to 7, as one.
    r#"
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE keks (
        version    BIGINT PRIMARY KEY,
        provider   TEXT   NOT NULL,
        wrapped    BYTEA  NOT NULL,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE data_keys (
        id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        purpose     TEXT    NOT NULL,
        scope       TEXT    NOT NULL,
        kek_version BIGINT  NOT NULL REFERENCES keks(version),
        wrapped     BYTEA   NOT NULL,
        created_at  BIGINT  NOT NULL,
        active      BOOLEAN NOT NULL DEFAULT TRUE
    );
    CREATE UNIQUE INDEX data_keys_active ON data_keys(purpose, scope) WHERE active;
    CREATE INDEX data_keys_kek ON data_keys(kek_version);
    CREATE TABLE tokens (
        token       TEXT   PRIMARY KEY,
        type        TEXT   NOT NULL,
        ciphertext  BYTEA  NOT NULL,
        data_key_id BIGINT NOT NULL REFERENCES data_keys(id),
        blind_index BYTEA,
        masked      TEXT   NOT NULL,
        subject     TEXT,
        metadata    TEXT,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT
    );
    CREATE UNIQUE INDEX tokens_blind_index ON tokens(type, blind_index) WHERE blind_index IS NOT NULL;
    CREATE INDEX tokens_subject ON tokens(subject) WHERE subject IS NOT NULL;
    CREATE INDEX tokens_expires ON tokens(expires_at) WHERE expires_at IS NOT NULL;
    CREATE INDEX tokens_data_key ON tokens(data_key_id);
    CREATE TABLE principals (
        id                      TEXT COLLATE "C" PRIMARY KEY,
        name                    TEXT    NOT NULL,
        roles                   TEXT    NOT NULL,
        key_hash                BYTEA   NOT NULL UNIQUE,
        created_at              BIGINT  NOT NULL,
        disabled                BOOLEAN NOT NULL DEFAULT FALSE,
        expires_at              BIGINT,
        previous_key_hash       BYTEA,
        previous_key_expires_at BIGINT,
        allowed_cidrs           TEXT    NOT NULL DEFAULT '',
        client_cert_sha256      BYTEA
    );
    CREATE UNIQUE INDEX principals_previous_key ON principals(previous_key_hash)
        WHERE previous_key_hash IS NOT NULL;
    CREATE TABLE idempotency (
        principal_id TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        fingerprint  BYTEA   NOT NULL,
        status       INTEGER NOT NULL,
        body         BYTEA   NOT NULL,
        created_at   BIGINT  NOT NULL,
        PRIMARY KEY (principal_id, key)
    );
    CREATE INDEX idempotency_created ON idempotency(created_at);
    CREATE TABLE audit (
        seq       BIGINT PRIMARY KEY,
        record    TEXT   NOT NULL,
        prev_hash BYTEA  NOT NULL,
        hash      BYTEA  NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        seq       BIGINT PRIMARY KEY,
        hash      BYTEA  NOT NULL,
        "time"    BIGINT NOT NULL,
        signature BYTEA  NOT NULL
    );
    CREATE TABLE users (
        id                    TEXT    PRIMARY KEY,
        username              TEXT COLLATE "C" NOT NULL UNIQUE,
        roles                 TEXT    NOT NULL,
        password_hash         TEXT,
        password_history      TEXT    NOT NULL DEFAULT '',
        enrollment_hash       BYTEA,
        enrollment_expires_at BIGINT,
        totp_sealed           BYTEA,
        totp_confirmed        BOOLEAN NOT NULL DEFAULT FALSE,
        last_totp_step        BIGINT  NOT NULL DEFAULT 0,
        failed_logins         BIGINT  NOT NULL DEFAULT 0,
        locked_until          BIGINT,
        last_active_at        BIGINT  NOT NULL,
        last_login_at         BIGINT,
        training_valid_until  BIGINT,
        created_at            BIGINT  NOT NULL,
        disabled              BOOLEAN NOT NULL DEFAULT FALSE,
        issued_by             TEXT    NOT NULL DEFAULT '',
        revision              BIGINT  NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        hash         BYTEA  PRIMARY KEY,
        user_id      TEXT   NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at   BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    CREATE TABLE role_versions (
        name       TEXT COLLATE "C" NOT NULL,
        version    BIGINT  NOT NULL,
        rules      TEXT    NOT NULL,
        changed_at BIGINT  NOT NULL,
        changed_by TEXT    NOT NULL,
        deleted    BOOLEAN NOT NULL DEFAULT FALSE,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE approvals (
        id           TEXT COLLATE "C" PRIMARY KEY,
        operation    TEXT   NOT NULL,
        fingerprint  BYTEA  NOT NULL,
        summary      TEXT   NOT NULL,
        requested_by TEXT   NOT NULL,
        requested_at BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        status       TEXT   NOT NULL,
        decided_by   TEXT,
        decided_at   BIGINT
    );
    CREATE INDEX approvals_requested ON approvals(requested_at);
    "#,
];

/// Brings the database (or `schema`, created if missing) to the newest schema, one transaction
/// per migration, on a connection of its own.
pub(crate) async fn migrate(config: &Config, schema: Option<&str>) -> Result<(), StoreError> {
    let (mut client, connection) = config.connect(NoTls).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %StoreError::from(e), "migration connection ended");
        }
    });
    let out = migrate_on(&mut client, schema).await;
    // Closing the session releases the advisory lock, whatever happened above.
    drop(client);
    let _ = driver.await;
    out
}

async fn migrate_on(client: &mut Client, schema: Option<&str>) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Each object is looked for before it is created, so that a node whose role may use but
    // not create (a least-privilege runtime role, once an operator migrated) starts all the same.
    if let Some(schema) = schema {
        let found = client
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await?;
        if found.is_none() {
            // The name was checked to be a plain lowercase identifier (see `connect_in_schema`).
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .await?;
        }
    }
    let found = client
        .query_one(
            "SELECT to_regclass('tijori_schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .try_get::<_, bool>(0)
        .map_err(|e| StoreError::Corrupt(format!("tijori_schema_migrations: {e}")))?;
    if !found {
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS tijori_schema_migrations (
                    version    BIGINT      PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
                )",
            )
            .await?;
    }
    let current: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM tijori_schema_migrations",
            &[],
        )
        .await?
        .try_get(0)
        .map_err(|e| StoreError::Corrupt(format!("tijori_schema_migrations: {e}")))?;
    let newest = MIGRATIONS.len() as i64;
    if current > newest {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {current}, newer than this tijori ({newest}); \
             run a newer tijori"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        // DDL is transactional in PostgreSQL: a migration applies whole or not at all.
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO tijori_schema_migrations (version) VALUES ($1)",
            &[&(i as i64 + 1)],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(version = i + 1, "database schema migrated");
    }
    if let Some(row) = client.query_opt("SHOW synchronous_commit", &[]).await? {
        let mode: String = row.try_get(0).unwrap_or_default();
        if mode == "off" {
            tracing::warn!(
                "synchronous_commit is off: a crash of the database can lose writes the vault \
                 has acknowledged, audit records among them"
            );
        }
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await?;
    Ok(())
}
