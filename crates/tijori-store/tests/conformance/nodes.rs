//! PostgreSQL only: several nodes sharing one database, racing on what the store must settle
//! for them. Each node is a `PgStore` with a pool of its own, as separate processes would have;
//! each runs a few workers at once, started together behind a barrier.

use std::collections::HashMap;
use std::sync::Arc;

use tijori_store::postgres::PgStore;
use tijori_store::ChangeFeed;
use tijori_store::{
    AuditStore, DataKeyRecord, InsertOutcome, KekRecord, KeyStore, PrincipalRecord, PrincipalStore,
    StoreError, TokenStore,
};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::audit::chain;
use crate::{record, with_key, PgSchema};

const NODES: usize = 4;
/// Workers per node: enough to contend, few enough that the nodes' pools together stay well
/// inside the server's default 100 connections while another test runs beside this one.
const WORKERS: usize = 5;

/// Starts the nodes at once on a fresh schema: their migrations take turns on the advisory
/// lock, and every node finds the schema complete.
async fn start(db: &PgSchema) -> Vec<Arc<PgStore>> {
    futures_util::future::join_all((0..NODES).map(|_| db.store()))
        .await
        .into_iter()
        .map(Arc::new)
        .collect()
}

/// Every (node, worker) pair, with a barrier they all wait on before their first write.
fn workers(nodes: &[Arc<PgStore>]) -> Vec<(usize, usize, Arc<PgStore>, Arc<Barrier>)> {
    let barrier = Arc::new(Barrier::new(nodes.len() * WORKERS));
    nodes
        .iter()
        .enumerate()
        .flat_map(|(n, node)| {
            let barrier = &barrier;
            (0..WORKERS).map(move |w| (n, w, Arc::clone(node), Arc::clone(barrier)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_audit_is_one_chain_across_nodes() {
    let Some(db) = PgSchema::new("pg_audit_nodes") else {
        return;
    };
    let nodes = start(&db).await;
    let mut tasks = JoinSet::new();
    for (n, w, node, barrier) in workers(&nodes) {
        tasks.spawn(async move {
            barrier.wait().await;
            let mut answered = Vec::new();
            for i in 0..6 {
                // Batches of one to three records, each record text unique.
                let batch: Vec<String> = (0..=i % 3)
                    .map(|j| format!("n{n}-w{w}-a{i}-r{j}"))
                    .collect();
                let seqs = node.append_audit(batch.clone(), chain).await.unwrap();
                answered.push((batch, seqs));
            }
            answered
        });
    }
    let mut numbered = HashMap::new();
    while let Some(done) = tasks.join_next().await {
        for (batch, seqs) in done.unwrap() {
            assert_eq!(seqs.len(), batch.len());
            for pair in seqs.windows(2) {
                assert_eq!(pair[1], pair[0] + 1, "a batch's records are consecutive");
            }
            numbered.extend(batch.into_iter().zip(seqs));
        }
    }
    let total = numbered.len() as i64;
    assert_eq!(total, (NODES * WORKERS * 12) as i64);

    let rows = nodes[1].audit_rows(0, 10_000).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=total).collect::<Vec<_>>(),
        "numbers are dense from 1"
    );
    let mut prev = vec![0u8; 32];
    for r in &rows {
        assert_eq!(r.prev_hash, prev, "record {} follows the one before", r.seq);
        assert_eq!(r.hash, chain(&prev, r.seq, &r.record));
        assert_eq!(
            numbered[&r.record], r.seq,
            "the append was answered this number"
        );
        prev = r.hash.clone();
    }
    for node in &nodes {
        let head = node.audit_head().await.unwrap().unwrap();
        assert_eq!((head.seq, &head.hash), (total, &prev), "one head for all");
    }
    drop(nodes);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_deterministic_inserts_race_to_one_token() {
    let Some(db) = PgSchema::new("pg_deterministic_race") else {
        return;
    };
    let nodes = start(&db).await;
    let key = with_key(nodes[0].as_ref()).await;
    // An expired token of the same value is in the way: it gives way, and blocks nobody.
    nodes[0]
        .insert_tokens(vec![record("old", key, Some(42), Some(50))], 0)
        .await
        .unwrap();
    let mut tasks = JoinSet::new();
    for (n, w, node, barrier) in workers(&nodes) {
        tasks.spawn(async move {
            let token = format!("n{n}-w{w}");
            // Each batch also holds a value of its own, inserted whatever the race's outcome.
            let batch = vec![
                record(&token, key, Some(42), None),
                record(
                    &format!("{token}-own"),
                    key,
                    Some((n * WORKERS + w) as u8),
                    None,
                ),
            ];
            barrier.wait().await;
            let out = node.insert_tokens(batch, 100).await.unwrap();
            assert_eq!(out[1], InsertOutcome::Inserted);
            (token, out[0].clone())
        });
    }
    let (mut inserted, mut existing) = (Vec::new(), Vec::new());
    while let Some(done) = tasks.join_next().await {
        match done.unwrap() {
            (token, InsertOutcome::Inserted) => inserted.push(token),
            (_, InsertOutcome::Existing(rec)) => existing.push(rec.token),
            (token, other) => panic!("{token}: {other:?}"),
        }
    }
    assert_eq!(inserted.len(), 1, "exactly one token for the value");
    assert_eq!(existing.len(), NODES * WORKERS - 1);
    assert!(
        existing.iter().all(|t| *t == inserted[0]),
        "all got the winner"
    );
    for node in &nodes {
        let found = node.token_by_index("card_number", &[42; 32], 100).await;
        assert_eq!(found.unwrap().unwrap().token, inserted[0]);
    }
    assert_eq!(
        nodes[0].tokens_under_key(key, 1000).await.unwrap().len(),
        1 + NODES * WORKERS
    );
    drop(nodes);
    db.drop_schema().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_data_key_creators_and_rotations_agree() {
    let Some(db) = PgSchema::new("pg_data_keys_race") else {
        return;
    };
    let nodes = start(&db).await;
    nodes[0]
        .insert_kek(KekRecord {
            version: 1,
            provider: "test".into(),
            wrapped: vec![1; 60],
            created_at: 0,
        })
        .await
        .unwrap();
    let key = |wrapped: u8| DataKeyRecord {
        id: 0,
        purpose: "data".into(),
        scope: "subject:x".into(),
        kek_version: 1,
        wrapped: vec![wrapped; 60],
        created_at: 0,
    };
    let mut tasks = JoinSet::new();
    for (n, w, node, barrier) in workers(&nodes) {
        let mine = key((n * WORKERS + w) as u8);
        tasks.spawn(async move {
            barrier.wait().await;
            node.insert_data_key(mine).await.unwrap()
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = tasks.join_next().await {
        answers.push(done.unwrap());
    }
    assert!(
        answers.iter().all(|k| *k == answers[0]),
        "one key for all creators"
    );

    // Rotations from every node at once: each succeeds, one after another.
    let rotations = nodes.iter().enumerate().map(|(n, node)| {
        let node = Arc::clone(node);
        let next = key(100 + n as u8);
        async move { node.rotate_data_key(next).await.unwrap() }
    });
    let rotated = futures_util::future::join_all(rotations).await;
    let active = nodes[0]
        .active_data_key("data", "subject:x")
        .await
        .unwrap()
        .unwrap();
    assert!(rotated.contains(&active));
    let retired = nodes[0].retired_data_keys("data").await.unwrap();
    assert_eq!(
        retired.len(),
        NODES,
        "the first key and all rotated ones but the last"
    );
    drop(nodes);
    db.drop_schema().await;
}

#[tokio::test]
async fn pg_errors_name_no_row_data() {
    let Some(db) = PgSchema::new("pg_errors") else {
        return;
    };
    let s = db.store().await;
    let p = PrincipalRecord {
        id: "principal-7f3a".into(),
        name: "svc".into(),
        key_hash: vec![1; 32],
        ..Default::default()
    };
    s.insert_principal(p.clone()).await.unwrap();
    let e = s.insert_principal(p).await.unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Unavailable(_)), "{msg}");
    assert!(msg.contains("23505"), "the SQLSTATE is kept: {msg}");
    assert!(!msg.contains("7f3a"), "the row's key is not: {msg}");
    drop(s);
    db.drop_schema().await;
}

#[tokio::test]
async fn pg_a_newer_schema_is_refused() {
    let Some(db) = PgSchema::new("pg_newer_schema") else {
        return;
    };
    drop(db.store().await);
    db.sql("INSERT INTO tijori_schema_migrations (version) VALUES (999)")
        .await;
    let e = PgStore::connect_in_schema(&db.url, &db.name)
        .await
        .err()
        .unwrap();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e}");
    assert!(e.to_string().contains("999"), "{e}");
    db.drop_schema().await;
}

/// Runs without a database: nothing listens on port 1.
#[tokio::test]
async fn connect_errors_hide_the_password() {
    let e = PgStore::connect("postgres://tijori:hunter2@127.0.0.1:1/vault")
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, StoreError::Unavailable(_)), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    let e = PgStore::connect_in_schema("postgres://127.0.0.1:1/vault", "Robert'); DROP")
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("schema name"), "{e}");
}

/// A change published on one node reaches every other node's followers.
#[tokio::test]
async fn pg_changes_reach_every_node() {
    let Some(db) = PgSchema::new("pg_changes") else {
        return;
    };
    let nodes = start(&db).await;
    let mut followers: Vec<_> = nodes.iter().map(|n| n.changes()).collect();
    // A node hears changes once its listener is connected (in the background after connect):
    // publish until every node has heard one, then once more, which all must hear.
    let mut heard = vec![false; followers.len()];
    for _ in 0..100 {
        nodes[0].publish("warm-up").await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        for (rx, h) in followers.iter_mut().zip(heard.iter_mut()) {
            while let Ok(topic) = rx.try_recv() {
                *h |= topic == "warm-up";
            }
        }
        if heard.iter().all(|h| *h) {
            break;
        }
    }
    assert!(heard.iter().all(|h| *h), "every node listens");
    nodes[1].publish("principals").await.unwrap();
    for rx in &mut followers {
        crate::next_topic(rx, "principals").await;
    }
    drop(nodes);
    db.drop_schema().await;
}
