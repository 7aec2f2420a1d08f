//! Token and credential strings the vault reads back: format-preserving tokens made from
//! arbitrary (possibly un-normalized, possibly mixed-up) arguments with an arbitrary digit
//! source; custodians' key shares (`tjs1-…`, parsed, re-printed and combined); audit public
//! keys (`ed25519:…`). Input: a selector byte, then fields separated by NUL bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_crypto::{combine_shares, KeyShare, PublicKey};
use tijori_fuzz::{check_preserving, split_at_byte, split_first, DigitSource};
use tijori_types::format::{preserving_token, supports_preserving};
use tijori_types::{normalize, DataType, ErrorCode};

fn preserving(ty: DataType, normalized: &str, raw: &str, digits: &[u8]) {
    let mut source = DigitSource::new(digits, false);
    let mut next = || source.next_digit();
    let got = preserving_token(ty, normalized, raw, &mut next);
    if !supports_preserving(ty) {
        assert_eq!(
            got.err().map(|e| e.code),
            Some(ErrorCode::UnsupportedFormat)
        );
        return;
    }
    // The token depends on the value only through its normal form: handing the normalized
    // value instead must give the same token from the same digits.
    match normalize(ty, normalized) {
        Ok(n) => {
            let mut again = DigitSource::new(digits, false);
            let mut next = || again.next_digit();
            let from_normal = preserving_token(ty, &n, raw, &mut next);
            assert_eq!(got, from_normal, "{ty}: token depends on the spelling");
            if got.is_ok() {
                check_preserving(ty, &n, raw, digits, false);
            } else {
                assert_eq!(got.err().map(|e| e.code), Some(ErrorCode::Internal));
            }
        }
        Err(e) => assert_eq!(got.err(), Some(e), "{ty}: a token for an invalid value"),
    }
}

fn key_shares(text: &str) {
    let mut parsed = Vec::new();
    for line in text.split('\n').take(8) {
        let Ok(share) = KeyShare::parse(line) else {
            continue;
        };
        assert!(share.threshold() >= 2 && share.index() >= 1);
        let printed = share.to_text();
        assert!(printed.starts_with("tjs1-"));
        assert!(printed[5..]
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        let again = KeyShare::parse(&printed).expect("a printed share reads back");
        assert_eq!(
            (again.vault(), again.threshold(), again.index()),
            (share.vault(), share.threshold(), share.index())
        );
        assert_eq!(*again.to_text(), *printed);
        parsed.push(share);
    }
    // Any set of shares, mixed or too few, gives a key or an error, never a panic.
    let _ = combine_shares(&parsed);
}

fn public_key(text: &str, message: &[u8]) {
    if let Ok(key) = PublicKey::parse(text) {
        let shown = key.to_string();
        assert_eq!(PublicKey::parse(&shown).ok(), Some(key));
        assert_eq!(key.fingerprint().len(), 16);
        // Arbitrary signatures of arbitrary messages: refused, never a panic.
        let (sig, msg) = message.split_at(message.len().min(64));
        assert!(!key.verify(msg, sig) || sig.len() == 64);
    }
}

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = split_first(data);
    match pick % 3 {
        0 => {
            let ty = DataType::ALL[usize::from(pick / 3) % DataType::ALL.len()];
            let (normalized, rest) = split_at_byte(rest, 0);
            let (raw, digits) = split_at_byte(rest, 0);
            let normalized = String::from_utf8_lossy(normalized);
            let raw = String::from_utf8_lossy(raw);
            preserving(ty, &normalized, &raw, digits);
        }
        1 => key_shares(&String::from_utf8_lossy(rest)),
        _ => {
            let (text, message) = split_at_byte(rest, 0);
            public_key(&String::from_utf8_lossy(text), message);
        }
    }
});
