//! Operators' accounts on a real store with a fixed clock: enrollment, login with TOTP,
//! replay, lockout, idle timeout, inactivity, password history and training.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;

use tijori_core::operator::{UserStatus, SESSION_PREFIX};
use tijori_core::policy::{authorize, Detokenize, Manage, ReadAudit, Role};
use tijori_core::{CoreError, FixedClock, Principal, PrincipalKind, Vault, VaultConfig};
use tijori_crypto::{DevKeyFile, TotpSecret};
use tijori_store::sqlite::SqliteStore;
use zeroize::Zeroizing;

const START: i64 = 1_800_000_000;
const PASSWORD: &str = "river-kite-42-lantern";

struct Fixture {
    vault: Vault,
    clock: Arc<FixedClock>,
}

async fn fixture(name: &str) -> Fixture {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("operators-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let clock = Arc::new(FixedClock::new(START));
    let vault = Vault::open(store, clock.clone(), VaultConfig::default())
        .await
        .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    vault.unseal(Arc::new(provider)).await.unwrap();
    Fixture { vault, clock }
}

fn admin() -> Principal {
    Principal {
        id: "root".into(),
        name: "root".into(),
        kind: PrincipalKind::Root,
        roles: vec![Role::Admin],
        created_at: 0,
        disabled: false,
        training_lapsed: false,
        custom_rules: Default::default(),
    }
}

fn pw(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

/// The secret inside an otpauth URI, as an authenticator app reads it.
fn app(uri: &str) -> TotpSecret {
    let b32 = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();
    let bytes = base32_decode(b32);
    TotpSecret::from_bytes(&bytes).unwrap()
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.bytes() {
        acc = (acc << 5) | ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

impl Fixture {
    fn now(&self) -> u64 {
        self.vault.now() as u64
    }

    /// Creates and enrolls a user; answers their authenticator.
    async fn enrolled(&self, name: &str, roles: &[&str]) -> (String, TotpSecret) {
        let a = admin();
        let auth = authorize::<Manage>(&a).unwrap();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        let new = self.vault.create_user(&auth, name, &roles).await.unwrap();
        assert_eq!(new.user.status, UserStatus::EnrollmentPending);
        let e = self
            .vault
            .enroll_user(name, &new.enrollment_code, pw(PASSWORD))
            .await
            .unwrap();
        assert!(e
            .otpauth_uri
            .starts_with(&format!("otpauth://totp/Tijori:{name}?secret=")));
        (new.user.id, app(&e.otpauth_uri))
    }

    async fn login(&self, name: &str, password: &str, code: &str) -> Result<String, CoreError> {
        self.vault
            .login(name, pw(password), code)
            .await
            .result
            .map(|s| s.token.to_string())
    }
}

#[tokio::test]
async fn enroll_login_and_replay() {
    let f = fixture("login").await;
    let (id, app) = f.enrolled("amina", &["support"]).await;
    // The first valid code confirms the authenticator and opens a session.
    let code = app.code_at(f.now());
    let token = f.login("amina", PASSWORD, &code).await.unwrap();
    assert!(token.starts_with(SESSION_PREFIX));
    let who = f.vault.authenticate_session(&token).await.unwrap();
    assert_eq!(
        (who.id.as_str(), who.kind),
        (id.as_str(), PrincipalKind::Operator)
    );
    assert_eq!(who.roles, vec![Role::Support]);
    // The same code again is a replay, even within its step; so is the previous step's.
    assert!(matches!(
        f.login("amina", PASSWORD, &code).await,
        Err(CoreError::LoginFailed)
    ));
    f.clock.advance(30);
    assert!(f.login("amina", PASSWORD, &code).await.is_err());
    // One step of drift either way is accepted.
    f.clock.advance(30);
    let ahead = app.code_at(f.now() + 30);
    assert!(f.login("amina", PASSWORD, &ahead).await.is_ok());
    f.clock.advance(90);
    let behind = app.code_at(f.now() - 30);
    assert!(f.login("amina", PASSWORD, &behind).await.is_ok());
    f.clock.advance(30);
    let too_old = app.code_at(f.now() - 60);
    let current = app.code_at(f.now());
    if too_old != current
        && too_old != app.code_at(f.now() - 30)
        && too_old != app.code_at(f.now() + 30)
    {
        assert!(f.login("amina", PASSWORD, &too_old).await.is_err());
    }
    // An enrollment code works once.
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    let new = f
        .vault
        .create_user(&auth, "bilal", &["auditor".into()])
        .await
        .unwrap();
    f.vault
        .enroll_user("bilal", &new.enrollment_code, pw(PASSWORD))
        .await
        .unwrap();
    assert!(matches!(
        f.vault
            .enroll_user("bilal", &new.enrollment_code, pw(PASSWORD))
            .await,
        Err(CoreError::EnrollmentFailed)
    ));
    assert!(matches!(
        f.vault
            .create_user(&auth, "bilal", &["auditor".into()])
            .await,
        Err(CoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn every_failure_looks_the_same() {
    let f = fixture("same").await;
    let (_, app) = f.enrolled("amina", &["support"]).await;
    let code = app.code_at(f.now());
    let failures = [
        f.login("amina", "wrong-password-1", &code).await,
        f.login("amina", PASSWORD, "000000").await,
        f.login("nobody", PASSWORD, &code).await,
    ];
    let messages: Vec<String> = failures
        .into_iter()
        .map(|r| match r {
            Err(e @ CoreError::LoginFailed) => e.to_string(),
            _ => panic!("not a login failure"),
        })
        .collect();
    assert!(messages.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn ten_failures_lock_for_thirty_minutes() {
    let f = fixture("lock").await;
    let (id, app) = f.enrolled("amina", &["support"]).await;
    for _ in 0..10 {
        assert!(f
            .login("amina", "wrong-password-1", "000000")
            .await
            .is_err());
    }
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    let listed = f.vault.users(&auth).await.unwrap();
    assert_eq!(listed[0].status, UserStatus::Locked);
    // Locked: even the right password and code fail.
    f.clock.advance(60);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_err());
    f.clock.advance(29 * 60 - 1);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_err());
    f.clock.advance(31);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_ok());
    // An administrator can unlock early.
    for _ in 0..10 {
        let _ = f.login("amina", "wrong-password-1", "000000").await;
    }
    f.vault.unlock_user(&auth, &id).await.unwrap();
    f.clock.advance(30);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_ok());
}

#[tokio::test]
async fn sessions_idle_out_and_end() {
    let f = fixture("idle").await;
    let (id, app) = f.enrolled("amina", &["support"]).await;
    let token = f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .unwrap();
    f.clock.advance(14 * 60);
    assert!(
        f.vault.authenticate_session(&token).await.is_ok(),
        "use restarts the timer"
    );
    f.clock.advance(14 * 60);
    assert!(f.vault.authenticate_session(&token).await.is_ok());
    f.clock.advance(15 * 60);
    assert!(matches!(
        f.vault.authenticate_session(&token).await,
        Err(CoreError::SessionExpired)
    ));
    assert!(
        f.vault.authenticate_session(&token).await.is_err(),
        "gone for good"
    );
    // Logout ends a session; disabling the account ends all of them.
    f.clock.advance(30);
    let t2 = f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .unwrap();
    assert!(f.vault.logout(&t2).await.unwrap());
    assert!(f.vault.authenticate_session(&t2).await.is_err());
    f.clock.advance(30);
    let t3 = f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .unwrap();
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    f.vault.set_user_disabled(&auth, &id, true).await.unwrap();
    assert!(f.vault.authenticate_session(&t3).await.is_err());
    assert!(f.vault.authenticate_session("tjo_00").await.is_err());
}

#[tokio::test]
async fn ninety_idle_days_disable_the_account() {
    let f = fixture("inactive").await;
    let (id, app) = f.enrolled("amina", &["support"]).await;
    f.clock.advance(91 * 86_400);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_err());
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    assert_eq!(
        f.vault.users(&auth).await.unwrap()[0].status,
        UserStatus::Disabled
    );
    f.vault.set_user_disabled(&auth, &id, false).await.unwrap();
    f.clock.advance(30);
    assert!(f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .is_ok());
}

#[tokio::test]
async fn password_rules_and_history() {
    let f = fixture("history").await;
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    let new = f
        .vault
        .create_user(&auth, "amina", &["support".into()])
        .await
        .unwrap();
    for weak in ["short1", "password1234", "amina-1234567890"] {
        assert!(matches!(
            f.vault
                .enroll_user("amina", &new.enrollment_code, pw(weak))
                .await,
            Err(CoreError::InvalidRequest(_))
        ));
    }
    f.vault
        .enroll_user("amina", &new.enrollment_code, pw(PASSWORD))
        .await
        .unwrap();
    let id = new.user.id;
    let seq = ["second-pass-0002", "third-pass-00003", "fourth-pass-0004"];
    let mut current = PASSWORD.to_owned();
    for next in seq {
        f.vault
            .change_password(&id, pw(&current), pw(next))
            .await
            .unwrap();
        current = next.to_owned();
    }
    // The last four (current included) are refused; the fifth-newest is allowed again.
    for old in [PASSWORD, seq[0], seq[1], seq[2]] {
        if old == PASSWORD {
            continue;
        }
        assert!(
            f.vault
                .change_password(&id, pw(&current), pw(old))
                .await
                .is_err(),
            "{old}"
        );
    }
    assert!(
        f.vault
            .change_password(&id, pw(&current), pw(PASSWORD))
            .await
            .is_err(),
        "4th back"
    );
    f.vault
        .change_password(&id, pw(&current), pw("fifth-pass-00005"))
        .await
        .unwrap();
    f.vault
        .change_password(&id, pw("fifth-pass-00005"), pw(PASSWORD))
        .await
        .unwrap();
    assert!(f
        .vault
        .change_password(&id, pw("wrong-current-1"), pw("sixth-pass-0006"))
        .await
        .is_err());
}

#[tokio::test]
async fn lapsed_training_stops_reveals() {
    let f = fixture("training").await;
    let (id, app) = f.enrolled("amina", &["support"]).await;
    let token = f
        .login("amina", PASSWORD, &app.code_at(f.now()))
        .await
        .unwrap();
    let who = f.vault.authenticate_session(&token).await.unwrap();
    assert!(who.training_lapsed, "no attestation yet");
    assert!(matches!(
        authorize::<Detokenize>(&who),
        Err(CoreError::TrainingExpired)
    ));

    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    let user = f
        .vault
        .record_training(&auth, &id, START - 340 * 86_400)
        .await
        .unwrap();
    assert_eq!(user.training_valid_until, Some(START + 25 * 86_400));
    let who = f.vault.authenticate_session(&token).await.unwrap();
    assert!(authorize::<Detokenize>(&who).is_ok());
    // It lapses within 30 days: on the report.
    let read = authorize::<ReadAudit>(&a).unwrap();
    let due = f.vault.training_report(&read, 30).await.unwrap();
    assert_eq!(
        due.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(),
        vec![id.as_str()]
    );
    assert!(f.vault.training_report(&read, 20).await.unwrap().is_empty());
    assert!(
        f.vault
            .record_training(&auth, &id, START + 86_400)
            .await
            .is_err(),
        "future date refused"
    );
}

/// A sealed vault answers every name alike (a `Sealed` for known names only would tell them).
#[tokio::test]
async fn a_sealed_vault_answers_every_name_alike() {
    let f = fixture("sealed").await;
    f.enrolled("amina", &["support"]).await;
    let a = admin();
    f.vault.seal(&authorize::<Manage>(&a).unwrap()).unwrap();
    for name in ["amina", "nobody"] {
        let r = f.vault.login(name, pw(PASSWORD), "000000").await.result;
        assert!(matches!(r, Err(CoreError::Sealed)), "{name}");
    }
}

/// Attempts made in parallel are each counted before they are checked: the account locks, and
/// the right password and code are then refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_attempts_cannot_outrun_the_lockout() {
    let f = fixture("parallel").await;
    let (_, app) = f.enrolled("amina", &["support"]).await;
    let vault = Arc::new(f.vault);
    let tries: Vec<_> = (0..20)
        .map(|i| {
            let v = vault.clone();
            tokio::spawn(async move {
                v.login("amina", pw(&format!("wrong-password-{i}")), "000000")
                    .await
                    .result
                    .is_err()
            })
        })
        .collect();
    for t in tries {
        assert!(t.await.unwrap());
    }
    let now = vault.now() as u64;
    let r = vault
        .login("amina", pw(PASSWORD), &app.code_at(now))
        .await
        .result;
    assert!(matches!(r, Err(CoreError::LoginFailed)));
    let a = admin();
    let listed = vault
        .users(&authorize::<Manage>(&a).unwrap())
        .await
        .unwrap();
    assert_eq!(listed[0].status, UserStatus::Locked);
}

/// A change read before another write is refused and read again, never written over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_change_never_undoes_a_disable() {
    let f = fixture("clobber").await;
    let (id, _) = f.enrolled("amina", &["support"]).await;
    let a = admin();
    let auth = authorize::<Manage>(&a).unwrap();
    let change = f
        .vault
        .change_password(&id, pw(PASSWORD), pw("lantern-river-77-kite"));
    let disable = f.vault.set_user_disabled(&auth, &id, true);
    let (_, disabled) = tokio::join!(change, disable);
    disabled.unwrap();
    let listed = f.vault.users(&auth).await.unwrap();
    assert_eq!(listed[0].status, UserStatus::Disabled);
}
