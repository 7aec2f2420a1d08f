//! Hostile input and secrets under failure (issue 8): a battery of malformed and hostile
//! requests that carry real values in every place a broken client or an attacker could put
//! them. Each is answered with a 4xx in API.md's error format, never a 5xx, and no answer, log
//! line or audit record of the server quotes any of the values.
// These are tests: a failed unwrap, expect or assertion is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;

/// Values whose leak the test looks for: a valid card, a card failing Luhn, and long digit
/// and text canaries.
fn values() -> Vec<String> {
    let good = card();
    let mut bad = good.clone().into_bytes();
    bad[15] = b'0' + (bad[15] - b'0' + 1) % 10;
    vec![
        good,
        String::from_utf8(bad).unwrap(),
        digits(19),
        format!("canary{}", hex(12)),
    ]
}

/// Request bodies that put `v` where it does not belong. Each must be refused with a 4xx.
fn hostile_bodies(v: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":"{v}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":{v}}}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":["{v}"]}}"#),
        ),
        ("/v1/tokens", format!(r#"{{"type":"{v}","value":"{v}"}}"#)),
        (
            "/v1/tokens",
            format!(r#"{{"{v}":"card_number","value":"x"}}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":"{v}","format":"{v}"}}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":"{v}","subject":{v}}}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":"{v}{v}{v}"}}"#),
        ),
        (
            "/v1/tokens",
            format!(r#"{{"type":"card_number","value":"{v}\u0000"}}"#),
        ),
        ("/v1/tokens", format!(r#"{{"type":"iban","value":"{v}"}}"#)),
        ("/v1/tokens", format!(r#"{{"type":"cnic","value":"{v}"}}"#)),
        (
            "/v1/tokens",
            format!(r#"{{"type":"pk_mobile","value":"{v}"}}"#),
        ),
        ("/v1/tokens", v.to_owned()),
        ("/v1/tokens", format!("[\"{v}\"]")),
        (
            "/v1/tokens/batch",
            format!(r#"{{"items":[{{"type":"card_number","value":{v}}}]}}"#),
        ),
        ("/v1/tokens/batch", format!(r#"{{"items":"{v}"}}"#)),
        (
            "/v1/tokens/search",
            format!(r#"{{"type":"card_number","value":{v}}}"#),
        ),
        (
            "/v1/tokens/search",
            format!(r#"{{"type":"{v}","value":"{v}"}}"#),
        ),
        ("/v1/detokenize", format!(r#"{{"tokens":{v}}}"#)),
        ("/v1/detokenize", format!(r#"{{"tokens":[{v}]}}"#)),
        (
            "/v1/principals",
            format!(r#"{{"name":"x","roles":["{v}"]}}"#),
        ),
        (
            "/v1/audit/hash",
            format!(r#"{{"type":"card_number","value":{v}}}"#),
        ),
        (
            "/v1/auth/login",
            format!(r#"{{"username":"{v}","password":{v}}}"#),
        ),
    ]
}

/// A 4xx in API.md's error format, or a batch's 200 whose every item is an error.
fn refused(r: &Reply) -> bool {
    match r.status {
        400..=499 => r.json["error"]["code"].is_string(),
        200 => r.json["items"]
            .as_array()
            .is_some_and(|items| items.iter().all(|i| i["error"]["code"].is_string())),
        _ => false,
    }
}

#[test]
fn hostile_requests_get_a_4xx_and_no_value_leaks_anywhere() {
    let mut s = start("hostile");
    let key = s.principal("hostile", &["tokenizer", "revealer", "auditor"]);
    let values = values();
    let mut answers = Vec::new();
    for v in &values {
        for (path, body) in hostile_bodies(v) {
            let r = s.call_raw("POST", path, Some(&key), &body);
            assert!(refused(&r), "POST {path} {body:?}: {} {}", r.status, r.text);
            answers.push(r);
        }
        // In the query, the path, and the headers.
        answers.push(s.get(
            &format!("/v1/audit?principal={v}&token={v}&operation={v}"),
            Some(&key),
        ));
        answers.push(s.get(&format!("/v1/audit?since={v}"), Some(&key)));
        answers.push(s.get(&format!("/v1/tokens/{v}/x"), Some(&key)));
        answers.push(s.get(&format!("/v1/tokens/{v}"), Some(&key)));
        answers.push(s.call("DELETE", &format!("/v1/tokens/{v}"), Some(&key), None, &[]));
        // A value sent as a token is answered item by item, the client's own string beside
        // its `not_found`; the log and the audit trail (checked below) must not keep it.
        let r = detokenize(&s, &key, &[v.as_str()]);
        assert_eq!(
            r.json["items"][0]["error"]["code"], "not_found",
            "{}",
            r.text
        );
        answers.push(s.get("/v1/audit", Some(v)));
        answers.push(s.call_text(
            "POST",
            "/v1/tokens",
            Some(&key),
            Some("{}"),
            &[("Idempotency-Key", v), ("Content-Type", v)],
        ));
    }
    for r in &answers {
        assert!(r.status < 500, "{} {}", r.status, r.text);
        for v in &values {
            assert_no_leak(r, v);
        }
    }

    // Nothing in the server's log or the audit trail either.
    assert!(s.stop(), "a clean stop: {}", s.output());
    let output = s.output();
    let trail: String = common::trail::events(&s.data_dir)
        .iter()
        .map(|e| e.to_string())
        .collect();
    for v in &values {
        assert!(!output.contains(v.as_str()), "the server's log quotes {v}");
        assert!(!trail.contains(v.as_str()), "the audit trail quotes {v}");
    }
}
