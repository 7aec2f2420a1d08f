//! Erasure by crypto-shredding, black-box: `DELETE /v1/subjects/{subject}` (data officers only)
//! destroys the subject's own data key and deletes its tokens; they answer 404, other subjects
//! are untouched, the erasure is audited with its count, and neither the subject's wrapped key
//! nor its ciphertexts are left anywhere in the data dir, so even someone holding the database
//! files and every other key (the dev root key file is right there) cannot recover a value.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use common::trail::records;
use common::*;
use serde_json::json;

/// Rows of the stopped vault's database, straight from the file.
fn blobs(dir: &std::path::Path, sql: &str) -> Vec<Vec<u8>> {
    let db = vault_db(dir);
    let mut stmt = db.prepare(sql).unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

#[test]
fn erasing_a_subject_destroys_its_key_and_only_its_tokens() {
    let mut s = start("erasure");
    let revealer = s.principal("erase-app", &["revealer"]);
    let officer = s.principal("erase-dpo", &["data_officer"]);
    let subject = format!("cust-{}", hex(8));
    let (cards, mut tokens) = (vec![card(), card(), card()], Vec::new());
    for c in &cards {
        let r = tokenize(
            &s,
            &revealer,
            json!({"type": "card_number", "value": c, "subject": subject}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        tokens.push(token_of(&r));
    }
    let det = tokenize(
        &s,
        &revealer,
        json!({"type": "cnic", "value": cnic().0, "subject": subject, "deterministic": true}),
    );
    assert_eq!(det.status, 201, "{}", det.text);
    tokens.push(token_of(&det));
    let other_card = card();
    let other = tokenize(
        &s,
        &revealer,
        json!({"type": "card_number", "value": other_card, "subject": "someone-else"}),
    );
    let other = token_of(&other);
    let shared_card = card();
    let shared = new_token(&s, &revealer, "card_number", &shared_card);
    // What an attacker with the files would go for: the wrapped key and the ciphertexts.
    s.kill();
    let scope = format!("subject:{subject}");
    let wrapped = blobs(
        &s.data_dir,
        &format!("SELECT wrapped FROM data_keys WHERE scope = '{scope}'"),
    );
    let ciphertexts = blobs(
        &s.data_dir,
        &format!("SELECT ciphertext FROM tokens WHERE subject = '{subject}'"),
    );
    assert_eq!((wrapped.len(), ciphertexts.len()), (1, 4));
    s.restart();

    let url = format!("/v1/subjects/{}", enc(&subject));
    let r = s.call("DELETE", &url, Some(&revealer), None, &[]);
    assert_error(&r, 403, "forbidden");
    let r = s.call("DELETE", &url, Some(&s.root_token), None, &[]);
    assert_error(&r, 403, "forbidden");
    assert_eq!(
        reveal(&s, &revealer, &tokens[0]),
        cards[0],
        "nothing erased by a refusal"
    );

    let r = s.call("DELETE", &url, Some(&officer), None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"subject": subject, "tokens_erased": 4, "keys_destroyed": 1})
    );
    for t in &tokens {
        assert_error(
            &s.get(&format!("/v1/tokens/{}", enc(t)), Some(&revealer)),
            404,
            "not_found",
        );
        let d = detokenize(&s, &revealer, &[t]);
        assert_eq!(d.status, 200);
        assert!(d.json["items"][0].get("value").is_none(), "{}", d.text);
    }
    assert_eq!(reveal(&s, &revealer, &other), other_card);
    assert_eq!(reveal(&s, &revealer, &shared), shared_card);
    // Repeating the request is harmless; a bad subject is refused.
    let again = s.call("DELETE", &url, Some(&officer), None, &[]);
    assert_eq!(again.json["tokens_erased"], 0, "{}", again.text);
    let bad = s.call("DELETE", "/v1/subjects/a%0Ab", Some(&officer), None, &[]);
    assert_error(&bad, 422, "invalid_value");
    // A new value for the same subject gets a new key and works.
    let fresh = card();
    let t = new_token(&s, &revealer, "card_number", &fresh);
    assert_eq!(reveal(&s, &revealer, &t), fresh);

    assert!(s.stop(), "{}", s.output());
    let audit: Vec<_> = records(&s.data_dir)
        .into_iter()
        .filter(|(_, r)| r["operation"] == "erase_subject" && r["outcome"] == "success")
        .collect();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0].1["resource"], subject.as_str());
    assert_eq!(audit[0].1["count"], 4);
    // No copy of the key or the ciphertexts anywhere in the data dir: the database, its log,
    // or free pages.
    for f in files_under(&s.data_dir) {
        let bytes = std::fs::read(&f).unwrap();
        for secret in wrapped.iter().chain(&ciphertexts) {
            assert!(
                !contains_bytes(&bytes, secret),
                "{} still holds erased bytes",
                f.display()
            );
        }
    }
}
