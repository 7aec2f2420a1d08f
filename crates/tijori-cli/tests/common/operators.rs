//! Operators in black-box tests: `oathtool` (Debian's OATH toolkit) is the person's
//! authenticator app.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::process::Command;

use serde_json::json;
use tijori_testkit::{Reply, Server};

pub const PASSWORD: &str = "river-kite-42-lantern";

/// The code `oathtool` shows for `secret` (base32) at `offset` seconds from now.
pub fn oathtool(secret: &str, offset: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let out = Command::new("oathtool")
        .args(["--totp", "-b", "-N", &format!("@{}", now + offset), secret])
        .output()
        .expect("oathtool is installed (apt-get install oathtool)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Creates an operator as root and enrolls them; answers (user id, base32 TOTP secret).
pub fn enrolled(s: &Server, name: &str, roles: &[&str]) -> (String, String) {
    let r = s.post(
        "/v1/users",
        Some(&s.root_token),
        &json!({"username": name, "roles": roles}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json["status"], "enrollment_pending");
    let code = r.json["enrollment_code"].as_str().unwrap().to_owned();
    let id = r.json["id"].as_str().unwrap().to_owned();
    let e = s.post(
        "/v1/auth/enroll",
        None,
        &json!({"username": name, "enrollment_code": code, "password": PASSWORD}),
    );
    assert_eq!(e.status, 200, "{}", e.text);
    let uri = e.json["otpauth_uri"].as_str().unwrap();
    let secret = e.json["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        uri,
        format!("otpauth://totp/Tijori:{name}?secret={secret}&issuer=Tijori&algorithm=SHA1&digits=6&period=30")
    );
    assert_eq!(secret.len(), 32, "160 bits in base32");
    // The code is spent.
    let again = s.post(
        "/v1/auth/enroll",
        None,
        &json!({"username": name, "enrollment_code": code, "password": PASSWORD}),
    );
    assert_eq!(again.status, 401, "{}", again.text);
    (id, secret)
}

pub fn login(s: &Server, name: &str, password: &str, code: &str) -> Reply {
    s.post(
        "/v1/auth/login",
        None,
        &json!({"username": name, "password": password, "totp": code}),
    )
}

pub fn session(r: &Reply) -> String {
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["session_token"].as_str().unwrap().to_owned()
}

/// An enrolled operator, logged in, with training recorded today: (id, session token).
pub fn operator(s: &Server, name: &str, roles: &[&str]) -> (String, String) {
    let (id, secret) = enrolled(s, name, roles);
    let today = tijori_core::rfc3339(tijori_core::Clock::now(&tijori_core::SystemClock));
    let r = s.post(
        &format!("/v1/users/{id}/training"),
        Some(&s.root_token),
        &json!({"completed_at": today}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let token = session(&login(s, name, PASSWORD, &oathtool(&secret, 0)));
    (id, token)
}
