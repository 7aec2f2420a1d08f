//! The audit trail: one record for every API request and every system event, appended to a
//! hash chain in the store and durable before the answer it describes is sent. If a record
//! cannot be written the caller must refuse the operation (fail closed). A record never holds a
//! value: only tokens, subjects, types, who, where from, what, and how it ended.
//!
//! Each record is stored as its exact JSON text; its hash is
//! `SHA-256("tijori-audit-v1\0" || previous hash || seq || text)`, so [`verify`] can recompute
//! the chain from the text alone and name the first record that was edited, deleted, inserted
//! or moved.
//!
//! A hash chain alone does not catch an insider who rewrites records and recomputes every hash
//! after them, or who cuts the newest records off. So the chain head is signed at intervals, at
//! seal and at shutdown ([`checkpoint_message`]) with an Ed25519 key held under the key
//! hierarchy, whose public key is exported and kept elsewhere; [`verify`] checks every
//! signature, and a checkpoint past the trail's end shows a truncation.

pub mod archive;
pub mod export;
mod ops;
mod query;
pub(crate) mod quota;
mod verify;

pub use ops::stored_public_key;
pub use query::{AuditEntry, AuditFilter, AuditPage, MAX_EXPORT, MAX_PAGE};
pub use quota::DEFAULT_PER_HOUR as DEFAULT_HASH_PER_HOUR;
pub use verify::{feed_store, verify, Verdict, Verifier};

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tijori_crypto::audit_chain_hash;
use tijori_store::{ChainFn, Store};

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
    /// Held for a second operator's approval under dual control (`202`): nothing done yet.
    /// The record names the approval; the request repeated once approved is recorded again,
    /// with the same approval.
    Pending,
}

/// One audit record. Field order is the serialized order, and the serialized text is what the
/// chain protects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 UTC.
    pub time: String,
    pub request_id: Option<String>,
    pub principal_id: Option<String>,
    /// `service` (a principal's API key), `root` (the root token) or `system`.
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
    /// HMACs of the values the request carried (tokenize, search), under the audit key: an
    /// investigator holding a value can find its records (`tijori audit hash`), nobody else
    /// learns anything from them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_hmacs: Vec<String>,
    /// How many items the operation touched, where that is the point (an erasure's tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The dual-control approval the request asked for (outcome `pending`) or was done under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
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
            value_hmacs: Vec::new(),
            count: None,
            approval: None,
        }
    }

    /// This request's record as the success of a write on `resource`: for a record written in
    /// the same commit as that write, before the request ends.
    pub(crate) fn succeeded(mut self, resource: String, data_type: Option<String>) -> AuditEvent {
        self.resource = Some(resource);
        self.data_type = data_type;
        self.outcome = Outcome::Success;
        self.reason = None;
        self
    }
}

/// Where audit records go. The store-backed sink is the real one; tests inject failing sinks
/// to prove that operations fail closed.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Makes the events durable, or fails.
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), CoreError>;

    /// Whether records may instead be written by the vault's store together with the writes
    /// they describe, chained with this function: only for the trail in that store.
    fn chain(&self) -> Option<ChainFn> {
        None
    }
}

/// One archiving run on `store` (see [`archive`]), recorded in the trail it archives through
/// `sink`: for tools that work on a data dir without a running vault.
pub async fn archive_and_audit(
    store: &dyn Store,
    sink: &dyn AuditSink,
    retention: &archive::Retention,
    now: i64,
    progress: impl FnMut(u64),
) -> Result<archive::ArchiveReport, CoreError> {
    let run = archive::archive(store, retention, now, progress).await;
    let events = archive::events(now, &run);
    if !events.is_empty() {
        sink.append(events).await?;
    }
    run
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

    fn chain(&self) -> Option<ChainFn> {
        Some(audit_chain_hash)
    }
}

/// The message a checkpoint signs: a domain tag, the record number, its chain hash and the
/// signing time (Unix seconds), so a signature cannot be moved to another record or time.
pub fn checkpoint_message(seq: i64, hash: &[u8], time: i64) -> Vec<u8> {
    let mut m = b"tijori-audit-checkpoint-v1\0".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash);
    m.extend_from_slice(&time.to_be_bytes());
    m
}
