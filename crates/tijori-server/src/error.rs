//! The single error boundary: every failure becomes `{"error": {code, message, request_id}}`
//! with the status API.md gives its code. Internal causes are logged here and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tijori_core::CoreError;
use tijori_types::api::{ErrorBody, ErrorEnvelope};
use tijori_types::ErrorCode;

use crate::context::request_id;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// For `rate_limited`: the seconds sent in `retry-after`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    /// The error object, with this request's id.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
            request_id: request_id(),
        }
    }

    /// `{"error": {...}}`: an error answer's body, or a failed batch item.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope { error: self.body() }
    }

    /// Status and JSON bytes, for answers that must be saved (idempotency).
    pub fn to_parts(&self) -> (StatusCode, Vec<u8>) {
        crate::context::note_reason(self.code);
        let body = serde_json::to_vec(&self.envelope()).unwrap_or_default();
        (self.status(), body)
    }
}

/// API.md's status for each code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::MalformedJson | ErrorCode::UnknownField | ErrorCode::InvalidRequest => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::TrainingExpired => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::IdempotencyConflict | ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorCode::InvalidCardNumber
        | ErrorCode::InvalidIban
        | ErrorCode::InvalidCnic
        | ErrorCode::InvalidPkMobile
        | ErrorCode::InvalidValue
        | ErrorCode::UnsupportedFormat => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Sealed | ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> ApiError {
        match &e {
            CoreError::Unavailable(cause) => {
                tracing::error!(request_id = %request_id(), %cause, "storage unavailable")
            }
            CoreError::Internal(cause) => {
                tracing::error!(request_id = %request_id(), %cause, "internal error")
            }
            _ => {}
        }
        let retry_after = match e {
            CoreError::RateLimited { retry_after, .. } => Some(retry_after),
            _ => None,
        };
        ApiError {
            code: e.code(),
            message: e.public_message(),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = self.to_parts();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full in-memory store is a `503 unavailable` that says why, unlike a storage failure,
    /// whose cause stays in the log.
    #[test]
    fn a_full_store_answers_503_with_its_own_message() {
        let full = ApiError::from(CoreError::Full("the store is full; retry shortly"));
        assert_eq!(
            (full.status(), full.code),
            (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable)
        );
        assert_eq!(full.message, "the store is full; retry shortly");
        let failed = ApiError::from(CoreError::Unavailable("disk I/O error at /data".into()));
        assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!failed.message.contains("/data"), "{}", failed.message);
    }
}
