//! Web purchases (API.md "Web purchases"): a purchase is a Stripe PaymentIntent for the quoted
//! amount; the buyer reads one purchase or pages through theirs; app quotes are not sold here;
//! refunds take an optional Idempotency-Key.

use e2e_tests::flows::{self, buy, purchase_with_key, str_field};
use e2e_tests::scenarios::timestamp;
use e2e_tests::{LocalServer, User};
use serde_json::json;

#[test]
fn a_purchase_carries_its_payment_intent_and_expires_after_24_hours() {
    let server = LocalServer::new("purchase-intent");
    let fan = User::new("fan");
    let quote = flows::quote_package(&server, &fan, "coins_350");
    let key = flows::new_key("purchase");
    let purchase =
        purchase_with_key(&server, &fan, str_field(&quote, "quote_id"), &key).expect(201);
    let payment = &purchase["payment"];
    assert_eq!(payment["provider"], "stripe");
    assert!(
        str_field(payment, "payment_intent_id").starts_with("pi_"),
        "{purchase}"
    );
    assert!(!str_field(payment, "client_secret").is_empty());
    assert_eq!(
        timestamp(&purchase["expires_at"]),
        server.now() + jiff::SignedDuration::from_hours(24)
    );
    // The same key: the same purchase and the same PaymentIntent (no second charge possible).
    let again = purchase_with_key(&server, &fan, str_field(&quote, "quote_id"), &key).expect(201);
    assert_eq!(again, purchase);

    let purchase_id = str_field(&purchase, "purchase_id");
    let view = server
        .api()
        .get(&format!("/v1/purchases/{purchase_id}"))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(view["status"], "pending", "{view}");
    assert_eq!(view["total_coins"], purchase["total_coins"]);
    assert_eq!(view["amount"], purchase["amount"]);
    assert!(
        view["credited_at"].is_null() && view["refund"].is_null(),
        "{view}"
    );
    // Unpaid for 24 h: expired.
    server.advance_clock(24 * 3600);
    let view = server
        .api()
        .get(&format!("/v1/purchases/{purchase_id}"))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(view["status"], "expired", "{view}");
}

#[test]
fn a_us_purchase_charges_the_states_sales_tax_on_top_of_the_listed_price() {
    let server = LocalServer::new("purchase-tax");
    let washington = User::new("wa")
        .in_country("US", "America/Los_Angeles")
        .in_region("US-WA");
    let quote = flows::quote_package(&server, &washington, "coins_700");
    assert_eq!(quote["tax_inclusive"], false);
    assert_eq!(quote["price"]["net"], "7.49");
    assert_eq!(quote["price"]["tax"], "0.49");
    assert_eq!(quote["price"]["gross"], "7.98");
    let purchase = flows::purchase(&server, &washington, str_field(&quote, "quote_id"));
    assert_eq!(
        purchase["amount"],
        json!({"currency": "USD", "gross": "7.98"})
    );
    let oregon = User::new("or")
        .in_country("US", "America/Los_Angeles")
        .in_region("US-OR");
    let quote = flows::quote_package(&server, &oregon, "coins_700");
    assert_eq!(quote["price"]["tax"], "0.00");
    assert_eq!(quote["price"]["gross"], "7.49");
}

#[test]
fn only_the_buyer_sees_a_purchase_and_the_list_pages_newest_first() {
    let server = LocalServer::new("purchase-list");
    let fan = User::new("fan");
    let first = buy(&server, &fan, "coins_70");
    server.advance_clock(60);
    let second = buy(&server, &fan, "coins_350");
    server
        .api()
        .get(&format!("/v1/purchases/{}", first.purchase_id))
        .user(&User::new("stranger"))
        .send()
        .expect_problem(404, "not_found");
    server
        .api()
        .get("/v1/purchases/pur_does_not_exist")
        .user(&fan)
        .send()
        .expect_problem(404, "not_found");

    let page = server
        .api()
        .get("/v1/purchases?limit=1")
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(page["items"][0]["purchase_id"], second.purchase_id.as_str());
    let cursor = flows::encode_query_value(str_field(&page, "next_cursor"));
    let rest = server
        .api()
        .get(&format!("/v1/purchases?limit=1&cursor={cursor}"))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(rest["items"][0]["purchase_id"], first.purchase_id.as_str());
    assert_eq!(rest["items"][0]["status"], "credited");
    let empty = server
        .api()
        .get("/v1/purchases")
        .user(&User::new("new"))
        .send()
        .expect(200);
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
    for bad in [
        "limit=0",
        "limit=101",
        "cursor=zz",
        &format!("cursor={}", "a".repeat(200)),
    ] {
        server
            .api()
            .get(&format!("/v1/purchases?{bad}"))
            .user(&fan)
            .send()
            .expect_problem(400, "invalid_request");
    }
}

#[test]
fn an_app_quote_is_not_sold_on_the_web() {
    let server = LocalServer::new("purchase-channel");
    let fan = User::new("fan");
    let quote = flows::quote(
        &server,
        &fan,
        json!({"channel": "ios", "package_id": "coins_70"}),
    );
    purchase_with_key(
        &server,
        &fan,
        str_field(&quote, "quote_id"),
        &flows::new_key("p"),
    )
    .expect_problem(422, "channel_not_allowed");
}

#[test]
fn a_refund_with_an_idempotency_key_is_answered_again_and_sent_once() {
    let server = LocalServer::new("refund-key");
    let fan = User::new("fan");
    let bought = buy(&server, &fan, "coins_350");
    let other = buy(&server, &fan, "coins_70");
    let refund = |purchase_id: &str, key: &str| {
        server
            .api()
            .post(&format!("/v1/purchases/{purchase_id}/refund"))
            .user(&fan)
            .idempotency_key(key)
            .send()
    };
    let first = refund(&bought.purchase_id, "refund-1").expect(200);
    let again = refund(&bought.purchase_id, "refund-1").expect(200);
    assert_eq!(again, first);
    refund(&other.purchase_id, "refund-1").expect_problem(422, "idempotency_key_reused");
    let settled = server.settled_refund(&fan, &bought.purchase_id);
    assert_eq!(settled["refund"]["status"], "succeeded", "{settled}");
    let refunds = server.provider_refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].payment, bought.payment_intent_id);
    assert_eq!(
        refunds[0].refund_id,
        str_field(&settled["refund"], "refund_id")
    );
}
