//! Checking a trail: the [`Verifier`] is fed records in order (from a data dir, an export file
//! or archives followed by the live trail) and the signed checkpoints, recomputes the chain, and
//! names the first record that fails. It needs no secret: checkpoints are checked with the
//! public key alone.

use std::collections::BTreeMap;

use tijori_crypto::{audit_chain_hash, PublicKey};
use tijori_store::{AuditCheckpoint, AuditRow, Store};

use super::{checkpoint_message, AuditEvent};
use crate::CoreError;

/// The numbers a record of a trail may have: from 1, and short of the largest so that the
/// number after each one exists.
const RECORD_NUMBERS: std::ops::Range<i64> = 1..i64::MAX;

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record chains to the one before and every checkpoint matches and is signed.
    Intact {
        /// The first record checked: 1, or the first after an archive cut, or the first of a
        /// partial export.
        first: i64,
        /// Whether a trail not starting at record 1 starts right after a signed checkpoint (an
        /// archive cut, or an export's anchor), so that nothing before it can be swapped.
        anchored: bool,
        records: u64,
        /// The last record's hash (hex).
        head: String,
        /// The newest signed checkpoint: its record number and signing time (Unix seconds).
        signed_through: Option<(i64, i64)>,
        /// Records after the newest checkpoint (written since, or since a crash).
        unsigned: u64,
    },
    /// The first record that fails, and why.
    Broken { seq: i64, reason: String },
}

/// Recomputes a chain fed in order. See the module doc.
pub struct Verifier {
    public_key: Option<PublicKey>,
    checkpoints: BTreeMap<i64, AuditCheckpoint>,
    /// Whether the first record fed may be any record (a partial export) rather than record 1
    /// or the first after a signed cut.
    open_start: bool,
    started: bool,
    anchored: bool,
    first: i64,
    expected_seq: i64,
    prev: Vec<u8>,
    count: u64,
    /// The newest checkpoint met so far (seq, time).
    signed_through: Option<(i64, i64)>,
    broken: Option<(i64, String)>,
}

fn broken<T>(seq: i64, reason: impl Into<String>) -> Result<T, (i64, String)> {
    Err((seq, reason.into()))
}

impl Verifier {
    /// A verifier for a whole trail: it starts at record 1, or right after the signed
    /// checkpoint where the records before were archived. Checkpoints are checked with
    /// `public_key`; without one, any checkpoint is refused (it cannot be trusted unchecked).
    pub fn new(public_key: Option<PublicKey>) -> Verifier {
        Verifier {
            public_key,
            checkpoints: BTreeMap::new(),
            open_start: false,
            started: false,
            anchored: false,
            first: 1,
            expected_seq: 1,
            prev: vec![0u8; 32],
            count: 0,
            signed_through: None,
            broken: None,
        }
    }

    /// A verifier for a part of a trail (an archive, or an export made with `--after`): its
    /// first record is taken as the start. If the signed checkpoint just before it came along
    /// (archives and exports carry it), the start is checked against it; otherwise that
    /// record's own previous-hash is trusted, and the verdict says so.
    pub fn from_first(public_key: Option<PublicKey>) -> Verifier {
        Verifier {
            open_start: true,
            ..Verifier::new(public_key)
        }
    }

    /// Adds checkpoints to check as their records go by. Those of records before the first one
    /// fed are ignored; those past the last one show a truncation.
    pub fn add_checkpoints(&mut self, cps: impl IntoIterator<Item = AuditCheckpoint>) {
        for cp in cps {
            self.checkpoints.insert(cp.seq, cp);
        }
    }

    /// Records checked so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Feeds the next record; `false` once the trail is found broken (feeding more is useless).
    pub fn push(&mut self, row: &AuditRow) -> bool {
        if self.broken.is_none() {
            if let Err(b) = self.check(row) {
                self.broken = Some(b);
            }
        }
        self.broken.is_none()
    }

    fn check(&mut self, row: &AuditRow) -> Result<(), (i64, String)> {
        // The store numbers records from 1, and no trail comes near the top of the range:
        // refusing numbers outside it keeps the arithmetic on them exact (the record before
        // the first, the one after the last).
        if !RECORD_NUMBERS.contains(&row.seq) {
            return broken(
                row.seq,
                format!(
                    "record number {} is outside the range a trail uses (1 to {})",
                    row.seq,
                    RECORD_NUMBERS.end - 1
                ),
            );
        }
        if !std::mem::replace(&mut self.started, true) && row.seq != 1 {
            self.start_after_cut(row)?;
        }
        let (seq, expected) = (row.seq, self.expected_seq);
        if seq < expected {
            return broken(seq, format!("record {seq} stands before record {expected}, where no record may be: inserted"));
        }
        if seq > expected {
            return broken(
                expected,
                format!("record {expected} is missing (the next one is {seq}): deleted"),
            );
        }
        if row.prev_hash != self.prev {
            return broken(seq, "its previous-hash does not match the record before it: a record was deleted, inserted or moved");
        }
        if audit_chain_hash(&self.prev, seq, &row.record) != row.hash {
            return broken(
                seq,
                "its content does not match its hash: it was edited or moved",
            );
        }
        if serde_json::from_str::<AuditEvent>(&row.record).is_err() {
            return broken(seq, "it is not a well-formed audit record");
        }
        if let Some(cp) = self.checkpoints.remove(&seq) {
            self.check_checkpoint(&cp, &row.hash)?;
        }
        self.prev = row.hash.clone();
        self.expected_seq += 1;
        self.count += 1;
        Ok(())
    }

    /// The first record fed is not record 1: it must join the signed checkpoint before it
    /// (records up to there were archived), unless a part of a trail is being checked.
    fn start_after_cut(&mut self, row: &AuditRow) -> Result<(), (i64, String)> {
        let cut = row.seq - 1;
        match self.checkpoints.remove(&cut) {
            Some(anchor) => {
                if anchor.hash != row.prev_hash {
                    return broken(row.seq, format!(
                        "it does not join the signed checkpoint of record {cut}, where the records before it were archived: the start of the trail was replaced"
                    ));
                }
                self.first = row.seq;
                self.check_checkpoint(&anchor, &row.prev_hash)?;
                self.anchored = true;
            }
            None if self.open_start => self.first = row.seq,
            None => {
                return broken(1, format!(
                    "the trail starts at record {}, and no signed checkpoint marks records 1 to {cut} as archived: they were deleted",
                    row.seq
                ))
            }
        }
        self.expected_seq = row.seq;
        self.prev = row.prev_hash.clone();
        Ok(())
    }

    fn check_checkpoint(&mut self, cp: &AuditCheckpoint, hash: &[u8]) -> Result<(), (i64, String)> {
        let Some(key) = &self.public_key else {
            return broken(cp.seq, "a checkpoint signs this record, but no public key was given to check it; pass --public-key");
        };
        if !key.verify(
            &checkpoint_message(cp.seq, &cp.hash, cp.time),
            &cp.signature,
        ) {
            return broken(cp.seq, format!(
                "the checkpoint signed at {} over this record has a bad signature: forged, edited, or signed by another key than {}",
                crate::rfc3339(cp.time),
                key.fingerprint()
            ));
        }
        if cp.hash != hash {
            let from = self
                .signed_through
                .map(|(s, _)| s + 1)
                .unwrap_or(self.first);
            return broken(from, format!(
                "the chain no longer matches the head signed at {} at record {}: a record from {from} to {} was changed, inserted or deleted and the hashes after it recomputed",
                crate::rfc3339(cp.time), cp.seq, cp.seq
            ));
        }
        self.signed_through = Some((cp.seq, cp.time));
        Ok(())
    }

    /// The verdict once every record is fed.
    pub fn finish(mut self) -> Verdict {
        if let Some((seq, reason)) = self.broken.take() {
            return Verdict::Broken { seq, reason };
        }
        let last = self.expected_seq - 1;
        if let Some((&seq, cp)) = self.checkpoints.range(self.expected_seq..).next() {
            return Verdict::Broken {
                seq: self.expected_seq,
                reason: format!(
                    "the trail ends at record {last}, but record {seq} was signed at {}: records from {} on were cut off (truncated)",
                    crate::rfc3339(cp.time),
                    self.expected_seq
                ),
            };
        }
        Verdict::Intact {
            first: self.first,
            anchored: self.anchored,
            records: self.count,
            head: hex::encode(&self.prev),
            signed_through: self.signed_through,
            unsigned: self
                .signed_through
                .map(|(s, _)| (last - s).max(0) as u64)
                .unwrap_or(self.count),
        }
    }
}

/// Rows read per step while verifying.
const VERIFY_PAGE: usize = 10_000;

/// Verifies the whole trail in `store` with its checkpoints. `progress` is told how many
/// records are checked so far.
pub async fn verify(
    store: &dyn Store,
    public_key: Option<PublicKey>,
    progress: impl FnMut(u64),
) -> Result<Verdict, CoreError> {
    let mut v = Verifier::new(public_key);
    feed_store(&mut v, store, progress).await?;
    Ok(v.finish())
}

/// Feeds `v` the checkpoints and then the records of `store`, in order, stopping at the first
/// broken record.
pub async fn feed_store(
    v: &mut Verifier,
    store: &dyn Store,
    mut progress: impl FnMut(u64),
) -> Result<(), CoreError> {
    v.add_checkpoints(checkpoints_after(store, i64::MIN).await?);
    let mut after = i64::MIN; // rows numbered 0 or below are read too, and refused
    loop {
        let rows = store.audit_rows(after, VERIFY_PAGE).await?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in &rows {
            if !v.push(row) {
                return Ok(());
            }
        }
        progress(v.count());
    }
    Ok(())
}

/// Every checkpoint of records numbered above `after`, in order (there are few: one per
/// checkpoint interval with activity).
pub(super) async fn checkpoints_after(
    store: &dyn Store,
    mut after: i64,
) -> Result<Vec<AuditCheckpoint>, CoreError> {
    let mut all = Vec::new();
    loop {
        let cps = store.checkpoints(after, VERIFY_PAGE).await?;
        let Some(last) = cps.last() else {
            return Ok(all);
        };
        after = last.seq;
        all.extend(cps);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Outcome;

    /// `count` well-formed records numbered from `first`, chained from `prev`.
    fn chain(first: i64, count: i64, mut prev: Vec<u8>) -> Vec<AuditRow> {
        (0..count)
            .map(|i| {
                let seq = first + i;
                let event =
                    AuditEvent::system(1_795_000_000, "system.start", Outcome::Success, None);
                let record = serde_json::to_string(&event).unwrap();
                let hash = audit_chain_hash(&prev, seq, &record);
                let row = AuditRow {
                    seq,
                    record,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn a_part_of_a_trail_is_intact_from_its_first_record() {
        let rows = chain(41, 3, vec![9; 32]);
        let mut v = Verifier::from_first(None);
        assert!(rows.iter().all(|r| v.push(r)));
        match v.finish() {
            Verdict::Intact {
                first,
                anchored,
                records,
                unsigned,
                ..
            } => assert_eq!((first, anchored, records, unsigned), (41, false, 3, 3)),
            broken => panic!("{broken:?}"),
        }
    }

    /// Found by the `audit_chain` fuzz target (a trail ending at the largest record number):
    /// counting past the last record overflowed, a panic with overflow checks and a wrapped
    /// count without.
    #[test]
    fn a_record_at_the_top_of_the_number_range_is_refused_not_overflowed() {
        let rows = chain(i64::MAX - 1, 2, vec![5; 32]);
        let mut v = Verifier::from_first(None);
        assert!(v.push(&rows[0]), "the largest number a record may have");
        assert!(!v.push(&rows[1]));
        match v.finish() {
            Verdict::Broken { seq, reason } => {
                assert_eq!(seq, i64::MAX);
                assert!(reason.contains("outside the range"), "{reason}");
            }
            intact => panic!("{intact:?}"),
        }
    }

    /// Found by the `audit_chain` fuzz target (a part of a trail starting at the smallest record
    /// number): the number before the first record underflowed.
    #[test]
    fn a_trail_starting_at_the_bottom_of_the_number_range_is_refused_not_underflowed() {
        for first in [i64::MIN, -1, 0] {
            let rows = chain(first, 2, vec![5; 32]);
            for mut v in [Verifier::from_first(None), Verifier::new(None)] {
                assert!(!v.push(&rows[0]));
                assert!(
                    matches!(v.finish(), Verdict::Broken { seq, .. } if seq == first),
                    "{first}"
                );
            }
        }
    }
}
