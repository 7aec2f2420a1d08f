//! The key lifecycle's part of the OpenAPI document: unsealing with custodians' key shares,
//! rotation and its jobs, and erasure of a data subject by destroying its key.

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
        ("/v1/sys/keys", json!({"get": report()})),
        ("/v1/sys/keys/rotate", json!({"post": rotate()})),
        (
            "/v1/sys/keys/rewrap",
            json!({"post": job("rewrapKeys", "rewrap")}),
        ),
        (
            "/v1/sys/keys/reencrypt",
            json!({"post": job("reencryptKeys", "re-encrypt")}),
        ),
    ]
}

fn report() -> Value {
    json!({
        "operationId": "getKeys", "tags": ["keys"], "summary": "Key versions and cryptoperiods",
        "description": "Role: `admin`. The key-encryption key's and the vault-wide data key's \
            versions with their creation dates, records per version (data keys under a KEK \
            version, values under a data key), whether each is past its cryptoperiod, and the \
            backlog of the rewrap and re-encrypt jobs.",
        "responses": {"200": ok("The key report.", "KeyReport")},
    })
}

fn rotate() -> Value {
    json!({
        "operationId": "rotateKey", "tags": ["keys"], "summary": "Make a new key version",
        "description": "Role: `admin`. `kek` makes a new key-encryption key under the root of \
            trust; `data` a new vault-wide data key. New writes use it at once; old versions \
            stay readable until the rewrap and re-encrypt jobs have moved everything. Under \
            dual control (`key_rotation`) the first call answers `202` with a pending approval.",
        "parameters": [super::policy::approval_header()],
        "requestBody": body("RotateRequest"),
        "responses": {
            "200": ok("The new version.", "Rotated"),
            "202": super::policy::pending(),
            "422": fail("Unprocessable"),
        },
    })
}

fn job(id: &str, name: &str) -> Value {
    json!({
        "operationId": id, "tags": ["keys"], "summary": format!("One step of the {name} job"),
        "description": format!("Role: `admin`. Moves up to `limit` (default and most 1000) \
            records and answers how many moved and how many remain; call again until \
            `remaining` is 0. Each step commits on its own, so the job resumes after a crash. \
            The body may be empty."),
        "requestBody": {"required": false, "content": {"application/json": {"schema": super::schema_ref("KeyJobRequest")}}},
        "responses": {"200": ok("What the step did.", "KeyJobStep"), "422": fail("Unprocessable")},
    })
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
            vault is sealed. A vault not unsealed with shares (dev, HSM) answers a threshold \
            of 0.",
        "security": [],
        "responses": {
            "200": ok("Where unsealing stands.", "UnsealProgress"),
            "503": fail("Unavailable"),
        },
    })
}

/// The key lifecycle's schemas, to add to the document's.
pub(super) fn schemas() -> Map<String, Value> {
    let integer = json!({"type": "integer", "minimum": 0, "maximum": 255});
    let count = json!({"type": "integer", "minimum": 0});
    let version = object(
        &[
            "version",
            "created_at",
            "records",
            "active",
            "cryptoperiod_passed",
        ],
        json!({
            "version": {"type": "integer"}, "created_at": {"type": "string", "format": "date-time"},
            "records": count, "active": {"type": "boolean"}, "cryptoperiod_passed": {"type": "boolean"},
        }),
    );
    let family = object(
        &["cryptoperiod_days", "versions"],
        json!({"cryptoperiod_days": {"type": "integer"}, "versions": {"type": "array", "items": version}}),
    );
    // Every field optional: OpenAPI 3.0 wants no `required` list rather than an empty one.
    let mut job_request = request(
        &[],
        json!({"limit": {"type": "integer", "nullable": true, "minimum": 1, "maximum": 1000,
            "description": "Most records to move; null or absent: 1000."}}),
    );
    if let Some(fields) = job_request.as_object_mut() {
        fields.remove("required");
    }
    let schemas = json!({
        "KeyReport": object(&["kek", "data", "subject_keys", "rewrap_pending", "reencrypt_pending"], json!({
            "kek": family.clone(), "data": family,
            "subject_keys": count, "rewrap_pending": count, "reencrypt_pending": count,
        })),
        "RotateRequest": request(&["key"], json!({"key": {"type": "string", "enum": ["kek", "data"]}})),
        "Rotated": object(&["key", "version"], json!({"key": {"type": "string"}, "version": {"type": "integer"}})),
        "KeyJobRequest": job_request,
        "KeyJobStep": object(&["moved", "remaining", "destroyed"], json!({
            "moved": count, "remaining": count, "destroyed": count,
        })),
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
