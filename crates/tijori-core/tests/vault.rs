//! The vault's services over the real SQLite store, with a fixed clock so expiry is tested
//! without sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;

use tijori_core::policy::{authorize, Detokenize, Manage, Role, Search, Tokenize};
use tijori_core::{CoreError, FixedClock, Principal, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_store::sqlite::SqliteStore;
use tijori_store::TokenStore;
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
        roles: roles.to_vec(),
        created_at: 0,
        disabled: false,
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
