//! Microbenchmarks of the per-request work on the hot paths: token verification (every
//! `Auth` call and every `/info` request), token minting (login, refresh, signup) and the
//! encoding of responses and cache entries.

#![allow(
    clippy::unwrap_used,
    reason = "fixed inputs; a benchmark fails by panicking"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use saga_account::{
    domain::{CustomerId, Email, Name, PersonalInfo},
    service::auth::{Claims, TokenCodec, TokenKind, TokenPair},
    storage::cache::Cacheable,
    transport::http::{PersonalInfoBody, TokenPairBody},
};

const NOW: i64 = 1_800_000_000;

fn tokens(c: &mut Criterion) {
    let codec = TokenCodec::new(b"93c61a11-a4f6-42fc-a995-4f1c850822bb");
    let id = CustomerId(647_912_024_331_838_998);
    let valid = codec.mint(&Claims::legacy(id, TokenKind::Access, NOW + 300));
    let forged = TokenCodec::new(b"other").mint(&Claims::legacy(id, TokenKind::Access, NOW + 300));
    c.bench_function("token/verify valid access token", |b| {
        b.iter(|| codec.verify(black_box(&valid), TokenKind::Access, NOW))
    });
    c.bench_function("token/verify bad signature", |b| {
        b.iter(|| codec.verify(black_box(&forged), TokenKind::Access, NOW))
    });
    c.bench_function("token/mint", |b| {
        b.iter(|| codec.mint(&Claims::legacy(black_box(id), TokenKind::Access, NOW + 300)))
    });
}

fn encoding(c: &mut Criterion) {
    let person = PersonalInfo {
        first_name: Name::parse("Ming").unwrap(),
        last_name: Name::parse("Hsu").unwrap(),
        email: Email::parse("ming@example.com").unwrap(),
    };
    c.bench_function("encode/GET person body", |b| {
        b.iter(|| serde_json::to_vec(&PersonalInfoBody::from(black_box(person.clone()))))
    });
    let codec = TokenCodec::new(b"secret");
    let pair = TokenPair {
        access_token: codec.mint(&Claims::legacy(CustomerId(1), TokenKind::Access, NOW)),
        refresh_token: codec.mint(&Claims::legacy(CustomerId(1), TokenKind::Refresh, NOW)),
    };
    c.bench_function("encode/token pair body", |b| {
        b.iter(|| serde_json::to_vec(&TokenPairBody::from(black_box(pair.clone()))))
    });
    let cached = PersonalInfo::to_redis(&Some(person.clone())).unwrap();
    c.bench_function("encode/person cache entry (Go JSON)", |b| {
        b.iter(|| PersonalInfo::to_redis(black_box(&Some(person.clone()))))
    });
    c.bench_function("decode/person cache entry (Go JSON)", |b| {
        b.iter(|| PersonalInfo::from_redis(black_box(&cached)))
    });
}

criterion_group!(benches, tokens, encoding);
criterion_main!(benches);
