//! Audit retention on a real data dir: records older than the online window move to archive
//! files at a signed cut, the store keeps that signature as its anchor, and `tijori audit
//! verify` checks archives and store as one trail across every cut; a replaced start, a lost
//! anchor or an edited archive is named. Archives past retention are deleted, and every run is
//! audited. The server archives by itself at start and daily.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::trail::*;
use common::*;

/// Runs `tijori audit archive` on `dir` keeping no record online.
fn archive(dir: &Path, keep_days: &str) -> String {
    let (code, out, err) = audit_cmd(&[
        "archive".as_ref(),
        "--data-dir".as_ref(),
        dir.as_os_str(),
        "--audit-online-days".as_ref(),
        "0".as_ref(),
        "--audit-keep-days".as_ref(),
        keep_days.as_ref(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    out
}

fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("audit-archive"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// `tijori audit verify` over `files` (then `dir` if given) with the pinned public key.
fn verify_all(files: &[PathBuf], dir: Option<&Path>, key: &str) -> (i32, String) {
    let mut args: Vec<&OsStr> = vec!["verify".as_ref(), "--public-key".as_ref(), key.as_ref()];
    for f in files {
        args.extend([OsStr::new("--file"), f.as_os_str()]);
    }
    if let Some(dir) = dir {
        args.extend([OsStr::new("--data-dir"), dir.as_os_str()]);
    }
    let (code, out, err) = audit_cmd(&args);
    (code, format!("{out}{err}"))
}

/// One more server session on `dir`: a few requests, then a clean stop (which signs the head).
fn session(dir: &Path) {
    let mut s = Server::start(&bin(), dir, &root_token());
    let key = s.principal(&format!("svc-{}", hex(6)), &["tokenizer"]);
    new_token(&s, &key, "text", &text());
    assert!(s.stop(), "{}", s.output());
}

#[test]
fn archives_chain_across_every_cut_and_tampering_is_named() {
    let (dir, _) = used_data_dir("archive");
    session(&dir); // a second signed checkpoint, so the first can be the cut
    let key = public_key(&dir);
    let before = records(&dir);

    let out = archive(&dir, "400");
    let files = archives(&dir);
    assert_eq!(files.len(), 1, "{out}");
    assert!(out.contains("archived"), "{out}");
    let first_left = records(&dir)[0].0;
    assert!(first_left > 1, "old records left the store");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(
        name,
        format!("audit-{:012}-{:012}.jsonl", 1, first_left - 1)
    );
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Every record archived is in the file, in order (their exact text is what verify checks).
    let seqs: Vec<i64> = std::fs::read_to_string(&files[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|l| l["seq"].as_i64())
        .collect();
    assert_eq!(seqs, (1..first_left).collect::<Vec<_>>());
    assert!(before.len() as i64 >= first_left);
    // The run is itself audited, naming the file.
    let runs: Vec<_> = records(&dir)
        .into_iter()
        .filter(|(_, r)| r["operation"] == "audit.archive")
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1["resource"], name.as_str());

    let (code, out) = verify(&dir);
    assert_eq!(code, 0, "the store alone verifies from its anchor: {out}");
    assert!(out.contains("archived"), "{out}");
    let (code, out) = verify_all(&files, Some(&dir), &key);
    assert_eq!(code, 0, "archive then store: {out}");
    assert!(
        out.contains("intact") && !out.contains("from record"),
        "{out}"
    );
    let (code, out) = verify_all(&files, None, &key);
    assert_eq!(code, 0, "the archive alone: {out}");

    // A second cut: its file starts at the first cut's signature, and all joins up.
    session(&dir);
    archive(&dir, "400");
    let files = archives(&dir);
    assert_eq!(files.len(), 2);
    let (code, out) = verify_all(&files, Some(&dir), &key);
    assert_eq!(code, 0, "two archives then store: {out}");
    let (code, out) = verify_all(&files[1..], None, &key);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("joined to the signed cut"), "{out}");
    assert_eq!(verify_all(&files[1..], Some(&dir), &key).0, 0);
    let (code, out) = verify_all(&files[..1], Some(&dir), &key);
    assert_eq!(code, 1, "a missing archive is named: {out}");

    // Tampering: the store's anchor removed, the first remaining record's start replaced,
    // an edited archive line.
    let first = records(&dir)[0].0;
    let cases = [
        (
            "lost-anchor",
            format!("DELETE FROM audit_checkpoints WHERE seq = {}", first - 1),
            1,
        ),
        (
            "new-start",
            format!("UPDATE audit SET prev_hash = zeroblob(32) WHERE seq = {first}"),
            first,
        ),
    ];
    for (name, sql, bad) in cases {
        let copy = copy_dir(&dir, &format!("archive-{name}"));
        self::sql(&copy, &sql);
        let (code, out) = verify(&copy);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.contains(&format!("record {bad}:")), "{name}: {out}");
    }
    let edited = dir.join("edited.jsonl");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    std::fs::write(&edited, text.replacen("success", "failure", 1)).unwrap();
    let (code, out) = verify_all(&[edited, files[1].clone()], Some(&dir), &key);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("BROKEN"), "{out}");

    // Retention: with a keep period of 0 days every archive is past it and deleted (each
    // deletion audited); the store still verifies from its anchor.
    // (This run first archives what was signed since, then deletes that file too.)
    let out = archive(&dir, "0");
    assert!(archives(&dir).is_empty(), "{out}");
    let deletions = records(&dir)
        .into_iter()
        .filter(|(_, r)| r["operation"] == "audit.archive_delete")
        .count();
    assert_eq!(deletions, 3, "{out}");
    assert_eq!(out.matches("deleted").count(), 3, "{out}");
    assert_eq!(verify(&dir).0, 0);
}

#[test]
fn the_server_archives_at_start_and_refuses_a_retention_shorter_than_the_online_window() {
    let (dir, _) = used_data_dir("archive-server");
    session(&dir);
    let key = public_key(&dir);
    let mut s = Server::start_with(
        &bin(),
        &dir,
        &root_token(),
        &["--audit-online-days", "0", "--audit-keep-days", "400"],
    );
    assert!(
        wait_for(Duration::from_secs(30), || !archives(&dir).is_empty()),
        "no archive written: {}",
        s.output()
    );
    let k = s.principal("after-archive", &["tokenizer"]);
    new_token(&s, &k, "text", &text());
    assert!(s.stop(), "{}", s.output());
    let (code, out) = verify_all(&archives(&dir), Some(&dir), &key);
    assert_eq!(code, 0, "{out}");

    let out = std::process::Command::new(bin())
        .args([
            "server",
            "--dev",
            "--audit-online-days",
            "100",
            "--audit-keep-days",
            "30",
        ])
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--audit-keep-days"), "{err}");
}
