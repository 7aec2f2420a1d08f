//! The audit chain checker on trails that are right by construction: the input's lines become
//! record texts, chained with `audit_chain_hash` from a starting number the input picks, some
//! heads signed with a fixed key, written in the export format. The verdict must be intact
//! exactly when every record reads as an audit event and is numbered from 1 to `i64::MAX - 1`;
//! then one tampering the input picks (an edited record, a swap, a deletion, a forged
//! signature, a cut-off signed tail, a renumbered record) must be found. Catches both missed
//! tampering and arithmetic at the ends of the number range.
//!
//! Input: a control byte (tampering), a byte choosing the start (1, after a signed cut, a
//! part of a trail, or near the ends of i64), a byte of checkpoint positions, then records
//! separated by newlines.
#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::json;
use tijori_core::audit::export::{feed_checkpoints, feed_records};
use tijori_core::audit::{checkpoint_message, AuditEvent, Verdict, Verifier};
use tijori_crypto::{audit_chain_hash, SecretKey, SigningKey};

fn signer() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_seed(&SecretKey::from_bytes([7; 32])))
}

struct Rec {
    seq: i64,
    prev: Vec<u8>,
    hash: Vec<u8>,
    text: String,
}

fn record_line(r: &Rec) -> String {
    json!({"seq": r.seq, "prev_hash": hex::encode(&r.prev), "hash": hex::encode(&r.hash), "record": r.text})
        .to_string()
}

fn checkpoint_line(seq: i64, hash: &[u8], time: i64, signature: &[u8]) -> String {
    json!({"checkpoint": {"seq": seq, "hash": hex::encode(hash), "time": time,
                          "signature": hex::encode(signature)}})
    .to_string()
}

fn verdict(lines: &[String], whole: bool) -> Option<Verdict> {
    let file = lines.join("\n");
    let key = Some(signer().public_key());
    let mut v = if whole {
        Verifier::new(key)
    } else {
        Verifier::from_first(key)
    };
    feed_checkpoints(&mut v, Cursor::new(file.as_bytes())).ok()?;
    feed_records(&mut v, Cursor::new(file.as_bytes()), |_| {}).ok()?;
    Some(v.finish())
}

fn intact(v: &Option<Verdict>) -> bool {
    matches!(v, Some(Verdict::Intact { .. }))
}

fuzz_target!(|data: &[u8]| {
    let [tamper, start, signs, body @ ..] = data else {
        return;
    };
    let texts: Vec<String> = body
        .split(|&b| b == b'\n')
        .take(32)
        .map(|t| String::from_utf8_lossy(t).into_owned())
        .collect();
    let n = texts.len() as i64;
    // Where the trail starts, and whether it is checked whole (from 1, or after a signed
    // cut) or as a part.
    let (first, whole, anchored) = match start % 6 {
        0 => (1, true, false),
        1 => (1 + i64::from(*start / 6), true, true),
        2 => (1 + i64::from(*start / 6), false, false),
        // The last record at the largest number a record may have...
        3 => (i64::MAX - n, false, false),
        4 => (i64::MIN + i64::from(*start / 6), false, false),
        // ... and one past it, which must be refused, as must numbers below 1.
        _ => (i64::MAX - n + 1, true, true),
    };
    let mut prev = if first == 1 {
        vec![0u8; 32]
    } else {
        vec![(*start).wrapping_add(1); 32]
    };
    let mut recs = Vec::new();
    for (i, text) in texts.into_iter().enumerate() {
        let seq = first + i as i64;
        let hash = audit_chain_hash(&prev, seq, &text);
        recs.push(Rec {
            seq,
            prev: prev.clone(),
            hash: hash.clone(),
            text,
        });
        prev = hash;
    }
    let time = 1_795_000_000;
    let sign = |seq: i64, hash: &[u8]| signer().sign(&checkpoint_message(seq, hash, time));
    let mut checkpoints = Vec::new();
    if anchored {
        if let Some(r) = recs.first() {
            let cut = r.seq - 1;
            checkpoints.push((cut, r.prev.clone(), sign(cut, &r.prev)));
        }
    }
    for (i, r) in recs.iter().enumerate() {
        if signs & (1 << (i % 8)) != 0 && (i < 8 || i + 1 == recs.len()) {
            checkpoints.push((r.seq, r.hash.clone(), sign(r.seq, &r.hash)));
        }
    }
    let cp_lines: Vec<String> = checkpoints
        .iter()
        .map(|(s, h, sig)| checkpoint_line(*s, h, time, sig))
        .collect();
    let rec_lines: Vec<String> = recs.iter().map(record_line).collect();
    let all: Vec<String> = cp_lines.iter().chain(&rec_lines).cloned().collect();

    let well_formed = recs.iter().all(|r| {
        (1..i64::MAX).contains(&r.seq) && serde_json::from_str::<AuditEvent>(&r.text).is_ok()
    });
    let got = verdict(&all, whole);
    match &got {
        Some(Verdict::Intact {
            first: f,
            records,
            head,
            signed_through,
            ..
        }) => {
            assert!(well_formed, "a malformed record passed");
            assert_eq!(*records, recs.len() as u64);
            if let Some(last) = recs.last() {
                assert_eq!(*f, recs[0].seq);
                assert_eq!(*head, hex::encode(&last.hash));
            }
            if let Some((s, _)) = signed_through {
                assert_eq!(Some(*s), checkpoints.iter().map(|c| c.0).max());
            }
        }
        Some(Verdict::Broken { .. }) => {
            assert!(!well_formed, "a right trail found broken: {got:?}")
        }
        None => panic!("a well-formed export could not be read"),
    }
    if !well_formed || recs.len() < 2 {
        return;
    }

    // One tampering, which must be found.
    let i = usize::from(tamper / 8) % recs.len();
    let j = (i + 1) % recs.len();
    let cp = checkpoints.len();
    let mut lines = all.clone();
    let must_break = match tamper % 8 {
        // The text edited, the stored hash kept.
        0 => {
            let r = &recs[i];
            let edited = Rec {
                seq: r.seq,
                prev: r.prev.clone(),
                hash: r.hash.clone(),
                text: format!("{} ", r.text),
            };
            lines[cp + i] = record_line(&edited);
            true
        }
        // Two records swapped.
        1 => {
            lines.swap(cp + i, cp + j);
            true
        }
        // A record in the middle deleted (without the first, the rest may be a part of a
        // trail or follow a signed cut; without the last, a truncation: case 5).
        2 if recs.len() >= 3 => {
            let k = i.clamp(1, recs.len() - 2);
            lines.remove(cp + k);
            true
        }
        // The text edited and its hash recomputed, the rest of the chain with it: only a
        // signature over a later head can tell.
        3 => {
            let mut prev = recs[i].prev.clone();
            for (k, r) in recs.iter().enumerate().skip(i) {
                let text = if k == i {
                    format!("{} ", r.text)
                } else {
                    r.text.clone()
                };
                let hash = audit_chain_hash(&prev, r.seq, &text);
                lines[cp + k] = record_line(&Rec {
                    seq: r.seq,
                    prev: prev.clone(),
                    hash: hash.clone(),
                    text,
                });
                prev = hash;
            }
            checkpoints.iter().any(|c| c.0 >= recs[i].seq)
        }
        // A signature forged (one bit flipped).
        4 if cp > 0 => {
            let (s, h, sig) = &checkpoints[i % cp];
            let mut sig = sig.clone();
            sig[0] ^= 1;
            lines[i % cp] = checkpoint_line(*s, h, time, &sig);
            // A checkpoint before the first record is checked only as the anchor of a trail
            // that does not start at record 1; one at record 0 anchors nothing and is ignored.
            *s >= recs[0].seq || (anchored && recs[0].seq != 1 && *s == recs[0].seq - 1)
        }
        // The signed tail cut off after record i.
        5 => {
            lines.truncate(cp + i + 1);
            checkpoints.iter().any(|c| c.0 > recs[i].seq)
        }
        // A record renumbered.
        6 => {
            let r = &recs[i];
            let moved = Rec {
                seq: r.seq.wrapping_add(1),
                prev: r.prev.clone(),
                hash: r.hash.clone(),
                text: r.text.clone(),
            };
            lines[cp + i] = record_line(&moved);
            true
        }
        _ => false,
    };
    let got = verdict(&lines, whole);
    if must_break {
        assert!(!intact(&got), "tampering {} at {i} not found", tamper % 8);
    }
});
