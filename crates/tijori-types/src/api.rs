//! Request and response bodies of the HTTP API, exactly as API.md names their fields.
//! Requests refuse unknown fields so a typo is an error, not a silently ignored option.
//! Plaintext values appear here only inside `value` fields, and none of these types is logged.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// `format` of a tokenization request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    #[default]
    Random,
    Preserving,
}

/// `POST /v1/tokens` and each item of `POST /v1/tokens/batch`.
///
/// `type` is kept as a string so that an unknown type is a 422 with our own message rather
/// than a serde error. No `Debug`: `value` is a customer's secret.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizeRequest {
    #[serde(rename = "type")]
    pub data_type: String,
    pub value: String,
    #[serde(default)]
    pub format: TokenFormat,
    #[serde(default)]
    pub deterministic: bool,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, Json>>,
}

/// A token's public description: what `POST /v1/tokens` answers and `GET /v1/tokens/{token}` shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub token: String,
    #[serde(rename = "type")]
    pub data_type: String,
    pub masked: String,
    pub subject: Option<String>,
    pub created_at: String,
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, Json>>,
}

/// `POST /v1/tokens/batch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub items: Vec<Json>,
}

/// `POST /v1/detokenize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetokenizeRequest {
    pub tokens: Vec<String>,
}

/// `POST /v1/tokens/search`. No `Debug`: `value` is a secret.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    #[serde(rename = "type")]
    pub data_type: String,
    pub value: String,
}

/// `POST /v1/principals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipalRequest {
    pub name: String,
    pub roles: Vec<String>,
}

/// A principal as the API shows it; `api_key` only in the answer that created it.
/// `Debug` leaves the key out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalResponse {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub created_at: String,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
}

impl std::fmt::Debug for PrincipalResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalResponse")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("disabled", &self.disabled)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// The error object of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    pub request_id: String,
}

/// `{"error": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthResponse {
    pub status: String,
    pub sealed: bool,
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenize_request_defaults_and_unknown_fields() {
        let r: TokenizeRequest =
            serde_json::from_str(r#"{"type":"card_number","value":"4111111111111111"}"#).unwrap();
        assert_eq!(r.format, TokenFormat::Random);
        assert!(!r.deterministic);
        assert!(r.subject.is_none() && r.ttl_seconds.is_none() && r.metadata.is_none());
        let err =
            serde_json::from_str::<TokenizeRequest>(r#"{"type":"text","value":"x","vaule":1}"#);
        assert!(err.is_err());
    }

    #[test]
    fn debug_never_shows_an_api_key() {
        let p = PrincipalResponse {
            id: "prn_1".into(),
            name: "svc".into(),
            roles: vec!["tokenizer".into()],
            created_at: "2026-01-01T00:00:00Z".into(),
            disabled: false,
            api_key: Some("tjk_secretsecret".into()),
        };
        assert!(!format!("{p:?}").contains("secretsecret"));
    }
}
