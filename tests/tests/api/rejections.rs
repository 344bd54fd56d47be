//! The 422s of API.md: a reused idempotency key with another body, a quote from another billing
//! country, a gift to oneself or to someone who is not a creator, a custom amount in an app.

use e2e_tests::flows::{
    self, balance, buy, enroll, gift_body, purchase_with_key, send_gift, send_gift_with_key,
    str_field,
};
use e2e_tests::{LocalServer, User};
use serde_json::json;

#[test]
fn a_purchase_key_replayed_with_the_same_quote_returns_the_first_purchase() {
    let server = LocalServer::new("idem-purchase");
    let fan = User::new("fan");
    let first_quote = flows::quote_package(&server, &fan, "coins_70");
    let second_quote = flows::quote_package(&server, &fan, "coins_350");
    let key = flows::new_key("purchase");
    let first =
        purchase_with_key(&server, &fan, str_field(&first_quote, "quote_id"), &key).expect(201);
    let again =
        purchase_with_key(&server, &fan, str_field(&first_quote, "quote_id"), &key).expect(201);
    assert_eq!(
        again, first,
        "the same key and body return the first result"
    );
    purchase_with_key(&server, &fan, str_field(&second_quote, "quote_id"), &key)
        .expect_problem(422, "idempotency_key_reused");
}

#[test]
fn a_gift_key_replayed_spends_once_and_with_another_body_is_refused() {
    let server = LocalServer::new("idem-gift");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_70");
    let key = flows::new_key("gift");
    let first =
        send_gift_with_key(&server, &fan, &key, &gift_body(&creator, "rose", 3)).expect(201);
    let again =
        send_gift_with_key(&server, &fan, &key, &gift_body(&creator, "rose", 3)).expect(201);
    assert_eq!(again["gift_txn_id"], first["gift_txn_id"]);
    assert_eq!(balance(&server, &fan), 67, "the replay spent nothing");
    send_gift_with_key(&server, &fan, &key, &gift_body(&creator, "rose", 4))
        .expect_problem(422, "idempotency_key_reused");
    assert_eq!(balance(&server, &fan), 67);
    flows::earnings_reaching(&server, &creator, 3);
}

#[test]
fn a_quote_priced_for_another_country_cannot_be_bought() {
    let server = LocalServer::new("region-purchase");
    // A Japanese quote, then the same user's billing country is the US (e.g. a VPN does not
    // change it, but a changed billing address does): the yen price is not theirs to pay.
    let in_japan = User::new("traveller");
    let quote = flows::quote_package(&server, &in_japan, "coins_700");
    let in_us = in_japan
        .clone()
        .in_country("US", "America/New_York")
        .in_region("US-NY");
    purchase_with_key(
        &server,
        &in_us,
        str_field(&quote, "quote_id"),
        &flows::new_key("purchase"),
    )
    .expect_problem(422, "region_mismatch");
    assert_eq!(balance(&server, &in_us), 0);
}

#[test]
fn a_gift_to_oneself_is_refused() {
    let server = LocalServer::new("self-gift");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &creator, "coins_70");
    send_gift(&server, &creator, &creator, "rose", 1).expect_problem(422, "self_gift");
    assert_eq!(balance(&server, &creator), 70);
    assert_eq!(flows::earnings(&server, &creator)["diamonds_earned"], 0);
}

#[test]
fn a_gift_to_someone_who_is_not_a_creator_is_refused() {
    let server = LocalServer::new("not-creator");
    let fan = User::new("fan");
    let other_fan = User::new("other");
    buy(&server, &fan, "coins_70");
    send_gift(&server, &fan, &other_fan, "rose", 1).expect_problem(422, "recipient_not_creator");
    assert_eq!(balance(&server, &fan), 70);
}

#[test]
fn custom_amounts_are_sold_on_the_web_only() {
    let server = LocalServer::new("channel");
    let fan = User::new("fan");
    for channel in ["ios", "android"] {
        server
            .api()
            .post("/v1/quotes")
            .user(&fan)
            .json(&json!({"channel": channel, "coins": 1234}))
            .send()
            .expect_problem(422, "channel_not_allowed");
    }
    let custom = flows::quote(&server, &fan, json!({"channel": "web", "coins": 1234}));
    assert_eq!(custom["coins"], 1234);
    assert_eq!(custom["bonus_coins"], 0);
    // Fixed packages are sold in the apps, at a price no lower than the web's.
    let ios = flows::quote(
        &server,
        &fan,
        json!({"channel": "ios", "package_id": "coins_700"}),
    );
    let web = flows::quote(
        &server,
        &fan,
        json!({"channel": "web", "package_id": "coins_700"}),
    );
    let yen =
        |quote: &serde_json::Value| -> u64 { str_field(&quote["price"], "gross").parse().unwrap() };
    assert!(yen(&ios) >= yen(&web), "ios {ios} web {web}");
}
