//! Audit export files (`tijori audit verify --file`, archives), read from arbitrary bytes as
//! `tijori audit verify` reads them: the leading checkpoints, then checkpoints and records fed
//! to a verifier, for a whole trail and for a part of one. Whatever the file holds, the answer
//! is a verdict or a read error, never a panic. Each record line is also rendered as a syslog
//! message (what the forwarder sends), which must carry the record text unchanged, and each
//! record text that reads as an audit event must survive a JSON round trip.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tijori_core::audit::export::{feed_checkpoints, feed_records, leading_checkpoints};
use tijori_core::audit::{AuditEvent, Verdict, Verifier};
use tijori_crypto::{PublicKey, SecretKey, SigningKey};
use tijori_fuzz::split_first;
use tijori_store::AuditRow;

/// The public key of the fixed signing key the seed corpus was signed with.
fn key() -> PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    *KEY.get_or_init(|| SigningKey::from_seed(&SecretKey::from_bytes([7; 32])).public_key())
}

fn verify(data: &[u8], whole: bool, with_key: bool) {
    let key = with_key.then(key);
    let mut v = if whole {
        Verifier::new(key)
    } else {
        Verifier::from_first(key)
    };
    if feed_checkpoints(&mut v, Cursor::new(data)).is_err() {
        return;
    }
    if feed_records(&mut v, Cursor::new(data), |_| {}).is_err() {
        return;
    }
    let count = v.count();
    match v.finish() {
        Verdict::Intact {
            first,
            records,
            head,
            signed_through,
            unsigned,
            ..
        } => {
            assert_eq!(records, count);
            assert!(
                first >= 1 || !whole,
                "a whole trail starts at record 1 or after a cut"
            );
            assert_eq!(head.len(), 64, "a head is a SHA-256");
            if let Some((seq, _)) = signed_through {
                // The anchor of a cut is the record just before the first.
                assert!(seq >= first.saturating_sub(1));
            } else {
                assert_eq!(unsigned, records);
            }
            assert!(unsigned <= records);
        }
        Verdict::Broken { reason, .. } => assert!(!reason.is_empty()),
    }
}

fn syslog(data: &[u8]) {
    #[derive(serde::Deserialize)]
    struct Line {
        seq: i64,
        record: String,
        #[serde(default)]
        hash: String,
    }
    for text in data.split(|&b| b == b'\n').take(16) {
        let Ok(line) = serde_json::from_slice::<Line>(text) else {
            continue;
        };
        let row = AuditRow {
            seq: line.seq,
            record: line.record,
            prev_hash: Vec::new(),
            hash: hex::decode(&line.hash).unwrap_or_default(),
        };
        let msg = tijori_syslog::format(&row, "fuzz-host", 42);
        assert!(msg.starts_with('<'));
        assert!(msg.ends_with(&row.record), "the message alters the record");
        let head = &msg[..msg.len() - row.record.len()];
        assert!(!head.contains('\n'), "a newline in the syslog header");
        if let Ok(event) = serde_json::from_str::<AuditEvent>(&row.record) {
            let again = serde_json::to_string(&event).expect("serializes");
            assert_eq!(serde_json::from_str::<AuditEvent>(&again).ok(), Some(event));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (mode, file) = split_first(data);
    let _ = leading_checkpoints(Cursor::new(file));
    verify(file, mode & 1 == 0, mode & 2 == 0);
    syslog(file);
});
