//! The HTTP contract of API.md, tested black-box against the real `tijori server --dev`.
// These are tests: a failed unwrap, expect or assertion is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const CARDS: &str = include_str!("../../../tests/vectors/cards.csv");
const IBANS: &str = include_str!("../../../tests/vectors/iban.csv");
const PK_IDS: &str = include_str!("../../../tests/vectors/pk_identifiers.csv");

/// What an unauthenticated attempt sends: a label, a bearer credential, raw headers.
type AuthCase<'a> = (&'a str, Option<&'a str>, Vec<(&'a str, String)>);

/// Every endpoint that needs a credential, with a body that would be valid.
fn protected_endpoints() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        (
            "POST",
            "/v1/tokens",
            Some(json!({"type": "text", "value": "hello there"})),
        ),
        (
            "POST",
            "/v1/tokens/batch",
            Some(json!({"items": [{"type": "text", "value": "hello there"}]})),
        ),
        (
            "GET",
            "/v1/tokens/tok_00000000000000000000000000000000",
            None,
        ),
        (
            "DELETE",
            "/v1/tokens/tok_00000000000000000000000000000000",
            None,
        ),
        (
            "POST",
            "/v1/detokenize",
            Some(json!({"tokens": ["tok_00000000000000000000000000000000"]})),
        ),
        (
            "POST",
            "/v1/tokens/search",
            Some(json!({"type": "text", "value": "hello there"})),
        ),
        (
            "POST",
            "/v1/principals",
            Some(json!({"name": "intruder", "roles": ["admin"]})),
        ),
        ("GET", "/v1/principals", None),
        ("POST", "/v1/principals/prn_0000000000000000/disable", None),
        ("POST", "/v1/principals/prn_0000000000000000/enable", None),
        ("POST", "/v1/sys/seal", None),
        ("GET", "/metrics", None),
        ("DELETE", "/v1/subjects/cust-1", None),
    ]
}

/// Card masks by API.md: first six and last four of a 16-digit number.
fn card_mask16(c: &str) -> String {
    format!("{}******{}", &c[..6], &c[12..])
}

/// Checks a masked form of a non-card, non-CNIC type: same length, at most the last four
/// characters shown, everything else `*`.
fn assert_tail_mask(masked: &str, normalized: &str) {
    let m: Vec<char> = masked.chars().collect();
    let v: Vec<char> = normalized.chars().collect();
    assert_eq!(
        m.len(),
        v.len(),
        "masked {masked:?} of a {}-character value",
        v.len()
    );
    let shown = m.iter().filter(|&&c| c != '*').count();
    assert!(shown <= 4, "masked {masked:?} shows {shown} characters");
    for (i, c) in m.iter().enumerate() {
        if *c != '*' {
            assert!(
                i + 4 >= v.len(),
                "masked {masked:?} shows a character before the last four"
            );
            assert_eq!(
                *c, v[i],
                "masked {masked:?} shows a character the value does not have"
            );
        }
    }
}

fn cnic_mask(normalized: &str) -> String {
    format!("*****-***{}-*", &normalized[8..12])
}

#[test]
fn health_and_openapi_need_no_auth() {
    let s = start("health");
    let r = s.get("/v1/health", None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "ok", "{}", r.text);
    assert_eq!(r.json["sealed"], false, "{}", r.text);
    assert!(
        r.json["version"].as_str().is_some_and(|v| !v.is_empty()),
        "{}",
        r.text
    );
    assert!(r.request_id.as_deref().is_some_and(|v| !v.is_empty()));
    assert!(r
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("application/json")));

    let r = s.get("/v1/openapi.json", None);
    assert_eq!(r.status, 200, "{}", r.text);
    let version = r
        .json
        .get("openapi")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no openapi key: {}", r.text));
    assert!(
        version.starts_with('3'),
        "OpenAPI 3 expected, got {version}"
    );
    let paths = r.json["paths"]
        .as_object()
        .unwrap_or_else(|| panic!("no paths object"));
    for p in [
        "/v1/health",
        "/v1/tokens",
        "/v1/tokens/batch",
        "/v1/tokens/search",
        "/v1/detokenize",
        "/v1/principals",
        "/v1/sys/seal",
    ] {
        assert!(paths.contains_key(p), "openapi.json does not describe {p}");
    }
    assert!(
        paths.keys().any(|k| k.starts_with("/v1/tokens/{")),
        "openapi.json has no /v1/tokens/{{token}}"
    );
}

#[test]
fn every_other_endpoint_needs_a_valid_credential() {
    let s = start("unauth");
    // A principal that is disabled must not get in either.
    let r = s.post(
        "/v1/principals",
        Some(&s.root_token),
        &json!({"name": "to-disable", "roles": ["revealer"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let disabled_key = r.json["api_key"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    let r = s.call(
        "POST",
        &format!("/v1/principals/{id}/disable"),
        Some(&s.root_token),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "disable: {}", r.text);

    let wrong = format!("tjk_{}", hex(64));
    let root_plus = format!("{}x", s.root_token);
    for (method, path, body) in protected_endpoints() {
        let cases: [AuthCase; 5] = [
            ("no credential", None, vec![]),
            ("wrong api key", Some(wrong.as_str()), vec![]),
            (
                "root token with an extra character",
                Some(root_plus.as_str()),
                vec![],
            ),
            ("disabled principal", Some(disabled_key.as_str()), vec![]),
            (
                "not a bearer credential",
                None,
                vec![("Authorization", format!("Basic {}", s.root_token))],
            ),
        ];
        for (what, token, headers) in cases {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let body = body.as_ref().map(Value::to_string);
            let r = s.call_text(method, path, token, body.as_deref(), &headers);
            assert_eq!(r.status, 401, "{method} {path} with {what}: {}", r.text);
            assert_error(&r, 401, "unauthenticated");
        }
    }
    // None of it happened.
    let r = s.get("/v1/health", None);
    assert_eq!(
        (r.status, r.json["sealed"].clone()),
        (200, json!(false)),
        "{}",
        r.text
    );
    let r = s.get("/v1/principals", Some(&s.root_token));
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(!names.contains(&"intruder"), "{names:?}");
}

#[test]
fn principals_are_managed_by_admins() {
    let s = start("principals");
    let r = s.post(
        "/v1/principals",
        Some(&s.root_token),
        &json!({"name": "checkout-service", "roles": ["tokenizer"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json["id"].as_str().unwrap().to_owned();
    let key = r.json["api_key"].as_str().unwrap().to_owned();
    assert_eq!(r.json["name"], "checkout-service");
    assert_eq!(r.json["roles"], json!(["tokenizer"]));

    let r = s.get("/v1/principals", Some(&s.root_token));
    assert_eq!(r.status, 200, "{}", r.text);
    let item = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .cloned();
    let item = item.unwrap_or_else(|| panic!("new principal not listed: {}", r.text));
    assert_eq!(item["name"], "checkout-service");
    assert!(!r.text.contains(&key), "the listing shows an API key");
    assert!(
        matches!(item.get("api_key"), None | Some(Value::Null)),
        "the listing has an api_key field"
    );

    // The key works, stops working when disabled, works again when enabled.
    assert_eq!(
        tokenize(&s, &key, json!({"type": "text", "value": text()})).status,
        201
    );
    let r = s.call(
        "POST",
        &format!("/v1/principals/{id}/disable"),
        Some(&s.root_token),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_error(
        &tokenize(&s, &key, json!({"type": "text", "value": text()})),
        401,
        "unauthenticated",
    );
    let r = s.call(
        "POST",
        &format!("/v1/principals/{id}/enable"),
        Some(&s.root_token),
        None,
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        tokenize(&s, &key, json!({"type": "text", "value": text()})).status,
        201
    );

    // Unknown role, unknown principal.
    let r = s.post(
        "/v1/principals",
        Some(&s.root_token),
        &json!({"name": "x", "roles": ["superuser"]}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = s.call(
        "POST",
        "/v1/principals/prn_doesnotexist/disable",
        Some(&s.root_token),
        None,
        &[],
    );
    assert_error(&r, 404, "not_found");
    let r = s.post(
        "/v1/principals",
        Some(&s.root_token),
        &json!({"name": "x", "roles": ["tokenizer"], "extra": 1}),
    );
    assert_error(&r, 400, "unknown_field");
}

#[test]
fn role_matrix() {
    let s = start("roles");
    let seeder = s.principal("seeder", &["revealer"]);
    let card = card();
    let r = tokenize(
        &s,
        &seeder,
        json!({"type": "card_number", "value": card, "deterministic": true}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let seeded = token_of(&r);

    // tokenize, detokenize, search, GET token, delete, create principal, seal
    let table: [(&str, [bool; 7]); 6] = [
        ("admin", [false, false, false, false, false, true, true]),
        ("tokenizer", [true, false, true, true, false, false, false]),
        ("revealer", [true, true, true, true, false, false, false]),
        ("support", [false, true, true, true, false, false, false]),
        ("auditor", [false, false, false, false, false, false, false]),
        (
            "data_officer",
            [false, false, true, true, true, false, false],
        ),
    ];
    let ops = [
        "tokenize",
        "detokenize",
        "search",
        "get token",
        "delete",
        "create principal",
        "seal",
    ];
    let mut keys = Vec::new();
    for (role, want) in table {
        let key = s.principal(&format!("matrix-{role}"), &[role]);
        let victim = new_token(&s, &seeder, "text", &text());
        let allowed = |op: usize, r: &Reply, ok: u16| -> bool {
            if r.status == ok {
                return true;
            }
            assert_eq!(
                r.status, 403,
                "{role} {}: expected {ok} or 403, got {}",
                ops[op], r.text
            );
            assert_error(r, 403, "forbidden");
            false
        };
        let tok = tokenize(&s, &key, json!({"type": "text", "value": text()}));
        let det = detokenize(&s, &key, &[&seeded]);
        let sea = s.post(
            "/v1/tokens/search",
            Some(&key),
            &json!({"type": "card_number", "value": card}),
        );
        let get = s.get(&format!("/v1/tokens/{seeded}"), Some(&key));
        let del = s.call(
            "DELETE",
            &format!("/v1/tokens/{victim}"),
            Some(&key),
            None,
            &[],
        );
        let mk = s.post(
            "/v1/principals",
            Some(&key),
            &json!({"name": format!("made-by-{role}"), "roles": ["tokenizer"]}),
        );
        let got = [
            allowed(0, &tok, 201),
            allowed(1, &det, 200),
            allowed(2, &sea, 200),
            allowed(3, &get, 200),
            allowed(4, &del, 204),
            allowed(5, &mk, 201),
        ];
        assert_eq!(
            got,
            want[..6],
            "role {role}: allowed {:?}",
            ops[..6].iter().zip(got).collect::<Vec<_>>()
        );
        if got[1] {
            let v = &det.json["items"][0]["value"];
            let expected = if role == "revealer" {
                card.clone()
            } else {
                card_mask16(&card)
            };
            assert_eq!(v, expected.as_str(), "{role} detokenize: {}", det.text);
        }
        if got[2] {
            assert_eq!(sea.json["token"], seeded.as_str(), "{}", sea.text);
        }
        if got[3] {
            assert_eq!(get.json["token"], seeded.as_str(), "{}", get.text);
            assert!(!get.text.contains(&card), "GET token shows the value");
        }
        // A refused delete left the token in place; an allowed one removed it.
        let still = s.get(&format!("/v1/tokens/{victim}"), Some(&seeder));
        assert_eq!(
            still.status,
            if got[4] { 404 } else { 200 },
            "{role} delete: {}",
            still.text
        );
        keys.push((role, key, want[6]));
    }
    // Seal last: every non-admin is refused, then an admin seals.
    for (role, key, may_seal) in &keys {
        if !may_seal {
            let r = s.call("POST", "/v1/sys/seal", Some(key), None, &[]);
            assert_error(&r, 403, "forbidden");
            assert_eq!(
                s.get("/v1/health", None).status,
                200,
                "{role} sealed the vault"
            );
        }
    }
    let (_, admin, _) = keys.iter().find(|(r, _, _)| *r == "admin").unwrap();
    let r = s.call("POST", "/v1/sys/seal", Some(admin), None, &[]);
    assert_eq!(r.status, 200, "admin seal: {}", r.text);
    assert_eq!(r.json["sealed"], true, "{}", r.text);
}

#[test]
fn every_type_tokenizes_and_validates() {
    let s = start("types");
    let key = s.principal("types-revealer", &["revealer"]);
    let mut submitted: Vec<String> = Vec::new();

    let ok = |ty: &str, value: &str, normalized: &str| -> Reply {
        let r = tokenize(&s, &key, json!({"type": ty, "value": value}));
        assert_eq!(r.status, 201, "{ty} {value:?} should tokenize: {}", r.text);
        let t = token_of(&r);
        assert!(t.starts_with("tok_"), "random token {t}");
        assert_eq!(r.json["type"], ty);
        assert!(r.json["masked"].is_string(), "{}", r.text);
        unix_seconds(
            r.json["created_at"]
                .as_str()
                .unwrap_or_else(|| panic!("no created_at: {}", r.text)),
        );
        assert_no_leak(&r, value);
        assert_no_leak(&r, normalized);
        assert_eq!(
            reveal(&s, &key, &t),
            normalized,
            "{ty} {value:?} normalized"
        );
        r
    };
    let bad = |ty: &str, value: &str, code: &str| {
        let r = tokenize(&s, &key, json!({"type": ty, "value": value}));
        assert_eq!(
            r.status, 422,
            "{ty} {value:?} should be refused: {}",
            r.text
        );
        assert_error(&r, 422, code);
        assert_no_leak(&r, value);
    };

    // card_number: the vectors, plus spaced and dashed forms and length limits.
    for row in csv_rows(CARDS) {
        let (number, valid) = (row[0], row[3] == "true");
        submitted.push(number.to_owned());
        if valid {
            let r = ok("card_number", number, number);
            assert_eq!(r.json["expires_at"], Value::Null, "{}", r.text);
            let m = r.json["masked"].as_str().unwrap();
            assert_eq!(m.len(), number.len());
            if number.len() == 16 {
                assert_eq!(m, card_mask16(number));
            }
            let shown = m.chars().filter(|&c| c != '*').count();
            assert!(shown <= 10 && m.len() - shown >= 6, "mask {m} of {number}");
            ok("card_number", &grouped(number, ' '), number);
        } else {
            bad("card_number", number, "invalid_card_number");
        }
    }
    let c = card();
    ok("card_number", &grouped(&c, '-'), &c);
    bad("card_number", &card_with("4", 11), "invalid_card_number");
    bad("card_number", &card_with("4", 20), "invalid_card_number");
    bad(
        "card_number",
        &format!("{}x{}", &c[..8], &c[8..]),
        "invalid_card_number",
    );
    bad("card_number", "", "invalid_card_number");

    // iban.
    for row in csv_rows(IBANS) {
        let (iban, valid) = (row[0], row[3] == "true");
        submitted.push(iban.to_owned());
        if valid {
            let r = ok("iban", iban, iban);
            assert_tail_mask(r.json["masked"].as_str().unwrap(), iban);
            ok("iban", &grouped(iban, ' ').to_lowercase(), iban);
        } else {
            bad("iban", iban, "invalid_iban");
        }
    }
    let i = iban_pk();
    ok("iban", &i, &i);
    bad("iban", &format!("XX{}", &i[2..]), "invalid_iban");

    // cnic and pk_mobile.
    for row in csv_rows(PK_IDS) {
        let (ty, input, valid, normalized) = (row[0], row[1], row[2] == "true", row[3]);
        submitted.push(input.to_owned());
        let code = if ty == "cnic" {
            "invalid_cnic"
        } else {
            "invalid_pk_mobile"
        };
        if valid {
            let r = ok(ty, input, normalized);
            let m = r.json["masked"].as_str().unwrap();
            if ty == "cnic" {
                assert_eq!(m, cnic_mask(normalized));
            } else {
                assert_tail_mask(m, normalized);
            }
        } else {
            bad(ty, input, code);
        }
    }
    let (raw, norm) = cnic();
    ok("cnic", &raw, &norm);
    ok("cnic", &norm, &norm);
    let (raw, norm) = pk_mobile();
    ok("pk_mobile", &raw, &norm);
    ok("pk_mobile", &norm, &norm);
    ok("pk_mobile", &format!("92{}", &norm[3..]), &norm);

    // bank_account.
    let acct = bank_account();
    let messy = format!("{}-{} {}", &acct[..4], &acct[4..8], &acct[8..]).to_lowercase();
    let r = ok("bank_account", &messy, &acct);
    assert_tail_mask(r.json["masked"].as_str().unwrap(), &acct);
    bad("bank_account", "12345", "invalid_value");
    bad(
        "bank_account",
        &format!("AC#{}", digits(9)),
        "invalid_value",
    );
    bad("bank_account", &digits(35), "invalid_value");

    // text.
    let t = text();
    let r = ok("text", &t, &t);
    assert_tail_mask(r.json["masked"].as_str().unwrap(), &t);
    let exactly = "k".repeat(64 * 1024);
    let r = tokenize(&s, &key, json!({"type": "text", "value": exactly}));
    assert_eq!(
        r.status,
        201,
        "64 KiB text: {}",
        &r.text[..r.text.len().min(300)]
    );
    bad("text", "", "invalid_value");
    let r = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": "k".repeat(64 * 1024 + 1)}),
    );
    assert_error(&r, 422, "invalid_value");

    // card_security_code: tokenized here, consumed in its own test.
    for v in [digits(3), digits(4)] {
        let r = tokenize(&s, &key, json!({"type": "card_security_code", "value": v}));
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(token_of(&r).starts_with("tok_"));
        assert_eq!(r.json["masked"], "*".repeat(v.len()), "{}", r.text);
    }
    for v in ["12", "12345", "12a", " 123", "１２３"] {
        bad("card_security_code", v, "invalid_value");
    }

    // Fields out of range.
    let r = tokenize(&s, &key, json!({"type": "cvv", "value": "123"}));
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": text(), "ttl_seconds": 0}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": text(), "subject": ""}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": text(), "subject": "bad\nsubject"}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": text(), "ttl_seconds": 60}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let created = unix_seconds(r.json["created_at"].as_str().unwrap());
    let expires = unix_seconds(
        r.json["expires_at"]
            .as_str()
            .unwrap_or_else(|| panic!("no expires_at: {}", r.text)),
    );
    assert_eq!(expires - created, 60, "{}", r.text);

    // Nothing submitted shows in the log.
    let out = s.output();
    for v in submitted.iter().filter(|v| v.len() >= 10) {
        assert!(
            !out.contains(v.as_str()),
            "the server log contains a submitted value"
        );
    }
}

#[test]
fn masked_forms_and_metadata() {
    let s = start("masked");
    let key = s.principal("masked-revealer", &["revealer"]);

    let r = tokenize(
        &s,
        &key,
        json!({"type": "card_number", "value": "4111 1111 1111 1111", "subject": "customer-42", "metadata": {"source": "checkout"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["masked"], "411111******1111");
    assert_eq!(r.json["subject"], "customer-42");
    assert_eq!(r.json["expires_at"], Value::Null);
    let t = token_of(&r);
    let g = s.get(&format!("/v1/tokens/{t}"), Some(&key));
    assert_eq!(g.status, 200, "{}", g.text);
    assert_eq!(g.json["token"], t.as_str());
    assert_eq!(g.json["type"], "card_number");
    assert_eq!(g.json["masked"], "411111******1111");
    assert_eq!(g.json["subject"], "customer-42");
    assert_eq!(g.json["created_at"], r.json["created_at"]);
    assert!(
        g.json.get("value").is_none(),
        "GET token has a value field: {}",
        g.text
    );
    assert!(!g.text.contains("4111111111111111"));

    let c = card();
    let r = tokenize(&s, &key, json!({"type": "card_number", "value": c}));
    assert_eq!(r.json["masked"], card_mask16(&c).as_str(), "{}", r.text);

    let r = tokenize(
        &s,
        &key,
        json!({"type": "cnic", "value": "35202-1234567-1"}),
    );
    assert_eq!(r.json["masked"], "*****-***4567-*", "{}", r.text);
    let (raw, norm) = cnic();
    let r = tokenize(&s, &key, json!({"type": "cnic", "value": raw}));
    assert_eq!(r.json["masked"], cnic_mask(&norm).as_str(), "{}", r.text);
    let g = s.get(&format!("/v1/tokens/{}", token_of(&r)), Some(&key));
    assert_eq!(g.json["masked"], cnic_mask(&norm).as_str(), "{}", g.text);
    assert!(!g.text.contains(&norm) && !g.text.contains(&raw));

    let (raw, norm) = pk_mobile();
    let r = tokenize(&s, &key, json!({"type": "pk_mobile", "value": raw}));
    assert_tail_mask(r.json["masked"].as_str().unwrap(), &norm);
    let i = iban_pk();
    let r = tokenize(&s, &key, json!({"type": "iban", "value": i}));
    assert_tail_mask(r.json["masked"].as_str().unwrap(), &i);
    let r = tokenize(&s, &key, json!({"type": "text", "value": "ab"}));
    assert_tail_mask(r.json["masked"].as_str().unwrap(), "ab");
    assert_ne!(r.json["masked"], "ab", "a two-character text fully shown");
}

#[test]
fn preserving_tokens_keep_the_shape() {
    let s = start("preserving");
    let key = s.principal("fp-revealer", &["revealer"]);

    let mut cards: Vec<String> = (0..5).map(|_| card()).collect();
    cards.extend(["378282246310005", "6205500000000000004", "30569309025904"].map(String::from));
    cards.push(card_with("5", 12));
    for c in &cards {
        let r = tokenize(
            &s,
            &key,
            json!({"type": "card_number", "value": c, "format": "preserving"}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        let t = token_of(&r);
        let n = c.len();
        assert_eq!(t.len(), n, "token {t} for {n}-digit card");
        assert!(t.bytes().all(|b| b.is_ascii_digit()), "{t}");
        assert_eq!(t[..6], c[..6], "BIN kept");
        assert_eq!(t[n - 4..], c[n - 4..], "last four kept");
        assert!(!luhn_valid(&t), "preserving card token {t} passes Luhn");
        assert_ne!(&t, c);
        assert_eq!(reveal(&s, &key, &t), *c);
        let g = s.get(&format!("/v1/tokens/{t}"), Some(&key));
        assert_eq!(g.status, 200, "{}", g.text);
        // A token is never accepted as a card number itself.
        assert_error(
            &tokenize(&s, &key, json!({"type": "card_number", "value": t})),
            422,
            "invalid_card_number",
        );
    }

    let (raw, norm) = cnic();
    let r = tokenize(
        &s,
        &key,
        json!({"type": "cnic", "value": raw, "format": "preserving"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let t = token_of(&r);
    assert_eq!(t.len(), 15, "{t}");
    for (i, b) in t.bytes().enumerate() {
        assert!(
            if i == 5 || i == 13 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            },
            "dashed layout: {t}"
        );
    }
    assert_ne!(t.replace('-', ""), norm);
    assert_eq!(reveal(&s, &key, &t), norm);
    let r = tokenize(
        &s,
        &key,
        json!({"type": "cnic", "value": norm, "format": "preserving"}),
    );
    let t = token_of(&r);
    assert!(
        t.len() == 13 && t.bytes().all(|b| b.is_ascii_digit()) && t != norm,
        "plain layout: {t}"
    );

    let (raw, norm) = pk_mobile();
    let r = tokenize(
        &s,
        &key,
        json!({"type": "pk_mobile", "value": raw, "format": "preserving"}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let t = token_of(&r);
    assert!(
        t.starts_with("+923") && t.len() == 13 && t[1..].bytes().all(|b| b.is_ascii_digit()),
        "{t}"
    );
    assert_ne!(t, norm);
    assert_eq!(reveal(&s, &key, &t), norm);
    let g = s.get(&format!("/v1/tokens/{}", enc(&t)), Some(&key));
    assert_eq!(g.status, 200, "GET of a + token: {}", g.text);
    assert_eq!(g.json["token"], t.as_str());

    for (ty, v) in [
        ("iban", iban_pk()),
        ("bank_account", bank_account()),
        ("text", text()),
        ("card_security_code", digits(3)),
    ] {
        let r = tokenize(
            &s,
            &key,
            json!({"type": ty, "value": v, "format": "preserving"}),
        );
        assert_error(&r, 422, "unsupported_format");
        assert_no_leak(&r, &v);
    }
}

#[test]
fn deterministic_tokens_and_search() {
    let s = start("determ");
    let key = s.principal("det-tokenizer", &["tokenizer"]);
    let c = card();

    let r1 = tokenize(
        &s,
        &key,
        json!({"type": "card_number", "value": c, "deterministic": true}),
    );
    assert_eq!(r1.status, 201, "{}", r1.text);
    let t = token_of(&r1);
    assert!(t.starts_with("tok_"));
    let r2 = tokenize(
        &s,
        &key,
        json!({"type": "card_number", "value": grouped(&c, ' '), "deterministic": true}),
    );
    assert_eq!(r2.status, 200, "repeat should answer 200: {}", r2.text);
    assert_eq!(token_of(&r2), t);

    let found = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "card_number", "value": grouped(&c, '-')}),
    );
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json["token"], t.as_str());
    assert_no_leak(&found, &c);

    // A random token of the same value is new each time and does not change the search.
    let a = new_token(&s, &key, "card_number", &c);
    let b = new_token(&s, &key, "card_number", &c);
    assert!(a != b && a != t && b != t);
    let again = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "card_number", "value": c}),
    );
    assert_eq!(again.json["token"], t.as_str(), "{}", again.text);

    // Unseen values, values only tokenized at random: 404.
    let r = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "card_number", "value": card()}),
    );
    assert_error(&r, 404, "not_found");
    let only_random = text();
    new_token(&s, &key, "text", &only_random);
    let r = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "text", "value": only_random}),
    );
    assert_error(&r, 404, "not_found");
    let r = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "card_number", "value": "4111111111111112"}),
    );
    assert_error(&r, 422, "invalid_card_number");

    // The same characters as other types get their own tokens.
    let as_text = tokenize(
        &s,
        &key,
        json!({"type": "text", "value": c, "deterministic": true}),
    );
    assert_eq!(as_text.status, 201, "{}", as_text.text);
    let as_acct = tokenize(
        &s,
        &key,
        json!({"type": "bank_account", "value": c, "deterministic": true}),
    );
    assert_eq!(as_acct.status, 201, "{}", as_acct.text);
    let set: HashSet<String> = [t.clone(), token_of(&as_text), token_of(&as_acct)].into();
    assert_eq!(set.len(), 3, "types collide");
    let r = s.post(
        "/v1/tokens/search",
        Some(&key),
        &json!({"type": "text", "value": c}),
    );
    assert_eq!(r.json["token"], token_of(&as_text).as_str(), "{}", r.text);

    // Deterministic cnic: both layouts are one value.
    let (raw, norm) = cnic();
    let r1 = tokenize(
        &s,
        &key,
        json!({"type": "cnic", "value": raw, "deterministic": true}),
    );
    let r2 = tokenize(
        &s,
        &key,
        json!({"type": "cnic", "value": norm, "deterministic": true}),
    );
    assert_eq!(
        (r1.status, r2.status),
        (201, 200),
        "{} / {}",
        r1.text,
        r2.text
    );
    assert_eq!(token_of(&r1), token_of(&r2));
}

#[test]
fn concurrent_deterministic_race_makes_one_token() {
    let s = start("race");
    let key = s.principal("race-tokenizer", &["tokenizer"]);
    let c = card();
    let barrier = std::sync::Barrier::new(16);
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = tokenize(
                        &s,
                        &key,
                        json!({"type": "card_number", "value": c, "deterministic": true}),
                    );
                    (r.status, r.text)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut tokens = HashSet::new();
    let mut created = 0;
    for (status, text) in &answers {
        assert!(*status == 200 || *status == 201, "{status}: {text}");
        created += usize::from(*status == 201);
        let v: Value = serde_json::from_str(text).unwrap();
        tokens.insert(v["token"].as_str().unwrap().to_owned());
    }
    assert_eq!(tokens.len(), 1, "a race made several tokens: {tokens:?}");
    assert_eq!(created, 1, "exactly one answer should be 201: {answers:?}");
}

#[test]
fn detokenize_full_masked_and_mixed() {
    let s = start("detok");
    let rev = s.principal("d-revealer", &["revealer"]);
    let sup = s.principal("d-support", &["support"]);
    let tkz = s.principal("d-tokenizer", &["tokenizer"]);
    let c = card();
    let (cn_raw, cn) = cnic();
    let tc = new_token(&s, &tkz, "card_number", &c);
    let tn = new_token(&s, &tkz, "cnic", &cn_raw);

    let full = detokenize(&s, &rev, &[&tc, &tn]);
    assert_eq!(full.status, 200, "{}", full.text);
    assert_eq!(
        full.json["items"][0],
        json!({"token": tc, "type": "card_number", "value": c})
    );
    assert_eq!(full.json["items"][1]["value"], cn.as_str());
    assert_eq!(full.json["items"][1]["type"], "cnic");

    let masked = detokenize(&s, &sup, &[&tc, &tn]);
    assert_eq!(masked.status, 200, "{}", masked.text);
    assert_eq!(
        masked.json["items"][0]["value"],
        card_mask16(&c).as_str(),
        "{}",
        masked.text
    );
    assert_eq!(
        masked.json["items"][1]["value"],
        cnic_mask(&cn).as_str(),
        "{}",
        masked.text
    );
    assert!(!masked.text.contains(&c) && !masked.text.contains(&cn));

    assert_error(&detokenize(&s, &tkz, &[&tc]), 403, "forbidden");

    // Unknown tokens answer per item, in order.
    let unknown = format!("tok_{}", hex(32));
    let asked = [
        unknown.as_str(),
        tc.as_str(),
        "not-a-token",
        tn.as_str(),
        unknown.as_str(),
    ];
    let r = detokenize(&s, &rev, &asked);
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.json["items"].as_array().unwrap();
    assert_eq!(items.len(), asked.len(), "{}", r.text);
    for (item, t) in items.iter().zip(asked) {
        assert_eq!(item["token"], t, "order: {}", r.text);
    }
    for i in [0, 2, 4] {
        assert_eq!(items[i]["error"]["code"], "not_found", "{}", r.text);
        assert!(
            matches!(items[i].get("value"), None | Some(Value::Null)),
            "{}",
            r.text
        );
    }
    assert_eq!(items[1]["value"], c.as_str());
    assert_eq!(items[3]["value"], cn.as_str());

    let empty = detokenize(&s, &rev, &[]);
    assert!(
        (empty.status == 200 && empty.json["items"] == json!([])) || empty.status == 422,
        "empty detokenize: {}",
        empty.text
    );
}

#[test]
fn delete_makes_a_token_unknown_everywhere() {
    let s = start("delete");
    let rev = s.principal("del-revealer", &["revealer"]);
    let officer = s.principal("del-officer", &["data_officer"]);
    let c = card();
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_number", "value": c, "deterministic": true}),
    );
    assert_eq!(r.status, 201);
    let t = token_of(&r);
    let other = new_token(&s, &rev, "text", &text());

    let d = s.call(
        "DELETE",
        &format!("/v1/tokens/{t}"),
        Some(&officer),
        None,
        &[],
    );
    assert_eq!(d.status, 204, "{}", d.text);
    assert!(d.text.is_empty(), "204 with a body: {}", d.text);
    assert!(d.request_id.is_some());

    assert_error(
        &s.get(&format!("/v1/tokens/{t}"), Some(&rev)),
        404,
        "not_found",
    );
    let r = detokenize(&s, &rev, &[&t]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["items"][0]["error"]["code"], "not_found",
        "{}",
        r.text
    );
    assert!(!r.text.contains(&c));
    let r = s.post(
        "/v1/tokens/search",
        Some(&rev),
        &json!({"type": "card_number", "value": c}),
    );
    assert_error(&r, 404, "not_found");
    assert_error(
        &s.call(
            "DELETE",
            &format!("/v1/tokens/{t}"),
            Some(&officer),
            None,
            &[],
        ),
        404,
        "not_found",
    );
    let unknown = format!("tok_{}", hex(32));
    assert_error(
        &s.call(
            "DELETE",
            &format!("/v1/tokens/{unknown}"),
            Some(&officer),
            None,
            &[],
        ),
        404,
        "not_found",
    );

    // Each deletion, done or not, has exactly one record: also on PostgreSQL, where a
    // deletion and its record share a commit.
    let page = s.get(
        "/v1/audit?operation=delete_token&limit=100",
        Some(&s.root_token),
    );
    assert_eq!(page.status, 200, "{}", page.text);
    let records: Vec<(&str, &str, &str)> = page.json["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let r = &e["record"];
            let field = |k: &str| r[k].as_str().unwrap_or("");
            (field("request_id"), field("outcome"), field("resource"))
        })
        .collect();
    assert_eq!(records.len(), 3, "{records:?}");
    assert_eq!(
        records[0],
        (d.request_id.as_deref().unwrap(), "success", t.as_str())
    );
    assert!(records[1..]
        .iter()
        .all(|r| r.1 == "failure" && r.2.is_empty()));

    // The other token is untouched, and the value can be tokenized afresh.
    assert_eq!(
        s.get(&format!("/v1/tokens/{other}"), Some(&rev)).status,
        200
    );
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_number", "value": c, "deterministic": true}),
    );
    assert_eq!(
        r.status, 201,
        "after delete a deterministic value is new again: {}",
        r.text
    );
    assert_ne!(token_of(&r), t);
}

#[test]
fn batch_keeps_order_and_reports_per_item() {
    let s = start("batch");
    let key = s.principal("batch-revealer", &["revealer"]);
    let c = card();
    let i = iban_pk();
    let d = card();
    let items = json!([
        {"type": "card_number", "value": c},
        {"type": "card_number", "value": "4111111111111112"},
        {"type": "iban", "value": i},
        {"type": "text", "value": "x", "colour": "blue"},
        {"type": "text"},
        {"type": "card_number", "value": d, "deterministic": true},
        {"type": "card_number", "value": d, "deterministic": true},
        {"type": "cvv", "value": "123"},
        42,
    ]);
    let r = s.post("/v1/tokens/batch", Some(&key), &json!({ "items": items }));
    assert_eq!(r.status, 200, "{}", r.text);
    let out = r.json["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {}", r.text));
    assert_eq!(out.len(), 9, "{}", r.text);
    let code = |n: usize| {
        out[n]["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("item {n} is not an error: {}", r.text))
    };
    assert_eq!(out[0]["type"], "card_number");
    assert_eq!(code(1), "invalid_card_number");
    assert_eq!(out[2]["type"], "iban");
    assert_eq!(code(3), "unknown_field");
    assert_eq!(code(4), "invalid_request");
    assert_eq!(code(7), "invalid_value");
    assert_eq!(code(8), "invalid_request");
    assert!(out[1]["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    assert!(!r.text.contains("4111111111111112"));
    assert_eq!(
        out[5]["token"], out[6]["token"],
        "one deterministic value, two tokens in a batch: {}",
        r.text
    );

    let tokens: Vec<String> = [0, 2, 5]
        .iter()
        .map(|&n| out[n]["token"].as_str().unwrap().to_owned())
        .collect();
    let refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    let det = detokenize(&s, &key, &refs);
    let values: Vec<&str> = det.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, [c.as_str(), i.as_str(), d.as_str()]);

    // Over the item limits.
    let many: Vec<Value> = (0..10_001)
        .map(|_| json!({"type": "text", "value": "x"}))
        .collect();
    let r = s.post("/v1/tokens/batch", Some(&key), &json!({ "items": many }));
    assert_error(&r, 413, "payload_too_large");
    let toks: Vec<String> = (0..10_001).map(|n| format!("tok_{n:032}")).collect();
    let r = s.post("/v1/detokenize", Some(&key), &json!({ "tokens": toks }));
    assert_error(&r, 413, "payload_too_large");

    // The envelope itself.
    assert_error(
        &s.post(
            "/v1/tokens/batch",
            Some(&key),
            &json!({"items": {"type": "text"}}),
        ),
        400,
        "invalid_request",
    );
    assert_error(
        &s.post("/v1/tokens/batch", Some(&key), &json!({"things": []})),
        400,
        "unknown_field",
    );
}

#[test]
fn idempotency_key_replays_the_first_answer() {
    let s = start("idem");
    let key = s.principal("idem-revealer", &["revealer"]);
    let other = s.principal("idem-other", &["tokenizer"]);
    let c = card();
    let body = json!({"type": "card_number", "value": c, "subject": "customer-7"});
    let ik = format!("order-{}", hex(12));
    let h = [("Idempotency-Key", ik.as_str())];

    let r1 = s.call("POST", "/v1/tokens", Some(&key), Some(&body), &h);
    assert_eq!(r1.status, 201, "{}", r1.text);
    let r2 = s.call("POST", "/v1/tokens", Some(&key), Some(&body), &h);
    assert_eq!(r2.status, r1.status, "{}", r2.text);
    assert_eq!(r2.json, r1.json, "a replay must answer the first response");
    assert_eq!(reveal(&s, &key, &token_of(&r1)), c);

    let changed = json!({"type": "card_number", "value": card(), "subject": "customer-7"});
    let r3 = s.call("POST", "/v1/tokens", Some(&key), Some(&changed), &h);
    assert_error(&r3, 409, "idempotency_conflict");
    assert_no_leak(&r3, changed["value"].as_str().unwrap());
    assert_no_leak(&r3, &c);

    // A new key, or another principal's same key, is a new request.
    let r4 = s.call(
        "POST",
        "/v1/tokens",
        Some(&key),
        Some(&body),
        &[("Idempotency-Key", &format!("{ik}-2"))],
    );
    assert_eq!(r4.status, 201, "{}", r4.text);
    assert_ne!(token_of(&r4), token_of(&r1));
    let r5 = s.call("POST", "/v1/tokens", Some(&other), Some(&body), &h);
    assert_eq!(r5.status, 201, "{}", r5.text);
    assert_ne!(token_of(&r5), token_of(&r1));

    // An error answer is replayed as well, not redone.
    let bad = json!({"type": "card_number", "value": "4111111111111112"});
    let hk = format!("bad-{}", hex(12));
    let e1 = s.call(
        "POST",
        "/v1/tokens",
        Some(&key),
        Some(&bad),
        &[("Idempotency-Key", &hk)],
    );
    let e2 = s.call(
        "POST",
        "/v1/tokens",
        Some(&key),
        Some(&bad),
        &[("Idempotency-Key", &hk)],
    );
    assert_eq!(
        (e1.status, e2.status),
        (422, 422),
        "{} / {}",
        e1.text,
        e2.text
    );
    assert_eq!(e1.json["error"]["code"], e2.json["error"]["code"]);

    // A replay's record names what the first one's did: the token, its type, the value's HMAC
    // (the work that notes them does not run again), and a replayed error's reason.
    let batch = json!({"items": [{"type": "card_number", "value": card()}, bad]});
    let bk = [("Idempotency-Key", "batch-replayed")];
    let b1 = s.call("POST", "/v1/tokens/batch", Some(&key), Some(&batch), &bk);
    let b2 = s.call("POST", "/v1/tokens/batch", Some(&key), Some(&batch), &bk);
    assert_eq!((b1.status, &b1.json), (200, &b2.json), "{}", b2.text);
    let mut s = s;
    s.kill();
    let recs = common::trail::records(&s.data_dir);
    for (first, replay) in [(&r1, &r2), (&e1, &e2), (&b1, &b2)] {
        let (first, replay) = (
            common::trail::only_record_of(&recs, first),
            common::trail::only_record_of(&recs, replay),
        );
        for field in [
            "operation",
            "resource",
            "data_type",
            "outcome",
            "reason",
            "value_hmacs",
        ] {
            assert_eq!(replay[field], first[field], "{field}: {first} / {replay}");
        }
    }
    let first = common::trail::only_record_of(&recs, &r1);
    assert_eq!(first["resource"], token_of(&r1).as_str());
    assert_eq!(first["value_hmacs"].as_array().map(Vec::len), Some(1));
    let failed = common::trail::only_record_of(&recs, &e2);
    assert_eq!(failed["reason"], "invalid_card_number");
}

#[test]
fn error_format_of_bad_requests() {
    let s = start("errors");
    let key = s.principal("err-revealer", &["revealer"]);
    let c = card();

    let r = s.call_raw(
        "POST",
        "/v1/tokens",
        Some(&key),
        &format!(r#"{{"type": "card_number", "value": "{c}""#),
    );
    assert_error(&r, 400, "malformed_json");
    assert_no_leak(&r, &c);
    let r = s.call_raw("POST", "/v1/tokens", Some(&key), "not json at all");
    assert_error(&r, 400, "malformed_json");
    let r = s.call_raw("POST", "/v1/detokenize", Some(&key), "");
    assert!(r.status == 400, "empty body: {}", r.text);
    assert!(
        matches!(
            r.json["error"]["code"].as_str(),
            Some("malformed_json" | "invalid_request")
        ),
        "{}",
        r.text
    );

    let r = tokenize(
        &s,
        &key,
        json!({"type": "card_number", "value": c, "vaule": c}),
    );
    assert_error(&r, 400, "unknown_field");
    assert_no_leak(&r, &c);
    let r = tokenize(&s, &key, json!({"type": "card_number"}));
    assert_error(&r, 400, "invalid_request");
    let r = tokenize(&s, &key, json!({"value": c}));
    assert_error(&r, 400, "invalid_request");
    assert_no_leak(&r, &c);
    // A value of the wrong JSON type must not be echoed by the parser's message.
    let r = s.call_raw(
        "POST",
        "/v1/tokens",
        Some(&key),
        &format!(r#"{{"type": "card_number", "value": {c}}}"#),
    );
    assert_error(&r, 400, "invalid_request");
    assert_no_leak(&r, &c);
    let r = s.call_raw(
        "POST",
        "/v1/tokens/search",
        Some(&key),
        &format!(r#"{{"type": "card_number", "value": [{c}]}}"#),
    );
    assert_error(&r, 400, "invalid_request");
    assert_no_leak(&r, &c);
    let r = s.post("/v1/detokenize", Some(&key), &json!({"tokens": "tok_x"}));
    assert_error(&r, 400, "invalid_request");
    let r = s.post(
        "/v1/detokenize",
        Some(&key),
        &json!({"tokens": [], "reveal": "full"}),
    );
    assert_error(&r, 400, "unknown_field");

    let r = s.get("/v1/no-such-route", Some(&key));
    assert_error(&r, 404, "not_found");
    let r = s.get("/v2/tokens", Some(&key));
    assert_error(&r, 404, "not_found");
    let r = s.get(&format!("/v1/tokens/tok_{}", hex(32)), Some(&key));
    assert_error(&r, 404, "not_found");

    let r = s.get("/v1/detokenize", Some(&key));
    assert_error(&r, 405, "method_not_allowed");
    let r = s.call(
        "PUT",
        "/v1/tokens",
        Some(&key),
        Some(&json!({"type": "text", "value": "x"})),
        &[],
    );
    assert_error(&r, 405, "method_not_allowed");
    let r = s.call(
        "POST",
        "/v1/no-such-route",
        Some(&key),
        Some(&json!({"type": "text", "value": "x"})),
        &[],
    );
    assert_error(&r, 404, "not_found");
    let r = s.call(
        "POST",
        "/v1/tokens/search/extra",
        None,
        Some(&json!({"type": "text", "value": "x"})),
        &[],
    );
    assert_error(&r, 404, "not_found");
    let r = s.call("DELETE", "/v1/health", Some(&key), None, &[]);
    assert_error(&r, 405, "method_not_allowed");

    for r in [
        s.call_raw("POST", "/v1/tokens", Some(&key), "{"),
        tokenize(&s, &key, json!({"type": "text"})),
        s.get("/v1/no-such-route", Some(&key)),
    ] {
        assert!(
            r.content_type
                .as_deref()
                .is_some_and(|ct| ct.starts_with("application/json")),
            "{:?}",
            r.content_type
        );
    }
}

#[test]
fn bodies_over_one_mib_are_refused() {
    let s = start("large");
    let key = s.principal("large-revealer", &["revealer"]);
    let big = "a".repeat(1024 * 1024 + 100);
    let r = s.call(
        "POST",
        "/v1/tokens",
        Some(&key),
        Some(&json!({"type": "text", "value": big})),
        &[],
    );
    assert_error(&r, 413, "payload_too_large");
    assert!(r.text.len() < 4096, "413 answer echoes the body");
    let items: Vec<Value> = (0..200)
        .map(|_| json!({"type": "text", "value": "b".repeat(6000)}))
        .collect();
    let r = s.call(
        "POST",
        "/v1/tokens/batch",
        Some(&key),
        Some(&json!({ "items": items })),
        &[],
    );
    assert_error(&r, 413, "payload_too_large");
    // The server is fine afterwards.
    assert_eq!(
        tokenize(&s, &key, json!({"type": "text", "value": text()})).status,
        201
    );
}

#[test]
fn every_response_has_a_request_id() {
    let s = start("reqid");
    let key = s.principal("rid-revealer", &["revealer"]);
    let t = new_token(&s, &key, "text", &text());
    let replies = vec![
        s.get("/v1/health", None),
        s.get("/v1/openapi.json", None),
        tokenize(&s, &key, json!({"type": "text", "value": text()})),
        s.get(&format!("/v1/tokens/{t}"), Some(&key)),
        detokenize(&s, &key, &[&t]),
        s.get("/v1/principals", Some(&s.root_token)),
        s.get("/v1/tokens/x", None),
        s.get("/v1/tokens/x", Some(&key)),
        s.get("/v1/nope", Some(&key)),
        s.get("/v1/detokenize", Some(&key)),
        s.call_raw("POST", "/v1/tokens", Some(&key), "{"),
        tokenize(&s, &key, json!({"type": "card_number", "value": "1234"})),
        s.post(
            "/v1/principals",
            Some(&key),
            &json!({"name": "n", "roles": ["admin"]}),
        ),
        s.call("DELETE", &format!("/v1/tokens/{t}"), Some(&key), None, &[]),
    ];
    let mut seen = HashSet::new();
    for r in &replies {
        let id = r
            .request_id
            .clone()
            .unwrap_or_else(|| panic!("no x-request-id on {} {}", r.status, r.text));
        assert!(!id.is_empty());
        assert!(seen.insert(id.clone()), "request id {id} repeated");
        if r.status >= 400 {
            assert_eq!(r.json["error"]["request_id"], id.as_str(), "{}", r.text);
        }
    }
}

#[test]
fn card_security_codes_live_once_and_in_memory_only() {
    let mut s = start("cvc");
    let rev = s.principal("cvc-revealer", &["revealer"]);
    let sup = s.principal("cvc-support", &["support"]);
    let officer = s.principal("cvc-officer", &["data_officer"]);

    let code = digits(4);
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": code}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let t = token_of(&r);
    assert!(t.starts_with("tok_"));
    assert_eq!(r.json["masked"], "****");
    let created = unix_seconds(r.json["created_at"].as_str().unwrap());
    let expires = unix_seconds(
        r.json["expires_at"]
            .as_str()
            .unwrap_or_else(|| panic!("a CVC must expire: {}", r.text)),
    );
    assert_eq!(expires - created, 3600, "default CVC ttl: {}", r.text);

    // Metadata does not consume it.
    for _ in 0..2 {
        let g = s.get(&format!("/v1/tokens/{t}"), Some(&rev));
        assert_eq!(g.status, 200, "{}", g.text);
        assert_eq!(g.json["type"], "card_security_code");
        assert_eq!(g.json["masked"], "****");
        assert!(g.json.get("value").is_none(), "{}", g.text);
    }
    assert_eq!(reveal(&s, &rev, &t), code);
    let again = detokenize(&s, &rev, &[&t]);
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.json["items"][0]["error"]["code"], "not_found",
        "a CVC revealed twice: {}",
        again.text
    );
    assert_error(
        &s.get(&format!("/v1/tokens/{t}"), Some(&rev)),
        404,
        "not_found",
    );

    // A masked reveal consumes it too.
    let t2 = new_token(&s, &rev, "card_security_code", &digits(3));
    let m = detokenize(&s, &sup, &[&t2]);
    assert_eq!(m.json["items"][0]["value"], "***", "{}", m.text);
    let r = detokenize(&s, &rev, &[&t2]);
    assert_eq!(
        r.json["items"][0]["error"]["code"], "not_found",
        "{}",
        r.text
    );

    // Limits.
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": "123", "ttl_seconds": 60}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let d = unix_seconds(r.json["expires_at"].as_str().unwrap())
        - unix_seconds(r.json["created_at"].as_str().unwrap());
    assert_eq!(d, 60);
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": "123", "ttl_seconds": 3600}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": "123", "ttl_seconds": 3601}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": "123", "deterministic": true}),
    );
    assert_error(&r, 422, "invalid_value");
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_security_code", "value": "123", "format": "preserving"}),
    );
    assert_error(&r, 422, "unsupported_format");

    // Delete works on a live one.
    let t3 = new_token(&s, &rev, "card_security_code", &digits(3));
    let d = s.call(
        "DELETE",
        &format!("/v1/tokens/{t3}"),
        Some(&officer),
        None,
        &[],
    );
    assert_eq!(d.status, 204, "{}", d.text);
    assert_eq!(
        detokenize(&s, &rev, &[&t3]).json["items"][0]["error"]["code"],
        "not_found"
    );

    // Gone after a restart, while stored tokens survive.
    let t4 = new_token(&s, &rev, "card_security_code", &digits(3));
    let c = card();
    let stored = new_token(&s, &rev, "card_number", &c);
    s.restart();
    assert_error(
        &s.get(&format!("/v1/tokens/{t4}"), Some(&rev)),
        404,
        "not_found",
    );
    let r = detokenize(&s, &rev, &[&t4, &stored]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json["items"][0]["error"]["code"], "not_found",
        "a CVC survived a restart: {}",
        r.text
    );
    assert_eq!(r.json["items"][1]["value"], c.as_str());
}

#[test]
fn seal_stops_data_operations() {
    let s = start("seal");
    let rev = s.principal("seal-revealer", &["revealer"]);
    let c = card();
    let r = tokenize(
        &s,
        &rev,
        json!({"type": "card_number", "value": c, "deterministic": true}),
    );
    let t = token_of(&r);

    let r = s.call("POST", "/v1/sys/seal", Some(&s.root_token), None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["sealed"], true, "{}", r.text);

    let checks = [
        tokenize(&s, &rev, json!({"type": "card_number", "value": card()})),
        s.post(
            "/v1/tokens/batch",
            Some(&rev),
            &json!({"items": [{"type": "text", "value": text()}]}),
        ),
        detokenize(&s, &rev, &[&t]),
        s.post(
            "/v1/tokens/search",
            Some(&rev),
            &json!({"type": "card_number", "value": c}),
        ),
        s.get(&format!("/v1/tokens/{t}"), Some(&rev)),
    ];
    for r in &checks {
        assert_error(r, 503, "sealed");
        assert_no_leak(r, &c);
    }
    let h = s.get("/v1/health", None);
    assert_eq!(h.status, 503, "{}", h.text);
    assert_eq!(h.json["sealed"], true, "{}", h.text);
    assert!(h.request_id.is_some());
}

/// Reads one HTTP/1.1 response (head, lower-cased, and its Content-Length body). `Err` with
/// `WouldBlock`/`TimedOut` if nothing came within the read timeout; `Ok(None)` if the connection
/// ended first.
fn read_response(c: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match c.read(&mut byte) {
            Ok(0) => return Ok(None),
            Ok(_) => head.push(byte[0]),
            Err(e) if head.is_empty() => return Err(e),
            Err(_) => return Ok(None),
        }
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    let mut body = vec![0; len];
    if c.read_exact(&mut body).is_err() {
        return Ok(None);
    }
    Ok(Some((head, body)))
}

/// A request refused before its body was read must not leave a keep-alive connection that the
/// server then drops silently: a client that reuses it (ureq, the harness, SDKs with pools)
/// fails its next, non-retryable request. Either the server reads (drains) the body and keeps
/// the connection, or it says `Connection: close`.
#[test]
fn connection_stays_usable_after_early_refusals() {
    let s = start("keepalive");
    let tkz = s.principal("ka-tokenizer", &["tokenizer"]);
    let addr = s.url.trim_start_matches("http://").to_owned();
    let body = r#"{"type":"text","value":"hello there"}"#;
    let cases: [(&str, &str, &str, Option<&str>); 4] = [
        ("401 without a credential", "POST", "/v1/tokens", None),
        ("405 wrong method", "PUT", "/v1/tokens", Some(&tkz)),
        ("404 unknown route", "POST", "/v1/no-such-route", Some(&tkz)),
        (
            "403 seal by a tokenizer",
            "POST",
            "/v1/sys/seal",
            Some(&tkz),
        ),
    ];
    let broken: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(what, method, path, token)| {
                let addr = addr.clone();
                scope.spawn(move || -> Option<String> {
                    let mut c = TcpStream::connect(&addr).unwrap();
                    // Long enough for any server to answer a refusal; a server that waits for
                    // the body instead gets it when this runs out.
                    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
                    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
                    let head = format!(
                        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{auth}\r\n",
                        body.len()
                    );
                    c.write_all(head.as_bytes()).unwrap();
                    let (first, body_sent) = match read_response(&mut c) {
                        Ok(r) => (r, false),
                        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                            c.write_all(body.as_bytes()).unwrap();
                            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                            (read_response(&mut c).unwrap(), true)
                        }
                        Err(e) => panic!("{what}: {e}"),
                    };
                    let (first, _) = first.unwrap_or_else(|| panic!("{what}: no answer"));
                    assert!(first.starts_with(&format!("http/1.1 {}", &what[..3])), "{what}: {first}");
                    if first.contains("\r\nconnection: close") {
                        return None;
                    }
                    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    let mut rest = if body_sent { String::new() } else { body.to_owned() };
                    rest.push_str(&format!("GET /v1/health HTTP/1.1\r\nHost: {addr}\r\n\r\n"));
                    let ok = c.write_all(rest.as_bytes()).is_ok()
                        && matches!(read_response(&mut c), Ok(Some((h, _))) if h.starts_with("http/1.1 200"));
                    (!ok).then(|| what.to_owned())
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        broken.is_empty(),
        "after answering without reading the request body, the server dropped the keep-alive \
         connection without `Connection: close`: {broken:?}"
    );
}

/// `--body-limit` above axum's own 2 MiB default is honoured: one limiter, ours.
#[test]
fn a_configured_body_limit_above_two_mib_is_honoured() {
    let dir = temp_dir(&tmp_base(), "large-limit");
    let s = Server::start_with(&bin(), &dir, &root_token(), &["--body-limit", "4194304"]);
    let key = s.principal("large-limit", &["tokenizer"]);
    let items: Vec<Value> = (0..500)
        .map(|_| json!({"type": "text", "value": "c".repeat(6000)}))
        .collect();
    let r = s.post("/v1/tokens/batch", Some(&key), &json!({ "items": items }));
    assert_eq!(
        r.status, 200,
        "a 3 MB batch under a 4 MiB limit: {}",
        r.text
    );
    assert_eq!(r.json["items"].as_array().unwrap().len(), 500);
}
