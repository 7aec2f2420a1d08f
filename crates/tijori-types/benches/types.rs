//! Micro-benchmarks of the pure, key-free work a tokenize request does before any crypto:
//! validating and normalizing the value of each data type (valid and invalid inputs), the Luhn
//! check, masking, and shaping a format-preserving token. Inputs are fixed values from the
//! public vectors in `tests/vectors/` (synthetic where no vector exists), so runs compare.
//!
//! `cargo bench -p tijori-types --bench types`
// A bench is a non-test target for clippy, but like the tests it should stop loudly on a broken
// fixture rather than carry an error value around.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use tijori_types::format::preserving_token;
use tijori_types::mask::mask;
use tijori_types::validate::luhn_valid;
use tijori_types::{normalize, DataType};

/// (type, valid input, invalid input). Cards, IBANs, CNICs and mobiles come from
/// `tests/vectors/`; the invalid ones fail late (Luhn, mod-97, layout, prefix), not on the
/// first character. Bank account, security code and text have no vectors: synthetic values.
const INPUTS: [(DataType, &str, &str); 7] = [
    (DataType::CardNumber, "4111111111111111", "4111111111111112"),
    (
        DataType::Iban,
        "PK36SCBL0000001123456702",
        "PK36SCBL0000001123456703",
    ),
    (DataType::Cnic, "35202-1234567-1", "35202-1234567"),
    (DataType::PkMobile, "+92 300 1234567", "04235761234"),
    (DataType::BankAccount, "0001-1234-5670-2", "12345"),
    (DataType::CardSecurityCode, "737", "73a"),
    (DataType::Text, "Flat 4, Gulberg III, Lahore", ""),
];

fn normalize_each_type(c: &mut Criterion) {
    let mut g = c.benchmark_group("normalize");
    for (ty, valid, invalid) in INPUTS {
        assert!(
            normalize(ty, valid).is_ok(),
            "{ty}: fixture should be valid"
        );
        assert!(
            normalize(ty, invalid).is_err(),
            "{ty}: fixture should be invalid"
        );
        g.bench_function(format!("{ty}/valid"), |b| {
            b.iter(|| normalize(black_box(ty), black_box(valid)))
        });
        g.bench_function(format!("{ty}/invalid"), |b| {
            b.iter(|| normalize(black_box(ty), black_box(invalid)))
        });
    }
    g.finish();
}

fn luhn(c: &mut Criterion) {
    let mut g = c.benchmark_group("luhn_valid");
    // 16 and 19 digits (tests/vectors/cards.csv: visa, unionpay).
    for digits in ["4111111111111111", "6205500000000000004"] {
        assert!(luhn_valid(digits));
        g.bench_function(format!("{}_digits", digits.len()), |b| {
            b.iter(|| luhn_valid(black_box(digits)))
        });
    }
    g.finish();
}

fn masking(c: &mut Criterion) {
    let mut g = c.benchmark_group("mask");
    for (ty, valid, _) in INPUTS {
        let normalized = normalize(ty, valid).unwrap();
        g.bench_function(ty.as_str(), |b| {
            b.iter(|| mask(black_box(ty), black_box(&normalized)))
        });
    }
    g.finish();
}

/// A fixed digit sequence (0, 7, 4, 1, 8, 5, 2, 9, 6, 3, ...), restarted for every token so each
/// iteration does the same work; the vault's real source is a CSPRNG (tijori-crypto's
/// `RandomPool::digit`, benchmarked there), which this leaves out on purpose.
fn fixed_digits() -> impl FnMut() -> u8 {
    let mut d = 3u8;
    move || {
        d = (d + 7) % 10;
        d
    }
}

fn preserving_shapes(c: &mut Criterion) {
    let mut g = c.benchmark_group("preserving_token");
    for (ty, raw) in [
        (DataType::CardNumber, "4111111111111111"),
        (DataType::Cnic, "35202-1234567-1"),
        (DataType::PkMobile, "+92 300 1234567"),
    ] {
        let normalized = normalize(ty, raw).unwrap();
        let token = preserving_token(ty, &normalized, raw, &mut fixed_digits()).unwrap();
        assert_ne!(token, normalized);
        g.bench_function(ty.as_str(), |b| {
            b.iter(|| {
                preserving_token(
                    black_box(ty),
                    black_box(&normalized),
                    black_box(raw),
                    &mut fixed_digits(),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    normalize_each_type,
    luhn,
    masking,
    preserving_shapes
);
criterion_main!(benches);
