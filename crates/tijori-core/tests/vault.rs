//! The vault's services over the real SQLite store, with a fixed clock so expiry is tested
//! without sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;

use tijori_core::audit::{AuditEvent, Outcome};
use tijori_core::policy::{authorize, Detokenize, Manage, Role, Search, Tokenize};
use tijori_core::{Clock, CoreError, FixedClock, Principal, Source, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_store::sqlite::SqliteStore;
use tijori_store::{AuditStore, KeyStore, TokenStore};
use tijori_types::api::TokenizeRequest;

fn dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("core-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn who(roles: &[Role]) -> Principal {
    Principal {
        id: "t".into(),
        name: "t".into(),
        kind: tijori_core::PrincipalKind::Service,
        roles: roles.to_vec(),
        created_at: 0,
        disabled: false,
        training_lapsed: false,
        custom_rules: Default::default(),
    }
}

fn req(ty: &str, value: &str) -> TokenizeRequest {
    serde_json::from_value(serde_json::json!({"type": ty, "value": value})).unwrap()
}

struct Fixture {
    vault: Arc<Vault>,
    store: Arc<SqliteStore>,
    clock: Arc<FixedClock>,
    dir: PathBuf,
}

async fn fixture(name: &str) -> Fixture {
    let dir = dir(name);
    open(dir).await
}

async fn open(dir: PathBuf) -> Fixture {
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let clock = Arc::new(FixedClock::new(1_800_000_000));
    let vault = Vault::open(store.clone(), clock.clone(), VaultConfig::default())
        .await
        .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    vault.unseal(Arc::new(provider)).await.unwrap();
    Fixture {
        vault: Arc::new(vault),
        store,
        clock,
        dir,
    }
}

async fn reveal(v: &Vault, token: &str) -> Result<String, CoreError> {
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Detokenize>(&p).unwrap();
    let mut out = v.detokenize(&auth, &[token.to_owned()]).await.unwrap();
    out.pop().unwrap().map(|d| d.value.to_string())
}

#[tokio::test]
async fn tokens_expire_at_their_ttl() {
    let f = fixture("ttl").await;
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let mut r = req("iban", "PK36SCBL0000001123456702");
    r.ttl_seconds = Some(10);
    let (resp, created) = f.vault.tokenize(&auth, r).await.unwrap();
    assert!(created);
    assert!(resp.expires_at.is_some());
    let mut cvc = req("card_security_code", "123");
    cvc.ttl_seconds = Some(10);
    let (cvc_resp, _) = f.vault.tokenize(&auth, cvc).await.unwrap();
    f.clock.advance(9);
    assert_eq!(
        reveal(&f.vault, &resp.token).await.unwrap(),
        "PK36SCBL0000001123456702"
    );
    f.clock.advance(1);
    assert!(matches!(
        reveal(&f.vault, &resp.token).await,
        Err(CoreError::NotFound)
    ));
    assert!(matches!(
        reveal(&f.vault, &cvc_resp.token).await,
        Err(CoreError::NotFound)
    ));
    let search = authorize::<Search>(&p).unwrap();
    assert!(matches!(
        f.vault.describe(&search, &resp.token).await,
        Err(CoreError::NotFound)
    ));
    f.vault.housekeeping().await.unwrap();
    assert!(
        f.store.token(&resp.token, 0).await.unwrap().is_none(),
        "purged from the store"
    );
}

#[tokio::test]
async fn subjects_get_their_own_data_keys() {
    let f = fixture("subjects").await;
    let p = who(&[Role::Tokenizer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let mut ids = Vec::new();
    for subject in [
        None,
        Some("customer-1"),
        Some("customer-2"),
        Some("customer-1"),
    ] {
        let mut r = req("bank_account", "PK-0012-3456-78");
        r.subject = subject.map(str::to_owned);
        let (resp, _) = f.vault.tokenize(&auth, r).await.unwrap();
        ids.push(
            f.store
                .token(&resp.token, 0)
                .await
                .unwrap()
                .unwrap()
                .data_key_id,
        );
    }
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_eq!(ids[1], ids[3]);
}

/// A batch for more subjects than a request keeps keys ready for (16) seals each value under
/// its own subject's key, the kept ones and those past them alike.
#[tokio::test]
async fn a_batch_for_many_subjects_seals_each_under_its_own_key() {
    let f = fixture("many-subjects").await;
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let values: Vec<String> = (0..40).map(|i| format!("note {i}")).collect();
    let items = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut r = req("text", v);
            r.subject = Some(format!("customer-{}", i % 20));
            Ok(r)
        })
        .collect();
    let out = f.vault.tokenize_many(&auth, items).await.unwrap();
    let mut keys = std::collections::HashMap::new();
    for (i, (answer, v)) in out.into_iter().zip(&values).enumerate() {
        let token = answer.unwrap().0.token;
        assert_eq!(&reveal(&f.vault, &token).await.unwrap(), v);
        let rec = f.store.token(&token, 0).await.unwrap().unwrap();
        keys.entry(i % 20).or_insert(rec.data_key_id);
        assert_eq!(keys[&(i % 20)], rec.data_key_id, "one key per subject");
    }
    let distinct: std::collections::HashSet<_> = keys.values().collect();
    assert_eq!(distinct.len(), 20);
}

#[tokio::test]
async fn concurrent_deterministic_requests_yield_one_token() {
    let f = fixture("race").await;
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let v = f.vault.clone();
        tasks.push(tokio::spawn(async move {
            let p = who(&[Role::Tokenizer]);
            let auth = authorize::<Tokenize>(&p).unwrap();
            let mut r = req("pk_mobile", "0300 1234567");
            r.deterministic = true;
            v.tokenize(&auth, r).await.unwrap()
        }));
    }
    let mut tokens = Vec::new();
    let mut created = 0;
    for t in tasks {
        let (resp, c) = t.await.unwrap();
        tokens.push(resp.token);
        created += usize::from(c);
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "one token for one value");
    assert_eq!(created, 1, "exactly one request created it");
}

#[tokio::test]
async fn seal_refuses_data_and_unseal_restores_it() {
    let f = fixture("seal").await;
    let admin = who(&[Role::Admin]);
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let (resp, _) = f
        .vault
        .tokenize(&auth, req("cnic", "35202-1234567-1"))
        .await
        .unwrap();
    let (cvc, _) = f
        .vault
        .tokenize(&auth, req("card_security_code", "987"))
        .await
        .unwrap();
    f.vault.seal(&authorize::<Manage>(&admin).unwrap()).unwrap();
    assert!(f.vault.is_sealed());
    assert!(matches!(
        f.vault
            .tokenize(&auth, req("cnic", "35202-1234567-1"))
            .await,
        Err(CoreError::Sealed)
    ));
    let det = authorize::<Detokenize>(&p).unwrap();
    assert!(matches!(
        f.vault
            .detokenize(&det, std::slice::from_ref(&resp.token))
            .await,
        Err(CoreError::Sealed)
    ));
    let (provider, _) = DevKeyFile::load_or_create(&f.dir.join("root.key")).unwrap();
    f.vault.unseal(Arc::new(provider)).await.unwrap();
    assert_eq!(
        reveal(&f.vault, &resp.token).await.unwrap(),
        "3520212345671"
    );
    // Sealing forgot the card security code for good.
    assert!(matches!(
        reveal(&f.vault, &cvc.token).await,
        Err(CoreError::NotFound)
    ));
}

#[tokio::test]
async fn values_survive_reopen_and_another_root_key_cannot_unseal() {
    let f = fixture("reopen").await;
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let (resp, _) = f
        .vault
        .tokenize(&auth, req("text", "note: customer prefers Urdu"))
        .await
        .unwrap();
    let dir = f.dir.clone();
    drop(f);
    let again = open(dir.clone()).await;
    assert_eq!(
        reveal(&again.vault, &resp.token).await.unwrap(),
        "note: customer prefers Urdu"
    );
    let store = Arc::new(SqliteStore::open(&dir).unwrap());
    let vault = Vault::open(store, again.clock.clone(), VaultConfig::default())
        .await
        .unwrap();
    let (other, _) = DevKeyFile::load_or_create(&dir.join("other.key")).unwrap();
    assert!(
        vault.unseal(Arc::new(other)).await.is_err(),
        "a key from another vault must not unseal this one"
    );
    assert!(vault.is_sealed());
}

#[tokio::test]
async fn batches_answer_in_order_with_per_item_errors() {
    let f = fixture("batch").await;
    let p = who(&[Role::Tokenizer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let items = vec![
        Ok(req("card_number", "4111111111111111")),
        Ok(req("card_number", "4111111111111112")),
        Err(CoreError::InvalidRequest("parse")),
        Ok(req("cnic", "4210112345678")),
    ];
    let out = f.vault.tokenize_many(&auth, items).await.unwrap();
    assert_eq!(out.len(), 4);
    assert!(out[0].is_ok() && out[3].is_ok());
    assert_eq!(
        out[1].as_ref().err().unwrap().code(),
        tijori_types::ErrorCode::InvalidCardNumber
    );
    assert!(matches!(out[2], Err(CoreError::InvalidRequest(_))));
    let too_many = (0..10_001).map(|_| Ok(req("text", "x"))).collect();
    assert!(matches!(
        f.vault.tokenize_many(&auth, too_many).await,
        Err(CoreError::TooManyItems)
    ));
}

/// A batch whose new tokens all go in writes its record in their commit, naming every token it
/// answers with, in order; where no token is new, nothing is written here and the caller
/// records the request itself.
#[tokio::test]
async fn a_batch_record_is_written_with_its_new_tokens() {
    let f = fixture("batch-record").await;
    let p = who(&[Role::Tokenizer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let det = || -> TokenizeRequest {
        serde_json::from_value(serde_json::json!(
            {"type": "card_number", "value": "4111111111111111", "deterministic": true}
        ))
        .unwrap()
    };
    let existing = f.vault.tokenize(&auth, det()).await.unwrap().0.token;
    let draft = || {
        Some(AuditEvent::system(
            0,
            "tokenize_batch",
            Outcome::Success,
            None,
        ))
    };
    let rows = || async { f.store.audit_rows(0, 10_000).await.unwrap() };
    let before = rows().await.len();
    let items = vec![
        Ok(det()),
        Err(CoreError::InvalidRequest("parse")),
        Ok(req("cnic", "4210112345678")),
    ];
    let (out, recorded) = f
        .vault
        .tokenize_many_recorded(&auth, items, draft())
        .await
        .unwrap();
    assert!(recorded);
    let after = rows().await;
    assert_eq!(after.len(), before + 1);
    let rec: serde_json::Value = serde_json::from_str(&after[before].record).unwrap();
    let new = &out[2].as_ref().unwrap().0.token;
    assert_eq!(rec["resource"], format!("{existing},{new}"));
    assert_eq!(rec["data_type"], "card_number,cnic");
    assert_eq!(rec["outcome"], "success");

    let (out, recorded) = f
        .vault
        .tokenize_many_recorded(&auth, vec![Ok(det())], draft())
        .await
        .unwrap();
    assert_eq!(out[0].as_ref().unwrap().0.token, existing);
    assert!(!recorded);
    // One new value twice: the second finds the first's token in the same commit, which is
    // then not the all-new commit the record describes, so it is left to the caller too.
    let twice = || -> TokenizeRequest {
        serde_json::from_value(serde_json::json!(
            {"type": "card_number", "value": "4000056655665556", "deterministic": true}
        ))
        .unwrap()
    };
    let (out, recorded) = f
        .vault
        .tokenize_many_recorded(&auth, vec![Ok(twice()), Ok(twice())], draft())
        .await
        .unwrap();
    let (a, b) = (&out[0].as_ref().unwrap().0, &out[1].as_ref().unwrap().0);
    assert_eq!(a.token, b.token);
    assert!(!recorded);
    assert_eq!(rows().await.len(), before + 1);
}

/// A batch's random tokens share their group (the 8 hex digits after `tok_`), so that they are
/// stored side by side; each still has 128 random bits of its own. One caller's single
/// tokenizes within a second share a group too; another caller, a later second or a batch draw
/// their own. Every token reveals its own value.
#[tokio::test]
async fn tokens_share_a_group_within_a_batch_or_a_callers_second() {
    let f = fixture("group").await;
    let p = who(&[Role::Revealer]);
    let auth = authorize::<Tokenize>(&p).unwrap();
    let values: Vec<String> = (0..50).map(|i| format!("note {i}")).collect();
    let items = values.iter().map(|v| Ok(req("text", v))).collect();
    let out = f.vault.tokenize_many(&auth, items).await.unwrap();
    let tokens: Vec<String> = out.into_iter().map(|r| r.unwrap().0.token).collect();
    let is_hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    for t in &tokens {
        assert_eq!(t.len(), 44, "{t}");
        assert!(t.starts_with("tok_") && is_hex(&t[4..]), "{t}");
        assert_eq!(t[..12], tokens[0][..12], "one group per batch");
    }
    let own: std::collections::HashSet<&str> = tokens.iter().map(|t| &t[12..]).collect();
    assert_eq!(own.len(), tokens.len(), "each token's own part differs");
    for (t, v) in tokens.iter().zip(&values) {
        assert_eq!(&reveal(&f.vault, t).await.unwrap(), v);
    }

    let single = |p: Principal, v: &'static str| {
        let vault = f.vault.clone();
        async move {
            let auth = authorize::<Tokenize>(&p).unwrap();
            vault.tokenize(&auth, req("text", v)).await.unwrap().0.token
        }
    };
    let (a, b) = (single(p.clone(), "a").await, single(p.clone(), "b").await);
    assert_eq!(a[..12], b[..12], "one caller's second shares a group");
    assert_ne!(a[12..], b[12..]);
    assert_eq!(reveal(&f.vault, &b).await.unwrap(), "b");
    // Two 32-bit groups drawn alike: one chance in four billion of a false failure each.
    assert_ne!(a[..12], tokens[0][..12], "a batch draws its own group");
    let other = Principal {
        id: "u".into(),
        ..p.clone()
    };
    assert_ne!(
        single(other, "c").await[..12],
        a[..12],
        "callers share nothing"
    );
    f.clock.advance(1);
    assert_ne!(single(p, "d").await[..12], a[..12], "nor do seconds");
}

// ---------------------------------------------------------------------------------------------
// Service principals: key rotation with a grace period, expiry, and bindings to networks and
// client certificates (issue 4, point 3).

fn principal_req(body: serde_json::Value) -> tijori_types::api::CreatePrincipalRequest {
    serde_json::from_value(body).unwrap()
}

fn rotate_req(grace: Option<u64>) -> tijori_types::api::RotatePrincipalRequest {
    tijori_types::api::RotatePrincipalRequest {
        grace_seconds: grace,
    }
}

fn restrict_req(body: serde_json::Value) -> tijori_types::api::RestrictPrincipalRequest {
    serde_json::from_value(body).unwrap()
}

/// Whether `key` authenticates, from `ip` with the client certificate `cert`.
fn works(v: &Vault, key: &str, ip: Option<&str>, cert: Option<[u8; 32]>) -> bool {
    let source = Source {
        ip: ip.map(|i| i.parse().unwrap()),
        client_cert_sha256: cert,
    };
    match v.authenticate_from(key, &source) {
        Ok(_) => true,
        Err(CoreError::Unauthenticated) => false,
        Err(e) => panic!("unexpected {e:?}"),
    }
}

#[tokio::test]
async fn rotation_keeps_the_old_key_for_its_grace_period_only() {
    let f = fixture("prn-rotate").await;
    let admin = who(&[Role::Admin]);
    let auth = authorize::<Manage>(&admin).unwrap();
    let created = f
        .vault
        .create_principal(
            &auth,
            principal_req(serde_json::json!({"name": "svc", "roles": ["tokenizer"]})),
        )
        .await
        .unwrap();
    let (id, k1) = (created.principal.id.clone(), created.api_key);
    assert!(works(&f.vault, &k1, None, None));

    let r = f
        .vault
        .rotate_principal_key(&auth, &id, rotate_req(Some(60)))
        .await
        .unwrap();
    let k2 = r.api_key;
    assert!(k2.starts_with("tjk_") && k2 != k1);
    assert_eq!(
        r.principal.previous_key_expires_at.as_deref(),
        Some(tijori_core::rfc3339(1_800_000_060).as_str())
    );
    assert!(works(&f.vault, &k1, None, None) && works(&f.vault, &k2, None, None));
    f.clock.advance(59);
    assert!(works(&f.vault, &k1, None, None), "one second of grace left");
    f.clock.advance(1);
    assert!(!works(&f.vault, &k1, None, None), "grace over");
    assert!(works(&f.vault, &k2, None, None));

    // Rotating during a grace period ends the older key at once: one previous key only.
    let k3 = f
        .vault
        .rotate_principal_key(&auth, &id, rotate_req(None))
        .await
        .unwrap()
        .api_key;
    let k4 = f
        .vault
        .rotate_principal_key(&auth, &id, rotate_req(Some(3600)))
        .await
        .unwrap()
        .api_key;
    assert!(!works(&f.vault, &k2, None, None));
    assert!(works(&f.vault, &k3, None, None) && works(&f.vault, &k4, None, None));
    let r = f
        .vault
        .rotate_principal_key(&auth, &id, rotate_req(Some(0)))
        .await
        .unwrap();
    assert!(r.principal.previous_key_expires_at.is_none());
    assert!(!works(&f.vault, &k3, None, None) && !works(&f.vault, &k4, None, None));
    assert!(works(&f.vault, &r.api_key, None, None));

    // The store holds the same: a restart keeps exactly the new key.
    drop(f.vault);
    let again = open(f.dir.clone()).await;
    assert!(works(&again.vault, &r.api_key, None, None));
    assert!(!works(&again.vault, &k4, None, None));

    let too_long = again
        .vault
        .rotate_principal_key(&auth, &id, rotate_req(Some(30 * 86_400 + 1)))
        .await;
    assert!(matches!(too_long, Err(CoreError::InvalidRequest(_))));
    let unknown = again
        .vault
        .rotate_principal_key(&auth, "prn_nobody", rotate_req(None))
        .await;
    assert!(matches!(unknown, Err(CoreError::NotFound)));
}

#[tokio::test]
async fn restrictions_bind_keys_to_time_networks_and_a_certificate() {
    let f = fixture("prn-restrict").await;
    let admin = who(&[Role::Admin]);
    let auth = authorize::<Manage>(&admin).unwrap();
    let cert = [0x5a; 32];
    let created = f
        .vault
        .create_principal(
            &auth,
            principal_req(serde_json::json!({
                "name": "bound", "roles": ["tokenizer"],
                "expires_at": tijori_core::rfc3339(1_800_000_100),
                "allowed_cidrs": ["10.0.0.0/8", "2001:db8::/32"],
                "client_cert_sha256": hex::encode(cert),
            })),
        )
        .await
        .unwrap();
    let (p, key) = (created.principal, created.api_key);
    assert_eq!(p.allowed_cidrs, ["10.0.0.0/8", "2001:db8::/32"]);
    assert_eq!(p.client_cert_sha256, Some(hex::encode(cert)));
    assert!(works(&f.vault, &key, Some("10.1.2.3"), Some(cert)));
    assert!(works(&f.vault, &key, Some("2001:db8::7"), Some(cert)));
    assert!(
        !works(&f.vault, &key, Some("127.0.0.1"), Some(cert)),
        "network"
    );
    assert!(
        !works(&f.vault, &key, Some("10.1.2.3"), None),
        "no certificate"
    );
    assert!(
        !works(&f.vault, &key, Some("10.1.2.3"), Some([0x5b; 32])),
        "other certificate"
    );
    assert!(
        f.vault.authenticate(&key).is_err(),
        "a source-less check refuses a bound principal"
    );
    f.clock.advance(100);
    assert!(
        !works(&f.vault, &key, Some("10.1.2.3"), Some(cert)),
        "expired"
    );

    // Lifted again (explicit nulls), the key works from anywhere.
    let lifted = f
        .vault
        .restrict_principal(
            &auth,
            &p.id,
            restrict_req(serde_json::json!({
                "expires_at": null, "allowed_cidrs": [], "client_cert_sha256": null,
            })),
            &Source::default(),
        )
        .await
        .unwrap();
    assert!(lifted.expires_at.is_none() && lifted.allowed_cidrs.is_empty());
    assert!(works(&f.vault, &key, None, None));
    let listed = f.vault.principals(&auth).await.unwrap();
    assert!(listed
        .iter()
        .any(|q| q.id == p.id && q.client_cert_sha256.is_none()));

    let restrictions = |expires: Option<&str>, cidr: Option<&str>, cert: Option<&str>| {
        serde_json::json!({
            "expires_at": expires,
            "allowed_cidrs": cidr.into_iter().collect::<Vec<_>>(),
            "client_cert_sha256": cert,
        })
    };
    for bad in [
        restrictions(Some("2020-01-01T00:00:00Z"), None, None),
        restrictions(None, Some("10.0.0.0"), None),
        restrictions(None, None, Some("abc")),
    ] {
        let r = f
            .vault
            .restrict_principal(&auth, &p.id, restrict_req(bad), &Source::default())
            .await;
        assert!(matches!(r, Err(CoreError::InvalidRequest(_))));
    }
    let none = restrict_req(serde_json::json!({
        "expires_at": null, "allowed_cidrs": [], "client_cert_sha256": null,
    }));
    let r = f
        .vault
        .restrict_principal(&auth, "prn_nobody", none, &Source::default())
        .await;
    assert!(matches!(r, Err(CoreError::NotFound)));
}

#[tokio::test]
async fn a_principal_cannot_restrict_itself_out() {
    let f = fixture("prn-self").await;
    f.vault.install_root_token("root-self-test").await.unwrap();
    let root = f.vault.authenticate("root-self-test").unwrap();
    let auth = authorize::<Manage>(&root).unwrap();
    let fence = |cidr: &str| {
        restrict_req(serde_json::json!({
            "expires_at": null, "allowed_cidrs": [cidr], "client_cert_sha256": null,
        }))
    };
    let here = Source {
        ip: Some("127.0.0.1".parse().unwrap()),
        client_cert_sha256: None,
    };
    let r = f
        .vault
        .restrict_principal(&auth, tijori_core::ROOT_ID, fence("10.0.0.0/8"), &here)
        .await;
    assert!(matches!(r, Err(CoreError::InvalidRequest(_))));
    assert!(works(&f.vault, "root-self-test", Some("127.0.0.1"), None));
    f.vault
        .restrict_principal(&auth, tijori_core::ROOT_ID, fence("127.0.0.0/8"), &here)
        .await
        .unwrap();
    assert!(works(&f.vault, "root-self-test", Some("127.0.0.1"), None));
    assert!(!works(&f.vault, "root-self-test", Some("192.0.2.1"), None));
}

#[tokio::test]
async fn another_nodes_changes_arrive_with_a_reload() {
    let f = fixture("prn-reload").await;
    let admin = who(&[Role::Admin]);
    let auth = authorize::<Manage>(&admin).unwrap();
    let created = f
        .vault
        .create_principal(
            &auth,
            principal_req(serde_json::json!({"name": "svc", "roles": ["support"]})),
        )
        .await
        .unwrap();
    let (id, key) = (created.principal.id, created.api_key);
    // Another node rotates the key (no grace) and fences the principal, in the shared store.
    use tijori_store::PrincipalStore;
    assert!(f
        .store
        .rotate_principal_key(&id, vec![0x11; 32], None)
        .await
        .unwrap());
    assert!(
        works(&f.vault, &key, None, None),
        "this node has not heard yet"
    );
    f.vault.reload_principals().await.unwrap();
    assert!(
        !works(&f.vault, &key, None, None),
        "a reload is all it takes"
    );
}

/// A deterministic token of another tenant's value is not handed to a tenant-scoped caller.
#[tokio::test]
async fn deterministic_tokens_stay_inside_their_tenant() {
    let f = fixture("tenant").await;
    let everyone = who(&[Role::Tokenizer]);
    let rule: tijori_core::policy::Rule = serde_json::from_value(serde_json::json!(
        {"types": ["*"], "operations": ["tokenize", "search"], "subject_prefix": "m7:"}
    ))
    .unwrap();
    let m7 = Principal {
        roles: vec![],
        custom_rules: Arc::from(vec![rule]),
        ..who(&[])
    };
    let req = |subject: &str| {
        serde_json::from_value(serde_json::json!({"type": "card_number",
            "value": "4111111111111111", "deterministic": true, "subject": subject}))
        .unwrap()
    };
    let (theirs, _) = f
        .vault
        .tokenize(&authorize::<Tokenize>(&everyone).unwrap(), req("m8:c1"))
        .await
        .unwrap();
    let mine = f
        .vault
        .tokenize(&authorize::<Tokenize>(&m7).unwrap(), req("m7:c9"))
        .await;
    assert!(matches!(mine, Err(CoreError::Forbidden(_))), "{theirs:?}");
    let again = f
        .vault
        .tokenize(&authorize::<Tokenize>(&everyone).unwrap(), req("m8:c1"))
        .await
        .unwrap();
    assert_eq!(again.0.token, theirs.token);
}

/// A second vault over the fixture's store, unsealed with its root key: another node.
async fn another_node(f: &Fixture) -> Vault {
    let other = Vault::open(f.store.clone(), f.clock.clone(), VaultConfig::default())
        .await
        .unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&f.dir.join("root.key")).unwrap();
    other.unseal(Arc::new(provider)).await.unwrap();
    other
}

/// The id of the vault-wide data key tokens are written under now.
async fn active_data_key(f: &Fixture) -> i64 {
    f.store
        .active_data_key("data", "")
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Two vaults over one store stand for two nodes. When one rotates the data key (or erases a
/// subject), the other, not yet told, still holds the old key: the store refuses its write,
/// and it writes again under the current key. Nothing lands under a key rotated away.
#[tokio::test]
async fn a_node_that_missed_a_rotation_never_writes_under_the_old_key() {
    let f = fixture("stale").await;
    let other = another_node(&f).await;
    let tok = who(&[Role::Tokenizer]);
    let auth = authorize::<Tokenize>(&tok).unwrap();
    // Both hold the vault-wide key and a subject's key.
    for v in [&*f.vault, &other] {
        v.tokenize(&auth, req("text", "warm")).await.unwrap();
        let mut r = req("text", "warm");
        r.subject = Some("cust-1".into());
        v.tokenize(&auth, r).await.unwrap();
    }
    let admin = who(&[Role::Admin]);
    let manage = authorize::<Manage>(&admin).unwrap();
    f.vault
        .rotate_key(&manage, tijori_core::rotation::KeyKind::Data)
        .await
        .unwrap();
    let officer = who(&[Role::DataOfficer]);
    f.vault
        .erase_subject(
            &authorize::<tijori_core::policy::Delete>(&officer).unwrap(),
            "cust-1",
        )
        .await
        .unwrap();
    let active = active_data_key(&f).await;
    let (made, _) = other.tokenize(&auth, req("text", "after")).await.unwrap();
    let rec = f
        .store
        .token(&made.token, f.clock.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.data_key_id, active, "written under the rotated-in key");
    let mut r = req("text", "after");
    r.subject = Some("cust-1".into());
    let (made, _) = other.tokenize(&auth, r).await.unwrap();
    let rec = f
        .store
        .token(&made.token, f.clock.now())
        .await
        .unwrap()
        .unwrap();
    let subject_key = f
        .store
        .active_data_key("data", "subject:cust-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        rec.data_key_id, subject_key.id,
        "a new key for the erased subject"
    );
    assert_eq!(reveal(&other, &made.token).await.unwrap(), "after");
}

/// A batch whose key another node rotated away finds its rows refused, so the commit offered
/// its record holds none of its tokens and must not hold the record either. The retry under
/// the current key does not take the record: it is left to the caller, who writes it after the
/// answer, and the tokens answered are those that went in, under the current key.
#[tokio::test]
async fn a_batch_that_meets_a_rotated_key_leaves_its_record_to_the_caller() {
    let f = fixture("stale-batch").await;
    let other = another_node(&f).await;
    let tok = who(&[Role::Tokenizer]);
    let auth = authorize::<Tokenize>(&tok).unwrap();
    other.tokenize(&auth, req("text", "warm")).await.unwrap();
    let admin = who(&[Role::Admin]);
    f.vault
        .rotate_key(
            &authorize::<Manage>(&admin).unwrap(),
            tijori_core::rotation::KeyKind::Data,
        )
        .await
        .unwrap();
    let active = active_data_key(&f).await;
    let before = f.store.audit_rows(0, 10_000).await.unwrap().len();
    let draft = AuditEvent::system(0, "tokenize_batch", Outcome::Success, None);
    let items = vec![Ok(req("text", "one")), Ok(req("text", "two"))];
    let (out, recorded) = other
        .tokenize_many_recorded(&auth, items, Some(draft))
        .await
        .unwrap();
    assert!(!recorded, "the record did not go in with the tokens");
    assert_eq!(f.store.audit_rows(0, 10_000).await.unwrap().len(), before);
    for (answer, value) in out.iter().zip(["one", "two"]) {
        let token = &answer.as_ref().unwrap().0.token;
        let rec = f.store.token(token, f.clock.now()).await.unwrap().unwrap();
        assert_eq!(rec.data_key_id, active, "written under the rotated-in key");
        assert_eq!(reveal(&other, token).await.unwrap(), value);
    }
}
