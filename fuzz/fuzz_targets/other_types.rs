//! The other data types and the type names: `bank_account` (6 to 34 letters and digits, with
//! spaces and dashes, upper-cased), `card_security_code` (exactly 3 or 4 digits), `text` (1
//! byte to 64 KiB, kept as given), each against an independent reading and for idempotence;
//! `DataType::parse` and the serde names; and the mask of every type on arbitrary input,
//! which must never show more than its rule allows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_fuzz::{assert_no_echo, check_mask, split_first};
use tijori_types::api::TokenFormat;
use tijori_types::format::supports_preserving;
use tijori_types::{normalize, DataType, ErrorCode};

fn reference(ty: DataType, raw: &str) -> Option<String> {
    match ty {
        DataType::BankAccount => {
            if raw.len() > 128
                || !raw
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
            {
                return None;
            }
            let s: String = raw
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .map(|c| c.to_ascii_uppercase())
                .collect();
            (6..=34).contains(&s.len()).then_some(s)
        }
        DataType::CardSecurityCode => ((raw.len() == 3 || raw.len() == 4)
            && raw.bytes().all(|b| b.is_ascii_digit()))
        .then(|| raw.to_owned()),
        DataType::Text => (!raw.is_empty() && raw.len() <= 65_536).then(|| raw.to_owned()),
        _ => unreachable!(),
    }
}

fuzz_target!(|data: &[u8]| {
    let (pick, rest) = split_first(data);
    let raw = String::from_utf8_lossy(rest);
    let raw = raw.as_ref();
    let ty = [
        DataType::BankAccount,
        DataType::CardSecurityCode,
        DataType::Text,
    ][usize::from(pick % 3)];
    match normalize(ty, raw) {
        Ok(n) => {
            assert_eq!(
                Some(&n),
                reference(ty, raw).as_ref(),
                "{ty}: accepted against the rule"
            );
            assert_eq!(normalize(ty, &n).as_ref(), Ok(&n), "{ty}: not idempotent");
        }
        Err(e) => {
            assert_eq!(reference(ty, raw), None, "{ty}: refused against the rule");
            assert_eq!(e.code, ErrorCode::InvalidValue);
            if ty != DataType::Text {
                assert_no_echo(&e, raw);
            }
        }
    }
    assert!(!supports_preserving(ty));

    // Type names: parse is the inverse of as_str, and serde agrees with both.
    match DataType::parse(raw) {
        Some(t) => {
            assert_eq!(t.as_str(), raw);
            assert_eq!(serde_json::to_string(&t).ok(), Some(format!("\"{raw}\"")));
        }
        None => assert!(DataType::ALL.iter().all(|t| t.as_str() != raw)),
    }
    let from_json = serde_json::from_slice::<DataType>(rest);
    if let Ok(t) = &from_json {
        assert_eq!(
            serde_json::to_string(t)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok()),
            Some(*t)
        );
    }
    if let Ok(f) = serde_json::from_slice::<TokenFormat>(rest) {
        assert!(matches!(f, TokenFormat::Random | TokenFormat::Preserving));
    }

    for ty in DataType::ALL {
        check_mask(ty, raw);
    }
});
