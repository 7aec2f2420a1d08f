//! Helpers of the audit-trail tests: reading and altering a stopped vault's database, and
//! running `tijori audit`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::*;

/// The one record of the request that answered `reply`, among `recs` (from [`records`]); a
/// request with no record, or with more than one, fails the test.
pub fn only_record_of(recs: &[(i64, Value)], reply: &tijori_testkit::Reply) -> Value {
    let id = reply.request_id.clone().unwrap();
    let mine: Vec<&Value> = recs
        .iter()
        .filter(|(_, v)| v["request_id"] == id.as_str())
        .map(|(_, v)| v)
        .collect();
    assert_eq!(mine.len(), 1, "records of {id}: {mine:?}");
    mine[0].clone()
}

/// The audit records of a server's vault, from its SQLite file, or from its PostgreSQL schema
/// when the tests run on PostgreSQL (`TIJORI_TEST_DATABASE_URL`).
pub fn records(dir: &Path) -> Vec<(i64, Value)> {
    if let Some((url, schema)) = tijori_testkit::test_database(dir) {
        let out = Command::new("psql")
            .args([
                &url,
                "-AtF",
                "\u{1f}",
                "-c",
                &format!("SELECT seq, record FROM {schema}.audit ORDER BY seq"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (seq, text) = l.split_once('\u{1f}').unwrap();
                (seq.parse().unwrap(), serde_json::from_str(text).unwrap())
            })
            .collect();
    }
    let db = trail_db(dir);
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

/// Checks an exported trail (`text`, JSON Lines) with `tijori audit verify --file`, given the
/// server's public key read with `token`; answers its output.
pub fn verify_export(s: &Server, token: &str, text: &str, name: &str) -> String {
    let file = s.data_dir.join(name);
    std::fs::write(&file, text).unwrap();
    let key = s.get("/v1/audit/public-key", Some(token)).json["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, out, err) = audit_cmd(&[
        "verify".as_ref(),
        "--file".as_ref(),
        file.as_os_str(),
        "--public-key".as_ref(),
        key.as_ref(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

/// Runs `tijori audit ARGS`; answers its exit code, stdout and stderr.
/// The records' contents alone, in order.
pub fn events(dir: &Path) -> Vec<Value> {
    records(dir).into_iter().map(|(_, r)| r).collect()
}

pub fn audit_cmd(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(bin())
        .arg("audit")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `tijori audit verify --data-dir DIR`; answers its exit code and stdout.
pub fn verify(dir: &Path) -> (i32, String) {
    let (code, out, _) = audit_cmd(&["verify".as_ref(), "--data-dir".as_ref(), dir.as_os_str()]);
    (code, out)
}

/// A stopped (or killed) vault's SQLite files (the vault's and the trail's) pass
/// `PRAGMA integrity_check` and its audit trail verifies; `when` says after what.
pub fn assert_intact(dir: &Path, when: &str) {
    for file in ["tijori.sqlite3", "audit.sqlite3"] {
        let db = rusqlite::Connection::open(dir.join(file)).unwrap();
        let integrity: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "{file} is damaged {when}");
    }
    let (code, out) = verify(dir);
    assert_eq!(code, 0, "the audit trail does not verify {when}: {out}");
}

/// The stopped vault's audit trail database (`audit.sqlite3` in its data dir).
pub fn trail_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("audit.sqlite3")).unwrap()
}

pub fn sql(dir: &Path, sql: &str) {
    trail_db(dir).execute_batch(sql).unwrap();
}

pub fn public_key(dir: &Path) -> String {
    let (code, out, err) = audit_cmd(&[
        "public-key".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
    ]);
    assert_eq!(code, 0, "{err}");
    out.trim().to_owned()
}

pub fn copy_dir(from: &Path, name: &str) -> PathBuf {
    let to = tijori_testkit::temp_dir(&tmp_base(), name);
    for f in std::fs::read_dir(from).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_dir() {
            continue;
        }
        std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
    }
    to
}

/// A data dir with a few dozen audit records, the server stopped.
pub fn used_data_dir(name: &str) -> (PathBuf, Vec<String>) {
    let mut s = start(name);
    let key = s.principal("audited", &["revealer"]);
    let card = card();
    let token = new_token(&s, &key, "card_number", &card);
    assert_eq!(reveal(&s, &key, &token), card);
    for _ in 0..5 {
        new_token(&s, &key, "text", &text());
    }
    assert!(s.stop(), "a clean stop: {}", s.output());
    (s.data_dir.clone(), vec![card])
}
