//! Service principals, black-box (issue 4, point 3): API key rotation with a grace period for
//! the old key, expiry, binding to source networks and to a client certificate over mutual TLS.
//! Every refusal of a key is the same `401 unauthenticated` a wrong key gets (the log, not the
//! client, says which rule refused, and never with the key); only administrators manage any of
//! it; each change is in the audit trail; no key ever reaches the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::trail::records;
use common::*;
use rcgen::KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

/// Creates a principal as root with `extra` fields; answers (id, api key).
fn create(s: &Server, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({"name": name, "roles": ["tokenizer"]});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = s.post("/v1/principals", Some(&s.root_token), &body);
    assert_eq!(r.status, 201, "create {name}: {}", r.text);
    let key = r.json["api_key"].as_str().unwrap().to_owned();
    (r.json["id"].as_str().unwrap().to_owned(), key)
}

fn rotate(s: &Server, id: &str, body: Option<Value>) -> Reply {
    let url = format!("/v1/principals/{id}/rotate");
    s.call("POST", &url, Some(&s.root_token), body.as_ref(), &[])
}

fn restrict(s: &Server, key: &str, id: &str, body: Value) -> Reply {
    s.post(&format!("/v1/principals/{id}/restrict"), Some(key), &body)
}

/// The status a tokenize request with `key` gets: 201 if the key works, 401 if not.
fn status(s: &Server, key: &str) -> u16 {
    let r = tokenize(s, key, json!({"type": "text", "value": text()}));
    assert!(matches!(r.status, 201 | 401), "{}", r.text);
    r.status
}

/// An RFC 3339 time `secs` seconds from now.
fn in_secs(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .format(&Rfc3339)
        .unwrap()
}

/// Waits (boundedly) until `key` is refused; answers whether it was.
fn refused_soon(s: &Server, key: &str) -> bool {
    wait_for(Duration::from_secs(20), || {
        let refused = status(s, key) == 401;
        if !refused {
            std::thread::sleep(Duration::from_millis(200));
        }
        refused
    })
}

fn assert_no_key_in_log(s: &Server, keys: &[&str]) {
    let log = s.output();
    for k in keys {
        assert!(!log.contains(k), "an API key is in the log");
    }
}

#[test]
fn rotation_keeps_the_old_key_for_its_grace_period() {
    let mut s = start("prn-rotate");
    let (id, k1) = create(&s, "rotating", json!({}));
    assert_eq!(status(&s, &k1), 201);

    let r = rotate(&s, &id, Some(json!({"grace_seconds": 3600})));
    assert_eq!(r.status, 200, "{}", r.text);
    let k2 = r.json["api_key"].as_str().unwrap().to_owned();
    assert!(k2.starts_with("tjk_") && k2 != k1);
    assert_eq!(r.json["id"], id.as_str());
    let until = r.json["previous_key_expires_at"].as_str().unwrap();
    let left = unix_seconds(until) - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((3500..=3600).contains(&left), "{}", r.text);
    assert_eq!(
        (status(&s, &k1), status(&s, &k2)),
        (201, 201),
        "both keys work"
    );
    let listed = s.get("/v1/principals", Some(&s.root_token));
    let me = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(me["previous_key_expires_at"], until);
    assert!(me.get("api_key").is_none(), "a list never shows a key");

    // No body: the default grace (a day). Only one previous key: the first one dies now.
    let r = rotate(&s, &id, None);
    assert_eq!(r.status, 200, "{}", r.text);
    let k3 = r.json["api_key"].as_str().unwrap().to_owned();
    let until = unix_seconds(r.json["previous_key_expires_at"].as_str().unwrap());
    let left = until - time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((86_300..=86_400).contains(&left), "{}", r.text);
    assert_eq!(status(&s, &k1), 401, "a key replaced twice is gone");
    assert_eq!((status(&s, &k2), status(&s, &k3)), (201, 201));

    // Grace 0: the old key (and the one before it) stop at once.
    let r = rotate(&s, &id, Some(json!({"grace_seconds": 0})));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        r.json.get("previous_key_expires_at").is_none(),
        "{}",
        r.text
    );
    let k4 = r.json["api_key"].as_str().unwrap().to_owned();
    assert_eq!((status(&s, &k2), status(&s, &k3)), (401, 401));
    assert_eq!(status(&s, &k4), 201);

    // A short grace: the old key works until it ends, then is refused. (Five seconds, so that
    // only a stall of four could fail the first check; the end is awaited, not timed.)
    let r = rotate(&s, &id, Some(json!({"grace_seconds": 5})));
    let k5 = r.json["api_key"].as_str().unwrap().to_owned();
    assert_eq!(status(&s, &k4), 201, "the old key works during its grace");
    assert_eq!(status(&s, &k5), 201);
    assert!(refused_soon(&s, &k4), "the old key outlived its grace");
    assert_eq!(status(&s, &k5), 201, "the new key stays");

    // A restart keeps exactly the newest key.
    s.restart();
    assert_eq!((status(&s, &k4), status(&s, &k5)), (401, 201));

    assert_no_key_in_log(&s, &[&k1, &k2, &k3, &k4, &k5]);
    let rotations: Vec<Value> = records(&s.data_dir)
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v["operation"] == "rotate_principal_key")
        .collect();
    assert_eq!(rotations.len(), 4, "{rotations:?}");
    for r in &rotations {
        assert_eq!(r["outcome"], "success");
        assert_eq!(r["resource"], id.as_str());
        assert_eq!(r["principal_id"], "root");
        let text = r.to_string();
        for k in [&k1, &k2, &k3, &k4, &k5] {
            assert!(!text.contains(k.as_str()), "a key in the audit trail");
        }
    }
}

#[test]
fn an_expired_principal_is_refused() {
    let s = start("prn-expiry");
    let (id, key) = create(&s, "short-lived", json!({"expires_at": in_secs(5)}));
    let listed = s.get("/v1/principals", Some(&s.root_token));
    let me = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert!(me["expires_at"].is_string(), "{me}");
    assert_eq!(status(&s, &key), 201);
    assert!(refused_soon(&s, &key), "the key outlived its principal");
    // A rotation does not bring an expired principal back; lifting the expiry does.
    let r = rotate(&s, &id, Some(json!({"grace_seconds": 0})));
    let fresh = r.json["api_key"].as_str().unwrap().to_owned();
    assert_eq!(status(&s, &fresh), 401);
    let lift = json!({"expires_at": null, "allowed_cidrs": [], "client_cert_sha256": null});
    let r = restrict(&s, &s.root_token, &id, lift);
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json["expires_at"].is_null());
    assert_eq!(status(&s, &fresh), 201);
    assert!(s.output().contains("principal expired"), "the log says why");
    assert_no_key_in_log(&s, &[&key, &fresh]);
}

#[test]
fn source_networks_bind_a_key() {
    let s = start("prn-networks");
    let (far_id, far) = create(&s, "far", json!({"allowed_cidrs": ["10.0.0.0/8"]}));
    let (_, near) = create(&s, "near", json!({"allowed_cidrs": ["127.0.0.0/8"]}));
    let (_, both) = create(
        &s,
        "both",
        json!({"allowed_cidrs": ["::1/128", "127.0.0.1/32"]}),
    );
    assert_eq!(status(&s, &near), 201);
    assert_eq!(status(&s, &both), 201);

    // Refused like a wrong key: the same code and message, nothing about networks.
    let bound = tokenize(&s, &far, json!({"type": "text", "value": "x"}));
    let wrong = tokenize(
        &s,
        &format!("tjk_{}", hex(64)),
        json!({"type": "text", "value": "x"}),
    );
    assert_error(&bound, 401, "unauthenticated");
    assert_eq!(
        bound.json["error"]["message"],
        wrong.json["error"]["message"]
    );
    assert!(!bound.text.contains("10.0.0.0") && !bound.text.contains("source"));
    assert!(
        s.output().contains("source address not allowed"),
        "the log says why"
    );

    let open_up =
        json!({"expires_at": null, "allowed_cidrs": ["127.0.0.1/32"], "client_cert_sha256": null});
    let r = restrict(&s, &s.root_token, &far_id, open_up);
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json["allowed_cidrs"], json!(["127.0.0.1/32"]));
    assert_eq!(status(&s, &far), 201);
    let close =
        json!({"expires_at": null, "allowed_cidrs": ["10.0.0.0/8"], "client_cert_sha256": null});
    assert_eq!(restrict(&s, &s.root_token, &far_id, close).status, 200);
    assert_eq!(status(&s, &far), 401, "in effect at once");

    // The root token may not fence itself out from where it calls.
    let lockout =
        json!({"expires_at": null, "allowed_cidrs": ["10.0.0.0/8"], "client_cert_sha256": null});
    let r = restrict(&s, &s.root_token, "root", lockout);
    assert_error(&r, 422, "invalid_value");
    let r = s.get("/v1/principals", Some(&s.root_token));
    assert_eq!(r.status, 200, "the refused restriction left root as it was");
}

#[test]
fn bad_requests_are_refused_without_echoing_them() {
    let s = start("prn-bad");
    let root = s.root_token.clone();
    let secret = format!("s3cr3t{}", hex(12));
    let bad_creates = [
        (json!({"allowed_cidrs": ["10.0.0.0/33"]}), "allowed_cidrs"),
        (
            json!({"allowed_cidrs": [format!("{secret}/8")]}),
            "allowed_cidrs",
        ),
        (json!({"allowed_cidrs": ["10.1.2.3/8"]}), "host bits"),
        (json!({"allowed_cidrs": vec!["10.0.0.0/8"; 65]}), "64"),
        (json!({"expires_at": "2020-01-01T00:00:00Z"}), "future"),
        (json!({"expires_at": secret}), "RFC 3339"),
        (json!({"client_cert_sha256": secret}), "64 hex"),
        (json!({"client_cert_sha256": "zz".repeat(32)}), "64 hex"),
    ];
    for (extra, hint) in bad_creates {
        let mut body = json!({"name": "bad", "roles": ["tokenizer"]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let r = s.post("/v1/principals", Some(&root), &body);
        assert_error(&r, 422, "invalid_value");
        let message = r.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(hint), "{hint}: {message}");
        assert!(
            !r.text.contains(&secret) && !r.text.contains("zzzz"),
            "{}",
            r.text
        );
    }
    let r = s.post(
        "/v1/principals",
        Some(&root),
        &json!({"name": "bad", "roles": ["tokenizer"], "allowed_cidr": ["10.0.0.0/8"]}),
    );
    assert_error(&r, 400, "unknown_field");
    let listed = s.get("/v1/principals", Some(&root));
    assert!(
        !listed.text.contains("\"bad\""),
        "no refused request created a principal: {}",
        listed.text
    );

    let (id, key) = create(&s, "target", json!({}));
    let r = rotate(&s, &id, Some(json!({"grace_seconds": 2_592_001})));
    assert_error(&r, 422, "invalid_value");
    let r = rotate(&s, &id, Some(json!({"grace_seconds": -1})));
    assert_error(&r, 400, "invalid_request");
    let r = rotate(&s, &id, Some(json!({"grace": 5})));
    assert_error(&r, 400, "unknown_field");
    let r = s.call_raw(
        "POST",
        &format!("/v1/principals/{id}/rotate"),
        Some(&root),
        "{",
    );
    assert_error(&r, 400, "malformed_json");
    let r = rotate(&s, "prn_nobody", None);
    assert_error(&r, 404, "not_found");
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("principal"));
    let partial = json!({"expires_at": null, "allowed_cidrs": []});
    let r = restrict(&s, &root, &id, partial);
    assert_error(&r, 400, "invalid_request");
    assert!(r.text.contains("client_cert_sha256"), "{}", r.text);
    let none = json!({"expires_at": null, "allowed_cidrs": [], "client_cert_sha256": null});
    assert_error(&restrict(&s, &root, "prn_nobody", none), 404, "not_found");
    assert_eq!(status(&s, &key), 201, "nothing refused changed the key");
}

#[test]
fn only_administrators_manage_principals() {
    let s = start("prn-admin-only");
    let (id, key) = create(&s, "plain", json!({}));
    let support = s.principal("helper", &["support"]);
    let none = json!({"expires_at": null, "allowed_cidrs": [], "client_cert_sha256": null});
    for caller in [&key, &support] {
        let r = s.post(
            &format!("/v1/principals/{id}/rotate"),
            Some(caller),
            &json!({}),
        );
        assert_error(&r, 403, "forbidden");
        assert_error(&restrict(&s, caller, &id, none.clone()), 403, "forbidden");
        let r = s.post(
            "/v1/principals",
            Some(caller),
            &json!({"name": "x", "roles": ["admin"]}),
        );
        assert_error(&r, 403, "forbidden");
    }
    assert_eq!(
        status(&s, &key),
        201,
        "the refused rotations changed nothing"
    );
    let r = s.post("/v1/principals/x/rotate", None, &json!({}));
    assert_error(&r, 401, "unauthenticated");

    // An administrator principal may rotate keys, its own included.
    let admin = s.principal("admin-two", &["admin"]);
    let r = s.get("/v1/principals", Some(&admin));
    let admin_id = r.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "admin-two")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s.post(
        &format!("/v1/principals/{admin_id}/rotate"),
        Some(&admin),
        &json!({"grace_seconds": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let new_admin = r.json["api_key"].as_str().unwrap();
    assert_eq!(s.get("/v1/principals", Some(&admin)).status, 401);
    assert_eq!(s.get("/v1/principals", Some(new_admin)).status, 200);
}

// ---------------------------------------------------------------------------------------------
// Mutual TLS: a principal bound to its client certificate.

/// An HTTPS agent trusting `server_ca`, presenting `client` (certificate and key) if given.
fn agent(server_ca: &Path, client: Option<&(CertificateDer<'static>, KeyPair)>) -> ureq::Agent {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(server_ca).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
            builder
                .with_client_auth_cert(vec![cert.clone()], key)
                .unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .tls_config(Arc::new(config))
        .build()
}

/// The status of a tokenize request with `key` through `agent`.
fn status_via(agent: &ureq::Agent, s: &Server, key: &str) -> u16 {
    let res = agent
        .post(&format!("{}/v1/tokens", s.url))
        .set("Authorization", &format!("Bearer {key}"))
        .send_json(json!({"type": "text", "value": "mtls"}));
    match res {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

#[test]
fn a_key_bound_to_a_client_certificate_needs_that_certificate() {
    let dir = temp_dir(&tmp_base(), "prn-mtls-files");
    let out = std::process::Command::new(bin())
        .args(["operator", "dev-cert", "--out-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (crt, key_file) = (dir.join("tijori-dev.crt"), dir.join("tijori-dev.key"));
    let ca = tijori_testkit::pki::ClientCa::new("prn test client CA");
    let ca_file = dir.join("client-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let mine = ca.issue("checkout");
    let other = ca.issue("checkout-impostor");

    let data = temp_dir(&tmp_base(), "prn-mtls");
    let client_ca = ca_file.to_str().unwrap();
    let s = Server::start_tls(
        &bin(),
        &data,
        &root_token(),
        (&crt, &key_file),
        &["--tls-client-ca", client_ca],
    );
    let fingerprint = hex_of(&tijori_crypto::sha256(mine.0.as_ref()));
    let (id, key) = create(
        &s,
        "cert-bound",
        json!({"client_cert_sha256": fingerprint.to_uppercase()}),
    );
    let listed = s.get("/v1/principals", Some(&s.root_token));
    let me = listed.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        me["client_cert_sha256"],
        fingerprint.as_str(),
        "shown in lower case"
    );

    let (with_mine, with_other, without) = (
        agent(&crt, Some(&mine)),
        agent(&crt, Some(&other)),
        agent(&crt, None),
    );
    assert_eq!(status_via(&with_mine, &s, &key), 201, "{}", s.output());
    assert_eq!(status_via(&without, &s, &key), 401, "no certificate");
    assert_eq!(
        status_via(&with_other, &s, &key),
        401,
        "another certificate of the same CA"
    );
    // An unbound principal works with or without a certificate.
    let (_, plain) = create(&s, "unbound", json!({}));
    assert_eq!(status_via(&without, &s, &plain), 201);
    assert_eq!(status_via(&with_other, &s, &plain), 201);
    let log = s.output();
    assert!(
        log.contains("no client certificate presented"),
        "the log says why"
    );
    assert!(log.contains("client certificate is not the bound one"));
    assert!(
        !log.contains(&key) && !log.contains(&plain),
        "a key in the log"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
