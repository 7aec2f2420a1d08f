//! Production initialization and unsealing with custodians' key shares, black-box: `tijori
//! operator init` prints the shares and root token once and stores neither; the server starts
//! sealed; shares are taken one by one with progress, a malformed, mistyped, repeated or
//! foreign share is refused with a reason, a set that rebuilds a wrong key starts unsealing
//! over; at the threshold the vault opens, and `tijori operator seal` drops every key at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::json;
use tijori_crypto::{split_key, KeyShare, SecretKey};

/// Runs `tijori operator init ARGS` on a new data dir; answers what it printed.
fn init_output(dir: &Path, args: &[String]) -> String {
    let out = Command::new(bin())
        .args(["operator", "init"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Runs `tijori operator init` on a new data dir: the shares and the root token it printed.
fn init(dir: &Path, shares: &str, threshold: &str) -> (Vec<String>, String) {
    let args = ["--shares", shares, "--threshold", threshold].map(String::from);
    let text = init_output(dir, &args);
    let shares: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(": tjs1-").map(|(_, s)| format!("tjs1-{s}")))
        .collect();
    (shares, root_token_in(&text))
}

/// The root token `tijori operator init` printed.
fn root_token_in(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            l.split_once("keep it safe): ")
                .map(|(_, t)| t.trim().to_owned())
        })
        .unwrap()
}

fn unseal(s: &Server, share: &str) -> Reply {
    s.post("/v1/sys/unseal", None, &json!({ "share": share }))
}

/// `tijori operator unseal` with the share on stdin: exit status and stdout.
fn unseal_cli(s: &Server, share: &str) -> (bool, String) {
    let mut child = Command::new(bin())
        .args(["operator", "unseal", "--addr", &s.url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{share}").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn progress(s: &Server) -> (bool, u64, u64) {
    let r = s.get("/v1/sys/unseal", None);
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.json["sealed"].as_bool().unwrap(),
        r.json["progress"].as_u64().unwrap(),
        r.json["threshold"].as_u64().unwrap(),
    )
}

#[test]
fn custodians_unseal_a_production_vault_share_by_share() {
    let dir = temp_dir(&tmp_base(), "unseal");
    let (shares, root) = init(&dir, "5", "3");
    assert_eq!(shares.len(), 5);
    let again = Command::new(bin())
        .args(["operator", "init", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("holds a vault already"));
    // Nothing of a share is stored.
    for f in files_under(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        for share in &shares {
            assert!(
                !contains_bytes(&bytes, &share.as_bytes()[5..45]),
                "{}",
                f.display()
            );
        }
    }

    let mut s = Server::start_production(&bin(), &dir, &root);
    let health = s.get("/v1/health", None);
    assert_eq!(
        (health.status, health.json["sealed"].clone()),
        (503, json!(true))
    );
    assert_eq!(progress(&s), (true, 0, 3));
    let dev = Command::new(bin())
        .args(["server", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        dev.status.code(),
        Some(2),
        "a production dir refuses dev mode"
    );

    // Refused with a reason, and counted for nothing.
    let (other, _) = init(&temp_dir(&tmp_base(), "unseal-other"), "3", "3");
    let mut typo = shares[0].clone().into_bytes();
    typo[30] = if typo[30] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    for (bad, says) in [
        ("hello", "tjs1-"),
        (typo.as_str(), "mistyped"),
        (&other[0], "another vault"),
    ] {
        let r = unseal(&s, bad);
        assert_error(&r, 422, "invalid_value");
        assert!(r.text.contains(says), "{bad}: {}", r.text);
        assert!(!r.text.contains(&shares[0][5..40]), "no share in errors");
    }
    assert_eq!(progress(&s), (true, 0, 3));

    // One by one, over HTTP and with the CLI.
    let r = unseal(&s, &shares[4]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"sealed": true, "progress": 1, "threshold": 3})
    );
    assert_error(&unseal(&s, &shares[4]), 422, "invalid_value");
    let (ok, out) = unseal_cli(&s, &shares[1]);
    assert!(ok && out.contains("2 of 3"), "{out}");
    assert_eq!(
        s.get("/v1/health", None).status,
        503,
        "still sealed at 2 of 3"
    );
    let (ok, out) = unseal_cli(&s, &shares[2]);
    assert!(ok && out.contains("unsealed"), "{out}");
    assert_eq!(s.get("/v1/health", None).status, 200);
    assert_eq!(progress(&s), (false, 0, 3));

    // A working vault.
    let key = s.principal("prod-svc", &["revealer"]);
    let card = card();
    let token = new_token(&s, &key, "card_number", &card);
    assert_eq!(reveal(&s, &key, &token), card);

    // Emergency seal: every key leaves memory at once.
    let sealed = Command::new(bin())
        .args(["operator", "seal", "--addr", &s.url])
        .env("TIJORI_TOKEN", &root)
        .output()
        .unwrap();
    assert!(
        sealed.status.success(),
        "{}",
        String::from_utf8_lossy(&sealed.stderr)
    );
    assert_eq!(s.get("/v1/health", None).status, 503);
    assert_error(&detokenize(&s, &key, &[&token]), 503, "sealed");

    // Shares with this vault's tag and valid check digits, but of another key: refused at the
    // threshold, and unsealing starts over.
    let tag = KeyShare::parse(&shares[0]).unwrap().vault();
    let forged = split_key(&SecretKey::generate().unwrap(), tag, 3, 5).unwrap();
    assert_eq!(unseal(&s, &shares[0]).status, 200);
    assert_eq!(unseal(&s, &shares[3]).status, 200);
    let r = unseal(&s, &forged[2].to_text());
    assert_error(&r, 422, "invalid_value");
    assert!(r.text.contains("starts over"), "{}", r.text);
    assert_eq!(progress(&s), (true, 0, 3));

    // A restart forgets everything: sealed again, and three shares open it.
    s.kill();
    let s = Server::start_production(&bin(), &dir, &root);
    assert_eq!(progress(&s), (true, 0, 3));
    for share in &shares[2..] {
        assert_eq!(unseal(&s, share).status, 200);
    }
    assert_eq!(reveal(&s, &key, &token), card);

    // Every unseal attempt is audited, never with the share.
    let audit = s.get("/v1/audit?operation=unseal&limit=100", Some(&root));
    assert_eq!(audit.status, 200, "{}", audit.text);
    let records = audit.json["records"].as_array().unwrap();
    assert!(records.len() >= 10, "{}", audit.text);
    assert!(records.iter().any(|r| r["record"]["outcome"] == "failure"));
    assert!(records
        .iter()
        .any(|r| r["record"]["resource"] == "unsealed"));
    for f in files_under(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, &shares[0].as_bytes()[5..45]),
            "{}",
            f.display()
        );
    }
}

#[test]
fn a_data_dir_without_a_vault_says_how_to_make_one() {
    let dir = temp_dir(&tmp_base(), "unseal-none");
    let out = Command::new(bin())
        .args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .arg("--insecure-plain-http")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tijori operator init"));
    let bad = Command::new(bin())
        .args([
            "operator",
            "init",
            "--shares",
            "3",
            "--threshold",
            "4",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--threshold"));
}

#[test]
fn shares_can_go_encrypted_to_each_custodian() {
    let custodians: Vec<age::x25519::Identity> =
        (0..3).map(|_| age::x25519::Identity::generate()).collect();
    let dir = temp_dir(&tmp_base(), "unseal-age");
    let mut args: Vec<String> = ["--shares", "3", "--threshold", "2"]
        .map(String::from)
        .to_vec();
    for c in &custodians {
        args.extend(["--share-recipient".into(), c.to_public().to_string()]);
    }
    let text = init_output(&dir, &args);
    assert!(!text.contains("tjs1-"), "no share in the clear: {text}");
    let blocks: Vec<String> = text
        .split("-----BEGIN AGE ENCRYPTED FILE-----")
        .skip(1)
        .map(|b| {
            let end = b.find("-----END AGE ENCRYPTED FILE-----").unwrap();
            format!(
                "-----BEGIN AGE ENCRYPTED FILE-----{}-----END AGE ENCRYPTED FILE-----\n",
                &b[..end]
            )
        })
        .collect();
    assert_eq!(blocks.len(), 3);
    let root = root_token_in(&text);
    // Each custodian opens only their own share.
    assert!(age::decrypt(&custodians[1], blocks[0].as_bytes()).is_err());
    let shares: Vec<String> = blocks
        .iter()
        .zip(&custodians)
        .map(|(b, c)| String::from_utf8(age::decrypt(c, b.as_bytes()).unwrap()).unwrap())
        .collect();
    assert!(shares.iter().all(|s| s.starts_with("tjs1-")));
    let s = Server::start_production(&bin(), &dir, &root);
    assert_eq!(unseal(&s, &shares[2]).status, 200);
    let r = unseal(&s, &shares[0]);
    assert_eq!(r.json["sealed"], false, "{}", r.text);

    let bad = Command::new(bin())
        .args(["operator", "init", "--shares", "3", "--share-recipient"])
        .arg(custodians[0].to_public().to_string())
        .arg("--data-dir")
        .arg(temp_dir(&tmp_base(), "unseal-age-bad"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("one per share"));
}
