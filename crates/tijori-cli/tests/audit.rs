//! The audit trail on a real data dir: every request leaves a record (with its request id, who,
//! what, outcome, never a value), and `tijori audit verify` passes an untouched trail and names
//! the first record of an edited, deleted, moved or inserted one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::{json, Value};

fn records(dir: &Path) -> Vec<(i64, Value)> {
    let db = rusqlite::Connection::open(dir.join("tijori.sqlite3")).unwrap();
    let mut stmt = db
        .prepare("SELECT seq, record FROM audit ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
        .map(|r| {
            let (seq, text) = r.unwrap();
            (seq, serde_json::from_str(&text).unwrap())
        })
        .collect();
    rows
}

/// Runs `tijori audit verify`; answers its exit code and stdout.
fn verify(dir: &Path) -> (i32, String) {
    let out = Command::new(bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn copy_dir(from: &Path, name: &str) -> std::path::PathBuf {
    let to = tijori_testkit::temp_dir(&tmp_base(), name);
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
    to
}

/// A data dir with a few dozen audit records, the server stopped.
fn used_data_dir(name: &str) -> (std::path::PathBuf, Vec<String>) {
    let mut s = start(name);
    let key = s.principal("audited", &["revealer"]);
    let card = card();
    let token = new_token(&s, &key, "card_number", &card);
    assert_eq!(reveal(&s, &key, &token), card);
    for _ in 0..5 {
        new_token(&s, &key, "text", &text());
    }
    s.kill();
    (s.data_dir.clone(), vec![card])
}

#[test]
fn every_request_leaves_a_record_without_values() {
    let mut s = start("audit-records");
    let key = s.principal("audit-svc", &["revealer"]);
    let card = card();
    let r = tokenize(&s, &key, json!({"type": "card_number", "value": card}));
    assert_eq!(r.status, 201);
    let token = token_of(&r);
    let reveal_reply = detokenize(&s, &key, &[&token]);
    let denied = s.post(
        "/v1/tokens",
        Some("not-a-key"),
        &json!({"type": "text", "value": "x"}),
    );
    assert_eq!(denied.status, 401);
    // A card number sent by mistake where a token belongs: refused, and never written down.
    let stray = common::card();
    let mistaken = detokenize(&s, &key, &[&stray, &token]);
    assert_eq!(mistaken.status, 200);
    assert_eq!(
        s.get(&format!("/v1/tokens/{stray}"), Some(&key)).status,
        404
    );
    let forbidden = s.post("/v1/sys/seal", Some(&key), &json!({}));
    assert_eq!(forbidden.status, 403);
    s.kill();

    let recs = records(&s.data_dir);
    let by_id = |r: &tijori_testkit::Reply| {
        let id = r.request_id.clone().unwrap();
        recs.iter()
            .find(|(_, v)| v["request_id"] == id.as_str())
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no record of {id}"))
    };
    assert!(recs.iter().any(|(_, v)| v["operation"] == "system.start"));
    let t = by_id(&r);
    assert_eq!(t["operation"], "tokenize");
    assert_eq!(t["outcome"], "success");
    assert_eq!(t["resource"], token.as_str());
    assert_eq!(t["data_type"], "card_number");
    assert!(t["principal_id"].as_str().unwrap().starts_with("prn_"));
    assert!(t["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    let d = by_id(&reveal_reply);
    assert_eq!(d["operation"], "detokenize");
    assert_eq!(d["resource"], token.as_str());
    let u = by_id(&denied);
    assert_eq!(u["outcome"], "denied");
    assert_eq!(u["reason"], "unauthenticated");
    assert!(u["principal_id"].is_null());
    let f = by_id(&forbidden);
    assert_eq!(
        (
            f["operation"].as_str(),
            f["outcome"].as_str(),
            f["reason"].as_str()
        ),
        (Some("seal"), Some("denied"), Some("forbidden"))
    );
    for (_, v) in &recs {
        assert!(
            !v.to_string().contains(&card),
            "an audit record holds a value"
        );
    }
    let (code, out) = verify(&s.data_dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("intact"), "{out}");
}

#[test]
fn verify_names_the_first_tampered_record() {
    let (dir, _) = used_data_dir("audit-tamper");
    assert!(records(&dir).len() >= 8);
    assert_eq!(verify(&dir).0, 0, "the untouched trail verifies");

    let cases: [(&str, &str, i64); 5] = [
        (
            "insert-before-first",
            "INSERT INTO audit (seq, record, prev_hash, hash) SELECT 0, record, prev_hash, hash FROM audit WHERE seq = 2",
            0,
        ),
        ("edit", "UPDATE audit SET record = replace(record, '\"success\"', '\"failure\"') WHERE seq = 3", 3),
        ("delete", "DELETE FROM audit WHERE seq = 4", 4),
        (
            "reorder",
            "UPDATE audit SET record = CASE seq WHEN 5 THEN (SELECT record FROM audit WHERE seq = 6) \
             ELSE (SELECT record FROM audit WHERE seq = 5) END WHERE seq IN (5, 6)",
            5,
        ),
        (
            "insert",
            "UPDATE audit SET seq = seq + 1000 WHERE seq >= 4; UPDATE audit SET seq = seq - 999 WHERE seq >= 1004; \
             INSERT INTO audit (seq, record, prev_hash, hash) SELECT 4, record, prev_hash, hash FROM audit WHERE seq = 2",
            4,
        ),
    ];
    for (name, sql, bad) in cases {
        let copy = copy_dir(&dir, &format!("audit-{name}"));
        rusqlite::Connection::open(copy.join("tijori.sqlite3"))
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        let (code, out) = verify(&copy);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(
            out.contains(&format!("record {bad}")),
            "{name}: expected record {bad} named: {out}"
        );
    }
    assert_eq!(verify(&dir).0, 0, "the original is still intact");
}

#[test]
fn verify_says_what_to_do_without_a_data_dir() {
    let empty = tijori_testkit::temp_dir(&tmp_base(), "audit-empty");
    let out = Command::new(bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(&empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no database"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
