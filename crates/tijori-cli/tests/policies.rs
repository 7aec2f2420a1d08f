//! Custom roles and dual control, black-box. A custom role limited to one data type and one
//! tenant's subjects reveals exactly that; role changes are versioned and audited; under dual
//! control a policy change, a key rotation and a bulk reveal each wait for a second operator,
//! who cannot be the requester, a service or the root token, and an approval covers one
//! request, once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use common::operators::*;
use common::trail::events;
use common::*;
use serde_json::{json, Value};

fn put_role(s: &Server, token: &str, name: &str, body: &Value, approval: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = approval
        .map(|a| ("x-tijori-approval", a))
        .into_iter()
        .collect();
    s.call(
        "PUT",
        &format!("/v1/roles/{name}"),
        Some(token),
        Some(body),
        &headers,
    )
}

fn reveal(s: &Server, key: &str, tokens: &[&str]) -> Reply {
    s.post("/v1/detokenize", Some(key), &json!({"tokens": tokens}))
}

#[test]
fn a_custom_role_reveals_only_its_type_and_tenant() {
    let s = start("policies-custom");
    let root = s.root_token.clone();
    let role = json!({"rules": [{"types": ["card_number"], "operations": ["detokenize", "search"],
        "reveal": "masked", "subject_prefix": "m7:"}]});
    let r = put_role(&s, &root, "m7-support", &role, None);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["version"], 1);
    let clerk = s.principal("m7-clerk", &["m7-support"]);

    let app = s.principal("policy-app", &["revealer"]);
    let (c1, c2) = (card(), card());
    let mine = token_of(&tokenize(
        &s,
        &app,
        json!({"type": "card_number", "value": c1, "subject": "m7:cust-1"}),
    ));
    let other = token_of(&tokenize(
        &s,
        &app,
        json!({"type": "card_number", "value": c2, "subject": "m8:cust-2"}),
    ));
    let iban = token_of(&tokenize(
        &s,
        &app,
        json!({"type": "iban", "value": "PK36SCBL0000001123456702", "subject": "m7:cust-1"}),
    ));
    let r = reveal(&s, &clerk, &[&mine, &other, &iban]);
    assert_eq!(r.status, 200, "{}", r.text);
    let items = r.json["items"].as_array().unwrap();
    let shown = items[0]["value"].as_str().unwrap();
    assert!(
        shown.contains('*') && shown.ends_with(&c1[c1.len() - 4..]),
        "masked: {shown}"
    );
    // Outside the rules a token is as unknown as a missing one.
    assert_eq!(items[1]["error"]["code"], "not_found", "another tenant");
    assert_eq!(items[2]["error"]["code"], "not_found", "another type");
    // No tokenize rule: refused outright. Another tenant's token is unknown to its metadata read.
    assert_eq!(
        tokenize(&s, &clerk, json!({"type": "card_number", "value": card()})).status,
        403
    );
    assert_eq!(
        s.get(&format!("/v1/tokens/{other}"), Some(&clerk)).status,
        404
    );
    assert_eq!(
        s.get(&format!("/v1/tokens/{mine}"), Some(&clerk)).status,
        200
    );

    // Versioned: a change is version 2; a stale edit conflicts; history keeps both.
    let wider = json!({"rules": [{"types": ["*"], "operations": ["detokenize"], "reveal": "masked",
        "subject_prefix": "m7:"}], "expected_version": 1});
    assert_eq!(
        put_role(&s, &root, "m7-support", &wider, None).json["version"],
        2
    );
    assert_eq!(
        put_role(&s, &root, "m7-support", &wider, None).status,
        409,
        "stale expected_version"
    );
    let r = reveal(&s, &clerk, &[&iban]);
    assert!(
        r.json["items"][0]["value"].is_string(),
        "the change applies at once: {}",
        r.text
    );
    let history = s.get("/v1/roles/m7-support", Some(&root));
    assert_eq!(
        history.json["versions"].as_array().unwrap().len(),
        2,
        "{}",
        history.text
    );
    let all = s.get("/v1/roles", Some(&root));
    assert_eq!(
        all.json["items"].as_array().unwrap().len(),
        7,
        "6 built-in + 1"
    );
    assert_eq!(all.json["items"][2]["name"], "revealer");
    assert_eq!(all.json["items"][2]["rules"][0]["reveal"], "full");

    // Bad definitions, built-in names, non-admins.
    for bad in [
        json!({"rules": []}),
        json!({"rules": [{"types": ["*"], "operations": ["detokenize"]}]}),
        json!({"rules": [{"types": ["passport"], "operations": ["search"]}]}),
        json!({"rules": [{"types": ["*"], "operations": ["fly"]}]}),
    ] {
        let r = put_role(&s, &root, "bad-role", &bad, None);
        assert!(matches!(r.status, 400 | 422), "{bad}: {}", r.text);
    }
    assert_eq!(put_role(&s, &root, "revealer", &role, None).status, 422);
    assert_eq!(put_role(&s, &app, "x-role", &role, None).status, 403);
    assert_eq!(
        s.post(
            "/v1/principals",
            Some(&root),
            &json!({"name": "x", "roles": ["no-such-role"]})
        )
        .status,
        422
    );

    // Deleted: the principal keeps the name but gets nothing from it.
    let r = s.call("DELETE", "/v1/roles/m7-support", Some(&root), None, &[]);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(reveal(&s, &clerk, &[&mine]).status, 403);
    let changes: Vec<Value> = events(&s.data_dir)
        .into_iter()
        .filter(|r| matches!(r["operation"].as_str(), Some("put_role" | "delete_role")))
        .collect();
    assert_eq!(changes.len(), 10, "every change and attempt is audited");
    let denied = changes.iter().filter(|r| r["outcome"] == "denied").count();
    assert_eq!(denied, 1, "the service's attempt");
}

#[test]
fn dual_control_needs_a_second_operator() {
    let dir = temp_dir(&tmp_base(), "policies-dual");
    let s = Server::start_with(
        &bin(),
        &dir,
        &root_token(),
        &[
            "--dual-control",
            "policy_change,key_rotation,bulk_reveal,audit_export",
            "--bulk-reveal-threshold",
            "2",
        ],
    );
    let (_, ayesha) = operator(&s, "ayesha", &["admin"]);
    let (_, bilal) = operator(&s, "bilal", &["admin"]);
    let (_, chand) = operator(&s, "chand", &["auditor"]);
    let role = json!({"rules": [{"types": ["*"], "operations": ["search"]}]});

    // Asking makes a pending request, not a change.
    let r = put_role(&s, &ayesha, "finder", &role, None);
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(r.json["status"], "pending");
    let id = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(s.get("/v1/roles/finder", Some(&s.root_token)).status, 404);
    let approve = |token: &str, id: &str| {
        s.post(
            &format!("/v1/approvals/{id}/approve"),
            Some(token),
            &json!({}),
        )
    };

    // Not by the requester, a service, the root token, or someone without the right.
    assert_eq!(approve(&ayesha, &id).status, 403, "self-approval");
    assert_eq!(
        approve(&s.root_token, &id).status,
        403,
        "root is not a person"
    );
    let svc = s.principal("dual-svc", &["admin"]);
    assert_eq!(approve(&svc, &id).status, 403, "a service");
    assert_eq!(
        approve(&chand, &id).status,
        403,
        "an auditor may not manage"
    );
    // Using it before approval fails.
    assert_eq!(
        put_role(&s, &ayesha, "finder", &role, Some(&id)).status,
        403
    );
    let r = approve(&bilal, &id);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(approve(&bilal, &id).status, 409, "decided once");

    // The approval covers this request only: not another body, not another requester.
    let other = json!({"rules": [{"types": ["*"], "operations": ["search", "delete"]}]});
    assert_eq!(
        put_role(&s, &ayesha, "finder", &other, Some(&id)).status,
        403
    );
    assert_eq!(put_role(&s, &bilal, "finder", &role, Some(&id)).status, 403);
    let r = put_role(&s, &ayesha, "finder", &role, Some(&id));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        put_role(&s, &ayesha, "finder", &role, Some(&id)).status,
        403,
        "used once"
    );

    // Key rotation and a bulk reveal wait the same way; a denial ends a request.
    let rotate = |token: &str, approval: Option<&str>| {
        let headers: Vec<(&str, &str)> = approval
            .map(|a| ("x-tijori-approval", a))
            .into_iter()
            .collect();
        s.call(
            "POST",
            "/v1/sys/keys/rotate",
            Some(token),
            Some(&json!({"key": "data"})),
            &headers,
        )
    };
    let r = rotate(&bilal, None);
    assert_eq!(r.status, 202, "{}", r.text);
    let rid = r.json["id"].as_str().unwrap().to_owned();
    let denied = s.post(
        &format!("/v1/approvals/{rid}/deny"),
        Some(&ayesha),
        &json!({}),
    );
    assert_eq!(denied.json["status"], "denied");
    assert_eq!(rotate(&bilal, Some(&rid)).status, 403);
    let rid = rotate(&bilal, None).json["id"].as_str().unwrap().to_owned();
    approve(&ayesha, &rid);
    assert_eq!(rotate(&bilal, Some(&rid)).status, 200);

    let app = s.principal("dual-app", &["revealer"]);
    let t: Vec<String> = (0..3)
        .map(|_| {
            token_of(&tokenize(
                &s,
                &app,
                json!({"type": "card_number", "value": card()}),
            ))
        })
        .collect();
    assert_eq!(
        reveal(&s, &app, &[&t[0], &t[1]]).status,
        200,
        "at the threshold"
    );
    let r = reveal(&s, &app, &[&t[0], &t[1], &t[2]]);
    assert_eq!(r.status, 202, "{}", r.text);
    assert!(
        !r.text.contains(&t[0]),
        "the summary names a count, not the tokens"
    );
    let bid = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(
        approve(&ayesha, &bid).status,
        403,
        "an admin may not reveal, so may not approve a reveal"
    );
    let (_, dua) = operator(&s, "dua", &["revealer"]);
    assert_eq!(approve(&dua, &bid).status, 200);
    let headers = [("x-tijori-approval", bid.as_str())];
    let r = s.call(
        "POST",
        "/v1/detokenize",
        Some(&app),
        Some(&json!({"tokens": [&t[0], &t[1], &t[2]]})),
        &headers,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["items"].as_array().unwrap().len(), 3);

    // An export of the trail over the API: one approval serves every page until it expires,
    // for its requester only; the pages verify with the public key alone.
    let r = s.get("/v1/audit/export?limit=5", Some(&chand));
    assert_eq!(r.status, 202, "{}", r.text);
    let eid = r.json["id"].as_str().unwrap().to_owned();
    assert_eq!(approve(&ayesha, &eid).status, 200);
    let page = |after: u64, token: &str| {
        let headers = [("x-tijori-approval", eid.as_str())];
        s.call(
            "GET",
            &format!("/v1/audit/export?after={after}&limit=5"),
            Some(token),
            None,
            &headers,
        )
    };
    let (first, second) = (page(0, &chand), page(5, &chand));
    assert_eq!((first.status, second.status), (200, 200), "{}", second.text);
    assert_eq!(first.content_type.as_deref(), Some("application/x-ndjson"));
    assert_eq!(page(0, &bilal).status, 403, "not the requester");
    let text = format!("{}{}", first.text, second.text);
    let out = common::trail::verify_export(&s, &chand, &text, "export.jsonl");
    assert!(out.contains("10 records"), "{out}");

    let list = s.get("/v1/approvals", Some(&chand));
    assert_eq!(list.status, 200, "{}", list.text);
    let statuses: Vec<&str> = list.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == "used").count(),
        3,
        "{statuses:?}"
    );
    assert!(statuses.contains(&"denied"));
    let trail = events(&s.data_dir);
    let approvals = trail
        .iter()
        .filter(|r| r["operation"] == "approve" && r["outcome"] == "success")
        .count();
    assert_eq!(approvals, 4);
    // Each guarded request is on the trail twice, both naming the approval: held (`pending`),
    // then done under it; a held request is no success, and names what it would change.
    for (approval, operation) in [
        (&id, "put_role"),
        (&rid, "rotate_key"),
        (&bid, "detokenize"),
    ] {
        let mine: Vec<_> = trail
            .iter()
            .filter(|r| r["approval"] == approval.as_str())
            .collect();
        let seen: Vec<_> = mine
            .iter()
            .map(|r| (r["operation"].as_str(), r["outcome"].as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Some(operation), Some("pending")),
                (Some(operation), Some("success"))
            ],
            "{mine:?}"
        );
    }
    // The export's pages name where each began and how many records it handed out.
    let pages: Vec<_> = (trail.iter())
        .filter(|r| r["operation"] == "export_audit" && r["outcome"] == "success")
        .map(|r| (r["resource"].as_str(), r["count"].as_u64()))
        .collect();
    assert_eq!(
        pages,
        [
            (Some("seq after 0"), Some(5)),
            (Some("seq after 5"), Some(5))
        ]
    );
    let held = trail.iter().find(|r| r["approval"] == id.as_str()).unwrap();
    assert_eq!(held["resource"], "role:finder", "{held}");
    let r = s.get("/v1/audit?outcome=pending", Some(&chand));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["records"].as_array().unwrap().len(), 5, "{}", r.text);
}
