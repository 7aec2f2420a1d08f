//! Custom roles (the policy language) and dual-control approvals in the OpenAPI document.

use serde_json::{json, Map, Value};

use super::{body, fail, object, ok, request, schema_ref};

/// `(path, path item)` pairs.
pub(super) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/roles", json!({"get": list_roles()})),
        (
            "/v1/roles/{name}",
            json!({"get": get_role(), "put": put_role(), "delete": delete_role()}),
        ),
        ("/v1/approvals", json!({"get": list_approvals()})),
        (
            "/v1/approvals/{id}/approve",
            json!({"post": decide("approveRequest", "Approve a request", true)}),
        ),
        (
            "/v1/approvals/{id}/deny",
            json!({"post": decide("denyRequest", "Deny a request", false)}),
        ),
    ]
}

fn name() -> Value {
    json!({"name": "name", "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
        "description": "A role name."})
}

/// The `202` of a guarded operation: the pending approval.
pub(super) fn pending() -> Value {
    ok(
        "Dual control: the request needs a second operator's approval. Repeat it with the \
        `x-tijori-approval` header once approved.",
        "Approval",
    )
}

/// The optional approval header of a guarded operation.
pub(super) fn approval_header() -> Value {
    json!({"name": "x-tijori-approval", "in": "header", "required": false,
        "schema": {"type": "string", "minLength": 1, "maxLength": 64},
        "description": "Under dual control: the id of the approval given for this exact request."})
}

fn list_roles() -> Value {
    json!({
        "operationId": "listRoles", "tags": ["policies"], "summary": "List roles",
        "description": "Role: `admin`. The built-in roles (version 0), written in the policy \
            language, and the custom ones at their current version.",
        "responses": {"200": ok("Every role.", "RoleList")},
    })
}

fn get_role() -> Value {
    json!({
        "operationId": "getRole", "tags": ["policies"], "summary": "A role's versions",
        "description": "Role: `admin`. Every version of the role, oldest first: policy changes \
            are versioned and kept.",
        "parameters": [name()],
        "responses": {"200": ok("The versions.", "RoleHistory"), "404": fail("NotFound")},
    })
}

fn put_role() -> Value {
    json!({
        "operationId": "putRole", "tags": ["policies"], "summary": "Define or change a custom role",
        "description": "Role: `admin`. A role is a list of rules: data types (or `*`) x \
            operations (`tokenize`, `detokenize`, `search`, `delete`, `manage`, `audit`) x \
            reveal level (`full`, `masked`, `none`; detokenize needs one of the first two) x an \
            optional subject prefix (a tenant). Whatever no rule grants is denied. \
            `expected_version` (0 for a new role) refuses a change made on a stale read. Each \
            change is a new version. Under dual control (`policy_change`) the first call \
            answers `202` with a pending approval.",
        "parameters": [name(), approval_header()],
        "requestBody": body("PutRoleRequest"),
        "responses": {
            "200": ok("The role at its new version.", "Role"),
            "202": pending(),
            "409": fail("Conflict"), "422": fail("Unprocessable"),
        },
    })
}

fn delete_role() -> Value {
    json!({
        "operationId": "deleteRole", "tags": ["policies"], "summary": "Delete a custom role",
        "description": "Role: `admin`. Adds a version that removes the role; principals and \
            operators holding it lose its rules at once. Under dual control, `202` first.",
        "parameters": [name(), approval_header()],
        "responses": {
            "200": ok("The deleting version.", "Role"),
            "202": pending(),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

fn list_approvals() -> Value {
    json!({
        "operationId": "listApprovals", "tags": ["policies"], "summary": "Dual-control requests",
        "description": "Roles: `admin`, `auditor`, `data_officer`. Requests of the last `days` \
            (default 7), newest first, with who asked, who decided and whether they were used.",
        "parameters": [{"name": "days", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 1, "maximum": 366}}],
        "responses": {"200": ok("The requests.", "ApprovalList")},
    })
}

fn decide(id: &str, summary: &str, approve: bool) -> Value {
    let what = if approve { "Approves" } else { "Denies" };
    json!({
        "operationId": id, "tags": ["policies"], "summary": summary,
        "description": format!("An operator (a person logged in with a one-time code) other \
            than the requester, holding the right to do the operation itself. {what} a pending \
            request within its window (one hour by default)."),
        "parameters": [{"name": "id", "in": "path", "required": true,
            "schema": {"type": "string", "minLength": 1}, "description": "The approval id."}],
        "responses": {
            "200": ok("The request as decided.", "Approval"),
            "404": fail("NotFound"), "409": fail("Conflict"),
        },
    })
}

/// The schemas, to add to the document's.
pub(super) fn schemas() -> Map<String, Value> {
    let string = json!({"type": "string"});
    let maybe = json!({"type": "string", "nullable": true});
    let time = json!({"type": "string", "format": "date-time"});
    let maybe_time = json!({"type": "string", "format": "date-time", "nullable": true});
    let mut types = vec!["*"];
    types.extend(super::type_names(false));
    let rule = json!({
        "type": "object", "additionalProperties": false, "required": ["types", "operations"],
        "properties": {
            "types": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": types},
                "description": "Data types, or `*` for all. `manage` and `audit` cover the \
                whole vault: a rule granting them names only `*` and no subject prefix."},
            "operations": {"type": "array", "minItems": 1, "items": {"type": "string",
                "enum": ["tokenize", "detokenize", "search", "delete", "manage", "audit"]}},
            "reveal": {"type": "string", "enum": ["none", "masked", "full"]},
            "subject_prefix": {"type": "string", "minLength": 1, "maxLength": 256},
        },
    });
    let schemas = json!({
        "Rule": rule,
        "Role": object(&["name", "version", "builtin", "rules", "changed_at", "changed_by", "deleted"], json!({
            "name": string, "version": {"type": "integer"}, "builtin": {"type": "boolean"},
            "rules": {"type": "array", "items": schema_ref("Rule")},
            "changed_at": maybe_time, "changed_by": maybe, "deleted": {"type": "boolean"},
        })),
        "RoleList": object(&["items"], json!({"items": {"type": "array", "items": schema_ref("Role")}})),
        "RoleHistory": object(&["name", "versions"], json!({
            "name": string, "versions": {"type": "array", "items": schema_ref("Role")},
        })),
        "PutRoleRequest": request(&["rules"], json!({
            "rules": {"type": "array", "minItems": 1, "maxItems": 64, "items": schema_ref("Rule")},
            "expected_version": {"type": "integer", "minimum": 0, "nullable": true},
        })),
        "Approval": object(&["id", "operation", "summary", "requested_by", "requested_at",
            "expires_at", "status", "decided_by", "decided_at"], json!({
            "id": string, "operation": {"type": "string", "enum": ["policy_change", "key_rotation", "bulk_reveal", "audit_export"]},
            "summary": string, "requested_by": string, "requested_at": time, "expires_at": time,
            "status": {"type": "string", "enum": ["pending", "approved", "denied", "used", "expired"]},
            "decided_by": maybe, "decided_at": maybe_time,
            "message": {"type": "string", "description": "In a `202`: what to do next."},
        })),
        "ApprovalList": object(&["items"], json!({"items": {"type": "array", "items": schema_ref("Approval")}})),
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
