//! The router in-process (axum's `oneshot`): every operation the OpenAPI document describes is
//! routed, and answers in our error format with a request id when called without a credential.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

mod common;

async fn router(name: &str) -> axum::Router {
    common::router(&format!("routes-{name}"), "root-token-for-tests").await
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_guarded() {
    let app = router("documented").await;
    let doc = tijori_server::openapi::document("test");
    let mut seen = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let public = op["security"].as_array().is_some_and(|s| s.is_empty());
            let uri = path
                .replace("{token}", "tok_0")
                .replace("{id}", "prn_0")
                .replace("{subject}", "cust_0")
                .replace("{name}", "role_0");
            let req = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let resp = app.clone().oneshot(req).await.unwrap();
            let status = resp.status();
            let id = resp
                .headers()
                .get("x-request-id")
                .map(|v| v.to_str().unwrap().to_owned());
            let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
            assert!(id.is_some(), "{method} {path}: no x-request-id");
            if public {
                // Answered without a credential (unseal refuses an empty body, or a dev
                // vault's shares, for its own reasons).
                assert!(
                    status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
                    "{method} {path}: {status}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} must need a credential"
                );
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(json["error"]["code"], "unauthenticated");
                assert_eq!(json["error"]["request_id"].as_str(), id.as_deref());
            }
            seen += 1;
        }
    }
    assert!(seen >= 14, "the document lists {seen} operations");
}

#[tokio::test]
async fn unknown_routes_and_methods_use_our_error_format() {
    let app = router("fallbacks").await;
    for (method, uri, status, code) in [
        (
            Method::GET,
            "/v1/nothing-here",
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            Method::PUT,
            "/v1/tokens",
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let resp = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(uri)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), status);
        let json: serde_json::Value =
            serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
        assert_eq!(json["error"]["code"], code);
    }
}

#[tokio::test]
async fn undecodable_path_segments_use_our_error_format() {
    let app = router("path").await;
    let req = Request::builder()
        .uri("/v1/tokens/%FF%FE")
        .header("authorization", "Bearer root-token-for-tests")
        .body(Body::empty())
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let json: serde_json::Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "invalid_request");
    assert!(json["error"]["request_id"]
        .as_str()
        .unwrap()
        .starts_with("req_"));
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_ascii_is_refused_in_our_format() {
    let app = router("idem-key").await;
    let create = Request::post("/v1/principals")
        .header("authorization", "Bearer root-token-for-tests")
        .body(Body::from(r#"{"name":"svc","roles":["tokenizer"]}"#))
        .unwrap();
    let resp = app.clone().oneshot(create).await.unwrap();
    let created: serde_json::Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    let key = created["api_key"].as_str().unwrap();
    let req = Request::post("/v1/tokens")
        .header("authorization", format!("Bearer {key}"))
        .header(
            "idempotency-key",
            axum::http::HeaderValue::from_bytes(b"k\xff").unwrap(),
        )
        .body(Body::from(r#"{"type":"text","value":"x"}"#))
        .unwrap();
    let resp = app.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let json: serde_json::Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(json["error"]["code"], "invalid_value");
    assert!(json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Idempotency-Key"));
}

/// A body that breaks off (a client gone mid-request, malformed chunks) is a request that could
/// not be read, answered and recorded as such: not a body over the size limit.
#[tokio::test]
async fn a_body_that_breaks_off_is_unreadable_not_too_large() {
    let app = router("body-breaks").await;
    let chunks = futures_util::stream::iter([
        Ok(axum::body::Bytes::from_static(b"{\"type\": \"text\", ")),
        Err(std::io::Error::other("the client left")),
    ]);
    let req = Request::builder()
        .method("POST")
        .uri("/v1/tokens")
        .header("authorization", "Bearer root-token-for-tests")
        .header("content-type", "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");

    let trail = common::failures(&app, "root-token-for-tests").await;
    let record = common::record_of(&trail, &id);
    assert_eq!(record["reason"], "invalid_request", "{record}");
}
