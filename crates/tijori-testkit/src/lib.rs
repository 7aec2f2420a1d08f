//! Test harness: starts the real `tijori` binary on `127.0.0.1:0` with a fresh data dir, learns
//! its port from the line it prints, captures everything it writes (so tests can scan logs for
//! leaked values), and speaks HTTP to it, or HTTPS trusting the certificate it was given. For
//! tests only.
#![forbid(unsafe_code)]
// A harness that cannot start its server has nothing better to do than fail the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod pki;
pub mod softhsm;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// A fresh, empty directory under the build's temp dir, unique per call.
pub fn temp_dir(base: &Path, name: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = base.join(format!("{name}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An answer: status, selected headers, JSON body (`Null` when empty or not JSON), raw text.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub request_id: Option<String>,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub json: Value,
    pub text: String,
}

/// A running `tijori server --dev`.
pub struct Server {
    child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub root_token: String,
    bin: PathBuf,
    log: Arc<Mutex<String>>,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `bin server --dev` on a free loopback port with `data_dir` and `root_token`.
    pub fn start(bin: &Path, data_dir: &Path, root_token: &str) -> Server {
        Server::start_with(bin, data_dir, root_token, &[])
    }

    /// As [`Server::start`], with extra arguments for `tijori server`.
    pub fn start_with(bin: &Path, data_dir: &Path, root_token: &str, extra: &[&str]) -> Server {
        let mut args = vec!["--dev", "--dev-root-token", root_token];
        args.extend_from_slice(extra);
        Server::spawn(bin, data_dir, root_token, &args, &[], None)
    }

    /// Starts `bin server` in production mode (sealed until unsealed) on a free loopback port
    /// with `data_dir` as `tijori operator init` left it; `root_token` is the one init printed.
    /// Plain HTTP, as behind a TLS proxy on the same host (`--insecure-plain-http`).
    pub fn start_production(bin: &Path, data_dir: &Path, root_token: &str) -> Server {
        Server::start_production_with(bin, data_dir, root_token, &[], &[])
    }

    /// As [`Server::start_production`], with extra arguments for `tijori server` and extra
    /// environment variables for its process only (e.g. an HSM's configuration and PIN).
    pub fn start_production_with(
        bin: &Path,
        data_dir: &Path,
        root_token: &str,
        extra: &[&str],
        envs: &[(&str, &str)],
    ) -> Server {
        let mut args = vec!["--insecure-plain-http"];
        args.extend_from_slice(extra);
        Server::spawn(bin, data_dir, root_token, &args, envs, None)
    }

    /// As [`Server::start_with`], serving HTTPS with `cert` and `key` (PEM files); requests
    /// trust `cert` alone (a self-signed certificate such as `tijori operator dev-cert` makes,
    /// or the CA of `cert`).
    pub fn start_tls(
        bin: &Path,
        data_dir: &Path,
        root_token: &str,
        tls: (&Path, &Path),
        extra: &[&str],
    ) -> Server {
        let mut args = vec!["--dev", "--dev-root-token", root_token];
        args.extend_from_slice(extra);
        Server::spawn_tls(bin, data_dir, root_token, tls, &args)
    }

    /// As [`Server::start_production`], serving HTTPS with `cert` and `key` as in
    /// [`Server::start_tls`].
    pub fn start_production_tls(
        bin: &Path,
        data_dir: &Path,
        root_token: &str,
        tls: (&Path, &Path),
        extra: &[&str],
    ) -> Server {
        Server::spawn_tls(bin, data_dir, root_token, tls, extra)
    }

    fn spawn_tls(
        bin: &Path,
        data_dir: &Path,
        root_token: &str,
        (cert, key): (&Path, &Path),
        extra: &[&str],
    ) -> Server {
        let (c, k) = (cert.to_string_lossy(), key.to_string_lossy());
        let mut args = vec!["--tls-cert", &c, "--tls-key", &k];
        args.extend_from_slice(extra);
        Server::spawn(bin, data_dir, root_token, &args, &[], Some(cert))
    }

    fn spawn(
        bin: &Path,
        data_dir: &Path,
        root_token: &str,
        args: &[&str],
        envs: &[(&str, &str)],
        ca: Option<&Path>,
    ) -> Server {
        let store = postgres_args(data_dir, args);
        let mut child = Command::new(bin)
            .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .args(&store)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tijori");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        spawn_reader(out, log.clone(), Some(tx));
        spawn_reader(err, log.clone(), None);
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "tijori did not say where it listens; output:\n{}",
                    log.lock().unwrap()
                )
            });
        let mut agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(60));
        if let Some(ca) = ca {
            agent = agent.tls_config(trusting(ca));
        }
        let agent = agent.build();
        Server {
            child,
            url,
            data_dir: data_dir.to_owned(),
            root_token: root_token.to_owned(),
            bin: bin.to_owned(),
            log,
            agent,
        }
    }

    /// The server's process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to flush anything) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process the way an operator does (SIGTERM: it finishes requests, records its
    /// stop and signs the audit trail) and waits for it; answers whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// Kills and starts again on the same data dir and root token (on a new port).
    pub fn restart(&mut self) {
        self.kill();
        let next = Server::start(
            &self.bin.clone(),
            &self.data_dir.clone(),
            &self.root_token.clone(),
        );
        let old_log = self.log.lock().unwrap().clone();
        next.log.lock().unwrap().insert_str(0, &old_log);
        *self = next;
    }

    /// Everything the process has written to stdout and stderr so far.
    pub fn output(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// A request with an optional bearer credential, JSON body and extra headers.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        self.call_text(
            method,
            path,
            token,
            body.map(|b| b.to_string()).as_deref(),
            headers,
        )
    }

    /// A request whose body (sent as JSON content) is given as text, possibly malformed.
    pub fn call_text(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.agent.request(method, &format!("{}{}", self.url, path));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let res = match body {
            Some(b) => req.set("Content-Type", "application/json").send_string(b),
            None => req.call(),
        };
        to_reply(res)
    }

    /// A request whose body is sent as given (for malformed JSON).
    pub fn call_raw(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        self.call_text(method, path, token, Some(body), &[])
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call("GET", path, token, None, &[])
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Reply {
        self.call("POST", path, token, Some(body), &[])
    }

    /// Creates a principal with `roles` as root and answers its API key.
    pub fn principal(&self, name: &str, roles: &[&str]) -> String {
        let r = self.post(
            "/v1/principals",
            Some(&self.root_token),
            &serde_json::json!({"name": name, "roles": roles}),
        );
        assert_eq!(r.status, 201, "create principal: {}", r.text);
        r.json["api_key"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// With `TIJORI_TEST_DATABASE_URL` set, test servers keep their vault in PostgreSQL instead
/// of the data dir's SQLite file: each data dir gets a schema of its own (`bb_<hash of the
/// path>`, so a restart finds its data again), made with `psql`. Servers given their own
/// `--storage-url` keep it.
fn postgres_args(data_dir: &Path, args: &[&str]) -> Vec<String> {
    let url = match std::env::var("TIJORI_TEST_DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => return Vec::new(),
    };
    if args.contains(&"--storage-url") {
        return Vec::new();
    }
    let schema = test_schema(data_dir);
    let made = Command::new("psql")
        .args([
            &url,
            "-qc",
            &format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
        ])
        .output()
        .expect("psql is installed (apt-get install postgresql-client)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let sep = if url.contains('?') { '&' } else { '?' };
    vec![
        "--storage-url".to_owned(),
        format!("{url}{sep}options=-c%20search_path%3D{schema}"),
    ]
}

/// The PostgreSQL schema of a test server's data dir (see [`postgres_args`]), and the URL,
/// when `TIJORI_TEST_DATABASE_URL` is set.
pub fn test_database(data_dir: &Path) -> Option<(String, String)> {
    let url = std::env::var("TIJORI_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())?;
    Some((url, test_schema(data_dir)))
}

fn test_schema(data_dir: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data_dir.hash(&mut h);
    format!("bb_{:016x}", h.finish())
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    log: Arc<Mutex<String>>,
    tx: Option<mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut tx = tx;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some(sender) = &tx {
                let at = line
                    .find("listening on http://")
                    .or_else(|| line.find("listening on https://"));
                if let Some(at) = at {
                    let url = line[at + "listening on ".len()..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    let _ = sender.send(url);
                    tx = None;
                }
            }
            let mut l = log.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
}

/// A TLS client configuration that trusts the PEM certificates in `ca` and nothing else.
pub fn trusting(ca: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

fn to_reply(res: Result<ureq::Response, ureq::Error>) -> Reply {
    try_reply(res).unwrap_or_else(|e| panic!("transport error: {e}"))
}

/// An answer as a `Reply` (error statuses included); `Err` with the cause when no answer came
/// (the server is gone), for tests that expect that.
pub fn try_reply(res: Result<ureq::Response, ureq::Error>) -> Result<Reply, String> {
    let resp = match res {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => return Err(e.to_string()),
    };
    let status = resp.status();
    let request_id = resp.header("x-request-id").map(str::to_owned);
    let retry_after = resp.header("retry-after").map(str::to_owned);
    let content_type = resp.header("content-type").map(str::to_owned);
    // A body cut off mid-read is no answer either.
    let text = resp.into_string().map_err(|e| e.to_string())?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Reply {
        status,
        request_id,
        retry_after,
        content_type,
        json,
        text,
    })
}
