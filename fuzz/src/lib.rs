//! Helpers shared by the fuzz targets: independent reference checks (written here from the
//! standards, not copied from the code under test, so that a target compares two readings of
//! the rule rather than the code with itself) and the invariants every data type's masked form
//! and format-preserving token must keep. A broken invariant panics, which libFuzzer reports
//! as a crash.
#![forbid(unsafe_code)]

use tijori_types::format::preserving_token;
use tijori_types::mask::mask;
use tijori_types::validate::ValidationError;
use tijori_types::{DataType, ErrorCode};

/// The character a masked form hides with.
pub const MASK: char = '*';

/// The Luhn check as ISO/IEC 7812-1 states it: from the right, double every second digit,
/// add the digits of the products, and the total must end in 0.
pub fn reference_luhn(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut total = 0u64;
    for (i, b) in digits.bytes().rev().enumerate() {
        let d = u64::from(b - b'0');
        total += if i % 2 == 1 {
            (d * 2) / 10 + (d * 2) % 10
        } else {
            d
        };
    }
    total.is_multiple_of(10)
}

/// ISO 7064 MOD 97-10 over an IBAN, by the book: move the first four characters to the end,
/// replace letters by 10..=35 and take the remainder of the resulting number in decimal
/// chunks of at most nine digits.
pub fn reference_iban_mod97(iban: &str) -> Option<u32> {
    if iban.len() < 4 || !iban.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
    let mut numeric = String::new();
    for c in rearranged.chars() {
        numeric.push_str(&c.to_digit(36)?.to_string());
    }
    let mut rem: u64 = 0;
    for chunk in numeric.as_bytes().chunks(7) {
        let s = std::str::from_utf8(chunk).ok()?;
        let n: u64 = s.parse().ok()?;
        rem = (rem * 10u64.pow(chunk.len() as u32) + n) % 97;
    }
    u32::try_from(rem).ok()
}

/// A digit source for format-preserving tokens made from fuzz bytes: deterministic, so a
/// crash reproduces, and able to be as degenerate as the fuzzer likes (a constant digit, or a
/// digit out of 0..=9 when `strict` is false, which the code must refuse, never fold).
pub struct DigitSource<'a> {
    bytes: &'a [u8],
    at: usize,
    strict: bool,
}

impl<'a> DigitSource<'a> {
    pub fn new(bytes: &'a [u8], strict: bool) -> DigitSource<'a> {
        DigitSource {
            bytes,
            at: 0,
            strict,
        }
    }

    pub fn next_digit(&mut self) -> u8 {
        let b = if self.bytes.is_empty() {
            // Counting digits: never stuck, so a token must come out.
            (self.at % 251) as u8
        } else {
            self.bytes[self.at % self.bytes.len()]
        };
        self.at += 1;
        if self.strict {
            b % 10
        } else {
            b
        }
    }
}

/// Splits fuzz input into a leading control byte and the rest (0 for empty input).
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((b, rest)) => (*b, rest),
        None => (0, data),
    }
}

/// Splits `data` at the first `sep`: (before, after); without one, (data, empty).
pub fn split_at_byte(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// A refusal never repeats the value: no run of four or more of its letters and digits shows
/// up in the message (shorter runs could be part of a fixed message by chance).
pub fn assert_no_echo(e: &ValidationError, raw: &str) {
    let shown = format!("{e} {e:?}");
    let alnum: String = raw.chars().filter(char::is_ascii_alphanumeric).collect();
    if alnum.len() >= 8 {
        assert!(
            !shown.contains(&alnum),
            "the error echoes the value: {shown}"
        );
    }
    if raw.len() >= 8 && raw.chars().any(|c| c.is_ascii_digit()) {
        assert!(!shown.contains(raw), "the error echoes the value: {shown}");
    }
}

/// Which positions of `value` its masked form may show, whatever `value` is.
fn allowed_positions(ty: DataType, value: &str) -> (usize, usize) {
    let len = value.chars().count();
    match ty {
        DataType::CardNumber => {
            // At most the first six and last four, and never fewer than six hidden.
            let suffix = len.saturating_sub(6).min(4);
            let prefix = len.saturating_sub(6 + suffix).min(6);
            (prefix, suffix)
        }
        DataType::CardSecurityCode => (0, 0),
        DataType::Cnic => (0, 0), // checked separately: the layout changes
        DataType::Iban | DataType::PkMobile | DataType::BankAccount | DataType::Text => {
            (0, (len / 2).min(4))
        }
    }
}

/// The masked form of `value` (normalized or not) shows no more than API.md allows: at most
/// BIN and last four of a card with six hidden, digits 9-12 of a normalized CNIC and nothing
/// of any other input, nothing of a security code, at most the last four (and never half) of
/// anything else. Every shown character is the value's own, in its place.
pub fn check_mask(ty: DataType, value: &str) {
    let masked = mask(ty, value);
    if ty == DataType::Cnic {
        let normalized = value.len() == 13 && value.bytes().all(|b| b.is_ascii_digit());
        if normalized {
            assert_eq!(masked, format!("*****-***{}-*", &value[8..12]));
        } else {
            assert_eq!(masked, "*****-*******-*", "a non-CNIC shows nothing");
        }
        return;
    }
    let chars: Vec<char> = value.chars().collect();
    let shown: Vec<char> = masked.chars().collect();
    assert_eq!(shown.len(), chars.len(), "{ty}: the mask keeps the length");
    let (prefix, suffix) = allowed_positions(ty, value);
    let tail_from = chars.len() - suffix;
    for (i, (&m, &c)) in shown.iter().zip(&chars).enumerate() {
        if m != MASK {
            assert_eq!(m, c, "{ty}: a shown character is not the value's");
            assert!(
                i < prefix || i >= tail_from,
                "{ty}: position {i} of {} shows",
                chars.len()
            );
        }
    }
}

/// A format-preserving token for `normalized`, checked against its type's shape: same
/// layout, never the value itself, and a card token keeps BIN and last four but fails Luhn.
/// `raw` decides the CNIC layout. With a misbehaving digit source the answer must be an
/// `internal` error, never a token.
pub fn check_preserving(ty: DataType, normalized: &str, raw: &str, digits: &[u8], strict: bool) {
    let mut source = DigitSource::new(digits, strict);
    let mut next = || source.next_digit();
    let token = match preserving_token(ty, normalized, raw, &mut next) {
        Ok(t) => t,
        Err(e) => {
            // A valid value leaves only the digit source to blame (stuck, or out of range),
            // or a type without such tokens.
            let expected = if tijori_types::format::supports_preserving(ty) {
                ErrorCode::Internal
            } else {
                ErrorCode::UnsupportedFormat
            };
            assert_eq!(e.code, expected, "{ty}: preserving token refused");
            return;
        }
    };
    assert_ne!(token, normalized, "{ty}: the token is the value");
    match ty {
        DataType::CardNumber => {
            assert_eq!(token.len(), normalized.len());
            assert!(token.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(&token[..6], &normalized[..6], "BIN kept");
            assert_eq!(
                &token[token.len() - 4..],
                &normalized[normalized.len() - 4..],
                "last four kept"
            );
            assert!(!reference_luhn(&token), "a card token passes Luhn");
        }
        DataType::Cnic => {
            let b = raw.as_bytes();
            let dashed = b.len() == 15 && b[5] == b'-' && b[13] == b'-';
            let digits: String = token.chars().filter(char::is_ascii_digit).collect();
            assert_eq!(digits.len(), 13);
            assert_ne!(digits, normalized, "the CNIC token is the value");
            if dashed {
                assert_eq!(token.len(), 15);
                assert_eq!((&token[5..6], &token[13..14]), ("-", "-"));
            } else {
                assert_eq!(token, digits);
            }
        }
        DataType::PkMobile => {
            assert_eq!(token.len(), 13);
            assert!(token.starts_with("+923"));
            assert!(token[1..].bytes().all(|b| b.is_ascii_digit()));
        }
        DataType::Iban | DataType::BankAccount | DataType::CardSecurityCode | DataType::Text => {
            panic!("{ty} has no format-preserving tokens, yet one was made")
        }
    }
}

/// Removes what runs that have ended left in `base`: directories named `<prefix><pid>` or
/// `<prefix><pid>-…` whose process is gone (libFuzzer exits without dropping statics, so a
/// target cannot clean up after itself).
pub fn remove_stale_scratch(base: &std::path::Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && pid != std::process::id().to_string()
            && !std::path::Path::new("/proc").join(pid).exists()
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
