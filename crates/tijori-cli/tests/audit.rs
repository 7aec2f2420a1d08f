//! The audit trail on a real data dir: every request leaves a record (with its request id, who,
//! what, outcome, never a value), and `tijori audit verify` passes an untouched trail and names
//! the first record of an edited, deleted, moved, inserted or cut-off one, also when the chain
//! was recomputed after the edit (the signed checkpoints catch that), on the data dir and on an
//! exported copy checked with the public key alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::Path;
use std::process::Command;

use common::trail::*;
use common::*;
use serde_json::{json, Value};

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
    // Polls of the health check leave no record; another method there is an attempt like any
    // other. A HEAD reads as its GET does, and is named as it.
    let polled = s.get("/v1/health", None);
    assert_eq!(polled.status, 200);
    let posted = s.call("POST", "/v1/health", None, Some(&json!({})), &[]);
    assert_eq!(posted.status, 405);
    let head = s.call("HEAD", "/v1/auth/session", Some(&key), None, &[]);
    assert_eq!(head.status, 200);
    // A deletion, whose record is written in the deletion's own commit, and one of a token
    // no longer there.
    let officer = s.principal("audit-officer", &["data_officer"]);
    let path = format!("/v1/tokens/{token}");
    let deleted = s.call("DELETE", &path, Some(&officer), None, &[]);
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let gone = s.call("DELETE", &path, Some(&officer), None, &[]);
    assert_eq!(gone.status, 404, "{}", gone.text);
    s.kill();

    let recs = records(&s.data_dir);
    assert!(recs.iter().any(|(_, v)| v["operation"] == "system.start"));
    // One record per request, also for a tokenize, whose record shares the token's commit.
    for reply in [&r, &reveal_reply, &denied, &mistaken, &forbidden] {
        only_record_of(&recs, reply);
    }
    let t = only_record_of(&recs, &r);
    assert_eq!(t["operation"], "tokenize");
    assert_eq!(t["outcome"], "success");
    assert_eq!(t["resource"], token.as_str());
    assert_eq!(t["data_type"], "card_number");
    assert!(t["principal_id"].as_str().unwrap().starts_with("prn_"));
    assert!(t["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    let d = only_record_of(&recs, &reveal_reply);
    assert_eq!(d["operation"], "detokenize");
    assert_eq!(d["resource"], token.as_str());
    let health: Vec<_> = recs
        .iter()
        .filter_map(|(_, v)| v["operation"].as_str())
        .filter(|o| o.contains("/v1/health"))
        .collect();
    assert_eq!(health, ["http POST /v1/health"]);
    assert_eq!(
        only_record_of(&recs, &posted)["reason"],
        "method_not_allowed"
    );
    assert_eq!(only_record_of(&recs, &head)["operation"], "read_session");
    let del = only_record_of(&recs, &deleted);
    assert_eq!(
        (&del["operation"], &del["outcome"], &del["resource"]),
        (&json!("delete_token"), &json!("success"), &json!(token))
    );
    let del = only_record_of(&recs, &gone);
    assert_eq!(
        (&del["outcome"], &del["reason"]),
        (&json!("failure"), &json!("not_found"))
    );
    let u = only_record_of(&recs, &denied);
    assert_eq!(u["outcome"], "denied");
    assert_eq!(u["reason"], "unauthenticated");
    assert!(u["principal_id"].is_null());
    let f = only_record_of(&recs, &forbidden);
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
        self::sql(&copy, sql);
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

/// The newest record's number and the whole chain, read straight from the database.
fn chain(dir: &Path) -> Vec<(i64, String, Vec<u8>)> {
    let db = trail_db(dir);
    let mut stmt = db
        .prepare("SELECT seq, record, hash FROM audit ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

#[test]
fn signed_checkpoints_catch_truncation_a_recomputed_chain_and_forged_signatures() {
    let (dir, _) = used_data_dir("audit-signed");
    let last = chain(&dir).last().unwrap().0;
    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("signed through record {last}")),
        "the stop signed the head: {out}"
    );

    // The newest three records cut off: the stop's signature over the last one shows it.
    let cut = copy_dir(&dir, "audit-truncated");
    sql(&cut, &format!("DELETE FROM audit WHERE seq > {}", last - 3));
    let (code, out) = verify(&cut);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("record {}", last - 2)) && out.contains("truncated"),
        "{out}"
    );

    // An insider edits record 3 and recomputes every hash after it: the chain is consistent,
    // but no longer the one that was signed.
    let forged = copy_dir(&dir, "audit-recomputed");
    let rows = chain(&forged);
    let db = trail_db(&forged);
    let mut prev = vec![0u8; 32];
    for (seq, record, _) in rows {
        let record = if seq == 3 {
            record.replace("\"success\"", "\"failure\"")
        } else {
            record
        };
        let hash = tijori_crypto::audit_chain_hash(&prev, seq, &record);
        db.execute(
            "UPDATE audit SET record = ?2, prev_hash = ?3, hash = ?4 WHERE seq = ?1",
            rusqlite::params![seq, record, prev, hash],
        )
        .unwrap();
        prev = hash;
    }
    drop(db);
    let (code, out) = verify(&forged);
    assert_eq!(code, 1, "{out}");
    // The verifier names the first record after the last checkpoint that still holds: record 1,
    // or later when a timed checkpoint was signed before record 3 (a slow start), never past it.
    let named = (1..=3).find(|n| out.contains(&format!("record {n}:")));
    assert!(named.is_some() && out.contains("recomputed"), "{out}");

    // A checkpoint whose signature was tampered with.
    let bad_sig = copy_dir(&dir, "audit-bad-signature");
    sql(
        &bad_sig,
        "UPDATE audit_checkpoints SET signature = zeroblob(64)",
    );
    let (code, out) = verify(&bad_sig);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad signature"), "{out}");

    // Pinning another vault's key: its signatures do not check.
    let (other, _) = used_data_dir("audit-other-vault");
    let other_key = public_key(&other);
    assert_ne!(other_key, public_key(&dir));
    let (code, out, _) = audit_cmd(&[
        "verify".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--public-key".as_ref(),
        other_key.as_ref(),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("bad signature"), "{out}");
}

#[test]
fn an_export_verifies_with_the_public_key_alone_and_its_tampering_is_named() {
    let (dir, cards) = used_data_dir("audit-export");
    let key_file = dir.parent().unwrap().join("audit-export.pub");
    std::fs::write(&key_file, public_key(&dir)).unwrap();
    let file = dir.parent().unwrap().join("audit-export.jsonl");
    let (code, _, err) = audit_cmd(&[
        "export".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--out".as_ref(),
        file.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "an export is owner-only");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&cards[0]), "an export holds a value");
    let records = chain(&dir).len();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("{\"seq\"")).count(),
        records
    );
    assert!(text.lines().any(|l| l.starts_with("{\"checkpoint\"")));

    let check = |f: &Path| {
        audit_cmd(&[
            "verify".as_ref(),
            "--file".as_ref(),
            f.as_os_str(),
            "--public-key".as_ref(),
            key_file.as_os_str(),
        ])
    };
    let (code, out, err) = check(&file);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&format!("intact: {records} records")), "{out}");

    // Without a key there is nothing to trust the signatures with: refused, with what to do.
    let (code, _, err) = audit_cmd(&["verify".as_ref(), "--file".as_ref(), file.as_os_str()]);
    assert_eq!(code, 2);
    assert!(err.contains("--public-key"), "{err}");

    let lines: Vec<&str> = text.lines().collect();
    let write = |name: &str, lines: Vec<String>| {
        let f = dir.parent().unwrap().join(name);
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        f
    };
    // One record's text edited in the copy.
    let edited = write(
        "audit-export-edited.jsonl",
        lines
            .iter()
            .map(|l| {
                if l.starts_with("{\"seq\":4,") {
                    l.replace("success", "failure")
                } else {
                    l.to_string()
                }
            })
            .collect(),
    );
    let (code, out, _) = check(&edited);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("record 4"), "{out}");
    // The newest two records dropped from the copy.
    let short = write(
        "audit-export-short.jsonl",
        lines[..lines.len() - 2]
            .iter()
            .map(|l| l.to_string())
            .collect(),
    );
    let (code, out, _) = check(&short);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("record {}", records - 1)) && out.contains("truncated"),
        "{out}"
    );
    // A line that is not part of an export.
    let junk = write("audit-export-junk.jsonl", vec!["{\"hello\":1}".into()]);
    let (code, _, err) = check(&junk);
    assert_eq!(code, 2);
    assert!(err.contains("line 1"), "{err}");
}

/// The trail has a file of its own; deleting it does not get a vault a fresh, empty trail in
/// its place: `audit verify` and the server both refuse, naming the file.
#[test]
fn a_lost_trail_file_is_not_replaced_by_an_empty_one() {
    let (dir, _) = used_data_dir("audit-lost");
    let lost = copy_dir(&dir, "audit-lost-file");
    let mut removed = 0;
    for f in ["audit.sqlite3", "audit.sqlite3-wal", "audit.sqlite3-shm"] {
        removed += usize::from(std::fs::remove_file(lost.join(f)).is_ok());
    }
    assert!(removed >= 1, "no trail file in {}", lost.display());

    let (code, out, err) = audit_cmd(&["verify".as_ref(), "--data-dir".as_ref(), lost.as_os_str()]);
    assert_ne!(code, 0, "{out}");
    assert!(
        err.contains("audit.sqlite3") && err.contains("missing"),
        "{err}"
    );

    let mut server = Command::new(bin());
    server
        .args([
            "server",
            "--dev",
            "--dev-root-token",
            &root_token(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(&lost);
    let (code, out) = must_exit(server);
    assert_ne!(code, Some(0), "{out}");
    assert!(
        out.contains("audit.sqlite3") && out.contains("missing"),
        "{out}"
    );
    assert!(
        !lost.join("audit.sqlite3").exists(),
        "an empty trail was made"
    );
}

/// After a clean stop each database file is whole on its own: the stop moved the write-ahead
/// logs into the files. A copy of the two files alone (the logs left behind, as a hasty backup
/// or an investigator's script may take them) holds every record, down to `system.stop`, and
/// every token, and its trail verifies.
#[test]
fn a_clean_stop_leaves_each_database_file_whole() {
    let (dir, _) = used_data_dir("audit-settled");
    // Copied before anything opens the originals: closing the last connection to a database
    // would move its log into it.
    let alone = tijori_testkit::temp_dir(&tmp_base(), "audit-settled-alone");
    for f in ["tijori.sqlite3", "audit.sqlite3", "dev-root.key"] {
        std::fs::copy(dir.join(f), alone.join(f)).unwrap();
    }
    let all = records(&dir);
    assert_eq!(all.last().unwrap().1["operation"], "system.stop");
    let held: i64 = trail_db(&alone)
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap_or(-1);
    assert_eq!(held, all.len() as i64, "records of the trail's file alone");
    assert_eq!(records(&alone), all);
    let tokens = |d: &Path| -> i64 {
        vault_db(d)
            .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))
            .unwrap_or(-1)
    };
    assert!(tokens(&dir) >= 6);
    assert_eq!(
        tokens(&alone),
        tokens(&dir),
        "tokens of the vault's file alone"
    );
    let (code, out) = verify(&alone);
    assert_eq!(code, 0, "{out}");
}

/// A batch leaves one record naming every token it answered with, in order, and the HMACs of
/// the values it carried: written with the new tokens where every one of them went in, and
/// after the answer where none was new (an existing deterministic token).
#[test]
fn a_batch_leaves_one_record_naming_its_tokens() {
    let mut s = start("audit-batch");
    let key = s.principal("audit-batch-svc", &["tokenizer"]);
    let (known, fresh) = (card(), card());
    let first = tokenize(
        &s,
        &key,
        json!({"type": "card_number", "value": known, "deterministic": true}),
    );
    assert_eq!(first.status, 201, "{}", first.text);
    let existing = token_of(&first);
    let batch = |items: Value| s.post("/v1/tokens/batch", Some(&key), &json!({ "items": items }));
    let mixed = batch(json!([
        {"type": "card_number", "value": known, "deterministic": true},
        {"type": "nonsense", "value": "x"},
        {"type": "card_number", "value": fresh},
        {"type": "iban", "value": "PK36SCBL0000001123456702"},
    ]));
    assert_eq!(mixed.status, 200, "{}", mixed.text);
    let answered: Vec<String> = mixed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["token"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(answered.len(), 3, "{}", mixed.text);
    assert_eq!(answered[0], existing);
    let old_only = batch(json!([
        {"type": "card_number", "value": known, "deterministic": true},
    ]));
    assert_eq!(old_only.status, 200, "{}", old_only.text);
    s.kill();

    let recs = records(&s.data_dir);
    let m = only_record_of(&recs, &mixed);
    assert_eq!(m["operation"], "tokenize_batch");
    assert_eq!(m["outcome"], "success");
    assert_eq!(m["resource"], answered.join(",").as_str());
    assert_eq!(m["data_type"], "card_number,iban");
    // The three values that parsed, each as an HMAC; never a value itself.
    assert_eq!(m["value_hmacs"].as_array().map(Vec::len), Some(3), "{m}");
    let o = only_record_of(&recs, &old_only);
    assert_eq!(o["resource"], existing.as_str());
    assert_eq!(o["data_type"], "card_number");
    for (_, v) in &recs {
        let text = v.to_string();
        assert!(
            !text.contains(&known) && !text.contains(&fresh),
            "a record holds a value"
        );
    }
    let (code, out) = verify(&s.data_dir);
    assert_eq!(code, 0, "{out}");
}
