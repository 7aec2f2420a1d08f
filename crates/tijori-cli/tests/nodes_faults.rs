//! Faults of a vault of several nodes, black-box: two `tijori server` processes on one
//! PostgreSQL database (a schema of each test's own) under concurrent tokenize load.
//!
//! - PostgreSQL goes away (the nodes reach it through a TCP proxy run by the test, which is
//!   taken down, cutting every live connection, and brought back on the same port, as a
//!   database restart looks to the nodes): meanwhile requests answer `503 unavailable` in the
//!   API's error format (never another 5xx) and the nodes report themselves not ready; once it
//!   is back both nodes serve again without a restart.
//! - A node is killed (SIGKILL) mid-load: the other goes on serving.
//!
//! Either way no acknowledged token is lost: every token answered `201` reveals its value on
//! the surviving nodes, and the audit trail exported over the API verifies with the public key
//! and records every acknowledged tokenize. Skipped, with a note, when `DATABASE_URL` is not
//! set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::load::{assert_all_reveal, try_tokenize};
use common::pg::*;
use common::*;
use serde_json::{json, Value};

/// Client threads sending tokenize requests, spread over the nodes.
const CLIENTS: usize = 4;
/// How long PostgreSQL stays away (at least; longer only while the outage's effects are still
/// being looked for).
const OUTAGE: Duration = Duration::from_millis(2500);
/// Bound of every wait for something that should happen (a node serving again, load
/// progressing, the outage showing).
const PATIENCE: Duration = Duration::from_secs(30);
/// Acknowledgements each node gives before a fault, and again after it, to show load running.
const PROGRESS: usize = 300;
/// A client's pause after a refusal (as a client backing off before retrying).
const BACKOFF: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------------------------
// A TCP proxy standing for the database server: it can go down and come back on its port.

/// Forwards every connection made to `127.0.0.1:port` to `upstream`.
struct Proxy {
    port: u16,
    upstream: SocketAddr,
    /// Both ends of every connection forwarded since the proxy last went down.
    live: Arc<Mutex<Vec<TcpStream>>>,
    /// The accepting thread and its stop flag, while up.
    accepting: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

impl Proxy {
    /// A proxy, up, on a free loopback port.
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut proxy = Proxy {
            port,
            upstream,
            live: Arc::default(),
            accepting: None,
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, live, upstream) = (stop.clone(), self.live.clone(), self.upstream);
        let handle = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => forward(client, upstream, &live),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            // The listener is dropped here: new connections are refused.
        });
        self.accepting = Some((stop, handle));
    }

    /// Goes down as a stopped database server does: refuses new connections and cuts every
    /// live one.
    fn down(&mut self) {
        if let Some((stop, handle)) = self.accepting.take() {
            stop.store(true, Ordering::SeqCst);
            handle.join().unwrap();
        }
        for s in self.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Comes back on the same port.
    fn up(&mut self) {
        assert!(self.accepting.is_none(), "the proxy is already up");
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding the proxy's port {}: {e}; again", self.port);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on the proxy's port {} again: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.down();
    }
}

/// Connects `client` to `upstream` and copies both ways, each on a thread of its own.
fn forward(client: TcpStream, upstream: SocketAddr, live: &Mutex<Vec<TcpStream>>) {
    let _ = client.set_nonblocking(false);
    let Ok(server) = TcpStream::connect_timeout(&upstream, Duration::from_secs(5)) else {
        return; // `client` is dropped: its connection closes.
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(c2), Ok(s2), Ok(c3), Ok(s3)) = (
        client.try_clone(),
        server.try_clone(),
        client.try_clone(),
        server.try_clone(),
    ) else {
        return;
    };
    live.lock().unwrap().extend([c3, s3]);
    std::thread::spawn(move || pipe(client, server));
    std::thread::spawn(move || pipe(s2, c2));
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}

/// The database server's address in a `postgres://` URL and the URL with `host:port` in its
/// place; `None` when the URL names no single TCP host (a Unix socket, several hosts, or a
/// `host=` parameter).
fn via_proxy(url: &str, port: u16) -> Option<(SocketAddr, String)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let at = authority.rfind('@').map_or(0, |i| i + 1);
    let host_port = &authority[at..];
    if host_port.is_empty() || host_port.contains(',') || rest[end..].contains("host=") {
        return None;
    }
    let (host, port_text) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            (host, after.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let db_port = match port_text {
        Some(p) => p.parse().ok()?,
        None => 5432,
    };
    let addr = (host, db_port).to_socket_addrs().ok()?.next()?;
    let proxied = format!("{}127.0.0.1:{port}{}", &url[..start + at], &rest[end..]);
    Some((addr, proxied))
}

// ---------------------------------------------------------------------------------------------
// Load.

/// What the clients saw.
#[derive(Default)]
struct Tally {
    /// Every (token, value) answered `201`.
    acked: Mutex<Vec<(String, String)>>,
    /// `201`s per node.
    acked_on: [AtomicUsize; 2],
    /// `503 unavailable` answers in the API's error format.
    unavailable: AtomicUsize,
    /// Anything else: another status, a malformed error, a transport error from a live node.
    failures: Mutex<Vec<String>>,
}

impl Tally {
    fn ack(&self, node: usize, token: String, value: String) {
        self.acked.lock().unwrap().push((token, value));
        self.acked_on[node].fetch_add(1, Ordering::SeqCst);
    }

    fn fail(&self, what: String) {
        let mut f = self.failures.lock().unwrap();
        if f.len() < 50 {
            f.push(what);
        }
    }

    fn on(&self, node: usize) -> usize {
        self.acked_on[node].load(Ordering::SeqCst)
    }

    fn unavailable(&self) -> usize {
        self.unavailable.load(Ordering::SeqCst)
    }
}

/// Sets its flag when dropped, so that the load threads of a scope stop even if the test
/// panics (a scope waits for its threads).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What is wrong with `r` as an API error answer with `code` (as `assert_error` checks), if
/// anything.
fn error_format_problem(r: &Reply, code: &str) -> Option<String> {
    let e = &r.json["error"];
    let ok = e["code"] == code
        && e["message"].as_str().is_some_and(|m| !m.is_empty())
        && e["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty() && r.request_id.as_deref() == Some(id));
    (!ok).then(|| {
        format!(
            "{} not an API error `{code}` (x-request-id {:?}): {}",
            r.status, r.request_id, r.text
        )
    })
}

/// Tokenizes random card numbers on `url` (node number `node`) until `stop`: records every
/// acknowledgement, counts `503 unavailable`s, and notes anything else as a failure, except
/// transport errors once `gone` says the node was killed (then it stops).
fn load(url: &str, key: &str, node: usize, stop: &AtomicBool, gone: &AtomicBool, tally: &Tally) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    while !stop.load(Ordering::SeqCst) {
        let value = card();
        match try_tokenize(&agent, url, key, &value) {
            Ok(r) if r.status == 201 => match r.json["token"].as_str() {
                Some(t) => tally.ack(node, t.to_owned(), value),
                None => tally.fail(format!("node {node}: 201 without a token: {}", r.text)),
            },
            Ok(r) if r.status == 503 => {
                match error_format_problem(&r, "unavailable") {
                    None => {
                        tally.unavailable.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(p) => tally.fail(format!("node {node}: {p}")),
                }
                std::thread::sleep(BACKOFF);
            }
            Ok(r) => {
                tally.fail(format!(
                    "node {node}: {} (request {:?}): {}",
                    r.status, r.request_id, r.text
                ));
                std::thread::sleep(BACKOFF);
            }
            Err(_) if gone.load(Ordering::SeqCst) => return,
            Err(e) => {
                tally.fail(format!("node {node}: transport error: {e}"));
                std::thread::sleep(BACKOFF);
            }
        }
    }
}

/// Polls `cond` until it holds, or panics after `PATIENCE`; answers how long it took.
fn within(what: &str, cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    assert!(wait_for(PATIENCE, cond), "{what}: not within {PATIENCE:?}");
    start.elapsed()
}

// ---------------------------------------------------------------------------------------------
// Checks after the load.

/// Exports the audit trail over `node`'s API, verifies it with `tijori audit verify` and the
/// public key, and checks that it records every acknowledged tokenize; answers its lines.
fn assert_trail(node: &Server, file: &str, acked: &[(String, String)]) -> usize {
    let export = node.get("/v1/audit/export?limit=100000", Some(&node.root_token));
    assert_eq!(export.status, 200, "{}", export.text);
    let lines = export.text.lines().count();
    assert!(lines < 100_000, "the trail outgrew one export page");
    common::trail::verify_export(node, &node.root_token, &export.text, file);
    let recorded: HashSet<String> = export
        .text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| serde_json::from_str::<Value>(l["record"].as_str()?).ok())
        .filter(|r| r["operation"] == "tokenize" && r["outcome"] == "success")
        .filter_map(|r| r["resource"].as_str().map(str::to_owned))
        .collect();
    let missing: Vec<&str> = acked
        .iter()
        .map(|(t, _)| t.as_str())
        .filter(|t| !recorded.contains(*t))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged tokenizes have no audit record, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    lines
}

/// Lines of a server's output that tell of errors, for a failure's message.
fn errors_in(s: &Server) -> String {
    s.output()
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("panic"))
        .take(40)
        .collect::<Vec<_>>()
        .join("\n")
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_database_outage_under_load_answers_503_and_heals() {
    let Some((direct, _schema)) = schema_url("a_database_outage_under_load") else {
        return;
    };
    // The port is known once the proxy listens; the address it forwards to, from the URL.
    let Some((upstream, _)) = via_proxy(&direct, 0) else {
        eprintln!("DATABASE_URL names no single TCP host: a_database_outage_under_load skipped");
        return;
    };
    let mut proxy = Proxy::start(upstream);
    let (_, url) = via_proxy(&direct, proxy.port).unwrap();
    let (a, b) = two_nodes("faults-outage", &url);
    let key = a.principal("outage-app", &["tokenizer", "revealer"]);
    eventually("a principal made on A works on B", || {
        b.get("/v1/auth/session", Some(&key)).status == 200
    });

    let nodes = [&a, &b];
    let urls = [a.url.clone(), b.url.clone()];
    let (tally, stop) = (Tally::default(), AtomicBool::new(false));
    // No node is killed here: a transport error is a failure.
    let never_gone = AtomicBool::new(false);
    let mut ready_refusals = Vec::new();
    let (outage, recovery) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for i in 0..CLIENTS {
            let (url, key, tally, stop, gone) = (&urls[i % 2], &key, &tally, &stop, &never_gone);
            scope.spawn(move || load(url, key, i % 2, stop, gone, tally));
        }
        within("load acknowledged on both nodes", || {
            tally.on(0) >= PROGRESS && tally.on(1) >= PROGRESS
        });

        // PostgreSQL goes away.
        let refused_before = tally.unavailable();
        proxy.down();
        let down = Instant::now();
        let mut not_ready = [false, false];
        within("503s under load and both nodes not ready", || {
            for (i, node) in nodes.iter().enumerate() {
                if !not_ready[i] {
                    let r = node.get("/v1/health/ready", None);
                    if r.status == 503 {
                        assert_eq!(
                            (&r.json["status"], &r.json["store"], &r.json["sealed"]),
                            (&json!("unavailable"), &json!("unavailable"), &json!(false)),
                            "{}",
                            r.text
                        );
                        ready_refusals.push(r.text);
                        not_ready[i] = true;
                    } else {
                        assert_eq!(r.status, 200, "ready: {}", r.text);
                    }
                }
            }
            not_ready == [true, true]
                && tally.unavailable() > refused_before
                && down.elapsed() >= OUTAGE
        });
        // One request of this thread's own, checked in full.
        let r = tokenize(&a, &key, json!({"type": "card_number", "value": card()}));
        assert_error(&r, 503, "unavailable");

        // It is back: both nodes serve again, without a restart.
        proxy.up();
        let outage = down.elapsed();
        let up = Instant::now();
        let mut back = [false, false];
        within("both nodes answer 201 again", || {
            for (i, node) in nodes.iter().enumerate() {
                if !back[i] {
                    let value = card();
                    let r = tokenize(node, &key, json!({"type": "card_number", "value": value}));
                    match r.status {
                        201 => {
                            tally.ack(i, token_of(&r), value);
                            back[i] = true;
                        }
                        503 => assert_error(&r, 503, "unavailable"),
                        _ => panic!("node {i} after the outage: {} {}", r.status, r.text),
                    }
                }
            }
            back == [true, true]
        });
        let recovery = up.elapsed();
        within("both nodes ready again", || {
            nodes
                .iter()
                .all(|n| n.get("/v1/health/ready", None).status == 200)
        });
        let (a0, b0) = (tally.on(0), tally.on(1));
        within("load acknowledged on both nodes after the outage", || {
            tally.on(0) >= a0 + PROGRESS && tally.on(1) >= b0 + PROGRESS
        });
        stop.store(true, Ordering::SeqCst);
        (outage, recovery)
    });

    // The change feed listens again: a principal made on A is soon in effect on B.
    let late = a.principal("outage-late", &["revealer"]);
    eventually("a principal made on A after the outage works on B", || {
        b.get("/v1/auth/session", Some(&late)).status == 200
    });

    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "answers other than 201 and 503 unavailable: {failures:#?}\nA:\n{}\nB:\n{}",
        errors_in(&a),
        errors_in(&b)
    );
    let acked = std::mem::take(&mut *tally.acked.lock().unwrap());
    assert_all_reveal(&a, &key, &acked, "on node A");
    assert_all_reveal(&b, &key, &acked, "on node B");
    let lines = assert_trail(&a, "outage-trail.jsonl", &acked);
    eprintln!(
        "database outage: {} tokens acknowledged (A {}, B {}), {} answers 503 unavailable under \
         load; the database was away {outage:?}; both nodes answered 201 again {recovery:?} \
         after it came back; the trail holds {lines} lines and verifies",
        acked.len(),
        tally.on(0),
        tally.on(1),
        tally.unavailable(),
    );
    eprintln!("ready during the outage: {}", ready_refusals.join(" "));
}

#[test]
fn a_node_killed_under_load_loses_no_acknowledged_token() {
    let Some((url, _schema)) = schema_url("a_node_killed_under_load") else {
        return;
    };
    let (mut a, b) = two_nodes("faults-kill", &url);
    let key = a.principal("kill-app", &["tokenizer", "revealer"]);
    eventually("a principal made on A works on B", || {
        b.get("/v1/auth/session", Some(&key)).status == 200
    });

    let urls = [a.url.clone(), b.url.clone()];
    let tally = Tally::default();
    let stop = AtomicBool::new(false);
    let gone = [AtomicBool::new(false), AtomicBool::new(false)];
    let (at_kill, b_at_kill) = std::thread::scope(|scope| {
        let _stop = StopOnDrop(&stop);
        for i in 0..CLIENTS {
            let (url, key, tally, stop, gone) = (&urls[i % 2], &key, &tally, &stop, &gone[i % 2]);
            scope.spawn(move || load(url, key, i % 2, stop, gone, tally));
        }
        within("load acknowledged on both nodes", || {
            tally.on(0) >= PROGRESS && tally.on(1) >= PROGRESS
        });
        gone[0].store(true, Ordering::SeqCst);
        a.kill();
        let b_at_kill = tally.on(1);
        within("B goes on acknowledging", || {
            tally.on(1) >= b_at_kill + PROGRESS
        });
        stop.store(true, Ordering::SeqCst);
        (tally.on(0), b_at_kill)
    });

    let failures = tally.failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "answers other than 201 (or A's connection lost once it was killed): {failures:#?}\nB:\n{}",
        errors_in(&b)
    );
    assert_eq!(tally.unavailable(), 0, "B answered 503 while A died");
    let acked = std::mem::take(&mut *tally.acked.lock().unwrap());
    assert_all_reveal(&b, &key, &acked, "on node B");
    let lines = assert_trail(&b, "kill-trail.jsonl", &acked);

    // A, started again on the same data dir and database, serves them too.
    let a = Server::start_with(&bin(), &a.data_dir, &a.root_token, &["--storage-url", &url]);
    assert_all_reveal(&a, &key, &acked, "on node A restarted");
    eprintln!(
        "node killed: {} tokens acknowledged (A {at_kill} before it was killed, B {} in all, {} \
         of them after the kill); the trail holds {lines} lines and verifies",
        acked.len(),
        tally.on(1),
        tally.on(1) - b_at_kill,
    );
}
