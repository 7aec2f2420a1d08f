//! A request whose client leaves before the answer still runs to its audit record, and the
//! server's tracker of running requests (which a stopping server waits for before its
//! `system.stop` record) counts it until then.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tijori_server::{app_with, AppState};
use tokio::sync::Notify;
use tower::ServiceExt;

const ROOT: &str = "root-token-for-tests";

fn request(method: &str, uri: &str) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {ROOT}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_request_whose_client_left_is_tracked_until_its_record_is_written() {
    let state: AppState = common::state("client-gone", ROOT).await;
    let requests = state.requests.clone();
    let (started, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let handler = {
        let (started, release) = (started.clone(), release.clone());
        move || async move {
            started.notify_one();
            release.notified().await;
            "done"
        }
    };
    let app = app_with(state, Router::new().route("/v1/test/slow", post(handler)));

    // The client sends, and leaves while the handler runs.
    let client = tokio::spawn(app.clone().oneshot(request("POST", "/v1/test/slow")));
    started.notified().await;
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    assert_eq!(requests.len(), 1, "the request's work is not tracked");

    // Stopping: no more requests are awaited than those running; they end with their records.
    requests.close();
    release.notify_one();
    requests.wait().await;
    let resp = app
        .oneshot(request(
            "GET",
            "/v1/audit?operation=http%20POST%20/v1/test/slow",
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let trail: Value =
        serde_json::from_slice(&to_bytes(resp.into_body(), 1 << 20).await.unwrap()).unwrap();
    let records = trail["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{trail}");
    assert_eq!(records[0]["record"]["outcome"], "success", "{trail}");
}
