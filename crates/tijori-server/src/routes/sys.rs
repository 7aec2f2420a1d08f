//! System endpoints: health, the OpenAPI document, metrics, seal, and the fallbacks.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tijori_core::policy::{authorize, Manage};
use tijori_core::seal::UnsealProgress;
use tijori_types::api::HealthResponse;
use tijori_types::ErrorCode;

use crate::context::note_resource;
use crate::extract::{parse_json, Body, Caller};
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

/// `GET /v1/health/ready`: whether this node can serve data requests now: unsealed, and its
/// store answers. For load balancers, which send traffic only to ready nodes.
pub(crate) async fn ready(State(s): State<AppState>) -> Response {
    let sealed = s.vault.is_sealed();
    let store = s.vault.check_store().await.is_ok();
    let ready = !sealed && store;
    let body = serde_json::json!({
        "status": if ready { "ready" } else if sealed { "sealed" } else { "unavailable" },
        "sealed": sealed,
        "store": if store { "ok" } else { "unavailable" },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
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

/// `POST /v1/sys/unseal`. No `Debug`: it holds a key share.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UnsealRequest {
    share: zeroize::Zeroizing<String>,
}

/// A custodian's key share towards unsealing. Needs no credential: the share is one, and while
/// sealed no principal could be trusted anyway. Audited without the share.
pub(crate) async fn unseal(
    State(s): State<AppState>,
    Body(body): Body,
) -> Result<Response, ApiError> {
    let req: UnsealRequest = parse_json(&body)?;
    let progress = s.vault.submit_share(&req.share).await?;
    note_resource(progress_note(&progress), None);
    if !progress.sealed {
        tracing::warn!("vault unsealed with custodians' key shares");
    }
    Ok(Json(progress).into_response())
}

/// `GET /v1/sys/unseal`: how many shares are in, of how many needed.
pub(crate) async fn unseal_progress(State(s): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(s.vault.unseal_progress().await?).into_response())
}

fn progress_note(p: &UnsealProgress) -> String {
    if p.sealed {
        format!("share {} of {}", p.progress, p.threshold)
    } else {
        "unsealed".into()
    }
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
