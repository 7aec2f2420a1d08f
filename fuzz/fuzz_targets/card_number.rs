//! Card numbers: `normalize(card_number, _)` against an independent reading of the rule (digits
//! with optional spaces and dashes, 12 to 19 digits, Luhn), `luhn_valid` against the reference
//! Luhn, idempotence, the mask's limits and the format-preserving token's shape.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_fuzz::{assert_no_echo, check_mask, check_preserving, reference_luhn};
use tijori_types::validate::luhn_valid;
use tijori_types::{normalize, DataType, ErrorCode};

/// What the rule says, read independently: only digits, spaces and dashes, at most 128 bytes
/// in all, 12 to 19 digits, and a passing Luhn check.
fn reference(raw: &str) -> Option<String> {
    if raw.len() > 128
        || !raw
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return None;
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    ((12..=19).contains(&digits.len()) && reference_luhn(&digits)).then_some(digits)
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    assert_eq!(luhn_valid(raw), reference_luhn(raw), "luhn_valid disagrees");
    match normalize(DataType::CardNumber, raw) {
        Ok(n) => {
            assert_eq!(
                Some(&n),
                reference(raw).as_ref(),
                "accepted against the rule"
            );
            assert!(luhn_valid(&n), "a valid card number fails Luhn");
            assert_eq!(
                normalize(DataType::CardNumber, &n).as_ref(),
                Ok(&n),
                "not idempotent"
            );
            check_mask(DataType::CardNumber, &n);
            check_preserving(DataType::CardNumber, &n, raw, data, true);
        }
        Err(e) => {
            assert_eq!(reference(raw), None, "refused against the rule");
            assert_eq!(e.code, ErrorCode::InvalidCardNumber);
            assert_no_echo(&e, raw);
        }
    }
    // The mask must hold whatever it is handed, not only normalized numbers.
    check_mask(DataType::CardNumber, raw);
});
