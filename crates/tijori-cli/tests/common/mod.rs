//! Shared helpers of the black-box tests: starting a server, unique random test values, and
//! assertions on API.md's error format.
// These are tests: a failed unwrap or expect is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod load;
pub mod operators;
pub mod pg;
pub mod trail;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
pub use tijori_testkit::{temp_dir, Reply, Server};

/// The `tijori` binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_tijori"))
}

/// Base directory of the tests' data dirs.
pub fn tmp_base() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

/// The stopped vault's database (`tijori.sqlite3` in its data dir); the trail's is
/// `trail::trail_db`.
pub fn vault_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join("tijori.sqlite3")).unwrap()
}

/// A root token unique to this run.
pub fn root_token() -> String {
    format!("root-{}", hex(16))
}

/// Runs `cmd` (a `tijori` that must refuse to start) and insists that it exits: a process
/// still running after 60 s is killed and fails the test. Answers its exit code and
/// everything it wrote.
pub fn must_exit(mut cmd: std::process::Command) -> (Option<i32>, String) {
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} started instead of refusing: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Starts a dev server on a fresh data dir named after `name`.
pub fn start(name: &str) -> Server {
    let dir = temp_dir(&tmp_base(), name);
    Server::start(&bin(), &dir, &root_token())
}

// ---------------------------------------------------------------------------------------------
// Random values: xorshift64* seeded from the process id and the time, so values differ per run.

static RNG: Mutex<u64> = Mutex::new(0);

pub fn next_u64() -> u64 {
    let mut s = RNG.lock().unwrap_or_else(|e| e.into_inner());
    if *s == 0 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let seed = (u64::from(std::process::id()) << 32) ^ nanos ^ 0x9E37_79B9_7F4A_7C15;
        *s = if seed == 0 { 1 } else { seed };
    }
    let mut x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// `n` random decimal digits.
pub fn digits(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'0' + (next_u64() >> 33) as u8 % 10))
        .collect()
}

/// `n` random lower-case hex characters.
pub fn hex(n: usize) -> String {
    const H: &[u8] = b"0123456789abcdef";
    (0..n)
        .map(|_| char::from(H[((next_u64() >> 40) % 16) as usize]))
        .collect()
}

/// `n` random upper-case letters.
pub fn letters(n: usize) -> String {
    (0..n)
        .map(|_| char::from(b'A' + ((next_u64() >> 40) % 26) as u8))
        .collect()
}

/// The Luhn check over ASCII digits.
pub fn luhn_valid(s: &str) -> bool {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = s
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// A Luhn-valid number of `len` digits starting with `prefix`.
pub fn card_with(prefix: &str, len: usize) -> String {
    let body = format!("{prefix}{}", digits(len - prefix.len() - 1));
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|c| luhn_valid(c))
        .unwrap()
}

/// A random Luhn-valid 16-digit (Visa-like) card number.
pub fn card() -> String {
    card_with("4", 16)
}

/// `s` with `sep` between groups of four characters.
pub fn grouped(s: &str, sep: char) -> String {
    s.chars()
        .enumerate()
        .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(sep).into_iter().chain([c]))
        .collect()
}

/// A random CNIC as (dashed input, 13-digit normalized form).
pub fn cnic() -> (String, String) {
    let d = digits(13);
    (format!("{}-{}-{}", &d[..5], &d[5..12], &d[12..]), d)
}

/// A random Pakistani mobile number as (`03XX-XXXXXXX` input, `+923XXXXXXXXX` normalized form).
pub fn pk_mobile() -> (String, String) {
    let sub = digits(9);
    (
        format!("03{}-{}", &sub[..2], &sub[2..]),
        format!("+923{sub}"),
    )
}

/// A random valid PK IBAN (24 characters) in normalized form.
pub fn iban_pk() -> String {
    let bban = format!("{}{}", letters(4), digits(16));
    let rearranged = format!("{bban}PK00");
    let r = rearranged.bytes().fold(0u32, |r, b| {
        if b.is_ascii_digit() {
            (r * 10 + u32::from(b - b'0')) % 97
        } else {
            (r * 100 + u32::from(b - b'A') + 10) % 97
        }
    });
    format!("PK{:02}{bban}", 98 - r)
}

/// A random bank account number (upper case letters and digits, 12 characters).
pub fn bank_account() -> String {
    format!("{}{}", letters(2), digits(10))
}

/// A random, clearly recognizable text value.
pub fn text() -> String {
    format!("private note {} für Tijori", hex(20))
}

// ---------------------------------------------------------------------------------------------
// Requests and assertions.

pub fn tokenize(s: &Server, key: &str, body: Value) -> Reply {
    s.post("/v1/tokens", Some(key), &body)
}

/// Tokenizes and insists on `201`; answers the token.
pub fn new_token(s: &Server, key: &str, ty: &str, value: &str) -> String {
    let r = tokenize(s, key, json!({"type": ty, "value": value}));
    assert_eq!(r.status, 201, "tokenize {ty}: {}", r.text);
    token_of(&r)
}

pub fn token_of(r: &Reply) -> String {
    r.json["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {}", r.text))
        .to_owned()
}

pub fn detokenize(s: &Server, key: &str, tokens: &[&str]) -> Reply {
    s.post("/v1/detokenize", Some(key), &json!({ "tokens": tokens }))
}

/// Detokenizes one token and answers its `value` (panics unless it is a 200 with a value).
pub fn reveal(s: &Server, key: &str, token: &str) -> String {
    let r = detokenize(s, key, &[token]);
    assert_eq!(r.status, 200, "detokenize: {}", r.text);
    let item = &r.json["items"][0];
    assert_eq!(item["token"], token, "{}", r.text);
    item["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no value for {token}: {}", r.text))
        .to_owned()
}

/// Path segment for a token (preserving mobile tokens start with `+`).
pub fn enc(token: &str) -> String {
    token.replace('+', "%2B")
}

/// Asserts an API.md error answer: status, code, a message, and the request id of the header.
pub fn assert_error(r: &Reply, status: u16, code: &str) {
    assert_eq!(
        r.status, status,
        "expected {status} {code}, got: {}",
        r.text
    );
    let e = &r.json["error"];
    assert_eq!(e["code"], code, "wrong error code: {}", r.text);
    assert!(
        e["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {}",
        r.text
    );
    let rid = e["request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no request_id: {}", r.text));
    assert!(!rid.is_empty());
    assert_eq!(
        r.request_id.as_deref(),
        Some(rid),
        "x-request-id differs from error.request_id"
    );
}

/// Asserts that `value` does not show in `r` (only for values long enough not to occur by chance).
pub fn assert_no_leak(r: &Reply, value: &str) {
    if value.len() >= 6 {
        assert!(
            !r.text.contains(value),
            "the response echoes the submitted value: {}",
            r.text
        );
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                out.push(entry.path());
            }
        }
    }
    out
}

/// Polls `cond` until it holds or `timeout` passes; answers whether it held.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

/// Seconds since the epoch of an RFC 3339 UTC timestamp (`YYYY-MM-DDTHH:MM:SS[.f](Z|+00:00)`).
pub fn unix_seconds(ts: &str) -> i64 {
    let b = ts.as_bytes();
    assert!(
        ts.len() >= 20
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b'T'
            && b[13] == b':'
            && b[16] == b':',
        "not an RFC 3339 timestamp: {ts}"
    );
    assert!(ts.ends_with('Z') || ts.ends_with("+00:00"), "not UTC: {ts}");
    let n = |r: std::ops::Range<usize>| {
        ts[r]
            .parse::<i64>()
            .unwrap_or_else(|_| panic!("bad timestamp {ts}"))
    };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Rows of a vector CSV file (header skipped).
pub fn csv_rows(csv: &str) -> Vec<Vec<&str>> {
    csv.lines()
        .skip(1)
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect()
}

#[cfg(test)]
mod self_tests {
    use super::*;

    #[test]
    fn generators_make_valid_values() {
        assert!(luhn_valid("4111111111111111") && !luhn_valid("4111111111111112"));
        for _ in 0..50 {
            let c = card();
            assert_eq!(c.len(), 16);
            assert!(luhn_valid(&c));
            let i = iban_pk();
            assert_eq!(i.len(), 24);
            let moved = format!("{}{}", &i[4..], &i[..4]);
            let r = moved.bytes().fold(0u32, |r, b| {
                if b.is_ascii_digit() {
                    (r * 10 + u32::from(b - b'0')) % 97
                } else {
                    (r * 100 + u32::from(b - b'A') + 10) % 97
                }
            });
            assert_eq!(r, 1, "{i}");
        }
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), 0);
        assert_eq!(unix_seconds("2024-02-29T12:00:01.5Z"), 1_709_208_001);
    }
}
