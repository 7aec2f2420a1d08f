//! Pakistani mobile numbers: `normalize(pk_mobile, _)` against an independent reading of the
//! accepted forms (`03XXXXXXXXX`, `923XXXXXXXXX`, `+923XXXXXXXXX`, with spaces and dashes),
//! the E.164 normal form and its idempotence, the mask and the format-preserving token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tijori_fuzz::{assert_no_echo, check_mask, check_preserving};
use tijori_types::{normalize, DataType, ErrorCode};

fn reference(raw: &str) -> Option<String> {
    if raw.len() > 128 {
        return None;
    }
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
    {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    let national = if digits.len() == 12 && digits.starts_with("92") {
        &digits[2..]
    } else if !plus && digits.len() == 11 && digits.starts_with('0') {
        &digits[1..]
    } else {
        return None;
    };
    national.starts_with('3').then(|| format!("+92{national}"))
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let raw = raw.as_ref();
    match normalize(DataType::PkMobile, raw) {
        Ok(n) => {
            assert_eq!(
                Some(&n),
                reference(raw).as_ref(),
                "accepted against the rule"
            );
            assert_eq!(n.len(), 13);
            assert_eq!(
                normalize(DataType::PkMobile, &n).as_ref(),
                Ok(&n),
                "not idempotent"
            );
            check_mask(DataType::PkMobile, &n);
            check_preserving(DataType::PkMobile, &n, raw, data, true);
        }
        Err(e) => {
            assert_eq!(reference(raw), None, "refused against the rule");
            assert_eq!(e.code, ErrorCode::InvalidPkMobile);
            assert_no_echo(&e, raw);
        }
    }
    check_mask(DataType::PkMobile, raw);
});
