//! `GET /v1/packages` and `GET /v1/gifts/catalog`: the price list is the billing country's
//! (never the request's), with the currency's minor digits, tax shown as the country shows it.

use e2e_tests::scenarios::package;
use e2e_tests::{LocalServer, User};
use serde_json::Value;

/// Digits after the decimal point of a decimal string.
fn minor_digits(amount: &Value) -> usize {
    let text = amount
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {amount}"));
    text.split_once('.').map_or(0, |(_, minor)| minor.len())
}

#[test]
fn each_billing_country_sees_its_currency_with_its_minor_digits() {
    let server = LocalServer::new("price-lists");
    for (country, region, zone, currency, digits, tax_inclusive) in [
        ("JP", None, "Asia/Tokyo", "JPY", 0, true),
        ("US", Some("US-NY"), "America/New_York", "USD", 2, false),
        ("DE", None, "Europe/Berlin", "EUR", 2, true),
        ("KW", None, "Asia/Kuwait", "KWD", 3, true),
    ] {
        let mut user = User::new("shopper").in_country(country, zone);
        if let Some(region) = region {
            user = user.in_region(region);
        }
        let list = server
            .api()
            .get("/v1/packages?channel=web")
            .user(&user)
            .send()
            .expect(200);
        assert_eq!(list["country"], country);
        assert_eq!(list["currency"], currency, "{list}");
        assert_eq!(list["tax_inclusive"], tax_inclusive, "{country}: {list}");
        let packages = list["packages"].as_array().expect("packages");
        assert!(packages.len() >= 7, "{list}");
        for entry in packages {
            for part in ["net", "tax", "gross"] {
                assert_eq!(
                    minor_digits(&entry["price"][part]),
                    digits,
                    "{country} {part}: {entry}"
                );
            }
        }
        // Bigger packages carry bonus coins.
        assert_eq!(package(&list, "coins_70")["bonus_coins"], 0);
        assert!(package(&list, "coins_17500")["bonus_coins"].as_u64() > Some(0));
        // A country given in the query is ignored: pricing follows the verified identity.
        let spoofed = server
            .api()
            .get("/v1/packages?channel=web&country=IN")
            .user(&user)
            .send();
        let spoofed_country = if spoofed.status == 200 {
            spoofed.json()["country"].clone()
        } else {
            spoofed.expect_problem(400, "invalid_request");
            Value::from(country)
        };
        assert_eq!(spoofed_country, country);
    }
}

#[test]
fn the_gift_catalog_lists_every_gift_with_its_price() {
    let server = LocalServer::new("gift-catalog");
    let catalog = server
        .api()
        .get("/v1/gifts/catalog")
        .user(&User::new("fan"))
        .send()
        .expect(200);
    assert!(catalog["version"].is_string(), "{catalog}");
    let prices: Vec<(&str, u64)> = catalog["gifts"]
        .as_array()
        .expect("gifts")
        .iter()
        .map(|gift| {
            assert!(gift["name"].is_string(), "{gift}");
            (
                gift["gift_id"].as_str().unwrap(),
                gift["coins"].as_u64().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("rose", 1),
        ("finger_heart", 5),
        ("doughnut", 30),
        ("galaxy", 1000),
        ("universe", 44999),
    ] {
        assert!(prices.contains(&expected), "{expected:?} in {prices:?}");
    }
}
