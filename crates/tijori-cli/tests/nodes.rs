//! Several nodes, one vault, black-box: two `tijori server` processes on one PostgreSQL
//! database (a schema of this test's own) act as one vault. A token made on one reveals on the
//! other; a deterministic race across both yields one token; an idempotency key holds across
//! nodes; a principal disabled, a role changed or a key rotated on one node is in effect on the
//! other within seconds; and the records of both form one verifiable audit trail. Skipped,
//! with a note, when `DATABASE_URL` is not set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use common::pg::*;
use common::*;
use serde_json::{json, Value};

#[test]
fn two_nodes_act_as_one_vault() {
    let Some((url, _schema)) = schema_url("two_nodes") else {
        return;
    };
    let (a, b) = two_nodes("nodes-one-vault", &url);
    let app = a.principal("node-app", &["revealer"]);
    eventually("a principal made on A works on B", || {
        b.get("/v1/auth/session", Some(&app)).status == 200
    });

    // Made on one, revealed on the other.
    let card = card();
    let t = token_of(&tokenize(
        &a,
        &app,
        json!({"type": "card_number", "value": card}),
    ));
    let r = b.post("/v1/detokenize", Some(&app), &json!({"tokens": [t]}));
    assert_eq!(r.json["items"][0]["value"], card.as_str(), "{}", r.text);

    // A deterministic race across both nodes: one token.
    let value = card_with("5500", 16);
    let tokens: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let (node, app, value) = (if i % 2 == 0 { &a } else { &b }, &app, &value);
                scope.spawn(move || {
                    let r = tokenize(
                        node,
                        app,
                        json!({"type": "card_number", "value": value, "deterministic": true}),
                    );
                    assert!(matches!(r.status, 200 | 201), "{}", r.text);
                    token_of(&r)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(tokens.windows(2).all(|w| w[0] == w[1]), "{tokens:?}");

    // An idempotency key answered on A is answered the same on B.
    let body = json!({"type": "iban", "value": "PK36SCBL0000001123456702"});
    let headers = [("Idempotency-Key", "node-key-1")];
    let first = a.call("POST", "/v1/tokens", Some(&app), Some(&body), &headers);
    let again = b.call("POST", "/v1/tokens", Some(&app), Some(&body), &headers);
    assert_eq!(first.status, 201);
    assert_eq!(
        (again.status, &again.json["token"]),
        (201, &first.json["token"])
    );

    // A custom role defined on B applies to a principal on A.
    let clerk = b.principal("node-clerk", &["support"]);
    let r = b.call(
        "PUT",
        "/v1/roles/iban-only",
        Some(&b.root_token),
        Some(&json!({
        "rules": [{"types": ["iban"], "operations": ["detokenize"], "reveal": "masked"}]})),
        &[],
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let scoped = b.principal("node-scoped", &["iban-only"]);
    eventually("the new role and principal reach A", || {
        let r = a.post(
            "/v1/detokenize",
            Some(&scoped),
            &json!({"tokens": [first.json["token"]]}),
        );
        r.status == 200 && r.json["items"][0]["value"].is_string()
    });

    // Disabled on A: refused on B.
    let list = a.get("/v1/principals", Some(&a.root_token));
    let clerk_id = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "node-clerk")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(b.get("/v1/auth/session", Some(&clerk)).status, 200);
    a.post(
        &format!("/v1/principals/{clerk_id}/disable"),
        Some(&a.root_token),
        &json!({}),
    );
    eventually("a principal disabled on A is refused on B", || {
        b.get("/v1/auth/session", Some(&clerk)).status == 401
    });

    // A data key rotated on A: B writes under the new key.
    let r = a.post(
        "/v1/sys/keys/rotate",
        Some(&a.root_token),
        &json!({"key": "data"}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let version = r.json["version"].as_i64().unwrap();
    eventually("B writes under the rotated key", || {
        tokenize(&b, &app, json!({"type": "text", "value": "after rotation"}));
        let keys = b.get("/v1/sys/keys", Some(&b.root_token));
        keys.json["data"]["versions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["version"].as_i64() == Some(version) && v["records"].as_i64() > Some(0))
    });

    // One audit trail from both nodes: exported over the API, it verifies with the public key.
    let export = a.get("/v1/audit/export?limit=100000", Some(&a.root_token));
    assert_eq!(export.status, 200);
    common::trail::verify_export(&a, &a.root_token, &export.text, "nodes-trail.jsonl");
    let sources: std::collections::BTreeSet<String> = export
        .text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| {
            l["record"]
                .as_str()
                .and_then(|r| serde_json::from_str::<Value>(r).ok())
        })
        .filter_map(|r| {
            r["source"].as_str().map(|s| {
                s.rsplit_once(':')
                    .map(|(h, _)| h.to_owned())
                    .unwrap_or_default()
            })
        })
        .collect();
    assert!(!sources.is_empty());
    assert!(export.text.lines().count() > 20, "records of both nodes");
}
