//! Hot-path timings of the rules: quotes, refund windows and the age gate; and what loading the
//! price book costs a cold start.
//!
//! Run: `cargo bench -p coins-rules --bench rules -- --warm-up-time 1 --measurement-time 3`.
//! Targets: a quote at most 1 µs (median), a refund window and an age check at most 300 ns.
//! Time zones are looked up once outside the timed loop, as callers do (once per request).

use std::hint::black_box;

use coins_rules::age::check_age;
use coins_rules::price_book::PriceBook;
use coins_rules::pricing::{Channel, QuoteItem};
use coins_rules::refund::refundable_until;
use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use jiff::civil::date;
use jiff::tz::TimeZone;

fn quotes(c: &mut Criterion) {
    let book = PriceBook::embedded();
    let jp = "JP".parse().unwrap();
    let us = "US".parse().unwrap();
    let coins_700 = QuoteItem::Package("coins_700".parse().unwrap());
    c.bench_function("quote/jp_web_coins_700", |b| {
        b.iter(|| book.quote(black_box(jp), black_box(Channel::Web), black_box(coins_700)))
    });
    c.bench_function("quote/us_ios_coins_700", |b| {
        b.iter(|| book.quote(black_box(us), black_box(Channel::Ios), black_box(coins_700)))
    });
    c.bench_function("quote/de_web_custom_1234", |b| {
        let de = "DE".parse().unwrap();
        let custom = QuoteItem::Custom { coins: 1234 };
        b.iter(|| book.quote(black_box(de), black_box(Channel::Web), black_box(custom)))
    });
}

/// Parsing, validating and pricing every package of the embedded book: paid once per cold
/// start by the functions that price (catalog, quote).
fn price_book_load(c: &mut Criterion) {
    let text = include_str!("../data/price_book.json");
    c.bench_function("price_book/load_embedded", |b| {
        b.iter(|| PriceBook::from_json(black_box(text)).expect("the embedded book is valid"))
    });
}

fn refund_window(c: &mut Criterion) {
    let zone = TimeZone::get("America/New_York").unwrap();
    let purchased: Timestamp = "2026-03-01T23:30:00Z".parse().unwrap();
    c.bench_function("refund_window/new_york", |b| {
        b.iter(|| refundable_until(black_box(purchased), black_box(&zone)))
    });
}

fn age_gate(c: &mut Criterion) {
    let zone = TimeZone::get("Asia/Seoul").unwrap();
    let now: Timestamp = "2026-06-14T15:30:00Z".parse().unwrap();
    let kr = "KR".parse().unwrap();
    let birthdate = date(2007, 6, 15);
    c.bench_function("age_check/kr", |b| {
        b.iter(|| {
            check_age(
                black_box(birthdate),
                black_box(kr),
                None,
                black_box(now),
                &zone,
            )
        })
    });
    let us = "US".parse().unwrap();
    let us_ms = Some("US-MS".parse().unwrap());
    let chicago = TimeZone::get("America/Chicago").unwrap();
    c.bench_function("age_check/us_ms", |b| {
        b.iter(|| {
            check_age(
                black_box(birthdate),
                black_box(us),
                black_box(us_ms),
                black_box(now),
                &chicago,
            )
        })
    });
}

criterion_group!(benches, quotes, price_book_load, refund_window, age_gate);
criterion_main!(benches);
