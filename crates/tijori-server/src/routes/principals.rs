//! `/v1/principals`: service principals and their API keys (admin only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use tijori_core::policy::{authorize, Manage};
use tijori_core::{rfc3339, Principal};
use tijori_types::api::{CreatePrincipalRequest, PrincipalResponse};

use crate::context::note_resource;
use crate::extract::{parse_json, Body, Caller, PathParam};
use crate::{ApiError, AppState};

fn view(p: &Principal, api_key: Option<String>) -> PrincipalResponse {
    PrincipalResponse {
        id: p.id.clone(),
        name: p.name.clone(),
        roles: p.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        created_at: rfc3339(p.created_at),
        disabled: p.disabled,
        api_key,
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
    note_resource(created.principal.id.clone(), None);
    tracing::info!(by = %p.id, principal = %created.principal.id, "principal created");
    Ok((
        StatusCode::CREATED,
        Json(view(&created.principal, Some(created.api_key))),
    )
        .into_response())
}

pub(crate) async fn list(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let items: Vec<_> = s
        .vault
        .principals(&auth)
        .await?
        .iter()
        .map(|p| view(p, None))
        .collect();
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

async fn set_disabled(
    s: AppState,
    p: Principal,
    id: String,
    disabled: bool,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let updated = s.vault.set_principal_disabled(&auth, &id, disabled).await?;
    note_resource(id.clone(), None);
    tracing::info!(by = %p.id, principal = %id, disabled, "principal updated");
    Ok(Json(view(&updated, None)).into_response())
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
