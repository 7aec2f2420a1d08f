//! The SQLite schema, as numbered migrations tracked in `PRAGMA user_version`. A migration is
//! never edited once released; a change is a new entry.

use rusqlite::{Connection, DatabaseName};

use crate::StoreError;

const MIGRATIONS: &[&str] = &[
    // 1: the core vault.
    "
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE keks (
        version    INTEGER PRIMARY KEY,
        provider   TEXT    NOT NULL,
        wrapped    BLOB    NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE data_keys (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        purpose     TEXT    NOT NULL,
        scope       TEXT    NOT NULL,
        kek_version INTEGER NOT NULL REFERENCES keks(version),
        wrapped     BLOB    NOT NULL,
        created_at  INTEGER NOT NULL,
        active      INTEGER NOT NULL DEFAULT 1
    );
    CREATE UNIQUE INDEX data_keys_active ON data_keys(purpose, scope) WHERE active = 1;
    CREATE TABLE tokens (
        token       TEXT    PRIMARY KEY,
        type        TEXT    NOT NULL,
        ciphertext  BLOB    NOT NULL,
        data_key_id INTEGER NOT NULL REFERENCES data_keys(id),
        blind_index BLOB,
        masked      TEXT    NOT NULL,
        subject     TEXT,
        metadata    TEXT,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER
    ) WITHOUT ROWID;
    CREATE UNIQUE INDEX tokens_blind_index ON tokens(type, blind_index) WHERE blind_index IS NOT NULL;
    CREATE INDEX tokens_subject ON tokens(subject) WHERE subject IS NOT NULL;
    CREATE INDEX tokens_expires ON tokens(expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE principals (
        id         TEXT    PRIMARY KEY,
        name       TEXT    NOT NULL,
        roles      TEXT    NOT NULL,
        key_hash   BLOB    NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        disabled   INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE idempotency (
        principal_id TEXT    NOT NULL,
        key          TEXT    NOT NULL,
        fingerprint  BLOB    NOT NULL,
        status       INTEGER NOT NULL,
        body         BLOB    NOT NULL,
        created_at   INTEGER NOT NULL,
        PRIMARY KEY (principal_id, key)
    );
    CREATE INDEX idempotency_created ON idempotency(created_at);
    ",
    // 2: the audit trail, a hash chain (see tijori-core's audit module).
    "
    CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        record    TEXT    NOT NULL,
        prev_hash BLOB    NOT NULL,
        hash      BLOB    NOT NULL
    );
    ",
    // 3: signed checkpoints of the audit chain's head.
    "
    CREATE TABLE audit_checkpoints (
        seq       INTEGER PRIMARY KEY,
        hash      BLOB    NOT NULL,
        time      INTEGER NOT NULL,
        signature BLOB    NOT NULL
    );
    ",
    // 4: key rotation moves tokens off retired data keys, found by key.
    "
    CREATE INDEX tokens_data_key ON tokens(data_key_id);
    ",
    // 5: operators (people) and their sessions.
    "
    CREATE TABLE users (
        id                    TEXT    PRIMARY KEY,
        username              TEXT    NOT NULL UNIQUE,
        roles                 TEXT    NOT NULL,
        password_hash         TEXT,
        password_history      TEXT    NOT NULL DEFAULT '',
        enrollment_hash       BLOB,
        enrollment_expires_at INTEGER,
        totp_sealed           BLOB,
        totp_confirmed        INTEGER NOT NULL DEFAULT 0,
        last_totp_step        INTEGER NOT NULL DEFAULT 0,
        failed_logins         INTEGER NOT NULL DEFAULT 0,
        locked_until          INTEGER,
        last_active_at        INTEGER NOT NULL,
        last_login_at         INTEGER,
        training_valid_until  INTEGER,
        created_at            INTEGER NOT NULL,
        disabled              INTEGER NOT NULL DEFAULT 0,
        issued_by             TEXT    NOT NULL DEFAULT '',
        revision              INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE sessions (
        hash         BLOB    PRIMARY KEY,
        user_id      TEXT    NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at   INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    );
    CREATE INDEX sessions_user ON sessions(user_id);
    ",
    // 6: custom roles, every version kept; requests awaiting dual-control approval.
    "
    CREATE TABLE role_versions (
        name       TEXT    NOT NULL,
        version    INTEGER NOT NULL,
        rules      TEXT    NOT NULL,
        changed_at INTEGER NOT NULL,
        changed_by TEXT    NOT NULL,
        deleted    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (name, version)
    );
    CREATE TABLE approvals (
        id           TEXT    PRIMARY KEY,
        operation    TEXT    NOT NULL,
        fingerprint  BLOB    NOT NULL,
        summary      TEXT    NOT NULL,
        requested_by TEXT    NOT NULL,
        requested_at INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        status       TEXT    NOT NULL,
        decided_by   TEXT,
        decided_at   INTEGER
    );
    CREATE INDEX approvals_requested ON approvals(requested_at);
    ",
    // 7: service principals' expiry, key rotation with a grace key, and bindings to source
    // networks and to a client certificate.
    "
    ALTER TABLE principals ADD COLUMN expires_at INTEGER;
    ALTER TABLE principals ADD COLUMN previous_key_hash BLOB;
    ALTER TABLE principals ADD COLUMN previous_key_expires_at INTEGER;
    ALTER TABLE principals ADD COLUMN allowed_cidrs TEXT NOT NULL DEFAULT '';
    ALTER TABLE principals ADD COLUMN client_cert_sha256 BLOB;
    CREATE UNIQUE INDEX principals_previous_key ON principals(previous_key_hash)
        WHERE previous_key_hash IS NOT NULL;
    ",
    // 8: the index of tokens by data key, ordered by creation within a key. An entry of the
    // old index was (key, token), and a random token put each new entry on a random page: a
    // second random page written per new token besides the token's own. New tokens share the
    // current key and a rising time, so their entries now land on the index's last pages.
    // Lookups by key (rotation, the foreign key's check on deleting a key) use it as before.
    // Rebuilding it takes about a second per million tokens.
    "
    DROP INDEX tokens_data_key;
    CREATE INDEX tokens_data_key ON tokens(data_key_id, created_at);
    ",
    // 9: the audit trail moves to its own file (see the `trail` module): its records were
    // copied there in a commit of their own just before this one.
    "
    DROP TABLE audit;
    DROP TABLE audit_checkpoints;
    ",
];

/// The migration that moves the trail out, counted from 1.
const TRAIL_MOVED: usize = 9;

/// Whether the database's trail has moved to its own file already.
pub(crate) fn trail_moved(conn: &Connection) -> Result<bool, StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(current >= TRAIL_MOVED as i64)
}

/// Brings the database to the newest schema, one transaction per migration. The trail must be
/// attached (migration 9 moves its records there).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    apply(
        conn,
        DatabaseName::Main,
        "the data dir",
        MIGRATIONS,
        |conn, n| {
            if n == TRAIL_MOVED {
                super::trail::take_from_main(conn)?;
            }
            Ok(())
        },
    )
}

/// Applies the `migrations` that schema `db` (`name` in messages) has not had yet, by its
/// `user_version`, one transaction each; `before(conn, n)` runs before migration `n` (from 1).
pub(crate) fn apply(
    conn: &mut Connection,
    db: DatabaseName<'_>,
    name: &str,
    migrations: &[&str],
    mut before: impl FnMut(&mut Connection, usize) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(Some(db), "user_version", |r| r.get(0))?;
    let newest = migrations.len() as i64;
    if current > newest {
        return Err(StoreError::Corrupt(format!(
            "{name} has schema version {current}, newer than this tijori ({newest}); \
             run a newer tijori"
        )));
    }
    if current > 0 && current < newest {
        // Some migrations rebuild an index over every token (migration 8: about a second per
        // million tokens), and the server answers nothing until they are done.
        tracing::info!(
            from = current,
            to = newest,
            "bringing {name}'s schema up to date; a large vault takes a while"
        );
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        before(conn, i + 1)?;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(Some(db), "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests

    use super::*;

    /// A database at schema version `version`, with a fresh trail attached.
    fn at_version(version: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..version] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", version as i64)
            .unwrap();
        conn.execute("ATTACH DATABASE ':memory:' AS trail", [])
            .unwrap();
        super::super::trail::migrate(&mut conn).unwrap();
        conn
    }

    /// A data dir made before migration 8 is brought up to date with its tokens, and lookups by
    /// data key (rotation, the foreign key's check when a key is deleted) use the new index.
    #[test]
    fn migration_8_reindexes_tokens_by_key_and_time() {
        let mut conn = at_version(7);
        conn.execute_batch(
            "INSERT INTO keks VALUES (1, 'shamir', x'00', 0);
             INSERT INTO data_keys (purpose, scope, kek_version, wrapped, created_at)
                 VALUES ('data', '', 1, x'00', 0);
             INSERT INTO tokens (token, type, ciphertext, data_key_id, masked, created_at)
                 VALUES ('tok_a', 'card_number', x'00', 1, '4111', 5);",
        )
        .unwrap();

        migrate(&mut conn).unwrap();

        let columns: Vec<String> = conn
            .prepare("SELECT name FROM pragma_index_info('tokens_data_key') ORDER BY seqno")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(columns, ["data_key_id", "created_at"]);
        let plan: Vec<String> = conn
            .prepare("EXPLAIN QUERY PLAN SELECT token FROM tokens WHERE data_key_id = ?1 LIMIT 10")
            .unwrap()
            .query_map([1], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("INDEX tokens_data_key")),
            "{plan:?}"
        );
        let user: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(user, MIGRATIONS.len() as i64);
        let token: String = conn
            .query_row("SELECT token FROM tokens WHERE data_key_id = 1", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(token, "tok_a");
    }

    /// An older data dir's records and checkpoints move to the trail's file as they were, and
    /// the vault's file keeps no copy; a second copy (after a crash between the two commits)
    /// adds nothing.
    #[test]
    fn migration_9_moves_the_trail_out_whole() {
        let mut conn = at_version(8);
        conn.execute_batch(
            "INSERT INTO audit VALUES (1, 'one', x'00', x'01'), (2, 'two', x'01', x'02');
             INSERT INTO audit_checkpoints VALUES (2, x'02', 7, x'ff');",
        )
        .unwrap();
        super::super::trail::take_from_main(&mut conn).unwrap();

        migrate(&mut conn).unwrap();

        let rows: Vec<(i64, String, Vec<u8>, Vec<u8>)> = conn
            .prepare("SELECT seq, record, prev_hash, hash FROM trail.audit ORDER BY seq")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                (1, "one".to_owned(), vec![0], vec![1]),
                (2, "two".to_owned(), vec![1], vec![2])
            ]
        );
        let cp: (i64, Vec<u8>, i64, Vec<u8>) = conn
            .query_row("SELECT * FROM trail.audit_checkpoints", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(cp, (2, vec![2], 7, vec![0xff]));
        let left: i64 = conn
            .query_row(
                "SELECT count(*) FROM main.sqlite_schema WHERE name LIKE 'audit%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(left, 0, "the vault's file keeps no audit table");
        assert!(trail_moved(&conn).unwrap());
    }
}
