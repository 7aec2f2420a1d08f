//! Operators' part of the OpenAPI document: accounts managed by administrators, enrollment
//! and login with a password and a TOTP code, sessions, and the training report.

use serde_json::{json, Map, Value};

use super::{body, fail, object, ok, request, schema_ref};

/// `(path, path item)` pairs.
pub(super) fn paths() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/users", json!({"post": create(), "get": list()})),
        (
            "/v1/users/{id}/disable",
            json!({"post": change("disableUser", "Disable an operator",
            "Ends every session of the account; logins are refused until it is enabled.")}),
        ),
        (
            "/v1/users/{id}/enable",
            json!({"post": change("enableUser", "Enable an operator",
            "Also starts a fresh inactivity period and clears failed logins.")}),
        ),
        (
            "/v1/users/{id}/unlock",
            json!({"post": change("unlockUser", "Lift a lockout",
            "Clears the failed-login count and the lock.")}),
        ),
        ("/v1/users/{id}/reset", json!({"post": reset()})),
        ("/v1/users/{id}/training", json!({"post": training()})),
        ("/v1/reports/training", json!({"get": report()})),
        ("/v1/auth/enroll", json!({"post": enroll()})),
        ("/v1/auth/login", json!({"post": login()})),
        ("/v1/auth/logout", json!({"post": logout()})),
        ("/v1/auth/password", json!({"post": password()})),
        ("/v1/auth/session", json!({"get": whoami()})),
    ]
}

fn user_id() -> Value {
    json!({"name": "id", "in": "path", "required": true,
        "schema": {"type": "string", "minLength": 1}, "description": "The `id` of an operator."})
}

fn create() -> Value {
    json!({
        "operationId": "createUser", "tags": ["operators"], "summary": "Create an operator",
        "description": "Role: `admin`. Creates a person's account awaiting enrollment and \
            answers `201` with a one-time `enrollment_code` (valid 72 hours by default) to \
            hand to the person, who then sets their own password and receives their own TOTP \
            secret (`enrollUser`): the administrator never holds either factor.",
        "requestBody": body("CreateUserRequest"),
        "responses": {
            "201": ok("The account, with its enrollment code.", "NewUser"),
            "409": fail("Conflict"), "422": fail("Unprocessable"),
        },
    })
}

fn list() -> Value {
    json!({
        "operationId": "listUsers", "tags": ["operators"], "summary": "List operators",
        "description": "Role: `admin`. Status, last login, lock and training of each account.",
        "responses": {"200": ok("All operators.", "UserList")},
    })
}

fn change(id: &str, summary: &str, what: &str) -> Value {
    json!({
        "operationId": id, "tags": ["operators"], "summary": summary,
        "description": format!("Role: `admin`. {what} Answers the account as it is now."),
        "parameters": [user_id()],
        "responses": {"200": ok("The account.", "User"), "404": fail("NotFound")},
    })
}

fn reset() -> Value {
    json!({
        "operationId": "resetUser", "tags": ["operators"], "summary": "Start enrollment over",
        "description": "Role: `admin`. For a lost authenticator or a forgotten password: drops \
            the password and TOTP secret, ends every session and issues a new enrollment code.",
        "parameters": [user_id()],
        "responses": {"200": ok("The account, with its new code.", "NewUser"), "404": fail("NotFound")},
    })
}

fn training() -> Value {
    json!({
        "operationId": "recordTraining", "tags": ["operators"],
        "summary": "Record a data-protection training attestation",
        "description": "Role: `admin`. The training was completed at `completed_at` (not in \
            the future); it is valid for 365 days from then (PCI DSS 12.6). While an \
            operator's training has lapsed, any reveal answers `403 training_expired`.",
        "parameters": [user_id()],
        "requestBody": body("TrainingRequest"),
        "responses": {
            "200": ok("The account.", "User"),
            "404": fail("NotFound"), "422": fail("Unprocessable"),
        },
    })
}

fn report() -> Value {
    json!({
        "operationId": "getTrainingReport", "tags": ["operators"],
        "summary": "Operators whose training lapses soon",
        "description": "Roles: `admin`, `auditor`, `data_officer`. Enabled operators whose \
            training attestation has lapsed, is missing, or lapses within `within_days` \
            (default 30), soonest first.",
        "parameters": [{"name": "within_days", "in": "query", "required": false,
            "schema": {"type": "integer", "minimum": 0, "maximum": 3660}}],
        "responses": {"200": ok("The report.", "TrainingReport")},
    })
}

fn enroll() -> Value {
    json!({
        "operationId": "enrollUser", "tags": ["auth"], "summary": "Enroll with a code",
        "description": "Needs no credential: the enrollment code is one. Sets the person's \
            password (at least 12 characters with letters and digits, not a common one, not \
            containing the username, not one of the last four) and answers their TOTP secret \
            as an `otpauth://` URI for an authenticator app, and in base32. The code is spent; \
            the first login with a valid one-time code confirms the authenticator.",
        "security": [],
        "requestBody": body("EnrollRequest"),
        "responses": {
            "200": ok("The TOTP secret, shown this once.", "Enrollment"),
            "401": fail("Unauthenticated"), "422": fail("Unprocessable"), "503": fail("Unavailable"),
        },
    })
}

fn login() -> Value {
    json!({
        "operationId": "login", "tags": ["auth"], "summary": "Log in",
        "description": "Needs no credential. Username, password and the current six-digit \
            TOTP code; a code is accepted once, with one 30-second step of clock drift. Answers \
            a session token for `Authorization: Bearer`, which ends after 15 idle minutes (by \
            default). Any failure answers the same `401`, whichever factor was wrong and \
            whether or not the account exists or is locked; 10 failures lock the account for \
            30 minutes, and 90 days without login disable it.",
        "security": [],
        "requestBody": body("LoginRequest"),
        "responses": {
            "200": ok("A session.", "Session"),
            "401": fail("Unauthenticated"), "503": fail("Unavailable"),
        },
    })
}

fn logout() -> Value {
    json!({
        "operationId": "logout", "tags": ["auth"], "summary": "End this session",
        "description": "An operator's session token only; answers `204`.",
        "responses": {"204": super::answer("Logged out.", None), "422": fail("Unprocessable")},
    })
}

fn password() -> Value {
    json!({
        "operationId": "changePassword", "tags": ["auth"], "summary": "Change your password",
        "description": "An operator's session only. The new password follows the enrollment \
            rules and differs from the last four. Answers `204`.",
        "requestBody": body("PasswordRequest"),
        "responses": {"204": super::answer("Changed.", None), "422": fail("Unprocessable")},
    })
}

fn whoami() -> Value {
    json!({
        "operationId": "getSession", "tags": ["auth"], "summary": "Who this credential is",
        "description": "Any credential: its principal, kind (`root`, `service`, `operator`), \
            roles, and whether training has lapsed.",
        "responses": {"200": ok("The caller.", "Caller")},
    })
}

/// The operators' schemas, to add to the document's.
pub(super) fn schemas() -> Map<String, Value> {
    let string = json!({"type": "string"});
    let time = json!({"type": "string", "format": "date-time"});
    let maybe_time = json!({"type": "string", "format": "date-time", "nullable": true});
    let roles = super::role_names(0);
    let user_fields = json!({
        "id": string, "username": string, "roles": roles,
        "status": {"type": "string", "enum": ["enrollment_pending", "confirmation_pending",
            "active", "locked", "inactive", "disabled"]},
        "created_at": time, "last_login_at": maybe_time, "locked_until": maybe_time,
        "training_valid_until": maybe_time,
    });
    let user_required = [
        "id",
        "username",
        "roles",
        "status",
        "created_at",
        "last_login_at",
        "locked_until",
        "training_valid_until",
    ];
    let mut new_fields = user_fields.clone();
    new_fields["enrollment_code"] = string.clone();
    new_fields["enrollment_expires_at"] = time.clone();
    let mut new_required = user_required.to_vec();
    new_required.extend(["enrollment_code", "enrollment_expires_at"]);
    let mut due_fields = user_fields.clone();
    due_fields["lapsed"] = json!({"type": "boolean"});
    let mut due_required = user_required.to_vec();
    due_required.push("lapsed");
    let secret = json!({"type": "string", "minLength": 1, "maxLength": 1024});
    let schemas = json!({
        "User": object(&user_required, user_fields),
        "NewUser": object(&new_required, new_fields),
        "UserList": object(&["items"], json!({"items": {"type": "array", "items": schema_ref("User")}})),
        "TrainingReport": object(&["within_days", "items"], json!({
            "within_days": {"type": "integer"},
            "items": {"type": "array", "items": object(&due_required, due_fields)},
        })),
        "CreateUserRequest": request(&["username", "roles"], json!({
            "username": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$"},
            "roles": super::role_names(1),
        })),
        "TrainingRequest": request(&["completed_at"], json!({"completed_at": time})),
        "EnrollRequest": request(&["username", "enrollment_code", "password"], json!({
            "username": string, "enrollment_code": secret, "password": secret,
        })),
        "Enrollment": object(&["user_id", "otpauth_uri", "secret"], json!({
            "user_id": string, "otpauth_uri": string, "secret": string,
        })),
        "LoginRequest": request(&["username", "password", "totp"], json!({
            "username": string, "password": secret, "totp": secret,
        })),
        "Session": object(&["session_token", "idle_timeout_seconds", "user"], json!({
            "session_token": string, "idle_timeout_seconds": {"type": "integer"},
            "user": schema_ref("User"),
        })),
        "PasswordRequest": request(&["current_password", "new_password"], json!({
            "current_password": secret, "new_password": secret,
        })),
        "Caller": object(&["id", "name", "kind", "roles", "training_lapsed"], json!({
            "id": string, "name": string,
            "kind": {"type": "string", "enum": ["root", "service", "operator"]},
            "roles": {"type": "array", "items": string}, "training_lapsed": {"type": "boolean"},
        })),
    });
    match schemas {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
