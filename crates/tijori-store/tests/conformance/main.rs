//! One conformance suite for every store, as rustls runs its API tests per provider: each
//! function takes a `&dyn Store` and runs against SQLite always, and against PostgreSQL when
//! `DATABASE_URL` is set (without it the `pg_` tests print a note and pass without running).
//! Every PostgreSQL test works in a fresh schema of its own, dropped at its end, so that tests
//! run in parallel and again without meeting each other's rows. `nodes` holds the
//! PostgreSQL-only tests of several nodes sharing one database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod accounts;
mod audit;
mod nodes;
mod tokens;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use tijori_store::postgres::PgStore;
use tijori_store::sqlite::SqliteStore;
use tijori_store::{DataKeyRecord, KekRecord, Store, TokenRecord};

fn sqlite(name: &str) -> SqliteStore {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    SqliteStore::open(&d).unwrap()
}

/// A schema of its own in the database at `DATABASE_URL`, for one test.
pub(crate) struct PgSchema {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl PgSchema {
    /// `None`, with a note, when `DATABASE_URL` is not set. The name is unique to this process
    /// and moment, so that runs in parallel or one after another never share a schema.
    pub(crate) fn new(test: &str) -> Option<PgSchema> {
        let url = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => url,
            _ => {
                eprintln!("DATABASE_URL is not set: {test} skipped");
                return None;
            }
        };
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let mut name = format!(
            "t_{}_{nanos:x}_{}_{test}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        name.truncate(48);
        Some(PgSchema { url, name })
    }

    /// A node: a store with a pool of its own, in this schema (created by the first one).
    pub(crate) async fn store(&self) -> PgStore {
        PgStore::connect_in_schema(&self.url, &self.name)
            .await
            .unwrap()
    }

    /// Runs `sql` in this schema on a connection of its own, outside any store.
    pub(crate) async fn sql(&self, sql: &str) {
        let (client, connection) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let driver = tokio::spawn(connection);
        client
            .batch_execute(&format!("SET search_path = {}; {sql}", self.name))
            .await
            .unwrap();
        drop(client);
        let _ = driver.await;
    }

    /// Drops the schema and everything in it. A failing test leaves its schema behind (named
    /// `t_<pid>_...`), which no later run looks at.
    pub(crate) async fn drop_schema(self) {
        self.sql(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await;
    }
}

pub(crate) async fn with_key(s: &dyn Store) -> i64 {
    s.insert_kek(KekRecord {
        version: 1,
        provider: "test".into(),
        wrapped: vec![1; 60],
        created_at: 0,
    })
    .await
    .unwrap();
    s.insert_data_key(DataKeyRecord {
        id: 0,
        purpose: "data".into(),
        scope: String::new(),
        kek_version: 1,
        wrapped: vec![2; 60],
        created_at: 0,
    })
    .await
    .unwrap()
    .id
}

pub(crate) fn record(
    token: &str,
    key: i64,
    index: Option<u8>,
    expires_at: Option<i64>,
) -> TokenRecord {
    TokenRecord {
        token: token.into(),
        data_type: "card_number".into(),
        ciphertext: vec![9; 40],
        data_key_id: key,
        blind_index: index.map(|b| vec![b; 32]),
        masked: "411111******1111".into(),
        subject: None,
        metadata: Some(r#"{"a":1}"#.into()),
        created_at: 100,
        expires_at,
    }
}

/// For each conformance function, a test against SQLite and its twin against PostgreSQL.
macro_rules! conformance {
    ($($f:path => $sqlite:ident, $pg:ident;)*) => {$(
        #[tokio::test]
        async fn $sqlite() {
            $f(&sqlite(stringify!($sqlite))).await;
        }

        #[tokio::test]
        async fn $pg() {
            let Some(db) = PgSchema::new(stringify!($pg)) else {
                return;
            };
            $f(&db.store().await).await;
            db.drop_schema().await;
        }
    )*};
}

conformance! {
    audit::audit => sqlite_audit, pg_audit;
    tokens::tokens => sqlite_tokens, pg_tokens;
    tokens::audited_inserts => sqlite_audited_inserts, pg_audited_inserts;
    tokens::audited_deletions => sqlite_audited_deletions, pg_audited_deletions;
    tokens::expiry => sqlite_expiry, pg_expiry;
    tokens::erasure => sqlite_erasure, pg_erasure;
    tokens::keys => sqlite_keys, pg_keys;
    accounts::principals_and_idempotency => sqlite_principals_and_idempotency, pg_principals_and_idempotency;
    accounts::principal_keys => sqlite_principal_keys, pg_principal_keys;
    accounts::policies => sqlite_policies, pg_policies;
    accounts::users => sqlite_users, pg_users;
    feed => sqlite_feed, pg_feed;
}

/// Waits (boundedly) for `topic` on `rx`, skipping others.
pub(crate) async fn next_topic(rx: &mut tokio::sync::broadcast::Receiver<String>, topic: &str) {
    let wait = async {
        loop {
            if rx.recv().await.unwrap() == topic {
                return;
            }
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no '{topic}' within 10 s"));
}

/// A store tells its own followers what was published (once it listens: a store that listens
/// for other nodes says so with `*`, and SQLite listens from the start).
async fn feed(s: &dyn Store) {
    let mut rx = s.changes();
    for _ in 0..100 {
        s.publish("roles").await.unwrap();
        if let Ok(Ok(topic)) =
            tokio::time::timeout(std::time::Duration::from_millis(100), rx.recv()).await
        {
            if topic == "roles" {
                break;
            }
        }
    }
    s.publish("subject:c-42").await.unwrap();
    next_topic(&mut rx, "subject:c-42").await;
}

/// Writes `r1` through one store and reads it back through another opened on the same data.
async fn reopen_keeps_everything<S: Store, F: Future<Output = S>>(open: impl Fn() -> F) {
    let key = {
        let s = open().await;
        let key = with_key(&s).await;
        s.insert_tokens(vec![record("r1", key, None, None)], 100)
            .await
            .unwrap();
        key
    };
    let s = open().await;
    assert_eq!(
        s.token("r1", 100).await.unwrap().unwrap(),
        record("r1", key, None, None)
    );
}

#[tokio::test]
async fn sqlite_reopen_keeps_everything() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let d = &d;
    reopen_keeps_everything(move || async move { SqliteStore::open(d).unwrap() }).await;
}

#[tokio::test]
async fn pg_reopen_keeps_everything() {
    let Some(db) = PgSchema::new("pg_reopen_keeps_everything") else {
        return;
    };
    // The second connect finds the schema up to date and migrates nothing.
    reopen_keeps_everything(|| db.store()).await;
    db.drop_schema().await;
}

/// A deletion or an erasure whose record cannot be appended does not happen: nothing stands
/// that the trail does not show. `break_trail` makes the trail's table unwritable.
async fn removals_without_their_record_do_not_stand<F>(s: &dyn Store, break_trail: F)
where
    F: std::future::Future<Output = ()>,
{
    use tijori_store::{AuditAfter, Erased};
    let key = with_key(s).await;
    let mut mine = record("t1", key, None, None);
    mine.subject = Some("subj".into());
    s.insert_tokens(vec![mine], 100).await.unwrap();
    break_trail.await;
    let deleted = AuditAfter {
        records: Box::new(|_: &bool| vec!["deleted".to_owned()]),
        chain: audit::chain,
    };
    assert!(s
        .delete_token_audited("t1", 100, Some(deleted))
        .await
        .is_err());
    let erased = AuditAfter {
        records: Box::new(|_: &Erased| vec!["erased".to_owned()]),
        chain: audit::chain,
    };
    assert!(s
        .erase_subject_audited("subj", "", Some(erased))
        .await
        .is_err());
    assert!(
        s.token("t1", 100).await.unwrap().is_some(),
        "the token is gone"
    );
    assert!(
        s.data_key(key).await.unwrap().is_some(),
        "the subject's key is gone"
    );
}

#[tokio::test]
async fn sqlite_a_deletion_whose_record_fails_does_not_stand() {
    let s = sqlite("unrecorded-deletion");
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-unrecorded-deletion-{}", std::process::id()));
    removals_without_their_record_do_not_stand(&s, async {
        rusqlite::Connection::open(dir.join(tijori_store::sqlite::TRAIL_FILE))
            .unwrap()
            .execute_batch("DROP TABLE audit")
            .unwrap();
    })
    .await;
}

#[tokio::test]
async fn pg_a_deletion_whose_record_fails_does_not_stand() {
    let Some(db) = PgSchema::new("pg_unrecorded_deletion") else {
        return;
    };
    let s = db.store().await;
    removals_without_their_record_do_not_stand(&s, db.sql("ALTER TABLE audit RENAME TO gone"))
        .await;
    drop(s);
    db.drop_schema().await;
}
