//! No panic reaches a client (issue 8): a handler that panics is answered `500 internal` with
//! its request id, the log says where it happened but never what the panic said (it quoted a
//! value), the audit trail records the failure, and the server goes on serving.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tijori_server::{app_with, install_panic_hook, AppState};
use tower::ServiceExt;

const ROOT: &str = "root-token-for-tests";
/// The value the panicking handler quotes in its panic message.
const SECRET: &str = "4111111111111111";

/// Log output, collected in memory.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A handler with a bug: it slices the value it was sent out of bounds, a panic whose standard
/// message prints the whole string.
async fn buggy(body: String) -> String {
    let value = format!("{body}{SECRET}");
    value[..value.len() + 1].to_owned()
}

async fn send(app: &Router, method: &str, uri: &str, body: &str) -> (StatusCode, String, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ROOT}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body = to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, id, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn a_panicking_handler_answers_500_logs_no_value_and_the_server_goes_on() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    )
    .unwrap();
    // The server's hook, then (for this test's own failures, whose messages hold no value) the
    // standard one, so that a failing assertion still shows what failed.
    let standard = std::panic::take_hook();
    install_panic_hook();
    let server = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        server(info);
        let message = info.payload().downcast_ref::<String>();
        if !message.is_some_and(|m| m.contains(SECRET)) {
            standard(info);
        }
    }));

    let state: AppState = common::state("panics", ROOT).await;
    let app = app_with(state, Router::new().route("/v1/test/panic", post(buggy)));

    let (status, id, body) = send(&app, "POST", "/v1/test/panic", SECRET).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "internal", "{body}");
    assert_eq!(error["error"]["request_id"], id.as_str(), "{body}");
    assert!(
        !body.contains(SECRET),
        "the answer quotes the value: {body}"
    );

    let log = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("panic") && l.contains(&id) && l.contains("panics.rs")),
        "no log line names the panic, its request and its place: {log}"
    );
    assert!(!log.contains(SECRET), "the log quotes the value: {log}");

    // The server goes on: the trail (read over the API) holds the failed request.
    let trail = common::failures(&app, ROOT).await;
    let record = common::record_of(&trail, &id);
    assert_eq!(record["outcome"], "failure", "{record}");
    assert_eq!(record["reason"], "internal", "{record}");
    assert!(!trail.to_string().contains(SECRET));

    let (status, _, body) = send(
        &app,
        "POST",
        "/v1/principals",
        r#"{"name": "after-the-panic", "roles": ["tokenizer"]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
