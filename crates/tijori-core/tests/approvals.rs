//! Dual control in the core with a fixed clock: who may approve, the window, one use per
//! approval, and custom roles resolved for operators.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;

use tijori_core::approval::{fingerprint, DualControl, Guarded};
use tijori_core::policy::{authorize, Manage, Role};
use tijori_core::{CoreError, FixedClock, Principal, PrincipalKind, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_store::sqlite::SqliteStore;

async fn vault(name: &str) -> (Vault, Arc<FixedClock>) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("approvals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let config = VaultConfig {
        dual_control: DualControl {
            guarded: [Guarded::PolicyChange].into_iter().collect(),
            ..DualControl::default()
        },
        ..VaultConfig::default()
    };
    let v = Vault::open(
        Arc::new(SqliteStore::open(&dir).unwrap()),
        clock.clone(),
        config,
    )
    .await
    .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    v.unseal(Arc::new(provider)).await.unwrap();
    (v, clock)
}

fn person(id: &str, kind: PrincipalKind, roles: &[Role]) -> Principal {
    Principal {
        id: id.into(),
        name: id.into(),
        kind,
        roles: roles.to_vec(),
        created_at: 0,
        disabled: false,
        training_lapsed: false,
        custom_rules: Default::default(),
    }
}

#[tokio::test]
async fn a_second_operator_approves_once_within_the_window() {
    let (v, clock) = vault("window").await;
    assert!(v.needs_approval(Guarded::PolicyChange));
    assert!(!v.needs_approval(Guarded::BulkReveal));
    let a = person("usr_a", PrincipalKind::Operator, &[Role::Admin]);
    let b = person("usr_b", PrincipalKind::Operator, &[Role::Admin]);
    let svc = person("prn_s", PrincipalKind::Service, &[Role::Admin]);
    let clerk = person("usr_c", PrincipalKind::Operator, &[Role::Support]);
    let print = fingerprint(Guarded::PolicyChange, "/v1/roles/x", b"{}");
    let req = v
        .request_approval(&a, Guarded::PolicyChange, print, "define x".into())
        .await
        .unwrap();
    assert_eq!(req.status, "pending");
    for who in [&a, &svc, &clerk] {
        assert!(matches!(
            v.decide_approval(who, &req.id, true).await,
            Err(CoreError::Forbidden(_))
        ));
    }
    assert!(v
        .use_approval(&a, Guarded::PolicyChange, print, &req.id)
        .await
        .is_err());
    assert_eq!(
        v.decide_approval(&b, &req.id, true).await.unwrap().status,
        "approved"
    );
    let other = fingerprint(Guarded::PolicyChange, "/v1/roles/y", b"{}");
    assert!(v
        .use_approval(&a, Guarded::PolicyChange, other, &req.id)
        .await
        .is_err());
    assert!(v
        .use_approval(&a, Guarded::KeyRotation, print, &req.id)
        .await
        .is_err());
    assert!(v
        .use_approval(&b, Guarded::PolicyChange, print, &req.id)
        .await
        .is_err());
    // Past the window an approval is expired, shown so, and unusable.
    clock.advance(3601);
    assert!(v
        .use_approval(&a, Guarded::PolicyChange, print, &req.id)
        .await
        .is_err());
    assert_eq!(v.approvals(1).await.unwrap()[0].status, "expired");

    let req = v
        .request_approval(&a, Guarded::PolicyChange, print, "define x".into())
        .await
        .unwrap();
    v.decide_approval(&b, &req.id, true).await.unwrap();
    v.use_approval(&a, Guarded::PolicyChange, print, &req.id)
        .await
        .unwrap();
    assert!(v
        .use_approval(&a, Guarded::PolicyChange, print, &req.id)
        .await
        .is_err());
    let late = v
        .request_approval(&a, Guarded::PolicyChange, print, "define x".into())
        .await
        .unwrap();
    clock.advance(3600);
    assert!(matches!(
        v.decide_approval(&b, &late.id, true).await,
        Err(CoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn custom_roles_are_versioned_and_checked() {
    let (v, _) = vault("roles").await;
    let root = person("root", PrincipalKind::Root, &[Role::Admin]);
    let auth = authorize::<Manage>(&root).unwrap();
    let rules: Vec<tijori_core::policy::Rule> = serde_json::from_value(serde_json::json!([
        {"types": ["iban"], "operations": ["detokenize"], "reveal": "full", "subject_prefix": "t1:"}
    ]))
    .unwrap();
    let r1 = v
        .put_role(&auth, "iban-t1", Some(rules.clone()), Some(0))
        .await
        .unwrap();
    assert_eq!((r1.version, r1.changed_by.as_deref()), (1, Some("root")));
    assert!(matches!(
        v.put_role(&auth, "iban-t1", Some(rules.clone()), Some(0))
            .await,
        Err(CoreError::Conflict(_))
    ));
    assert_eq!(
        v.put_role(&auth, "iban-t1", Some(rules.clone()), Some(1))
            .await
            .unwrap()
            .version,
        2
    );
    assert!(v
        .put_role(&auth, "admin", Some(rules.clone()), None)
        .await
        .is_err());
    assert!(matches!(
        v.put_role(&auth, "nothing", None, None).await,
        Err(CoreError::NoSuch(_))
    ));
    let deleted = v.put_role(&auth, "iban-t1", None, None).await.unwrap();
    assert!(deleted.deleted && deleted.version == 3);
    let history = v.role_history(&auth, "iban-t1").await.unwrap();
    assert_eq!(
        history.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        v.roles(&auth).await.unwrap().len(),
        6,
        "deleted roles are not listed"
    );
}

/// Whoever issued an account (created or reset it) held its enrollment code: neither that
/// account nor any it issued may approve their requests, and the root token's requests are
/// never approvable.
#[tokio::test]
async fn accounts_never_approve_for_their_issuers() {
    let (v, _) = vault("issuers").await;
    let root = person("root", PrincipalKind::Root, &[Role::Admin]);
    let as_root = authorize::<Manage>(&root).unwrap();
    let a = v
        .create_user(&as_root, "ayesha", &["admin".into()])
        .await
        .unwrap()
        .user;
    let b = v
        .create_user(&as_root, "bilal", &["admin".into()])
        .await
        .unwrap()
        .user;
    let ayesha = person(&a.id, PrincipalKind::Operator, &[Role::Admin]);
    let bilal = person(&b.id, PrincipalKind::Operator, &[Role::Admin]);
    // Ayesha issues chand, chand issues dua: both may be ayesha.
    let as_ayesha = authorize::<Manage>(&ayesha).unwrap();
    let c = v
        .create_user(&as_ayesha, "chand", &["admin".into()])
        .await
        .unwrap()
        .user;
    let chand = person(&c.id, PrincipalKind::Operator, &[Role::Admin]);
    let d = v
        .create_user(
            &authorize::<Manage>(&chand).unwrap(),
            "dua",
            &["admin".into()],
        )
        .await
        .unwrap()
        .user;
    let dua = person(&d.id, PrincipalKind::Operator, &[Role::Admin]);
    let print = fingerprint(Guarded::PolicyChange, "/v1/roles/x", b"{}");
    let req = v
        .request_approval(&ayesha, Guarded::PolicyChange, print, "x".into())
        .await
        .unwrap();
    for not_allowed in [&chand, &dua] {
        assert!(matches!(
            v.decide_approval(not_allowed, &req.id, true).await,
            Err(CoreError::Forbidden(_))
        ));
    }
    assert_eq!(
        v.decide_approval(&bilal, &req.id, true)
            .await
            .unwrap()
            .status,
        "approved"
    );
    let from_root = v
        .request_approval(&root, Guarded::PolicyChange, print, "x".into())
        .await
        .unwrap();
    for anyone in [&ayesha, &bilal, &chand, &dua] {
        assert!(v
            .decide_approval(anyone, &from_root.id, true)
            .await
            .is_err());
    }
    // A reset hands the code to the resetter: bilal reset by ayesha no longer approves hers.
    v.reset_user(&as_ayesha, &b.id).await.unwrap();
    let again = v
        .request_approval(&ayesha, Guarded::PolicyChange, print, "x".into())
        .await
        .unwrap();
    assert!(v.decide_approval(&bilal, &again.id, true).await.is_err());
}
