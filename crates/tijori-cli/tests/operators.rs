//! Operators, black-box, with `oathtool` (Debian's OATH toolkit) as the person's authenticator
//! app: an administrator creates an account, the person enrolls and logs in with password and
//! TOTP code; a replayed code fails; ten failures lock the account; a session idles out; a
//! support operator whose training lapsed cannot reveal until an attestation is recorded; and
//! nothing typed (password, code, secret, session token) reaches the log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use common::operators::*;
use common::trail::events;
use common::*;
use serde_json::{json, Value};

fn reveal(s: &Server, session: &str, token: &str) -> Reply {
    s.post("/v1/detokenize", Some(session), &json!({"tokens": [token]}))
}

#[test]
fn a_person_enrolls_logs_in_and_a_replayed_code_fails() {
    let s = start("operators-login");
    let (id, secret) = enrolled(&s, "amina", &["support"]);
    let code = oathtool(&secret, 0);
    let r = login(&s, "amina", PASSWORD, &code);
    let token = session(&r);
    assert_eq!(
        r.json["user"]["status"], "active",
        "the first code confirms the app"
    );
    let me = s.get("/v1/auth/session", Some(&token));
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(
        (me.json["id"].as_str(), me.json["kind"].as_str()),
        (Some(id.as_str()), Some("operator"))
    );

    // The same code again: refused, with the one message every failure gets.
    let replay = login(&s, "amina", PASSWORD, &code);
    assert_eq!(replay.status, 401);
    let wrong_password = login(&s, "amina", "not-the-password-1", &oathtool(&secret, 30));
    let wrong_code = login(&s, "amina", PASSWORD, "000000");
    let nobody = login(&s, "nobody", PASSWORD, &code);
    for r in [&replay, &wrong_password, &wrong_code, &nobody] {
        assert_eq!(r.status, 401);
        assert_eq!(r.json["error"]["code"], "unauthenticated");
        assert_eq!(r.json["error"]["message"], replay.json["error"]["message"]);
    }
    // Logout ends the session.
    assert_eq!(
        s.post("/v1/auth/logout", Some(&token), &json!({})).status,
        204
    );
    assert_eq!(s.get("/v1/auth/session", Some(&token)).status, 401);

    // The trail names the operator and every failed attempt, never what was typed.
    let trail = events(&s.data_dir);
    let logins: Vec<&Value> = trail.iter().filter(|r| r["operation"] == "login").collect();
    assert_eq!(logins.len(), 5);
    assert_eq!(logins[0]["outcome"], "success");
    assert_eq!(logins[0]["principal_kind"], "operator");
    assert!(logins[1..].iter().all(|r| r["outcome"] == "denied"));
    assert_eq!(logins[1]["resource"], id.as_str());
    // Everything the vault stored: its SQLite file, or a dump of its PostgreSQL schema.
    let text = match tijori_testkit::test_database(&s.data_dir) {
        Some((url, schema)) => {
            let dump = std::process::Command::new("pg_dump")
                .args(["-n", &schema, &url])
                .output()
                .unwrap();
            assert!(dump.status.success());
            dump.stdout
        }
        None => std::fs::read(s.data_dir.join("tijori.sqlite3")).unwrap(),
    };
    let log = s.output();
    for secret_text in [PASSWORD, &secret, &code, &token] {
        assert!(!log.contains(secret_text), "log leaks a secret");
        assert!(
            !text
                .windows(secret_text.len())
                .any(|w| w == secret_text.as_bytes()),
            "the database holds a secret in clear"
        );
    }
}

#[test]
fn ten_failures_lock_the_account_until_an_admin_unlocks_it() {
    let s = start("operators-lockout");
    let (id, secret) = enrolled(&s, "bilal", &["auditor"]);
    for _ in 0..10 {
        assert_eq!(
            login(&s, "bilal", "not-the-password-1", "000000").status,
            401
        );
    }
    let users = s.get("/v1/users", Some(&s.root_token));
    assert_eq!(users.json["items"][0]["status"], "locked", "{}", users.text);
    // Locked: the right password and code are refused too.
    assert_eq!(
        login(&s, "bilal", PASSWORD, &oathtool(&secret, 0)).status,
        401
    );
    let trail = events(&s.data_dir);
    assert!(trail
        .iter()
        .any(|r| r["operation"] == "user.lock" && r["resource"] == id.as_str()));

    let r = s.post(
        &format!("/v1/users/{id}/unlock"),
        Some(&s.root_token),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    session(&login(&s, "bilal", PASSWORD, &oathtool(&secret, 0)));
}

#[test]
fn an_idle_session_ends() {
    let dir = temp_dir(&tmp_base(), "operators-idle");
    let s = Server::start_with(&bin(), &dir, &root_token(), &["--session-idle-secs", "2"]);
    let (_, secret) = enrolled(&s, "chand", &["auditor"]);
    let token = session(&login(&s, "chand", PASSWORD, &oathtool(&secret, 0)));
    assert_eq!(s.get("/v1/auth/session", Some(&token)).status, 200);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let r = s.get("/v1/auth/session", Some(&token));
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.json["error"]["message"]
        .as_str()
        .unwrap()
        .contains("log in again"));
}

#[test]
fn lapsed_training_stops_reveals_until_attested() {
    let s = start("operators-training");
    let app = s.principal("training-app", &["tokenizer"]);
    let card = card();
    let t = tokenize(&s, &app, json!({"type": "card_number", "value": card}));
    let token = token_of(&t);
    let (id, secret) = enrolled(&s, "dua", &["support"]);
    let sess = session(&login(&s, "dua", PASSWORD, &oathtool(&secret, 0)));

    // Never trained: logs in, may search, may not reveal, even masked.
    let r = reveal(&s, &sess, &token);
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json["error"]["code"], "training_expired");
    let report = s.get("/v1/reports/training", Some(&s.root_token));
    assert_eq!(report.status, 200, "{}", report.text);
    assert_eq!(report.json["items"][0]["id"], id.as_str());
    assert_eq!(report.json["items"][0]["lapsed"], true);

    // Trained 340 days ago: valid for 25 more days, so reveals work and the report still
    // lists the operator (lapses within 30 days) but not within 20.
    let completed =
        tijori_core::rfc3339(tijori_core::Clock::now(&tijori_core::SystemClock) - 340 * 86_400);
    let r = s.post(
        &format!("/v1/users/{id}/training"),
        Some(&s.root_token),
        &json!({"completed_at": completed}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = reveal(&s, &sess, &token);
    assert_eq!(r.status, 200, "{}", r.text);
    let shown = r.json["items"][0]["value"].as_str().unwrap();
    assert_ne!(shown, card, "support sees masked values only");
    assert!(shown.ends_with(&card[card.len() - 4..]));
    let soon = s.get("/v1/reports/training?within_days=30", Some(&s.root_token));
    assert_eq!(soon.json["items"][0]["lapsed"], false);
    let later = s.get("/v1/reports/training?within_days=20", Some(&s.root_token));
    assert_eq!(later.json["items"], json!([]));
    assert_eq!(
        s.get("/v1/reports/training?within_days=x", Some(&s.root_token))
            .status,
        400
    );

    // Training lapsed a day ago: refused again.
    let old =
        tijori_core::rfc3339(tijori_core::Clock::now(&tijori_core::SystemClock) - 366 * 86_400);
    s.post(
        &format!("/v1/users/{id}/training"),
        Some(&s.root_token),
        &json!({"completed_at": old}),
    );
    assert_eq!(
        reveal(&s, &sess, &token).json["error"]["code"],
        "training_expired"
    );
}

#[test]
fn passwords_follow_the_rules_and_only_admins_manage_accounts() {
    let s = start("operators-rules");
    let r = s.post(
        "/v1/users",
        Some(&s.root_token),
        &json!({"username": "eman", "roles": ["revealer"]}),
    );
    let code = r.json["enrollment_code"].as_str().unwrap();
    for weak in [
        "short-1",
        "password1234",
        "onlyletterslong",
        "eman-is-12345",
    ] {
        let e = s.post(
            "/v1/auth/enroll",
            None,
            &json!({"username": "eman", "enrollment_code": code, "password": weak}),
        );
        assert_eq!(e.status, 422, "{weak}: {}", e.text);
        assert!(!e.text.contains(weak), "the error echoes the password");
    }
    let dup = s.post(
        "/v1/users",
        Some(&s.root_token),
        &json!({"username": "eman", "roles": ["auditor"]}),
    );
    assert_eq!(dup.status, 409, "{}", dup.text);
    let svc = s.principal("ops-app", &["tokenizer"]);
    let denied = s.post(
        "/v1/users",
        Some(&svc),
        &json!({"username": "x1", "roles": ["auditor"]}),
    );
    assert_eq!(denied.status, 403);
    assert_eq!(s.get("/v1/users", Some(&svc)).status, 403);
    let unknown = s.post(
        "/v1/auth/login",
        None,
        &json!({"username": "a", "password": "b", "totp": "1", "x": 1}),
    );
    assert_eq!(unknown.status, 400);
}

/// Runs the `tijori` binary with `stdin` as standard input; answers (success, stdout, stderr).
fn cli(args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = std::process::Command::new(bin())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_cli_enrolls_with_a_qr_code_and_logs_in_from_stdin() {
    let s = start("operators-cli");
    let r = s.post(
        "/v1/users",
        Some(&s.root_token),
        &json!({"username": "erum", "roles": ["auditor"]}),
    );
    let code = r.json["enrollment_code"].as_str().unwrap().to_owned();
    let addr = s.url.as_str();
    let (ok, out, err) = cli(
        &["operator", "enroll", "--addr", addr, "--username", "erum"],
        &format!("{code}\n{PASSWORD}\n"),
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains('▀') || out.contains('█'),
        "a QR code is drawn: {out}"
    );
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("Secret: "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(out.contains(&format!("otpauth://totp/Tijori:erum?secret={secret}")));
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));

    let (ok, out, err) = cli(
        &["operator", "login", "--addr", addr, "--username", "erum"],
        &format!("{PASSWORD}\n{}\n", oathtool(&secret, 0)),
    );
    assert!(ok, "{out}{err}");
    let token = out.trim();
    assert!(
        token.starts_with("tjo_") && !token.contains('\n'),
        "the token alone: {out}"
    );
    assert_eq!(s.get("/v1/auth/session", Some(token)).status, 200);
    // A wrong code: a non-zero exit with the server's message.
    let (ok, _, err) = cli(
        &["operator", "login", "--addr", addr, "--username", "erum"],
        &format!("{PASSWORD}\n000000\n"),
    );
    assert!(!ok);
    assert!(err.contains("401") && err.contains("login failed"), "{err}");
}
