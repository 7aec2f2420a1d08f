//! The PKCS#11 provider against a real SoftHSM2. SoftHSM reads `SOFTHSM2_CONF` and its token
//! list once per process, in `C_Initialize`, so the whole test binary shares one token directory:
//! [`hsm`] builds it once, with one token per test, before any test loads the module. Every test
//! calls [`hsm`] first. A missing SoftHSM2 fails the tests; it does not skip them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use tijori_crypto::{CryptoError, KeyProvider, SecretKey};
use tijori_hsm::{HsmError, Pkcs11Config, Pkcs11Provider, WRAPPED_LEN};
use tijori_testkit::softhsm::{self, MODULE};
use zeroize::Zeroizing;

const PIN: &str = "user-pin-4711";
const SO_PIN: &str = "so-pin-0815";
/// One token per test, so that no test sees another's keys or login state.
const TOKENS: &[&str] = &[
    "t-roundtrip",
    "t-attributes",
    "t-aad",
    "t-tamper",
    "t-wrong-pin",
    "t-missing-key",
    "t-relogin",
    "t-threads",
];

/// The shared token directory, set up once per test binary.
fn hsm() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Token directories of earlier runs whose process is gone.
        for entry in std::fs::read_dir(&tmp).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("softhsm-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let dir = tmp.join(format!("softhsm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conf = softhsm::configure(&dir);
        // No test has loaded the module yet: they all wait for this closure.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        for label in TOKENS {
            softhsm::init_token(&conf, label, PIN, SO_PIN);
        }
        dir
    })
}

fn cfg(token: &str, key: &str) -> Pkcs11Config {
    hsm();
    Pkcs11Config {
        module: MODULE.into(),
        token_label: Some(token.into()),
        slot: None,
        pin: Zeroizing::new(PIN.into()),
        key_label: key.into(),
    }
}

/// A session of our own on `token`, logged in, beside the provider's (same module, same process).
fn raw_session(token: &str) -> (Session, u64) {
    hsm();
    let ctx = Pkcs11::new(MODULE).unwrap();
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => panic!("C_Initialize: {e}"),
    }
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label() == token)
        .unwrap();
    let session = ctx.open_ro_session(slot).unwrap();
    match session.login(UserType::User, Some(&AuthPin::from(PIN))) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => panic!("C_Login: {e}"),
    }
    (session, slot.id())
}

#[test]
fn created_key_is_found_again_by_a_fresh_provider() {
    let cfg = cfg("t-roundtrip", "root");
    let (p1, created) = Pkcs11Provider::open_or_create(&cfg).unwrap();
    assert!(created);
    assert_eq!(p1.name(), "pkcs11");
    let kek = SecretKey::generate().unwrap();
    let w1 = p1.wrap(b"kek|1", &kek).unwrap();
    let w2 = p1.wrap(b"kek|1", &kek).unwrap();
    assert_eq!(w1.len(), WRAPPED_LEN);
    assert!(w1.starts_with(b"P11G\x01"));
    assert_ne!(w1, w2, "every wrap draws a fresh IV");
    assert!(!w1.windows(32).any(|w| w == kek.expose_secret()));
    drop(p1);

    let p2 = Pkcs11Provider::open(&cfg).unwrap();
    let back = p2.unwrap(b"kek|1", &w1).unwrap();
    assert_eq!(back.expose_secret(), kek.expose_secret());
    let (p3, created) = Pkcs11Provider::open_or_create(&cfg).unwrap();
    assert!(!created, "the existing key is used, not a second one made");
    assert_eq!(
        p3.unwrap(b"kek|1", &w2).unwrap().expose_secret(),
        kek.expose_secret()
    );
}

#[test]
fn generated_key_is_sensitive_and_never_extractable() {
    let cfg = cfg("t-attributes", "root");
    let (_provider, _) = Pkcs11Provider::open_or_create(&cfg).unwrap();
    let (session, slot) = raw_session("t-attributes");
    let found = session
        .find_objects(&[
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::Label(b"root".to_vec()),
        ])
        .unwrap();
    assert_eq!(found.len(), 1);
    let attrs = session
        .get_attributes(
            found[0],
            &[
                AttributeType::Extractable,
                AttributeType::Sensitive,
                AttributeType::NeverExtractable,
                AttributeType::AlwaysSensitive,
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::ValueLen,
                AttributeType::Wrap,
            ],
        )
        .unwrap();
    for want in [
        Attribute::Extractable(false),
        Attribute::Sensitive(true),
        Attribute::NeverExtractable(true),
        Attribute::AlwaysSensitive(true),
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::ValueLen(32u64.into()),
        Attribute::Wrap(false),
    ] {
        assert!(attrs.contains(&want), "{want:?} not in {attrs:?}");
    }
    // The value itself cannot be read out.
    match session.get_attributes(found[0], &[AttributeType::Value]) {
        Ok(got) => assert!(
            !got.iter().any(|a| matches!(a, Attribute::Value(_))),
            "the key's value was readable"
        ),
        Err(e) => assert!(matches!(
            e,
            P11Error::Pkcs11(RvError::AttributeSensitive, _)
        )),
    }

    // The same token chosen by slot id instead of label.
    let by_slot = Pkcs11Config {
        token_label: None,
        slot: Some(slot),
        ..cfg.clone()
    };
    Pkcs11Provider::open(&by_slot).unwrap();
    let neither = Pkcs11Config {
        token_label: None,
        slot: None,
        ..cfg
    };
    let err = Pkcs11Provider::open(&neither).unwrap_err();
    assert!(matches!(err, HsmError::NoTokenChosen { .. }), "{err}");
}

#[test]
fn wrong_associated_data_fails() {
    let (p, _) = Pkcs11Provider::open_or_create(&cfg("t-aad", "root")).unwrap();
    let kek = SecretKey::generate().unwrap();
    let w = p.wrap(b"kek|1", &kek).unwrap();
    for ad in [&b"kek|2"[..], b"", b"kek|1 ", b"P11G\x01kek|1"] {
        assert!(matches!(
            p.unwrap(ad, &w),
            Err(CryptoError::DecryptionFailed)
        ));
    }
    assert!(p.unwrap(b"kek|1", &w).is_ok());
}

#[test]
fn tampered_wrapped_bytes_fail() {
    let (p, _) = Pkcs11Provider::open_or_create(&cfg("t-tamper", "root")).unwrap();
    let kek = SecretKey::generate().unwrap();
    let w = p.wrap(b"kek|1", &kek).unwrap();
    for i in 0..w.len() {
        let mut bad = w.clone();
        bad[i] ^= 0x01;
        assert!(
            matches!(p.unwrap(b"kek|1", &bad), Err(CryptoError::DecryptionFailed)),
            "a flipped bit at byte {i} went unnoticed"
        );
    }
    let mut longer = w.clone();
    longer.push(0);
    for bad in [&w[..w.len() - 1], &longer[..], &w[..5], &[][..]] {
        assert!(matches!(
            p.unwrap(b"kek|1", bad),
            Err(CryptoError::DecryptionFailed)
        ));
    }
    // Another token's root key does not open it either.
    let (other, _) = Pkcs11Provider::open_or_create(&cfg("t-tamper", "other-root")).unwrap();
    assert!(other.unwrap(b"kek|1", &w).is_err());
    assert!(p.unwrap(b"kek|1", &w).is_ok());
}

#[test]
fn wrong_pin_is_refused_clearly_without_echoing_it() {
    let mut bad = cfg("t-wrong-pin", "root");
    bad.pin = Zeroizing::new("not-the-pin-31337".into());
    let err = Pkcs11Provider::open_or_create(&bad).unwrap_err();
    assert!(matches!(err, HsmError::PinIncorrect { .. }), "{err:?}");
    let msg = format!("{err} {err:?}");
    assert!(msg.contains("t-wrong-pin") && msg.contains("PIN"), "{msg}");
    assert!(
        !msg.contains("not-the-pin-31337") && !msg.contains(PIN),
        "{msg}"
    );
    // The right PIN still works afterwards.
    Pkcs11Provider::open_or_create(&cfg("t-wrong-pin", "root")).unwrap();
}

#[test]
fn unknown_token_label_names_the_fix() {
    let err = Pkcs11Provider::open(&cfg("no-such-token", "root")).unwrap_err();
    assert!(matches!(err, HsmError::TokenNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("'no-such-token'"), "{msg}");
    assert!(msg.contains("softhsm2-util --init-token"), "{msg}");
    assert!(
        msg.contains("'t-roundtrip' in slot"),
        "lists the tokens present: {msg}"
    );
    assert!(!msg.contains(PIN));
}

#[test]
fn open_without_the_key_errors_and_creates_nothing() {
    let cfg = cfg("t-missing-key", "absent");
    let err = Pkcs11Provider::open(&cfg).unwrap_err();
    assert!(matches!(err, HsmError::KeyNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("'absent'"), "{err}");
    assert!(matches!(
        Pkcs11Provider::open(&cfg),
        Err(HsmError::KeyNotFound { .. })
    ));
}

#[test]
fn missing_module_says_how_to_install_it() {
    hsm();
    let cfg = Pkcs11Config {
        module: "/nonexistent/libsofthsm2.so".into(),
        ..cfg("t-roundtrip", "root")
    };
    let err = Pkcs11Provider::open(&cfg).unwrap_err();
    assert!(
        err.to_string().contains("apt-get install softhsm2"),
        "{err}"
    );
}

#[test]
fn provider_logs_in_again_after_the_token_logged_out() {
    let (p, _) = Pkcs11Provider::open_or_create(&cfg("t-relogin", "root")).unwrap();
    let kek = SecretKey::generate().unwrap();
    let w = p.wrap(b"kek|1", &kek).unwrap();
    // Login state is per process and token: this logs the provider's session out too.
    let (session, _) = raw_session("t-relogin");
    session.logout().unwrap();
    let back = p.unwrap(b"kek|1", &w).unwrap();
    assert_eq!(back.expose_secret(), kek.expose_secret());
    session.logout().unwrap();
    p.wrap(b"kek|2", &kek).unwrap();
}

#[test]
fn one_provider_serves_many_threads() {
    let (p, _) = Pkcs11Provider::open_or_create(&cfg("t-threads", "root")).unwrap();
    let p: Arc<dyn KeyProvider> = Arc::new(p);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let p = Arc::clone(&p);
            std::thread::spawn(move || {
                for i in 0..25 {
                    let ad = format!("kek|{t}|{i}");
                    let kek = SecretKey::generate().unwrap();
                    let w = p.wrap(ad.as_bytes(), &kek).unwrap();
                    let back = p.unwrap(ad.as_bytes(), &w).unwrap();
                    assert_eq!(back.expose_secret(), kek.expose_secret());
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn config_debug_hides_the_pin() {
    let cfg = cfg("t-roundtrip", "root");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains(PIN), "{shown}");
    assert!(shown.contains("t-roundtrip") && shown.contains("<redacted>"));
}
