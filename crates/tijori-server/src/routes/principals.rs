//! `/v1/principals`: service principals, their API keys and the restrictions those keys are held
//! to (admin only). An API key appears only in the answer that created it or rotated it in; the
//! request context audits every call, with the principal concerned as its resource.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tijori_core::policy::{authorize, Manage};
use tijori_core::{CoreError, NewPrincipal};
use tijori_types::api::{
    CreatePrincipalRequest, PrincipalResponse, RestrictPrincipalRequest, RotatePrincipalRequest,
};
use tijori_types::ErrorCode;

use crate::context::note_resource;
use crate::extract::{parse_json, Body, Caller, Origin, PathParam};
use crate::{ApiError, AppState};

/// The core's `NotFound` speaks of tokens; here it is a principal.
fn principal_error(e: CoreError) -> ApiError {
    match e {
        CoreError::NotFound => ApiError::new(
            ErrorCode::NotFound,
            "no such principal; GET /v1/principals lists them",
        ),
        other => other.into(),
    }
}

/// The principal with its new API key, shown this once.
fn with_key(new: NewPrincipal) -> PrincipalResponse {
    PrincipalResponse {
        api_key: Some(new.api_key),
        ..new.principal
    }
}

pub(crate) async fn create(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let req: CreatePrincipalRequest = parse_json(&body)?;
    let created = s.vault.create_principal(&auth, req).await?;
    let id = created.principal.id.clone();
    note_resource(id.clone(), None);
    tracing::info!(by = %p.id, principal = %id, "principal created");
    Ok((StatusCode::CREATED, Json(with_key(created))).into_response())
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let items = s.vault.principals(&auth).await?;
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

async fn set_disabled(
    s: AppState,
    p: tijori_core::Principal,
    id: String,
    disabled: bool,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let updated = s
        .vault
        .set_principal_disabled(&auth, &id, disabled)
        .await
        .map_err(principal_error)?;
    tracing::info!(by = %p.id, principal = %id, disabled, "principal updated");
    Ok(Json(updated).into_response())
}

pub(crate) async fn disable(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    set_disabled(s, p, id, true).await
}

pub(crate) async fn enable(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
) -> Result<Response, ApiError> {
    set_disabled(s, p, id, false).await
}

/// `POST /v1/principals/{id}/rotate`: a new API key; the old one works on for the grace period.
/// The body may be empty.
pub(crate) async fn rotate(
    State(s): State<AppState>,
    Caller(p): Caller,
    PathParam(id): PathParam,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let req: RotatePrincipalRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotatePrincipalRequest::default()
    } else {
        parse_json(&body)?
    };
    let rotated = s
        .vault
        .rotate_principal_key(&auth, &id, req)
        .await
        .map_err(principal_error)?;
    let grace_until = rotated.principal.previous_key_expires_at.clone();
    tracing::info!(by = %p.id, principal = %id, grace_until = ?grace_until, "API key rotated");
    Ok(Json(with_key(rotated)).into_response())
}

/// `POST /v1/principals/{id}/restrict`: replaces expiry, networks and certificate binding.
pub(crate) async fn restrict(
    State(s): State<AppState>,
    Caller(p): Caller,
    Origin(source): Origin,
    PathParam(id): PathParam,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    note_resource(id.clone(), None);
    let req: RestrictPrincipalRequest = parse_json(&body)?;
    let updated = s
        .vault
        .restrict_principal(&auth, &id, req, &source)
        .await
        .map_err(principal_error)?;
    tracing::info!(
        by = %p.id,
        principal = %id,
        expires_at = ?updated.expires_at,
        networks = updated.allowed_cidrs.len(),
        client_cert = updated.client_cert_sha256.is_some(),
        "principal restrictions changed"
    );
    Ok(Json(updated).into_response())
}
