//! In-process benchmarks of the vault's data operations, below HTTP: `Vault::tokenize` and
//! `Vault::detokenize` over the real SQLite store in a scratch directory, unsealed with a dev
//! key file. They show how the cheap parts measured in tijori-types' and tijori-crypto's benches
//! add up, and what one durable (fsync'd) SQLite commit costs next to them.
//!
//! Token generation on its own (`tokens::new_token`) is crate-private and not reachable without
//! a store; its parts are public and measured where they live: `random_hex` and
//! `RandomPool::digit` in tijori-crypto, `format::preserving_token` in tijori-types. Here it is inside every
//! tokenize, and the card-security-code round trip runs it without touching the disk (those
//! codes are kept in memory only).
//!
//! The store-backed figures depend on the disk's fsync latency far more than on the CPU.
//!
//! `cargo bench -p tijori-core --bench vault`
// A bench is a non-test target for clippy, but like the tests it should stop loudly on a broken
// fixture rather than carry an error value around.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use tijori_core::policy::{authorize, Detokenize, Role, Tokenize};
use tijori_core::{Principal, PrincipalKind, SystemClock, Vault, VaultConfig};
use tijori_crypto::DevKeyFile;
use tijori_store::sqlite::SqliteStore;
use tijori_types::api::{TokenFormat, TokenizeRequest};

/// A 16-digit test card (tests/vectors/cards.csv).
const CARD: &str = "4111111111111111";

fn principal(roles: &[Role]) -> Principal {
    Principal {
        id: "bench".into(),
        name: "bench".into(),
        kind: PrincipalKind::Service,
        roles: roles.to_vec(),
        created_at: 0,
        disabled: false,
        training_lapsed: false,
        custom_rules: Default::default(),
    }
}

fn request(ty: &str, value: &str, format: TokenFormat, deterministic: bool) -> TokenizeRequest {
    TokenizeRequest {
        data_type: ty.into(),
        value: value.into(),
        format,
        deterministic,
        subject: None,
        ttl_seconds: None,
        metadata: None,
    }
}

fn vault_ops(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-vault-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let vault = rt.block_on(async {
        let store = Arc::new(SqliteStore::open(&dir).unwrap());
        let vault = Vault::open(store, Arc::new(SystemClock), VaultConfig::default())
            .await
            .unwrap();
        let (provider, _) = DevKeyFile::load_or_create(&dir.join("root.key")).unwrap();
        vault.unseal(Arc::new(provider)).await.unwrap();
        vault
    });
    let revealer = principal(&[Role::Revealer]);
    let tok = authorize::<Tokenize>(&revealer).unwrap();
    let det = authorize::<Detokenize>(&revealer).unwrap();
    let tokenize = |req: TokenizeRequest| rt.block_on(vault.tokenize(&tok, req)).unwrap();
    let detokenize = |token: String| {
        let mut out = rt.block_on(vault.detokenize(&det, &[token])).unwrap();
        out.pop().unwrap().unwrap()
    };
    // Warm the data key (the first tokenize makes and stores it) and check the fixtures.
    let (first, _) = tokenize(request("card_number", CARD, TokenFormat::Random, false));
    assert_eq!(&*detokenize(first.token.clone()).value, CARD);
    let (kept, _) = tokenize(request("card_number", CARD, TokenFormat::Random, true));

    let mut g = c.benchmark_group("vault_memory");
    // Normalize, a random token, seal under the process's own key, into the in-memory map, then
    // detokenize takes it out again (so the map does not grow over the run).
    g.bench_function("card_security_code_tokenize_detokenize", |b| {
        b.iter(|| {
            let (t, _) = tokenize(request(
                "card_security_code",
                black_box("737"),
                TokenFormat::Random,
                false,
            ));
            detokenize(t.token)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("vault_sqlite");
    // Each call is a few milliseconds of fsync: fewer samples keep the run short.
    g.sample_size(20);
    // Validate, make a token, seal, one durable commit (a new row every time).
    g.bench_function("tokenize_card_random", |b| {
        b.iter(|| {
            tokenize(request(
                "card_number",
                black_box(CARD),
                TokenFormat::Random,
                false,
            ))
        })
    });
    g.bench_function("tokenize_card_preserving", |b| {
        b.iter(|| {
            tokenize(request(
                "card_number",
                black_box(CARD),
                TokenFormat::Preserving,
                false,
            ))
        })
    });
    // The blind index finds the existing deterministic token: a read, no write.
    g.bench_function("tokenize_card_deterministic_existing", |b| {
        b.iter(|| {
            tokenize(request(
                "card_number",
                black_box(CARD),
                TokenFormat::Random,
                true,
            ))
        })
    });
    // Read the row and open it (the data key is cached since the first tokenize).
    g.bench_function("detokenize_card", |b| {
        b.iter(|| detokenize(black_box(kept.token.clone())))
    });
    g.finish();

    drop(vault);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, vault_ops);
criterion_main!(benches);
