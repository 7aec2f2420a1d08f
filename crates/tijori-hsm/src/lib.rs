//! The PKCS#11 root of trust: a [`tijori_crypto::KeyProvider`] whose root key is an AES-256 key
//! generated inside a hardware security module and never leaves it. Wrapping a key-encryption
//! key is one `C_Encrypt` with `CKM_AES_GCM` in the HSM, unwrapping one `C_Decrypt`; the vault
//! only ever sees the wrapped bytes and, after an unwrap, the KEK itself (held in a zeroized
//! [`tijori_crypto::SecretKey`]).
//!
//! This crate owns: loading a vendor's PKCS#11 module once per process, finding the token and the
//! root key, logging in, the wrapped-blob format, and turning PKCS#11 return codes into errors an
//! operator can act on. It must never read a key's value out of the HSM, never put a PIN or key
//! bytes in an error, a log line or a `Debug` output, and never tell a caller of
//! [`tijori_crypto::KeyProvider::unwrap`] *why* an unwrap failed (that would be an oracle).
//!
//! # The wrapped-blob format
//!
//! ```text
//! "P11G" | 0x01 | iv (12 bytes) | AES-256-GCM ciphertext of the 32 key bytes | tag (16 bytes)
//! ```
//!
//! 65 bytes in all. The GCM associated data is the 5-byte header followed by the caller's `ad`, so
//! a blob is bound both to its format version and to what the vault says it belongs to. The IV
//! comes from the operating system's CSPRNG; the key never wraps more than a handful of KEKs, far
//! below the 2^32 bound of random GCM IVs.
//!
//! # One module per process
//!
//! `C_Initialize` is process-wide, so every [`Pkcs11Provider`] opened on the same module path
//! shares one loaded module, initialized once and never finalized (a `C_Finalize` would close
//! every other provider's sessions). Two things follow from PKCS#11 itself:
//! - many modules (SoftHSM2 among them) read their token list once, at `C_Initialize`: a token
//!   created while the vault runs is seen only after a restart;
//! - login state is per process and token, not per session: while one provider of this process
//!   is logged in to a token, a second `open` of that token is not checked against its PIN again.
//!
//! # Configuring SoftHSM2 for a trial
//!
//! ```sh
//! apt-get install softhsm2
//! mkdir -p /var/lib/tijori/softhsm/tokens
//! printf 'directories.tokendir = /var/lib/tijori/softhsm/tokens\nobjectstore.backend = file\n' \
//!     > /var/lib/tijori/softhsm/softhsm2.conf
//! export SOFTHSM2_CONF=/var/lib/tijori/softhsm/softhsm2.conf   # also for the vault process
//! softhsm2-util --init-token --free --label tijori --pin 'user-pin' --so-pin 'so-pin'
//! ```
//!
//! Then configure module `/usr/lib/softhsm/libsofthsm2.so`, token label `tijori`, the user PIN,
//! and a key label such as `tijori-root`; [`Pkcs11Provider::open_or_create`] generates the key on
//! first start. SoftHSM2 assigns its slot ids at random when a token is created, so select it by
//! label. SoftHSM2 keeps its keys in files encrypted under the PIN: it is for trials and tests,
//! not a hardware root of trust.

mod error;
mod provider;

use std::fmt;
use std::path::PathBuf;

use zeroize::Zeroizing;

pub use error::HsmError;
pub use provider::{Pkcs11Provider, WRAPPED_LEN};

/// Where the root key lives: a PKCS#11 module, a token in it, the user PIN and the key's label.
///
/// `Debug` is written by hand and never shows the PIN.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the vendor's PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label (`label` of `CK_TOKEN_INFO`, trailing blanks ignored). Preferred over
    /// `slot`, since slot ids may change when tokens are added or removed.
    pub token_label: Option<String>,
    /// The slot id, used only when `token_label` is `None`.
    pub slot: Option<u64>,
    /// The token's user PIN (`CKU_USER`).
    pub pin: Zeroizing<String>,
    /// `CKA_LABEL` of the AES-256 root key on the token.
    pub key_label: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("slot", &self.slot)
            .field("pin", &"<redacted>")
            .field("key_label", &self.key_label)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_pin() {
        let cfg = Pkcs11Config {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: Some("tijori".into()),
            slot: None,
            pin: Zeroizing::new("s3cret-pin-4711".into()),
            key_label: "tijori-root".into(),
        };
        let shown = format!("{cfg:?} {cfg:#?}");
        assert!(!shown.contains("s3cret-pin-4711"), "{shown}");
        assert!(shown.contains("<redacted>") && shown.contains("tijori-root"));
    }
}
