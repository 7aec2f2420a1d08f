//! Service principals' part of the OpenAPI document: creating them, listing them, disabling
//! them, rotating their API keys and binding those keys to an expiry, source networks and a
//! client certificate.

use serde_json::{json, Map, Value};

use super::{answer, body, fail, object, ok, param, request, schema_ref};

/// `(path, path item)` pairs.
pub(super) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/principals", json!({"post": create(), "get": list()})),
        (
            "/v1/principals/{id}/disable",
            json!({"post": set_disabled("disable",
            "Disable a principal")}),
        ),
        (
            "/v1/principals/{id}/enable",
            json!({"post": set_disabled("enable",
            "Enable a principal")}),
        ),
        ("/v1/principals/{id}/rotate", json!({"post": rotate()})),
        ("/v1/principals/{id}/restrict", json!({"post": restrict()})),
    ]
}

/// An answer holding the principal and its new `api_key`.
fn with_key(description: &str) -> Value {
    let schema = json!({"allOf": [schema_ref("Principal"), {"required": ["api_key"]}]});
    answer(
        description,
        Some(json!({"application/json": {"schema": schema}})),
    )
}

fn create() -> Value {
    json!({
        "operationId": "createPrincipal", "tags": ["principals"],
        "summary": "Create a service principal",
        "description": "Role: `admin`. Answers `201` with the principal and its `api_key`. The \
            key is shown this once and stored only as a hash: keep it safe. Optionally the \
            principal expires (`expires_at`), may call only from some networks \
            (`allowed_cidrs`), or must present a given client certificate over mutual TLS \
            (`client_cert_sha256`); a key used against these rules is answered \
            `401 unauthenticated` like a wrong one.",
        "requestBody": body("CreatePrincipalRequest"),
        "responses": {
            "201": with_key("The principal, with its API key."),
            "422": fail("Unprocessable"),
        },
    })
}

fn list() -> Value {
    json!({
        "operationId": "listPrincipals", "tags": ["principals"], "summary": "List principals",
        "description": "Role: `admin`. With each principal's restrictions and, during a \
            rotation's grace period, when its previous key stops working. API keys are never \
            shown here.",
        "responses": {"200": ok("All principals.", "PrincipalList")},
    })
}

/// `POST /v1/principals/{id}/disable` and `.../enable`; `action` is `disable` or `enable`.
fn set_disabled(action: &str, summary: &str) -> Value {
    json!({
        "operationId": format!("{action}Principal"), "tags": ["principals"], "summary": summary,
        "description": "Role: `admin`. A disabled principal's API keys are refused until the \
            principal is enabled again. Answers with the principal as it is now.",
        "parameters": [param("PrincipalId")],
        "responses": {
            "200": ok("The principal.", "Principal"),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

fn rotate() -> Value {
    let optional = json!({"required": false,
        "content": {"application/json": {"schema": schema_ref("RotatePrincipalRequest")}}});
    json!({
        "operationId": "rotatePrincipalKey", "tags": ["principals"],
        "summary": "Give a principal a new API key",
        "description": "Role: `admin`. Answers `200` with the principal and its new `api_key`, \
            shown this once. The key it replaces keeps working for `grace_seconds` (by default \
            86400, a day; 0 ends it at once), shown as `previous_key_expires_at`, so that its \
            callers can move to the new key without an outage. Only one previous key is kept: \
            rotating again during a grace period ends the older key at once. The body may be \
            left out.",
        "parameters": [param("PrincipalId")],
        "requestBody": optional,
        "responses": {
            "200": with_key("The principal, with its new API key."),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

fn restrict() -> Value {
    json!({
        "operationId": "restrictPrincipal", "tags": ["principals"],
        "summary": "Set a principal's expiry, networks and client certificate",
        "description": "Role: `admin`. Replaces all three restrictions at once, from the next \
            request on; every field is required, and `null` (or `[]` for `allowed_cidrs`) lifts \
            a restriction. A principal cannot restrict itself so that this very request would \
            be refused (`422`).",
        "parameters": [param("PrincipalId")],
        "requestBody": body("RestrictPrincipalRequest"),
        "responses": {
            "200": ok("The principal.", "Principal"),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

/// Every field optional: OpenAPI 3.0 wants no `required` list rather than an empty one.
fn rotate_request() -> Value {
    let mut schema = request(
        &[],
        json!({
            "grace_seconds": {"type": "integer", "nullable": true, "minimum": 0,
                "maximum": 2_592_000, "default": 86_400,
                "description": "How long the replaced key keeps working; 0 ends it at once."},
        }),
    );
    if let Some(fields) = schema.as_object_mut() {
        fields.remove("required");
    }
    schema
}

/// The request and response schemas of principals.
pub(super) fn schemas() -> Map<String, Value> {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    let expires_at = json!({"type": "string", "format": "date-time", "nullable": true,
        "description": "From this time on the principal no longer authenticates; in the future \
            when set. `null`: never."});
    let cidrs = json!({"type": "array", "maxItems": 64, "items": {"type": "string"},
        "description": "Networks in CIDR form (`10.0.0.0/8`, `127.0.0.1/32`, `::1/128`) the \
            principal may call from, matched against the connection's peer address (behind a \
            proxy: the proxy's). Empty: any."});
    let cert = json!({"type": "string", "nullable": true, "pattern": "^[0-9A-Fa-f]{64}$",
        "description": "Hex SHA-256 of the DER encoding of the client certificate the principal \
            must present over mutual TLS (the server needs `--tls-client-ca`). `null`: none \
            needed."});
    let schemas = json!({
        "CreatePrincipalRequest": request(&["name", "roles"], json!({
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
            "roles": super::role_names(1),
            "expires_at": expires_at,
            "allowed_cidrs": cidrs,
            "client_cert_sha256": cert,
        })),
        "RotatePrincipalRequest": rotate_request(),
        "RestrictPrincipalRequest": request(
            &["expires_at", "allowed_cidrs", "client_cert_sha256"],
            json!({"expires_at": expires_at, "allowed_cidrs": cidrs, "client_cert_sha256": cert}),
        ),
        "Principal": object(
            &["id", "name", "roles", "created_at", "disabled", "expires_at", "allowed_cidrs",
                "client_cert_sha256"],
            json!({
                "id": string, "name": string,
                "roles": {"type": "array", "items": string}, "created_at": time,
                "disabled": {"type": "boolean"},
                "expires_at": expires_at, "allowed_cidrs": cidrs, "client_cert_sha256": cert,
                "previous_key_expires_at": {"type": "string", "format": "date-time",
                    "description": "While the key replaced by the last rotation still works: \
                        until when."},
                "api_key": {"type": "string",
                    "description": "Only in the answer that created the principal or rotated \
                        its key."},
            }),
        ),
        "PrincipalList": object(&["items"], json!({"items": {"type": "array",
            "items": schema_ref("Principal")}})),
    });
    match schemas {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}
