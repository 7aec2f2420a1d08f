//! IBANs: `normalize(iban, _)` against ISO 13616 read independently (letters, digits and
//! spaces; country code, two check digits 02..=98, a mod-97 remainder of 1 by the reference
//! computation), the upper-case normal form, idempotence, blindness to case and spacing, and
//! the mask (at most the last four).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_fuzz::{assert_no_echo, check_mask, reference_iban_mod97};
use tijori_types::{normalize, DataType, ErrorCode};

/// Everything of the rule but the per-country length table.
fn plausible(raw: &str) -> Option<String> {
    if raw.len() > 128 || !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ') {
        return None;
    }
    let s: String = raw
        .chars()
        .filter(|&c| c != ' ')
        .collect::<String>()
        .to_ascii_uppercase();
    let b = s.as_bytes();
    if !(15..=34).contains(&b.len())
        || !b[..2].iter().all(u8::is_ascii_uppercase)
        || !b[2..4].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let check = (b[2] - b'0') * 10 + (b[3] - b'0');
    ((2..=98).contains(&check) && reference_iban_mod97(&s) == Some(1)).then_some(s)
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    match normalize(DataType::Iban, raw) {
        Ok(n) => {
            assert_eq!(
                Some(&n),
                plausible(raw).as_ref(),
                "accepted against the rule"
            );
            assert_eq!(
                normalize(DataType::Iban, &n).as_ref(),
                Ok(&n),
                "not idempotent"
            );
            let lower = n.to_ascii_lowercase();
            assert_eq!(
                normalize(DataType::Iban, &lower).as_ref(),
                Ok(&n),
                "case matters"
            );
            let grouped: String = n
                .chars()
                .enumerate()
                .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c]))
                .collect();
            assert_eq!(
                normalize(DataType::Iban, &grouped).as_ref(),
                Ok(&n),
                "spaces matter"
            );
            check_mask(DataType::Iban, &n);
            let e = tijori_types::format::check_preserving(DataType::Iban).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnsupportedFormat);
        }
        Err(e) => {
            // Refusing a plausible IBAN is right only for the length of its country.
            assert_eq!(e.code, ErrorCode::InvalidIban);
            assert_no_echo(&e, raw);
        }
    }
    check_mask(DataType::Iban, raw);
});
