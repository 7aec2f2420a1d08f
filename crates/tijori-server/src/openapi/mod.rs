//! The OpenAPI 3.0.3 description of the HTTP API, served at `GET /v1/openapi.json`. It must
//! describe every endpoint the server answers, every status it may answer with and the shape of
//! every body, so that an API fuzzer such as schemathesis can drive the server from this document
//! alone and check each response against it. When a route, a field or a status changes in the
//! server, it changes here too; the tests below keep the list of operations honest.

mod audit;
mod keys;
mod policy;
mod principals;
mod users;

use serde_json::{json, Map, Value};

/// Most items in one batch or detokenize request.
const MAX_ITEMS: u64 = 10_000;

const DESCRIPTION: &str = "Tijori is a data-privacy vault. Services send it sensitive values \
(card numbers, IBANs, CNICs, mobile numbers, bank accounts, card security codes, free text) and \
get back tokens that stand in for them everywhere else: in databases, logs and analytics. Only \
principals with a reveal right can turn a token back into its value, in full or masked, and every \
call is written to a tamper-evident audit trail. Values are validated and normalized per type; \
tokens are random or format-preserving, and optionally deterministic so that equal values share \
one token. Every endpoint except `GET /v1/health` and `GET /v1/openapi.json` needs \
`Authorization: Bearer <credential>`. Every response carries an `x-request-id` header, the id the \
audit record holds, and every error is `{\"error\": {\"code\", \"message\", \"request_id\"}}`.";

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
            {"name": "audit", "description": "The audit trail: reading it, checking it, matching values."},
            {"name": "operators", "description": "People's accounts, their roles and training."},
            {"name": "auth", "description": "Enrollment, login with a one-time code, sessions."},
            {"name": "policies", "description": "Custom roles, and dual-control approvals."},
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key of a service principal, or a session token of a \
                        logged-in operator.",
                },
            },
            "headers": headers(),
            "parameters": parameters(),
            "responses": error_responses(),
            "schemas": all_schemas(),
        },
    })
}

// Operations. Each lists only its own answers; `add_shared_answers` adds the rest.

fn paths() -> Value {
    let mut paths = json!({
        "/v1/health": {"get": health()},
        "/v1/health/ready": {"get": ready()},
        "/v1/openapi.json": {"get": openapi()},
        "/v1/tokens": {"post": create_token()},
        "/v1/tokens/batch": {"post": create_batch()},
        "/v1/tokens/search": {"post": search_token()},
        "/v1/tokens/{token}": {"get": get_token(), "delete": delete_token()},
        "/v1/detokenize": {"post": detokenize()},
        "/v1/sys/seal": {"post": seal()},
        "/metrics": {"get": metrics()},
    });
    if let Some(map) = paths.as_object_mut() {
        map.extend(audit::paths().into_iter().map(|(p, v)| (p.to_owned(), v)));
        map.extend(keys::paths().into_iter().map(|(p, v)| (p.to_owned(), v)));
        map.extend(users::paths().into_iter().map(|(p, v)| (p.to_owned(), v)));
        map.extend(
            principals::paths()
                .into_iter()
                .map(|(p, v)| (p.to_owned(), v)),
        );
        map.extend(policy::paths().into_iter().map(|(p, v)| (p.to_owned(), v)));
    }
    let items = paths.as_object_mut().into_iter().flat_map(Map::values_mut);
    for item in items.filter_map(Value::as_object_mut) {
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            add_shared_answers(operation);
        }
    }
    paths
}

/// The error answers any operation may give: 429 always; 400 where it takes a body or any
/// parameter (a query parameter out of range, a malformed header, a path segment that does not
/// decode); 413 where it takes a body; 401, 403, 413 and 503 where it needs a credential.
fn add_shared_answers(operation: &mut Map<String, Value>) {
    let public = operation.get("security") == Some(&json!([]));
    let mut shared = vec![("429", "RateLimited")];
    let has_body = operation.contains_key("requestBody");
    if has_body || operation.contains_key("parameters") {
        shared.push(("400", "BadRequest"));
    }
    if has_body {
        shared.push(("413", "PayloadTooLarge"));
    }
    if !public {
        shared.extend([("401", "Unauthenticated"), ("403", "Forbidden")]);
        shared.extend([("413", "PayloadTooLarge"), ("503", "Unavailable")]);
    }
    if let Some(Value::Object(responses)) = operation.get_mut("responses") {
        for (status, name) in shared {
            responses.entry(status).or_insert_with(|| fail(name));
        }
    }
}

fn health() -> Value {
    json!({
        "operationId": "getHealth", "tags": ["system"], "summary": "Is the vault up and unsealed?",
        "description": "Needs no credential. Answers `200` with `status: ok` while the vault \
            serves, and `503` with `sealed: true` while it is sealed; load balancers can use \
            either.",
        "security": [],
        "responses": {
            "200": ok("The vault is up and unsealed.", "Health"),
            "503": ok("The vault is sealed, or its storage is unavailable.", "Health"),
        },
    })
}

fn ready() -> Value {
    json!({
        "operationId": "getReadiness", "tags": ["system"], "summary": "Can this node serve data now?",
        "description": "Needs no credential; for load balancers. `200` when this node is \
            unsealed and its store answers; `503` (with which of the two is not) otherwise. \
            With several nodes each is unsealed on its own, so each answers for itself.",
        "security": [],
        "responses": {
            "200": ok("Ready.", "Readiness"),
            "503": ok("Sealed, or the store does not answer.", "Readiness"),
        },
    })
}

fn openapi() -> Value {
    let document = json!({"application/json": {"schema": {"type": "object"}}});
    json!({
        "operationId": "getOpenApi", "tags": ["system"], "summary": "This OpenAPI document",
        "description": "Needs no credential. Describes every endpoint, status and body of the \
            API, in OpenAPI 3.0.3.",
        "security": [],
        "responses": {"200": answer("The OpenAPI document.", Some(document))},
    })
}

fn create_token() -> Value {
    json!({
        "operationId": "createToken", "tags": ["tokens"], "summary": "Tokenize one value",
        "description": "Roles: `tokenizer`, `revealer`. Validates and normalizes `value` for its \
            `type` and answers `201` with a new token. `format: preserving` keeps the value's \
            shape for `card_number`, `cnic` and `pk_mobile` (other types answer \
            `422 unsupported_format`); a preserving card token always fails the Luhn check. With \
            `deterministic: true` an equal value of the same type gets the same token, and a \
            repeat answers `200` with it. A retry with the same `Idempotency-Key` and body \
            returns the first answer.",
        "parameters": [param("IdempotencyKey")],
        "requestBody": body("TokenizeRequest"),
        "responses": {
            "201": ok("A new token.", "TokenResponse"),
            "200": ok("The existing deterministic token of this value.", "TokenResponse"),
            "409": fail("Conflict"), "422": fail("Unprocessable"),
        },
    })
}

fn create_batch() -> Value {
    json!({
        "operationId": "createTokenBatch", "tags": ["tokens"],
        "summary": "Tokenize up to 10,000 values at once",
        "description": "Roles: `tokenizer`, `revealer`. Each item is a `createToken` request. \
            Answers `200` with one result per item, in the same order: a token, or \
            `{\"error\": ...}` for an item that failed on its own. More than 10,000 items answer \
            `413 payload_too_large`.",
        "parameters": [param("IdempotencyKey")],
        "requestBody": body("BatchRequest"),
        "responses": {
            "200": ok("One result per item.", "BatchResponse"),
            "409": fail("Conflict"), "422": fail("Unprocessable"),
        },
    })
}

fn search_token() -> Value {
    json!({
        "operationId": "searchToken", "tags": ["tokens"],
        "summary": "Find the deterministic token of a value",
        "description": "Roles: `tokenizer`, `revealer`, `support`, `data_officer`. Looks the \
            value up by its keyed blind index, never by plaintext. Only deterministic tokens can \
            be found; anything else answers `404`.",
        "requestBody": body("SearchRequest"),
        "responses": {
            "200": ok("The token of that value.", "SearchResponse"),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

fn get_token() -> Value {
    json!({
        "operationId": "getToken", "tags": ["tokens"], "summary": "Describe a token",
        "description": "Roles: `tokenizer`, `revealer`, `support`, `data_officer`. Shows the \
            token's type, masked form, subject, timestamps and metadata; never its value.",
        "parameters": [param("Token")],
        "responses": {"200": ok("The token.", "TokenResponse"), "404": fail("NotFound")},
    })
}

fn delete_token() -> Value {
    json!({
        "operationId": "deleteToken", "tags": ["tokens"], "summary": "Delete a token",
        "description": "Role: `data_officer`. Erases the value; afterwards the token answers \
            `404` everywhere.",
        "parameters": [param("Token")],
        "responses": {"204": answer("Deleted.", None), "404": fail("NotFound")},
    })
}

fn detokenize() -> Value {
    json!({
        "operationId": "detokenize", "tags": ["tokens"],
        "summary": "Reveal the values of up to 10,000 tokens",
        "description": "Roles: `revealer` (values in full) or `support` (values masked); any \
            other caller gets `403`. Answers `200` with one result per token, in the same order: \
            its type and value, or `{\"token\", \"error\"}` for a token that is unknown, deleted \
            or expired, or outside the caller's rules. A `card_security_code` is gone after \
            its first reveal. An operator whose training has lapsed gets `403 \
            training_expired`. Under dual control (`bulk_reveal`), more tokens than the \
            threshold (100 by default) first answer `202` with a pending approval.",
        "parameters": [policy::approval_header()],
        "requestBody": body("DetokenizeRequest"),
        "responses": {
            "200": ok("One result per token.", "DetokenizeResponse"),
            "202": policy::pending(),
            "422": fail("Unprocessable"),
        },
    })
}

fn seal() -> Value {
    json!({
        "operationId": "sealVault", "tags": ["system"], "summary": "Seal the vault",
        "description": "Role: `admin`. Drops all key material from memory; until the vault is \
            unsealed, data operations answer `503 sealed`.",
        "responses": {"200": ok("The vault is sealed.", "SealResponse")},
    })
}

fn metrics() -> Value {
    let text = json!({"text/plain": {"schema": {"type": "string"}}});
    json!({
        "operationId": "getMetrics", "tags": ["system"], "summary": "Prometheus metrics",
        "description": "Role: `admin` (or a dedicated metrics credential). Counters and \
            histograms of the server, in the Prometheus text exposition format.",
        "responses": {"200": answer("Metrics in Prometheus exposition format.", Some(text))},
    })
}

// Responses, headers and parameters.

/// A response; every response carries `x-request-id`.
fn answer(description: &str, content: Option<Value>) -> Value {
    let mut response = json!({
        "description": description,
        "headers": {"x-request-id": component_ref("headers", "RequestId")},
    });
    if let (Some(content), Some(fields)) = (content, response.as_object_mut()) {
        fields.insert("content".into(), content);
    }
    response
}

/// A JSON response whose body is the named schema.
fn ok(description: &str, schema: &str) -> Value {
    let content = json!({"application/json": {"schema": schema_ref(schema)}});
    answer(description, Some(content))
}

/// A reference to one of the shared error answers of `error_responses`.
fn fail(name: &str) -> Value {
    component_ref("responses", name)
}

fn error_responses() -> Value {
    let error = |description: &str| ok(description, "Error");
    let mut responses = json!({
        "BadRequest": error("The body is not valid JSON (`malformed_json`), names a field the \
            endpoint does not know (`unknown_field`), lacks a required field or has one of the \
            wrong type, or a query parameter, header or path segment is malformed or out of \
            range (`invalid_request`)."),
        "Unauthenticated": error("No credential, or an expired or wrong one \
            (`unauthenticated`). Send `Authorization: Bearer <api key or session token>`."),
        "Forbidden": error("The credential is valid but its roles do not allow this call \
            (`forbidden`), or the operator's training has lapsed (`training_expired`)."),
        "NotFound": error("No such token, principal or operator; a deleted or expired token \
            is unknown too (`not_found`)."),
        "Conflict": error("This `Idempotency-Key` was used with a different body \
            (`idempotency_conflict`), or the name is taken (`conflict`)."),
        "PayloadTooLarge": error("The body is over the size limit (1 MiB by default), or a \
            batch is over 10,000 items (`payload_too_large`). Split the request."),
        "Unprocessable": error("Well-formed, but a value fails validation: \
            `invalid_card_number`, `invalid_iban`, `invalid_cnic`, `invalid_pk_mobile`, \
            `invalid_value` or `unsupported_format`. The message says what is wrong without \
            echoing the value."),
        "RateLimited": error("Over a rate limit (`rate_limited`). Wait the number of seconds \
            in `retry-after`, then try again."),
        "Unavailable": error("The vault is sealed (`sealed`), or its storage or audit trail is \
            unavailable (`unavailable`). Tijori fails closed: nothing was done."),
    });
    responses["RateLimited"]["headers"]["retry-after"] = component_ref("headers", "RetryAfter");
    responses
}

fn headers() -> Value {
    json!({
        "RequestId": {"required": true, "schema": {"type": "string"},
            "description": "The id of this request; the audit record holds the same id."},
        "RetryAfter": {"required": true, "schema": {"type": "string"},
            "description": "Seconds to wait before trying again."},
    })
}

fn parameters() -> Value {
    let id = json!({"type": "string", "minLength": 1});
    json!({
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "A retry with the same key and body returns the first answer; the \
                same key with a different body answers `409 idempotency_conflict`.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        },
        "Token": {"name": "token", "in": "path", "required": true, "schema": id.clone(),
            "description": "A token as `createToken` returned it."},
        "PrincipalId": {"name": "id", "in": "path", "required": true, "schema": id,
            "description": "The `id` of a principal."},
    })
}

fn body(schema: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema_ref(schema)}}})
}

fn param(name: &str) -> Value {
    component_ref("parameters", name)
}

// Schemas.

fn all_schemas() -> Value {
    let mut all = schemas();
    if let Some(map) = all.as_object_mut() {
        map.extend(audit::schemas());
        map.extend(keys::schemas());
        map.extend(users::schemas());
        map.extend(principals::schemas());
        map.extend(policy::schemas());
    }
    all
}

fn schemas() -> Value {
    let (string, boolean) = (json!({"type": "string"}), json!({"type": "boolean"}));
    let list = |items: Value| json!({"type": "array", "items": items});
    let bounded = |items: Value| json!({"type": "array", "maxItems": MAX_ITEMS, "items": items});
    let error = json!({"error": schema_ref("ErrorBody")});
    let outcome = json!({"oneOf": [schema_ref("TokenResponse"), schema_ref("ItemError")]});
    // A batch answers for each item in its place, so an item that is not a tokenize request is
    // no reason to refuse the batch: it gets its own error. Hence "a request, or anything".
    let tokenize = json!({
        "anyOf": [schema_ref("TokenizeRequest"), {}],
        "description": "A `createToken` request. An item that is not one, or whose value fails \
            validation, gets its own `{\"error\": ...}` in its place; the others are still \
            tokenized.",
    });
    json!({
        "TokenizeRequest": tokenize_request(),
        "TokenResponse": token_response(),
        "BatchRequest": request(&["items"], json!({"items": bounded(tokenize)})),
        "BatchResponse": object(&["items"], json!({"items": list(outcome)})),
        "ItemError": object(&["error"], error.clone()),
        "DetokenizeRequest": request(&["tokens"], json!({"tokens": bounded(string.clone())})),
        "DetokenizeResponse": detokenize_response(),
        "SearchRequest": request(&["type", "value"], json!({
            "type": data_type(),
            "value": {"type": "string", "description": "The plaintext value to look up."},
        })),
        "SearchResponse": object(&["token"], json!({"token": string})),
        "Health": object(&["status", "sealed", "version"], json!({
            "status": {"type": "string", "description": "`ok` while the vault serves."},
            "sealed": boolean,
            "version": {"type": "string", "description": "The server's version."},
        })),
        "SealResponse": object(&["sealed"], json!({"sealed": boolean})),
        "Readiness": object(&["status", "sealed", "store"], json!({
            "status": {"type": "string", "enum": ["ready", "sealed", "unavailable"]},
            "sealed": boolean,
            "store": {"type": "string", "enum": ["ok", "unavailable"]},
        })),
        "Error": object(&["error"], error),
        "ErrorBody": object(&["code", "message", "request_id"], json!({
            "code": {"type": "string", "description": "Machine-readable, e.g. `not_found`."},
            "message": {"type": "string", "description": "What went wrong and what to do; \
                never the sensitive value."},
            "request_id": {"type": "string", "description": "The same as `x-request-id`."},
        })),
    })
}

fn tokenize_request() -> Value {
    let properties = json!({
        "type": data_type(),
        "value": {"type": "string", "description": "The sensitive value, in a layout its `type` \
            accepts."},
        "format": {"type": "string", "enum": ["random", "preserving"], "default": "random",
            "description": "`preserving` keeps the value's shape: card_number, cnic and \
                pk_mobile only."},
        "deterministic": {"type": "boolean", "default": false,
            "description": "Equal values of the same type share one token."},
        "subject": {"type": "string", "nullable": true, "maxLength": 256,
            "description": "Whose data this is, e.g. a customer id."},
        "ttl_seconds": {"type": "integer", "nullable": true, "minimum": 1,
            "description": "Expire the token after this long; at most 3600 for \
                card_security_code."},
        "metadata": {"type": "object", "nullable": true, "additionalProperties": true},
    });
    let mut schema = request(&["type", "value"], properties);
    schema["example"] = json!({"type": "card_number", "value": "4111 1111 1111 1111"});
    schema
}

fn token_response() -> Value {
    json!({
        "type": "object",
        "required": ["token", "type", "masked", "subject", "created_at", "expires_at"],
        "properties": {
            "token": {"type": "string"},
            "type": data_type(),
            "masked": {"type": "string", "description": "At most the first six and last four \
                digits of a card number, and the last four characters of anything else."},
            "subject": {"type": "string", "nullable": true},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time", "nullable": true},
            "metadata": {"type": "object", "nullable": true, "additionalProperties": true},
        },
    })
}

fn detokenize_response() -> Value {
    let revealed = json!({"type": "object", "required": ["token", "type", "value"], "properties": {
        "token": {"type": "string"},
        "type": data_type(),
        "value": {"type": "string", "description": "In full or masked, by reveal level."},
    }});
    let failed = json!({"token": {"type": "string"}, "error": schema_ref("ErrorBody")});
    let failed = object(&["token", "error"], failed);
    let items = json!({"type": "array", "items": {"oneOf": [revealed, failed]}});
    object(&["items"], json!({"items": items}))
}

fn data_type() -> Value {
    json!({"type": "string", "enum": type_names(false)})
}

/// The data types' names (API.md's `type`), or only those written to storage.
fn type_names(stored_only: bool) -> Vec<&'static str> {
    let types = tijori_types::DataType::ALL.into_iter();
    let kept = types.filter(|t| !stored_only || !t.is_ephemeral());
    kept.map(|t| t.as_str()).collect()
}

/// A response object: fields may be added later, so others are allowed.
fn object(required: &[&str], properties: Value) -> Value {
    json!({"type": "object", "required": required, "properties": properties})
}

/// A request object: unknown fields are refused with `400 unknown_field`.
fn request(required: &[&str], properties: Value) -> Value {
    let mut schema = object(required, properties);
    schema["additionalProperties"] = false.into();
    schema
}

/// A list of role names: built-in (`admin`, `tokenizer`, `revealer`, `support`, `auditor`,
/// `data_officer`) or custom (`PUT /v1/roles/{name}`).
fn role_names(min_items: u64) -> Value {
    json!({"type": "array", "minItems": min_items, "items": {"type": "string",
        "pattern": "^[A-Za-z0-9._-]{1,128}$",
        "description": "A built-in role (admin, tokenizer, revealer, support, auditor, \
            data_officer) or a custom role's name."}})
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
    const OPERATIONS: [(&str, &str); 48] = [
        ("/v1/health", "get"),
        ("/v1/health/ready", "get"),
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
        ("/v1/principals/{id}/rotate", "post"),
        ("/v1/principals/{id}/restrict", "post"),
        ("/v1/sys/seal", "post"),
        ("/metrics", "get"),
        ("/v1/audit", "get"),
        ("/v1/audit/public-key", "get"),
        ("/v1/audit/hash", "post"),
        ("/v1/audit/export", "get"),
        ("/v1/sys/unseal", "post"),
        ("/v1/sys/unseal", "get"),
        ("/v1/subjects/{subject}", "delete"),
        ("/v1/sys/keys", "get"),
        ("/v1/sys/keys/rotate", "post"),
        ("/v1/sys/keys/rewrap", "post"),
        ("/v1/sys/keys/reencrypt", "post"),
        ("/v1/users", "post"),
        ("/v1/users", "get"),
        ("/v1/users/{id}/disable", "post"),
        ("/v1/users/{id}/enable", "post"),
        ("/v1/users/{id}/unlock", "post"),
        ("/v1/users/{id}/reset", "post"),
        ("/v1/users/{id}/training", "post"),
        ("/v1/reports/training", "get"),
        ("/v1/auth/enroll", "post"),
        ("/v1/auth/login", "post"),
        ("/v1/auth/logout", "post"),
        ("/v1/auth/password", "post"),
        ("/v1/auth/session", "get"),
        ("/v1/roles", "get"),
        ("/v1/roles/{name}", "get"),
        ("/v1/roles/{name}", "put"),
        ("/v1/roles/{name}", "delete"),
        ("/v1/approvals", "get"),
        ("/v1/approvals/{id}/approve", "post"),
        ("/v1/approvals/{id}/deny", "post"),
    ];

    #[test]
    fn document_header_and_security_scheme() {
        let doc = document("1.2.3");
        assert_eq!(doc["openapi"], "3.0.3");
        assert_eq!(doc["info"]["title"], "Tijori");
        assert_eq!(doc["info"]["version"], "1.2.3");
        assert_eq!(doc["security"], json!([{"bearerAuth": []}]));
        let bearer = &doc["components"]["securitySchemes"]["bearerAuth"];
        assert_eq!(bearer["type"], "http");
        assert_eq!(bearer["scheme"], "bearer");
    }

    #[test]
    fn describes_every_operation_completely() {
        let doc = document("0");
        let mut ids = std::collections::BTreeSet::new();
        for (path, method) in OPERATIONS {
            let op = &doc["paths"][path][method];
            assert!(op.is_object(), "{method} {path} is not described");
            let id = op["operationId"].as_str().expect("operationId");
            assert!(ids.insert(id), "duplicate operationId {id}");
            assert!(op["summary"].is_string(), "{id}");
            assert!(op["description"].is_string(), "{id}");
            let public = matches!(
                path,
                "/v1/health"
                    | "/v1/health/ready"
                    | "/v1/openapi.json"
                    | "/v1/sys/unseal"
                    | "/v1/auth/enroll"
                    | "/v1/auth/login"
            );
            let security = public.then(|| json!([]));
            assert_eq!(op.get("security"), security.as_ref(), "{id}");
            let responses = op["responses"].as_object().expect("responses");
            assert!(responses.keys().any(|s| s.starts_with('2')), "{id}");
            let has_body = op.get("requestBody").is_some();
            let takes_input = has_body || op.get("parameters").is_some();
            let mut shared = vec![("429", true), ("400", takes_input), ("413", has_body)];
            shared.extend([("401", !public), ("403", !public), ("503", !public)]);
            for (status, expected) in shared {
                assert!(!expected || responses.contains_key(status), "{id} {status}");
            }
            for (status, response) in responses {
                let response = match response["$ref"].as_str() {
                    Some(reference) => doc.pointer(&reference[1..]).expect("resolves"),
                    None => response,
                };
                assert!(response["description"].is_string(), "{id} {status}");
                let headers = &response["headers"];
                assert!(headers["x-request-id"].is_object(), "{id} {status}");
            }
        }
        let paths = doc["paths"].as_object().expect("paths");
        let count = |item: &Value| item.as_object().map_or(0, Map::len);
        let described: usize = paths.values().map(count).sum();
        assert_eq!(described, OPERATIONS.len(), "update OPERATIONS");
        let limited = &doc["components"]["responses"]["RateLimited"];
        assert!(limited["headers"]["retry-after"].is_object());
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
            assert!(doc.pointer(&reference[1..]).is_some(), "{reference}");
        }
    }

    /// OpenAPI 3.0 (JSON Schema draft 4/5) wants `required` to list at least one name: a schema
    /// whose fields are all optional leaves it out.
    #[test]
    fn no_schema_has_an_empty_required_list() {
        fn walk(value: &Value, at: &str) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::Array(names)) = map.get("required") {
                        assert!(!names.is_empty(), "empty required list at {at}");
                    }
                    for (k, v) in map {
                        walk(v, &format!("{at}/{k}"));
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, at)),
                _ => {}
            }
        }
        walk(&document("0"), "");
    }

    #[test]
    fn request_schemas_refuse_unknown_fields() {
        let doc = document("0");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        let requests = schemas.iter().filter(|(name, _)| name.ends_with("Request"));
        let closed = requests.map(|(_, s)| s["additionalProperties"] == false);
        assert_eq!(closed.collect::<Vec<_>>(), [true; 17]);
        let tokenize = &schemas["TokenizeRequest"];
        assert_eq!(tokenize["required"], json!(["type", "value"]));
        let types = &tokenize["properties"]["type"]["enum"];
        assert_eq!(types.as_array().map(Vec::len), Some(7));
        assert_eq!(tokenize["properties"]["subject"]["nullable"], true);
        let batch = &schemas["BatchRequest"]["properties"];
        assert_eq!(batch["items"]["maxItems"], 10_000);
    }
}
