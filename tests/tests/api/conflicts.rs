//! The 409s of API.md not already met in the main flow or the refund tests: too few coins, an
//! expired quote, the daily limit.

use e2e_tests::flows::{self, balance, buy, enroll, send_gift, str_field};
use e2e_tests::{LocalServer, User};

#[test]
fn a_gift_costing_more_than_the_balance_is_refused_and_spends_nothing() {
    let server = LocalServer::new("insufficient");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "insufficient_coins");
    buy(&server, &fan, "coins_70");
    // 3 × Doughnut (30) = 90 > 70.
    send_gift(&server, &fan, &creator, "doughnut", 3).expect_problem(409, "insufficient_coins");
    assert_eq!(balance(&server, &fan), 70);
    assert_eq!(flows::earnings(&server, &creator)["diamonds_earned"], 0);
    // Exactly the balance is fine.
    send_gift(&server, &fan, &creator, "finger_heart", 14).expect(201);
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn a_quote_paid_after_it_expired_is_refused() {
    let server = LocalServer::new("quote-expired");
    let fan = User::new("fan");
    let quote = flows::quote_package(&server, &fan, "coins_70");
    let expires_at = e2e_tests::scenarios::timestamp(&quote["expires_at"]);
    server.set_clock(expires_at);
    flows::purchase_with_key(
        &server,
        &fan,
        str_field(&quote, "quote_id"),
        &flows::new_key("late"),
    )
    .expect_problem(409, "quote_expired");
    assert_eq!(balance(&server, &fan), 0);
    // A fresh quote at the new time is fine.
    buy(&server, &fan, "coins_70");
}

#[test]
fn a_gift_over_the_daily_limit_is_refused() {
    let server = LocalServer::new("limit-reached");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_350");
    server
        .api()
        .put("/v1/wallet/limits")
        .user(&fan)
        .json(&serde_json::json!({"daily_coins": 10}))
        .send()
        .expect(200);
    send_gift(&server, &fan, &creator, "rose", 11).expect_problem(409, "spending_limit_reached");
    send_gift(&server, &fan, &creator, "rose", 10).expect(201);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "spending_limit_reached");
    assert_eq!(balance(&server, &fan), 340);
    let limit = &flows::wallet(&server, &fan)["daily_limit"];
    assert_eq!(limit["coins"], 10);
    assert_eq!(limit["spent_today"], 10);
}
