//! One conformance suite for every store. Today it runs against SQLite; the PostgreSQL store
//! will run the same functions when `DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;

use tijori_store::sqlite::SqliteStore;
use tijori_store::{
    AuditCheckpoint, DataKeyRecord, IdempotencyRecord, InsertOutcome, KekRecord, PrincipalRecord,
    Store, TokenRecord, TokenStore,
};

fn sqlite(name: &str) -> SqliteStore {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    SqliteStore::open(&d).unwrap()
}

async fn with_key(s: &dyn Store) -> i64 {
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

fn record(token: &str, key: i64, index: Option<u8>, expires_at: Option<i64>) -> TokenRecord {
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

async fn tokens(s: &dyn Store) {
    let key = with_key(s).await;
    let out = s
        .insert_tokens(
            vec![
                record("t1", key, None, None),
                record("t2", key, Some(7), None),
            ],
            100,
        )
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Inserted, InsertOutcome::Inserted]);
    assert_eq!(
        s.token("t1", 100).await.unwrap().unwrap(),
        record("t1", key, None, None)
    );
    // Same token string: taken. Same blind index: the existing token, even within one commit.
    let out = s
        .insert_tokens(
            vec![
                record("t1", key, None, None),
                record("t3", key, Some(7), None),
                record("t4", key, Some(8), None),
                record("t5", key, Some(8), None),
            ],
            100,
        )
        .await
        .unwrap();
    assert_eq!(out[0], InsertOutcome::TokenTaken);
    assert_eq!(
        out[1],
        InsertOutcome::Existing(record("t2", key, Some(7), None))
    );
    assert_eq!(out[2], InsertOutcome::Inserted);
    assert_eq!(
        out[3],
        InsertOutcome::Existing(record("t4", key, Some(8), None))
    );
    assert_eq!(
        s.token_by_index("card_number", &[7; 32], 100)
            .await
            .unwrap()
            .unwrap()
            .token,
        "t2"
    );
    assert!(
        s.token_by_index("iban", &[7; 32], 100)
            .await
            .unwrap()
            .is_none(),
        "indexes are per type"
    );
    let many = s
        .tokens(&["t1".into(), "zz".into(), "t2".into()], 100)
        .await
        .unwrap();
    assert_eq!(many.len(), 2);
    assert!(s.delete_token("t1", 100).await.unwrap());
    assert!(!s.delete_token("t1", 100).await.unwrap());
    assert!(s.token("t1", 100).await.unwrap().is_none());
}

async fn expiry(s: &dyn Store) {
    let key = with_key(s).await;
    s.insert_tokens(vec![record("e1", key, Some(1), Some(200))], 100)
        .await
        .unwrap();
    assert!(s.token("e1", 199).await.unwrap().is_some());
    assert!(s.token("e1", 200).await.unwrap().is_none());
    assert!(s
        .token_by_index("card_number", &[1; 32], 200)
        .await
        .unwrap()
        .is_none());
    // An expired deterministic token gives way to a new one.
    let out = s
        .insert_tokens(vec![record("e2", key, Some(1), None)], 300)
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Inserted]);
    assert!(!s.delete_token("e1", 300).await.unwrap());
    s.insert_tokens(vec![record("e3", key, None, Some(250))], 100)
        .await
        .unwrap();
    assert_eq!(s.purge_expired(300).await.unwrap(), 1);
}

async fn keys(s: &dyn Store) {
    let id = with_key(s).await;
    assert!(!s
        .insert_kek(KekRecord {
            version: 1,
            provider: "x".into(),
            wrapped: vec![],
            created_at: 5
        })
        .await
        .unwrap());
    assert_eq!(s.keks().await.unwrap().len(), 1);
    // A second active key for the same purpose and scope is refused: the first one is answered.
    let again = s
        .insert_data_key(DataKeyRecord {
            id: 0,
            purpose: "data".into(),
            scope: String::new(),
            kek_version: 1,
            wrapped: vec![3; 60],
            created_at: 9,
        })
        .await
        .unwrap();
    assert_eq!(again.id, id);
    assert_eq!(again.wrapped, vec![2; 60]);
    let other = s
        .insert_data_key(DataKeyRecord {
            id: 0,
            purpose: "data".into(),
            scope: "subject:a".into(),
            kek_version: 1,
            wrapped: vec![4; 60],
            created_at: 9,
        })
        .await
        .unwrap();
    assert_ne!(other.id, id);
    assert_eq!(s.data_key(other.id).await.unwrap().unwrap(), other);
    assert_eq!(
        s.active_data_key("data", "subject:a")
            .await
            .unwrap()
            .unwrap(),
        other
    );
    assert!(s
        .active_data_key("data", "subject:b")
        .await
        .unwrap()
        .is_none());

    // Rotation: the new version becomes the only active one; tokens move off the retired one,
    // which can be destroyed only once none is left.
    s.insert_tokens(
        vec![record("t1", id, None, None), record("t2", id, None, None)],
        0,
    )
    .await
    .unwrap();
    let rotated = s
        .rotate_data_key(DataKeyRecord {
            id: 0,
            purpose: "data".into(),
            scope: String::new(),
            kek_version: 1,
            wrapped: vec![5; 60],
            created_at: 10,
        })
        .await
        .unwrap();
    assert_ne!(rotated.id, id);
    assert_eq!(
        s.active_data_key("data", "").await.unwrap().unwrap(),
        rotated
    );
    let retired: Vec<i64> = s
        .retired_data_keys("data")
        .await
        .unwrap()
        .iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(retired, vec![id]);
    let usage = s.key_usage().await.unwrap();
    assert_eq!(usage.tokens_under_retired, 2);
    assert_eq!(usage.subject_keys, 1);
    assert_eq!(
        usage
            .shared
            .iter()
            .map(|(k, n, a)| (k.id, *n, *a))
            .collect::<Vec<_>>(),
        vec![(id, 2, false), (rotated.id, 0, true)]
    );
    assert!(!s.destroy_retired_key(id).await.unwrap(), "still in use");
    assert_eq!(s.tokens_under_key(id, 1).await.unwrap().len(), 1);
    assert!(s
        .reencrypt_token("t1", id, rotated.id, vec![8; 40])
        .await
        .unwrap());
    assert!(
        !s.reencrypt_token("t1", id, rotated.id, vec![8; 40])
            .await
            .unwrap(),
        "moved once"
    );
    assert!(s
        .reencrypt_token("t2", id, rotated.id, vec![8; 40])
        .await
        .unwrap());
    assert_eq!(
        s.token("t1", 0).await.unwrap().unwrap().data_key_id,
        rotated.id
    );
    assert!(s.destroy_retired_key(id).await.unwrap());
    assert!(
        !s.destroy_retired_key(rotated.id).await.unwrap(),
        "never the active key"
    );
    assert!(s.data_key(id).await.unwrap().is_none());

    // Rewrap: keys below a KEK version, each moved once.
    assert!(s
        .insert_kek(KekRecord {
            version: 2,
            provider: "x".into(),
            wrapped: vec![],
            created_at: 11
        })
        .await
        .unwrap());
    let below = s.data_keys_below_kek(2, 10).await.unwrap();
    assert_eq!(below.len(), 2);
    for k in &below {
        assert!(s.rewrap_data_key(k.id, 1, 2, vec![6; 60]).await.unwrap());
        assert!(!s.rewrap_data_key(k.id, 1, 2, vec![6; 60]).await.unwrap());
    }
    assert!(s.data_keys_below_kek(2, 10).await.unwrap().is_empty());
    assert_eq!(s.key_usage().await.unwrap().per_kek, vec![(2, 2)]);
}

async fn principals_and_idempotency(s: &dyn Store) {
    let p = PrincipalRecord {
        id: "p1".into(),
        name: "svc".into(),
        roles: vec!["tokenizer".into(), "support".into()],
        key_hash: vec![5; 32],
        created_at: 1,
        disabled: false,
    };
    s.insert_principal(p.clone()).await.unwrap();
    assert_eq!(s.principals().await.unwrap(), vec![p]);
    assert!(s.set_principal_disabled("p1", true).await.unwrap());
    assert!(s.set_principal_key("p1", vec![6; 32]).await.unwrap());
    assert!(!s.set_principal_key("nobody", vec![7; 32]).await.unwrap());
    let got = &s.principals().await.unwrap()[0];
    assert!(got.disabled && got.key_hash == vec![6; 32]);

    let rec = IdempotencyRecord {
        principal_id: "p1".into(),
        key: "k".into(),
        fingerprint: vec![1; 32],
        status: 201,
        body: b"{}".to_vec(),
        created_at: 10,
    };
    assert!(s.put_idempotency(rec.clone()).await.unwrap());
    assert_eq!(s.idempotency("p1", "k").await.unwrap().unwrap(), rec);
    assert!(s.idempotency("p2", "k").await.unwrap().is_none());
    assert_eq!(s.purge_idempotency(11).await.unwrap(), 1);
    s.set_meta("vault_id", "v1").await.unwrap();
    s.set_meta("vault_id", "v2").await.unwrap();
    assert_eq!(s.meta("vault_id").await.unwrap().as_deref(), Some("v2"));
}

/// A chain function that makes each hash depend on everything before it (the real one is
/// tijori-crypto's; the store only has to call it in commit order).
fn chain(prev: &[u8], seq: i64, record: &str) -> Vec<u8> {
    let mut h: Vec<u8> = prev.iter().rev().copied().collect();
    h.extend(seq.to_be_bytes());
    h.extend(record.bytes());
    h.truncate(32);
    h[0] ^= record.len() as u8;
    h
}

async fn audit(s: &dyn Store) {
    assert!(s.audit_head().await.unwrap().is_none());
    // Concurrent appends: numbers are unique, dense from 1, and each batch keeps its order.
    let jobs = (0..20).map(|i| s.append_audit(vec![format!("a{i}"), format!("b{i}")], chain));
    let mut seqs: Vec<Vec<i64>> = futures_util::future::join_all(jobs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for pair in &seqs {
        assert_eq!(pair[1], pair[0] + 1, "a batch's records are consecutive");
    }
    let mut all: Vec<i64> = seqs.drain(..).flatten().collect();
    all.sort();
    assert_eq!(all, (1..=40).collect::<Vec<_>>());
    let rows = s.audit_rows(0, 100).await.unwrap();
    let mut prev = vec![0u8; 32];
    for r in &rows {
        assert_eq!(
            r.prev_hash, prev,
            "record {} chains to the one before",
            r.seq
        );
        assert_eq!(r.hash, chain(&prev, r.seq, &r.record));
        prev = r.hash.clone();
    }
    assert_eq!(
        s.audit_rows(35, 3)
            .await
            .unwrap()
            .iter()
            .map(|r| r.seq)
            .collect::<Vec<_>>(),
        [36, 37, 38]
    );
    let head = s.audit_head().await.unwrap().unwrap();
    assert_eq!((head.seq, head.hash), (40, prev.clone()));

    let cp = |seq| AuditCheckpoint {
        seq,
        hash: vec![seq as u8; 32],
        time: seq * 10,
        signature: vec![1; 64],
    };
    assert!(s.insert_checkpoint(cp(10)).await.unwrap());
    assert!(s.insert_checkpoint(cp(40)).await.unwrap());
    assert!(
        !s.insert_checkpoint(cp(40)).await.unwrap(),
        "one checkpoint per record"
    );
    assert_eq!(s.checkpoints(0, 10).await.unwrap(), vec![cp(10), cp(40)]);
    assert_eq!(s.checkpoints(10, 10).await.unwrap(), vec![cp(40)]);

    // Archiving: the cut is the newest checkpoint signed by a time; pruning through it keeps
    // that checkpoint as the anchor and never touches a later record.
    assert!(s.insert_checkpoint(cp(20)).await.unwrap());
    assert!(s.insert_checkpoint(cp(30)).await.unwrap());
    let cut = |time, below| s.last_checkpoint_before(time, below);
    assert_eq!(cut(99, 41).await.unwrap(), None);
    assert_eq!(cut(250, 41).await.unwrap(), Some(cp(20)));
    assert_eq!(cut(i64::MAX, 41).await.unwrap(), Some(cp(40)));
    assert_eq!(cut(i64::MAX, 40).await.unwrap(), Some(cp(30)));
    assert_eq!(s.prune_audit(20, 15).await.unwrap(), 15, "a limited step");
    assert_eq!(
        s.prune_audit(20, 15).await.unwrap(),
        5,
        "the rest up to the cut"
    );
    assert_eq!(s.prune_audit(20, 15).await.unwrap(), 0, "nothing twice");
    assert_eq!(s.audit_rows(0, 1).await.unwrap()[0].seq, 21);
    assert_eq!(s.audit_rows(0, 100).await.unwrap().len(), 20);
    assert_eq!(
        s.checkpoints(0, 10).await.unwrap(),
        vec![cp(20), cp(30), cp(40)],
        "the anchor and later checkpoints stay"
    );
    assert_eq!(s.audit_head().await.unwrap().unwrap().seq, 40);
}

#[tokio::test]
async fn sqlite_audit() {
    audit(&sqlite("audit")).await;
}

#[tokio::test]
async fn sqlite_tokens() {
    tokens(&sqlite("tokens")).await;
}

#[tokio::test]
async fn sqlite_expiry() {
    expiry(&sqlite("expiry")).await;
}

#[tokio::test]
async fn sqlite_keys() {
    keys(&sqlite("keys")).await;
}

#[tokio::test]
async fn sqlite_principals_and_idempotency() {
    principals_and_idempotency(&sqlite("principals")).await;
}

#[tokio::test]
async fn sqlite_reopen_keeps_everything() {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let key = {
        let s = SqliteStore::open(&d).unwrap();
        let key = with_key(&s).await;
        s.insert_tokens(vec![record("r1", key, None, None)], 100)
            .await
            .unwrap();
        key
    };
    let s = SqliteStore::open(&d).unwrap();
    assert_eq!(
        s.token("r1", 100).await.unwrap().unwrap(),
        record("r1", key, None, None)
    );
}
