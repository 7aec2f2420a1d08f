//! The OpenAPI 3.0.3 description of the HTTP API, served at `GET /v1/openapi.json`. It must
//! describe every endpoint the server answers, every status it may answer with and the shape of
//! every body, so that an API fuzzer such as schemathesis can drive the server from this document
//! alone and check each response against it. When a route, a field or a status changes in the
//! server, it changes here too; the tests below keep the list of operations honest.

use serde_json::{json, Map, Value};

/// The seven data types of API.md, in its order.
const DATA_TYPES: [&str; 7] = [
    "card_number",
    "iban",
    "cnic",
    "pk_mobile",
    "bank_account",
    "card_security_code",
    "text",
];

/// The built-in roles.
const ROLES: [&str; 6] = [
    "admin",
    "tokenizer",
    "revealer",
    "support",
    "auditor",
    "data_officer",
];

/// Largest number of items in a batch or a detokenize request.
const MAX_ITEMS: u64 = 10_000;

const DESCRIPTION: &str = "Tijori is a data-privacy vault. Services send it sensitive values \
(card numbers, IBANs, CNICs, mobile numbers, bank accounts, card security codes, free text) and \
get back tokens that stand in for them everywhere else: in databases, logs and analytics. Only \
principals with a reveal right can turn a token back into its value, in full or masked, and every \
call is written to a tamper-evident audit trail. Values are validated and normalized per type; \
tokens are random or format-preserving, optionally deterministic so that equal values share one \
token. All endpoints except `GET /v1/health` and `GET /v1/openapi.json` need \
`Authorization: Bearer <credential>`. Every response carries an `x-request-id` header, the same \
id the audit record holds, and every error is `{\"error\": {\"code\", \"message\", \"request_id\"}}`.";

/// The whole document; `version` is the server's version, shown as `info.version`.
pub fn document(version: &str) -> Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tijori",
            "version": version,
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0"},
        },
        "tags": [
            {"name": "tokens", "description": "Tokenize, describe, search, reveal and delete."},
            {"name": "principals", "description": "Service principals and their API keys."},
            {"name": "system", "description": "Health, sealing, metrics and this document."},
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key of a service principal, or a session token of \
                        a logged-in operator.",
                },
            },
            "headers": headers(),
            "parameters": parameters(),
            "responses": error_responses(),
            "schemas": schemas(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Operations

fn paths() -> Value {
    json!({
        "/v1/health": {"get": health()},
        "/v1/openapi.json": {"get": openapi()},
        "/v1/tokens": {"post": create_token()},
        "/v1/tokens/batch": {"post": create_batch()},
        "/v1/tokens/search": {"post": search_token()},
        "/v1/tokens/{token}": {"get": get_token(), "delete": delete_token()},
        "/v1/detokenize": {"post": detokenize()},
        "/v1/principals": {"post": create_principal(), "get": list_principals()},
        "/v1/principals/{id}/disable": {"post": set_principal(false)},
        "/v1/principals/{id}/enable": {"post": set_principal(true)},
        "/v1/sys/seal": {"post": seal()},
        "/metrics": {"get": metrics()},
    })
}

fn health() -> Value {
    Operation::new("getHealth", "system", "Is the vault up and unsealed?")
        .describe(
            "Needs no credential. Answers `200` with `status: ok` while the vault serves, and \
             `503` with `sealed: true` while it is sealed; load balancers can use either.",
        )
        .public()
        .respond(
            "200",
            json_response("The vault is up and unsealed.", schema_ref("Health")),
        )
        .respond(
            "503",
            json_response("The vault is sealed or unavailable.", schema_ref("Health")),
        )
        .build()
}

fn openapi() -> Value {
    Operation::new("getOpenApi", "system", "This OpenAPI 3.0.3 document")
        .describe("Needs no credential. Describes every endpoint, status and body of the API.")
        .public()
        .respond(
            "200",
            json_response("The OpenAPI document.", json!({"type": "object"})),
        )
        .build()
}

fn create_token() -> Value {
    Operation::new("createToken", "tokens", "Tokenize one value")
        .describe(
            "Roles: `tokenizer`, `revealer`. Validates and normalizes `value` for its `type` and \
             answers `201` with a new token. `format: preserving` keeps the value's shape (for \
             `card_number`, `cnic`, `pk_mobile`; other types answer `422 unsupported_format`); a \
             preserving card token always fails the Luhn check. With `deterministic: true` an \
             equal value of the same type gets the same token, and a repeat answers `200` with \
             it. A retry with the same `Idempotency-Key` and body returns the first answer.",
        )
        .param("IdempotencyKey")
        .body(schema_ref("TokenizeRequest"))
        .respond(
            "201",
            json_response("A new token.", schema_ref("TokenResponse")),
        )
        .respond(
            "200",
            json_response(
                "The existing deterministic token.",
                schema_ref("TokenResponse"),
            ),
        )
        .fails(&[Fail::Conflict, Fail::Unprocessable])
        .build()
}

fn create_batch() -> Value {
    Operation::new(
        "createTokenBatch",
        "tokens",
        "Tokenize up to 10,000 values at once",
    )
    .describe(
        "Roles: `tokenizer`, `revealer`. Each item is a `createToken` request. Answers `200` \
             with one item per request item, in the same order: a token, or `{\"error\": ...}` \
             for an item that failed on its own. More than 10,000 items answer \
             `413 payload_too_large`.",
    )
    .param("IdempotencyKey")
    .body(schema_ref("BatchRequest"))
    .respond(
        "200",
        json_response("One result per item.", schema_ref("BatchResponse")),
    )
    .fails(&[Fail::Conflict, Fail::Unprocessable])
    .build()
}

fn search_token() -> Value {
    Operation::new(
        "searchToken",
        "tokens",
        "Find the deterministic token of a value",
    )
    .describe(
        "Roles: `tokenizer`, `revealer`, `support`, `data_officer`. Looks the value up by \
             its keyed blind index, never by plaintext. Only deterministic tokens can be found; \
             anything else answers `404`.",
    )
    .body(schema_ref("SearchRequest"))
    .respond(
        "200",
        json_response("The token of that value.", schema_ref("SearchResponse")),
    )
    .fails(&[Fail::NotFound, Fail::Unprocessable])
    .build()
}

fn get_token() -> Value {
    Operation::new("getToken", "tokens", "Describe a token")
        .describe(
            "Roles: `tokenizer`, `revealer`, `support`, `data_officer`. Shows the token's type, \
             masked form, subject, timestamps and metadata; never its value.",
        )
        .param("Token")
        .respond(
            "200",
            json_response("The token.", schema_ref("TokenResponse")),
        )
        .fails(&[Fail::NotFound])
        .build()
}

fn delete_token() -> Value {
    Operation::new("deleteToken", "tokens", "Delete a token and its value")
        .describe(
            "Role: `data_officer`. Erases the value; afterwards the token is `404` everywhere.",
        )
        .param("Token")
        .respond("204", empty_response("Deleted."))
        .fails(&[Fail::NotFound])
        .build()
}

fn detokenize() -> Value {
    Operation::new(
        "detokenize",
        "tokens",
        "Reveal the values of up to 10,000 tokens",
    )
    .describe(
        "Roles: `revealer` (values in full) or `support` (values masked); any other caller \
             gets `403`. Answers `200` with one item per token, in the same order: its type and \
             value, or `{\"token\", \"error\"}` for a token that is unknown, deleted or expired. \
             A `card_security_code` is gone after its first reveal.",
    )
    .body(schema_ref("DetokenizeRequest"))
    .respond(
        "200",
        json_response("One result per token.", schema_ref("DetokenizeResponse")),
    )
    .fails(&[Fail::Unprocessable])
    .build()
}

fn create_principal() -> Value {
    let created = json!({"allOf": [schema_ref("Principal"), {"required": ["api_key"]}]});
    Operation::new(
        "createPrincipal",
        "principals",
        "Create a service principal",
    )
    .describe(
        "Role: `admin`. Answers `201` with the principal and its `api_key`. The key is shown \
             this once and stored only as a hash: keep it.",
    )
    .body(schema_ref("CreatePrincipalRequest"))
    .respond(
        "201",
        json_response("The principal, with its API key.", created),
    )
    .fails(&[Fail::Unprocessable])
    .build()
}

fn list_principals() -> Value {
    Operation::new("listPrincipals", "principals", "List service principals")
        .describe("Role: `admin`. API keys are never shown here.")
        .respond(
            "200",
            json_response("All principals.", schema_ref("PrincipalList")),
        )
        .build()
}

fn set_principal(enable: bool) -> Value {
    let (id, summary, what) = if enable {
        (
            "enablePrincipal",
            "Enable a principal",
            "Its API key works again.",
        )
    } else {
        (
            "disablePrincipal",
            "Disable a principal",
            "Its API key stops working at once.",
        )
    };
    Operation::new(id, "principals", summary)
        .describe(&format!(
            "Role: `admin`. {what} Answers with the principal as it is now."
        ))
        .param("PrincipalId")
        .respond(
            "200",
            json_response("The principal.", schema_ref("Principal")),
        )
        .fails(&[Fail::NotFound, Fail::Unprocessable])
        .build()
}

fn seal() -> Value {
    Operation::new("sealVault", "system", "Seal the vault")
        .describe(
            "Role: `admin`. Drops all key material from memory. Until the vault is unsealed, \
             data operations answer `503 sealed`.",
        )
        .respond(
            "200",
            json_response("The vault is sealed.", schema_ref("SealResponse")),
        )
        .build()
}

fn metrics() -> Value {
    let text = json!({"text/plain": {"schema": {"type": "string"}}});
    Operation::new("getMetrics", "system", "Prometheus metrics")
        .describe("Role: `admin` (or a dedicated metrics credential). Prometheus text format.")
        .respond(
            "200",
            response("Metrics in Prometheus exposition format.", Some(text)),
        )
        .build()
}

/// Builds one operation object; `build` adds the error answers every operation shares.
struct Operation {
    fields: Map<String, Value>,
    parameters: Vec<Value>,
    responses: Map<String, Value>,
    public: bool,
    has_body: bool,
}

impl Operation {
    fn new(operation_id: &str, tag: &str, summary: &str) -> Operation {
        let mut fields = Map::new();
        fields.insert("operationId".into(), operation_id.into());
        fields.insert("tags".into(), json!([tag]));
        fields.insert("summary".into(), summary.into());
        Operation {
            fields,
            parameters: Vec::new(),
            responses: Map::new(),
            public: false,
            has_body: false,
        }
    }

    fn describe(mut self, description: &str) -> Operation {
        self.fields.insert("description".into(), description.into());
        self
    }

    /// No credential needed: overrides the global security requirement.
    fn public(mut self) -> Operation {
        self.public = true;
        self
    }

    fn param(mut self, name: &str) -> Operation {
        self.parameters.push(component_ref("parameters", name));
        self
    }

    fn body(mut self, schema: Value) -> Operation {
        self.has_body = true;
        let body = json!({"required": true, "content": {"application/json": {"schema": schema}}});
        self.fields.insert("requestBody".into(), body);
        self
    }

    fn respond(mut self, status: &str, response: Value) -> Operation {
        self.responses.insert(status.into(), response);
        self
    }

    fn fails(mut self, fails: &[Fail]) -> Operation {
        for fail in fails {
            self.responses
                .insert(fail.status().into(), fail.reference());
        }
        self
    }

    fn build(mut self) -> Value {
        let mut shared = vec![Fail::RateLimited];
        if self.has_body {
            shared.extend([Fail::BadRequest, Fail::PayloadTooLarge]);
        }
        if !self.public {
            shared.extend([
                Fail::Unauthenticated,
                Fail::Forbidden,
                Fail::PayloadTooLarge,
                Fail::Unavailable,
            ]);
        }
        for fail in shared {
            self.responses
                .entry(fail.status())
                .or_insert_with(|| fail.reference());
        }
        if self.public {
            self.fields.insert("security".into(), json!([]));
        }
        if !self.parameters.is_empty() {
            self.fields
                .insert("parameters".into(), Value::Array(self.parameters));
        }
        self.fields
            .insert("responses".into(), Value::Object(self.responses));
        Value::Object(self.fields)
    }
}

// ---------------------------------------------------------------------------------------------
// Responses, headers and parameters

/// The error answers, each a shared component under `#/components/responses`.
#[derive(Clone, Copy)]
enum Fail {
    BadRequest,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    Unprocessable,
    RateLimited,
    Unavailable,
}

impl Fail {
    const ALL: [Fail; 9] = [
        Fail::BadRequest,
        Fail::Unauthenticated,
        Fail::Forbidden,
        Fail::NotFound,
        Fail::Conflict,
        Fail::PayloadTooLarge,
        Fail::Unprocessable,
        Fail::RateLimited,
        Fail::Unavailable,
    ];

    fn status(self) -> String {
        let status = match self {
            Fail::BadRequest => 400,
            Fail::Unauthenticated => 401,
            Fail::Forbidden => 403,
            Fail::NotFound => 404,
            Fail::Conflict => 409,
            Fail::PayloadTooLarge => 413,
            Fail::Unprocessable => 422,
            Fail::RateLimited => 429,
            Fail::Unavailable => 503,
        };
        status.to_string()
    }

    fn name(self) -> &'static str {
        match self {
            Fail::BadRequest => "BadRequest",
            Fail::Unauthenticated => "Unauthenticated",
            Fail::Forbidden => "Forbidden",
            Fail::NotFound => "NotFound",
            Fail::Conflict => "Conflict",
            Fail::PayloadTooLarge => "PayloadTooLarge",
            Fail::Unprocessable => "Unprocessable",
            Fail::RateLimited => "RateLimited",
            Fail::Unavailable => "Unavailable",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Fail::BadRequest => {
                "The body is not valid JSON (`malformed_json`), names a field the endpoint does \
                 not know (`unknown_field`), lacks a required field or has one of the wrong type \
                 (`invalid_request`), or a header is malformed (`invalid_request`)."
            }
            Fail::Unauthenticated => {
                "No credential, or an expired or wrong one (`unauthenticated`). Send \
                 `Authorization: Bearer <api key or session token>`."
            }
            Fail::Forbidden => {
                "The credential is valid but its roles do not allow this call (`forbidden`), or \
                 the operator's training has lapsed (`training_expired`)."
            }
            Fail::NotFound => {
                "No such token or principal; a deleted or expired token is also unknown \
                 (`not_found`)."
            }
            Fail::Conflict => {
                "This `Idempotency-Key` was used with a different body (`idempotency_conflict`). \
                 Use a fresh key for a new request."
            }
            Fail::PayloadTooLarge => {
                "The body is over the size limit (1 MiB by default), or a batch is over 10,000 \
                 items (`payload_too_large`). Split the request."
            }
            Fail::Unprocessable => {
                "Well-formed, but a value fails validation: `invalid_card_number`, \
                 `invalid_iban`, `invalid_cnic`, `invalid_pk_mobile`, `invalid_value` or \
                 `unsupported_format`. The message says what is wrong without echoing the value."
            }
            Fail::RateLimited => {
                "Over a rate limit (`rate_limited`). Wait the number of seconds in `retry-after`."
            }
            Fail::Unavailable => {
                "The vault is sealed (`sealed`), or storage or the audit trail is unavailable \
                 (`unavailable`). Tijori fails closed: nothing was done."
            }
        }
    }

    fn reference(self) -> Value {
        component_ref("responses", self.name())
    }

    fn component(self) -> Value {
        let content = json!({"application/json": {"schema": schema_ref("Error")}});
        let mut response = response(self.description(), Some(content));
        if let (Fail::RateLimited, Some(headers)) = (self, response["headers"].as_object_mut()) {
            headers.insert("retry-after".into(), component_ref("headers", "RetryAfter"));
        }
        response
    }
}

fn error_responses() -> Value {
    let all = Fail::ALL
        .iter()
        .map(|fail| (fail.name().to_string(), fail.component()));
    Value::Object(all.collect())
}

/// A response object; every response carries `x-request-id`.
fn response(description: &str, content: Option<Value>) -> Value {
    let mut response = json!({
        "description": description,
        "headers": {"x-request-id": component_ref("headers", "RequestId")},
    });
    if let (Some(content), Some(fields)) = (content, response.as_object_mut()) {
        fields.insert("content".into(), content);
    }
    response
}

fn json_response(description: &str, schema: Value) -> Value {
    response(
        description,
        Some(json!({"application/json": {"schema": schema}})),
    )
}

fn empty_response(description: &str) -> Value {
    response(description, None)
}

fn headers() -> Value {
    json!({
        "RequestId": {
            "description": "The id of this request; the audit record holds the same id.",
            "required": true,
            "schema": {"type": "string"},
        },
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "required": true,
            "schema": {"type": "string"},
        },
    })
}

fn parameters() -> Value {
    json!({
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "A retry with the same key and body returns the first answer; the \
                same key with a different body answers `409 idempotency_conflict`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        "Token": {
            "name": "token",
            "in": "path",
            "required": true,
            "description": "A token as `createToken` returned it.",
            "schema": {"type": "string", "minLength": 1},
        },
        "PrincipalId": {
            "name": "id",
            "in": "path",
            "required": true,
            "description": "The `id` of a principal.",
            "schema": {"type": "string", "minLength": 1},
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Schemas

fn schemas() -> Value {
    json!({
        "TokenizeRequest": tokenize_request(),
        "TokenResponse": token_response(),
        "BatchRequest": request_object(&["items"], json!({
            "items": {
                "type": "array",
                "maxItems": MAX_ITEMS,
                "items": schema_ref("TokenizeRequest"),
            },
        })),
        "BatchResponse": object(&["items"], json!({
            "items": {
                "type": "array",
                "items": {"oneOf": [schema_ref("TokenResponse"), schema_ref("ItemError")]},
            },
        })),
        "ItemError": error_envelope("An item that failed on its own."),
        "DetokenizeRequest": request_object(&["tokens"], json!({
            "tokens": {"type": "array", "maxItems": MAX_ITEMS, "items": {"type": "string"}},
        })),
        "DetokenizeResponse": detokenize_response(),
        "SearchRequest": request_object(&["type", "value"], json!({
            "type": data_type(),
            "value": {"type": "string", "description": "The plaintext value to look up."},
        })),
        "SearchResponse": object(&["token"], json!({"token": {"type": "string"}})),
        "CreatePrincipalRequest": request_object(&["name", "roles"], json!({
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
            "roles": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "string", "enum": ROLES},
            },
        })),
        "Principal": principal(),
        "PrincipalList": object(&["items"], json!({
            "items": {"type": "array", "items": schema_ref("Principal")},
        })),
        "Health": object(&["status", "sealed", "version"], json!({
            "status": {"type": "string", "description": "`ok` while the vault serves."},
            "sealed": {"type": "boolean"},
            "version": {"type": "string", "description": "The server's version."},
        })),
        "SealResponse": object(&["sealed"], json!({"sealed": {"type": "boolean"}})),
        "Error": error_envelope("The body of every error answer."),
        "ErrorBody": object(&["code", "message", "request_id"], json!({
            "code": {"type": "string", "description": "Machine-readable, e.g. `not_found`."},
            "message": {
                "type": "string",
                "description": "What went wrong and what to do; never the sensitive value.",
            },
            "request_id": {"type": "string", "description": "Same as `x-request-id`."},
        })),
    })
}

fn tokenize_request() -> Value {
    let mut schema = request_object(
        &["type", "value"],
        json!({
            "type": data_type(),
            "value": {
                "type": "string",
                "description": "The sensitive value; accepted layouts depend on `type`.",
            },
            "format": {
                "type": "string",
                "enum": ["random", "preserving"],
                "default": "random",
                "description": "`preserving` keeps the value's shape: card_number, cnic and \
                    pk_mobile only.",
            },
            "deterministic": {
                "type": "boolean",
                "default": false,
                "description": "Equal values of the same type share one token.",
            },
            "subject": {
                "type": "string",
                "nullable": true,
                "maxLength": 256,
                "description": "Whose data this is, e.g. a customer id.",
            },
            "ttl_seconds": {
                "type": "integer",
                "nullable": true,
                "minimum": 1,
                "description": "Expire the token after this long; at most 3600 for \
                    card_security_code.",
            },
            "metadata": {"type": "object", "nullable": true, "additionalProperties": true},
        }),
    );
    schema["example"] = json!({"type": "card_number", "value": "4111 1111 1111 1111"});
    schema
}

fn token_response() -> Value {
    object(
        &[
            "token",
            "type",
            "masked",
            "subject",
            "created_at",
            "expires_at",
        ],
        json!({
            "token": {"type": "string"},
            "type": data_type(),
            "masked": {
                "type": "string",
                "description": "At most the first six and last four digits of a card number, \
                    the last four characters of anything else.",
            },
            "subject": {"type": "string", "nullable": true},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time", "nullable": true},
            "metadata": {"type": "object", "nullable": true, "additionalProperties": true},
        }),
    )
}

fn detokenize_response() -> Value {
    let revealed = object(
        &["token", "type", "value"],
        json!({
            "token": {"type": "string"},
            "type": data_type(),
            "value": {"type": "string", "description": "In full or masked, by reveal level."},
        }),
    );
    let failed = object(
        &["token", "error"],
        json!({"token": {"type": "string"}, "error": schema_ref("ErrorBody")}),
    );
    object(
        &["items"],
        json!({"items": {"type": "array", "items": {"oneOf": [revealed, failed]}}}),
    )
}

fn principal() -> Value {
    object(
        &["id", "name", "roles", "created_at", "disabled"],
        json!({
            "id": {"type": "string"},
            "name": {"type": "string"},
            "roles": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string", "format": "date-time"},
            "disabled": {"type": "boolean"},
            "api_key": {
                "type": "string",
                "description": "Only in the answer that created the principal.",
            },
        }),
    )
}

fn error_envelope(description: &str) -> Value {
    let mut schema = object(&["error"], json!({"error": schema_ref("ErrorBody")}));
    schema["description"] = description.into();
    schema
}

fn data_type() -> Value {
    json!({"type": "string", "enum": DATA_TYPES})
}

/// A response object schema: more fields may be added later, so others are allowed.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// A request object schema: unknown fields are refused (`400 unknown_field`).
fn request_object(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = false.into();
    schema
}

fn schema_ref(name: &str) -> Value {
    component_ref("schemas", name)
}

fn component_ref(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{name}")})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation the server answers.
    const OPERATIONS: [(&str, &str); 14] = [
        ("/v1/health", "get"),
        ("/v1/openapi.json", "get"),
        ("/v1/tokens", "post"),
        ("/v1/tokens/batch", "post"),
        ("/v1/tokens/{token}", "get"),
        ("/v1/tokens/{token}", "delete"),
        ("/v1/tokens/search", "post"),
        ("/v1/detokenize", "post"),
        ("/v1/principals", "post"),
        ("/v1/principals", "get"),
        ("/v1/principals/{id}/disable", "post"),
        ("/v1/principals/{id}/enable", "post"),
        ("/v1/sys/seal", "post"),
        ("/metrics", "get"),
    ];

    fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
        &doc["paths"][path][method]
    }

    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => doc.pointer(&reference[1..]).expect("ref resolves"),
            None => value,
        }
    }

    #[test]
    fn is_openapi_3_0_3_with_the_given_version() {
        let doc = document("1.2.3");
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["info"]["title"], "Tijori");
        assert_eq!(doc["info"]["version"], "1.2.3");
        assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn describes_exactly_the_listed_operations() {
        let doc = document("0");
        for (path, method) in OPERATIONS {
            assert!(
                operation(&doc, path, method).is_object(),
                "{method} {path} missing"
            );
        }
        let paths = doc["paths"].as_object().expect("paths");
        let described: usize = paths
            .values()
            .map(|item| item.as_object().map_or(0, Map::len))
            .sum();
        assert_eq!(
            described,
            OPERATIONS.len(),
            "an operation is missing from OPERATIONS"
        );
    }

    #[test]
    fn every_operation_is_complete_and_uniquely_named() {
        let doc = document("0");
        let mut ids = std::collections::BTreeSet::new();
        for (path, method) in OPERATIONS {
            let op = operation(&doc, path, method);
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{id}: summary");
            assert!(op["description"].is_string(), "{id}: description");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{id}: no success answer"
            );
            for (status, response) in responses {
                let response = resolve(&doc, response);
                assert!(
                    response["description"].is_string(),
                    "{id} {status}: description"
                );
                assert!(
                    response["headers"]["x-request-id"].is_object(),
                    "{id} {status}"
                );
            }
            assert!(responses.contains_key("429"), "{id}: 429");
            if op.get("requestBody").is_some() {
                assert!(
                    responses.contains_key("400") && responses.contains_key("413"),
                    "{id}"
                );
            }
        }
    }

    #[test]
    fn every_ref_resolves_to_a_component() {
        fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(reference) = map.get("$ref") {
                        refs.push(reference.as_str().expect("$ref is a string"));
                    }
                    map.values().for_each(|v| walk(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
                _ => {}
            }
        }
        let doc = document("0");
        let mut refs = Vec::new();
        walk(&doc, &mut refs);
        assert!(refs.len() > 50, "expected many refs, found {}", refs.len());
        for reference in refs {
            assert!(reference.starts_with("#/components/"), "{reference}");
            assert!(
                doc.pointer(&reference[1..]).is_some(),
                "{reference} does not resolve"
            );
        }
    }

    #[test]
    fn only_health_and_openapi_are_public() {
        let doc = document("0");
        for (path, method) in OPERATIONS {
            let security = operation(&doc, path, method).get("security");
            let public = matches!(path, "/v1/health" | "/v1/openapi.json");
            assert_eq!(security == Some(&json!([])), public, "{method} {path}");
            assert_eq!(
                operation(&doc, path, method)["responses"]
                    .get("401")
                    .is_some(),
                !public,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn rate_limited_answers_carry_retry_after() {
        let doc = document("0");
        let limited = &doc["components"]["responses"]["RateLimited"];
        assert!(limited["headers"]["retry-after"].is_object());
        assert!(limited["headers"]["x-request-id"].is_object());
    }

    #[test]
    fn request_schemas_refuse_unknown_fields() {
        let doc = document("0");
        let schemas = &doc["components"]["schemas"];
        for name in [
            "TokenizeRequest",
            "BatchRequest",
            "DetokenizeRequest",
            "SearchRequest",
            "CreatePrincipalRequest",
        ] {
            assert_eq!(schemas[name]["additionalProperties"], false, "{name}");
        }
        let tokenize = &schemas["TokenizeRequest"];
        assert_eq!(tokenize["required"], json!(["type", "value"]));
        assert_eq!(
            tokenize["properties"]["type"]["enum"]
                .as_array()
                .map(Vec::len),
            Some(7)
        );
        assert_eq!(tokenize["properties"]["subject"]["nullable"], true);
        assert_eq!(
            schemas["BatchRequest"]["properties"]["items"]["maxItems"],
            10_000
        );
    }
}
