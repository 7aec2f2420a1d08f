//! The audit trail: one record for every API request and every system event, appended to a
//! hash chain in the store and durable before the answer it describes is sent. If a record
//! cannot be written the caller must refuse the operation (fail closed). A record never holds a
//! value: only tokens, subjects, types, who, where from, what, and how it ended.
//!
//! Each record is stored as its exact JSON text; its hash is
//! `SHA-256("tijori-audit-v1\0" || previous hash || seq || text)`, so [`verify`] can recompute
//! the chain from the text alone and name the first record that was edited, deleted, inserted
//! or moved.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tijori_crypto::audit_chain_hash;
use tijori_store::{AuditRow, Store};

use crate::{rfc3339, CoreError};

/// How an audited operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// Refused for want of a credential or a right (401, 403).
    Denied,
    /// Refused for any other reason (bad input, not found, sealed, unavailable).
    Failure,
}

/// One audit record. Field order is the serialized order, and the serialized text is what the
/// chain protects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC.
    pub time: String,
    pub request_id: Option<String>,
    pub principal_id: Option<String>,
    /// `service` (API key) or `system`.
    pub principal_kind: Option<String>,
    /// Peer address of the connection.
    pub source: Option<String>,
    /// What was done: `tokenize`, `detokenize`, `seal`, `system.start`, ...
    pub operation: String,
    /// Tokens, a principal id, or a subject, as the operation concerns.
    pub resource: Option<String>,
    pub data_type: Option<String>,
    pub outcome: Outcome,
    /// The error code, for anything but success.
    pub reason: Option<String>,
}

impl AuditEvent {
    /// A system event (no request, no caller).
    pub fn system(
        now: i64,
        operation: &str,
        outcome: Outcome,
        reason: Option<String>,
    ) -> AuditEvent {
        AuditEvent {
            time: rfc3339(now),
            request_id: None,
            principal_id: None,
            principal_kind: Some("system".into()),
            source: None,
            operation: operation.into(),
            resource: None,
            data_type: None,
            outcome,
            reason,
        }
    }
}

/// Where audit records go. The store-backed sink is the real one; tests inject failing sinks
/// to prove that operations fail closed.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Makes the events durable, or fails.
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), CoreError>;
}

/// The audit trail in the vault's own store.
pub struct StoreAudit(pub Arc<dyn Store>);

#[async_trait]
impl AuditSink for StoreAudit {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), CoreError> {
        let records = events
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        self.0.append_audit(records, audit_chain_hash).await?;
        Ok(())
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record chains to the one before. `head` is the last record's hash (hex).
    Intact { records: u64, head: String },
    /// The first record that fails, and why.
    Broken { seq: i64, reason: String },
}

/// Rows read per step while verifying.
const VERIFY_PAGE: usize = 10_000;

/// Recomputes the whole chain from the stored texts. `progress` is told how many records are
/// checked so far.
pub async fn verify(
    store: &dyn Store,
    mut progress: impl FnMut(u64),
) -> Result<Verdict, CoreError> {
    let mut expected_seq = 1;
    let mut after = i64::MIN; // rows numbered 0 or below are read too, and refused
    let mut prev = vec![0u8; 32];
    let mut count = 0u64;
    loop {
        let rows = store.audit_rows(after, VERIFY_PAGE).await?;
        if rows.is_empty() {
            return Ok(Verdict::Intact {
                records: count,
                head: hex::encode(&prev),
            });
        }
        for AuditRow {
            seq,
            record,
            prev_hash,
            hash,
        } in rows
        {
            if seq < expected_seq {
                return Ok(Verdict::Broken {
                    seq,
                    reason: format!("record {seq} stands before record {expected_seq}, where no record may be: inserted"),
                });
            }
            if seq > expected_seq {
                return Ok(Verdict::Broken {
                    seq: expected_seq,
                    reason: format!(
                        "record {expected_seq} is missing (the next one is {seq}): deleted"
                    ),
                });
            }
            if prev_hash != prev {
                return Ok(Verdict::Broken {
                    seq,
                    reason: "its previous-hash does not match the record before it: a record was deleted, inserted or moved".into(),
                });
            }
            if audit_chain_hash(&prev, seq, &record) != hash {
                return Ok(Verdict::Broken {
                    seq,
                    reason: "its content does not match its hash: it was edited or moved".into(),
                });
            }
            if serde_json::from_str::<AuditEvent>(&record).is_err() {
                return Ok(Verdict::Broken {
                    seq,
                    reason: "it is not a well-formed audit record".into(),
                });
            }
            prev = hash;
            after = seq;
            expected_seq += 1;
            count += 1;
        }
        progress(count);
    }
}
