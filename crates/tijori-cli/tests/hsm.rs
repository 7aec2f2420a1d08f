//! The HSM root of trust end to end, black-box against SoftHSM2: `tijori operator init --hsm-...`
//! builds the vault under an AES-256 key generated inside the token and prints the root token
//! once (no shares); `tijori server` with the same options unseals itself at every start; with
//! the HSM unreachable, the PIN wrong or the options missing it refuses to start, naming what to
//! fix and never echoing the PIN; the key records name the `pkcs11` provider; and the PIN is in
//! no file of the data dir. Each test makes its own SoftHSM2 configuration and token: the
//! `tijori` processes are separate, so `SOFTHSM2_CONF` is passed to each one and no test changes
//! this process's environment.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::trail::records;
use common::*;

use tijori_testkit::softhsm::{self, MODULE};

/// A SoftHSM2 token of one test: its configuration file, label, slot and PINs.
struct SoftHsm {
    conf: PathBuf,
    token: String,
    slot: String,
    pin: String,
    key: String,
}

impl SoftHsm {
    fn new(name: &str) -> SoftHsm {
        let conf = softhsm::configure(&temp_dir(&tmp_base(), &format!("softhsm-{name}")));
        let token = format!("tijori-{name}");
        let pin = format!("pin-{}", hex(20));
        let slot = softhsm::init_token(&conf, &token, &pin, &format!("so-{}", hex(20)));
        SoftHsm {
            conf,
            token,
            slot,
            pin,
            key: "tijori-root".into(),
        }
    }

    /// The `--hsm-...` options naming this token and its root key.
    fn args(&self) -> Vec<String> {
        [
            "--hsm-module",
            MODULE,
            "--hsm-token-label",
            &self.token,
            "--hsm-key-label",
            &self.key,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// The environment of a `tijori` process using this token, with `pin` as the PIN.
    fn env_with<'a>(&'a self, pin: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("SOFTHSM2_CONF", self.conf.to_str().unwrap()),
            ("TIJORI_HSM_PIN", pin),
        ]
    }

    fn env(&self) -> Vec<(&str, &str)> {
        self.env_with(&self.pin)
    }
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Runs `tijori ARGS` with `envs` to its end: exit code and everything it wrote.
fn run(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(bin())
        .args(args)
        .env_remove("TIJORI_HSM_PIN")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// `tijori operator init --hsm-...` on `dir`: answers the root token it printed.
fn init(hsm: &SoftHsm, dir: &Path) -> String {
    let mut args = vec!["operator", "init", "--data-dir", dir.to_str().unwrap()];
    let hsm_args = hsm.args();
    args.extend(strs(&hsm_args));
    let (code, out) = run(&args, &hsm.env());
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("Key share"), "no shares with an HSM: {out}");
    assert!(!out.contains(&hsm.pin), "the PIN is never printed: {out}");
    assert!(
        out.contains(&hsm.token) && out.contains("generated now"),
        "{out}"
    );
    out.lines()
        .find_map(|l| {
            l.split_once("keep it safe): ")
                .map(|(_, t)| t.trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no root token in {out}"))
}

/// Starts `tijori server` (production) on `dir` and insists that it refuses to start: answers
/// what it wrote. A server that starts anyway is killed and fails the test.
fn refused(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(bin());
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .arg("--insecure-plain-http")
        .args(args)
        .env_remove("TIJORI_HSM_PIN")
        .envs(envs.iter().copied());
    let (code, text) = must_exit(cmd);
    assert_eq!(code, Some(2), "{text}");
    assert!(!text.contains("listening on"), "{text}");
    text
}

/// Every key-encryption key record's provider, straight from the database file.
fn kek_providers(dir: &Path) -> Vec<String> {
    let db = vault_db(dir);
    let mut stmt = db.prepare("SELECT provider FROM keks").unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

fn count_ops(dir: &Path, op: &str) -> usize {
    records(dir)
        .iter()
        .filter(|(_, r)| r["operation"] == op)
        .count()
}

#[test]
fn an_hsm_vault_unseals_itself_at_every_start() {
    let hsm = SoftHsm::new("unseal");
    let dir = temp_dir(&tmp_base(), "hsm-vault");
    let root = init(&hsm, &dir);
    let hsm_args = hsm.args();

    // Not twice on one data dir.
    let mut again = vec!["operator", "init", "--data-dir", dir.to_str().unwrap()];
    again.extend(strs(&hsm_args));
    let (code, out) = run(&again, &hsm.env());
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("holds a vault already"), "{out}");

    // Unsealed at once: no custodian, no share.
    let mut s = Server::start_production_with(&bin(), &dir, &root, &strs(&hsm_args), &hsm.env());
    let health = s.get("/v1/health", None);
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json["sealed"], false);
    let key = s.principal("hsm-svc", &["revealer"]);
    let card = card();
    let token = new_token(&s, &key, "card_number", &card);
    assert_eq!(reveal(&s, &key, &token), card);
    assert!(!s.output().contains(&hsm.pin), "{}", s.output());

    // After a hard kill, it unseals again; the PIN may come from a file instead, and the token
    // may be chosen by its slot id.
    s.kill();
    let pin_file = temp_dir(&tmp_base(), "hsm-pin").join("pin");
    std::fs::write(&pin_file, format!("{}\n", hsm.pin)).unwrap();
    std::fs::set_permissions(
        &pin_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let by_file = [
        "--hsm-module",
        MODULE,
        "--hsm-token-label",
        &hsm.token,
        "--hsm-key-label",
        &hsm.key,
        "--hsm-pin-file",
        pin_file.to_str().unwrap(),
    ];
    let conf_only = [("SOFTHSM2_CONF", hsm.conf.to_str().unwrap())];
    let mut s = Server::start_production_with(&bin(), &dir, &root, &by_file, &conf_only);
    assert_eq!(s.get("/v1/health", None).status, 200);
    assert_eq!(reveal(&s, &key, &token), card);
    s.kill();
    assert!(!hsm.slot.is_empty(), "softhsm2-util named no slot");
    let by_slot = [
        "--hsm-module",
        MODULE,
        "--hsm-slot",
        &hsm.slot,
        "--hsm-key-label",
        &hsm.key,
    ];
    let mut s = Server::start_production_with(&bin(), &dir, &root, &by_slot, &hsm.env());
    assert_eq!(reveal(&s, &key, &token), card);
    assert!(!s.output().contains(&hsm.pin), "{}", s.output());
    assert!(s.stop(), "clean stop");

    // The key records name the HSM; init and every start are audited; the PIN is nowhere.
    let providers = kek_providers(&dir);
    assert!(!providers.is_empty());
    assert!(providers.iter().all(|p| p == "pkcs11"), "{providers:?}");
    assert_eq!(count_ops(&dir, "system.init"), 1);
    assert_eq!(count_ops(&dir, "system.unseal"), 3);
    for f in files_under(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, hsm.pin.as_bytes()),
            "the PIN is in {}",
            f.display()
        );
    }
}

#[test]
fn an_hsm_vault_refuses_to_start_without_its_hsm() {
    let hsm = SoftHsm::new("refuse");
    let dir = temp_dir(&tmp_base(), "hsm-refuse");
    let root = init(&hsm, &dir);
    let args = hsm.args();

    // A wrong PIN: refused, naming the token and the PIN, never echoing either PIN.
    let wrong = format!("wrong-{}", hex(20));
    let out = refused(&dir, &strs(&args), &hsm.env_with(&wrong));
    assert!(out.contains("PIN") && out.contains(&hsm.token), "{out}");
    assert!(!out.contains(&wrong) && !out.contains(&hsm.pin), "{out}");

    // No PIN at all.
    let conf_only = [("SOFTHSM2_CONF", hsm.conf.to_str().unwrap())];
    let out = refused(&dir, &strs(&args), &conf_only);
    assert!(out.contains("TIJORI_HSM_PIN"), "{out}");

    // The module is not there.
    let mut missing = args.clone();
    missing[1] = "/nonexistent/libsofthsm2.so".into();
    let out = refused(&dir, &strs(&missing), &hsm.env());
    assert!(
        out.contains("/nonexistent/libsofthsm2.so") && out.contains("apt-get install softhsm2"),
        "{out}"
    );

    // The token or the key label is wrong.
    let mut other_token = args.clone();
    other_token[3] = "no-such-token".into();
    let out = refused(&dir, &strs(&other_token), &hsm.env());
    assert!(out.contains("'no-such-token'"), "{out}");
    let mut other_key = args.clone();
    other_key[5] = "no-such-key".into();
    let out = refused(&dir, &strs(&other_key), &hsm.env());
    assert!(out.contains("'no-such-key'"), "{out}");
    // The open must not have created that key.
    let out = refused(&dir, &strs(&other_key), &hsm.env());
    assert!(out.contains("'no-such-key'"), "{out}");

    // Another key of the same token exists but does not open this vault.
    let other_dir = temp_dir(&tmp_base(), "hsm-refuse-other");
    let mut init_other = vec![
        "operator",
        "init",
        "--data-dir",
        other_dir.to_str().unwrap(),
    ];
    let mut other_root = args.clone();
    other_root[5] = "another-root".into();
    init_other.extend(strs(&other_root));
    let (code, out) = run(&init_other, &hsm.env());
    assert_eq!(code, Some(0), "{out}");
    let out = refused(&dir, &strs(&other_root), &hsm.env());
    assert!(out.contains("does not open this vault"), "{out}");

    // No HSM options: it says which ones it needs.
    let out = refused(&dir, &[], &hsm.env());
    assert!(
        out.contains("--hsm-module") && out.contains("--hsm-key-label"),
        "{out}"
    );

    // Each refusal with an initialized vault's store was audited, with its reason and no PIN.
    let failures: Vec<_> = records(&dir)
        .into_iter()
        .filter(|(_, r)| r["operation"] == "system.unseal" && r["outcome"] == "failure")
        .map(|(_, r)| r.to_string())
        .collect();
    assert!(failures.len() >= 6, "{failures:?}");
    assert!(failures.iter().any(|r| r.contains("PIN")), "{failures:?}");

    // Nothing was opened by all that: the right settings still start it.
    let s = Server::start_production_with(&bin(), &dir, &root, &strs(&args), &hsm.env());
    assert_eq!(s.get("/v1/health", None).status, 200);
    for f in files_under(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains_bytes(&bytes, hsm.pin.as_bytes()),
            "{}",
            f.display()
        );
        assert!(!contains_bytes(&bytes, wrong.as_bytes()), "{}", f.display());
    }
}

#[test]
fn key_shares_and_an_hsm_do_not_mix() {
    let hsm = SoftHsm::new("mix");
    let args = hsm.args();

    // Shares and HSM options at init.
    let dir = temp_dir(&tmp_base(), "hsm-mix");
    let mut both = vec![
        "operator",
        "init",
        "--shares",
        "3",
        "--data-dir",
        dir.to_str().unwrap(),
    ];
    both.extend(strs(&args));
    let (code, out) = run(&both, &hsm.env());
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("--shares"), "{out}");

    // A share-sealed vault started with HSM options.
    let (code, out) = run(
        &[
            "operator",
            "init",
            "--shares",
            "2",
            "--threshold",
            "2",
            "--data-dir",
            dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, Some(0), "{out}");
    let out = refused(&dir, &strs(&args), &hsm.env());
    assert!(
        out.contains("key shares") && out.contains("tijori operator unseal"),
        "{out}"
    );

    // A dev vault with HSM options.
    let dev = temp_dir(&tmp_base(), "hsm-mix-dev");
    let mut dev_args = vec!["--dev"];
    dev_args.extend(strs(&args));
    let out = refused(&dev, &dev_args, &hsm.env());
    assert!(out.contains("--hsm-"), "{out}");
}
