//! `/v1/users`: operators' accounts, managed by administrators, and the training report.
//! Answers never hold a password hash or TOTP secret; the enrollment code appears only in the
//! answers that issue one.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use tijori_core::operator::{NewUser, User};
use tijori_core::policy::{authorize, Manage, ReadAudit};
use tijori_core::{parse_rfc3339, rfc3339, Principal, Vault};
use tijori_types::ErrorCode;

use crate::context::note_resource;
use crate::extract::{one_number, parse_json, Body, Caller, PathParam};
use crate::{ApiError, AppState};

/// An operator as the API shows it.
pub(crate) fn view(u: &User) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "roles": u.roles,
        "status": u.status.as_str(),
        "created_at": rfc3339(u.created_at),
        "last_login_at": u.last_login_at.map(rfc3339),
        "locked_until": u.locked_until.map(rfc3339),
        "training_valid_until": u.training_valid_until.map(rfc3339),
    })
}

fn with_code(new: &NewUser) -> Value {
    let mut v = view(&new.user);
    v["enrollment_code"] = json!(new.enrollment_code.as_str());
    v["enrollment_expires_at"] = json!(rfc3339(new.enrollment_expires_at));
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    username: String,
    roles: Vec<String>,
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let req: CreateUserRequest = parse_json(&body)?;
    let new = s
        .vault
        .create_user(&auth, &req.username, &req.roles)
        .await?;
    note_resource(new.user.id.clone(), None);
    tracing::info!(by = %p.id, user = %new.user.id, "operator created");
    Ok((StatusCode::CREATED, Json(with_code(&new))).into_response())
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let items: Vec<Value> = s.vault.users(&auth).await?.iter().map(view).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

/// The account changes that take nothing but the id.
#[derive(Clone, Copy)]
enum Change {
    Disable,
    Enable,
    Unlock,
}

async fn change(s: AppState, p: Principal, id: String, what: Change) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let v: &Vault = &s.vault;
    let user = match what {
        Change::Disable => v.set_user_disabled(&auth, &id, true).await?,
        Change::Enable => v.set_user_disabled(&auth, &id, false).await?,
        Change::Unlock => v.unlock_user(&auth, &id).await?,
    };
    Ok(Json(view(&user)).into_response())
}

pub(crate) async fn disable(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    change(s, p, id, Change::Disable).await
}

pub(crate) async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    change(s, p, id, Change::Enable).await
}

pub(crate) async fn unlock(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    change(s, p, id, Change::Unlock).await
}

pub(crate) async fn reset(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let new = s.vault.reset_user(&auth, &id).await?;
    Ok(Json(with_code(&new)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TrainingRequest {
    completed_at: String,
}

pub(crate) async fn training(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let req: TrainingRequest = parse_json(&body)?;
    let completed = parse_rfc3339(&req.completed_at).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            "completed_at must be an RFC 3339 time, e.g. 2026-11-20T00:00:00Z",
        )
    })?;
    let user = s.vault.record_training(&auth, &id, completed).await?;
    Ok(Json(view(&user)).into_response())
}

/// `GET /v1/reports/training?within_days=30`: who has lapsed or lapses soon (PCI DSS 12.6).
pub(crate) async fn training_report(
    State(s): State<AppState>,
    Caller(p): Caller,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let auth = authorize::<ReadAudit>(&p)?;
    let within = one_number(
        query,
        "within_days",
        0..=3660,
        30,
        "the only query parameter is within_days, a whole number of days from 0 to 3660",
    )?;
    let items: Vec<Value> = s
        .vault
        .training_report(&auth, within)
        .await?
        .iter()
        .map(|u| {
            let mut v = view(u);
            v["lapsed"] = json!(u.training_lapsed(s.vault.now()));
            v
        })
        .collect();
    Ok(Json(json!({ "within_days": within, "items": items })).into_response())
}
