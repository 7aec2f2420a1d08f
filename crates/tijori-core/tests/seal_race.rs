//! A key reload that is under way when an operator seals the node must not bring the keys
//! back. The reload is held up inside the store (PostgreSQL, with the key table locked by
//! another session) while the node is sealed; once it finishes, the node must still be sealed.
//! Skipped, with a note, when `DATABASE_URL` is not set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tijori_core::policy::{authorize, Manage, Role};
use tijori_core::{Principal, PrincipalKind, SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_store::postgres::PgStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_under_way_never_unseals_a_sealed_node() {
    let url = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            eprintln!("DATABASE_URL is not set: seal race test skipped");
            return;
        }
    };
    let schema = format!("sr_{}", std::process::id());
    let store = Arc::new(PgStore::connect_in_schema(&url, &schema).await.unwrap());
    let vault = Arc::new(
        Vault::open(store, Arc::new(SystemClock), VaultConfig::default())
            .await
            .unwrap(),
    );
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("seal-race-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
    vault.unseal(Arc::new(provider)).await.unwrap();

    // Another session locks the key table: a reload now waits inside the store.
    let (locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    locker
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {schema}.keks IN ACCESS EXCLUSIVE MODE"
        ))
        .await
        .unwrap();
    let reloading = tokio::spawn({
        let vault = vault.clone();
        async move { vault.apply_change("keys").await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = Principal {
        id: "root".into(),
        name: "root".into(),
        kind: PrincipalKind::Root,
        roles: vec![Role::Admin],
        created_at: 0,
        disabled: false,
        training_lapsed: false,
        custom_rules: Default::default(),
    };
    vault.seal(&authorize::<Manage>(&admin).unwrap()).unwrap();
    locker.batch_execute("COMMIT").await.unwrap();
    let _ = reloading.await.unwrap();
    assert!(
        vault.is_sealed(),
        "the reload brought the keys back after the seal"
    );

    locker
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    drop(locker);
    let _ = driver.await;
}
