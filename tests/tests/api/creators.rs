//! A creator's side: gifts counted into earnings from the stream, held for a week on the test
//! clock and then available; gifts received page by page; payouts to the Stripe Connect account
//! an admin set, sent by the payout dispatcher through the test-mode provider: paid, or failed
//! (an `acct_fail…` account) with the diamonds back. The audit holds after each.

use e2e_tests::flows::{self, buy, enroll, eventually, new_key, send_gift, u64_field};
use e2e_tests::{LocalServer, User};
use serde_json::{Value, json};

/// A creator with 12,000 diamonds from a fan's 12 galaxies, counted, and a payout account; the
/// fan and the creator.
fn earning_creator(server: &LocalServer, account: &str) -> (User, User) {
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(server, &creator);
    buy(server, &fan, "coins_17500");
    send_gift(server, &fan, &creator, "galaxy", 12).expect(201);
    let earnings = flows::earnings_reaching(server, &creator, 12_000);
    assert_eq!(
        (earnings["pending"].as_u64(), earnings["available"].as_u64()),
        (Some(12_000), Some(0)),
        "held: {earnings}"
    );
    let admin = User::new("support").admin();
    let set = server
        .api()
        .put(&format!(
            "/v1/admin/creators/{}/payout-account",
            creator.sub
        ))
        .user(&admin)
        .json(&json!({ "stripe_account": account }))
        .send()
        .expect(200);
    assert_eq!(
        set,
        json!({"creator_id": creator.sub, "stripe_account": account})
    );
    (fan, creator)
}

fn request_payout(
    server: &LocalServer,
    creator: &User,
    key: &str,
    diamonds: u64,
) -> e2e_tests::client::Reply {
    server
        .api()
        .post("/v1/creators/me/payouts")
        .user(creator)
        .idempotency_key(key)
        .json(&json!({ "diamonds": diamonds }))
        .send()
}

/// The creator's payouts once the newest has left `pending`.
fn settled_payouts(server: &LocalServer, creator: &User) -> Value {
    eventually(
        "the payout to be sent",
        || {
            server
                .api()
                .get("/v1/creators/me/payouts")
                .user(creator)
                .send()
                .expect(200)
        },
        |payouts| payouts["items"][0]["status"] != "pending",
    )
}

#[test]
fn a_creator_is_paid_out_once_the_hold_is_over() {
    let server = LocalServer::new("payout-paid");
    let (fan, creator) = earning_creator(&server, "acct_1CreatorE2E");
    // Held diamonds cannot leave.
    request_payout(&server, &creator, &new_key("payout"), 10_000)
        .expect_problem(409, "insufficient_diamonds");

    // WHEN the hold is over (the first UTC midnight a week after the gift)
    server.advance_clock(8 * 24 * 3600);
    let earnings = flows::earnings(&server, &creator);
    assert_eq!(u64_field(&earnings, "available"), 12_000);
    assert_eq!(
        earnings["available_value"],
        json!({"currency": "USD", "amount": "60.00"})
    );

    // THEN 10,000 of them are paid out, once per key
    let key = new_key("payout");
    let payout = request_payout(&server, &creator, &key, 10_000).expect(201);
    assert_eq!(payout["status"], "pending");
    assert_eq!(
        payout["amount"],
        json!({"currency": "USD", "gross": "50.00"})
    );
    assert_eq!(
        request_payout(&server, &creator, &key, 10_000).expect(201),
        payout
    );
    let payouts = settled_payouts(&server, &creator);
    assert_eq!(
        payouts["items"].as_array().map(Vec::len),
        Some(1),
        "{payouts}"
    );
    assert_eq!(payouts["items"][0]["payout_id"], payout["payout_id"]);
    assert_eq!(payouts["items"][0]["status"], "paid", "{payouts}");
    let earnings = flows::earnings(&server, &creator);
    assert_eq!(
        (
            u64_field(&earnings, "available"),
            u64_field(&earnings, "in_payout"),
            u64_field(&earnings, "paid_out")
        ),
        (2_000, 0, 10_000)
    );
    // Below the minimum now.
    request_payout(&server, &creator, &new_key("payout"), 2_000)
        .expect_problem(422, "payout_below_minimum");
    server.assert_conserved();
    // What is still owed: the fan's unspent coins, the creator's 2,000 diamonds.
    let owed = server.liabilities();
    assert_eq!(
        owed["coins"]["outstanding"],
        flows::balance(&server, &fan),
        "{owed}"
    );
    assert_eq!(
        owed["diamonds"]["available"],
        json!({"diamonds": 2_000, "usd": "10.00"}),
        "{owed}"
    );
    assert_eq!(owed["diamonds"]["total"]["diamonds"], 2_000, "{owed}");
}

#[test]
fn a_payout_to_a_closed_account_fails_and_its_diamonds_come_back() {
    let server = LocalServer::new("payout-failed");
    let (_, creator) = earning_creator(&server, "acct_fail_closed");
    server.advance_clock(8 * 24 * 3600);
    request_payout(&server, &creator, &new_key("payout"), 12_000).expect(201);
    let payouts = settled_payouts(&server, &creator);
    assert_eq!(payouts["items"][0]["status"], "failed", "{payouts}");
    let earnings = flows::earnings(&server, &creator);
    assert_eq!(
        (
            u64_field(&earnings, "available"),
            u64_field(&earnings, "in_payout")
        ),
        (12_000, 0)
    );
    server.assert_conserved();
}

#[test]
fn a_payout_needs_an_account_and_only_an_admin_sets_it() {
    let server = LocalServer::new("payout-account");
    let creator = User::new("creator");
    enroll(&server, &creator);
    request_payout(&server, &creator, &new_key("payout"), 10_000)
        .expect_problem(422, "payout_account_missing");
    let path = format!("/v1/admin/creators/{}/payout-account", creator.sub);
    let body = json!({ "stripe_account": "acct_1Mine" });
    server
        .api()
        .put(&path)
        .user(&creator)
        .json(&body)
        .send()
        .expect_problem(403, "forbidden");
    let admin = User::new("support").admin();
    server
        .api()
        .put(&path)
        .user(&admin)
        .json(&json!({ "stripe_account": "DE89370400440532013000" }))
        .send()
        .expect_problem(400, "invalid_request");
    server
        .api()
        .put("/v1/admin/creators/nobody/payout-account")
        .user(&admin)
        .json(&body)
        .send()
        .expect_problem(404, "not_found");
}

#[test]
fn gifts_received_are_listed_newest_first_page_by_page() {
    let server = LocalServer::new("gifts-received");
    let (ann, bob, creator) = (User::new("ann"), User::new("bob"), User::new("creator"));
    enroll(&server, &creator);
    buy(&server, &ann, "coins_70");
    buy(&server, &bob, "coins_70");
    let mut sent = Vec::new();
    for (fan, gift) in [(&ann, "rose"), (&bob, "finger_heart"), (&ann, "perfume")] {
        let reply = send_gift(&server, fan, &creator, gift, 1).expect(201);
        sent.push(reply["gift_txn_id"].clone());
        server.advance_clock(1);
    }
    flows::earnings_reaching(&server, &creator, 26);
    let first = server
        .api()
        .get("/v1/creators/me/gifts?limit=2")
        .user(&creator)
        .send()
        .expect(200);
    let cursor = first["next_cursor"].as_str().expect("a cursor").to_owned();
    let rest = server
        .api()
        .get(&format!("/v1/creators/me/gifts?limit=2&cursor={cursor}"))
        .user(&creator)
        .send()
        .expect(200);
    assert!(rest["next_cursor"].is_null(), "{rest}");
    let listed: Vec<Value> = first["items"]
        .as_array()
        .into_iter()
        .chain(rest["items"].as_array())
        .flatten()
        .map(|gift| gift["gift_txn_id"].clone())
        .collect();
    sent.reverse();
    assert_eq!(listed, sent, "newest first");
    assert_eq!(first["items"][0]["gift_id"], "perfume");
    assert_eq!(first["items"][0]["target"]["kind"], "live");
    server
        .api()
        .get("/v1/creators/me/gifts?cursor=6e6f")
        .user(&creator)
        .send()
        .expect_problem(400, "invalid_request");
    server
        .api()
        .get("/v1/creators/me/gifts")
        .user(&ann)
        .send()
        .expect_problem(404, "not_found");
}
