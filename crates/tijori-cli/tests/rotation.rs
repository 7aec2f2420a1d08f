//! Key rotation, black-box: a new key-encryption key or data key is used by new writes at once
//! while old values still reveal; `tijori keys rewrap` moves every data key under the newest
//! KEK and `tijori keys reencrypt` moves every value off retired data keys (destroying them),
//! both with progress and both resumable after a SIGKILL mid-job; `GET /v1/sys/keys` reports
//! versions, records per version and cryptoperiods. Admin only, and audited.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::Path;
use std::process::Command;

use common::trail::records;
use common::*;
use serde_json::{json, Value};

fn keys_cli(s: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin())
        .arg("keys")
        .args(args)
        .args(["--addr", &s.url])
        .env("TIJORI_TOKEN", &s.root_token)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn report(s: &Server) -> Value {
    let r = s.get("/v1/sys/keys", Some(&s.root_token));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

fn rotate(s: &Server, key: &str) -> i64 {
    let r = s.post(
        "/v1/sys/keys/rotate",
        Some(&s.root_token),
        &json!({ "key": key }),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["version"].as_i64().unwrap()
}

/// (data key id, KEK version) of every token and data key, from the stopped vault's file.
fn key_columns(dir: &Path) -> (Vec<i64>, Vec<i64>) {
    let db = vault_db(dir);
    let ids = |sql: &str| -> Vec<i64> {
        let mut stmt = db.prepare(sql).unwrap();
        let rows = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rows
    };
    (
        ids("SELECT DISTINCT data_key_id FROM tokens WHERE subject IS NULL"),
        ids("SELECT DISTINCT kek_version FROM data_keys"),
    )
}

#[test]
fn rotation_moves_everything_to_new_versions_and_survives_a_crash() {
    let mut s = start("rotation");
    let app = s.principal("rot-app", &["revealer"]);
    let mut values: Vec<(String, String)> = Vec::new();
    let mut add = |s: &Server, n: usize, subject: Option<&str>| {
        for _ in 0..n {
            let card = card();
            let mut body = json!({"type": "card_number", "value": card});
            if let Some(sub) = subject {
                body["subject"] = json!(sub);
            }
            let r = tokenize(s, &app, body);
            assert_eq!(r.status, 201, "{}", r.text);
            values.push((token_of(&r), card));
        }
    };
    add(&s, 5, None);
    add(&s, 2, Some("cust-rot"));
    let before = report(&s);
    assert_eq!(before["kek"]["versions"].as_array().unwrap().len(), 1);
    let first_data = before["data"]["versions"][0]["version"].as_i64().unwrap();
    assert_eq!(before["data"]["versions"][0]["records"], 5);
    assert_eq!(before["data"]["versions"][0]["cryptoperiod_passed"], false);
    assert_eq!(before["subject_keys"], 1);

    // Only an admin rotates; a bad kind is refused.
    let r = s.post("/v1/sys/keys/rotate", Some(&app), &json!({"key": "data"}));
    assert_error(&r, 403, "forbidden");
    let r = s.post(
        "/v1/sys/keys/rotate",
        Some(&s.root_token),
        &json!({"key": "root"}),
    );
    assert_error(&r, 422, "invalid_value");

    // A new data key: new writes use it, old values still reveal.
    let second_data = rotate(&s, "data");
    assert!(second_data > first_data);
    add(&s, 3, None);
    let mid = report(&s);
    let versions = mid["data"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(
        (
            versions[0]["records"].clone(),
            versions[0]["active"].clone()
        ),
        (json!(5), json!(false))
    );
    assert_eq!(
        (
            versions[1]["records"].clone(),
            versions[1]["active"].clone()
        ),
        (json!(3), json!(true))
    );
    assert_eq!(mid["reencrypt_pending"], 5);

    // A new KEK: every data key is still under v1 until rewrapped.
    assert_eq!(rotate(&s, "kek"), 2);
    add(&s, 1, Some("cust-new"));
    assert!(report(&s)["rewrap_pending"].as_u64().unwrap() >= 6);
    for (t, v) in &values {
        assert_eq!(&reveal(&s, &app, t), v);
    }

    // Re-encrypt one small step, then crash: the next run carries on.
    let r = s.post(
        "/v1/sys/keys/reencrypt",
        Some(&s.root_token),
        &json!({"limit": 2}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (r.json["moved"].clone(), r.json["remaining"].clone()),
        (json!(2), json!(3))
    );
    s.restart(); // SIGKILL, then start on the same data dir
    let (ok, out) = keys_cli(&s, &["reencrypt"]);
    assert!(
        ok && out.contains("reencrypt done: 3 moved, 1 retired key(s) destroyed"),
        "{out}"
    );
    let (ok, out) = keys_cli(&s, &["rewrap"]);
    assert!(ok && out.contains("rewrap done"), "{out}");
    let after = report(&s);
    assert_eq!(
        (
            after["rewrap_pending"].clone(),
            after["reencrypt_pending"].clone()
        ),
        (json!(0), json!(0))
    );
    let versions = after["data"]["versions"].as_array().unwrap();
    assert_eq!(
        versions.len(),
        1,
        "the retired data key is destroyed: {after}"
    );
    assert_eq!(versions[0]["records"], 8);
    let (ok, out) = keys_cli(&s, &["status"]);
    assert!(ok && out.contains("\"rewrap_pending\": 0"), "{out}");
    for (t, v) in &values {
        assert_eq!(&reveal(&s, &app, t), v);
    }

    // In the file: every value under the new data key, every data key under KEK v2.
    assert!(s.stop(), "{}", s.output());
    let (data_keys, keks) = key_columns(&s.data_dir);
    assert_eq!((data_keys, keks), (vec![second_data], vec![2]));
    let ops: Vec<String> = records(&s.data_dir)
        .into_iter()
        .filter(|(_, r)| r["outcome"] == "success")
        .filter_map(|(_, r)| r["operation"].as_str().map(str::to_owned))
        .collect();
    for op in ["rotate_key", "rewrap_keys", "reencrypt_keys", "read_keys"] {
        assert!(ops.iter().any(|o| o == op), "{op} audited");
    }

    // Restarted, everything still reveals under the new hierarchy.
    let s = Server::start(&bin(), &s.data_dir, &s.root_token);
    for (t, v) in &values {
        assert_eq!(&reveal(&s, &app, t), v);
    }
}

#[test]
fn a_key_older_than_its_cryptoperiod_is_flagged() {
    let dir = temp_dir(&tmp_base(), "cryptoperiod");
    let s = Server::start_with(
        &bin(),
        &dir,
        &root_token(),
        &["--data-key-cryptoperiod-days", "0"],
    );
    let r = report(&s);
    assert_eq!(r["data"]["cryptoperiod_days"], 0);
    assert_eq!(r["data"]["versions"][0]["cryptoperiod_passed"], true);
    assert_eq!(r["kek"]["cryptoperiod_days"], 365);
    assert_eq!(r["kek"]["versions"][0]["cryptoperiod_passed"], false);
    let (ok, out) = keys_cli(&s, &["status"]);
    assert!(ok && out.contains("past its cryptoperiod"), "{out}");
}
