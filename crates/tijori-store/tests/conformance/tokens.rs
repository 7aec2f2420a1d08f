//! Tokens and keys: inserts and their outcomes, expiry, erasure, data-key creation, rotation,
//! rewrapping and the key report.

use tijori_store::{
    AuditAfter, AuditWith, DataKeyRecord, Erased, InsertOutcome, Joined, KekRecord, Store,
    TokenRecord,
};

use crate::{record, with_key};

/// A record offered with a write joins its commit only when the outcomes are the ones it
/// describes. With a token string taken it stays out (the caller appends a record of its own
/// once its retries are done), and the item that did go in still stands.
pub(crate) async fn audited_inserts(s: &dyn Store) {
    let key = with_key(s).await;
    // The service's rule: a record of `n` new tokens, made only if all `n` went in.
    let of_new = |n: usize| AuditWith {
        records: Box::new(move |outcomes: &[InsertOutcome]| {
            let all = outcomes.len() == n && outcomes.iter().all(|o| *o == InsertOutcome::Inserted);
            if all {
                vec![format!("{n} new")]
            } else {
                Vec::new()
            }
        }),
        chain: crate::audit::chain,
    };
    let (out, joined) = s
        .insert_tokens_audited(vec![record("t1", key, None, None)], 100, of_new(1))
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Inserted]);
    assert_eq!(joined, s.joins_audit(Joined::Tokens));
    let trail =
        |rows: Vec<tijori_store::AuditRow>| rows.into_iter().map(|r| r.record).collect::<Vec<_>>();
    let expected: Vec<String> = if s.joins_audit(Joined::Tokens) {
        vec!["1 new".into()]
    } else {
        Vec::new()
    };
    assert_eq!(trail(s.audit_rows(0, 10).await.unwrap()), expected);

    let (out, joined) = s
        .insert_tokens_audited(
            vec![record("t1", key, None, None), record("t2", key, None, None)],
            100,
            of_new(2),
        )
        .await
        .unwrap();
    assert_eq!(
        out,
        vec![InsertOutcome::TokenTaken, InsertOutcome::Inserted]
    );
    assert!(
        !joined,
        "a record of two new tokens joined a commit that made one"
    );
    assert_eq!(trail(s.audit_rows(0, 10).await.unwrap()), expected);
    assert!(s.token("t2", 100).await.unwrap().is_some());
}

/// A deletion's and an erasure's records join their commits, in every store (a record only of
/// a deletion that happened).
pub(crate) async fn audited_deletions(s: &dyn Store) {
    let key = with_key(s).await;
    let mut subject_token = record("t2", key, None, None);
    subject_token.subject = Some("subj".into());
    let tokens = vec![record("t1", key, None, None), subject_token];
    s.insert_tokens(tokens, 100).await.unwrap();
    let deleted = || AuditAfter {
        records: Box::new(|deleted: &bool| match *deleted {
            true => vec!["deleted".to_owned()],
            false => Vec::new(),
        }),
        chain: crate::audit::chain,
    };
    let erased = AuditAfter {
        records: Box::new(|e: &Erased| vec![format!("erased {}", e.tokens)]),
        chain: crate::audit::chain,
    };
    assert_eq!(
        s.delete_token_audited("t1", 100, Some(deleted()))
            .await
            .unwrap(),
        (true, true)
    );
    assert_eq!(
        s.delete_token_audited("t1", 100, Some(deleted()))
            .await
            .unwrap(),
        (false, false),
        "a record of a deletion that did not happen"
    );
    let (e, joined) = s
        .erase_subject_audited("subj", "s:subj", Some(erased))
        .await
        .unwrap();
    assert_eq!((e.tokens, joined), (1, true));
    assert!(s.joins_audit(Joined::Removals));
    assert!(s.token("t2", 100).await.unwrap().is_none());
    let rows: Vec<String> = (s.audit_rows(0, 10).await.unwrap().into_iter())
        .map(|r| r.record)
        .collect();
    assert_eq!(rows, ["deleted", "erased 1"]);
}

pub(crate) async fn tokens(s: &dyn Store) {
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

pub(crate) async fn expiry(s: &dyn Store) {
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
    // An expired random token's string may be drawn again: the new row replaces the old.
    s.insert_tokens(vec![record("e3", key, None, Some(250))], 100)
        .await
        .unwrap();
    let out = s
        .insert_tokens(vec![record("e3", key, None, Some(400))], 300)
        .await
        .unwrap();
    assert_eq!(out, vec![InsertOutcome::Inserted]);
    assert_eq!(
        s.token("e3", 300).await.unwrap().unwrap().expires_at,
        Some(400)
    );
    s.insert_tokens(vec![record("e4", key, None, Some(250))], 100)
        .await
        .unwrap();
    assert_eq!(s.purge_expired(300).await.unwrap(), 1);
}

/// Crypto-shredding: a subject's tokens and its own data keys go in one commit; nobody
/// else's do.
pub(crate) async fn erasure(s: &dyn Store) {
    let shared = with_key(s).await;
    let own = s
        .insert_data_key(DataKeyRecord {
            id: 0,
            purpose: "data".into(),
            scope: "subject:amina".into(),
            kek_version: 1,
            wrapped: vec![7; 60],
            created_at: 1,
        })
        .await
        .unwrap()
        .id;
    let of = |token: &str, key, subject: &str| TokenRecord {
        subject: Some(subject.into()),
        ..record(token, key, None, None)
    };
    s.insert_tokens(
        vec![
            of("a1", own, "amina"),
            of("a2", shared, "amina"),
            of("b1", shared, "bilal"),
        ],
        100,
    )
    .await
    .unwrap();
    assert_eq!(
        s.erase_subject("amina", "subject:amina").await.unwrap(),
        Erased { tokens: 2, keys: 1 }
    );
    assert!(s.token("a1", 100).await.unwrap().is_none());
    assert!(s.token("a2", 100).await.unwrap().is_none());
    assert!(
        s.token("b1", 100).await.unwrap().is_some(),
        "another subject"
    );
    assert!(s.data_key(own).await.unwrap().is_none());
    assert!(s
        .active_data_key("data", "subject:amina")
        .await
        .unwrap()
        .is_none());
    assert!(
        s.data_key(shared).await.unwrap().is_some(),
        "the vault's key"
    );
    assert_eq!(
        s.erase_subject("amina", "subject:amina").await.unwrap(),
        Erased::default(),
        "nothing twice"
    );
}

pub(crate) async fn keys(s: &dyn Store) {
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
    // No write under a retired key, or a key that does not exist (another node may have
    // rotated it away or destroyed it): nothing is stored, and the writer is told.
    let stale = s
        .insert_tokens(
            vec![
                record("t3", id, None, None),
                record("t4", 9_999, None, None),
                record("t5", rotated.id, None, None),
            ],
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        vec![
            InsertOutcome::StaleKey,
            InsertOutcome::StaleKey,
            InsertOutcome::Inserted
        ]
    );
    assert!(s.token("t3", 0).await.unwrap().is_none());
    assert!(s.delete_token("t5", 0).await.unwrap());
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
