//! The password rules for operators (PCI DSS 8.3.6 and 8.3.7): at least 12 characters with
//! letters and digits, not one of the commonly tried passwords, not containing the username,
//! and not one of the last four. Checking the history costs one Argon2 run per remembered
//! password, so it happens only when a password is set.

use tijori_crypto::verify_password;

use crate::CoreError;

/// Fewest characters (PCI DSS 8.3.6).
const MIN_LEN: usize = 12;
/// Most characters: enough for any passphrase, few enough to bound the hashing work.
const MAX_LEN: usize = 256;
/// How many passwords (the current one included) a new one must differ from (8.3.7).
pub(crate) const REMEMBERED: usize = 4;

const COMMON: &str = include_str!("common-passwords.txt");

/// Checks the rules that need no stored hash.
pub(crate) fn check_rules(password: &str, username: &str) -> Result<(), CoreError> {
    let len = password.chars().count();
    if len < MIN_LEN {
        return Err(CoreError::InvalidRequest(
            "the password is too short: use at least 12 characters, with letters and digits",
        ));
    }
    if len > MAX_LEN {
        return Err(CoreError::InvalidRequest(
            "the password is too long: use at most 256 characters",
        ));
    }
    if !password.chars().any(char::is_alphabetic) || !password.chars().any(|c| c.is_ascii_digit()) {
        return Err(CoreError::InvalidRequest(
            "the password needs both letters and digits",
        ));
    }
    let lower = password.to_lowercase();
    if username.len() >= 3 && lower.contains(&username.to_lowercase()) {
        return Err(CoreError::InvalidRequest(
            "the password must not contain the username",
        ));
    }
    let common = COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .any(|l| l == lower);
    if common {
        return Err(CoreError::InvalidRequest(
            "the password is one of the most commonly tried ones; choose another",
        ));
    }
    Ok(())
}

/// Refuses a password equal to any of `previous` (PHC strings, newest first; the first
/// [`REMEMBERED`] count). Runs one Argon2 verification per entry: call off the async workers.
pub(crate) fn check_not_reused(password: &str, previous: &[&str]) -> Result<(), CoreError> {
    if previous
        .iter()
        .take(REMEMBERED)
        .any(|hash| verify_password(password, hash))
    {
        return Err(CoreError::InvalidRequest(
            "the password was used recently: choose one that differs from your last four",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert!(check_rules("kite-river-42-lantern", "amina").is_ok());
        for bad in [
            "short1a",           // too short
            "onlylettershere",   // no digit
            "123456789012345",   // no letter
            "Password1234",      // common, any case
            "PAKISTAN@123",      // common
            "my-amina-key-2026", // holds the username
        ] {
            assert!(check_rules(bad, "amina").is_err(), "{bad}");
        }
        assert!(check_rules(&"a1".repeat(129), "amina").is_err(), "too long");
        // Letters of any script count.
        assert!(check_rules("تجوری-محفوظ-2026", "amina").is_ok());
    }

    #[test]
    fn every_listed_password_would_otherwise_pass() {
        for line in COMMON
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let len = line.chars().count();
            assert!(len >= MIN_LEN, "{line}: the length rule refuses it already");
            assert!(
                line.chars().any(char::is_alphabetic) && line.chars().any(|c| c.is_ascii_digit()),
                "{line}"
            );
        }
    }

    #[test]
    fn history() {
        let old: Vec<String> = ["first-pass-0001", "second-pass-002"]
            .iter()
            .map(|p| tijori_crypto::hash_password(p).unwrap())
            .collect();
        let refs: Vec<&str> = old.iter().map(String::as_str).collect();
        assert!(check_not_reused("second-pass-002", &refs).is_err());
        assert!(check_not_reused("third-pass-0003", &refs).is_ok());
    }
}
