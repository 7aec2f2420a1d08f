//! Disk faults (issue 8): the data dir's filesystem fills up, or turns read-only, under
//! concurrent tokenize load. Writes answer `503 unavailable` with a clear message, never
//! another 5xx; reveals are refused too, since their audit records cannot be written (fail
//! closed); the health endpoint goes on answering; nothing stored is damaged; and once space
//! returns the vault serves again by itself, without a restart.
//!
//! The faults are real: the data dir is a small ext4 filesystem in a loop-mounted image file,
//! filled by a file the test writes, or turned read-only by ext4's own error handling
//! (`errors=remount-ro`, triggered through sysfs). Mounting needs root; as another user these
//! tests say so and pass without running (CI runs as root).
// These are tests: a failed unwrap, expect or assertion is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::load::{assert_all_reveal, Load, Tally};
use common::*;
use serde_json::json;

/// A small ext4 filesystem in an image file, mounted under the tests' temp dir.
struct Disk {
    image: PathBuf,
    mount: PathBuf,
}

fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{cmd}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(format!(
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Disk {
    /// A fresh filesystem of `mib` MiB; `None` (after saying why) when not running as root.
    fn new(name: &str, mib: u32) -> Option<Disk> {
        if run("id", &["-u"]).as_deref() != Ok("0") {
            eprintln!("SKIPPED: the disk-fault tests mount a filesystem, which needs root");
            return None;
        }
        let base = temp_dir(&tmp_base(), name);
        let (image, mount) = (base.join("disk.img"), base.join("mnt"));
        std::fs::create_dir_all(&mount).unwrap();
        let size = format!("{mib}M");
        run("truncate", &["-s", &size, image.to_str().unwrap()]).unwrap();
        // No blocks reserved for root: the server runs as root, and "full" must mean full.
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", image.to_str().unwrap()],
        )
        .unwrap();
        let disk = Disk { image, mount };
        disk.mount_rw();
        Some(disk)
    }

    fn mount_rw(&self) {
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                self.image.to_str().unwrap(),
                self.mount.to_str().unwrap(),
            ],
        )
        .unwrap();
    }

    fn filler(&self) -> PathBuf {
        self.mount.join("filler")
    }

    /// Writes a file until the filesystem has no space left.
    fn fill(&self) {
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk).and_then(|()| f.sync_data()) {
                assert_eq!(e.raw_os_error(), Some(28), "not ENOSPC: {e}");
                break;
            }
        }
    }

    /// Gives the space back.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    /// Makes ext4 see an error: with `errors=remount-ro` it turns the filesystem read-only at
    /// once, under the files the server holds open.
    fn break_read_only(&self) {
        let source = run(
            "findmnt",
            &["-n", "-o", "SOURCE", self.mount.to_str().unwrap()],
        )
        .unwrap();
        let dev = Path::new(&source)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        std::fs::write(
            format!("/sys/fs/ext4/{dev}/trigger_fs_error"),
            "tijori test",
        )
        .unwrap();
        let opts = run(
            "findmnt",
            &["-n", "-o", "OPTIONS", self.mount.to_str().unwrap()],
        )
        .unwrap();
        assert!(
            opts.split(',').any(|o| o == "ro" || o == "emergency_ro"),
            "{opts}"
        );
    }

    /// What an operator does after a filesystem error: unmount, check, mount again.
    fn repair(&self) {
        run("umount", &[self.mount.to_str().unwrap()]).unwrap();
        // e2fsck exits 1 when it fixed something (the error flag): both are fine.
        let status = Command::new("e2fsck")
            .args(["-f", "-y", self.image.to_str().unwrap()])
            .output()
            .unwrap()
            .status;
        assert!(matches!(status.code(), Some(0 | 1)), "e2fsck: {status}");
        self.mount_rw();
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = run("umount", &["-l", self.mount.to_str().unwrap()]);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Every refusal the writers saw is `503 unavailable` with the storage message.
fn assert_only_unavailable(tally: &Tally) {
    for (status, body, _) in &tally.refused {
        assert_eq!(*status, 503, "{body}");
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("disk"), "an unclear message: {message}");
    }
}

fn assert_not_in_output(s: &Server, pairs: &[(String, String)]) {
    let output = s.output();
    for (_, value) in pairs {
        assert!(
            !output.contains(value.as_str()),
            "the server's log quotes a value"
        );
    }
}

/// A reveal while the disk is broken: refused, fail closed, without the value.
fn assert_reveal_refused(s: &Server, key: &str, (token, value): &(String, String)) {
    let r = detokenize(s, key, &[token.as_str()]);
    assert_error(&r, 503, "unavailable");
    assert_no_leak(&r, value);
}

fn start_on(disk: &Disk) -> (Server, String, Vec<(String, String)>) {
    let dir = disk.mount.join("vault");
    std::fs::create_dir_all(&dir).unwrap();
    let s = Server::start(&bin(), &dir, &root_token());
    let key = s.principal("disk", &["tokenizer", "revealer"]);
    let before: Vec<(String, String)> = (0..50)
        .map(|_| {
            let v = card();
            (new_token(&s, &key, "card_number", &v), v)
        })
        .collect();
    (s, key, before)
}

/// A vault on `disk` with tokens in it, under tokenize load when `fault` strikes: the writers
/// see refusals, a reveal is refused without its value, and the health check still answers.
fn fault_under_load(
    disk: &Disk,
    fault: impl FnOnce(&Disk),
) -> (Server, String, Vec<(String, String)>, Load) {
    let (s, key, before) = start_on(disk);
    let load = Load::start(&s.url, &key, 4);
    assert!(load.wait(Duration::from_secs(60), |t| t.acked.len() >= 200));
    fault(disk);
    assert!(
        load.wait(Duration::from_secs(60), |t| !t.refused.is_empty()),
        "the writers never saw the fault"
    );
    assert_reveal_refused(&s, &key, &before[0]);
    let health = s.get("/v1/health", None);
    assert_eq!(health.status, 200, "{}", health.text);
    (s, key, before, load)
}

#[test]
fn a_full_disk_refuses_writes_and_service_resumes_when_space_returns() {
    let Some(disk) = Disk::new("disk-full", 48) else {
        return;
    };
    let (mut s, key, before, load) = fault_under_load(&disk, Disk::fill);

    disk.free();
    let resumed = load.peek(|t| t.acked.len());
    assert!(
        load.wait(Duration::from_secs(60), |t| t.acked.len() > resumed + 100),
        "the vault did not take writes again after space returned"
    );
    let tally = load.finish();
    assert_only_unavailable(&tally);
    eprintln!(
        "{} acknowledged, {} refused while the disk was full",
        tally.acked.len(),
        tally.refused.len()
    );
    assert_all_reveal(&s, &key, &before, "stored before the fault");
    assert_all_reveal(&s, &key, &tally.acked, "acknowledged under load");
    let r = tokenize(&s, &key, json!({"type": "card_number", "value": card()}));
    assert_eq!(r.status, 201, "{}", r.text);

    assert!(s.stop(), "a clean stop: {}", s.output());
    common::trail::assert_intact(&s.data_dir, "after the disk fault");
    for (_, value) in before.iter().chain(&tally.acked) {
        assert!(
            !s.output().contains(value.as_str()),
            "a value in the server's log"
        );
    }
}

#[test]
fn a_disk_turned_read_only_refuses_writes_and_keeps_what_was_stored() {
    let Some(disk) = Disk::new("disk-ro", 48) else {
        return;
    };
    let (mut s, key, before, load) = fault_under_load(&disk, Disk::break_read_only);
    let tally = load.finish();
    assert_only_unavailable(&tally);
    eprintln!(
        "{} acknowledged, {} refused once the disk was read-only",
        tally.acked.len(),
        tally.refused.len()
    );

    // The operator repairs the filesystem and starts the vault again: nothing acknowledged is
    // lost, and the trail verifies across the fault.
    s.kill();
    disk.repair();
    common::trail::assert_intact(&s.data_dir, "after the disk fault");
    s.restart();
    assert_all_reveal(&s, &key, &before, "stored before the fault");
    assert_all_reveal(&s, &key, &tally.acked, "acknowledged under load");
    let r = tokenize(&s, &key, json!({"type": "card_number", "value": card()}));
    assert_eq!(r.status, 201, "{}", r.text);
    tally.assert_no_leak(&s.output());
    assert_not_in_output(&s, &before);
}
