//! Regressions of what the API fuzz pass (scripts/api-fuzz.sh, schemathesis driven by the
//! OpenAPI document) found: inputs the document calls invalid that the server accepted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use axum::body::{to_bytes, Body};
use axum::http::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

const ROOT: &str = "root-token-for-tests";

async fn router(name: &str) -> axum::Router {
    common::router(&format!("fuzz-{name}"), ROOT).await
}

/// One request; answers the status and the JSON body (`null` for an empty one, a string for
/// one that is not a JSON value).
async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    token: &str,
    headers: &[(&str, &[u8])],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        req = req.header(*name, axum::http::HeaderValue::from_bytes(value).unwrap());
    }
    let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
    let resp = app.clone().oneshot(req.body(body).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    // An audit export is JSON Lines: kept as text.
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, json)
}

/// A new principal's API key.
async fn principal(app: &axum::Router, roles: &[&str]) -> String {
    let body = json!({"name": "svc", "roles": roles});
    let (status, created) = call(app, Method::POST, "/v1/principals", ROOT, &[], Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["api_key"].as_str().unwrap().to_owned()
}

/// The fuzzer sent `x-tijori-approval:` (empty) to operations that document the header with
/// `minLength: 1`; with dual control off, the server ignored it and answered 200. A malformed
/// approval header is now refused wherever the header is documented, guarded or not.
#[tokio::test]
async fn a_malformed_approval_header_is_refused_even_without_dual_control() {
    let app = router("approval-header").await;
    let revealer = principal(&app, &["revealer"]).await;
    let long = [b'a'; 65];
    let bad: [&[u8]; 4] = [b"", &long, b"apr 1", b"apr_\xff"];
    let rotate = || Some(json!({"key": "data"}));
    let detokenize = || Some(json!({"tokens": ["tok_0"]}));
    for value in bad {
        let header = [("x-tijori-approval", value)];
        let cases = [
            (Method::POST, "/v1/sys/keys/rotate", ROOT, rotate()),
            (Method::GET, "/v1/audit/export", ROOT, None),
            (Method::DELETE, "/v1/roles/some-role", ROOT, None),
            (
                Method::POST,
                "/v1/detokenize",
                revealer.as_str(),
                detokenize(),
            ),
        ];
        for (method, uri, token, body) in cases {
            let (status, json) = call(&app, method.clone(), uri, token, &header, body).await;
            let shown = String::from_utf8_lossy(value);
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{method} {uri} {shown:?}: {json}"
            );
            assert_eq!(json["error"]["code"], "invalid_request");
            assert!(json["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-tijori-approval"));
        }
    }
    // A well-formed id where no approval is needed is still ignored.
    let header = [(
        "x-tijori-approval",
        b"apr_0123456789abcdef01234567".as_slice(),
    )];
    let (status, json) = call(
        &app,
        Method::POST,
        "/v1/detokenize",
        &revealer,
        &header,
        detokenize(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let (status, _) = call(&app, Method::GET, "/v1/audit/export", ROOT, &header, None).await;
    assert_eq!(status, StatusCode::OK);
}

/// The document gives a key job step's `limit` as 1 to 1000; the server took 1001 (and any
/// larger number) as 1000. It now refuses a limit out of range with 422, and takes `null` as
/// the default, as the document now says.
#[tokio::test]
async fn key_job_steps_refuse_a_limit_over_1000() {
    let app = router("job-limit").await;
    for uri in ["/v1/sys/keys/rewrap", "/v1/sys/keys/reencrypt"] {
        for limit in [json!(0), json!(1001), json!(u64::MAX)] {
            let body = Some(json!({ "limit": limit }));
            let (status, json) = call(&app, Method::POST, uri, ROOT, &[], body).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{uri} {limit}: {json}"
            );
            assert_eq!(json["error"]["code"], "invalid_value");
        }
        for body in [
            None,
            Some(json!({})),
            Some(json!({"limit": null})),
            Some(json!({"limit": 1})),
            Some(json!({"limit": 1000})),
        ] {
            let shown = format!("{body:?}");
            let (status, json) = call(&app, Method::POST, uri, ROOT, &[], body).await;
            assert_eq!(status, StatusCode::OK, "{uri} {shown}: {json}");
            assert_eq!(json["remaining"], 0);
        }
    }
}

/// The fuzzer sent `[]` as the body of a key rotation, and the server rotated the key: serde
/// builds a struct from a JSON array of its fields in order as readily as from an object, so
/// `["text", "x"]` tokenized too. Every body, batch item and role rule must now be an object.
#[tokio::test]
async fn a_json_array_is_no_request_object() {
    let app = router("arrays").await;
    let key = principal(&app, &["tokenizer"]).await;
    let cases = [
        ("/v1/principals/root/rotate", ROOT, json!([])),
        ("/v1/principals/root/rotate", ROOT, json!([0])),
        ("/v1/tokens", key.as_str(), json!(["text", "a value"])),
        (
            "/v1/tokens/search",
            key.as_str(),
            json!(["text", "a value"]),
        ),
        ("/v1/principals", ROOT, json!(["svc", ["tokenizer"]])),
        ("/v1/sys/keys/rewrap", ROOT, json!([1])),
    ];
    for (uri, token, body) in cases {
        let shown = body.to_string();
        let (status, json) = call(&app, Method::POST, uri, token, &[], Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {shown}: {json}");
        assert_eq!(json["error"]["code"], "invalid_request");
        assert!(json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON object"));
    }
    let rule = json!({"rules": [[["text"], ["tokenize"]]]});
    let (status, json) = call(&app, Method::PUT, "/v1/roles/r", ROOT, &[], Some(rule)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{json}");
    // A batch refuses such an item in its place and tokenizes the others.
    let batch = json!({"items": [["text", "a value"], {"type": "text", "value": "a value"}]});
    let (status, json) = call(
        &app,
        Method::POST,
        "/v1/tokens/batch",
        &key,
        &[],
        Some(batch),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(json["items"][0]["error"]["code"], "invalid_request");
    assert!(json["items"][1]["token"].is_string(), "{json}");
    // Objects still work, and an empty rotate body is still the default.
    let (status, _) = call(
        &app,
        Method::POST,
        "/v1/principals/root/rotate",
        ROOT,
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
