//! Per-request context: a fresh random request id (in the `x-request-id` header, in error
//! bodies, in the log line), one access-log line without bodies or values, and metrics.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;

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
    let mut resp = REQUEST_ID.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    state.metrics.observe(method.as_str(), &route, status);
    tracing::info!(request_id = %id, %method, %route, status, micros = started.elapsed().as_micros() as u64, "request");
    resp
}
