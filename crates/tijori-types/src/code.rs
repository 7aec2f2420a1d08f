//! Stable machine-readable error codes of the HTTP API (API.md). Renaming one is a breaking change.

/// Every error code the API can answer with. The HTTP status lives with the server's error
/// boundary; this enum only fixes the spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    MalformedJson,
    UnknownField,
    InvalidRequest,
    Unauthenticated,
    Forbidden,
    TrainingExpired,
    NotFound,
    MethodNotAllowed,
    IdempotencyConflict,
    /// The name is taken, or the object is not in a state that allows the request.
    Conflict,
    PayloadTooLarge,
    /// The client took too long to send the request.
    RequestTimeout,
    InvalidCardNumber,
    InvalidIban,
    InvalidCnic,
    InvalidPkMobile,
    InvalidValue,
    UnsupportedFormat,
    RateLimited,
    Sealed,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// Every code, for reading one back from its spelling ([`ErrorCode::parse`]); a new code
    /// goes here too.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::MalformedJson,
        ErrorCode::UnknownField,
        ErrorCode::InvalidRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::TrainingExpired,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::IdempotencyConflict,
        ErrorCode::Conflict,
        ErrorCode::PayloadTooLarge,
        ErrorCode::RequestTimeout,
        ErrorCode::InvalidCardNumber,
        ErrorCode::InvalidIban,
        ErrorCode::InvalidCnic,
        ErrorCode::InvalidPkMobile,
        ErrorCode::InvalidValue,
        ErrorCode::UnsupportedFormat,
        ErrorCode::RateLimited,
        ErrorCode::Sealed,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The code spelled `text`, as a saved answer holds it.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The wire spelling, as in API.md.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TrainingExpired => "training_expired",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::IdempotencyConflict => "idempotency_conflict",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::InvalidCardNumber => "invalid_card_number",
            ErrorCode::InvalidIban => "invalid_iban",
            ErrorCode::InvalidCnic => "invalid_cnic",
            ErrorCode::InvalidPkMobile => "invalid_pk_mobile",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::UnsupportedFormat => "unsupported_format",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Sealed => "sealed",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_reads_back_from_its_spelling() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}
