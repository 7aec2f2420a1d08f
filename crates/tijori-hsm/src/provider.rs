//! [`Pkcs11Provider`]: finds the token and the root key, keeps one logged-in session behind a
//! mutex, and wraps and unwraps key-encryption keys with `CKM_AES_GCM` inside the HSM.
//!
//! It must never ask the HSM for a key's value (`CKA_VALUE`) and never tell an unwrap caller why
//! an unwrap failed. A session the HSM dropped (device reset, network HSM reconnect, a logout) is
//! opened and logged in again once per call, so a long-running vault survives it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use tijori_crypto::{random_bytes, CryptoError, KeyProvider, SecretKey};
use zeroize::Zeroizing;

use crate::error::{describe, login_error, rv};
use crate::{HsmError, Pkcs11Config};

/// Magic and format version opening every wrapped blob; also the start of the GCM AAD.
const HEADER: &[u8; 5] = b"P11G\x01";
const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
/// Length of a wrapped key: header, IV, 32 ciphertext bytes and a 16-byte tag.
pub const WRAPPED_LEN: usize = HEADER.len() + IV_LEN + SecretKey::LEN + 16;

/// Loaded modules, one per path: `C_Initialize` is process-wide, and `C_Finalize` is never called.
static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();

/// The open session and the root key's handle in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// A root of trust in a PKCS#11 token. See the crate documentation.
pub struct Pkcs11Provider {
    ctx: Pkcs11,
    slot: Slot,
    /// The token as named in messages and logs: `'label' (slot N)`.
    token: String,
    key_label: String,
    /// Kept to log in again after the HSM drops the session; zeroized on drop.
    pin: AuthPin,
    live: Mutex<Live>,
}

impl std::fmt::Debug for Pkcs11Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Provider")
            .field("token", &self.token)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

impl Pkcs11Provider {
    /// Opens the module, finds the token (by label, else by slot), logs in as the user with the
    /// PIN and finds the AES-256 root key by its label. Errors if the key does not exist.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, HsmError> {
        Self::open_inner(cfg, false).map(|(p, _)| p)
    }

    /// Like [`Pkcs11Provider::open`], but generates the root key inside the HSM when no key has
    /// the label: AES-256, `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE`, not `CKA_EXTRACTABLE`,
    /// usable for encrypt and decrypt only. Returns the provider and whether the key was created
    /// now. Run it from one node only: two nodes creating at once would make two keys.
    pub fn open_or_create(cfg: &Pkcs11Config) -> Result<(Self, bool), HsmError> {
        Self::open_inner(cfg, true)
    }

    fn open_inner(cfg: &Pkcs11Config, create: bool) -> Result<(Self, bool), HsmError> {
        let ctx = load_module(&cfg.module)?;
        let (slot, token) = find_token(&ctx, cfg)?;
        check_mechanism(&ctx, slot, &token)?;
        let pin = AuthPin::from(cfg.pin.as_str());
        let session = login(&ctx, slot, &pin, &token, create)?;
        let (key, created) = match find_key(&session, &cfg.key_label, &token)? {
            Some(key) => (key, false),
            None if create => (generate_key(&session, &cfg.key_label, &token)?, true),
            None => {
                return Err(HsmError::KeyNotFound {
                    label: cfg.key_label.clone(),
                    token,
                })
            }
        };
        check_key(&session, key, &cfg.key_label, &token)?;
        if created {
            tracing::info!(token = %token, key = %cfg.key_label, "generated the root key in the HSM");
        }
        let provider = Pkcs11Provider {
            ctx,
            slot,
            token,
            key_label: cfg.key_label.clone(),
            pin,
            live: Mutex::new(Live { session, key }),
        };
        Ok((provider, created))
    }

    /// Runs `op` on the live session; if the HSM says the session or login is gone, logs in on
    /// a new session and runs it once more.
    fn with_session<T>(
        &self,
        op: impl Fn(&Session, ObjectHandle) -> Result<T, P11Error>,
    ) -> Result<T, P11Error> {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        match op(&live.session, live.key) {
            Err(e) if is_session_lost(&e) => {
                tracing::warn!(token = %self.token, error = %describe(&e),
                    "PKCS#11 session lost; logging in again");
                match self.reconnect() {
                    Ok(fresh) => {
                        *live = fresh;
                        op(&live.session, live.key)
                    }
                    Err(again) => {
                        tracing::error!(token = %self.token, error = %again,
                            "could not log in to the HSM again");
                        Err(e)
                    }
                }
            }
            other => other,
        }
    }

    fn reconnect(&self) -> Result<Live, HsmError> {
        let session = login(&self.ctx, self.slot, &self.pin, &self.token, false)?;
        let key = find_key(&session, &self.key_label, &self.token)?.ok_or_else(|| {
            HsmError::KeyNotFound {
                label: self.key_label.clone(),
                token: self.token.clone(),
            }
        })?;
        check_key(&session, key, &self.key_label, &self.token)?;
        Ok(Live { session, key })
    }
}

impl KeyProvider for Pkcs11Provider {
    fn name(&self) -> &'static str {
        "pkcs11"
    }

    fn wrap(&self, ad: &[u8], key: &SecretKey) -> Result<Vec<u8>, CryptoError> {
        let iv = random_bytes::<IV_LEN>()?;
        let aad = aad(ad);
        // A retry reuses the IV with the same key, plaintext and AAD: it can only produce the
        // same ciphertext again, which reveals nothing.
        let sealed = self.with_session(|session, root| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())?;
            let ct = session.encrypt(&Mechanism::AesGcm(params), root, key.expose_secret())?;
            Ok((iv, ct))
        });
        match sealed {
            Ok((iv, ct)) if ct.len() == SecretKey::LEN + 16 => {
                let mut out = Vec::with_capacity(WRAPPED_LEN);
                out.extend_from_slice(HEADER);
                out.extend_from_slice(&iv);
                out.extend_from_slice(&ct);
                Ok(out)
            }
            Ok((_, ct)) => {
                tracing::error!(token = %self.token, len = ct.len(),
                    "the HSM returned an AES-GCM ciphertext of unexpected length");
                Err(CryptoError::DecryptionFailed)
            }
            Err(e) => {
                tracing::error!(token = %self.token, key = %self.key_label,
                    error = %describe(&e), "the HSM could not wrap a key");
                Err(CryptoError::DecryptionFailed)
            }
        }
    }

    fn unwrap(&self, ad: &[u8], wrapped: &[u8]) -> Result<SecretKey, CryptoError> {
        if wrapped.len() != WRAPPED_LEN || !wrapped.starts_with(HEADER) {
            return Err(CryptoError::DecryptionFailed);
        }
        let (iv, ct) = wrapped[HEADER.len()..].split_at(IV_LEN);
        let iv: [u8; IV_LEN] = iv.try_into().map_err(|_| CryptoError::DecryptionFailed)?;
        let aad = aad(ad);
        let plain = self.with_session(|session, root| {
            let mut iv = iv;
            let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())?;
            session
                .decrypt(&Mechanism::AesGcm(params), root, ct)
                .map(Zeroizing::new)
        });
        match plain {
            Ok(bytes) => SecretKey::from_slice(&bytes).ok_or(CryptoError::DecryptionFailed),
            Err(e) => {
                // The caller learns nothing; the operator sees the return code. SoftHSM2 answers
                // a wrong tag with CKR_GENERAL_ERROR, so a tag mismatch cannot be told from an
                // HSM fault here: both are worth a line, since the vault's own blobs never fail.
                tracing::warn!(token = %self.token, key = %self.key_label, error = %describe(&e),
                    "the HSM did not unwrap a key (wrong associated data, altered bytes, \
                     another root key, or an HSM fault)");
                Err(CryptoError::DecryptionFailed)
            }
        }
    }
}

/// The GCM associated data: the blob's header, then the caller's `ad`.
fn aad(ad: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(HEADER.len() + ad.len());
    aad.extend_from_slice(HEADER);
    aad.extend_from_slice(ad);
    aad
}

/// Errors after which a new session and login may help.
fn is_session_lost(e: &P11Error) -> bool {
    matches!(
        rv(e),
        Some(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::UserNotLoggedIn
                | RvError::KeyHandleInvalid
                | RvError::ObjectHandleInvalid
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
        )
    )
}

/// The module at `path`, loaded and initialized once per process.
fn load_module(path: &Path) -> Result<Pkcs11, HsmError> {
    let module = path.display().to_string();
    if !path.exists() {
        return Err(HsmError::ModuleMissing { module });
    }
    let mut modules = MODULES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = modules.get(path) {
        return Ok(ctx.clone());
    }
    let fail = |e: P11Error| HsmError::Module {
        module: module.clone(),
        reason: describe(&e),
    };
    let ctx = Pkcs11::new(path).map_err(fail)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        // Another path to the same library, or another user of it in this process, got there first.
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(fail(e)),
    }
    modules.insert(path.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// The configured token's slot, and its name for messages.
fn find_token(ctx: &Pkcs11, cfg: &Pkcs11Config) -> Result<(Slot, String), HsmError> {
    let module = cfg.module.display().to_string();
    let fail = |e: P11Error| HsmError::Module {
        module: module.clone(),
        reason: describe(&e),
    };
    let mut present = Vec::new();
    for slot in ctx.get_slots_with_initialized_token().map_err(fail)? {
        let info = ctx.get_token_info(slot).map_err(fail)?;
        present.push((slot, info.label().to_owned()));
    }
    let listed = || match present.len() {
        0 => "none".to_owned(),
        _ => present
            .iter()
            .map(|(slot, label)| format!("'{label}' in slot {}", slot.id()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let chosen: Vec<&(Slot, String)> = match (&cfg.token_label, cfg.slot) {
        (Some(label), _) => {
            let hits: Vec<_> = present
                .iter()
                .filter(|(_, l)| l == label.trim_end())
                .collect();
            if hits.len() > 1 {
                return Err(HsmError::TokenAmbiguous {
                    label: label.clone(),
                    module,
                    count: hits.len(),
                });
            }
            if hits.is_empty() {
                return Err(HsmError::TokenNotFound {
                    label: label.clone(),
                    present: listed(),
                    module,
                });
            }
            hits
        }
        (None, Some(id)) => {
            let hits: Vec<_> = present.iter().filter(|(s, _)| s.id() == id).collect();
            if hits.is_empty() {
                return Err(HsmError::SlotNotFound {
                    slot: id,
                    present: listed(),
                    module,
                });
            }
            hits
        }
        (None, None) => return Err(HsmError::NoTokenChosen { module }),
    };
    let (slot, label) = chosen[0];
    Ok((*slot, format!("'{label}' (slot {})", slot.id())))
}

fn check_mechanism(ctx: &Pkcs11, slot: Slot, token: &str) -> Result<(), HsmError> {
    match ctx.get_mechanism_info(slot, MechanismType::AES_GCM) {
        Ok(info) if info.encrypt() && info.decrypt() => Ok(()),
        Ok(_) | Err(P11Error::Pkcs11(RvError::MechanismInvalid, _)) => {
            Err(HsmError::MechanismUnsupported {
                token: token.to_owned(),
            })
        }
        Err(e) => Err(pkcs11("mechanism query", token, &e)),
    }
}

/// A new session on `slot`, logged in as the user. Login is per process and token, so a token
/// already logged in by another session of this process counts as success.
fn login(
    ctx: &Pkcs11,
    slot: Slot,
    pin: &AuthPin,
    token: &str,
    rw: bool,
) -> Result<Session, HsmError> {
    let session = if rw {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(|e| pkcs11("session open", token, &e))?;
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(e) => Err(login_error(&e, token)),
    }
}

/// The secret key labelled `label`, if there is exactly one.
fn find_key(session: &Session, label: &str, token: &str) -> Result<Option<ObjectHandle>, HsmError> {
    let template = [
        Attribute::Class(ObjectClass::SECRET_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    let found = session
        .find_objects(&template)
        .map_err(|e| pkcs11("key search", token, &e))?;
    match found.as_slice() {
        [] => Ok(None),
        [key] => Ok(Some(*key)),
        many => Err(HsmError::KeyAmbiguous {
            label: label.to_owned(),
            token: token.to_owned(),
            count: many.len(),
        }),
    }
}

fn generate_key(session: &Session, label: &str, token: &str) -> Result<ObjectHandle, HsmError> {
    let template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Sign(false),
        Attribute::Verify(false),
        Attribute::Derive(false),
        Attribute::ValueLen((SecretKey::LEN as u64).into()),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .generate_key(&Mechanism::AesKeyGen, &template)
        .map_err(|e| pkcs11("key generation", token, &e))
}

/// Refuses a key that is not a sensitive AES-256 key allowed to encrypt and decrypt; warns about
/// one that may be exported (some key ceremonies need that, for backups).
fn check_key(
    session: &Session,
    key: ObjectHandle,
    label: &str,
    token: &str,
) -> Result<(), HsmError> {
    let unfit = |problem| HsmError::KeyUnfit {
        label: label.to_owned(),
        token: token.to_owned(),
        problem,
    };
    let wanted = [
        AttributeType::KeyType,
        AttributeType::ValueLen,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
    ];
    let attrs = session
        .get_attributes(key, &wanted)
        .map_err(|e| pkcs11("attribute read", token, &e))?;
    let (mut aes, mut len, mut sensitive, mut usable) = (false, 0u64, false, (true, true));
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => aes = t == KeyType::AES,
            Attribute::ValueLen(n) => len = n.into(),
            Attribute::Sensitive(s) => sensitive = s,
            Attribute::Encrypt(e) => usable.0 = e,
            Attribute::Decrypt(d) => usable.1 = d,
            Attribute::Extractable(true) => tracing::warn!(token = %token, key = %label,
                "the root key is extractable (CKA_EXTRACTABLE): it can leave the HSM wrapped"),
            _ => {}
        }
    }
    if !aes {
        return Err(unfit("is not an AES key"));
    }
    if len != SecretKey::LEN as u64 {
        return Err(unfit("is not 256 bits long: the root key must be AES-256"));
    }
    if !sensitive {
        return Err(unfit(
            "is not sensitive (CKA_SENSITIVE): its value can be read out of the HSM; \
             generate a new key with CKA_SENSITIVE set",
        ));
    }
    if usable != (true, true) {
        return Err(unfit("does not allow both encrypt and decrypt"));
    }
    Ok(())
}

fn pkcs11(op: &'static str, token: &str, e: &P11Error) -> HsmError {
    HsmError::Pkcs11 {
        op,
        token: token.to_owned(),
        reason: describe(e),
    }
}
