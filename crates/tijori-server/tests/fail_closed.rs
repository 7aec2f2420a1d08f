//! Fail closed: when the audit trail cannot be written, nothing is answered but
//! `503 unavailable`, and no value leaves the vault (PCI DSS 10; issue: audit trail).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use serde_json::{json, Value};
use tijori_core::audit::{AuditEvent, AuditSink, StoreAudit};
use tijori_core::{CoreError, SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_server::{app, AppState, Metrics, ServerConfig};
use tijori_store::sqlite::SqliteStore;
use tower::ServiceExt;

/// The real trail, until `broken` is set.
struct Breakable {
    inner: StoreAudit,
    broken: AtomicBool,
}

#[async_trait]
impl AuditSink for Breakable {
    async fn append(&self, events: Vec<AuditEvent>) -> Result<(), CoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(CoreError::Unavailable("disk full".into()));
        }
        self.inner.append(events).await
    }
}

async fn call(app: &axum::Router, token: &str, uri: &str, body: Value) -> (StatusCode, String) {
    let req = Request::post(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    (
        status,
        String::from_utf8(to_bytes(resp.into_body(), 1 << 20).await.unwrap().to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn reveals_are_refused_when_the_audit_trail_fails() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("fail-closed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let sink = Arc::new(Breakable {
        inner: StoreAudit(store.clone()),
        broken: AtomicBool::new(false),
    });
    let vault = Vault::open_with_audit(
        store,
        Arc::new(SystemClock),
        VaultConfig::default(),
        sink.clone(),
    )
    .await
    .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    vault.unseal(Arc::new(provider)).await.unwrap();
    vault
        .install_root_token("root-token-for-tests")
        .await
        .unwrap();
    let app = app(AppState {
        vault: Arc::new(vault),
        metrics: Arc::new(Metrics::default()),
        config: ServerConfig::default(),
        requests: Default::default(),
    });

    let (status, body) = call(
        &app,
        "root-token-for-tests",
        "/v1/principals",
        json!({"name": "svc", "roles": ["revealer"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let key = serde_json::from_str::<Value>(&body).unwrap()["api_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(
        &app,
        &key,
        "/v1/tokens",
        json!({"type": "iban", "value": "GB82WEST12345698765432"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = call(&app, &key, "/v1/detokenize", json!({"tokens": [token]})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("GB82WEST12345698765432"),
        "revealed while the trail works"
    );

    sink.broken.store(true, Ordering::SeqCst);
    let (status, body) = call(&app, &key, "/v1/detokenize", json!({"tokens": [token]})).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        !body.contains("GB82WEST"),
        "a value left the vault without an audit record: {body}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        "unavailable"
    );
    let (status, _) = call(
        &app,
        &key,
        "/v1/tokens",
        json!({"type": "text", "value": "x"}),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _) = call(&app, "wrong", "/v1/detokenize", json!({"tokens": [token]})).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "even refusals need their record"
    );

    sink.broken.store(false, Ordering::SeqCst);
    let (status, body) = call(&app, &key, "/v1/detokenize", json!({"tokens": [token]})).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "service resumes once the trail is writable: {body}"
    );
}
