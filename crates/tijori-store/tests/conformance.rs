//! One conformance suite for every store. Today it runs against SQLite; the PostgreSQL store
//! will run the same functions when `DATABASE_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;

use tijori_store::sqlite::SqliteStore;
use tijori_store::{
    ApprovalRecord, AuditCheckpoint, DataKeyRecord, IdempotencyRecord, InsertOutcome, KekRecord,
    LoginFailure, PrincipalRecord, RoleRecord, SessionRecord, Store, TokenRecord, TokenStore,
    UserRecord,
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
        ..Default::default()
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

/// Rotation, grace keys and restrictions: each change touches only its own fields, and
/// concerns only the principal it names.
async fn principal_keys(s: &dyn Store) {
    let base = PrincipalRecord {
        id: "r1".into(),
        name: "rotating".into(),
        roles: vec!["tokenizer".into()],
        key_hash: vec![1; 32],
        created_at: 5,
        disabled: false,
        expires_at: Some(1_000),
        previous_key_hash: None,
        previous_key_expires_at: None,
        allowed_cidrs: vec!["10.0.0.0/8".into(), "::1/128".into()],
        client_cert_sha256: Some(vec![9; 32]),
    };
    let other = PrincipalRecord {
        id: "r2".into(),
        name: "bystander".into(),
        roles: vec!["support".into()],
        key_hash: vec![0xb0; 32],
        created_at: 6,
        ..Default::default()
    };
    s.insert_principal(base.clone()).await.unwrap();
    s.insert_principal(other.clone()).await.unwrap();
    let get = |id: &'static str| async move {
        s.principals()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap()
    };
    assert_eq!(get("r1").await, base, "every field round-trips");

    assert!(s
        .rotate_principal_key("r1", vec![2; 32], Some(200))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(p.key_hash, vec![2; 32]);
    assert_eq!(
        p.previous_key_hash,
        Some(vec![1; 32]),
        "the old key is kept"
    );
    assert_eq!(p.previous_key_expires_at, Some(200));
    assert!(s
        .rotate_principal_key("r1", vec![3; 32], Some(300))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![3; 32], Some(vec![2; 32]), Some(300)),
        "one previous key: the key current until the rotation"
    );
    assert!(s
        .rotate_principal_key("r1", vec![4; 32], None)
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![4; 32], None, None),
        "without a grace period no old key stays"
    );
    assert!(s
        .rotate_principal_key("r1", vec![5; 32], Some(500))
        .await
        .unwrap());
    assert!(s.set_principal_key("r1", vec![6; 32]).await.unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![6; 32], None, None),
        "setting a key drops the grace key"
    );
    assert_eq!(
        (p.expires_at, p.allowed_cidrs, p.client_cert_sha256),
        (
            base.expires_at,
            base.allowed_cidrs.clone(),
            base.client_cert_sha256.clone()
        ),
        "keys change alone"
    );
    assert!(!s
        .rotate_principal_key("nobody", vec![7; 32], Some(1))
        .await
        .unwrap());

    assert!(s
        .set_principal_restrictions("r1", None, Vec::new(), None)
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.expires_at, p.allowed_cidrs.len(), p.client_cert_sha256),
        (None, 0, None),
        "restrictions clear"
    );
    let cidrs = vec!["192.168.0.0/16".to_owned()];
    assert!(s
        .set_principal_restrictions("r1", Some(77), cidrs.clone(), Some(vec![8; 32]))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.expires_at, p.allowed_cidrs, p.client_cert_sha256),
        (Some(77), cidrs, Some(vec![8; 32]))
    );
    assert_eq!(p.key_hash, vec![6; 32], "restrictions leave the key alone");
    assert!(!s
        .set_principal_restrictions("nobody", None, Vec::new(), None)
        .await
        .unwrap());
    assert_eq!(get("r2").await, other, "another principal is untouched");
}

fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: name.into(),
        roles: vec!["support".into(), "auditor".into()],
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        password_history: vec!["$argon2id$a,b".into(), "$argon2id$c,d".into()],
        enrollment_hash: Some(vec![3; 32]),
        enrollment_expires_at: Some(500),
        totp_sealed: Some(vec![4; 48]),
        totp_confirmed: false,
        last_totp_step: 0,
        failed_logins: 0,
        locked_until: None,
        last_active_at: 10,
        last_login_at: None,
        training_valid_until: Some(1000),
        created_at: 10,
        disabled: false,
    }
}

async fn users(s: &dyn Store) {
    let amina = user("u1", "amina");
    assert!(s.insert_user(amina.clone()).await.unwrap());
    assert!(
        !s.insert_user(user("u2", "amina")).await.unwrap(),
        "name taken"
    );
    assert!(s.insert_user(user("u3", "bilal")).await.unwrap());
    assert_eq!(s.user("u1").await.unwrap().unwrap(), amina);
    assert_eq!(s.user_by_name("amina").await.unwrap().unwrap(), amina);
    assert!(s.user_by_name("nobody").await.unwrap().is_none());
    assert_eq!(s.users().await.unwrap().len(), 2);

    let mut changed = amina.clone();
    changed.roles = vec!["admin".into()];
    changed.password_history.insert(0, "$argon2id$e,f".into());
    changed.enrollment_hash = None;
    changed.training_valid_until = None;
    changed.disabled = true;
    assert!(s.update_user(changed.clone()).await.unwrap());
    assert_eq!(s.user("u1").await.unwrap().unwrap(), changed);
    assert!(!s.update_user(user("nobody", "x")).await.unwrap());

    // Three failures lock (max 3) until 200; a failure after the lock passed starts over.
    for n in 1..=2 {
        let f = s.login_failed("u3", 100, 3, 200).await.unwrap();
        assert_eq!(
            f,
            LoginFailure {
                failed_logins: n,
                locked_until: None
            }
        );
    }
    let f = s.login_failed("u3", 100, 3, 200).await.unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 3,
            locked_until: Some(200)
        }
    );
    let f = s.login_failed("u3", 150, 3, 250).await.unwrap();
    assert_eq!(
        f.locked_until,
        Some(200),
        "a failure while locked does not extend the lock"
    );
    let f = s.login_failed("u3", 200, 3, 300).await.unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 1,
            locked_until: None
        }
    );

    // A step is accepted once; an older one is a replay; success clears the count.
    assert!(s.login_succeeded("u3", 50, 210).await.unwrap());
    assert!(!s.login_succeeded("u3", 50, 211).await.unwrap());
    assert!(!s.login_succeeded("u3", 49, 211).await.unwrap());
    let u3 = s.user("u3").await.unwrap().unwrap();
    assert_eq!((u3.failed_logins, u3.locked_until), (0, None));
    assert!(u3.totp_confirmed);
    assert_eq!(
        (u3.last_login_at, u3.last_active_at, u3.last_totp_step),
        (Some(210), 210, 50)
    );
    assert!(s.login_succeeded("u3", 51, 240).await.unwrap());

    let sess = |h: u8, created: i64| SessionRecord {
        hash: vec![h; 32],
        user_id: "u3".into(),
        created_at: created,
        last_seen_at: created,
    };
    s.insert_session(sess(1, 100)).await.unwrap();
    s.insert_session(sess(2, 300)).await.unwrap();
    s.insert_session(sess(3, 300)).await.unwrap();
    assert!(s.touch_session(&[1; 32], 400).await.unwrap());
    assert!(s.touch_session(&[1; 32], 390).await.unwrap());
    assert_eq!(
        s.session(&[1; 32]).await.unwrap().unwrap().last_seen_at,
        400
    );
    assert!(!s.touch_session(&[9; 32], 400).await.unwrap());
    assert!(s.delete_session(&[3; 32]).await.unwrap());
    assert!(s.session(&[3; 32]).await.unwrap().is_none());
    // Session 2 idled out (seen at 300 < 350); session 1 is past its lifetime (created 100 < 150).
    assert_eq!(s.purge_sessions(350, 150).await.unwrap(), 2);
    s.insert_session(sess(4, 500)).await.unwrap();
    s.insert_session(sess(5, 500)).await.unwrap();
    assert_eq!(s.delete_user_sessions("u3").await.unwrap(), 2);
    assert!(s.session(&[4; 32]).await.unwrap().is_none());
}

async fn policies(s: &dyn Store) {
    let role = |name: &str, version: i64, deleted: bool| RoleRecord {
        name: name.into(),
        rules: format!(r#"[{{"v":{version}}}]"#),
        version,
        changed_at: 10 * version,
        changed_by: "admin-1".into(),
        deleted,
    };
    assert!(s.put_role(role("clerk", 1, false)).await.unwrap());
    assert!(
        !s.put_role(role("clerk", 1, false)).await.unwrap(),
        "version 1 exists"
    );
    assert!(
        !s.put_role(role("clerk", 3, false)).await.unwrap(),
        "must follow version 1"
    );
    assert!(s.put_role(role("clerk", 2, false)).await.unwrap());
    assert!(s.put_role(role("agent", 1, false)).await.unwrap());
    assert_eq!(
        s.roles().await.unwrap(),
        vec![role("agent", 1, false), role("clerk", 2, false)]
    );
    assert!(s.put_role(role("agent", 2, true)).await.unwrap());
    assert_eq!(s.roles().await.unwrap(), vec![role("clerk", 2, false)]);
    assert_eq!(
        s.role_history("agent").await.unwrap(),
        vec![role("agent", 1, false), role("agent", 2, true)]
    );
    assert!(s.role_history("nobody").await.unwrap().is_empty());

    let approval = |id: &str, at: i64| ApprovalRecord {
        id: id.into(),
        operation: "policy.change".into(),
        fingerprint: vec![1; 32],
        summary: "role clerk".into(),
        requested_by: "u1".into(),
        requested_at: at,
        expires_at: at + 3600,
        status: "pending".into(),
        decided_by: None,
        decided_at: None,
    };
    s.insert_approval(approval("a1", 100)).await.unwrap();
    s.insert_approval(approval("a2", 200)).await.unwrap();
    assert_eq!(
        s.approval("a1").await.unwrap().unwrap(),
        approval("a1", 100)
    );
    assert!(s.approval("zz").await.unwrap().is_none());
    let ids: Vec<String> = s
        .approvals(150)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec!["a2".to_owned()]);
    assert!(s
        .decide_approval("a1", "pending", "approved", Some("u2"), 120)
        .await
        .unwrap());
    assert!(!s
        .decide_approval("a1", "pending", "denied", Some("u3"), 121)
        .await
        .unwrap());
    assert!(s
        .decide_approval("a1", "approved", "used", None, 130)
        .await
        .unwrap());
    assert!(
        !s.decide_approval("a1", "approved", "used", None, 131)
            .await
            .unwrap(),
        "used once"
    );
    let a1 = s.approval("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.status.as_str(), a1.decided_by.as_deref(), a1.decided_at),
        ("used", Some("u2"), Some(120))
    );
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
async fn sqlite_principal_keys() {
    principal_keys(&sqlite("principal-keys")).await;
}

#[tokio::test]
async fn sqlite_policies() {
    policies(&sqlite("policies")).await;
}

#[tokio::test]
async fn sqlite_users() {
    users(&sqlite("users")).await;
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
