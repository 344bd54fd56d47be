//! Properties every rule must keep for all inputs, checked on the shipped data and on random books,
//! instants, zones and dates (proptest).

use coins_rules::age::age_on;
use coins_rules::gifts::{DIAMOND_VALUE_USD, GiftCatalog, QUANTITY_BOUNDS, payout_value};
use coins_rules::money::{Currency, Money};
use coins_rules::price_book::PriceBook;
use coins_rules::pricing::{Channel, Price, QuoteItem, Rounding};
use coins_rules::refund::{REFUND_WINDOW_DAYS, refund_deadline, refundable_until};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use proptest::prelude::*;
use rust_decimal::Decimal;

/// Zones chosen for their quirks: both sides of UTC, half- and quarter-hour offsets, a 30-minute
/// DST (Lord Howe), DST at midnight (Santiago, Havana), the southern hemisphere, no DST at all.
const ZONES: &[&str] = &[
    "UTC",
    "America/Los_Angeles",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "America/St_Johns",
    "Europe/Berlin",
    "Europe/London",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Asia/Tehran",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
];

/// Every price's invariants: one currency, exact minor digits, `net + tax = gross`, no negatives.
fn assert_well_formed(price: &Price, currency: Currency, context: &str) {
    for part in [price.net(), price.tax(), price.gross()] {
        assert_eq!(part.currency(), currency, "{context}");
        assert_eq!(
            part.amount().scale(),
            currency.minor_units(),
            "{context}: {part} is not at the currency's scale"
        );
        assert_eq!(
            Money::new(part.amount(), currency),
            Ok(part),
            "{context}: {part} is not representable"
        );
        assert!(!part.is_negative(), "{context}: {part} is negative");
    }
    let (net, tax, gross) = (
        price.net().minor_units().unwrap(),
        price.tax().minor_units().unwrap(),
        price.gross().minor_units().unwrap(),
    );
    assert_eq!(
        net + tax,
        gross,
        "{context}: net + tax != gross in minor units"
    );
    assert!(gross > 0, "{context}: a price of zero");
}

#[test]
fn every_shipped_package_price_is_exact_and_never_cheaper_in_an_app() {
    let book = PriceBook::embedded();
    for pricing in book.countries() {
        let country = pricing.country();
        let lists = Channel::ALL.map(|channel| book.package_list(country.into(), channel).unwrap());
        let [web, ios, android] = &lists;
        for (index, package) in book.packages().iter().enumerate() {
            for list in &lists {
                let offer = &list.packages[index];
                let context = format!("{country} {} {}", list.channel, package.package_id);
                assert_eq!(offer.package_id, package.package_id);
                assert_well_formed(&offer.price, pricing.currency(), &context);
            }
            let web_gross = web.packages[index].price.gross().amount();
            for app in [ios, android] {
                let app_gross = app.packages[index].price.gross().amount();
                assert!(
                    web_gross <= app_gross,
                    "{country} {}: web {web_gross} > {} {app_gross}",
                    package.package_id,
                    app.channel
                );
            }
        }
    }
}

#[test]
fn a_bigger_package_never_costs_less() {
    let book = PriceBook::embedded();
    for pricing in book.countries() {
        for channel in Channel::ALL {
            let list = book
                .package_list(pricing.country().into(), channel)
                .unwrap();
            for pair in list.packages.windows(2) {
                assert!(
                    pair[0].price.gross().amount() <= pair[1].price.gross().amount(),
                    "{} {channel}: {} costs more than {}",
                    pricing.country(),
                    pair[0].package_id,
                    pair[1].package_id
                );
            }
        }
    }
}

/// A one-country price book in JSON, for random pricing parameters.
fn book_json(
    currency: &str,
    tax_rate: Decimal,
    tax_inclusive: bool,
    coin_price: Decimal,
    rounding: &str,
    package_coins: &[u64],
) -> String {
    let packages: Vec<String> = package_coins
        .iter()
        .enumerate()
        .map(|(i, coins)| {
            format!(
                r#"{{"package_id": "p{i}", "coins": {coins}, "bonus_coins": 0,
                    "app_store_product_id": "apple.p{i}", "google_play_product_id": "p{i}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{
            "version": "prop",
            "store_fee_rate": "0.30",
            "custom_coins": {{"min_coins": 1, "max_coins": 2500000}},
            "packages": [{packages}],
            "countries": [{{"country": "XX", "alpha3": "XXX", "currency": "{currency}", "tax_rate": "{tax_rate}",
                "tax_inclusive": {tax_inclusive}, "coin_price": "{coin_price}", "rounding": {rounding}}}],
            "default_minimum_age": 18
        }}"#,
        packages = packages.join(",")
    )
}

/// A currency and a rounding convention that suits it.
fn currency_and_rounding() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        Just(("USD", r#"{"kind": "charm"}"#.to_owned())),
        Just(("EUR", r#"{"kind": "charm"}"#.to_owned())),
        Just(("USD", r#"{"kind": "multiple", "step": "0.05"}"#.to_owned())),
        Just(("INR", r#"{"kind": "multiple", "step": "1"}"#.to_owned())),
        Just(("JPY", r#"{"kind": "multiple", "step": "1"}"#.to_owned())),
        Just(("KRW", r#"{"kind": "multiple", "step": "10"}"#.to_owned())),
        Just(("VND", r#"{"kind": "multiple", "step": "1000"}"#.to_owned())),
        Just(("KWD", r#"{"kind": "multiple", "step": "0.010"}"#.to_owned())),
        Just(("BHD", r#"{"kind": "multiple", "step": "0.001"}"#.to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_valid_book_prices_every_package_exactly_and_app_never_below_web(
        (currency, rounding) in currency_and_rounding(),
        tax_basis_points in 0u32..3000,
        tax_inclusive in any::<bool>(),
        coin_price_millionths in 1u64..5_000_000_000,
        package_coins in proptest::collection::btree_set(1u64..3_000_000, 1..8),
    ) {
        let tax_rate = Decimal::new(i64::from(tax_basis_points), 4);
        let coin_price = Decimal::new(coin_price_millionths as i64, 6);
        let coins: Vec<u64> = package_coins.into_iter().collect();
        let json = book_json(currency, tax_rate, tax_inclusive, coin_price, &rounding, &coins);
        let book = PriceBook::from_json(&json).unwrap();
        let currency: Currency = currency.parse().unwrap();
        let country = "XX".parse().unwrap();
        let web = book.package_list(country, Channel::Web).unwrap();
        let ios = book.package_list(country, Channel::Ios).unwrap();
        for (index, offer) in web.packages.iter().enumerate() {
            assert_well_formed(&offer.price, currency, "web");
            assert_well_formed(&ios.packages[index].price, currency, "ios");
            prop_assert!(offer.price.gross().amount() <= ios.packages[index].price.gross().amount());
            // The charmed (displayed) amount is never below the base price.
            let displayed = if tax_inclusive { offer.price.gross() } else { offer.price.net() };
            prop_assert!(displayed.amount() >= coin_price * Decimal::from(offer.coins));
        }
    }

    #[test]
    fn custom_web_amounts_are_exact_and_more_coins_never_cost_less(
        country_index in 0usize..64,
        coins in 30u64..=2_500_000,
        extra in 0u64..10_000,
    ) {
        let book = PriceBook::embedded();
        let pricing = &book.countries()[country_index % book.countries().len()];
        let quote = |coins| book.quote(pricing.country().into(), Channel::Web, QuoteItem::Custom { coins });
        let smaller = quote(coins).unwrap();
        assert_well_formed(&smaller.price(), pricing.currency(), "custom");
        prop_assert_eq!(smaller.total_coins(), coins);
        let larger_coins = (coins + extra).min(2_500_000);
        let larger = quote(larger_coins).unwrap();
        prop_assert!(smaller.price().gross().amount() <= larger.price().gross().amount());
    }

    #[test]
    fn charm_rounding_goes_up_to_an_amount_ending_in_nine(
        cents_thousandths in 0i64..100_000_000,
        more in 0i64..1_000_000,
    ) {
        let usd: Currency = "USD".parse().unwrap();
        let amount = Decimal::new(cents_thousandths, 5);
        let charmed = Rounding::Charm.apply(amount, usd).unwrap();
        prop_assert!(charmed >= amount);
        prop_assert_eq!(charmed.scale(), 2);
        prop_assert_eq!(charmed.mantissa() % 10, 9);
        let bigger = Rounding::Charm.apply(amount + Decimal::new(more, 5), usd).unwrap();
        prop_assert!(bigger >= charmed, "charm is not monotone: {} < {}", bigger, charmed);
    }

    #[test]
    fn multiple_rounding_goes_up_by_less_than_one_step(
        amount_millis in 0i64..10_000_000_000,
        step_index in 0usize..4,
    ) {
        let (code, step) = [("JPY", 1), ("KRW", 10), ("IDR", 100), ("VND", 1000)][step_index];
        let currency: Currency = code.parse().unwrap();
        let step = Decimal::from(step);
        let amount = Decimal::new(amount_millis, 3);
        let rounded = Rounding::Multiple { step }.apply(amount, currency).unwrap();
        prop_assert!(rounded >= amount && rounded - amount < step);
        prop_assert!((rounded % step).is_zero());
    }

    #[test]
    fn the_refund_window_ends_at_a_local_start_of_day_14_to_15_days_later(
        // 2000 to 2100: before that some zones (Kiritimati, 1994) skipped whole calendar days.
        seconds in 946_684_800i64..4_102_444_800,
        zone_index in 0usize..ZONES.len(),
    ) {
        let zone = TimeZone::get(ZONES[zone_index]).unwrap();
        let purchased = Timestamp::from_second(seconds).unwrap();
        let deadline = refund_deadline(purchased, &zone);

        // The deadline is the first instant of its local day...
        prop_assert_eq!(deadline.start_of_day().unwrap(), deadline.clone());
        // ...of local day D + 15...
        let purchase_day = purchased.to_zoned(zone.clone()).date();
        let expected_day = purchase_day.checked_add((REFUND_WINDOW_DAYS + 1).days()).unwrap();
        prop_assert_eq!(deadline.date(), expected_day);
        // ...and the instant form agrees with the zoned one.
        prop_assert_eq!(refundable_until(purchased, &zone), deadline.timestamp());

        // 14 to 15 days after the purchase, give or take a DST shift (at most an hour; Lord Howe
        // moves 30 minutes).
        let window = deadline.timestamp().duration_since(purchased);
        let slack = SignedDuration::from_hours(1);
        let days = |n: i64| SignedDuration::from_hours(24 * n);
        prop_assert!(window > days(14) - slack && window <= days(15) + slack, "window {:?}", window);
    }

    #[test]
    fn age_never_decreases_and_grows_by_at_most_a_year_a_day(
        birth_offset_days in 0i32..73_000, // births from 1900 to 2100
        age_offset_days in -400i32..40_000,
    ) {
        let origin = Date::new(1900, 1, 1).unwrap();
        let birthdate = origin.checked_add(birth_offset_days.days()).unwrap();
        let on = birthdate.checked_add(age_offset_days.days()).unwrap();
        let next = on.tomorrow().unwrap();
        let (today_age, tomorrow_age) = (age_on(birthdate, on), age_on(birthdate, next));
        prop_assert!(tomorrow_age == today_age || tomorrow_age == today_age + 1);
        // A year after any date the age has gone up by exactly one. (A year after 29 February is
        // 28 February, the day before a leap-day birthday is reached, so that date is left out.)
        let a_year_on = on.checked_add(1.year()).unwrap();
        let is_leap_day = (on.month(), on.day()) == (2, 29);
        if on >= birthdate && !is_leap_day {
            prop_assert_eq!(age_on(birthdate, a_year_on), today_age + 1);
        }
    }

    #[test]
    fn a_combo_costs_exactly_price_times_quantity(
        gift_index in 0usize..10,
        quantity in QUANTITY_BOUNDS,
    ) {
        let catalog = GiftCatalog::embedded();
        let gift = &catalog.gifts()[gift_index % catalog.gifts().len()];
        prop_assert_eq!(
            catalog.price(&gift.gift_id, quantity).unwrap(),
            gift.coins * u64::from(quantity)
        );
    }

    #[test]
    fn a_payout_is_the_diamond_value_rounded_down_to_the_cent(diamonds in any::<u64>()) {
        let exact = Decimal::from(diamonds) * DIAMOND_VALUE_USD;
        let paid = payout_value(diamonds).amount();
        prop_assert!(paid <= exact && exact - paid < Decimal::new(1, 2));
    }
}
