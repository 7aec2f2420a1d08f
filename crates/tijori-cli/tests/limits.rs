//! Limits against slow and hostile clients, black-box over raw TCP: oversized and too many
//! headers (431), a body that does not arrive (408), headers that do not arrive (the
//! connection is closed), too many connections (the next one waits for a free slot), and JSON
//! nested past any reason (400, not a crash). Requests refused before the router are audited.
//! Every limit is a `tijori server` flag.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::json;

fn server(name: &str, extra: &[&str]) -> Server {
    let dir = temp_dir(&tmp_base(), name);
    Server::start_with(&bin(), &dir, &root_token(), extra)
}

fn connect(s: &Server) -> TcpStream {
    let addr = s.url.trim_start_matches("http://");
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    tcp
}

/// Sends `raw` and reads until the server closes or the read times out; answers what came.
fn exchange(s: &Server, raw: &[u8]) -> String {
    let mut tcp = connect(s);
    tcp.write_all(raw).unwrap();
    let mut out = Vec::new();
    let _ = tcp.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

#[test]
fn oversized_or_too_many_headers_answer_431() {
    let s = server(
        "limits-headers",
        &["--max-header-bytes", "8192", "--max-headers", "32"],
    );
    let big = format!(
        "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(20_000)
    );
    assert!(status_line(&exchange(&s, big.as_bytes())).starts_with("HTTP/1.1 431"));
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET /v1/health HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    assert!(status_line(&exchange(&s, req.as_bytes())).starts_with("HTTP/1.1 431"));
    let garbage = b"NOT AN HTTP REQUEST\r\n\r\n";
    assert!(status_line(&exchange(&s, garbage)).starts_with("HTTP/1.1 400"));
    // Within the limits the same request is served.
    let ok = "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(status_line(&exchange(&s, ok.as_bytes())).starts_with("HTTP/1.1 200"));

    // hyper answered the refusals before the router saw them; each is on the trail all the
    // same, as an attempt from its peer. (Recorded as the connection ends: wait for them.)
    let refused = || {
        let r = s.get("/v1/audit?operation=malformed_request", Some(&s.root_token));
        assert_eq!(r.status, 200, "{}", r.text);
        r.json["records"].as_array().cloned().unwrap_or_default()
    };
    assert!(
        wait_for(Duration::from_secs(20), || refused().len() >= 3),
        "{:?}",
        refused()
    );
    let records = refused();
    let mut reasons: Vec<&str> = records
        .iter()
        .map(|e| e["record"]["reason"].as_str().unwrap_or(""))
        .collect();
    reasons.sort_unstable();
    assert_eq!(
        reasons,
        ["invalid_request", "payload_too_large", "payload_too_large"]
    );
    for e in &records {
        let r = &e["record"];
        assert_eq!(r["outcome"], "failure");
        assert!(
            r["source"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{r}"
        );
        assert!(
            r["request_id"].is_string() && r["principal_id"].is_null(),
            "{r}"
        );
    }
}

#[test]
fn a_body_that_does_not_arrive_answers_408() {
    let s = server("limits-body", &["--body-timeout-secs", "1"]);
    let key = s.principal("slow-app", &["tokenizer"]);
    let head = format!(
        "POST /v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"type\":"
    );
    let answer = exchange(&s, head.as_bytes());
    assert!(status_line(&answer).starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
}

#[test]
fn headers_that_do_not_arrive_close_the_connection() {
    let s = server("limits-slow-headers", &["--header-timeout-secs", "1"]);
    let started = std::time::Instant::now();
    let answer = exchange(&s, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n");
    assert!(!answer.contains(" 200 "), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "closed by the server, not our read timeout"
    );
}

#[test]
fn past_the_connection_limit_a_client_waits_for_a_slot() {
    let s = server(
        "limits-conns",
        &["--max-connections", "2", "--header-timeout-secs", "60"],
    );
    let held: Vec<TcpStream> = (0..2).map(|_| connect(&s)).collect();
    // Both slots are taken by idle connections: a third client is not served...
    let mut third = connect(&s);
    third
        .set_read_timeout(Some(Duration::from_millis(700)))
        .unwrap();
    third
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = [0u8; 64];
    assert!(third.read(&mut buf).is_err(), "served past the limit");
    // ...until one leaves.
    drop(held);
    third
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut out = Vec::new();
    let _ = third.read_to_end(&mut out);
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

#[test]
fn absurdly_nested_json_is_refused_not_a_crash() {
    let s = server("limits-depth", &[]);
    let key = s.principal("deep-app", &["tokenizer"]);
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    let r = s.call_raw("POST", "/v1/tokens", Some(&key), &deep);
    assert_eq!(r.status, 400, "{}", r.text);
    let nested = format!(
        r#"{{"type":"text","value":"x","metadata":{}1{}}}"#,
        "[".repeat(5_000),
        "]".repeat(5_000)
    );
    let r = s.call_raw("POST", "/v1/tokens", Some(&key), &nested);
    assert!(matches!(r.status, 400 | 422), "{}", r.text);
    // And the server is still there.
    assert_eq!(s.get("/v1/health", None).status, 200);
    let ok = tokenize(&s, &key, json!({"type": "text", "value": "still here"}));
    assert_eq!(ok.status, 201);
}
