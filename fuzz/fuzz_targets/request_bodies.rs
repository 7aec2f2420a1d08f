//! Every endpoint's request, through the real router in-process (axum's `oneshot`) over a dev
//! vault on a scratch data dir: the JSON body parsed by the server's extractor, the validation
//! behind it (data types, formats, policy rules, principal restrictions, passwords, time
//! filters, query parameters, path segments and bearer credentials) and the core operation it
//! reaches. Any panic in a handler aborts (libFuzzer's panic hook), even though the server
//! would answer 500; and an answer must carry a request id, be `500 internal` never, and, when
//! it is an error, be our error envelope without the submitted value in it.
//!
//! Each vault has three callers: the root token (admin), a service principal holding every
//! data role, and a logged-in operator (admin and revealer). Input: a byte choosing the
//! endpoint; a flags byte (bits 0-2 the credential: 0 the service principal, 1 root, 2 the
//! operator, 3 none, 4-7 the path segment itself as a bearer credential; bit 3 an
//! `Idempotency-Key`, bits 4-7 which one); then the path segment, a NUL, the query string, a
//! NUL, and the body. The vault is replaced by a fresh one every few thousand requests so
//! that its growing state does not slow the run down. `TIJORI_FUZZ_DEBUG=1` prints every
//! request and answer.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::{to_bytes, Body};
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tijori_core::{Clock, SystemClock, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_fuzz::{split_at_byte, split_first};
use tijori_server::{app, AppState, Metrics, ServerConfig};
use tijori_store::sqlite::SqliteStore;
use tower::ServiceExt;

const ROOT: &str = "fuzz-root-token-0123456789";
/// Requests served by one vault before it is replaced.
const REQUESTS_PER_VAULT: u64 = 5_000;

/// Every route but `POST /v1/sys/seal` (which would seal the vault for the rest of the run)
/// and the static OpenAPI document. `{}` is the path segment.
const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/tokens"),
    ("POST", "/v1/tokens/batch"),
    ("POST", "/v1/tokens/search"),
    ("GET", "/v1/tokens/{}"),
    ("DELETE", "/v1/tokens/{}"),
    ("POST", "/v1/detokenize"),
    ("DELETE", "/v1/subjects/{}"),
    ("POST", "/v1/principals"),
    ("GET", "/v1/principals"),
    ("POST", "/v1/principals/{}/disable"),
    ("POST", "/v1/principals/{}/enable"),
    ("POST", "/v1/principals/{}/rotate"),
    ("POST", "/v1/principals/{}/restrict"),
    ("POST", "/v1/users"),
    ("GET", "/v1/users"),
    ("POST", "/v1/users/{}/disable"),
    ("POST", "/v1/users/{}/enable"),
    ("POST", "/v1/users/{}/unlock"),
    ("POST", "/v1/users/{}/reset"),
    ("POST", "/v1/users/{}/training"),
    ("GET", "/v1/reports/training"),
    ("POST", "/v1/auth/enroll"),
    ("POST", "/v1/auth/login"),
    ("POST", "/v1/auth/logout"),
    ("POST", "/v1/auth/password"),
    ("GET", "/v1/auth/session"),
    ("GET", "/v1/roles"),
    ("GET", "/v1/roles/{}"),
    ("PUT", "/v1/roles/{}"),
    ("DELETE", "/v1/roles/{}"),
    ("GET", "/v1/approvals"),
    ("POST", "/v1/approvals/{}/approve"),
    ("POST", "/v1/approvals/{}/deny"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/audit/public-key"),
    ("POST", "/v1/audit/hash"),
    ("GET", "/v1/audit/export"),
    ("POST", "/v1/sys/unseal"),
    ("GET", "/v1/sys/unseal"),
    ("GET", "/v1/sys/keys"),
    ("POST", "/v1/sys/keys/rotate"),
    ("POST", "/v1/sys/keys/rewrap"),
    ("POST", "/v1/sys/keys/reencrypt"),
    ("GET", "/v1/health"),
    ("GET", "/v1/health/ready"),
    ("GET", "/metrics"),
];

/// The operator's password: long and uncommon enough for the password rules.
const OPERATOR_PASSWORD: &str = "fuzzing operator passphrase 8d1f";

/// One vault and the credentials of its callers.
struct Vault {
    router: axum::Router,
    service_key: String,
    operator_session: Option<String>,
}

struct Harness {
    rt: tokio::runtime::Runtime,
    vault: Option<Vault>,
    dir: PathBuf,
    served: u64,
    generation: u64,
}

fn scratch_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("TIJORI_FUZZ_TMP") {
        return PathBuf::from(dir);
    }
    // A tmpfs makes the store's fsyncs nearly free.
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

/// RFC 4648 base32 (the TOTP secret's text form), without padding.
fn base32(text: &str) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'2'..=b'7' => c - b'2' + 26,
            _ => continue,
        };
        acc = (acc << 5) | u32::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// A JSON call made while setting a vault up; the answer's body.
async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: serde_json::Value,
) -> serde_json::Value {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(b) = bearer {
        req = req.header("authorization", format!("Bearer {b}"));
    }
    let req = req.body(Body::from(body.to_string())).expect("request");
    let resp = router.clone().oneshot(req).await.expect("infallible");
    let bytes = to_bytes(resp.into_body(), 1 << 20).await.expect("body");
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// A fresh dev vault in `dir` with its three callers.
async fn new_vault(dir: PathBuf) -> Vault {
    let store = Arc::new(SqliteStore::open(&dir).expect("store"));
    let vault = tijori_core::Vault::open(store, Arc::new(SystemClock), VaultConfig::default())
        .await
        .expect("vault");
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).expect("key");
    vault.unseal(Arc::new(provider)).await.expect("unseal");
    vault.install_root_token(ROOT).await.expect("root token");
    let router = app(AppState {
        vault: Arc::new(vault),
        metrics: Arc::new(Metrics::default()),
        config: ServerConfig::default(),
        requests: Default::default(),
    });
    let roles = serde_json::json!(["revealer", "tokenizer", "data_officer", "auditor"]);
    let created = call(
        &router,
        "POST",
        "/v1/principals",
        Some(ROOT),
        serde_json::json!({"name": "fuzz-service", "roles": roles}),
    )
    .await;
    let service_key = created["api_key"]
        .as_str()
        .expect("a service principal")
        .to_owned();

    // An operator: created, enrolled (its TOTP secret computed here) and logged in.
    let user = call(
        &router,
        "POST",
        "/v1/users",
        Some(ROOT),
        serde_json::json!({"username": "fuzz-operator", "roles": ["admin", "revealer"]}),
    )
    .await;
    let code = user["enrollment_code"].as_str().unwrap_or_default();
    // Trained just now, so that reveals to the operator are not refused for a lapse.
    let trained = serde_json::json!({"completed_at": tijori_core::rfc3339(SystemClock.now())});
    if let Some(id) = user["id"].as_str() {
        call(
            &router,
            "POST",
            &format!("/v1/users/{id}/training"),
            Some(ROOT),
            trained,
        )
        .await;
    }
    let enrolled = call(
        &router,
        "POST",
        "/v1/auth/enroll",
        None,
        serde_json::json!(
        {"username": "fuzz-operator", "enrollment_code": code, "password": OPERATOR_PASSWORD}),
    )
    .await;
    let operator_session = enrolled["secret"]
        .as_str()
        .and_then(|s| tijori_crypto::TotpSecret::from_bytes(&base32(s)).ok())
        .map(|secret| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            secret.code_at(now)
        });
    let operator_session = match operator_session {
        Some(totp) => call(
            &router,
            "POST",
            "/v1/auth/login",
            None,
            serde_json::json!(
            {"username": "fuzz-operator", "password": OPERATOR_PASSWORD, "totp": totp}),
        )
        .await["session_token"]
            .as_str()
            .map(str::to_owned),
        None => None,
    };
    if operator_session.is_none() {
        eprintln!("request_bodies: no operator session; operator requests go without a credential");
    }
    Vault {
        router,
        service_key,
        operator_session,
    }
}

impl Harness {
    fn new() -> Harness {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tijori_fuzz::remove_stale_scratch(&scratch_base(), "tijori-fuzz-requests-");
        Harness {
            rt,
            vault: None,
            dir: PathBuf::new(),
            served: 0,
            generation: 0,
        }
    }

    fn vault(&mut self) -> &Vault {
        if self.served >= REQUESTS_PER_VAULT {
            self.vault = None;
            let _ = std::fs::remove_dir_all(&self.dir);
            self.served = 0;
        }
        if self.vault.is_none() {
            self.generation += 1;
            self.dir = scratch_base().join(format!(
                "tijori-fuzz-requests-{}-{}",
                std::process::id(),
                self.generation
            ));
            let _ = std::fs::remove_dir_all(&self.dir);
            std::fs::create_dir_all(&self.dir).expect("scratch dir");
            self.vault = Some(self.rt.block_on(new_vault(self.dir.clone())));
        }
        self.vault.as_ref().expect("just made")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn harness() -> &'static Mutex<Harness> {
    static H: std::sync::OnceLock<Mutex<Harness>> = std::sync::OnceLock::new();
    H.get_or_init(|| Mutex::new(Harness::new()))
}

/// Percent-encodes every byte but the unreserved ones (and `keep`).
fn encode(bytes: &[u8], keep: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string values of `"value"` fields anywhere in a JSON body: what must never be echoed.
fn submitted_values(body: &[u8]) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match v {
                        serde_json::Value::String(s)
                            if k == "value" || k == "share" || k == "password" =>
                        {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
        walk(&v, &mut out);
    }
    out.retain(|s| s.len() >= 8 && s.chars().any(|c| c.is_ascii_alphanumeric()));
    out
}

fuzz_target!(|data: &[u8]| {
    let (which, rest) = split_first(data);
    let (flags, rest) = split_first(rest);
    let (param, rest) = split_at_byte(rest, 0);
    let (query, body) = split_at_byte(rest, 0);
    let (method, template) = ENDPOINTS[usize::from(which) % ENDPOINTS.len()];

    let mut uri = template.replace("{}", &encode(param, b""));
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(&encode(query, b"=&"));
    }
    let mut h = harness().lock().unwrap_or_else(|e| e.into_inner());
    let vault = h.vault();
    let router = vault.router.clone();
    let bearer: Option<Vec<u8>> = match flags & 7 {
        0 => Some(vault.service_key.as_bytes().to_vec()),
        1 => Some(ROOT.as_bytes().to_vec()),
        2 => vault
            .operator_session
            .as_ref()
            .map(|s| s.as_bytes().to_vec()),
        3 => None,
        _ => Some(param.to_vec()),
    };
    let mut req = Request::builder().method(method).uri(uri.as_str());
    if let Some(b) = bearer {
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&[b"Bearer ".as_slice(), &b].concat()) {
            req = req.header("authorization", v);
        }
    }
    if flags & 8 != 0 {
        req = req.header("idempotency-key", format!("fuzz-{}", flags >> 4));
    }
    let req = req
        .header("content-type", "application/json")
        .body(Body::from(body.to_vec()))
        .expect("a request from an encoded uri");
    h.served += 1;
    let (status, id, answer) = h.rt.block_on(async move {
        let resp = router.oneshot(req).await.expect("the router is infallible");
        let status = resp.status();
        let id = resp.headers().get("x-request-id").is_some();
        let answer = to_bytes(resp.into_body(), 64 << 20)
            .await
            .expect("the answer reads");
        (status, id, answer)
    });
    drop(h);

    if std::env::var_os("TIJORI_FUZZ_DEBUG").is_some() {
        eprintln!(
            "{method} {uri} -> {status} {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert!(id, "{method} {template}: no request id");
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{method} {template}: 500 {}",
        String::from_utf8_lossy(&answer)
    );
    if status.is_client_error() || status.is_server_error() {
        let envelope: serde_json::Value =
            serde_json::from_slice(&answer).expect("an error answer is JSON");
        assert!(
            envelope["error"]["code"].is_string(),
            "not our error envelope"
        );
        assert!(envelope["error"]["request_id"].is_string());
        let text = String::from_utf8_lossy(&answer);
        for v in submitted_values(body) {
            assert!(
                !text.contains(&v),
                "{method} {template}: the error echoes a value"
            );
        }
        assert!(!text.contains(ROOT), "the error shows the root token");
        assert!(
            !text.contains(OPERATOR_PASSWORD),
            "the error shows a password"
        );
    }
});
