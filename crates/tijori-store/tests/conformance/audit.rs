//! The audit trail: concurrent appends form one dense chain; checkpoints; archiving cuts.

use tijori_store::{AuditCheckpoint, Store};

/// A chain function that makes each hash depend on everything before it (the real one is
/// tijori-crypto's; the store only has to call it in commit order).
pub(crate) fn chain(prev: &[u8], seq: i64, record: &str) -> Vec<u8> {
    let mut h: Vec<u8> = prev.iter().rev().copied().collect();
    h.extend(seq.to_be_bytes());
    h.extend(record.bytes());
    h.truncate(32);
    h[0] ^= record.len() as u8;
    h
}

pub(crate) async fn audit(s: &dyn Store) {
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
