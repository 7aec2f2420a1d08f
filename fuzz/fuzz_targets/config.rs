//! Configuration values read from the command line, the environment or files: syslog targets
//! (`--syslog tcp://host:port`), RFC 3339 times (principal expiries, audit filters), the names
//! of roles, guarded operations and key kinds, audit retention, and the TLS files (certificate
//! chain, private key, client CAs as PEM). Each parser must refuse or accept, never panic, and
//! what it accepts must print back to a form it reads the same.
//!
//! Input: a selector byte, then the text (for TLS, three files separated by NUL bytes).
#![no_main]

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tijori_core::approval::Guarded;
use tijori_core::audit::archive::Retention;
use tijori_core::policy::Role;
use tijori_core::rotation::KeyKind;
use tijori_core::{parse_rfc3339, rfc3339};
use tijori_fuzz::{split_at_byte, split_first};
use tijori_server::TlsFiles;
use tijori_syslog::Target;

fn syslog_target(text: &str) {
    let Ok(t) = Target::from_str(text) else {
        return;
    };
    assert_ne!(t.port(), 0);
    assert!(!t.host().is_empty() && t.host().len() <= 253);
    assert_eq!(t.host(), t.host().to_ascii_lowercase());
    let shown = t.to_string();
    let again = Target::from_str(&shown).expect("a printed target reads back");
    assert_eq!(again, t);
    assert_eq!(
        again.to_string(),
        shown,
        "the printed form is not canonical"
    );
    assert!(t.cursor_key().starts_with("syslog.cursor."));
}

fn time(text: &str) {
    let Some(t) = parse_rfc3339(text) else { return };
    // Printed in UTC, read back to the same second.
    assert_eq!(parse_rfc3339(&rfc3339(t)), Some(t), "{text:?} -> {t}");
}

fn names(text: &str) {
    if let Some(r) = Role::parse(text) {
        assert_eq!(r.as_str(), text);
    }
    if let Some(g) = Guarded::parse(text) {
        assert_eq!(g.as_str(), text);
    }
    if let Some(k) = KeyKind::parse(text) {
        assert!(matches!(
            (k, text),
            (KeyKind::Kek, "kek") | (KeyKind::Data, "data")
        ));
    }
}

fn retention(bytes: &[u8]) {
    let mut n = [0u8; 16];
    let len = bytes.len().min(16);
    n[..len].copy_from_slice(&bytes[..len]);
    let online = i64::from_le_bytes(n[..8].try_into().unwrap_or_default());
    let keep = i64::from_le_bytes(n[8..].try_into().unwrap_or_default());
    let r = Retention {
        online,
        keep,
        dir: PathBuf::from("/nonexistent"),
    };
    assert_eq!(r.check().is_ok(), online >= 0 && keep >= online);
}

/// A scratch directory of this process for the TLS files.
fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("TIJORI_FUZZ_TMP")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        tijori_fuzz::remove_stale_scratch(&base, "tijori-fuzz-config-");
        let dir = base.join(format!("tijori-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    })
}

fn tls(bytes: &[u8]) {
    let (cert, rest) = split_at_byte(bytes, 0);
    let (key, ca) = split_at_byte(rest, 0);
    let dir = scratch();
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        client_ca: (!ca.is_empty()).then(|| dir.join("ca.pem")),
    };
    std::fs::write(&files.cert, cert).expect("write");
    std::fs::write(&files.key, key).expect("write");
    if let Some(ca_path) = &files.client_ca {
        std::fs::write(ca_path, ca).expect("write");
    }
    if let Err(e) = tijori_server::tls::server_config(&files) {
        // The message names the file, never its contents: no line of key material (16 or
        // more characters of base64) shows up in it. Lines of other text may well match the
        // message's own words.
        let shown = e.to_string();
        let base64 = |l: &str| {
            l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        };
        for line in [cert, key, ca]
            .into_iter()
            .flat_map(|f| f.split(|&b| b == b'\n'))
        {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.len() >= 16 && base64(line) {
                assert!(!shown.contains(line), "the error shows the file: {shown}");
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = split_first(data);
    match pick % 5 {
        0 => syslog_target(&String::from_utf8_lossy(rest)),
        1 => time(&String::from_utf8_lossy(rest)),
        2 => names(&String::from_utf8_lossy(rest)),
        3 => retention(rest),
        _ => tls(rest),
    }
});
