//! `/v1/auth`: operators enroll, log in, change their password and log out. Enrollment and
//! login need no credential (they make one). Passwords, codes and session tokens are held in
//! zeroizing strings and never logged; a failed login is audited against the account it
//! named, never with what was typed.

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use tijori_core::{CoreError, PrincipalKind};
use zeroize::Zeroizing;

use super::users::view;
use crate::context::{note_caller, note_resource};
use crate::extract::{parse_json, Body, Caller};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollRequest {
    username: String,
    enrollment_code: Zeroizing<String>,
    password: Zeroizing<String>,
}

pub(crate) async fn enroll(
    State(s): State<AppState>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: EnrollRequest = parse_json(&body)?;
    let e = s
        .vault
        .enroll_user(&req.username, &req.enrollment_code, req.password)
        .await?;
    note_resource(e.user_id.clone(), None);
    Ok(Json(json!({
        "user_id": e.user_id,
        "otpauth_uri": e.otpauth_uri.as_str(),
        "secret": e.secret.as_str(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: Zeroizing<String>,
    totp: Zeroizing<String>,
}

pub(crate) async fn login(
    State(s): State<AppState>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: LoginRequest = parse_json(&body)?;
    let attempt = s.vault.login(&req.username, req.password, &req.totp).await;
    if let Some(id) = &attempt.user_id {
        note_resource(id.clone(), None);
    }
    let session = attempt.result?;
    note_caller(&session.user.id, PrincipalKind::Operator);
    Ok(Json(json!({
        "session_token": session.token.as_str(),
        "idle_timeout_seconds": session.idle_timeout_secs,
        "user": view(&session.user),
    }))
    .into_response())
}

/// The bearer credential of the request (already authenticated by [`Caller`]).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    value.split_once(' ').map(|(_, c)| c.trim())
}

pub(crate) async fn logout(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if p.kind != PrincipalKind::Operator {
        return Err(CoreError::InvalidRequest(
            "only an operator's session can be logged out; API keys are disabled with POST /v1/principals/{id}/disable",
        )
        .into());
    }
    if let Some(token) = bearer(&headers) {
        s.vault.logout(token).await?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    current_password: Zeroizing<String>,
    new_password: Zeroizing<String>,
}

pub(crate) async fn password(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    if p.kind != PrincipalKind::Operator {
        return Err(CoreError::InvalidRequest(
            "only operators have passwords; log in as one (POST /v1/auth/login)",
        )
        .into());
    }
    let req: PasswordRequest = parse_json(&body)?;
    s.vault
        .change_password(&p.id, req.current_password, req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /v1/auth/session`: who the credential names, for any caller.
pub(crate) async fn whoami(Caller(p): Caller) -> Result<Response, ApiError> {
    Ok(Json(json!({
        "id": p.id,
        "name": p.name,
        "kind": p.kind.as_str(),
        "roles": p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "training_lapsed": p.training_lapsed,
    }))
    .into_response())
}
