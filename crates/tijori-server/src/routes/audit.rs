//! `/v1/audit`: reading the trail (filtered, paginated), the public key that checks its
//! signed checkpoints, and the HMAC of a value for matching records. Reading the trail is
//! itself audited, like every request.

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tijori_core::approval::Guarded;
use tijori_core::audit::{AuditFilter, Outcome};
use tijori_core::policy::{authorize, ReadAudit};
use tijori_types::{DataType, ErrorCode};

use crate::context::{note_count, note_resource, note_value};
use crate::extract::{parse_json, Body, Caller};
use crate::{ApiError, AppState};

/// Records per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 100;

fn bad(message: &'static str) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// A time filter: RFC 3339 (`2026-11-24T10:00:00Z`) or Unix seconds.
fn parse_time(v: &str) -> Result<i64, ApiError> {
    const MSG: &str =
        "since and until take an RFC 3339 time (2026-11-24T10:00:00Z) or Unix seconds";
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    tijori_core::parse_rfc3339(v).ok_or_else(|| bad(MSG))
}

/// `GET /v1/audit?since=&until=&principal=&operation=&token=&outcome=&after=&limit=`
pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let auth = authorize::<ReadAudit>(&p)?;
    let mut filter = AuditFilter::default();
    let (mut after, mut limit) = (0i64, DEFAULT_LIMIT);
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "since" => filter.since = Some(parse_time(&v)?),
            "until" => filter.until = Some(parse_time(&v)?),
            "principal" => filter.principal = Some(v.into_owned()),
            "operation" => filter.operation = Some(v.into_owned()),
            "token" => filter.token = Some(v.into_owned()),
            "outcome" => {
                filter.outcome = Some(match v.as_ref() {
                    "success" => Outcome::Success,
                    "denied" => Outcome::Denied,
                    "failure" => Outcome::Failure,
                    "pending" => Outcome::Pending,
                    _ => return Err(bad("outcome is one of success, denied, failure, pending")),
                })
            }
            "after" => {
                after = v
                    .parse()
                    .map_err(|_| bad("after takes a record number (the previous page's next)"))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=tijori_core::audit::MAX_PAGE).contains(n))
                    .ok_or_else(|| bad("limit takes a number from 1 to 1000"))?
            }
            _ => {
                return Err(bad(
                    "unknown query parameter; use since, until, principal, operation, token, outcome, after, limit",
                ))
            }
        }
    }
    let page = s.vault.audit_records(&auth, &filter, after, limit).await?;
    if let (Some(first), Some(last)) = (page.records.first(), page.records.last()) {
        note_read(
            format!("seq {}-{}", first.seq, last.seq),
            page.records.len() as u64,
        );
    }
    Ok(Json(page).into_response())
}

/// `GET /v1/audit/public-key`
pub(crate) async fn public_key(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    authorize::<ReadAudit>(&p)?;
    let key = s.vault.audit_public_key().await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Sealed,
            "the vault has never been unsealed, so it has no audit key yet",
        )
    })?;
    Ok(
        Json(json!({ "public_key": key.to_string(), "fingerprint": key.fingerprint() }))
            .into_response(),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HashRequest {
    #[serde(rename = "type")]
    data_type: String,
    value: String,
}

/// `POST /v1/audit/hash {"type","value"}`: the HMAC that audit records carry for that value.
pub(crate) async fn hash(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    authorize::<ReadAudit>(&p)?;
    let req: HashRequest = parse_json(&body)?;
    let ty = DataType::parse(&req.data_type)
        .filter(|t| !t.is_ephemeral())
        .ok_or_else(|| bad("type must be a stored data type (see API.md); card security codes are never hashed"))?;
    let hmac = s.vault.audit_hash_for(&p.id, ty, &req.value)?;
    note_value(Some(hmac.clone()));
    Ok(Json(json!({ "hmac": hmac })).into_response())
}

/// `GET /v1/audit/export?after=&limit=`: the trail in the export format (JSON Lines with chain
/// proofs and checkpoints), up to 100,000 records a page; `tijori audit verify --file` checks
/// a saved copy with the public key alone. Under dual control (`audit_export`) the first call
/// answers `202`; one approval then covers every page until it expires.
pub(crate) async fn export(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: axum::http::HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let auth = authorize::<ReadAudit>(&p)?;
    let (mut after, mut limit) = (0i64, 10_000i64);
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match k.as_ref() {
            "after" => {
                after = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("after takes a record number (0 for the start)"))?
            }
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=tijori_core::audit::MAX_EXPORT).contains(n))
                    .ok_or_else(|| bad("limit takes a number from 1 to 100000"))?
            }
            _ => return Err(bad("unknown query parameter; use after, limit")),
        }
    }
    let summary = || "export the audit trail".to_owned();
    let guard = super::policy::guard(
        &s,
        &p,
        Guarded::AuditExport,
        "/v1/audit/export",
        b"",
        &headers,
        summary,
    );
    if let Some(pending) = guard.await? {
        return Ok(pending);
    }
    let (lines, n) = s.vault.export_audit(&auth, after, limit).await?;
    // The export's first record is the first after `after` still online (older ones may be
    // archived), so the range is named by where it starts.
    note_read(format!("seq after {after}"), n);
    let mut resp = lines.into_response();
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(resp)
}

/// A read of the trail says which records it handed out (their numbers, never a filter's
/// values: a card number typed where a token belongs must not reach the trail) and how many.
fn note_read(records: String, count: u64) {
    note_resource(records, None);
    note_count(count);
}
