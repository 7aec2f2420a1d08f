//! Accounts and settings: service principals and their keys, idempotency answers, meta
//! settings, operators and their sessions, custom roles and dual-control approvals.

use tijori_store::{
    ApprovalRecord, IdempotencyRecord, LoginFailure, PrincipalRecord, RoleRecord, SessionRecord,
    Store, UserRecord,
};

pub(crate) async fn principals_and_idempotency(s: &dyn Store) {
    let p = PrincipalRecord {
        id: "p1".into(),
        name: "svc".into(),
        roles: vec!["tokenizer".into(), "support".into()],
        key_hash: vec![5; 32],
        created_at: 1,
        disabled: false,
        ..Default::default()
    };
    s.insert_principal(p.clone()).await.unwrap();
    assert_eq!(s.principals().await.unwrap(), vec![p]);
    assert!(s.set_principal_disabled("p1", true).await.unwrap());
    assert!(s.set_principal_key("p1", vec![6; 32]).await.unwrap());
    assert!(!s.set_principal_key("nobody", vec![7; 32]).await.unwrap());
    let got = &s.principals().await.unwrap()[0];
    assert!(got.disabled && got.key_hash == vec![6; 32]);

    let rec = IdempotencyRecord {
        principal_id: "p1".into(),
        key: "k".into(),
        fingerprint: vec![1; 32],
        status: 201,
        body: b"{}".to_vec(),
        created_at: 10,
    };
    assert!(s.put_idempotency(rec.clone()).await.unwrap());
    assert_eq!(s.idempotency("p1", "k").await.unwrap().unwrap(), rec);
    assert!(s.idempotency("p2", "k").await.unwrap().is_none());
    assert_eq!(s.purge_idempotency(11).await.unwrap(), 1);
    s.set_meta("vault_id", "v1").await.unwrap();
    s.set_meta("vault_id", "v2").await.unwrap();
    assert_eq!(s.meta("vault_id").await.unwrap().as_deref(), Some("v2"));
}

/// Rotation, grace keys and restrictions: each change touches only its own fields, and
/// concerns only the principal it names.
pub(crate) async fn principal_keys(s: &dyn Store) {
    let base = PrincipalRecord {
        id: "r1".into(),
        name: "rotating".into(),
        roles: vec!["tokenizer".into()],
        key_hash: vec![1; 32],
        created_at: 5,
        disabled: false,
        expires_at: Some(1_000),
        previous_key_hash: None,
        previous_key_expires_at: None,
        allowed_cidrs: vec!["10.0.0.0/8".into(), "::1/128".into()],
        client_cert_sha256: Some(vec![9; 32]),
    };
    let other = PrincipalRecord {
        id: "r2".into(),
        name: "bystander".into(),
        roles: vec!["support".into()],
        key_hash: vec![0xb0; 32],
        created_at: 6,
        ..Default::default()
    };
    s.insert_principal(base.clone()).await.unwrap();
    s.insert_principal(other.clone()).await.unwrap();
    let get = |id: &'static str| async move {
        s.principals()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap()
    };
    assert_eq!(get("r1").await, base, "every field round-trips");

    assert!(s
        .rotate_principal_key("r1", vec![2; 32], Some(200))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(p.key_hash, vec![2; 32]);
    assert_eq!(
        p.previous_key_hash,
        Some(vec![1; 32]),
        "the old key is kept"
    );
    assert_eq!(p.previous_key_expires_at, Some(200));
    assert!(s
        .rotate_principal_key("r1", vec![3; 32], Some(300))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![3; 32], Some(vec![2; 32]), Some(300)),
        "one previous key: the key current until the rotation"
    );
    assert!(s
        .rotate_principal_key("r1", vec![4; 32], None)
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![4; 32], None, None),
        "without a grace period no old key stays"
    );
    assert!(s
        .rotate_principal_key("r1", vec![5; 32], Some(500))
        .await
        .unwrap());
    assert!(s.set_principal_key("r1", vec![6; 32]).await.unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.key_hash, p.previous_key_hash, p.previous_key_expires_at),
        (vec![6; 32], None, None),
        "setting a key drops the grace key"
    );
    assert_eq!(
        (p.expires_at, p.allowed_cidrs, p.client_cert_sha256),
        (
            base.expires_at,
            base.allowed_cidrs.clone(),
            base.client_cert_sha256.clone()
        ),
        "keys change alone"
    );
    assert!(!s
        .rotate_principal_key("nobody", vec![7; 32], Some(1))
        .await
        .unwrap());

    assert!(s
        .set_principal_restrictions("r1", None, Vec::new(), None)
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.expires_at, p.allowed_cidrs.len(), p.client_cert_sha256),
        (None, 0, None),
        "restrictions clear"
    );
    let cidrs = vec!["192.168.0.0/16".to_owned()];
    assert!(s
        .set_principal_restrictions("r1", Some(77), cidrs.clone(), Some(vec![8; 32]))
        .await
        .unwrap());
    let p = get("r1").await;
    assert_eq!(
        (p.expires_at, p.allowed_cidrs, p.client_cert_sha256),
        (Some(77), cidrs, Some(vec![8; 32]))
    );
    assert_eq!(p.key_hash, vec![6; 32], "restrictions leave the key alone");
    assert!(!s
        .set_principal_restrictions("nobody", None, Vec::new(), None)
        .await
        .unwrap());
    assert_eq!(get("r2").await, other, "another principal is untouched");
}

fn user(id: &str, name: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: name.into(),
        roles: vec!["support".into(), "auditor".into()],
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        password_history: vec!["$argon2id$a,b".into(), "$argon2id$c,d".into()],
        enrollment_hash: Some(vec![3; 32]),
        enrollment_expires_at: Some(500),
        totp_sealed: Some(vec![4; 48]),
        totp_confirmed: false,
        last_totp_step: 0,
        failed_logins: 0,
        locked_until: None,
        last_active_at: 10,
        last_login_at: None,
        training_valid_until: Some(1000),
        created_at: 10,
        disabled: false,
        issued_by: "root".into(),
        revision: 0,
    }
}

pub(crate) async fn users(s: &dyn Store) {
    let amina = user("u1", "amina");
    assert!(s.insert_user(amina.clone()).await.unwrap());
    assert!(
        !s.insert_user(user("u2", "amina")).await.unwrap(),
        "name taken"
    );
    assert!(s.insert_user(user("u3", "bilal")).await.unwrap());
    assert_eq!(s.user("u1").await.unwrap().unwrap(), amina);
    assert_eq!(s.user_by_name("amina").await.unwrap().unwrap(), amina);
    assert!(s.user_by_name("nobody").await.unwrap().is_none());
    assert_eq!(s.users().await.unwrap().len(), 2);

    let mut changed = amina.clone();
    changed.roles = vec!["admin".into()];
    changed.password_history.insert(0, "$argon2id$e,f".into());
    changed.enrollment_hash = None;
    changed.training_valid_until = None;
    changed.disabled = true;
    changed.issued_by = "usr_admin".into();
    assert!(s.update_user(changed.clone()).await.unwrap());
    changed.revision = 1;
    assert_eq!(s.user("u1").await.unwrap().unwrap(), changed);
    assert!(!s.update_user(user("nobody", "x")).await.unwrap());
    // A change made from a stale read (revision 0) is refused, not written over revision 1.
    let mut stale = amina.clone();
    stale.disabled = false;
    assert!(!s.update_user(stale).await.unwrap());
    assert!(s.user("u1").await.unwrap().unwrap().disabled);

    // Three failures lock (max 3) until 200; a failure after the lock passed starts over.
    for n in 1..=2 {
        let f = s.login_failed("u3", 100, 3, 200).await.unwrap();
        assert_eq!(
            f,
            LoginFailure {
                failed_logins: n,
                locked_until: None
            }
        );
    }
    let f = s.login_failed("u3", 100, 3, 200).await.unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 3,
            locked_until: Some(200)
        }
    );
    let f = s.login_failed("u3", 150, 3, 250).await.unwrap();
    assert_eq!(
        f.locked_until,
        Some(200),
        "a failure while locked does not extend the lock"
    );
    let f = s.login_failed("u3", 200, 3, 300).await.unwrap();
    assert_eq!(
        f,
        LoginFailure {
            failed_logins: 1,
            locked_until: None
        }
    );

    // A step is accepted once; an older one is a replay; success clears the count.
    assert!(s.login_succeeded("u3", 50, 210).await.unwrap());
    assert!(!s.login_succeeded("u3", 50, 211).await.unwrap());
    assert!(!s.login_succeeded("u3", 49, 211).await.unwrap());
    let u3 = s.user("u3").await.unwrap().unwrap();
    assert_eq!((u3.failed_logins, u3.locked_until), (0, None));
    assert!(u3.totp_confirmed);
    assert_eq!(
        (u3.last_login_at, u3.last_active_at, u3.last_totp_step),
        (Some(210), 210, 50)
    );
    assert!(s.login_succeeded("u3", 51, 240).await.unwrap());
    // Every counter change is a new revision too, so an account edit read before it is refused.
    let read = s.user("u3").await.unwrap().unwrap();
    s.login_failed("u3", 250, 3, 400).await.unwrap();
    assert!(!s.update_user(read).await.unwrap());
    // No login while locked, or while disabled, whatever the code.
    s.login_failed("u3", 260, 2, 500).await.unwrap();
    assert!(
        !s.login_succeeded("u3", 60, 300).await.unwrap(),
        "locked until 500"
    );
    assert!(
        s.login_succeeded("u3", 60, 500).await.unwrap(),
        "the lock has passed"
    );
    let mut off = s.user("u3").await.unwrap().unwrap();
    off.disabled = true;
    assert!(s.update_user(off).await.unwrap());
    assert!(!s.login_succeeded("u3", 61, 510).await.unwrap(), "disabled");

    let sess = |h: u8, created: i64| SessionRecord {
        hash: vec![h; 32],
        user_id: "u3".into(),
        created_at: created,
        last_seen_at: created,
    };
    s.insert_session(sess(1, 100)).await.unwrap();
    s.insert_session(sess(2, 300)).await.unwrap();
    s.insert_session(sess(3, 300)).await.unwrap();
    assert!(s.touch_session(&[1; 32], 400).await.unwrap());
    assert!(s.touch_session(&[1; 32], 390).await.unwrap());
    assert_eq!(
        s.session(&[1; 32]).await.unwrap().unwrap().last_seen_at,
        400
    );
    assert!(!s.touch_session(&[9; 32], 400).await.unwrap());
    assert!(s.delete_session(&[3; 32]).await.unwrap());
    assert!(s.session(&[3; 32]).await.unwrap().is_none());
    // Session 2 idled out (seen at 300 < 350); session 1 is past its lifetime (created 100 < 150).
    assert_eq!(s.purge_sessions(350, 150).await.unwrap(), 2);
    s.insert_session(sess(4, 500)).await.unwrap();
    s.insert_session(sess(5, 500)).await.unwrap();
    assert_eq!(s.delete_user_sessions("u3").await.unwrap(), 2);
    assert!(s.session(&[4; 32]).await.unwrap().is_none());
}

pub(crate) async fn policies(s: &dyn Store) {
    let role = |name: &str, version: i64, deleted: bool| RoleRecord {
        name: name.into(),
        rules: format!(r#"[{{"v":{version}}}]"#),
        version,
        changed_at: 10 * version,
        changed_by: "admin-1".into(),
        deleted,
    };
    assert!(s.put_role(role("clerk", 1, false)).await.unwrap());
    assert!(
        !s.put_role(role("clerk", 1, false)).await.unwrap(),
        "version 1 exists"
    );
    assert!(
        !s.put_role(role("clerk", 3, false)).await.unwrap(),
        "must follow version 1"
    );
    assert!(s.put_role(role("clerk", 2, false)).await.unwrap());
    assert!(s.put_role(role("agent", 1, false)).await.unwrap());
    assert_eq!(
        s.roles().await.unwrap(),
        vec![role("agent", 1, false), role("clerk", 2, false)]
    );
    assert!(s.put_role(role("agent", 2, true)).await.unwrap());
    assert_eq!(s.roles().await.unwrap(), vec![role("clerk", 2, false)]);
    assert_eq!(
        s.role_history("agent").await.unwrap(),
        vec![role("agent", 1, false), role("agent", 2, true)]
    );
    assert!(s.role_history("nobody").await.unwrap().is_empty());

    let approval = |id: &str, at: i64| ApprovalRecord {
        id: id.into(),
        operation: "policy.change".into(),
        fingerprint: vec![1; 32],
        summary: "role clerk".into(),
        requested_by: "u1".into(),
        requested_at: at,
        expires_at: at + 3600,
        status: "pending".into(),
        decided_by: None,
        decided_at: None,
    };
    s.insert_approval(approval("a1", 100)).await.unwrap();
    s.insert_approval(approval("a2", 200)).await.unwrap();
    assert_eq!(
        s.approval("a1").await.unwrap().unwrap(),
        approval("a1", 100)
    );
    assert!(s.approval("zz").await.unwrap().is_none());
    let ids: Vec<String> = s
        .approvals(150)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, vec!["a2".to_owned()]);
    assert!(s
        .decide_approval("a1", "pending", "approved", Some("u2"), 120)
        .await
        .unwrap());
    assert!(!s
        .decide_approval("a1", "pending", "denied", Some("u3"), 121)
        .await
        .unwrap());
    assert!(s
        .decide_approval("a1", "approved", "used", None, 130)
        .await
        .unwrap());
    assert!(
        !s.decide_approval("a1", "approved", "used", None, 131)
            .await
            .unwrap(),
        "used once"
    );
    let a1 = s.approval("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.status.as_str(), a1.decided_by.as_deref(), a1.decided_at),
        ("used", Some("u2"), Some(120))
    );
}
