//! Runs the built `coinctl` binary as an operator would and checks what it prints and returns.

use std::process::{Command, Output};

use serde_json::{Value, json};

fn coinctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coinctl"))
        .args(args)
        .output()
        .expect("the coinctl binary runs")
}

/// Runs a command that must succeed and returns its JSON.
fn json_of(args: &[&str]) -> Value {
    let output = coinctl(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stderr.is_empty(), "{args:?} wrote to stderr");
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// Runs a command that must fail; returns its exit code and its single stderr line.
fn failure_of(args: &[&str]) -> (i32, String) {
    let output = coinctl(args);
    assert!(!output.status.success(), "{args:?} should fail");
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed to stdout on failure"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{args:?}: not one line: {stderr:?}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    (output.status.code().unwrap(), stderr.trim_end().to_owned())
}

#[test]
fn quote_prints_a_package_price_with_amounts_as_strings() {
    let quote = json_of(&[
        "quote",
        "--country",
        "JP",
        "--channel",
        "web",
        "--package",
        "coins_700",
    ]);
    assert_eq!(quote["country"], "JP");
    assert_eq!(quote["currency"], "JPY");
    assert_eq!(quote["coins"], 700);
    assert_eq!(quote["bonus_coins"], 0);
    assert_eq!(quote["total_coins"], 700);
    assert_eq!(quote["price"]["net"], "999");
    assert_eq!(quote["price"]["tax"], "100");
    assert_eq!(quote["price"]["gross"], "1099");
    assert_eq!(quote["tax_inclusive"], true);
    assert_eq!(quote["price_book_version"], "2026-12-08");
}

#[test]
fn quote_prices_a_custom_web_amount_and_accepts_a_region() {
    let quote = json_of(&[
        "quote",
        "--country",
        "US",
        "--region",
        "US-AL",
        "--channel",
        "web",
        "--coins",
        "1234",
    ]);
    assert_eq!(quote["region"], "US-AL");
    assert_eq!(quote["total_coins"], 1234);
    // Alabama's 4 % state rate on digital goods, on top of the listed price.
    assert_eq!(
        quote["price"],
        json!({"currency": "USD", "net": "13.49", "tax": "0.54", "gross": "14.03"})
    );
}

#[test]
fn quote_refuses_a_custom_amount_in_an_app() {
    let (code, message) = failure_of(&[
        "quote",
        "--country",
        "US",
        "--channel",
        "ios",
        "--coins",
        "1234",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        message,
        "coinctl: error: custom coin amounts are sold on the web only, not on ios"
    );
}

#[test]
fn quote_refuses_a_region_of_another_country() {
    let (code, message) = failure_of(&[
        "quote",
        "--country",
        "KR",
        "--region",
        "US-MS",
        "--channel",
        "web",
        "--package",
        "coins_70",
    ]);
    assert_eq!(code, 1);
    assert!(
        message.contains("region US-MS is not in country KR"),
        "{message}"
    );
}

#[test]
fn price_table_aligns_every_country_and_package() {
    let output = coinctl(&["price-table", "--channel", "web"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("price book 2026-12-08"));
    assert!(lines[1].starts_with("country") && lines[1].ends_with("coins_17500"));
    // Amounts are right-aligned, so every row ends where the header does.
    let width = lines[1].len();
    for line in &lines[2..] {
        assert_eq!(line.len(), width, "misaligned row {line:?}");
    }
    let jp = lines.iter().find(|line| line.starts_with("JP ")).unwrap();
    assert!(jp.contains(" 1099 ") && jp.contains("incl 10%"), "{jp}");
    assert!(lines.len() - 2 >= 25);
}

#[test]
fn price_table_prints_json_on_request() {
    let table = json_of(&["price-table", "--channel", "ios", "--json"]);
    assert_eq!(table["channel"], "ios");
    let countries = table["countries"].as_array().unwrap();
    assert!(countries.len() >= 25);
    let us = countries.iter().find(|c| c["country"] == "US").unwrap();
    assert_eq!(us["packages"][2]["price"]["gross"], "10.99");
    assert_eq!(
        us["packages"][2]["store_product_id"],
        "com.example.coins.pack700"
    );
    assert_eq!(us["custom"], Value::Null);
}

#[test]
fn price_table_names_each_packages_store_product_in_an_app() {
    let text = |channel| {
        String::from_utf8(coinctl(&["price-table", "--channel", channel]).stdout).unwrap()
    };
    let output = text("android");
    let products = output
        .lines()
        .find(|line| line.starts_with("product"))
        .expect("a product row");
    assert!(products.contains(" pack_700 "), "{products}");
    assert!(
        !text("web").contains("\nproduct"),
        "the web sells no store products"
    );
}

#[test]
fn refund_window_prints_the_local_midnight_with_its_offset() {
    let window = json_of(&[
        "refund-window",
        "--purchased-at",
        "2026-06-01T23:30:00-07:00",
        "--zone",
        "America/Los_Angeles",
    ]);
    assert_eq!(window["refundable_until"], "2026-06-16T00:00:00-07:00");
    let tokyo = json_of(&[
        "refund-window",
        "--purchased-at",
        "2026-03-01T03:00:00Z",
        "--zone",
        "Asia/Tokyo",
    ]);
    assert_eq!(tokyo["refundable_until"], "2026-03-16T00:00:00+09:00");
}

#[test]
fn age_check_applies_the_jurisdictions_minimum() {
    assert_eq!(
        json_of(&[
            "age-check",
            "--birthdate",
            "2008-06-15",
            "--country",
            "KR",
            "--on",
            "2026-06-15"
        ]),
        json!({"allowed": false, "age": 18, "minimum_age": 19})
    );
    assert_eq!(
        json_of(&[
            "age-check",
            "--birthdate",
            "2005-06-15",
            "--country",
            "US",
            "--region",
            "US-MS",
            "--on",
            "2026-06-15"
        ]),
        json!({"allowed": true, "age": 21, "minimum_age": 21})
    );
    assert_eq!(
        json_of(&[
            "age-check",
            "--birthdate",
            "2008-02-29",
            "--country",
            "JP",
            "--on",
            "2026-02-28"
        ]),
        json!({"allowed": false, "age": 17, "minimum_age": 18})
    );
}

#[test]
fn bad_arguments_fail_with_one_line_and_exit_code_2() {
    let cases: &[&[&str]] = &[
        &[],
        &["frobnicate"],
        &["quote", "--country", "JP", "--channel", "web"],
        &[
            "quote",
            "--country",
            "JPN",
            "--channel",
            "web",
            "--coins",
            "100",
        ],
        &[
            "quote",
            "--country",
            "JP",
            "--channel",
            "tv",
            "--coins",
            "100",
        ],
        &[
            "quote",
            "--country",
            "JP",
            "--channel",
            "web",
            "--coins",
            "1",
            "--package",
            "coins_70",
        ],
        &[
            "quote",
            "--country",
            "JP",
            "--channel",
            "web",
            "--coins",
            "lots",
        ],
        &[
            "refund-window",
            "--purchased-at",
            "2026-06-01T23:30:00",
            "--zone",
            "UTC",
        ],
        &[
            "refund-window",
            "--purchased-at",
            "2026-06-01T23:30:00Z",
            "--zone",
            "Mars/Olympus",
        ],
        &[
            "age-check",
            "--birthdate",
            "2008-02-30",
            "--country",
            "JP",
            "--on",
            "2026-01-01",
        ],
        &["price-table"],
    ];
    for args in cases {
        let (code, message) = failure_of(args);
        assert_eq!(code, 2, "{args:?}: {message}");
        assert!(
            message.starts_with("coinctl: error:"),
            "{args:?}: {message}"
        );
    }
}

#[test]
fn a_rule_refusal_is_one_line_with_exit_code_1() {
    let cases: &[&[&str]] = &[
        &[
            "quote",
            "--country",
            "ZZ",
            "--channel",
            "web",
            "--coins",
            "100",
        ],
        &[
            "quote",
            "--country",
            "JP",
            "--channel",
            "web",
            "--coins",
            "29",
        ],
        &[
            "quote",
            "--country",
            "JP",
            "--channel",
            "web",
            "--package",
            "coins_71",
        ],
        &[
            "refund-window",
            "--purchased-at",
            "9999-12-30T00:00:00Z",
            "--zone",
            "UTC",
        ],
    ];
    for args in cases {
        let (code, message) = failure_of(args);
        assert_eq!(code, 1, "{args:?}: {message}");
    }
}

/// The built-in price book, as shipped.
const PRICE_BOOK: &str = include_str!("../../../shared/rules/data/price_book.json");

#[test]
fn economics_nets_every_offer_of_every_country_and_channel_above_its_payout() {
    let output = coinctl(&["economics"]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{text}");
    assert!(output.stderr.is_empty());
    assert!(text.contains("margin 10% of the payout"), "{text}");
    let turkish_floor = text.lines().find(|line| line.starts_with("TRY ")).unwrap();
    assert!(
        turkish_floor.contains(" 55 ") && turkish_floor.contains("31%"),
        "{turkish_floor}"
    );
    let offers: Vec<&str> = text.lines().filter(|line| line.ends_with(" OK")).collect();
    // Every country: 7 packages on each of 3 channels, and 3 custom rows on the web.
    assert!(offers.len() >= 25 * 24, "{}", offers.len());
    for channel in [" web ", " ios ", " android "] {
        assert!(
            offers
                .iter()
                .any(|line| line.starts_with("TR ") && line.contains(channel))
        );
    }
    assert!(
        text.trim_end()
            .ends_with("offers net at least the payout plus the margin")
    );
}

#[test]
fn economics_exits_1_naming_the_short_offers_of_a_candidate_book() {
    // The Turkish price before #18: a coin netted less than a diamond pays out.
    let old = PRICE_BOOK.replacen(r#""coin_price": "0.389""#, r#""coin_price": "0.249""#, 1);
    assert_ne!(old, PRICE_BOOK);
    let path = std::env::temp_dir().join(format!("coinctl-economics-{}.json", std::process::id()));
    std::fs::write(&path, old).unwrap();
    let output = coinctl(&["economics", "--price-book", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = String::from_utf8(output.stdout).unwrap();
    let short: Vec<&str> = text
        .lines()
        .filter(|line| line.ends_with(" SHORT"))
        .collect();
    // Every Turkish offer, and nothing else.
    assert_eq!(short.len(), 24, "{short:#?}");
    assert!(
        short.iter().all(|line| line.starts_with("TR ")),
        "{short:#?}"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end(),
        "coinctl: error: 24 offers net less than the payout plus the margin at the floor rate"
    );
}
