//! Dual control (PCI DSS 3.6.1.2, 6.4.2-style separation of duties): a configured dangerous
//! operation is not done on one person's word. The first request creates a pending approval
//! bound to that exact request (by fingerprint) and answers `202`; a second, different
//! operator holding the right to do the operation approves it within the window; the requester
//! then repeats the request naming the approval, which is spent on use. Asking, approving,
//! denying and using are each audited as the requests they are.
//!
//! Unsealing a production vault is dual control by construction: the key-share threshold is
//! at least 2, so no single custodian can unseal.
//!
//! Whoever creates or resets an operator account holds its enrollment code, so the account
//! (and any account it issues in turn) never approves that principal's requests. Every
//! account traces back to the root token, so the root token's own requests are never
//! approvable: under dual control, operators ask. The root token creates the first operators
//! and should then be disabled by one of them (`POST /v1/principals/root/disable`): its holder held
//! every code it issued.

use std::collections::HashSet;

use tijori_crypto::{random_hex, sha256};
use tijori_store::ApprovalRecord;

use crate::policy::{authorize, Detokenize, Manage, ReadAudit};
use crate::{CoreError, Principal, PrincipalKind, Vault};

/// An operation that may be put under dual control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Guarded {
    /// Defining, changing or deleting a custom role.
    PolicyChange,
    /// Rotating the key-encryption key (the root of the key hierarchy below the HSM or
    /// shares) or the vault-wide data key.
    KeyRotation,
    /// Revealing more values in one request than the configured threshold.
    BulkReveal,
    /// Exporting the audit trail over the API (`GET /v1/audit/export`). One approval covers
    /// every page of the export until it expires.
    AuditExport,
}

impl Guarded {
    pub const ALL: [Guarded; 4] = [
        Guarded::PolicyChange,
        Guarded::KeyRotation,
        Guarded::BulkReveal,
        Guarded::AuditExport,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Guarded::PolicyChange => "policy_change",
            Guarded::KeyRotation => "key_rotation",
            Guarded::BulkReveal => "bulk_reveal",
            Guarded::AuditExport => "audit_export",
        }
    }

    pub fn parse(name: &str) -> Option<Guarded> {
        Guarded::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Whether `p` holds the right to do (and so to approve) this operation.
    fn may_approve(self, p: &Principal) -> bool {
        match self {
            Guarded::PolicyChange | Guarded::KeyRotation => authorize::<Manage>(p).is_ok(),
            Guarded::BulkReveal => authorize::<Detokenize>(p).is_ok(),
            Guarded::AuditExport => authorize::<ReadAudit>(p).is_ok(),
        }
    }

    /// Whether an approval is spent by its first use. An export is read page by page, and
    /// paging widens nothing: its approval holds until it expires.
    const fn single_use(self) -> bool {
        !matches!(self, Guarded::AuditExport)
    }
}

/// Which operations need a second person, and for how long an approval holds.
#[derive(Clone, Debug)]
pub struct DualControl {
    pub guarded: HashSet<Guarded>,
    /// A detokenize of more tokens than this is a bulk reveal.
    pub bulk_reveal_threshold: usize,
    /// Seconds a request waits for approval, and an approval waits for use.
    pub window_secs: i64,
}

impl Default for DualControl {
    fn default() -> DualControl {
        DualControl {
            guarded: HashSet::new(),
            bulk_reveal_threshold: 100,
            window_secs: 3600,
        }
    }
}

/// What a guarded request gets instead of being done, or what the approvals list shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub id: String,
    pub operation: String,
    pub summary: String,
    pub requested_by: String,
    pub requested_at: i64,
    pub expires_at: i64,
    /// `pending`, `approved`, `denied`, `used`, or `expired` (shown, never stored).
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
}

/// Longest line of account issuers followed.
const MAX_ISSUERS: usize = 32;

/// The fingerprint an approval is bound to: the operation, the path and the body.
pub fn fingerprint(op: Guarded, path: &str, body: &[u8]) -> [u8; 32] {
    let mut text = Vec::with_capacity(path.len() + body.len() + 32);
    text.extend_from_slice(op.as_str().as_bytes());
    text.push(0);
    text.extend_from_slice(path.as_bytes());
    text.push(0);
    text.extend_from_slice(body);
    sha256(&text)
}

impl Vault {
    /// Whether `op` needs a second person here.
    pub fn needs_approval(&self, op: Guarded) -> bool {
        self.config.dual_control.guarded.contains(&op)
    }

    fn view(&self, a: ApprovalRecord) -> Approval {
        let expired =
            a.expires_at <= self.clock.now() && matches!(a.status.as_str(), "pending" | "approved");
        Approval {
            status: if expired { "expired".into() } else { a.status },
            id: a.id,
            operation: a.operation,
            summary: a.summary,
            requested_by: a.requested_by,
            requested_at: a.requested_at,
            expires_at: a.expires_at,
            decided_by: a.decided_by,
            decided_at: a.decided_at,
        }
    }

    /// Records a pending approval for this exact request.
    pub async fn request_approval(
        &self,
        requester: &Principal,
        op: Guarded,
        fingerprint: [u8; 32],
        summary: String,
    ) -> Result<Approval, CoreError> {
        let now = self.clock.now();
        let rec = ApprovalRecord {
            id: format!("apr_{}", random_hex(12)?),
            operation: op.as_str().to_owned(),
            fingerprint: fingerprint.to_vec(),
            summary,
            requested_by: requester.id.clone(),
            requested_at: now,
            expires_at: now + self.config.dual_control.window_secs,
            status: "pending".into(),
            decided_by: None,
            decided_at: None,
        };
        self.store.insert_approval(rec.clone()).await?;
        Ok(self.view(rec))
    }

    /// Approves or denies a pending request: by an operator (a person) other than the
    /// requester who holds the right to do the operation.
    pub async fn decide_approval(
        &self,
        approver: &Principal,
        id: &str,
        approve: bool,
    ) -> Result<Approval, CoreError> {
        if approver.kind != PrincipalKind::Operator {
            return Err(CoreError::Forbidden(
                "approvals are given by operators (people) logged in with a one-time code, not by API keys or the root token",
            ));
        }
        let rec = self
            .store
            .approval(id)
            .await?
            .ok_or(CoreError::NoSuch("no such approval request"))?;
        let op = Guarded::parse(&rec.operation).ok_or_else(|| {
            CoreError::Internal("a stored approval names an unknown operation".into())
        })?;
        if approver.id == rec.requested_by {
            return Err(CoreError::Forbidden(
                "you cannot approve your own request: a second operator must",
            ));
        }
        if self.issued_by(&approver.id, &rec.requested_by).await? {
            return Err(CoreError::Forbidden(
                "your account was issued by the requester (or by an account they issued), who \
                 held its enrollment code: another operator must approve",
            ));
        }
        if !op.may_approve(approver) {
            return Err(CoreError::Forbidden(
                "your roles do not allow the operation you are asked to approve",
            ));
        }
        let now = self.clock.now();
        if rec.expires_at <= now {
            return Err(CoreError::Conflict("the request has expired; ask again"));
        }
        let to = if approve { "approved" } else { "denied" };
        if !self
            .store
            .decide_approval(id, "pending", to, Some(&approver.id), now)
            .await?
        {
            return Err(CoreError::Conflict("the request was already decided"));
        }
        let rec = self
            .store
            .approval(id)
            .await?
            .ok_or(CoreError::NoSuch("no such approval request"))?;
        Ok(self.view(rec))
    }

    /// Whether `issuer` issued account `id`, or an account up its line of issuers: whoever
    /// holds an enrollment code can enroll in the person's place, so every account they issue,
    /// and every account those issue, may be theirs.
    async fn issued_by(&self, id: &str, issuer: &str) -> Result<bool, CoreError> {
        let mut current = id.to_owned();
        for _ in 0..MAX_ISSUERS {
            let Some(user) = self.store.user(&current).await? else {
                return Ok(false);
            };
            if user.issued_by == issuer {
                return Ok(true);
            }
            if user.issued_by.is_empty() || user.issued_by == current {
                return Ok(false);
            }
            current = user.issued_by;
        }
        // A line longer than this is refused rather than followed further.
        Ok(true)
    }

    /// Spends an approval on the request it was given for: same operation, same requester,
    /// same request, approved, within the window. Once only, but for an export (see
    /// [`Guarded::single_use`]).
    pub async fn use_approval(
        &self,
        requester: &Principal,
        op: Guarded,
        fingerprint: [u8; 32],
        id: &str,
    ) -> Result<(), CoreError> {
        let refused = CoreError::Forbidden(
            "the approval named does not cover this request: it must be approved, unused, \
             unexpired, asked by you for this same request",
        );
        let Some(rec) = self.store.approval(id).await? else {
            return Err(refused);
        };
        let same = bool::from(subtle::ConstantTimeEq::ct_eq(
            &rec.fingerprint[..],
            &fingerprint[..],
        ));
        let ok = same
            && rec.operation == op.as_str()
            && rec.requested_by == requester.id
            && rec.status == "approved"
            && rec.expires_at > self.clock.now();
        if !ok {
            return Err(refused);
        }
        if op.single_use()
            && !self
                .store
                .decide_approval(id, "approved", "used", None, self.clock.now())
                .await?
        {
            return Err(refused);
        }
        Ok(())
    }

    /// Approval requests of the last `days` days, newest first.
    pub async fn approvals(&self, days: i64) -> Result<Vec<Approval>, CoreError> {
        let since = self.clock.now() - days * 86_400;
        Ok(self
            .store
            .approvals(since)
            .await?
            .into_iter()
            .map(|a| self.view(a))
            .collect())
    }
}
