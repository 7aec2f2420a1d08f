//! `/v1/sys/keys`: the key report, rotation, and the steps of the rewrap and re-encrypt jobs
//! (admin only). A job runs one step per call and answers what is left, so a client (`tijori
//! keys rewrap`) shows progress and simply calls again; a crash between steps loses nothing.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use tijori_core::approval::Guarded;
use tijori_core::policy::{authorize, Manage};
use tijori_core::rotation::{JobStep, KeyKind, MAX_STEP};
use tijori_core::CoreError;

use crate::context::{note_count, note_resource};
use crate::extract::{parse_json, Body, Caller};
use crate::{ApiError, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    key: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StepRequest {
    limit: Option<usize>,
}

pub(crate) async fn report(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    Ok(Json(s.vault.key_report(&auth).await?).into_response())
}

pub(crate) async fn rotate(
    State(s): State<AppState>,
    Caller(p): Caller,
    headers: axum::http::HeaderMap,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let req: RotateRequest = parse_json(&body)?;
    let kind = KeyKind::parse(&req.key).ok_or(CoreError::InvalidRequest(
        "key must be \"kek\" (key-encryption key) or \"data\" (the vault-wide data key)",
    ))?;
    note_resource(req.key.clone(), None);
    let summary = || format!("rotate the {} key", req.key);
    let guarded = super::policy::guard(
        &s,
        &p,
        Guarded::KeyRotation,
        "/v1/sys/keys/rotate",
        &body,
        &headers,
        summary,
    );
    if let Some(pending) = guarded.await? {
        return Ok(pending);
    }
    let version = s.vault.rotate_key(&auth, kind).await?;
    tracing::warn!(by = %p.id, key = %req.key, version, "key rotated");
    Ok(Json(serde_json::json!({"key": req.key, "version": version})).into_response())
}

/// The step size a request asks for (an empty body takes the largest).
fn step_limit(body: &[u8]) -> Result<usize, ApiError> {
    let req: StepRequest = if body.is_empty() {
        StepRequest::default()
    } else {
        parse_json(body)?
    };
    match req.limit {
        Some(n) if !(1..=MAX_STEP).contains(&n) => {
            Err(CoreError::InvalidRequest("limit must be 1 to 1000").into())
        }
        Some(n) => Ok(n),
        None => Ok(MAX_STEP),
    }
}

fn answer(step: JobStep) -> Response {
    note_count(step.moved);
    Json(step).into_response()
}

pub(crate) async fn rewrap(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let limit = step_limit(&body)?;
    Ok(answer(s.vault.rewrap_step(&auth, limit).await?))
}

pub(crate) async fn reencrypt(
    State(s): State<AppState>,
    Caller(p): Caller,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    let limit = step_limit(&body)?;
    Ok(answer(s.vault.reencrypt_step(&auth, limit).await?))
}
