//! Micro-benchmarks of the cryptography a tokenize or detokenize request does: sealing and
//! opening one card number under a data key (AES-256-GCM with the row's associated data), the
//! blind index (HMAC-SHA-256), wrapping and unwrapping a data key, the token randomness, and the
//! SHA-256 hashes every request pays (API-key lookup, audit chain). Keys and values are fixed;
//! the only varying input is the OS randomness that `seal` draws for its nonce, as in the vault.
//!
//! There is no FF1 here: the vault has no format-preserving *encryption*. Its preserving tokens
//! are random digits in the value's shape, stored like any other token (tijori-types' `format`),
//! so the FF1 known answers in the shared test data have nothing in this crate to measure.
//!
//! `cargo bench -p tijori-crypto --bench crypto`
// A bench is a non-test target for clippy, but like the tests it should stop loudly on a broken
// fixture rather than carry an error value around.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tijori_crypto::{
    audit_chain_hash, open, random_bytes, random_hex, seal, sha256, unwrap_key, wrap_key,
    BlindIndexKey, RandomPool, SecretKey,
};

/// A 16-digit test card (tests/vectors/cards.csv), as the vault stores it: normalized.
const CARD: &[u8] = b"4111111111111111";
/// Associated data shaped like the vault's (tijori-core `tokens::value_ad`): token, type, key id.
const VALUE_AD: &[u8] = b"tijori:value:v1:tok_00112233445566778899aabbccddeeff:card_number:1";
/// Associated data of a wrapped data key, shaped like tijori-core's keyring (`dek_ad`: purpose,
/// scope, key-encryption key version).
const KEY_AD: &[u8] = b"tijori:dek:value:subject:customer-42:1";
/// An API key of the vault's shape (`tjk_` and 32 random bytes in hex), fixed.
const API_KEY: &str = "tjk_000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
/// An audit record about the size of a tokenize event's JSON line.
const AUDIT_RECORD: &str = r#"{"time":"2027-01-15T08:00:00Z","request_id":"req_00112233445566778899aabb","principal":"prn_0011223344556677","operation":"tokenize","outcome":"ok","data_type":"card_number","token":"tok_00112233445566778899aabbccddeeff","count":1}"#;

fn key(byte: u8) -> SecretKey {
    SecretKey::from_bytes([byte; 32])
}

fn aead(c: &mut Criterion) {
    let dek = key(0x11);
    let sealed = seal(&dek, VALUE_AD, CARD).unwrap();
    assert_eq!(&open(&dek, VALUE_AD, &sealed).unwrap()[..], CARD);

    let mut g = c.benchmark_group("aes256gcm_card");
    g.throughput(Throughput::Elements(1));
    // Includes what `seal` does per call: the AES key schedule, a 96-bit nonce from the OS.
    g.bench_function("seal", |b| {
        b.iter(|| seal(black_box(&dek), black_box(VALUE_AD), black_box(CARD)))
    });
    g.bench_function("open", |b| {
        b.iter(|| open(black_box(&dek), black_box(VALUE_AD), black_box(&sealed)))
    });
    g.finish();
}

fn key_wrapping(c: &mut Criterion) {
    let kek = key(0x22);
    let dek = key(0x33);
    let wrapped = wrap_key(&kek, KEY_AD, &dek).unwrap();
    assert_eq!(
        unwrap_key(&kek, KEY_AD, &wrapped).unwrap().expose_secret(),
        dek.expose_secret()
    );

    let mut g = c.benchmark_group("key_wrap");
    g.bench_function("wrap", |b| {
        b.iter(|| wrap_key(black_box(&kek), black_box(KEY_AD), black_box(&dek)))
    });
    g.bench_function("unwrap", |b| {
        b.iter(|| unwrap_key(black_box(&kek), black_box(KEY_AD), black_box(&wrapped)))
    });
    g.finish();
}

fn blind_index(c: &mut Criterion) {
    let blind = BlindIndexKey::new(key(0x44));
    let mut g = c.benchmark_group("blind_index");
    g.bench_function("hmac_sha256_card", |b| {
        b.iter(|| blind.index(black_box("card_number"), black_box(CARD)))
    });
    g.finish();
}

fn hashes(c: &mut Criterion) {
    let mut g = c.benchmark_group("sha256");
    g.bench_function("api_key", |b| {
        b.iter(|| sha256(black_box(API_KEY.as_bytes())))
    });
    let prev = sha256(b"previous record");
    g.bench_function("audit_chain_record", |b| {
        b.iter(|| audit_chain_hash(black_box(&prev), black_box(42), black_box(AUDIT_RECORD)))
    });
    g.finish();
}

fn randomness(c: &mut Criterion) {
    let mut g = c.benchmark_group("random");
    // A random token is `tok_` and 16 random bytes in hex; a GCM nonce is 12 bytes; a
    // preserving token draws one digit per random position (6 for a 16-digit card, 9 for a
    // mobile, 13 for a CNIC), from the request's pool of OS randomness.
    g.bench_function("token_hex_16_bytes", |b| {
        b.iter(|| random_hex(black_box(16)))
    });
    g.bench_function("nonce_12_bytes", |b| b.iter(random_bytes::<12>));
    let mut pool = RandomPool::new(4096);
    g.bench_function("digit_from_pool", |b| b.iter(|| pool.digit()));
    g.finish();
}

criterion_group!(benches, aead, key_wrapping, blind_index, hashes, randomness);
criterion_main!(benches);
