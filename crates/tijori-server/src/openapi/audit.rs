//! The audit endpoints' part of the OpenAPI document: reading the trail, its public key, and
//! the HMAC of a value.

use serde_json::{json, Map, Value};

use super::{body, fail, object, ok, request};

/// `(path, path item)` pairs.
pub(super) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/audit", json!({"get": list()})),
        ("/v1/audit/public-key", json!({"get": public_key()})),
        ("/v1/audit/hash", json!({"post": hash()})),
        ("/v1/audit/export", json!({"get": export()})),
    ]
}

fn export() -> Value {
    let lines = json!({"application/x-ndjson": {"schema": {"type": "string",
        "description": "JSON Lines: `{\"checkpoint\": {seq, hash, time, signature}}` and \
            `{seq, prev_hash, hash, record}`."}}});
    json!({
        "operationId": "exportAudit", "tags": ["audit"], "summary": "Export the audit trail",
        "description": "Roles: `admin`, `auditor`, `data_officer`. The records numbered above \
            `after`, at most `limit`, with their chain proofs and the signed checkpoints among \
            them, in the format of `tijori audit export`: `tijori audit verify --file` checks \
            a saved copy with the public key alone. Under dual control (`audit_export`) the \
            first call answers `202`; once a second operator approves, the same approval (in \
            `x-tijori-approval`) serves every page until it expires.",
        "parameters": [
            query("after", "Records numbered above this (0: from the start).", json!({"type": "integer", "minimum": 0})),
            query("limit", "Most records (default 10,000).", json!({"type": "integer", "minimum": 1, "maximum": 100_000})),
            super::policy::approval_header(),
        ],
        "responses": {
            "200": super::answer("Records in the export format.", Some(lines)),
            "202": super::policy::pending(),
            "400": fail("BadRequest"),
        },
    })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn list() -> Value {
    let string = json!({"type": "string"});
    let time = "RFC 3339 time (`2026-11-24T10:00:00Z`) or Unix seconds";
    json!({
        "operationId": "listAuditRecords", "tags": ["audit"], "summary": "Read the audit trail",
        "description": "Roles: `admin`, `auditor`, `data_officer`. Records in order, filtered; \
            each call reads at most 10,000 records, so a page may hold fewer matches than \
            `limit` while `next` is still set: pass it as `after` to carry on until `next` is \
            null. This read is itself audited (`read_audit`).",
        "parameters": [
            query("since", &format!("Records at or after this time: {time}."), string.clone()),
            query("until", &format!("Records before this time: {time}."), string.clone()),
            query("principal", "Only this principal's records.", string.clone()),
            query("operation", "Only this operation (`tokenize`, `detokenize`, ...).", string.clone()),
            query("token", "Only records naming this token.", string),
            query("outcome", "Only this outcome.", json!({"type": "string", "enum": ["success", "denied", "failure", "pending"]})),
            query("after", "Only records numbered above this (a previous page's `next`).", json!({"type": "integer"})),
            query("limit", "Most records answered (default 100).", json!({"type": "integer", "minimum": 1, "maximum": 1000})),
        ],
        "responses": {"200": ok("A page of records.", "AuditPage"), "400": fail("BadRequest")},
    })
}

fn public_key() -> Value {
    json!({
        "operationId": "getAuditPublicKey", "tags": ["audit"],
        "summary": "The public key of the trail's signed checkpoints",
        "description": "Roles: `admin`, `auditor`, `data_officer`. Keep a copy away from the \
            vault: `tijori audit verify --public-key` checks a trail or an export with it alone.",
        "responses": {"200": ok("The Ed25519 public key.", "AuditPublicKey")},
    })
}

fn hash() -> Value {
    json!({
        "operationId": "hashAuditValue", "tags": ["audit"],
        "summary": "The HMAC audit records carry for a value",
        "description": "Roles: `admin`, `auditor`, `data_officer`. Normalizes the value as its \
            type does and answers its HMAC under the audit key, as tokenize and search records \
            carry it in `value_hmacs`. Card security codes are never hashed. Each principal \
            may ask for a limited number an hour (60 by default, `tijori server \
            --audit-hash-per-hour`); beyond it the answer is `429 rate_limited` with \
            `retry-after`.",
        "requestBody": body("AuditHashRequest"),
        "responses": {"200": ok("The HMAC.", "AuditHash"), "422": fail("Unprocessable")},
    })
}

/// The audit schemas, to add to the document's.
pub(super) fn schemas() -> Map<String, Value> {
    let (string, integer) = (json!({"type": "string"}), json!({"type": "integer"}));
    let nullable = json!({"type": "string", "nullable": true});
    let record = object(
        &["time", "operation", "outcome"],
        json!({
            "time": {"type": "string", "format": "date-time"},
            "request_id": nullable, "principal_id": nullable, "principal_kind": nullable,
            "source": nullable, "operation": string, "resource": nullable, "data_type": nullable,
            "outcome": {"type": "string", "enum": ["success", "denied", "failure", "pending"]},
            "reason": nullable,
            "value_hmacs": {"type": "array", "items": string},
            "count": integer,
            "approval": string,
        }),
    );
    let entry = object(
        &["seq", "prev_hash", "hash", "record"],
        json!({
            "seq": integer, "prev_hash": string, "hash": string, "record": record,
        }),
    );
    let schemas = json!({
        "AuditPage": object(&["records", "next", "head"], json!({
            "records": {"type": "array", "items": entry},
            "next": {"type": "integer", "nullable": true},
            "head": integer,
        })),
        "AuditPublicKey": object(&["public_key", "fingerprint"], json!({
            "public_key": {"type": "string", "pattern": "^ed25519:[0-9a-f]{64}$"},
            "fingerprint": string,
        })),
        "AuditHashRequest": request(&["type", "value"], json!({
            "type": {"type": "string", "description": "A stored data type: card security codes \
                are never hashed.", "enum": super::type_names(true)},
            "value": string,
        })),
        "AuditHash": object(&["hmac"], json!({"hmac": {"type": "string", "pattern": "^hmac-sha256:[0-9a-f]{64}$"}})),
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
