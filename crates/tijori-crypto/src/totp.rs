//! Time-based one-time passwords (RFC 6238 as authenticator apps use them: HMAC-SHA-1, six
//! digits, 30-second steps, a 160-bit secret), over the `totp-rs` crate. This module only
//! computes and matches codes; the rule that a code is accepted once (replay) is the caller's,
//! which is why [`TotpSecret::matching_step`] answers *which* step a code belongs to.

use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::{random_bytes, CryptoError};

/// Seconds per step.
pub const TOTP_STEP: u64 = 30;
/// Digits per code.
const DIGITS: usize = 6;
/// Secret length in bytes (160 bits, RFC 4226's recommendation).
pub const TOTP_SECRET_LEN: usize = 20;

/// An operator's TOTP secret. No `Debug`, `Clone` or `Serialize`; zeroized on drop (totp-rs's
/// `zeroize` feature).
pub struct TotpSecret(TOTP);

impl TotpSecret {
    /// A fresh secret from the OS CSPRNG.
    pub fn generate() -> Result<TotpSecret, CryptoError> {
        let bytes = Zeroizing::new(random_bytes::<TOTP_SECRET_LEN>()?);
        TotpSecret::from_bytes(bytes.as_slice())
    }

    /// A secret from its raw bytes (as stored, once decrypted).
    pub fn from_bytes(bytes: &[u8]) -> Result<TotpSecret, CryptoError> {
        // Skew 0: the drift window is applied by `matching_step`, which must know the step.
        TOTP::new(Algorithm::SHA1, DIGITS, 0, TOTP_STEP, bytes.to_vec())
            .map(TotpSecret)
            .map_err(|_| CryptoError::Malformed("a TOTP secret must be at least 128 bits"))
    }

    /// The raw secret, for encryption at rest. Every call site handles key material.
    pub fn expose_secret(&self) -> &[u8] {
        &self.0.secret
    }

    /// The `otpauth://` URI an authenticator app reads (from a QR code or pasted).
    /// `issuer` and `account` must be URI-safe (letters, digits, `.`, `_`, `-`).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        format!(
            "otpauth://totp/{issuer}:{account}?secret={}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={TOTP_STEP}",
            self.base32()
        )
    }

    /// The secret in base32, for typing into an app by hand.
    pub fn base32(&self) -> String {
        self.0.get_secret_base32()
    }

    /// The code of time `unix` (for tests and tools).
    pub fn code_at(&self, unix: u64) -> String {
        self.0.generate(unix)
    }

    /// The step (`unix / 30`) whose code `code` is, looking `drift` steps either side of the
    /// step of `now`; `None` if it is none of them. Each candidate is compared in constant
    /// time, and all of them are always compared.
    pub fn matching_step(&self, code: &str, now: u64, drift: u64) -> Option<u64> {
        let here = now / TOTP_STEP;
        let mut found = None;
        for step in here.saturating_sub(drift)..=here.saturating_add(drift) {
            let expected = self.0.generate(step * TOTP_STEP);
            let same = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes());
            if bool::from(same) && found.is_none() {
                found = Some(step);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B (tests/vectors/totp.csv: SHA-1, 8 digits, ASCII secret
    /// `12345678901234567890`). A six-digit code is the same number modulo 10^6: the last six.
    #[test]
    fn rfc6238_vectors() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        let csv = include_str!("../../../tests/vectors/totp.csv");
        let mut rows = 0;
        for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split(',').collect();
            let (t, digits, code) = (f[0].parse::<u64>().unwrap(), f[1], f[2]);
            assert_eq!(digits, "8");
            assert_eq!(s.code_at(t), code[2..], "t={t}");
            rows += 1;
        }
        assert_eq!(rows, 6);
    }

    #[test]
    fn drift_window_is_one_step_each_side() {
        let s = TotpSecret::generate().unwrap();
        let now = 1_700_000_015;
        let step = now / TOTP_STEP;
        for d in [-1i64, 0, 1] {
            let t = (step as i64 + d) as u64 * TOTP_STEP;
            assert_eq!(s.matching_step(&s.code_at(t), now, 1), Some(t / TOTP_STEP));
        }
        for d in [-2i64, 2] {
            let t = (step as i64 + d) as u64 * TOTP_STEP;
            let code = s.code_at(t);
            // A code of a step two away may by chance equal one inside the window.
            let inside =
                (-1..=1).any(|k| s.code_at(((step as i64 + k) as u64) * TOTP_STEP) == code);
            assert_eq!(s.matching_step(&code, now, 1).is_some(), inside);
        }
        assert_eq!(s.matching_step("12345", now, 1), None);
        assert_eq!(s.matching_step("", now, 1), None);
    }

    #[test]
    fn uri_carries_the_parameters() {
        let s = TotpSecret::from_bytes(b"12345678901234567890").unwrap();
        assert_eq!(
            s.otpauth_uri("Tijori", "amina"),
            "otpauth://totp/Tijori:amina?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Tijori&algorithm=SHA1&digits=6&period=30"
        );
        assert!(TotpSecret::from_bytes(&[1u8; 15]).is_err());
        assert_eq!(s.expose_secret().len(), 20);
    }
}
