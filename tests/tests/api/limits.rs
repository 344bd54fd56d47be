//! The daily gifting limit: lowering applies at once, raising (or removing) only after a
//! 24-hour cooling-off, and the count restarts on the user's local day.

use e2e_tests::flows::{self, buy, enroll, send_gift, wallet};
use e2e_tests::scenarios::timestamp;
use e2e_tests::{LocalServer, User};
use jiff::SignedDuration;
use serde_json::{Value, json};

fn set_limit(server: &LocalServer, user: &User, daily_coins: Value) -> Value {
    server
        .api()
        .put("/v1/wallet/limits")
        .user(user)
        .json(&json!({ "daily_coins": daily_coins }))
        .send()
        .expect(200)
}

#[test]
fn lowering_applies_at_once_and_raising_after_24_hours() {
    let server = LocalServer::new("limits");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_700");

    // GIVEN a limit of 500, lowered to 100: both at once
    let first = set_limit(&server, &fan, json!(500));
    assert_eq!(first["daily_coins"], 500);
    assert!(first["pending"].is_null(), "{first}");
    let lowered = set_limit(&server, &fan, json!(100));
    assert_eq!(lowered["daily_coins"], 100);
    assert!(lowered["pending"].is_null(), "{lowered}");
    assert_eq!(
        wallet(&server, &fan)["daily_limit"],
        json!({"coins": 100, "spent_today": 0})
    );

    // WHEN it is raised to 1000
    let raised = set_limit(&server, &fan, json!(1000));
    // THEN 100 stays in force until 24 hours from now
    assert_eq!(raised["daily_coins"], 100);
    assert_eq!(raised["pending"]["daily_coins"], 1000);
    let effective_at = timestamp(&raised["pending"]["effective_at"]);
    assert_eq!(effective_at, server.now() + SignedDuration::from_hours(24));
    send_gift(&server, &fan, &creator, "hand_hearts", 1).expect(201);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "spending_limit_reached");

    // One second early, still 100.
    server.set_clock(effective_at - SignedDuration::from_secs(1));
    assert_eq!(wallet(&server, &fan)["daily_limit"]["coins"], 100);
    // At the effective time, 1000 (and a new local day has started, so nothing spent today).
    server.set_clock(effective_at);
    let limit = &wallet(&server, &fan)["daily_limit"];
    assert_eq!(limit["coins"], 1000, "{limit}");
    assert_eq!(limit["spent_today"], 0, "{limit}");
    send_gift(&server, &fan, &creator, "money_gun", 1).expect(201);
    assert_eq!(wallet(&server, &fan)["daily_limit"]["spent_today"], 500);
}

#[test]
fn removing_the_limit_also_waits_24_hours() {
    let server = LocalServer::new("limit-removal");
    let fan = User::new("fan");
    set_limit(&server, &fan, json!(50));
    let removal = set_limit(&server, &fan, Value::Null);
    assert_eq!(removal["daily_coins"], 50);
    assert!(removal["pending"]["daily_coins"].is_null(), "{removal}");
    server.advance_clock(24 * 3600);
    assert!(wallet(&server, &fan)["daily_limit"].is_null());
}

#[test]
fn the_daily_count_restarts_at_local_midnight() {
    let server = LocalServer::new("limit-midnight");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_350");
    set_limit(&server, &fan, json!(20));
    send_gift(&server, &fan, &creator, "perfume", 1).expect(201);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "spending_limit_reached");
    // Noon in Tokyo + 11 h 59 min 59 s: still the same local day.
    server.advance_clock(12 * 3600 - 1);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "spending_limit_reached");
    // One second later it is midnight in Tokyo (15:00 UTC): a new day.
    server.advance_clock(1);
    send_gift(&server, &fan, &creator, "perfume", 1).expect(201);
    assert_eq!(flows::balance(&server, &fan), 310);
}

#[test]
fn a_malformed_limit_is_refused_and_changes_nothing() {
    let server = LocalServer::new("limit-invalid");
    let fan = User::new("fan");
    set_limit(&server, &fan, json!(300));
    for body in [
        r#"{}"#,
        r#"{"daily_coins": -1}"#,
        r#"{"daily_coins": "500"}"#,
        r#"{"daily_coins": 1.5}"#,
        r#"{"daily_coins": 18446744073709551616}"#,
        r#"{"daily_coins": 500"#,
    ] {
        server
            .api()
            .put("/v1/wallet/limits")
            .user(&fan)
            .raw("application/json", body)
            .send()
            .expect_problem(400, "invalid_request");
    }
    assert_eq!(
        wallet(&server, &fan)["daily_limit"],
        json!({"coins": 300, "spent_today": 0})
    );
}
