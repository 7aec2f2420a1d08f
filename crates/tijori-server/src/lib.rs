//! Tijori's HTTP face: `app(state) -> Router` speaking the contract of API.md. Authentication,
//! the JSON extractor with our error format, the single error boundary, request ids and metrics
//! live here; every decision about data is the core's. This crate never logs a request body.
#![forbid(unsafe_code)]

mod context;
mod error;
mod extract;
pub mod listener;
mod metrics;
pub mod openapi;
mod panics;
mod routes;
pub mod tls;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tijori_core::Vault;

pub use context::record_rejected;
pub use error::ApiError;
pub use metrics::Metrics;
pub use panics::install_panic_hook;
pub use tls::{PeerCertificate, TlsConfig, TlsFiles};

/// Limits of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (API.md: 1 MiB by default).
    pub body_limit: usize,
    /// How long a client may take to send a request's body (then `408`).
    pub body_timeout: std::time::Duration,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            body_limit: 1024 * 1024,
            body_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub vault: Arc<Vault>,
    pub metrics: Arc<Metrics>,
    pub config: ServerConfig,
    /// Every request's work, run as a task of its own so that it ends (and writes its audit
    /// record) even if the client leaves. A stopping server waits for them before its
    /// `system.stop` record: an erasure whose client hung up still gets its record.
    pub requests: tokio_util::task::TaskTracker,
}

/// The whole API as a router; tests drive it with `oneshot`, the CLI serves it on a socket.
pub fn app(state: AppState) -> Router {
    app_with(state, Router::new())
}

/// The API plus `extra` routes, all under the same request context (request ids, audit,
/// limits, panic boundary). The server's own tests use it to add a handler that panics.
#[doc(hidden)]
pub fn app_with(state: AppState, extra: Router<AppState>) -> Router {
    Router::new()
        .merge(extra)
        .route("/v1/health", get(routes::sys::health))
        .route("/v1/health/ready", get(routes::sys::ready))
        .route("/v1/openapi.json", get(routes::sys::openapi))
        .route("/metrics", get(routes::sys::metrics))
        .route("/v1/sys/seal", post(routes::sys::seal))
        .route("/v1/sys/keys", get(routes::keys::report))
        .route("/v1/sys/keys/rotate", post(routes::keys::rotate))
        .route("/v1/sys/keys/rewrap", post(routes::keys::rewrap))
        .route("/v1/sys/keys/reencrypt", post(routes::keys::reencrypt))
        .route(
            "/v1/sys/unseal",
            post(routes::sys::unseal).get(routes::sys::unseal_progress),
        )
        .route("/v1/audit", get(routes::audit::list))
        .route("/v1/audit/public-key", get(routes::audit::public_key))
        .route("/v1/audit/hash", post(routes::audit::hash))
        .route("/v1/audit/export", get(routes::audit::export))
        .route("/v1/tokens", post(routes::tokens::create))
        .route("/v1/tokens/batch", post(routes::tokens::batch))
        .route("/v1/tokens/search", post(routes::tokens::search))
        .route(
            "/v1/tokens/{token}",
            get(routes::tokens::describe).delete(routes::tokens::delete),
        )
        .route("/v1/detokenize", post(routes::tokens::detokenize))
        .route(
            "/v1/subjects/{subject}",
            axum::routing::delete(routes::subjects::erase),
        )
        .route(
            "/v1/principals",
            post(routes::principals::create).get(routes::principals::list),
        )
        .route(
            "/v1/principals/{id}/disable",
            post(routes::principals::disable),
        )
        .route(
            "/v1/principals/{id}/enable",
            post(routes::principals::enable),
        )
        .route(
            "/v1/principals/{id}/rotate",
            post(routes::principals::rotate),
        )
        .route(
            "/v1/principals/{id}/restrict",
            post(routes::principals::restrict),
        )
        .route(
            "/v1/users",
            post(routes::users::create).get(routes::users::list),
        )
        .route("/v1/users/{id}/disable", post(routes::users::disable))
        .route("/v1/users/{id}/enable", post(routes::users::enable))
        .route("/v1/users/{id}/unlock", post(routes::users::unlock))
        .route("/v1/users/{id}/reset", post(routes::users::reset))
        .route("/v1/users/{id}/training", post(routes::users::training))
        .route("/v1/reports/training", get(routes::users::training_report))
        .route("/v1/auth/enroll", post(routes::auth::enroll))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/auth/logout", post(routes::auth::logout))
        .route("/v1/auth/password", post(routes::auth::password))
        .route("/v1/auth/session", get(routes::auth::whoami))
        .route("/v1/roles", get(routes::policy::list_roles))
        .route(
            "/v1/roles/{name}",
            get(routes::policy::role_history)
                .put(routes::policy::put_role)
                .delete(routes::policy::delete_role),
        )
        .route("/v1/approvals", get(routes::policy::list_approvals))
        .route("/v1/approvals/{id}/approve", post(routes::policy::approve))
        .route("/v1/approvals/{id}/deny", post(routes::policy::deny))
        .fallback(routes::sys::not_found)
        .method_not_allowed_fallback(routes::sys::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            context::request_context,
        ))
        // The request context reads and limits bodies; axum's own limit would only repeat it
        // (and its 2 MiB default would cap a larger configured limit).
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}
