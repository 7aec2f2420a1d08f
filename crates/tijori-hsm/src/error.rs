//! Errors of opening a PKCS#11 root of trust. Each message names the module, token or key it is
//! about and says what the operator should do. None of them ever holds a PIN or key bytes: the
//! variants carry only paths, labels, slot ids and PKCS#11 return-code names.
//!
//! Wrap and unwrap do not use this type: behind [`tijori_crypto::KeyProvider`] they fail with
//! [`tijori_crypto::CryptoError`], and an unwrap only ever with the opaque `DecryptionFailed`.

use cryptoki::error::{Error as P11Error, RvError};

/// What can go wrong when opening a [`crate::Pkcs11Provider`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HsmError {
    /// The module path does not exist.
    #[error(
        "PKCS#11 module {module} does not exist: install the HSM vendor's client library \
         (for SoftHSM2: apt-get install softhsm2) or correct the module path"
    )]
    ModuleMissing { module: String },
    /// The module exists but could not be loaded or initialized.
    #[error("PKCS#11 module {module} could not be loaded or initialized: {reason}")]
    Module { module: String, reason: String },
    /// Neither a token label nor a slot was configured.
    #[error("no token chosen in PKCS#11 module {module}: configure a token label (or a slot id)")]
    NoTokenChosen { module: String },
    /// No token carries the configured label.
    #[error(
        "no token labelled '{label}' in PKCS#11 module {module} (tokens present: {present}): \
         create it with `softhsm2-util --init-token --free --label {label}` (or your HSM's own \
         tool), check SOFTHSM2_CONF if you use SoftHSM2, and restart the vault: a module reads \
         its token list once per process"
    )]
    TokenNotFound {
        label: String,
        module: String,
        present: String,
    },
    /// More than one token carries the configured label.
    #[error(
        "{count} tokens are labelled '{label}' in PKCS#11 module {module}: relabel all but one, \
         or choose the token by slot id"
    )]
    TokenAmbiguous {
        label: String,
        module: String,
        count: usize,
    },
    /// No initialized token is in the configured slot.
    #[error(
        "no initialized token in slot {slot} of PKCS#11 module {module} (tokens present: \
         {present}): choose another slot, or better a token label"
    )]
    SlotNotFound {
        slot: u64,
        module: String,
        present: String,
    },
    /// The token does not offer AES-GCM encryption and decryption.
    #[error(
        "token {token} does not offer CKM_AES_GCM for encrypt and decrypt, which this root of \
         trust needs: use an HSM (or firmware) that supports it (SoftHSM2 2.6 does)"
    )]
    MechanismUnsupported { token: String },
    /// The token refused the PIN.
    #[error(
        "token {token} refused the configured user PIN: correct it (many tokens lock the PIN \
         after a few wrong tries)"
    )]
    PinIncorrect { token: String },
    /// The token's user PIN is locked, expired or was never set.
    #[error(
        "the user PIN of token {token} cannot be used ({state}): the token's security officer \
         must set or reset it"
    )]
    PinUnusable { token: String, state: &'static str },
    /// No key carries the configured label.
    #[error(
        "no AES key labelled '{label}' on token {token}: let the vault create it (open_or_create) \
         or generate a sensitive, non-extractable AES-256 key with that label in the HSM"
    )]
    KeyNotFound { label: String, token: String },
    /// More than one key carries the configured label.
    #[error(
        "{count} secret keys are labelled '{label}' on token {token}: keep the one that wraps \
         the vault's keys and relabel or delete the others"
    )]
    KeyAmbiguous {
        label: String,
        token: String,
        count: usize,
    },
    /// The key exists but is not fit to be the root of trust.
    #[error("the key labelled '{label}' on token {token} {problem}")]
    KeyUnfit {
        label: String,
        token: String,
        problem: &'static str,
    },
    /// Any other PKCS#11 failure.
    #[error("PKCS#11 {op} on token {token} failed: {reason}")]
    Pkcs11 {
        op: &'static str,
        token: String,
        reason: String,
    },
}

/// A short, secret-free description of a cryptoki error: the PKCS#11 function and return code,
/// e.g. `C_Login returned PinIncorrect` (cryptoki's own `Display` quotes the whole spec).
pub(crate) fn describe(e: &P11Error) -> String {
    match e {
        P11Error::Pkcs11(rv, function) => format!("C_{function:?} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// The return code of a failed PKCS#11 call, if it was one.
pub(crate) fn rv(e: &P11Error) -> Option<RvError> {
    match e {
        P11Error::Pkcs11(rv, _) => Some(*rv),
        _ => None,
    }
}

/// Maps a failed `C_Login` to what the operator must fix.
pub(crate) fn login_error(e: &P11Error, token: &str) -> HsmError {
    let token = token.to_owned();
    match rv(e) {
        Some(RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange) => {
            HsmError::PinIncorrect { token }
        }
        Some(RvError::PinLocked) => HsmError::PinUnusable {
            token,
            state: "locked",
        },
        Some(RvError::PinExpired) => HsmError::PinUnusable {
            token,
            state: "expired",
        },
        Some(RvError::UserPinNotInitialized) => HsmError::PinUnusable {
            token,
            state: "never set",
        },
        _ => HsmError::Pkcs11 {
            op: "login",
            token,
            reason: describe(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::context::Function;

    use super::*;

    #[test]
    fn login_errors_are_specific_and_short() {
        let e = P11Error::Pkcs11(RvError::PinIncorrect, Function::Login);
        assert!(matches!(
            login_error(&e, "'t'"),
            HsmError::PinIncorrect { .. }
        ));
        let e = P11Error::Pkcs11(RvError::DeviceRemoved, Function::Login);
        let msg = login_error(&e, "'t'").to_string();
        assert_eq!(
            msg,
            "PKCS#11 login on token 't' failed: C_Login returned DeviceRemoved"
        );
    }

    #[test]
    fn errors_are_send_sync_static() {
        fn check<T: std::error::Error + Send + Sync + 'static>() {}
        check::<HsmError>();
    }
}
