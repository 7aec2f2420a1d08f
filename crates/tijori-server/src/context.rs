//! Per-request context: a fresh random request id (in the `x-request-id` header, in error
//! bodies, in the log line), one access-log line without bodies or values, and metrics.
//! It also reads the whole request body (within the limit) before anything answers: a refusal
//! sent before the body is read would leave the rest of it on a keep-alive connection, and the
//! client's next request on that connection would fail.

use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tijori_types::ErrorCode;

use crate::{ApiError, AppState};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// This request's id (empty outside a request).
pub fn request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
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

pub(crate) async fn request_context(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let id = new_id();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let limit = state.config.body_limit;
    let mut resp = REQUEST_ID
        .scope(id.clone(), buffered(req, next, limit))
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    state.metrics.observe(method.as_str(), &route, status);
    tracing::info!(request_id = %id, %method, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    resp
}

/// How much more than the limit is read (and dropped) so that a client sending a too-large
/// body still hears its 413 on a live connection; past this the connection is cut at once.
const DRAIN_FACTOR: usize = 4;

/// Runs the request with its body read in full first; past `limit`, answers 413.
async fn buffered(req: Request, next: Next, limit: usize) -> Response {
    let (parts, body) = req.into_parts();
    let drain = limit.saturating_mul(DRAIN_FACTOR);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let read = match declared {
        Some(n) if n > drain as u64 => None,
        _ => axum::body::to_bytes(body, drain).await.ok(),
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
