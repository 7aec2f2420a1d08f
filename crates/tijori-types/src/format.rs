//! Shapes of format-preserving tokens (API.md, "Tokens": `format: "preserving"`). This module
//! owns which types have such a shape and what it is: a card token keeps the BIN and last four
//! but always fails the Luhn check, a CNIC token keeps the input's layout, a mobile token is
//! `+923` and nine digits. It must never generate randomness itself (the caller supplies a
//! CSPRNG-backed digit source, so the choice of generator stays with the crypto crate) and must
//! never return a token equal to the value, or a card token a payment system could accept.

use crate::validate::luhn_valid;
use crate::{normalize, DataType, ErrorCode, ValidationError};

/// With a uniform digit source a card redraw is needed with probability at most 0.1 (one
/// Luhn-valid middle in ten, the value itself among them), so 128 draws all failing means the
/// source is broken, not unlucky (p <= 1e-128); stopping then beats looping forever.
const MAX_DRAWS: usize = 128;

const CARD_KEPT_PREFIX: usize = 6;
const CARD_KEPT_SUFFIX: usize = 4;
const MOBILE_PREFIX: &str = "+923";
const MOBILE_RANDOM_DIGITS: usize = 9;
const CNIC_DIGITS: usize = 13;

/// Whether `ty` has a format-preserving token shape.
pub const fn supports_preserving(ty: DataType) -> bool {
    matches!(
        ty,
        DataType::CardNumber | DataType::Cnic | DataType::PkMobile
    )
}

/// Refuses format `preserving` for a type that has no format-preserving shape.
pub fn check_preserving(ty: DataType) -> Result<(), ValidationError> {
    if supports_preserving(ty) {
        Ok(())
    } else {
        Err(unsupported())
    }
}

fn unsupported() -> ValidationError {
    ValidationError::new(
        ErrorCode::UnsupportedFormat,
        "format \"preserving\" is supported only for card_number, cnic and pk_mobile; \
         use format \"random\" for this type",
    )
}

/// A format-preserving token for a value of `ty`. `normalized` is the value's normalized form,
/// `raw` the value as submitted (it decides the CNIC layout), and `digit` a source of uniformly
/// random digits 0..=9 backed by a CSPRNG.
pub fn preserving_token(
    ty: DataType,
    normalized: &str,
    raw: &str,
    digit: &mut dyn FnMut() -> u8,
) -> Result<String, ValidationError> {
    // Re-normalizing is cheap and idempotent; it means a caller that mixes up its arguments
    // gets a validation error instead of a token shaped after garbage.
    match ty {
        DataType::CardNumber => card_number(&normalize(ty, normalized)?, digit),
        DataType::Cnic => cnic(&normalize(ty, normalized)?, is_dashed_cnic(raw), digit),
        DataType::PkMobile => pk_mobile(&normalize(ty, normalized)?, digit),
        DataType::Iban | DataType::BankAccount | DataType::CardSecurityCode | DataType::Text => {
            Err(unsupported())
        }
    }
}

fn card_number(value: &str, digit: &mut dyn FnMut() -> u8) -> Result<String, ValidationError> {
    let (prefix, rest) = value.split_at(CARD_KEPT_PREFIX.min(value.len()));
    let (middle, suffix) = rest.split_at(rest.len().saturating_sub(CARD_KEPT_SUFFIX));
    let middle_len = middle.len();
    for _ in 0..MAX_DRAWS {
        let mut token = String::with_capacity(value.len());
        token.push_str(prefix);
        push_random_digits(&mut token, middle_len, digit)?;
        token.push_str(suffix);
        // A Luhn-valid token could be charged as a real card (someone else's); the value
        // itself is Luhn-valid, so this also rules out handing the value back.
        if !luhn_valid(&token) && token != value {
            return Ok(token);
        }
    }
    Err(broken_source())
}

fn pk_mobile(value: &str, digit: &mut dyn FnMut() -> u8) -> Result<String, ValidationError> {
    redraw_until(value, digit, |digit| {
        let mut token = String::with_capacity(MOBILE_PREFIX.len() + MOBILE_RANDOM_DIGITS);
        token.push_str(MOBILE_PREFIX);
        push_random_digits(&mut token, MOBILE_RANDOM_DIGITS, digit)?;
        Ok(token)
    })
}

fn cnic(
    value: &str,
    dashed: bool,
    digit: &mut dyn FnMut() -> u8,
) -> Result<String, ValidationError> {
    redraw_until(value, digit, |digit| {
        let mut token = String::with_capacity(CNIC_DIGITS);
        push_random_digits(&mut token, CNIC_DIGITS, digit)?;
        Ok(token)
    })
    .map(|token| if dashed { dash_cnic(&token) } else { token })
}

/// Draws with `draw` until the result differs from `value`: a token equal to its value would
/// hand the value to anyone holding the token.
fn redraw_until(
    value: &str,
    digit: &mut dyn FnMut() -> u8,
    mut draw: impl FnMut(&mut dyn FnMut() -> u8) -> Result<String, ValidationError>,
) -> Result<String, ValidationError> {
    for _ in 0..MAX_DRAWS {
        let token = draw(&mut *digit)?;
        if token != value {
            return Ok(token);
        }
    }
    Err(broken_source())
}

fn push_random_digits(
    out: &mut String,
    count: usize,
    digit: &mut dyn FnMut() -> u8,
) -> Result<(), ValidationError> {
    for _ in 0..count {
        let d = digit();
        // Folding an out-of-range value into 0..=9 would bias the token; a source that breaks
        // its contract is a bug to surface, not to paper over.
        if d > 9 {
            return Err(broken_source());
        }
        out.push(char::from(b'0' + d));
    }
    Ok(())
}

fn is_dashed_cnic(raw: &str) -> bool {
    let b = raw.as_bytes();
    b.len() == 15 && b.get(5) == Some(&b'-') && b.get(13) == Some(&b'-')
}

fn dash_cnic(digits: &str) -> String {
    match (digits.get(..5), digits.get(5..12), digits.get(12..)) {
        (Some(a), Some(b), Some(c)) => format!("{a}-{b}-{c}"),
        _ => digits.to_owned(),
    }
}

fn broken_source() -> ValidationError {
    ValidationError::new(
        ErrorCode::Internal,
        "the random digit source misbehaved; no format-preserving token was made",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A deterministic stand-in for the caller's CSPRNG (xorshift64*).
    fn seeded(mut state: u64) -> impl FnMut() -> u8 {
        state |= 1;
        move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u8 % 10
        }
    }

    /// Yields the given digits in order, then repeats them.
    fn scripted(digits: Vec<u8>) -> (impl FnMut() -> u8, std::rc::Rc<std::cell::Cell<usize>>) {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let counter = calls.clone();
        let source = move || {
            let i = counter.get();
            counter.set(i + 1);
            digits[i % digits.len()]
        };
        (source, calls)
    }

    fn digits_of(s: &str) -> Vec<u8> {
        s.bytes().map(|b| b - b'0').collect()
    }

    #[test]
    fn support_matrix() {
        for ty in DataType::ALL {
            let expected = matches!(
                ty,
                DataType::CardNumber | DataType::Cnic | DataType::PkMobile
            );
            assert_eq!(supports_preserving(ty), expected, "{ty}");
        }
    }

    #[test]
    fn unsupported_types_refused() {
        let mut source = seeded(1);
        for (ty, value) in [
            (DataType::Iban, "PK36SCBL0000001123456702"),
            (DataType::BankAccount, "AB123456"),
            (DataType::CardSecurityCode, "123"),
            (DataType::Text, "hello"),
        ] {
            let e = preserving_token(ty, value, value, &mut source).unwrap_err();
            assert_eq!(e.code, ErrorCode::UnsupportedFormat);
            assert!(e.message.contains("card_number, cnic and pk_mobile"));
            assert!(!e.message.contains(value));
        }
    }

    #[test]
    fn card_redraws_past_luhn_valid_and_identical_middles() {
        let value = "4111111111111111";
        let luhn_ok_middle = (0..1_000_000u32)
            .map(|m| format!("{m:06}"))
            .find(|m| m != "111111" && luhn_valid(&format!("411111{m}1111")))
            .unwrap();
        let good_middle = "000001";
        assert!(!luhn_valid(&format!("411111{good_middle}1111")));
        let script = [
            digits_of("111111"),
            digits_of(&luhn_ok_middle),
            digits_of(good_middle),
        ]
        .concat();
        let (mut source, calls) = scripted(script);
        let token = preserving_token(DataType::CardNumber, value, value, &mut source).unwrap();
        assert_eq!(token, format!("411111{good_middle}1111"));
        assert_eq!(calls.get(), 18);
    }

    #[test]
    fn twelve_digit_card_has_two_random_digits() {
        let value = "123456789015";
        // Middle "78" reproduces the value; the redraw must move past it.
        let (mut source, calls) = scripted(vec![7, 8, 0, 0]);
        let token = preserving_token(DataType::CardNumber, value, value, &mut source).unwrap();
        assert_eq!(calls.get(), 4);
        assert_eq!(&token[..6], "123456");
        assert_eq!(&token[8..], "9015");
        assert!(!luhn_valid(&token) && token != value);
    }

    #[test]
    fn stuck_source_is_an_error_not_a_hang() {
        let value = "4111111111111111";
        let (mut source, calls) = scripted(digits_of("111111"));
        let e = preserving_token(DataType::CardNumber, value, value, &mut source).unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
        assert_eq!(calls.get(), 6 * MAX_DRAWS);

        let mobile = "+923001234567";
        let (mut source, _) = scripted(digits_of("001234567"));
        let e = preserving_token(DataType::PkMobile, mobile, mobile, &mut source).unwrap_err();
        assert_eq!(e.code, ErrorCode::Internal);
    }

    #[test]
    fn out_of_range_digit_refused() {
        let mut source = || 10u8;
        for (ty, v) in [
            (DataType::CardNumber, "4111111111111111"),
            (DataType::Cnic, "3520212345671"),
            (DataType::PkMobile, "+923001234567"),
        ] {
            let e = preserving_token(ty, v, v, &mut source).unwrap_err();
            assert_eq!(e.code, ErrorCode::Internal);
        }
    }

    #[test]
    fn invalid_value_refused_with_its_own_code() {
        let mut source = seeded(7);
        let e = preserving_token(DataType::CardNumber, "4111111111111112", "", &mut source);
        assert_eq!(e.unwrap_err().code, ErrorCode::InvalidCardNumber);
        let e = preserving_token(DataType::Cnic, "35202-1234567", "", &mut source);
        assert_eq!(e.unwrap_err().code, ErrorCode::InvalidCnic);
    }

    #[test]
    fn cnic_layout_follows_input() {
        let mut source = seeded(42);
        let dashed = preserving_token(
            DataType::Cnic,
            "3520212345671",
            "35202-1234567-1",
            &mut source,
        )
        .unwrap();
        assert_eq!(dashed.len(), 15);
        for (i, b) in dashed.bytes().enumerate() {
            assert_eq!(b == b'-', i == 5 || i == 13, "{dashed}");
            assert!(b == b'-' || b.is_ascii_digit());
        }
        assert_ne!(dashed.replace('-', ""), "3520212345671");
        let plain = preserving_token(
            DataType::Cnic,
            "3520212345671",
            "3520212345671",
            &mut source,
        )
        .unwrap();
        assert_eq!(plain.len(), 13);
        assert!(plain.bytes().all(|b| b.is_ascii_digit()));
    }

    #[test]
    fn cnic_redraws_the_value_itself() {
        let value = "3520212345671";
        let (mut source, calls) = scripted([digits_of(value), digits_of("0000000000000")].concat());
        let token = preserving_token(DataType::Cnic, value, value, &mut source).unwrap();
        assert_eq!(token, "0000000000000");
        assert_eq!(calls.get(), 26);
    }

    #[test]
    fn mobile_shape() {
        let value = "+923001234567";
        let (mut source, _) = scripted([digits_of("001234567"), digits_of("987654321")].concat());
        let token =
            preserving_token(DataType::PkMobile, value, "0300-1234567", &mut source).unwrap();
        assert_eq!(token, "+923987654321");
    }

    proptest! {
        #[test]
        fn card_tokens_keep_shape_and_fail_luhn(
            body in "[0-9]{11,18}",
            seed in any::<u64>(),
        ) {
            let value = (0..10).map(|d| format!("{body}{d}")).find(|s| luhn_valid(s)).unwrap();
            let mut source = seeded(seed);
            let token = preserving_token(DataType::CardNumber, &value, &value, &mut source).unwrap();
            let len = value.len();
            prop_assert_eq!(token.len(), len);
            prop_assert!(token.bytes().all(|b| b.is_ascii_digit()));
            prop_assert_eq!(&token[..6], &value[..6]);
            prop_assert_eq!(&token[len - 4..], &value[len - 4..]);
            prop_assert!(!luhn_valid(&token));
            prop_assert_ne!(&token, &value);
            // A failing-Luhn token is also refused if someone tries to store it as a card.
            prop_assert!(normalize(DataType::CardNumber, &token).is_err());
        }

        #[test]
        fn mobile_tokens_are_valid_pk_mobiles(sub in "[0-9]{9}", seed in any::<u64>()) {
            let value = format!("+923{sub}");
            let mut source = seeded(seed);
            let token = preserving_token(DataType::PkMobile, &value, &value, &mut source).unwrap();
            prop_assert_eq!(token.len(), 13);
            prop_assert!(token.starts_with("+923"));
            prop_assert!(token[1..].bytes().all(|b| b.is_ascii_digit()));
            prop_assert_ne!(&token, &value);
            prop_assert_eq!(normalize(DataType::PkMobile, &token).unwrap(), token);
        }

        #[test]
        fn cnic_tokens_keep_layout(digits in "[0-9]{13}", dashed in any::<bool>(), seed in any::<u64>()) {
            let raw = if dashed {
                format!("{}-{}-{}", &digits[..5], &digits[5..12], &digits[12..])
            } else {
                digits.clone()
            };
            let mut source = seeded(seed);
            let token = preserving_token(DataType::Cnic, &digits, &raw, &mut source).unwrap();
            prop_assert_eq!(token.len(), raw.len());
            prop_assert_eq!(normalize(DataType::Cnic, &token).is_ok(), true);
            prop_assert_ne!(token.replace('-', ""), digits);
        }
    }
}
