//! The authorization matrix: every operation of the OpenAPI document, called by a principal of
//! each built-in role, is refused with `403 forbidden` exactly when API.md's role table says
//! so. An operation missing from the table below fails the test, so a new endpoint cannot
//! ship without its row.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

const ROOT: &str = "root-token-for-matrix";
const ROLES: [&str; 6] = [
    "admin",
    "tokenizer",
    "revealer",
    "support",
    "auditor",
    "data_officer",
];

/// Who may call an operation.
#[derive(Clone, Copy, Debug)]
enum Needs {
    /// No credential at all.
    Public,
    /// Any valid credential (the handler may then refuse a non-operator with 422).
    Anyone,
    /// An operator (a person); any service principal is refused with 403.
    Operator,
    Roles(&'static [&'static str]),
}

fn needs(operation_id: &str) -> Needs {
    use Needs::*;
    const TOKENIZE: &[&str] = &["tokenizer", "revealer"];
    const REVEAL: &[&str] = &["revealer", "support"];
    const SEARCH: &[&str] = &["tokenizer", "revealer", "support", "data_officer"];
    const DELETE: &[&str] = &["data_officer"];
    const MANAGE: &[&str] = &["admin"];
    const AUDIT: &[&str] = &["admin", "auditor", "data_officer"];
    match operation_id {
        "getHealth" | "getReadiness" | "getOpenApi" | "unsealVault" | "getUnsealProgress"
        | "enrollUser" | "login" => Public,
        "getSession" | "logout" | "changePassword" => Anyone,
        "approveRequest" | "denyRequest" => Operator,
        "createToken" | "createTokenBatch" => Roles(TOKENIZE),
        "detokenize" => Roles(REVEAL),
        "searchToken" | "getToken" => Roles(SEARCH),
        "deleteToken" | "eraseSubject" => Roles(DELETE),
        "createPrincipal" | "listPrincipals" | "disablePrincipal" | "enablePrincipal"
        | "rotatePrincipalKey" | "restrictPrincipal" | "sealVault" | "getMetrics" | "getKeys"
        | "rotateKey" | "rewrapKeys" | "reencryptKeys" | "createUser" | "listUsers"
        | "disableUser" | "enableUser" | "unlockUser" | "resetUser" | "recordTraining"
        | "listRoles" | "getRole" | "putRole" | "deleteRole" => Roles(MANAGE),
        "listAuditRecords" | "exportAudit" | "getAuditPublicKey" | "hashAuditValue"
        | "getTrainingReport" | "listApprovals" => Roles(AUDIT),
        other => panic!("operation {other} has no row in the authorization matrix"),
    }
}

async fn call(
    app: &axum::Router,
    method: &str,
    uri: &str,
    token: &str,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    let body = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn every_operation_for_every_built_in_role() {
    let app = common::router("authz-matrix", ROOT).await;
    let mut keys = Vec::new();
    for role in ROLES {
        let (status, body) = call(
            &app,
            "POST",
            "/v1/principals",
            ROOT,
            Some(&json!({"name": format!("m-{role}"), "roles": [role]})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        keys.push((role, body["api_key"].as_str().unwrap().to_owned()));
    }
    let doc = tijori_server::openapi::document("test");
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap();
            // Sealing would stop the rest of the matrix: checked last, below.
            if id == "sealVault" {
                continue;
            }
            let uri = path
                .replace("{token}", "tok_0")
                .replace("{id}", "unknown_0")
                .replace("{subject}", "cust_0")
                .replace("{name}", "role_0");
            let body = op.get("requestBody").map(|_| json!({}));
            for (role, key) in &keys {
                let (status, answer) = call(&app, method, &uri, key, body.as_ref()).await;
                let code = answer["error"]["code"].as_str().unwrap_or("");
                let allowed = match needs(id) {
                    Needs::Public | Needs::Anyone => true,
                    Needs::Operator => false,
                    Needs::Roles(roles) => roles.contains(role),
                };
                assert_ne!(status, StatusCode::UNAUTHORIZED, "{id} as {role}: {answer}");
                assert!(
                    !status.is_server_error(),
                    "{id} as {role}: {status} {answer}"
                );
                if allowed {
                    assert_ne!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{id} must be allowed to {role}: {answer}"
                    );
                } else {
                    assert_eq!(
                        (status, code),
                        (StatusCode::FORBIDDEN, "forbidden"),
                        "{id} must be refused to {role}: {answer}"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 6 * 40, "only {checked} calls");
    for (role, key) in keys.iter().rev() {
        let (status, _) = call(&app, "POST", "/v1/sys/seal", key, None).await;
        assert_eq!(
            status == StatusCode::FORBIDDEN,
            *role != "admin",
            "sealVault as {role}"
        );
    }
}
