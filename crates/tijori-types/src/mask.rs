//! Masked display forms of normalized values (API.md, "Tokens": `masked`). This module owns how
//! much of a value a masked form may reveal: at most the first six and last four digits of a card
//! number (and never fewer than six hidden), at most four digits of a CNIC and never its last
//! (gender) digit, at most the last four characters of anything else, nothing of a card security
//! code. It must never reveal more than those rules allow, whatever it is handed: input that is
//! not in normalized form gets less shown, never more.

use crate::DataType;

const MASK: char = '*';

/// PCI DSS allows showing at most the first six and last four digits; keeping six hidden as
/// well means short (12-15 digit) numbers give up prefix digits rather than becoming guessable.
const CARD_MIN_HIDDEN: usize = 6;
const CARD_MAX_PREFIX: usize = 6;
const CARD_MAX_SUFFIX: usize = 4;

const OTHER_MAX_SUFFIX: usize = 4;

/// The layout every masked CNIC has, also used whole when the input is not a normalized CNIC.
const CNIC_FULLY_MASKED: &str = "*****-*******-*";

/// The masked form of a value already passed through [`crate::normalize`] for `ty`.
pub fn mask(ty: DataType, normalized: &str) -> String {
    match ty {
        DataType::CardNumber => card_number(normalized),
        DataType::Cnic => cnic(normalized),
        DataType::CardSecurityCode => normalized.chars().map(|_| MASK).collect(),
        DataType::Iban | DataType::PkMobile | DataType::BankAccount | DataType::Text => {
            tail_only(normalized)
        }
    }
}

fn card_number(normalized: &str) -> String {
    let len = normalized.chars().count();
    let suffix = len.saturating_sub(CARD_MIN_HIDDEN).min(CARD_MAX_SUFFIX);
    let prefix = len
        .saturating_sub(CARD_MIN_HIDDEN + suffix)
        .min(CARD_MAX_PREFIX);
    keep(normalized, len, prefix, suffix)
}

fn cnic(normalized: &str) -> String {
    let is_cnic = normalized.len() == 13 && normalized.bytes().all(|b| b.is_ascii_digit());
    match normalized.get(8..12) {
        // Digits 9-12: the last digit encodes gender and the leading groups region and family,
        // so only these four may show.
        Some(shown) if is_cnic => format!("*****-***{shown}-*"),
        _ => CNIC_FULLY_MASKED.to_owned(),
    }
}

/// Shows the last characters only while at least as many stay hidden, so a short value is
/// never mostly revealed.
fn tail_only(normalized: &str) -> String {
    let len = normalized.chars().count();
    let suffix = (len / 2).min(OTHER_MAX_SUFFIX);
    keep(normalized, len, 0, suffix)
}

/// Characters (not bytes: text may be multi-byte) outside the kept prefix and suffix become
/// the mask character.
fn keep(value: &str, len: usize, prefix: usize, suffix: usize) -> String {
    let tail_from = len.saturating_sub(suffix);
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < prefix || i >= tail_from {
                c
            } else {
                MASK
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn card_examples() {
        let m = |s| mask(DataType::CardNumber, s);
        assert_eq!(m("4111111111111111"), "411111******1111");
        assert_eq!(m("6205500000000000004"), "620550*********0004");
        assert_eq!(m("378282246310005"), "37828******0005");
        assert_eq!(m("30569309025904"), "3056******5904");
        assert_eq!(m("123456789015"), "12******9015");
    }

    #[test]
    fn card_never_shows_more_than_allowed_even_for_odd_input() {
        for len in 0..=40 {
            let value: String = (0..len)
                .map(|i| char::from(b'0' + (i % 9) as u8 + 1))
                .collect();
            let masked = mask(DataType::CardNumber, &value);
            assert_eq!(masked.chars().count(), len);
            let shown = masked.chars().filter(|&c| c != MASK).count();
            let hidden = len - shown;
            assert!(shown <= CARD_MAX_PREFIX + CARD_MAX_SUFFIX, "len {len}");
            assert!(hidden >= CARD_MIN_HIDDEN.min(len), "len {len}");
        }
    }

    #[test]
    fn cnic_examples() {
        assert_eq!(mask(DataType::Cnic, "3520212345671"), "*****-***4567-*");
        assert_eq!(mask(DataType::Cnic, "4210112345678"), "*****-***4567-*");
        // Not normalized: nothing shows rather than guessing where the digits are.
        for odd in [
            "35202-1234567-1",
            "352021234567",
            "35202123456789",
            "",
            "352021234567é",
        ] {
            assert_eq!(mask(DataType::Cnic, odd), CNIC_FULLY_MASKED, "{odd:?}");
        }
    }

    #[test]
    fn other_type_examples() {
        assert_eq!(
            mask(DataType::Iban, "PK36SCBL0000001123456702"),
            "********************6702"
        );
        assert_eq!(mask(DataType::PkMobile, "+923001234567"), "*********4567");
        assert_eq!(mask(DataType::BankAccount, "AB1234"), "***234");
        assert_eq!(mask(DataType::BankAccount, "ABCDEFGH"), "****EFGH");
        assert_eq!(mask(DataType::Text, "a"), "*");
        assert_eq!(mask(DataType::Text, "ab"), "*b");
        assert_eq!(mask(DataType::Text, "abcde"), "***de");
        assert_eq!(mask(DataType::Text, "کراچی پاکستان"), "*********ستان");
        assert_eq!(mask(DataType::Text, "🔑🔑🔑x"), "**🔑x");
        assert_eq!(mask(DataType::Text, ""), "");
    }

    #[test]
    fn security_code_fully_hidden() {
        assert_eq!(mask(DataType::CardSecurityCode, "123"), "***");
        assert_eq!(mask(DataType::CardSecurityCode, "0123"), "****");
    }

    fn shown_positions(value: &str, masked: &str) -> usize {
        value
            .chars()
            .zip(masked.chars())
            .filter(|(_, m)| *m != MASK)
            .count()
    }

    proptest! {
        #[test]
        fn card_mask_keeps_bin_and_last_four(digits in "[0-9]{12,19}") {
            let masked = mask(DataType::CardNumber, &digits);
            let len = digits.len();
            let prefix = (len - 10).min(6);
            prop_assert_eq!(masked.len(), len);
            prop_assert_eq!(&masked[..prefix], &digits[..prefix]);
            prop_assert_eq!(&masked[len - 4..], &digits[len - 4..]);
            prop_assert!(masked[prefix..len - 4].chars().all(|c| c == MASK));
            prop_assert!(len - prefix - 4 >= CARD_MIN_HIDDEN);
        }

        #[test]
        fn cnic_mask_shows_only_digits_9_to_12(digits in "[0-9]{13}") {
            let masked = mask(DataType::Cnic, &digits);
            prop_assert_eq!(masked, format!("*****-***{}-*", &digits[8..12]));
        }

        #[test]
        fn other_masks_show_at_most_last_four_and_never_half(ty_i in 0usize..4, value in any::<String>()) {
            let ty = [DataType::Iban, DataType::PkMobile, DataType::BankAccount, DataType::Text][ty_i];
            let masked = mask(ty, &value);
            let len = value.chars().count();
            prop_assert_eq!(masked.chars().count(), len);
            let shown = (len / 2).min(4);
            let head: String = masked.chars().take(len - shown).collect();
            let tail: String = masked.chars().skip(len - shown).collect();
            let value_tail: String = value.chars().skip(len - shown).collect();
            prop_assert!(head.chars().all(|c| c == MASK));
            prop_assert_eq!(tail, value_tail);
            prop_assert!(shown_positions(&value, &masked) <= shown);
        }

        #[test]
        fn security_code_mask_shows_nothing(value in "[0-9]{3,4}") {
            let masked = mask(DataType::CardSecurityCode, &value);
            prop_assert_eq!(masked, "*".repeat(value.len()));
        }
    }
}
