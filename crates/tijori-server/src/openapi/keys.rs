//! The key lifecycle's part of the OpenAPI document: unsealing with custodians' key shares,
//! and erasure of a data subject by destroying its key.

use serde_json::{json, Map, Value};

use super::{body, fail, object, ok, request};

/// `(path, path item)` pairs.
pub(super) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        (
            "/v1/sys/unseal",
            json!({"post": unseal(), "get": progress()}),
        ),
        ("/v1/subjects/{subject}", json!({"delete": erase()})),
    ]
}

fn erase() -> Value {
    json!({
        "operationId": "eraseSubject", "tags": ["subjects"],
        "summary": "Erase everything stored for a data subject",
        "description": "Role: `data_officer`. Crypto-shredding: destroys the subject's own data \
            key, under which every value stored with this `subject` is encrypted, and deletes \
            the subject's tokens; they answer `404` from then on, and no copy of the key is \
            left in the database files. Answers the counts; an unknown or already erased \
            subject answers zeros. Audited with the count.",
        "parameters": [{"name": "subject", "in": "path", "required": true,
            "schema": {"type": "string", "minLength": 1, "maxLength": 256},
            "description": "The `subject` values were tokenized with."}],
        "responses": {"200": ok("Erased.", "Erasure"), "422": fail("Unprocessable")},
    })
}

fn unseal() -> Value {
    json!({
        "operationId": "unsealVault", "tags": ["system"], "summary": "Give a custodian's key share",
        "description": "Needs no credential: the share is one. Takes one key share (as `tijori \
            operator init` printed it) towards unsealing a production vault and answers the \
            progress; at the threshold the root key is rebuilt, the vault unseals and the key \
            is dropped. A malformed, mistyped, repeated or foreign share answers `422` and \
            counts for nothing; a set of shares that rebuilds a wrong key answers `422` and \
            unsealing starts over. Audited, without the share.",
        "security": [],
        "requestBody": body("UnsealRequest"),
        "responses": {
            "200": ok("The share was taken.", "UnsealProgress"),
            "422": fail("Unprocessable"),
            "503": fail("Unavailable"),
        },
    })
}

fn progress() -> Value {
    json!({
        "operationId": "getUnsealProgress", "tags": ["system"],
        "summary": "How far unsealing has come",
        "description": "Needs no credential. Shares received of the threshold, and whether the \
            vault is sealed. A dev vault answers `422`: it is not unsealed with shares.",
        "security": [],
        "responses": {
            "200": ok("Where unsealing stands.", "UnsealProgress"),
            "422": fail("Unprocessable"),
            "503": fail("Unavailable"),
        },
    })
}

/// The key lifecycle's schemas, to add to the document's.
pub(super) fn schemas() -> Map<String, Value> {
    let integer = json!({"type": "integer", "minimum": 0, "maximum": 255});
    let schemas = json!({
        "Erasure": object(&["subject", "tokens_erased", "keys_destroyed"], json!({
            "subject": {"type": "string"},
            "tokens_erased": {"type": "integer", "minimum": 0},
            "keys_destroyed": {"type": "integer", "minimum": 0},
        })),
        "UnsealRequest": request(&["share"], json!({"share": {"type": "string", "pattern": "^tjs1-"}})),
        "UnsealProgress": object(&["sealed", "progress", "threshold"], json!({
            "sealed": {"type": "boolean"}, "progress": integer, "threshold": integer,
        })),
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
