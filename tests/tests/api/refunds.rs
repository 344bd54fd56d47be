//! Refund windows on the test clock: "14 days from the day after purchase" in the buyer's zone,
//! closing exactly at the start of local day D+15; closure is recorded in the history; an admin
//! may still refund for `defective` or `legal` reasons.

use e2e_tests::flows::{self, all_transactions, balance, buy, str_field, u64_field, wallet};
use e2e_tests::scenarios::{assert_history_adds_up, timestamp};
use e2e_tests::{LocalServer, User};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

#[test]
fn a_refund_in_the_last_second_of_the_window_is_accepted() {
    let server = LocalServer::new("refund-last-second");
    let fan = User::new("fan");
    let bought = buy(&server, &fan, "coins_350");
    let until = timestamp(&wallet(&server, &fan)["lots"][0]["refundable_until"]);
    // Bought 2026-03-02 (Tokyo): refundable until 2026-03-17 00:00 Tokyo.
    assert_eq!(until, "2026-03-16T15:00:00Z".parse::<Timestamp>().unwrap());
    server.set_clock(until - SignedDuration::from_secs(1));
    let lot = &wallet(&server, &fan)["lots"][0];
    assert_eq!(lot["refundable"], true, "{lot}");
    let refund = flows::refund(&server, &fan, &bought.purchase_id).expect(200);
    assert_eq!(u64_field(&refund, "coins_reversed"), bought.total_coins);
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn when_the_window_closes_the_refund_is_refused_and_the_history_says_so() {
    let server = LocalServer::new("refund-window-closed");
    let fan = User::new("fan");
    let bought = buy(&server, &fan, "coins_350");
    let until = timestamp(&wallet(&server, &fan)["lots"][0]["refundable_until"]);

    // WHEN the clock reaches the end of the window (moving it runs the closures due)
    server.set_clock(until);

    // THEN the refund is refused, the coins stay spendable, and the lot is no longer open
    flows::refund(&server, &fan, &bought.purchase_id).expect_problem(409, "refund_window_closed");
    let view = wallet(&server, &fan);
    assert_eq!(u64_field(&view, "balance"), bought.total_coins);
    let open_and_refundable = view["lots"]
        .as_array()
        .expect("lots")
        .iter()
        .filter(|lot| lot["refundable"] == true)
        .count();
    assert_eq!(open_and_refundable, 0, "{view}");
    let history = all_transactions(&server, &fan, 10);
    let kinds: Vec<&str> = history.iter().map(|t| str_field(t, "kind")).collect();
    assert_eq!(kinds, ["window_closed", "purchase"], "{history:?}");
    assert_eq!(history[0]["ref"], bought.purchase_id.as_str());
    assert_history_adds_up(&history, bought.total_coins);
}

#[test]
fn the_window_follows_the_buyers_time_zone() {
    let server = LocalServer::new("refund-zone");
    // 2026-03-02 03:00 UTC is still 2026-03-01 in Los Angeles: bought on local day 03-01, the
    // window ends at the start of 03-16 there (after the US switch to daylight time on 03-08).
    let angeleno = User::new("la")
        .in_country("US", "America/Los_Angeles")
        .in_region("US-CA");
    buy(&server, &angeleno, "coins_350");
    let until = timestamp(&wallet(&server, &angeleno)["lots"][0]["refundable_until"]);
    assert_eq!(
        until,
        "2026-03-16T00:00:00-07:00".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn an_admin_refunds_a_defective_purchase_after_the_window() {
    let server = LocalServer::new("admin-refund");
    let fan = User::new("fan");
    let admin = User::new("support").admin();
    let bought = buy(&server, &fan, "coins_700");
    server.advance_clock(30 * 24 * 3600);
    flows::refund(&server, &fan, &bought.purchase_id).expect_problem(409, "refund_window_closed");

    let admin_refund = |reason: serde_json::Value| {
        server
            .api()
            .post(&format!(
                "/v1/admin/purchases/{}/refund",
                bought.purchase_id
            ))
            .user(&admin)
            .json(&json!({ "reason": reason }))
            .send()
    };
    // A reason outside the two overrides is an invalid request, and refunds nothing.
    admin_refund(json!("goodwill")).expect_problem(400, "invalid_request");
    assert_eq!(balance(&server, &fan), bought.total_coins);

    let refund = admin_refund(json!("defective")).expect(200);
    assert_eq!(refund["purchase_id"], bought.purchase_id.as_str());
    assert_eq!(refund["status"], "refunded");
    assert_eq!(u64_field(&refund, "coins_reversed"), bought.total_coins);
    assert_eq!(refund["amount"]["gross"], bought.gross.as_str());
    assert_eq!(refund["amount"]["currency"], "JPY");
    assert_eq!(balance(&server, &fan), 0);
    admin_refund(json!("legal")).expect_problem(409, "already_refunded");
    let history = all_transactions(&server, &fan, 10);
    assert_eq!(history[0]["kind"], "refund");
    assert_history_adds_up(&history, 0);
}

#[test]
fn an_admin_cannot_refund_coins_already_spent() {
    let server = LocalServer::new("admin-refund-spent");
    let fan = User::new("fan");
    let creator = User::new("creator");
    flows::enroll(&server, &creator);
    let bought = buy(&server, &fan, "coins_70");
    flows::send_gift(&server, &fan, &creator, "rose", 1).expect(201);
    server
        .api()
        .post(&format!(
            "/v1/admin/purchases/{}/refund",
            bought.purchase_id
        ))
        .user(&User::new("support").admin())
        .json(&json!({"reason": "legal"}))
        .send()
        .expect_problem(409, "coins_already_spent");
    assert_eq!(balance(&server, &fan), 69);
}
