//! Reading the trail: records matching a filter, a page at a time. Any store can answer it,
//! since it only walks records in order; each call reads a bounded number of records, and the
//! `next` cursor carries on from where it stopped, so a rare match in a long trail costs a few
//! calls rather than one unbounded scan.

use serde::Serialize;
use tijori_store::AuditRow;

use super::{AuditEvent, Outcome};
use crate::policy::{Authorized, ReadAudit};
use crate::{parse_rfc3339, CoreError, Vault};

/// Records read per call at most, matching or not.
const SCAN_BUDGET: usize = 10_000;
/// Most records answered per call.
pub const MAX_PAGE: usize = 1_000;

/// Which records to answer; every field set must match.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    pub principal: Option<String>,
    pub operation: Option<String>,
    /// A token named in the record's resource.
    pub token: Option<String>,
    pub outcome: Option<Outcome>,
}

/// One record with its place in the chain.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    /// Hex.
    pub prev_hash: String,
    /// Hex.
    pub hash: String,
    pub record: AuditEvent,
}

/// A page of matches and where to carry on.
#[derive(Clone, Debug, Serialize)]
pub struct AuditPage {
    pub records: Vec<AuditEntry>,
    /// Pass as `after` for the next page; `None` when the end of the trail was reached.
    pub next: Option<i64>,
    /// The newest record's number when the page was read (0 for an empty trail).
    pub head: i64,
}

impl AuditFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        let time_ok = |bound: Option<i64>, after: bool| {
            bound.is_none_or(|t| parse_rfc3339(&e.time).is_some_and(|r| (r >= t) == after))
        };
        time_ok(self.since, true)
            && time_ok(self.until, false)
            && self
                .principal
                .as_ref()
                .is_none_or(|p| e.principal_id.as_ref() == Some(p))
            && self.operation.as_ref().is_none_or(|o| &e.operation == o)
            && self.outcome.is_none_or(|o| e.outcome == o)
            && self.token.as_ref().is_none_or(|t| {
                e.resource
                    .as_deref()
                    .is_some_and(|r| r.split([',', ' ']).any(|part| part == t))
            })
    }
}

impl Vault {
    /// Records after `after` that match `filter`, at most `limit` (capped at [`MAX_PAGE`]).
    pub async fn audit_records(
        &self,
        _auth: &Authorized<'_, ReadAudit>,
        filter: &AuditFilter,
        after: i64,
        limit: usize,
    ) -> Result<AuditPage, CoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let head = self.store.audit_head().await?.map_or(0, |r| r.seq);
        let rows = self.store.audit_rows(after, SCAN_BUDGET).await?;
        let scanned_all = rows.len() < SCAN_BUDGET;
        let mut records = Vec::new();
        let mut last = after;
        for AuditRow {
            seq,
            record,
            prev_hash,
            hash,
        } in rows
        {
            last = seq;
            let event: AuditEvent = serde_json::from_str(&record).map_err(|_| {
                CoreError::Internal(format!(
                    "audit record {seq} is unreadable; run tijori audit verify"
                ))
            })?;
            if filter.matches(&event) {
                records.push(AuditEntry {
                    seq,
                    prev_hash: hex::encode(prev_hash),
                    hash: hex::encode(hash),
                    record: event,
                });
                if records.len() == limit {
                    break;
                }
            }
        }
        let at_end = scanned_all && records.len() < limit;
        Ok(AuditPage {
            records,
            next: (!at_end).then_some(last),
            head,
        })
    }
}

/// Most records in one `GET /v1/audit/export` answer.
pub const MAX_EXPORT: i64 = 100_000;

impl Vault {
    /// The records numbered above `after`, at most `limit` (capped at [`MAX_EXPORT`]), in the
    /// export format (JSON Lines with chain proofs and the checkpoints among them), which
    /// `tijori audit verify --file` checks with the public key alone.
    pub async fn export_audit(
        &self,
        _auth: &Authorized<'_, ReadAudit>,
        after: i64,
        limit: i64,
    ) -> Result<(Vec<u8>, u64), CoreError> {
        let through = after.saturating_add(limit.clamp(1, MAX_EXPORT));
        let mut out = Vec::new();
        let n = super::export::export(self.store.as_ref(), after.max(0), through, &mut out, |_| {})
            .await?;
        Ok((out, n))
    }
}
