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

/// `POST /v1/principals`. The restrictions are optional: none means the key works from
/// anywhere, without a client certificate, until the principal is disabled.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePrincipalRequest {
    pub name: String,
    pub roles: Vec<String>,
    /// RFC 3339, in the future: from then on the principal no longer authenticates.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Networks in CIDR form (`10.0.0.0/8`, `::1/128`) the principal may call from; at most 64.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    /// Hex SHA-256 of the DER client certificate the principal must present over mutual TLS.
    #[serde(default)]
    pub client_cert_sha256: Option<String>,
}

/// `POST /v1/principals/{id}/rotate`; the body may be left out.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RotatePrincipalRequest {
    /// How long the replaced key keeps working: 0 to 2592000 (30 days), by default 86400.
    #[serde(default)]
    pub grace_seconds: Option<u64>,
}

/// `POST /v1/principals/{id}/restrict`: the principal's restrictions as a whole. Every field is
/// required, so that leaving one out is an error rather than a silent change; `null` (or `[]`)
/// lifts a restriction.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictPrincipalRequest {
    #[serde(deserialize_with = "present")]
    pub expires_at: Option<String>,
    pub allowed_cidrs: Vec<String>,
    #[serde(deserialize_with = "present")]
    pub client_cert_sha256: Option<String>,
}

/// A nullable field that must be present: serde lets a missing `Option` default to `None`
/// unless the field has its own deserializer.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// A principal as the API shows it; `api_key` only in the answer that created it or gave it a
/// new key. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PrincipalResponse {
    pub id: String,
    pub name: String,
    pub roles: Vec<String>,
    pub created_at: String,
    pub disabled: bool,
    /// From then on the principal no longer authenticates; `null`: never.
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Networks it may call from; empty: any.
    #[serde(default)]
    pub allowed_cidrs: Vec<String>,
    /// Hex SHA-256 of the client certificate it must present; `null`: none needed.
    #[serde(default)]
    pub client_cert_sha256: Option<String>,
    /// Until when the key replaced by the last rotation still works; only while it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_key_expires_at: Option<String>,
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
            .field("expires_at", &self.expires_at)
            .field("allowed_cidrs", &self.allowed_cidrs)
            .field("client_cert_sha256", &self.client_cert_sha256)
            .field("previous_key_expires_at", &self.previous_key_expires_at)
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
            expires_at: None,
            allowed_cidrs: vec!["10.0.0.0/8".into()],
            client_cert_sha256: None,
            previous_key_expires_at: None,
            api_key: Some("tjk_secretsecret".into()),
        };
        assert!(!format!("{p:?}").contains("secretsecret"));
    }

    #[test]
    fn principal_requests_optional_and_required_fields() {
        let c: CreatePrincipalRequest =
            serde_json::from_str(r#"{"name":"svc","roles":["tokenizer"]}"#).unwrap();
        assert!(c.expires_at.is_none() && c.allowed_cidrs.is_empty());
        assert!(c.client_cert_sha256.is_none());
        let r: RotatePrincipalRequest = serde_json::from_str("{}").unwrap();
        assert!(r.grace_seconds.is_none());
        assert!(serde_json::from_str::<RotatePrincipalRequest>(r#"{"grace":1}"#).is_err());
        let full = r#"{"expires_at":null,"allowed_cidrs":[],"client_cert_sha256":null}"#;
        let r: RestrictPrincipalRequest = serde_json::from_str(full).unwrap();
        assert!(r.expires_at.is_none() && r.client_cert_sha256.is_none());
        for partial in [
            r#"{"allowed_cidrs":[],"client_cert_sha256":null}"#,
            r#"{"expires_at":null,"client_cert_sha256":null}"#,
            r#"{"expires_at":null,"allowed_cidrs":[]}"#,
        ] {
            let e = serde_json::from_str::<RestrictPrincipalRequest>(partial).unwrap_err();
            assert!(e.to_string().starts_with("missing field"), "{partial}: {e}");
        }
    }
}
