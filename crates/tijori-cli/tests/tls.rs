//! TLS, black-box (issue 4, point 7: TLS everywhere but dev loopback): `tijori operator
//! dev-cert` makes a certificate the server serves with; real handshakes negotiate TLS 1.3 (and
//! 1.2 with an AEAD suite when asked), while TLS 1.1 and 1.0 are refused by the server; SIGHUP
//! swaps in a renewed certificate and a broken file on SIGHUP keeps the old one; plain HTTP off
//! loopback, production without TLS, and bad certificate files refuse to start, saying what to
//! do; the CLI's commands reach an HTTPS server trusting --ca-cert.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::ProtocolVersion;
use serde_json::json;

/// `tijori operator dev-cert --out-dir DIR ARGS`: the command's output.
fn dev_cert_run(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(["operator", "dev-cert", "--out-dir"])
        .arg(dir)
        .args(args)
        .output()
        .unwrap()
}

/// A fresh dev certificate and key in a new dir named after `name`.
fn dev_cert(name: &str) -> (PathBuf, PathBuf) {
    let dir = temp_dir(&tmp_base(), name);
    let out = dev_cert_run(&dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    (dir.join("tijori-dev.crt"), dir.join("tijori-dev.key"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `127.0.0.1:PORT` of a server started with TLS.
fn host_port(s: &Server) -> String {
    s.url.strip_prefix("https://").unwrap().to_owned()
}

fn certificate(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

/// A full TLS handshake with rustls, trusting `cas` only: the protocol version negotiated and
/// the certificate the server presented, or why the handshake failed.
fn handshake(
    addr: &str,
    cas: &[&Path],
) -> Result<(ProtocolVersion, CertificateDer<'static>), String> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        roots.add(certificate(ca)).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).map_err(|e| e.to_string())?;
    }
    let leaf = conn.peer_certificates().unwrap()[0].clone().into_owned();
    Ok((conn.protocol_version().unwrap(), leaf))
}

/// `openssl s_client` against `addr` with `args`: whether a session was established, and all
/// it printed.
fn s_client(addr: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-brief", "-connect", addr])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command line tool");
    let all = text(&out);
    (
        out.status.success() && all.contains("CONNECTION ESTABLISHED"),
        all,
    )
}

/// Runs `tijori ARGS` and insists that it exits (a server that starts anyway is killed and
/// fails the test): exit code and everything it wrote.
fn refused(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .env_remove("TIJORI_TLS_CERT")
        .env_remove("TIJORI_TLS_KEY");
    must_exit(cmd)
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn refused_with(args: &[std::ffi::OsString]) -> String {
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    let (code, out) = refused(&refs);
    assert_eq!(code, Some(2), "{out}");
    out
}

#[test]
fn a_dev_server_with_a_dev_certificate_speaks_tls_1_3_and_1_2_only() {
    let (crt, key) = dev_cert("tls-dev-cert");
    let dir = temp_dir(&tmp_base(), "tls-dev");
    let s = Server::start_tls(&bin(), &dir, &root_token(), (&crt, &key), &[]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    assert!(
        wait_for(Duration::from_secs(30), || s
            .output()
            .contains("DEV MODE IS INSECURE")),
        "{}",
        s.output()
    );
    assert!(
        !s.output().contains("HTTP is unencrypted"),
        "{}",
        s.output()
    );

    // Real requests over TLS, trusting the generated certificate alone.
    assert_eq!(s.get("/v1/health", None).status, 200);
    assert_eq!(s.get("/v1/sys/keys", Some(&s.root_token)).status, 200);
    assert_eq!(s.get("/v1/sys/keys", None).status, 401);

    let addr = host_port(&s);
    let (version, presented) = handshake(&addr, &[&crt]).unwrap();
    assert_eq!(version, ProtocolVersion::TLSv1_3);
    assert_eq!(presented, certificate(&crt));

    let (ok, out) = s_client(&addr, &["-tls1_3", "-CAfile", crt.to_str().unwrap()]);
    assert!(ok, "{out}");
    assert!(out.contains("Protocol version: TLSv1.3"), "{out}");
    let (ok, out) = s_client(&addr, &["-tls1_2"]);
    assert!(ok, "{out}");
    assert!(out.contains("Protocol version: TLSv1.2"), "{out}");
    let suite = out
        .lines()
        .find_map(|l| l.strip_prefix("Ciphersuite: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        suite.starts_with("ECDHE-") && (suite.contains("GCM") || suite.contains("CHACHA20")),
        "{suite}"
    );

    // TLS 1.1 and 1.0: the client is allowed everything (security level 0), so the refusal
    // is the server's: a fatal alert it sent (rustls answers a hello without TLS 1.2's
    // signature_algorithms extension with handshake_failure), not the client's own "no
    // protocols available".
    for old in ["-tls1_1", "-tls1"] {
        let (ok, out) = s_client(&addr, &[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{old} was accepted:\n{out}");
        assert!(out.contains("SSL alert number"), "{old}:\n{out}");
        assert!(!out.contains("no protocols available"), "{old}:\n{out}");
    }
    // The server still serves after refusing them.
    assert_eq!(s.get("/v1/health", None).status, 200);
}

#[test]
fn the_cli_reaches_an_https_server_trusting_its_ca_cert() {
    let (crt, key) = dev_cert("tls-cli-cert");
    let dir = temp_dir(&tmp_base(), "tls-cli");
    let s = Server::start_tls(&bin(), &dir, &root_token(), (&crt, &key), &[]);
    let status = |extra: &[&str]| {
        Command::new(bin())
            .args(["keys", "status", "--addr", &s.url])
            .args(extra)
            .env("TIJORI_TOKEN", &s.root_token)
            .env_remove("TIJORI_CA_CERT")
            .output()
            .unwrap()
    };
    let out = status(&["--ca-cert", crt.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("data"),
        "{}",
        text(&out)
    );

    // Without it the public roots do not vouch for a self-signed certificate.
    let out = status(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--ca-cert"), "{}", text(&out));

    // A --ca-cert that is no certificate is a usage error naming the file.
    let out = status(&["--ca-cert", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("tijori-dev.key"), "{}", text(&out));
}

#[test]
fn sighup_reloads_the_certificate_and_a_broken_file_keeps_the_old_one() {
    let (old_crt, old_key) = dev_cert("tls-reload-old");
    let (new_crt, new_key) = dev_cert("tls-reload-new");
    let live = temp_dir(&tmp_base(), "tls-reload-live");
    let (crt, key) = (live.join("server.crt"), live.join("server.key"));
    std::fs::copy(&old_crt, &crt).unwrap();
    std::fs::copy(&old_key, &key).unwrap();
    let dir = temp_dir(&tmp_base(), "tls-reload");
    let s = Server::start_tls(&bin(), &dir, &root_token(), (&crt, &key), &[]);
    let addr = host_port(&s);
    let both = [old_crt.as_path(), new_crt.as_path()];
    let presented = || handshake(&addr, &both).map(|(_, cert)| cert);
    assert_eq!(presented().unwrap(), certificate(&old_crt));

    let hangup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &s.pid().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    };
    // Renewed: the key first, then the certificate, as a renewal tool would.
    std::fs::copy(&new_key, &key).unwrap();
    std::fs::copy(&new_crt, &crt).unwrap();
    hangup();
    let renewed = certificate(&new_crt);
    assert!(
        wait_for(Duration::from_secs(30), || presented().ok()
            == Some(renewed.clone())),
        "the renewed certificate was not served:\n{}",
        s.output()
    );

    // A broken file: the reload fails, is logged, and the renewed certificate stays.
    std::fs::write(&crt, "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    hangup();
    assert!(
        wait_for(Duration::from_secs(30), || s
            .output()
            .contains("TLS reload failed")),
        "{}",
        s.output()
    );
    assert!(s.output().contains("server.crt"), "{}", s.output());
    assert_eq!(presented().unwrap(), renewed);
}

#[test]
fn plain_http_off_loopback_or_in_production_is_refused() {
    let dir = tmp_base().join(format!("tls-refused-{}", hex(8)));
    let d = dir.as_os_str().to_owned();
    let mut args = os(&["server", "--dev", "--listen", "0.0.0.0:0", "--data-dir"]);
    args.push(d.clone());
    let out = refused_with(&args);
    assert!(out.contains("not a loopback address"), "{out}");
    assert!(
        out.contains("--tls-cert") && out.contains("--tls-key"),
        "{out}"
    );

    let mut args = os(&["server", "--listen", "127.0.0.1:0", "--data-dir"]);
    args.push(d.clone());
    let out = refused_with(&args);
    assert!(out.contains("--tls-cert"), "{out}");
    assert!(out.contains("--insecure-plain-http"), "{out}");
    // Refused before anything was written.
    assert!(!dir.exists());

    // The explicit flag is for plain HTTP only.
    let (crt, key) = dev_cert("tls-refused-cert");
    let mut args = os(&["server", "--insecure-plain-http", "--tls-cert"]);
    args.extend([
        crt.into_os_string(),
        "--tls-key".into(),
        key.into_os_string(),
    ]);
    args.extend(["--data-dir".into(), d]);
    let out = refused_with(&args);
    assert!(out.contains("--insecure-plain-http"), "{out}");
}

#[test]
fn a_bad_certificate_or_key_refuses_start_naming_the_file() {
    let (crt, key) = dev_cert("tls-bad-a");
    let (_, other_key) = dev_cert("tls-bad-b");
    let dir = tmp_base().join(format!("tls-bad-{}", hex(8)));
    let server = |cert: &Path, key: &Path| {
        let mut args = os(&["server", "--dev", "--listen", "127.0.0.1:0", "--tls-cert"]);
        args.extend([cert.into(), "--tls-key".into(), key.into()]);
        args.extend(["--data-dir".into(), dir.clone().into_os_string()]);
        refused_with(&args)
    };
    let out = server(&crt, &other_key);
    assert!(out.contains(other_key.to_str().unwrap()), "{out}");
    assert!(out.contains("does not belong to the certificate"), "{out}");
    assert!(out.contains("tijori operator dev-cert"), "{out}");

    let missing = crt.with_file_name("missing.crt");
    let out = server(&missing, &key);
    assert!(out.contains(missing.to_str().unwrap()), "{out}");

    let out = server(&key, &crt);
    assert!(out.contains("holds no PEM certificate"), "{out}");
    assert!(!dir.exists());

    // Both or neither.
    let out = refused_with(&os(&[
        "server",
        "--dev",
        "--tls-cert",
        crt.to_str().unwrap(),
    ]));
    assert!(out.contains("--tls-key"), "{out}");
}

#[test]
fn dev_cert_writes_a_private_key_refuses_to_overwrite_and_says_it_is_for_trials() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir(&tmp_base(), "tls-dev-cert-files");
    let out = dev_cert_run(&dir, &["--hostname", "vault.test", "--days", "7"]);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    let (crt, key) = (dir.join("tijori-dev.crt"), dir.join("tijori-dev.key"));
    for expected in [
        "not for production",
        &format!(
            "tijori server --tls-cert {} --tls-key {}",
            crt.display(),
            key.display()
        ),
        &format!("--ca-cert {}", crt.display()),
        "vault.test",
    ] {
        assert!(said.contains(expected), "{expected}:\n{said}");
    }
    assert!(!said.contains("PRIVATE KEY"), "{said}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    let sans = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&crt)
        .output()
        .unwrap();
    let sans = text(&sans);
    for name in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:vault.test",
    ] {
        assert!(sans.contains(name), "{name}: {sans}");
    }

    let before = std::fs::read(&crt).unwrap();
    let again = dev_cert_run(&dir, &[]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("--force"), "{}", text(&again));
    assert_eq!(std::fs::read(&crt).unwrap(), before);
    let forced = dev_cert_run(&dir, &["--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert_ne!(std::fs::read(&crt).unwrap(), before);
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// `tijori operator init` with two shares: the shares and the root token it printed.
fn init(dir: &Path) -> (Vec<String>, String) {
    let out = Command::new(bin())
        .args([
            "operator",
            "init",
            "--shares",
            "2",
            "--threshold",
            "2",
            "--data-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let shares = said
        .lines()
        .filter_map(|l| l.split_once(": tjs1-").map(|(_, s)| format!("tjs1-{s}")))
        .collect();
    let root = said
        .lines()
        .find_map(|l| {
            l.split_once("keep it safe): ")
                .map(|(_, t)| t.trim().to_owned())
        })
        .unwrap();
    (shares, root)
}

#[test]
fn a_production_server_with_tls_is_unsealed_over_https_and_stops_cleanly() {
    let (crt, key) = dev_cert("tls-prod-cert");
    let dir = temp_dir(&tmp_base(), "tls-prod");
    let (shares, root) = init(&dir);
    let mut s = Server::start_production_tls(&bin(), &dir, &root, (&crt, &key), &[]);
    let health = s.get("/v1/health", None);
    assert_eq!(
        (health.status, health.json["sealed"].clone()),
        (503, json!(true))
    );

    for share in &shares {
        let mut child = Command::new(bin())
            .args(["operator", "unseal", "--addr", &s.url, "--ca-cert"])
            .arg(&crt)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{share}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(s.get("/v1/health", None).status, 200);
    assert_eq!(s.get("/v1/sys/keys", Some(&root)).status, 200);

    // SIGTERM under TLS: the stop is audited and the trail verifies.
    assert!(s.stop(), "{}", s.output());
    let export = Command::new(bin())
        .args(["audit", "export", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(text(&export).contains("system.stop"), "{}", text(&export));
    let verify = Command::new(bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{}", text(&verify));
}
