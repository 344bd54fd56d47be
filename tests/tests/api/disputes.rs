//! Disputes (API.md "Reversals"): Stripe's `charge.dispute.created` takes the purchase's coins
//! back, into debt where they were spent; gifts wait until the debt is repaid by the next
//! purchase; a dispute won gives the coins back once; two reversals in 90 days restrict the
//! account until an admin lifts it. Events signed by the test with Stripe's scheme.

use e2e_tests::flows::{
    self, Bought, all_transactions, balance, buy, enroll, send_gift, str_field, u64_field, wallet,
};
use e2e_tests::payments;
use e2e_tests::scenarios::assert_history_adds_up;
use e2e_tests::{LocalServer, User};
use serde_json::{Value, json};

fn dispute_event(kind: &str, dispute_id: &str, bought: &Bought, status: &str) -> String {
    payments::event(
        kind,
        payments::dispute(dispute_id, &bought.payment_intent_id, status),
    )
}

fn opened(dispute_id: &str, bought: &Bought) -> String {
    dispute_event(
        "charge.dispute.created",
        dispute_id,
        bought,
        "needs_response",
    )
}

fn closed(dispute_id: &str, bought: &Bought, status: &str) -> String {
    dispute_event("charge.dispute.closed", dispute_id, bought, status)
}

fn purchase_status(server: &LocalServer, buyer: &User, purchase_id: &str) -> Value {
    server
        .api()
        .get(&format!("/v1/purchases/{purchase_id}"))
        .user(buyer)
        .send()
        .expect(200)["status"]
        .clone()
}

#[test]
fn a_dispute_takes_the_coins_back_into_debt_and_a_won_dispute_returns_them_once() {
    let server = LocalServer::new("dispute-debt");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    let bought = buy(&server, &fan, "coins_350");
    send_gift(&server, &fan, &creator, "rose", 300).expect(201);

    // WHEN the card's owner disputes the payment (and Stripe sends the event twice)
    let dispute = opened("dp_e2e_1", &bought);
    let ack = server.deliver_webhook(&dispute).expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    let replay = server.deliver_webhook(&dispute).expect(200);
    assert_eq!(replay["outcome"], "replayed", "{replay}");

    // THEN the 50 unspent coins go back and the 300 gifted are owed; the creator keeps them
    let view = wallet(&server, &fan);
    assert_eq!(
        (view["balance"].as_u64(), view["debt"].as_u64()),
        (Some(0), Some(300)),
        "{view}"
    );
    assert_eq!(view["restricted"], false);
    assert_eq!(
        purchase_status(&server, &fan, &bought.purchase_id),
        "reversed"
    );
    flows::earnings_reaching(&server, &creator, 300);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "coin_debt");
    // A reversed purchase is not refundable.
    flows::refund(&server, &fan, &bought.purchase_id).expect_problem(409, "already_refunded");

    // WHEN the next purchase is credited, it repays the debt first
    server.advance_clock(60);
    let next = buy(&server, &fan, "coins_700");
    let view = wallet(&server, &fan);
    assert_eq!(view["debt"], 0, "{view}");
    assert_eq!(u64_field(&view, "balance"), next.total_coins - 300);
    send_gift(&server, &fan, &creator, "rose", 1).expect(201);

    // WHEN the dispute is won (and the event replayed): the 350 coins come back, once
    let won = closed("dp_e2e_1", &bought, "won");
    assert_eq!(
        server.deliver_webhook(&won).expect(200)["outcome"],
        "reversal_undone"
    );
    assert_eq!(
        server.deliver_webhook(&won).expect(200)["outcome"],
        "replayed"
    );
    let again = closed("dp_e2e_1", &bought, "won");
    assert_eq!(
        server.deliver_webhook(&again).expect(200)["outcome"],
        "ignored"
    );
    let final_balance = next.total_coins - 300 - 1 + 350;
    assert_eq!(balance(&server, &fan), final_balance);
    assert_eq!(
        purchase_status(&server, &fan, &bought.purchase_id),
        "credited"
    );
    let history = all_transactions(&server, &fan, 50);
    let kinds: Vec<&str> = history
        .iter()
        .map(|entry| str_field(entry, "kind"))
        .collect();
    assert_eq!(
        kinds,
        [
            "reversal_undone",
            "gift",
            "purchase",
            "reversal",
            "gift",
            "purchase"
        ]
    );
    assert_history_adds_up(&history, final_balance);
}

#[test]
fn a_lost_dispute_changes_nothing_more() {
    let server = LocalServer::new("dispute-lost");
    let fan = User::new("fan");
    let bought = buy(&server, &fan, "coins_70");
    server
        .deliver_webhook(&opened("dp_e2e_lost", &bought))
        .expect(200);
    let ack = server
        .deliver_webhook(&closed("dp_e2e_lost", &bought, "lost"))
        .expect(200);
    assert_eq!(ack["outcome"], "ignored", "{ack}");
    assert_eq!(balance(&server, &fan), 0);
    assert_eq!(
        purchase_status(&server, &fan, &bought.purchase_id),
        "reversed"
    );
}

#[test]
fn a_dispute_before_the_payment_event_credits_nothing_until_won() {
    let server = LocalServer::new("dispute-early");
    let fan = User::new("fan");
    let quote = flows::quote_package(&server, &fan, "coins_70");
    let purchase = flows::purchase(&server, &fan, str_field(&quote, "quote_id"));
    let bought = flows::bought(&purchase);
    // Stripe's events out of order: the dispute first, then the payment it disputes.
    let ack = server
        .deliver_webhook(&opened("dp_e2e_early", &bought))
        .expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    let ack = server
        .deliver_webhook(&flows::succeeded_event(&purchase, "JP"))
        .expect(200);
    assert_eq!(
        ack["outcome"], "replayed",
        "nothing credited, nothing returned: {ack}"
    );
    assert_eq!(balance(&server, &fan), 0);
    assert!(
        server.provider_refunds().is_empty(),
        "a disputed payment is not also refunded"
    );
    let ack = server
        .deliver_webhook(&closed("dp_e2e_early", &bought, "won"))
        .expect(200);
    assert_eq!(ack["outcome"], "reversal_undone", "{ack}");
    assert_eq!(balance(&server, &fan), bought.total_coins);
    let history = all_transactions(&server, &fan, 10);
    assert_history_adds_up(&history, bought.total_coins);
}

#[test]
fn two_reversals_in_90_days_restrict_the_account_until_an_admin_lifts_it() {
    let server = LocalServer::new("dispute-restrict");
    let fan = User::new("fan");
    let admin = User::new("support").admin();
    let first = buy(&server, &fan, "coins_70");
    server.advance_clock(60);
    let second = buy(&server, &fan, "coins_70");
    server
        .deliver_webhook(&opened("dp_e2e_a", &first))
        .expect(200);
    assert_eq!(wallet(&server, &fan)["restricted"], false);
    server.advance_clock(30 * 24 * 3600);
    server
        .deliver_webhook(&opened("dp_e2e_b", &second))
        .expect(200);
    assert_eq!(wallet(&server, &fan)["restricted"], true);

    // THEN quotes and purchases are refused
    server
        .api()
        .post("/v1/quotes")
        .user(&fan)
        .json(&json!({"channel": "web", "package_id": "coins_70"}))
        .send()
        .expect_problem(403, "account_restricted");

    // Only an admin lifts it.
    let lift = |user: &User| {
        server
            .api()
            .put(&format!("/v1/admin/users/{}/restriction", fan.sub))
            .user(user)
            .json(&json!({"restricted": false}))
            .send()
    };
    lift(&fan).expect_problem(403, "forbidden");
    let lifted = lift(&admin).expect(200);
    assert_eq!(lifted, json!({"user_id": fan.sub, "restricted": false}));
    assert_eq!(wallet(&server, &fan)["restricted"], false);
    flows::quote_package(&server, &fan, "coins_70");
    server
        .api()
        .put(&format!("/v1/admin/users/{}/restriction", fan.sub))
        .user(&admin)
        .json(&json!({"restricted": "no"}))
        .send()
        .expect_problem(400, "invalid_request");
}

#[test]
fn a_dispute_of_an_unknown_payment_is_acknowledged_and_ignored() {
    let server = LocalServer::new("dispute-unknown");
    let stranger = Bought {
        purchase_id: "pur_none".into(),
        payment_intent_id: payments::new_id("pi_e2e_unknown_"),
        total_coins: 0,
        currency: "JPY".into(),
        gross: "0".into(),
    };
    let ack = server
        .deliver_webhook(&opened("dp_e2e_unknown", &stranger))
        .expect(200);
    assert_eq!(ack["outcome"], "ignored", "{ack}");
}
