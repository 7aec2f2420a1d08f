//! Validation and normalization of submitted values, one rule per [`DataType`] (API.md, "Data
//! types"). This module owns the decision of what a valid value is and the single normalized
//! form it is stored, indexed and compared in. It must never put the submitted value, or any
//! part of it, into an error: every message is a fixed string, so a rejected card number cannot
//! leak through a response body, a log line or a `Debug` dump.

use crate::{DataType, ErrorCode};

/// Why a value was refused: a stable code plus a fixed, value-free explanation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub code: ErrorCode,
    pub message: &'static str,
}

impl ValidationError {
    pub(crate) const fn new(code: ErrorCode, message: &'static str) -> Self {
        ValidationError { code, message }
    }
}

/// The largest `text` value, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// No structured value is anywhere near this long even with a separator between every
/// character (an IBAN is at most 34 characters); the cap keeps megabyte-sized strings of spaces
/// from being accepted as, say, a card number.
const MAX_STRUCTURED_BYTES: usize = 128;

const CARD_LENGTHS: std::ops::RangeInclusive<usize> = 12..=19;
const BANK_ACCOUNT_LENGTHS: std::ops::RangeInclusive<usize> = 6..=34;

/// Checks `raw` against the rules of `ty` and returns its normalized form.
pub fn normalize(ty: DataType, raw: &str) -> Result<String, ValidationError> {
    if ty == DataType::Text {
        return text(raw);
    }
    let code = code_for(ty);
    if raw.len() > MAX_STRUCTURED_BYTES {
        return Err(ValidationError::new(
            code,
            "value is too long for this type; send it without padding or repeated separators",
        ));
    }
    if raw.chars().any(|c| !(c.is_ascii_graphic() || c == ' ')) {
        return Err(ValidationError::new(
            code,
            "value contains non-ASCII or control characters; send only the letters, digits and \
             separators this type allows",
        ));
    }
    match ty {
        DataType::CardNumber => card_number(raw),
        DataType::Iban => iban(raw),
        DataType::Cnic => cnic(raw),
        DataType::PkMobile => pk_mobile(raw),
        DataType::BankAccount => bank_account(raw),
        DataType::CardSecurityCode => card_security_code(raw),
        DataType::Text => text(raw),
    }
}

/// The Luhn (mod 10) check over a string of ASCII digits. Anything else, including the empty
/// string, is not a valid Luhn number.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum = digits.bytes().rev().enumerate().fold(0u32, |acc, (i, b)| {
        let d = u32::from(b - b'0');
        let v = if i % 2 == 1 {
            let doubled = d * 2;
            if doubled > 9 {
                doubled - 9
            } else {
                doubled
            }
        } else {
            d
        };
        // Reducing as we go keeps arbitrarily long input from overflowing.
        (acc + v) % 10
    });
    sum == 0
}

fn code_for(ty: DataType) -> ErrorCode {
    match ty {
        DataType::CardNumber => ErrorCode::InvalidCardNumber,
        DataType::Iban => ErrorCode::InvalidIban,
        DataType::Cnic => ErrorCode::InvalidCnic,
        DataType::PkMobile => ErrorCode::InvalidPkMobile,
        DataType::BankAccount | DataType::CardSecurityCode | DataType::Text => {
            ErrorCode::InvalidValue
        }
    }
}

fn card_number(raw: &str) -> Result<String, ValidationError> {
    let err = |message| ValidationError::new(ErrorCode::InvalidCardNumber, message);
    let mut digits = String::with_capacity(19);
    for c in raw.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' => {}
            _ => {
                return Err(err(
                    "card number may contain only digits, spaces and dashes",
                ))
            }
        }
    }
    if !CARD_LENGTHS.contains(&digits.len()) {
        return Err(err("card number must have 12 to 19 digits"));
    }
    if !luhn_valid(&digits) {
        return Err(err(
            "card number fails the Luhn check; check it for a mistyped digit",
        ));
    }
    Ok(digits)
}

fn iban(raw: &str) -> Result<String, ValidationError> {
    let err = |message| ValidationError::new(ErrorCode::InvalidIban, message);
    let mut s = String::with_capacity(34);
    for c in raw.chars() {
        if c == ' ' {
            continue;
        }
        if !c.is_ascii_alphanumeric() {
            return Err(err("IBAN may contain only letters, digits and spaces"));
        }
        s.push(c.to_ascii_uppercase());
    }
    let (country, check) = match s.as_bytes() {
        [c1, c2, d1, d2, ..] => ([*c1, *c2], [*d1, *d2]),
        _ => {
            return Err(err(
                "IBAN is too short; it starts with a country code and two check digits",
            ))
        }
    };
    if !country.iter().all(u8::is_ascii_alphabetic) {
        return Err(err("IBAN must start with a two-letter country code"));
    }
    if !check.iter().all(u8::is_ascii_digit) {
        return Err(err(
            "IBAN must have two check digits after the country code",
        ));
    }
    let expected = iban_length(country)
        .ok_or_else(|| err("IBAN country code is not in the SWIFT IBAN registry"))?;
    if s.len() != expected {
        return Err(err(
            "IBAN has the wrong length for its country; check for a missing or extra character",
        ));
    }
    // ISO 7064 MOD 97-10 only ever produces 02..=98; 00, 01 and 99 would pass the mod-97 test
    // as aliases of 97, 98 and 02 but are never issued.
    let check_value = (check[0] - b'0') * 10 + (check[1] - b'0');
    if !(2..=98).contains(&check_value) || iban_mod97(s.as_bytes()) != 1 {
        return Err(err(
            "IBAN check digits do not match; check it for a mistyped character",
        ));
    }
    Ok(s)
}

/// The remainder mod 97 of an upper-case alphanumeric IBAN moved into check position (first
/// four characters to the end, letters as 10..=35), computed piecewise so no big integers are
/// needed.
pub(crate) fn iban_mod97(iban: &[u8]) -> u32 {
    let (head, tail) = iban.split_at(iban.len().min(4));
    tail.iter().chain(head).fold(0u32, |r, &b| {
        if b.is_ascii_digit() {
            (r * 10 + u32::from(b - b'0')) % 97
        } else {
            (r * 100 + u32::from(b.to_ascii_uppercase().saturating_sub(b'A')) + 10) % 97
        }
    })
}

fn iban_length(country: [u8; 2]) -> Option<usize> {
    IBAN_LENGTHS
        .binary_search_by(|(code, _)| code.as_bytes().cmp(&country[..]))
        .ok()
        .and_then(|i| IBAN_LENGTHS.get(i))
        .map(|(_, len)| usize::from(*len))
}

/// Total IBAN length per country code, from the SWIFT IBAN Registry (ISO 13616). Sorted by code
/// for binary search. Territories that issue IBANs under another code (Åland under FI, the
/// French overseas departments under FR, Jersey/Guernsey/Man under GB) are not listed: their
/// IBANs carry the parent's code.
#[rustfmt::skip]
const IBAN_LENGTHS: [(&str, u8); 89] = [
    ("AD", 24), ("AE", 23), ("AL", 28), ("AT", 20), ("AZ", 28), ("BA", 20), ("BE", 16),
    ("BG", 22), ("BH", 22), ("BI", 27), ("BR", 29), ("BY", 28), ("CH", 21), ("CR", 22),
    ("CY", 28), ("CZ", 24), ("DE", 22), ("DJ", 27), ("DK", 18), ("DO", 28), ("EE", 20),
    ("EG", 29), ("ES", 24), ("FI", 18), ("FK", 18), ("FO", 18), ("FR", 27), ("GB", 22),
    ("GE", 22), ("GI", 23), ("GL", 18), ("GR", 27), ("GT", 28), ("HN", 28), ("HR", 21),
    ("HU", 28), ("IE", 22), ("IL", 23), ("IQ", 23), ("IS", 26), ("IT", 27), ("JO", 30),
    ("KW", 30), ("KZ", 20), ("LB", 28), ("LC", 32), ("LI", 21), ("LT", 20), ("LU", 20),
    ("LV", 21), ("LY", 25), ("MC", 27), ("MD", 24), ("ME", 22), ("MK", 19), ("MN", 20),
    ("MR", 27), ("MT", 31), ("MU", 30), ("NI", 28), ("NL", 18), ("NO", 15), ("OM", 23),
    ("PK", 24), ("PL", 28), ("PS", 29), ("PT", 25), ("QA", 29), ("RO", 24), ("RS", 22),
    ("RU", 33), ("SA", 24), ("SC", 31), ("SD", 18), ("SE", 24), ("SI", 19), ("SK", 24),
    ("SM", 27), ("SO", 23), ("ST", 25), ("SV", 28), ("TL", 23), ("TN", 24), ("TR", 26),
    ("UA", 29), ("VA", 22), ("VG", 24), ("XK", 20), ("YE", 30),
];

fn cnic(raw: &str) -> Result<String, ValidationError> {
    // Only the two layouts NADRA prints are accepted: a dash anywhere else usually means a
    // digit was dropped or swapped with its neighbour group.
    let plain = raw.len() == 13 && raw.bytes().all(|b| b.is_ascii_digit());
    let dashed = raw.len() == 15
        && raw.bytes().enumerate().all(|(i, b)| {
            if i == 5 || i == 13 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !(plain || dashed) {
        return Err(ValidationError::new(
            ErrorCode::InvalidCnic,
            "CNIC must be 13 digits, written as #####-#######-# or without dashes",
        ));
    }
    Ok(raw.chars().filter(char::is_ascii_digit).collect())
}

fn pk_mobile(raw: &str) -> Result<String, ValidationError> {
    let err = |message| ValidationError::new(ErrorCode::InvalidPkMobile, message);
    let (international, rest) = match raw.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    let mut digits = String::with_capacity(12);
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' => {}
            _ => {
                return Err(err(
                    "Pakistani mobile number may contain only digits, spaces, dashes and a \
                     leading +",
                ))
            }
        }
    }
    let national = match (international, digits.len()) {
        (_, 12) => digits.strip_prefix("92"),
        (false, 11) => digits.strip_prefix('0'),
        _ => None,
    }
    .ok_or_else(|| {
        err("Pakistani mobile number must be written as 03XXXXXXXXX, 923XXXXXXXXX or +923XXXXXXXXX")
    })?;
    if !national.starts_with('3') {
        return Err(err(
            "not a Pakistani mobile number: after the country code a mobile number starts with 3",
        ));
    }
    Ok(format!("+92{national}"))
}

fn bank_account(raw: &str) -> Result<String, ValidationError> {
    let err = |message| ValidationError::new(ErrorCode::InvalidValue, message);
    let mut s = String::with_capacity(34);
    for c in raw.chars() {
        match c {
            ' ' | '-' => {}
            c if c.is_ascii_alphanumeric() => s.push(c.to_ascii_uppercase()),
            _ => {
                return Err(err(
                    "bank account number may contain only letters, digits, spaces and dashes",
                ))
            }
        }
    }
    if !BANK_ACCOUNT_LENGTHS.contains(&s.len()) {
        return Err(err(
            "bank account number must have 6 to 34 letters and digits",
        ));
    }
    Ok(s)
}

fn card_security_code(raw: &str) -> Result<String, ValidationError> {
    if !matches!(raw.len(), 3 | 4) || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            ErrorCode::InvalidValue,
            "card security code must be exactly 3 or 4 digits, with no spaces",
        ));
    }
    Ok(raw.to_owned())
}

fn text(raw: &str) -> Result<String, ValidationError> {
    if raw.is_empty() {
        return Err(ValidationError::new(
            ErrorCode::InvalidValue,
            "text must not be empty",
        ));
    }
    if raw.len() > MAX_TEXT_BYTES {
        return Err(ValidationError::new(
            ErrorCode::InvalidValue,
            "text is longer than 64 KiB (65536 bytes of UTF-8); split or shorten it",
        ));
    }
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CARDS: &str = include_str!("../../../tests/vectors/cards.csv");
    const IBANS: &str = include_str!("../../../tests/vectors/iban.csv");
    const PK_IDS: &str = include_str!("../../../tests/vectors/pk_identifiers.csv");

    /// Rows of a header-first CSV without quoting, as (header-indexed) field vectors.
    fn rows<'a>(csv: &'a str, header: &[&str]) -> Vec<Vec<&'a str>> {
        let mut lines = csv.lines().map(str::trim_end).filter(|l| !l.is_empty());
        let head: Vec<&str> = lines.next().unwrap().split(',').collect();
        assert_eq!(head, header, "vector file header changed");
        let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
        for r in &rows {
            assert_eq!(r.len(), header.len(), "malformed vector row {r:?}");
        }
        assert!(!rows.is_empty());
        rows
    }

    fn code(ty: DataType, raw: &str) -> ErrorCode {
        normalize(ty, raw).unwrap_err().code
    }

    #[test]
    fn card_vectors() {
        let rows = rows(CARDS, &["number", "network", "length", "luhn_valid"]);
        for r in rows {
            let (number, len, valid) = (r[0], r[2].parse::<usize>().unwrap(), r[3] == "true");
            assert!(matches!(r[3], "true" | "false"));
            assert_eq!(number.len(), len, "{number}");
            assert_eq!(luhn_valid(number), valid, "{number}");
            if valid {
                assert_eq!(normalize(DataType::CardNumber, number).unwrap(), number);
                let spaced: String = number
                    .chars()
                    .enumerate()
                    .flat_map(|(i, c)| (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c]))
                    .collect();
                assert_eq!(normalize(DataType::CardNumber, &spaced).unwrap(), number);
            } else {
                assert_eq!(
                    code(DataType::CardNumber, number),
                    ErrorCode::InvalidCardNumber
                );
            }
        }
    }

    #[test]
    fn iban_vectors() {
        let rows = rows(IBANS, &["iban", "country", "length", "valid"]);
        for r in rows {
            let (iban, country, len, valid) = (r[0], r[1], r[2].parse::<usize>().unwrap(), r[3]);
            assert_eq!(&iban[..2], country);
            assert_eq!(iban.len(), len);
            match valid {
                "true" => {
                    assert_eq!(normalize(DataType::Iban, iban).unwrap(), iban);
                    let messy: String = iban
                        .chars()
                        .enumerate()
                        .flat_map(|(i, c)| {
                            (i > 0 && i % 4 == 0).then_some(' ').into_iter().chain([c])
                        })
                        .collect::<String>()
                        .to_lowercase();
                    assert_eq!(normalize(DataType::Iban, &messy).unwrap(), iban);
                }
                "false" => assert_eq!(code(DataType::Iban, iban), ErrorCode::InvalidIban),
                other => panic!("bad valid column {other}"),
            }
        }
    }

    #[test]
    fn pk_identifier_vectors() {
        let rows = rows(PK_IDS, &["type", "input", "valid", "normalized"]);
        for r in rows {
            let ty = DataType::parse(r[0]).unwrap();
            let (input, valid, expected) = (r[1], r[2], r[3]);
            match valid {
                "true" => assert_eq!(normalize(ty, input).unwrap(), expected, "{input}"),
                "false" => {
                    let want = match ty {
                        DataType::Cnic => ErrorCode::InvalidCnic,
                        DataType::PkMobile => ErrorCode::InvalidPkMobile,
                        other => panic!("unexpected type {other}"),
                    };
                    assert_eq!(code(ty, input), want, "{input}");
                }
                other => panic!("bad valid column {other}"),
            }
        }
    }

    #[test]
    fn luhn_edges() {
        assert!(luhn_valid("0"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("4111 1111 1111 1111"));
        assert!(!luhn_valid("411111111111111a"));
        assert!(!luhn_valid("４１１１"));
    }

    #[test]
    fn card_negatives() {
        let bad = [
            "4111111111111111a",
            "411111111111111O",
            "4111_1111_1111_1111",
            "4111.1111.1111.1111",
            "12345678903",          // 11 digits, Luhn-valid
            "12345678901234567894", // 20 digits, Luhn-valid
            "",
            " - ",
            "4111\t1111111111111",
            "４１１１１１１１１１１１１１１１",
            "+4111111111111111",
        ];
        for raw in bad {
            assert_eq!(
                code(DataType::CardNumber, raw),
                ErrorCode::InvalidCardNumber,
                "{raw:?}"
            );
        }
        assert!(luhn_valid("12345678903") && luhn_valid("12345678901234567894"));
        // 12 and 19 digits are the edges that must pass.
        assert_eq!(
            normalize(DataType::CardNumber, "1234-5678-9015").unwrap(),
            "123456789015"
        );
        assert!(luhn_valid("123456789015"));
        assert_eq!(
            normalize(DataType::CardNumber, " 4111-1111 1111-1111 ").unwrap(),
            "4111111111111111"
        );
    }

    #[test]
    fn iban_negatives() {
        let bad = [
            "PK36SCBL00000011234567021",   // one too long for PK
            "GB82WEST1234569876543",       // one short for GB
            "DE88370400440532013000",      // wrong check digits
            "GB82WEST12345698765433",      // BBAN typo
            "XX82WEST12345698765432",      // not a registry country
            "US64SVBKUS6S3300958879",      // not an IBAN country
            "1B82WEST12345698765432",      // country code not letters
            "GBX2WEST12345698765432",      // check digits not digits
            "GB82-WEST-1234-5698-7654-32", // dashes are not IBAN separators
            "GB82WEST1234569876543Ä",
            "GB8",
            "",
        ];
        for raw in bad {
            assert_eq!(code(DataType::Iban, raw), ErrorCode::InvalidIban, "{raw:?}");
        }
    }

    #[test]
    fn iban_check_digit_aliases_refused() {
        // Same mod-97 residue as a real IBAN's check digits, but 00/01/99 are never issued.
        let real = "BE71096123456769"; // check digits 71
        assert_eq!(normalize(DataType::Iban, real).unwrap(), real);
        let mut found_alias = false;
        for bban in 0..1000u32 {
            let body = format!("096123456{bban:03}");
            for alias in ["00", "01", "99"] {
                let candidate = format!("BE{alias}{body}");
                if iban_mod97(candidate.as_bytes()) == 1 {
                    found_alias = true;
                    assert_eq!(code(DataType::Iban, &candidate), ErrorCode::InvalidIban);
                }
            }
        }
        assert!(found_alias);
    }

    #[test]
    fn iban_table_is_sorted_and_matches_known_lengths() {
        assert!(IBAN_LENGTHS.windows(2).all(|w| w[0].0 < w[1].0));
        for (code, len) in IBAN_LENGTHS {
            assert!(code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()));
            assert!((15..=34).contains(&len), "{code}");
        }
        for (code, len) in [
            ("PK", 24),
            ("GB", 22),
            ("DE", 22),
            ("FR", 27),
            ("NO", 15),
            ("RU", 33),
        ] {
            let c = code.as_bytes();
            assert_eq!(iban_length([c[0], c[1]]), Some(len), "{code}");
        }
        assert_eq!(iban_length(*b"US"), None);
        assert_eq!(iban_length(*b"ZZ"), None);
        assert_eq!(iban_length(*b"AA"), None);
    }

    #[test]
    fn cnic_negatives() {
        for raw in [
            "35202-1234567-12",
            "352021234567",
            "35202 1234567 1",
            "3520-21234567-1",
            "35202-123456-71",
            "35202--1234567-1",
            "352021234567-1",
            "35202-12345671",
            "3520212345671 ",
            " 3520212345671",
            "352021234567A",
            "35202-1234567-A",
            "",
        ] {
            assert_eq!(code(DataType::Cnic, raw), ErrorCode::InvalidCnic, "{raw:?}");
        }
    }

    #[test]
    fn pk_mobile_cases() {
        for (raw, want) in [
            ("+923001234567", "+923001234567"),
            ("+92-300-1234567", "+923001234567"),
            ("0 3 0 0 1 2 3 4 5 6 7", "+923001234567"),
            ("92 345 1234567", "+923451234567"),
        ] {
            assert_eq!(normalize(DataType::PkMobile, raw).unwrap(), want);
        }
        for raw in [
            "+92 4235761234",   // landline after country code
            "924235761234",     // same, no plus
            "+920300123456",    // trunk 0 kept after the country code
            "0092 300 1234567", // international prefix not accepted
            "+03001234567",     // plus without country code
            "3001234567",       // no trunk prefix
            "030012345678",     // 12 digits starting 0
            "+9230012345678",   // one digit too many
            "+92300123456",     // one too few
            " +923001234567",   // plus must lead
            "+92+3001234567",
            "+92(300)1234567",
            "٠٣٠٠١٢٣٤٥٦٧",
            "",
        ] {
            assert_eq!(
                code(DataType::PkMobile, raw),
                ErrorCode::InvalidPkMobile,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn bank_account_cases() {
        assert_eq!(
            normalize(DataType::BankAccount, "ab-12 34").unwrap(),
            "AB1234"
        );
        assert_eq!(
            normalize(DataType::BankAccount, &"9".repeat(34)).unwrap(),
            "9".repeat(34)
        );
        for raw in [
            "12345",
            &"9".repeat(35),
            "12345/6",
            "1234 5é",
            "-----------",
            "12345\n6",
        ] {
            assert_eq!(
                code(DataType::BankAccount, raw),
                ErrorCode::InvalidValue,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn card_security_code_cases() {
        assert_eq!(normalize(DataType::CardSecurityCode, "123").unwrap(), "123");
        assert_eq!(
            normalize(DataType::CardSecurityCode, "0123").unwrap(),
            "0123"
        );
        for raw in ["12", "12345", "12a", " 123", "1 23", "١٢٣", ""] {
            assert_eq!(
                code(DataType::CardSecurityCode, raw),
                ErrorCode::InvalidValue,
                "{raw:?}"
            );
        }
    }

    #[test]
    fn text_cases() {
        let max = "é".repeat(MAX_TEXT_BYTES / 2);
        assert_eq!(max.len(), 65536);
        assert_eq!(normalize(DataType::Text, &max).unwrap(), max);
        assert_eq!(normalize(DataType::Text, "  a\tb\n ").unwrap(), "  a\tb\n ");
        assert_eq!(
            code(DataType::Text, &format!("{max}x")),
            ErrorCode::InvalidValue
        );
        assert_eq!(code(DataType::Text, ""), ErrorCode::InvalidValue);
    }

    #[test]
    fn oversized_structured_input_refused() {
        let padded = format!("4111111111111111{}", " ".repeat(200));
        assert_eq!(
            code(DataType::CardNumber, &padded),
            ErrorCode::InvalidCardNumber
        );
        assert_eq!(
            code(DataType::BankAccount, &"-".repeat(1 << 20)),
            ErrorCode::InvalidValue
        );
    }

    #[test]
    fn messages_never_contain_the_input() {
        let cases: &[(DataType, &str)] = &[
            (DataType::CardNumber, "4111111111111112"),
            (DataType::CardNumber, "4111-1111-1111-111X"),
            (DataType::CardNumber, "41111111111"),
            (DataType::Iban, "PK36SCBL0000001123456703"),
            (DataType::Iban, "ZZ36SCBL0000001123456703"),
            (DataType::Iban, "PK36SCBL000000112345670"),
            (DataType::Cnic, "35202-1234567"),
            (DataType::PkMobile, "04235761234"),
            (DataType::PkMobile, "+44 7700 900123"),
            (DataType::BankAccount, "1234"),
            (DataType::CardSecurityCode, "12"),
            (DataType::Text, ""),
        ];
        for &(ty, raw) in cases {
            let e = normalize(ty, raw).unwrap_err();
            let shown = format!("{e} {e:?}");
            let digits: String = raw.chars().filter(char::is_ascii_alphanumeric).collect();
            if !raw.is_empty() {
                assert!(!shown.contains(raw), "{ty}: message echoes input");
            }
            if digits.len() >= 3 {
                assert!(!shown.contains(&digits), "{ty}: message echoes input");
            }
            assert!(!e.message.is_empty());
        }
    }

    fn digits_to_string(ds: &[u8]) -> String {
        ds.iter().map(|d| char::from(b'0' + d)).collect()
    }

    fn valid_card() -> impl Strategy<Value = String> {
        (12usize..=19)
            .prop_flat_map(|n| proptest::collection::vec(0u8..10, n - 1))
            .prop_map(|body| {
                let body = digits_to_string(&body);
                (0..10)
                    .map(|d| format!("{body}{d}"))
                    .find(|s| luhn_valid(s))
                    .unwrap()
            })
    }

    fn valid_iban() -> impl Strategy<Value = String> {
        (0..IBAN_LENGTHS.len())
            .prop_flat_map(|i| {
                let (country, len) = IBAN_LENGTHS[i];
                let bban = proptest::collection::vec(
                    prop_oneof![b'0'..=b'9', b'A'..=b'Z'],
                    usize::from(len) - 4,
                );
                (Just(country), bban)
            })
            .prop_map(|(country, bban)| {
                let bban = String::from_utf8(bban).unwrap();
                let r = iban_mod97(format!("{country}00{bban}").as_bytes());
                format!("{country}{:02}{bban}", 98 - r)
            })
    }

    fn valid_cnic() -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, 13).prop_map(|d| digits_to_string(&d))
    }

    fn valid_mobile_subscriber() -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, 9).prop_map(|d| digits_to_string(&d))
    }

    /// Interleaves a separator choice (none, space, dash, space-dash-space) into every gap.
    fn with_separators(value: &str, seps: &[u8]) -> String {
        let mut out = String::new();
        for (i, c) in value.chars().enumerate() {
            if i > 0 {
                out.push_str(["", " ", "-", " - "][usize::from(seps[i % seps.len()] % 4)]);
            }
            out.push(c);
        }
        out
    }

    fn separators() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..4, 24)
    }

    proptest! {
        #[test]
        fn card_idempotent_and_separator_blind(card in valid_card(), seps in separators()) {
            let n = normalize(DataType::CardNumber, &card).unwrap();
            prop_assert_eq!(&n, &card);
            prop_assert_eq!(normalize(DataType::CardNumber, &n).unwrap(), n.clone());
            prop_assert_eq!(normalize(DataType::CardNumber, &with_separators(&card, &seps)).unwrap(), n);
        }

        #[test]
        fn card_with_a_non_digit_refused(card in valid_card(), at in 0usize..19, letter in b'A'..=b'z') {
            let mut s = card.into_bytes();
            let at = at % s.len();
            s[at] = letter;
            let s = String::from_utf8(s).unwrap();
            prop_assume!(!s.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(code(DataType::CardNumber, &s), ErrorCode::InvalidCardNumber);
        }

        #[test]
        fn iban_idempotent_case_and_space_blind(iban in valid_iban(), seps in separators(), lower in any::<bool>()) {
            let n = normalize(DataType::Iban, &iban).unwrap();
            prop_assert_eq!(&n, &iban);
            prop_assert_eq!(normalize(DataType::Iban, &n).unwrap(), n.clone());
            let spaced: String = iban.chars().enumerate().flat_map(|(i, c)| {
                (i > 0 && seps[i % seps.len()] % 2 == 1).then_some(' ').into_iter().chain([c])
            }).collect();
            let spaced = if lower { spaced.to_lowercase() } else { spaced };
            prop_assert_eq!(normalize(DataType::Iban, &spaced).unwrap(), n);
        }

        #[test]
        fn iban_single_digit_substitution_refused(iban in valid_iban(), at in 2usize..34, to in b'0'..=b'9') {
            // MOD 97-10 detects every single-digit substitution (97 is prime and divides no
            // d * 10^k); a letter swap changes the numeric length and carries no such promise.
            let mut s = iban.into_bytes();
            let at = at % s.len();
            prop_assume!(at >= 2 && s[at].is_ascii_digit() && s[at] != to);
            s[at] = to;
            let s = String::from_utf8(s).unwrap();
            prop_assert_eq!(code(DataType::Iban, &s), ErrorCode::InvalidIban);
        }

        #[test]
        fn cnic_both_layouts_agree(cnic in valid_cnic()) {
            let dashed = format!("{}-{}-{}", &cnic[..5], &cnic[5..12], &cnic[12..]);
            let n = normalize(DataType::Cnic, &cnic).unwrap();
            prop_assert_eq!(&n, &cnic);
            prop_assert_eq!(normalize(DataType::Cnic, &n).unwrap(), n.clone());
            prop_assert_eq!(normalize(DataType::Cnic, &dashed).unwrap(), n);
        }

        #[test]
        fn cnic_separators_elsewhere_refused(cnic in valid_cnic(), seps in separators()) {
            // Unlike cards and phones, a CNIC has exactly two accepted layouts.
            let s = with_separators(&cnic, &seps);
            let dashed = format!("{}-{}-{}", &cnic[..5], &cnic[5..12], &cnic[12..]);
            prop_assume!(s != cnic && s != dashed);
            prop_assert_eq!(code(DataType::Cnic, &s), ErrorCode::InvalidCnic);
        }

        #[test]
        fn mobile_forms_and_separators_agree(sub in valid_mobile_subscriber(), form in 0usize..3, seps in separators()) {
            let want = format!("+923{sub}");
            let digits = match form {
                0 => format!("03{sub}"),
                1 => format!("923{sub}"),
                _ => format!("923{sub}"),
            };
            let raw = with_separators(&digits, &seps);
            let raw = if form == 2 { format!("+{raw}") } else { raw };
            let n = normalize(DataType::PkMobile, &raw).unwrap();
            prop_assert_eq!(&n, &want);
            prop_assert_eq!(n.len(), 13);
            prop_assert_eq!(normalize(DataType::PkMobile, &n).unwrap(), n);
        }

        #[test]
        fn mobile_not_starting_with_3_refused(sub in valid_mobile_subscriber(), first in 0u8..10) {
            prop_assume!(first != 3);
            for raw in [format!("0{first}{sub}"), format!("92{first}{sub}"), format!("+92{first}{sub}")] {
                prop_assert_eq!(code(DataType::PkMobile, &raw), ErrorCode::InvalidPkMobile);
            }
        }

        #[test]
        fn bank_account_idempotent(acct in "[A-Za-z0-9]{6,34}", seps in separators()) {
            let n = normalize(DataType::BankAccount, &acct).unwrap();
            prop_assert_eq!(&n, &acct.to_ascii_uppercase());
            prop_assert_eq!(normalize(DataType::BankAccount, &n).unwrap(), n.clone());
            prop_assert_eq!(normalize(DataType::BankAccount, &with_separators(&acct, &seps)).unwrap(), n);
        }

        #[test]
        fn security_code_idempotent(csc in "[0-9]{3,4}") {
            let n = normalize(DataType::CardSecurityCode, &csc).unwrap();
            prop_assert_eq!(&n, &csc);
            prop_assert_eq!(normalize(DataType::CardSecurityCode, &n).unwrap(), n);
        }

        #[test]
        fn text_kept_as_given(text in any::<String>()) {
            prop_assume!(!text.is_empty());
            let n = normalize(DataType::Text, &text).unwrap();
            prop_assert_eq!(&n, &text);
            prop_assert_eq!(normalize(DataType::Text, &n).unwrap(), n);
        }

        #[test]
        fn never_panics_and_never_echoes(ty_i in 0usize..7, raw in any::<String>()) {
            let ty = DataType::ALL[ty_i];
            if let Err(e) = normalize(ty, &raw) {
                prop_assert!(raw.len() < 4 || !e.message.contains(&raw));
            }
        }
    }
}
