//! The in-process router over a fresh, unsealed dev vault, for the server's tests.
#![allow(dead_code)] // each test binary uses a different part
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;

use tijori_core::{SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_server::{app, AppState, Metrics, ServerConfig};
use tijori_store::sqlite::SqliteStore;

/// The router of a new vault in a fresh data dir named after `name`, with `root` as its root
/// token.
pub async fn router(name: &str, root: &str) -> axum::Router {
    app(state(name, root).await)
}

/// The state of a new vault in a fresh data dir named after `name`, with `root` as its root
/// token.
pub async fn state(name: &str, root: &str) -> AppState {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let vault = Vault::open(store, Arc::new(SystemClock), VaultConfig::default())
        .await
        .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    vault.unseal(Arc::new(provider)).await.unwrap();
    vault.install_root_token(root).await.unwrap();
    AppState {
        vault: Arc::new(vault),
        metrics: Arc::new(Metrics::default()),
        config: ServerConfig::default(),
        requests: Default::default(),
    }
}

/// The trail's records of failed requests, read over the API with `root`.
pub async fn failures(app: &axum::Router, root: &str) -> serde_json::Value {
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .uri("/v1/audit?outcome=failure")
        .header("authorization", format!("Bearer {root}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), axum::http::StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// The record of request `id` in a page of the trail.
pub fn record_of<'a>(page: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    &page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record"]["request_id"] == id)
        .unwrap_or_else(|| panic!("no audit record of request {id}: {page}"))["record"]
}
