//! `/v1/roles` (custom roles in the policy language, versioned) and `/v1/approvals` (dual
//! control). [`guard`] is the one place a guarded request is either let through with a used
//! approval, or turned into a pending approval answered with `202`.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tijori_core::approval::{fingerprint, Approval, Guarded};
use tijori_core::policy::{authorize, validate_rules, Manage, ReadAudit, RoleView, Rule};
use tijori_core::{rfc3339, Principal};
use tijori_types::ErrorCode;

use crate::context::{note_approval, note_resource};
use crate::extract::{one_number, parse_json, parse_value, Body, Caller, PathParam};
use crate::{ApiError, AppState};

/// The header that names the approval a repeated guarded request uses.
pub(crate) const APPROVAL_HEADER: &str = "x-tijori-approval";

fn approval_view(a: &Approval) -> Value {
    json!({
        "id": a.id,
        "operation": a.operation,
        "summary": a.summary,
        "requested_by": a.requested_by,
        "requested_at": rfc3339(a.requested_at),
        "expires_at": rfc3339(a.expires_at),
        "status": a.status,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at.map(rfc3339),
    })
}

/// Longest approval id the `x-tijori-approval` header may carry (ids are `apr_` and 24 hex).
const MAX_APPROVAL_ID: usize = 64;

/// The `x-tijori-approval` header, if sent: an approval id of 1 to 64 visible ASCII characters.
/// Every operation that documents the header checks it, whether or not dual control guards the
/// operation now, so a malformed header is a clear `400` rather than silently ignored.
pub(crate) fn approval_id(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(APPROVAL_HEADER) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .filter(|id| (1..=MAX_APPROVAL_ID).contains(&id.len()))
        .filter(|id| id.bytes().all(|b| b.is_ascii_graphic()))
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "the x-tijori-approval header takes the id of an approval (1 to 64 visible \
                 characters, as POST /v1/approvals/{id}/approve named it); leave it out when \
                 no approval is needed",
            )
        })
}

/// Dual control for a guarded request: `Ok(None)` when it may go ahead (not guarded, or the
/// `x-tijori-approval` header names an approval for exactly this request, now spent), or the
/// `202` answer holding a new pending approval.
pub(crate) async fn guard(
    s: &AppState,
    p: &Principal,
    op: Guarded,
    path: &str,
    body: &[u8],
    headers: &HeaderMap,
    summary: impl FnOnce() -> String,
) -> Result<Option<Response>, ApiError> {
    let approval = approval_id(headers)?;
    if !s.vault.needs_approval(op) {
        return Ok(None);
    }
    let print = fingerprint(op, path, body);
    if let Some(id) = approval {
        s.vault.use_approval(p, op, print, id).await?;
        note_approval(id, false);
        tracing::info!(by = %p.id, approval = %id, operation = op.as_str(), "approved request done");
        return Ok(None);
    }
    let a = s.vault.request_approval(p, op, print, summary()).await?;
    note_approval(&a.id, true);
    let mut body = approval_view(&a);
    body["message"] = json!(format!(
        "{} needs a second operator's approval: they call POST /v1/approvals/{}/approve; then \
         repeat this same request with the header '{APPROVAL_HEADER}: {}'",
        op.as_str(),
        a.id,
        a.id
    ));
    Ok(Some((StatusCode::ACCEPTED, Json(body)).into_response()))
}

fn role_view(r: &RoleView) -> Value {
    json!({
        "name": r.name,
        "version": r.version,
        "builtin": r.builtin,
        "rules": r.rules,
        "changed_at": r.changed_at.map(rfc3339),
        "changed_by": r.changed_by,
        "deleted": r.deleted,
    })
}

pub(crate) async fn list_roles(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let items: Vec<Value> = s.vault.roles(&auth).await?.iter().map(role_view).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

pub(crate) async fn role_history(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(name): PathParam,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(format!("role:{name}"), None);
    let versions: Vec<Value> = s
        .vault
        .role_history(&auth, &name)
        .await?
        .iter()
        .map(role_view)
        .collect();
    Ok(Json(json!({ "name": name, "versions": versions })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutRoleRequest {
    /// Each a [`Rule`], read with `parse_value` so that a rule must be a JSON object.
    rules: Vec<Value>,
    expected_version: Option<i64>,
}

pub(crate) async fn put_role(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(name): PathParam,
    headers: HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(format!("role:{name}"), None);
    let req: PutRoleRequest = parse_json(&body)?;
    let rules = req
        .rules
        .into_iter()
        .map(parse_value)
        .collect::<Result<Vec<Rule>, _>>()?;
    // Checked before anyone is asked to approve it.
    validate_rules(&rules)?;
    let path = format!("/v1/roles/{name}");
    // The approver sees what they approve: the rules themselves.
    let summary = || {
        let rules = serde_json::to_string(&rules).unwrap_or_default();
        format!("define role {name} as {rules}")
    };
    if let Some(pending) = guard(
        &s,
        &p,
        Guarded::PolicyChange,
        &path,
        &body,
        &headers,
        summary,
    )
    .await?
    {
        return Ok(pending);
    }
    let role = s
        .vault
        .put_role(&auth, &name, Some(rules), req.expected_version)
        .await?;
    tracing::warn!(by = %p.id, role = %name, version = role.version, "role changed");
    Ok(Json(role_view(&role)).into_response())
}

pub(crate) async fn delete_role(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(name): PathParam,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(format!("role:{name}"), None);
    let path = format!("/v1/roles/{name}");
    let summary = || format!("delete role {name}");
    if let Some(pending) = guard(
        &s,
        &p,
        Guarded::PolicyChange,
        &path,
        b"DELETE",
        &headers,
        summary,
    )
    .await?
    {
        return Ok(pending);
    }
    let role = s.vault.put_role(&auth, &name, None, None).await?;
    tracing::warn!(by = %p.id, role = %name, version = role.version, "role deleted");
    Ok(Json(role_view(&role)).into_response())
}

/// `GET /v1/approvals?days=7`: requests of the last days, for administrators and auditors.
pub(crate) async fn list_approvals(
    State(s): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    authorize::<ReadAudit>(&p)?;
    let days = one_number(
        query,
        "days",
        1..=366,
        7,
        "the only query parameter is days, a whole number from 1 to 366",
    )?;
    let items: Vec<Value> = s
        .vault
        .approvals(days)
        .await?
        .iter()
        .map(approval_view)
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn decide(
    s: AppState,
    p: Principal,
    id: String,
    approve: bool,
) -> Result<Response, ApiError> {
    note_resource(id.clone(), None);
    let a = s.vault.decide_approval(&p, &id, approve).await?;
    tracing::warn!(by = %p.id, approval = %id, status = %a.status, "approval decided");
    Ok(Json(approval_view(&a)).into_response())
}

pub(crate) async fn approve(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    decide(s, p, id, true).await
}

pub(crate) async fn deny(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    decide(s, p, id, false).await
}
