//! SoftHSM2 for tests of the PKCS#11 root of trust: a private token directory and tokens in
//! it, made with `softhsm2-util` (Debian's `softhsm2`, which CI installs).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian installs the SoftHSM2 PKCS#11 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// Writes a SoftHSM2 configuration keeping its tokens under `dir`; answers its path (for
/// `SOFTHSM2_CONF`). Fails the test, saying what to install, if SoftHSM2 is missing.
pub fn configure(dir: &Path) -> PathBuf {
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} is missing): apt-get install softhsm2"
    );
    std::fs::create_dir_all(dir.join("tokens")).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            dir.join("tokens").display()
        ),
    )
    .expect("softhsm2.conf");
    conf
}

/// Initializes a token labelled `label` under the configuration `conf`; answers the slot id
/// SoftHSM2 gave it.
pub fn init_token(conf: &Path, label: &str, pin: &str, so_pin: &str) -> String {
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--pin", pin, "--so-pin", so_pin])
        .env("SOFTHSM2_CONF", conf)
        .output()
        .expect("softhsm2-util did not run: apt-get install softhsm2");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "softhsm2-util --init-token {label}: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    said.split_once("reassigned to slot ")
        .map(|(_, s)| s.trim().to_owned())
        .unwrap_or_default()
}
