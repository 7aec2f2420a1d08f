//! Per-request context: a fresh random request id (in the `x-request-id` header, in error
//! bodies, in the log line and the audit record), one access-log line without bodies or values,
//! metrics, and the audit record of the request, made durable before the answer leaves: if it
//! cannot be written the answer is replaced by `503 unavailable` (fail closed), so nothing is
//! revealed that the trail does not show.
//!
//! It also reads the whole request body (within the limit) before anything answers: a refusal
//! sent before the body is read would leave the rest of it on a keep-alive connection, and the
//! client's next request on that connection would fail.
//!
//! The handler and the audit write run in a task of their own: a client that hangs up drops
//! its request future, and a write already made must still get its record. A handler that
//! panics answers `500 internal` and is audited as a failure.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use tijori_core::audit::{AuditEvent, Outcome};
use tijori_core::rfc3339;
use tijori_types::ErrorCode;

use crate::{ApiError, AppState};

/// What handlers and extractors learn about a request, for its audit record.
#[derive(Default)]
struct Note {
    principal_id: Option<String>,
    principal_kind: Option<&'static str>,
    resource: Option<String>,
    data_type: Option<String>,
    reason: Option<&'static str>,
    value_hmacs: Vec<String>,
    count: Option<u64>,
    /// The dual-control approval asked for (`pending`) or spent by the request.
    approval: Option<String>,
    pending: bool,
    /// The handler wrote the success record with its data ([`draft_record`]).
    recorded: bool,
}

struct Context {
    id: String,
    /// Peer address, and the audit name of the operation; `None` for a request not audited.
    source: Option<String>,
    operation: Option<String>,
    note: Mutex<Note>,
}

tokio::task_local! {
    static CONTEXT: Arc<Context>;
}

/// This request's id (empty outside a request).
pub fn request_id() -> String {
    CONTEXT.try_with(|c| c.id.clone()).unwrap_or_default()
}

fn note(f: impl FnOnce(&mut Note)) {
    let _ = CONTEXT.try_with(|c| {
        if let Ok(mut n) = c.note.lock() {
            f(&mut n);
        }
    });
}

/// Records the authenticated caller (or the operator a login opened a session for).
pub(crate) fn note_caller(id: &str, kind: tijori_core::PrincipalKind) {
    note(|n| {
        n.principal_id = Some(id.to_owned());
        n.principal_kind = Some(kind.as_str());
    });
}

/// Records what the request concerned (tokens, a principal; empty for nothing yet) and, when
/// known, the data type(s). A later note refines an earlier one.
pub(crate) fn note_resource(resource: impl Into<String>, data_type: Option<String>) {
    let resource = resource.into();
    note(|n| {
        if !resource.is_empty() {
            n.resource = Some(resource);
        }
        if data_type.is_some() {
            n.data_type = data_type;
        }
    });
}

/// Records the audit HMAC of a value the request carried.
pub(crate) fn note_value(hmac: Option<String>) {
    if let Some(h) = hmac {
        note(|n| n.value_hmacs.push(h));
    }
}

/// The record this request gets if it succeeds, from what is noted so far, for a handler that
/// writes it in the same commit as its data (resource, data type and outcome are the writer's
/// to fill); `None` outside an audited request.
pub(crate) fn draft_record(now: i64) -> Option<AuditEvent> {
    CONTEXT
        .try_with(|c| {
            let operation = c.operation.clone()?;
            let n = c.note.lock().ok()?;
            Some(AuditEvent {
                time: rfc3339(now),
                request_id: Some(c.id.clone()),
                principal_id: n.principal_id.clone(),
                principal_kind: n.principal_kind.map(str::to_owned),
                source: c.source.clone(),
                operation,
                resource: n.resource.clone(),
                data_type: n.data_type.clone(),
                outcome: Outcome::Success,
                reason: None,
                value_hmacs: n.value_hmacs.clone(),
                count: n.count,
                approval: n.approval.clone(),
            })
        })
        .ok()
        .flatten()
}

/// Records the dual-control approval the request asked for (`pending`: it answers `202` and
/// waits for it) or was done under.
pub(crate) fn note_approval(id: &str, pending: bool) {
    note(|n| {
        n.approval = Some(id.to_owned());
        n.pending = pending;
    });
}

/// Records that the handler's success record is written (see [`draft_record`]).
pub(crate) fn note_recorded() {
    note(|n| n.recorded = true);
}

/// Records how many items the request touched (an erasure's tokens).
pub(crate) fn note_count(count: u64) {
    note(|n| n.count = Some(count));
}

/// Records the error code the request ended with.
pub(crate) fn note_reason(code: ErrorCode) {
    note(|n| n.reason = Some(code.as_str()));
}

fn new_id() -> String {
    let mut b = [0u8; 12];
    // An id is not a secret; if the OS RNG fails, a time-based id still tells requests apart.
    if getrandom::getrandom(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b.copy_from_slice(&t.to_le_bytes()[..12]);
    }
    format!("req_{}", hex::encode(b))
}

/// The audit name of an operation.
fn operation(method: &Method, route: &str) -> String {
    // A HEAD runs the GET handler (axum), and reads what it reads: named as the GET is, so
    // that filtering the trail by operation finds it.
    let read_as = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    let name = match (read_as, route) {
        ("POST", "/v1/tokens") => "tokenize",
        ("POST", "/v1/tokens/batch") => "tokenize_batch",
        ("POST", "/v1/tokens/search") => "search",
        ("GET", "/v1/tokens/{token}") => "read_token",
        ("DELETE", "/v1/tokens/{token}") => "delete_token",
        ("POST", "/v1/detokenize") => "detokenize",
        ("POST", "/v1/principals") => "create_principal",
        ("GET", "/v1/principals") => "list_principals",
        ("POST", "/v1/principals/{id}/disable") => "disable_principal",
        ("POST", "/v1/principals/{id}/enable") => "enable_principal",
        ("POST", "/v1/principals/{id}/rotate") => "rotate_principal_key",
        ("POST", "/v1/principals/{id}/restrict") => "restrict_principal",
        ("POST", "/v1/sys/seal") => "seal",
        ("POST", "/v1/sys/unseal") => "unseal",
        ("DELETE", "/v1/subjects/{subject}") => "erase_subject",
        ("GET", "/v1/sys/keys") => "read_keys",
        ("POST", "/v1/sys/keys/rotate") => "rotate_key",
        ("POST", "/v1/sys/keys/rewrap") => "rewrap_keys",
        ("POST", "/v1/sys/keys/reencrypt") => "reencrypt_keys",
        ("GET", "/v1/sys/unseal") => "read_unseal_progress",
        ("GET", "/metrics") => "read_metrics",
        ("GET", "/v1/audit") => "read_audit",
        ("GET", "/v1/audit/public-key") => "read_audit_public_key",
        ("POST", "/v1/audit/hash") => "audit_hash",
        ("GET", "/v1/audit/export") => "export_audit",
        ("POST", "/v1/users") => "create_user",
        ("GET", "/v1/users") => "list_users",
        ("POST", "/v1/users/{id}/disable") => "disable_user",
        ("POST", "/v1/users/{id}/enable") => "enable_user",
        ("POST", "/v1/users/{id}/unlock") => "unlock_user",
        ("POST", "/v1/users/{id}/reset") => "reset_user",
        ("POST", "/v1/users/{id}/training") => "record_training",
        ("GET", "/v1/reports/training") => "read_training_report",
        ("POST", "/v1/auth/enroll") => "enroll",
        ("POST", "/v1/auth/login") => "login",
        ("POST", "/v1/auth/logout") => "logout",
        ("POST", "/v1/auth/password") => "change_password",
        ("GET", "/v1/auth/session") => "read_session",
        ("GET", "/v1/roles") => "list_roles",
        ("GET", "/v1/roles/{name}") => "read_role",
        ("PUT", "/v1/roles/{name}") => "put_role",
        ("DELETE", "/v1/roles/{name}") => "delete_role",
        ("GET", "/v1/approvals") => "list_approvals",
        ("POST", "/v1/approvals/{id}/approve") => "approve",
        ("POST", "/v1/approvals/{id}/deny") => "deny",
        _ => return format!("http {method} {route}"),
    };
    name.to_owned()
}

/// Reads of the public, data-free endpoints that load balancers poll are not audited, or they
/// would drown the trail. Any other method there (refused as 405 or 413) is an attempt like
/// any other, and is recorded.
fn audited(method: &Method, route: &str) -> bool {
    !(matches!(*method, Method::GET | Method::HEAD)
        && matches!(
            route,
            "/v1/health" | "/v1/health/ready" | "/v1/openapi.json"
        ))
}

pub(crate) async fn request_context(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let source = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.to_string());
    let audited = audited(&method, &route) && !cfg!(feature = "unaudited-bench");
    let ctx = Arc::new(Context {
        id: new_id(),
        source,
        operation: audited.then(|| operation(&method, &route)),
        note: Mutex::new(Note::default()),
    });
    let started = Instant::now();
    let (limit, body_timeout) = (state.config.body_limit, state.config.body_timeout);
    let work = {
        let (state, ctx) = (state.clone(), ctx.clone());
        CONTEXT.scope(ctx.clone(), async move {
            let handler = std::panic::AssertUnwindSafe(buffered(req, next, limit, body_timeout));
            let resp = handler.catch_unwind().await.unwrap_or_else(|_| {
                tracing::error!(request_id = %ctx.id, "request handler panicked");
                note_reason(ErrorCode::Internal);
                ApiError::new(
                    ErrorCode::Internal,
                    "the vault failed on this request; it is logged, retry or report it",
                )
                .into_response()
            });
            let Some(event) = audit_event(&state, &ctx, &resp) else {
                return resp;
            };
            match state.vault.audit(vec![event]).await {
                Ok(()) => resp,
                Err(_) => ApiError::new(
                    ErrorCode::Unavailable,
                    "the audit trail cannot be written (a full or read-only disk, or an \
                     unreachable database), so the answer is withheld. Retry later; operators \
                     find the cause in the server's log",
                )
                .into_response(),
            }
        })
    };
    let mut resp = state.requests.spawn(work).await.unwrap_or_else(|_| {
        ApiError::new(
            ErrorCode::Internal,
            "the vault failed on this request; retry or report it",
        )
        .into_response()
    });
    if let Ok(v) = HeaderValue::from_str(&ctx.id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    state.metrics.observe(method.as_str(), &route, status);
    tracing::info!(request_id = %ctx.id, %method, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

/// Records each request that hyper refused before the router saw it (see
/// [`crate::listener::Refusal`]) as `malformed_request` from its peer, like any other attempt.
/// hyper has answered it already, so there is nothing to withhold: a trail that cannot be
/// written is only logged. The append is a tracked request task, so a stopping server waits
/// for it.
pub fn record_rejected(state: AppState) -> crate::listener::Rejected {
    std::sync::Arc::new(move |peer, refusal| {
        if cfg!(feature = "unaudited-bench") {
            return;
        }
        let reason = match refusal {
            crate::listener::Refusal::Malformed => ErrorCode::InvalidRequest,
            crate::listener::Refusal::TooLarge => ErrorCode::PayloadTooLarge,
        };
        let event = AuditEvent {
            request_id: Some(new_id()),
            principal_kind: None,
            source: Some(peer.to_string()),
            ..AuditEvent::system(
                state.vault.now(),
                "malformed_request",
                Outcome::Failure,
                Some(reason.as_str().to_owned()),
            )
        };
        let vault = state.vault.clone();
        state.requests.spawn(async move {
            if let Err(e) = vault.audit(vec![event]).await {
                tracing::error!(%peer, error = %e, "a refused request could not be recorded");
            }
        });
    })
}

/// The audit record of a finished request, from what its handler noted and its status; `None`
/// for a request not audited, or whose success the handler recorded already.
fn audit_event(state: &AppState, ctx: &Context, resp: &Response) -> Option<AuditEvent> {
    let operation = ctx.operation.clone()?;
    let n = ctx
        .note
        .lock()
        .map(|mut n| std::mem::take(&mut *n))
        .unwrap_or_default();
    let outcome = match resp.status().as_u16() {
        202 if n.pending => Outcome::Pending,
        200..=399 => Outcome::Success,
        401 | 403 => Outcome::Denied,
        _ => Outcome::Failure,
    };
    if n.recorded && outcome == Outcome::Success {
        return None;
    }
    Some(AuditEvent {
        time: rfc3339(state.vault.now()),
        request_id: Some(ctx.id.clone()),
        principal_kind: n.principal_kind.map(str::to_owned),
        principal_id: n.principal_id,
        source: ctx.source.clone(),
        operation,
        resource: n.resource,
        data_type: n.data_type,
        outcome,
        reason: n.reason.map(str::to_owned),
        value_hmacs: n.value_hmacs,
        count: n.count,
        approval: n.approval,
    })
}

/// How much more than the limit is read (and dropped) so that a client sending a too-large
/// body still hears its 413 on a live connection; past this the connection is cut at once.
const DRAIN_FACTOR: usize = 4;

/// Runs the request with its body read in full first; past `limit`, answers 413.
async fn buffered(req: Request, next: Next, limit: usize, timeout: Duration) -> Response {
    let (parts, body) = req.into_parts();
    let drain = limit.saturating_mul(DRAIN_FACTOR);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = match declared {
        Some(n) if n > drain as u64 => None,
        _ => match tokio::time::timeout(timeout, axum::body::to_bytes(body, drain)).await {
            Ok(Ok(bytes)) => Some(bytes),
            Ok(Err(e)) if over_limit(&e) => None,
            // Not a size: the client broke off, or sent malformed chunks. Said as such, and
            // recorded as such, not as a body too large.
            Ok(Err(_)) => return unreadable(),
            Err(_) => return too_slow(),
        },
    };
    match read {
        Some(bytes) if bytes.len() <= limit => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Some(_) => too_large(false),
        None => too_large(true),
    }
}

/// Whether reading the body stopped at its size limit (axum's documented way to tell).
fn over_limit(e: &axum::Error) -> bool {
    std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
}

/// A body that could not be read: `400`, and the connection is closed.
fn unreadable() -> Response {
    let mut resp = ApiError::new(
        ErrorCode::InvalidRequest,
        "the request body could not be read (the connection broke off, or its chunked \
         encoding is malformed); send it again",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// A body that did not arrive in time: `408`, and the connection is closed (the rest of the
/// body may still come).
fn too_slow() -> Response {
    note_reason(ErrorCode::RequestTimeout);
    let mut resp = ApiError::new(
        ErrorCode::RequestTimeout,
        "the request body did not arrive in time; send it at once, or less of it",
    )
    .into_response();
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

fn too_large(close: bool) -> Response {
    let mut resp = ApiError::new(
        ErrorCode::PayloadTooLarge,
        "the request body is over the size limit; send less per request (split batches)",
    )
    .into_response();
    if close {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
