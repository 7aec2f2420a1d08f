//! Protection at rest: a ciphertext is bound to its row, the dev root key file is private, and
//! dev mode says it is insecure.
// These are tests: a failed unwrap, expect or assertion is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[test]
fn ciphertext_moved_to_another_row_does_not_decrypt() {
    let mut s = start("binding");
    let key = s.principal("binding-revealer", &["revealer"]);
    let (a, b) = (card(), card());
    let ta = new_token(&s, &key, "card_number", &a);
    let tb = new_token(&s, &key, "card_number", &b);
    s.kill();

    {
        let db = vault_db(&s.data_dir);
        let ca: Vec<u8> = db
            .query_row(
                "SELECT ciphertext FROM tokens WHERE token = ?1",
                [&ta],
                |r| r.get(0),
            )
            .unwrap();
        let n = db
            .execute(
                "UPDATE tokens SET ciphertext = ?1 WHERE token = ?2",
                rusqlite::params![ca, tb],
            )
            .unwrap();
        assert_eq!(n, 1, "B's row not found");
    }

    s.restart();
    let r = detokenize(&s, &key, &[&tb]);
    assert_eq!(r.status, 200, "detokenize answers per item: {}", r.text);
    let item = &r.json["items"][0];
    assert_eq!(item["token"], tb.as_str(), "{}", r.text);
    assert!(
        item["error"]["code"].is_string(),
        "a swapped ciphertext must be an error: {}",
        r.text
    );
    assert!(
        matches!(item.get("value"), None | Some(Value::Null)),
        "{}",
        r.text
    );
    assert!(!r.text.contains(&a), "B's token revealed A's value");
    assert!(!r.text.contains(&b));

    assert_eq!(reveal(&s, &key, &ta), a, "A is unharmed");
    let out = s.output();
    assert!(
        !out.contains(&a) && !out.contains(&b),
        "the server output contains a value"
    );
}

#[test]
fn root_key_file_is_private_and_dev_mode_says_insecure() {
    let s = start("keyfile");
    let keys: Vec<_> = files_under(&s.data_dir)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(".key"))
        })
        .collect();
    assert!(
        !keys.is_empty(),
        "no *.key file in {}",
        s.data_dir.display()
    );
    for k in &keys {
        let mode = std::fs::metadata(k).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", k.display());
    }
    // The databases (the vault's and the audit trail's) and their WAL files are the owner's
    // alone too.
    let key = s.principal("perm-svc", &["tokenizer"]);
    assert_eq!(new_token(&s, &key, "text", &text()).len(), 44);
    let db_files: Vec<_> = files_under(&s.data_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".sqlite3"))
        .collect();
    assert!(
        db_files.len() >= 4,
        "expected the two databases and their WALs: {db_files:?}"
    );
    for f in &db_files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", f.display());
    }
    let said = wait_for(Duration::from_secs(10), || {
        s.output().to_lowercase().contains("insecure")
    });
    assert!(
        said,
        "dev mode did not say it is insecure; output:\n{}",
        s.output()
    );
}
