//! System endpoints: health, the OpenAPI document, metrics, seal, and the fallbacks.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tijori_core::policy::{authorize, Manage};
use tijori_types::api::HealthResponse;
use tijori_types::ErrorCode;

use crate::extract::Caller;
use crate::{ApiError, AppState};

pub(crate) async fn health(State(s): State<AppState>) -> Response {
    let sealed = s.vault.is_sealed();
    let body = HealthResponse {
        status: if sealed { "sealed" } else { "ok" }.to_owned(),
        sealed,
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let status = if sealed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

pub(crate) async fn openapi() -> Response {
    Json(crate::openapi::document(env!("CARGO_PKG_VERSION"))).into_response()
}

pub(crate) async fn metrics(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    authorize::<Manage>(&p)?;
    let text = s.metrics.render(s.vault.is_sealed());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

pub(crate) async fn seal(
    State(s): State<AppState>,
    Caller(p): Caller,
) -> Result<Response, ApiError> {
    let auth = authorize::<Manage>(&p)?;
    // Sign what the trail holds while the signing key is still in memory.
    if let Err(e) = s.vault.checkpoint_audit().await {
        tracing::warn!(error = %e, "no audit checkpoint before sealing");
    }
    s.vault.seal(&auth)?;
    tracing::warn!(principal = %p.id, "vault sealed: all keys dropped from memory");
    Ok(Json(serde_json::json!({"sealed": true})).into_response())
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such endpoint; see GET /v1/openapi.json",
    )
}

pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this endpoint does not take that method; see GET /v1/openapi.json",
    )
}
