//! Extractors: the authenticated caller, and JSON bodies parsed with our error format. A JSON
//! error message names the problem and the place, never the submitted content.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use tijori_core::operator::SESSION_PREFIX;
use tijori_core::{CoreError, Principal, Source};
use tijori_types::ErrorCode;

use crate::{ApiError, AppState};

/// The principal behind the request's bearer credential.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
        let unauthenticated = || ApiError::from(CoreError::Unauthenticated);
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(unauthenticated)?;
        let value = header.to_str().map_err(|_| unauthenticated())?;
        let (scheme, credential) = value.split_once(' ').ok_or_else(unauthenticated)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(unauthenticated());
        }
        let credential = credential.trim();
        let principal = if credential.starts_with(SESSION_PREFIX) {
            // An operator's session: looked up in the store (shared by every node). Storage
            // trouble is 503, not a reason to tell the operator to log in again.
            state
                .vault
                .authenticate_session(credential)
                .await
                .map_err(|e| match e {
                    CoreError::Unavailable(_) | CoreError::SessionExpired => ApiError::from(e),
                    _ => unauthenticated(),
                })?
        } else {
            // An API key or the root token, held to its principal's bindings (networks, client
            // certificate) against what the connection vouches for.
            state
                .vault
                .authenticate_from(credential, &Origin::of(parts).0)
                .map_err(|_| unauthenticated())?
        };
        crate::context::note_caller(&principal.id, principal.kind);
        Ok(Caller(principal))
    }
}

/// Where a request comes from, as its connection vouches for it ([`Source`]): the peer
/// address, and the fingerprint of a client certificate verified over mutual TLS.
pub struct Origin(pub Source);

impl Origin {
    fn of(parts: &Parts) -> Origin {
        Origin(Source {
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            client_cert_sha256: parts
                .extensions
                .get::<crate::tls::PeerCertificate>()
                .map(|c| c.sha256),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Origin, Self::Rejection> {
        Ok(Origin::of(parts))
    }
}

/// The one query parameter `name` of an endpoint that takes only it: a whole number in
/// `range`, or `default` when absent. Another parameter or a value out of range is refused
/// with `message`.
pub(crate) fn one_number(
    query: Option<String>,
    name: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    message: &'static str,
) -> Result<i64, ApiError> {
    let bad = || ApiError::new(ErrorCode::InvalidRequest, message);
    let mut value = default;
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k != name {
            return Err(bad());
        }
        value = v
            .parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

/// One path segment (a token, a principal id), refused in our error format if it does not
/// decode.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathParam, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(s)| PathParam(s))
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "the path segment does not decode; percent-encode it as UTF-8",
                )
            })
    }
}

/// The raw body. The request context has already read it and refused it past the limit.
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Body, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "the request body could not be read",
                )
            })
    }
}

/// Parses a JSON body into `T`, refusing unknown fields, with our error codes. Every body is a
/// JSON object: serde would also build a struct from an array of its fields in order, which no
/// endpoint documents, so an array is refused.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(not_an_object("the body"));
    }
    serde_json::from_slice(bytes).map_err(|e| json_error(&e, fields_of::<T>))
}

/// Parses a JSON value (a batch item, a role's rule) into `T`, with the same error codes; it
/// must be a JSON object too.
pub fn parse_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, ApiError> {
    if !v.is_object() {
        return Err(not_an_object("an item"));
    }
    serde_json::from_value(v).map_err(|e| json_error(&e, fields_of::<T>))
}

fn not_an_object(what: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("{what} must be a JSON object ({{...}}); see GET /v1/openapi.json for the schema"),
    )
}

/// `fields`: the names the body's type accepts, for the hint of an unknown-field error.
fn json_error(e: &serde_json::Error, fields: fn() -> &'static [&'static str]) -> ApiError {
    match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            format!(
                "the body is not valid JSON (line {}, column {}); send a JSON object",
                e.line(),
                e.column()
            ),
        ),
        Category::Data => {
            let text = e.to_string();
            if text.starts_with("unknown field `") {
                // Never echo the name: a client may have put a value where a name belongs. The
                // rest of serde's message cannot be told apart from a name made to look like
                // it, so the accepted names come from the type itself.
                let hint = match fields() {
                    [] => String::new(),
                    names => format!(" (accepted: {})", names.join(", ")),
                };
                ApiError::new(
                    ErrorCode::UnknownField,
                    format!("the body has a field this endpoint does not accept{hint}; remove it"),
                )
            } else if let Some(rest) = text.strip_prefix("missing field `") {
                let name = rest.split('`').next().unwrap_or("");
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("the body lacks the required field '{name}'"),
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    "a field has the wrong JSON type or an unknown value; see GET /v1/openapi.json for the schema",
                )
            }
        }
    }
}

/// The field names `T` accepts, as its `Deserialize` impl declares them to
/// `deserialize_struct`; none for a type that is not a plain struct.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    use serde::de::{Error, Visitor};
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Error::custom("only the fields were wanted"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Error::custom("only the fields were wanted"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use tijori_types::api::TokenizeRequest;

    #[test]
    fn json_errors_have_our_codes_and_never_echo_values() {
        let cases = [
            (
                r#"{"type":"card_number","value":"4111111111111111""#,
                ErrorCode::MalformedJson,
            ),
            (
                r#"{"type":"card_number","value":"4111111111111111","vaule":1}"#,
                ErrorCode::UnknownField,
            ),
            // A name made to look like serde's list of accepted names.
            (
                r#"{"type":"text","value":"x","a`, expected `4111111111111111":1}"#,
                ErrorCode::UnknownField,
            ),
            (
                r#"{"type":"text","value":"x","note expected 4111111111111111":1}"#,
                ErrorCode::UnknownField,
            ),
            (r#"{"type":"card_number"}"#, ErrorCode::InvalidRequest),
            (
                r#"{"type":"card_number","value":4111111111111111}"#,
                ErrorCode::InvalidRequest,
            ),
            (
                r#"{"type":"card_number","value":"x","format":"4111111111111111"}"#,
                ErrorCode::InvalidRequest,
            ),
            ("", ErrorCode::MalformedJson),
            (
                r#" ["card_number","4111111111111111"]"#,
                ErrorCode::InvalidRequest,
            ),
        ];
        for (body, code) in cases {
            let err = parse_json::<TokenizeRequest>(body.as_bytes())
                .err()
                .unwrap();
            assert_eq!(err.code, code, "{body}");
            assert!(!err.message.contains("4111111111111111"), "{}", err.message);
            if code == ErrorCode::UnknownField {
                let accepted = "(accepted: type, value, format, deterministic, subject, ttl_seconds, metadata)";
                assert!(err.message.contains(accepted), "{}", err.message);
            }
        }
    }
}
