//! Web payments end to end against a real Stripe protocol: localstripe (PyPI) as Stripe, the
//! local server on DynamoDB Local talking to it over HTTP, localstripe's own signed webhooks
//! coming back, refunds made in localstripe by the stream consumer.
//!
//! localstripe's cards report country FR, so the buyers here are billed in France. It sends no
//! dispute events: those are signed by the test with Stripe's scheme, about localstripe's
//! payments.

use std::time::Duration;

use e2e_tests::binaries::binary;
use e2e_tests::flows::{self, eventually, str_field, u64_field};
use e2e_tests::localstripe::{self, Localstripe};
use e2e_tests::payments::{self, WEBHOOK_SECRET};
use e2e_tests::server::{Payments, Storage, dynamodb_storage};
use e2e_tests::{LocalServer, User};
use serde_json::Value;

/// localstripe, and the local server on a fresh table pointed at it, its webhook registered.
fn stripe_and_server(label: &str) -> (Localstripe, LocalServer) {
    let stripe = Localstripe::start();
    let server = LocalServer::in_process(
        dynamodb_storage(label),
        Payments::Stripe {
            api_base: stripe.base_url().to_owned(),
        },
    );
    let endpoint = format!("{}/v1/webhooks/stripe", server.api().base_url());
    stripe.register_webhook(&endpoint, WEBHOOK_SECRET);
    (stripe, server)
}

fn french_fan() -> User {
    User::new("fan").in_country("FR", "Europe/Paris")
}

/// A pending purchase of `package` (its PaymentIntent is localstripe's).
fn purchase(server: &LocalServer, fan: &User, package: &str) -> Value {
    let quote = flows::quote_package(server, fan, package);
    flows::purchase(server, fan, str_field(&quote, "quote_id"))
}

fn intent_id(purchase: &Value) -> &str {
    str_field(&purchase["payment"], "payment_intent_id")
}

fn view(server: &LocalServer, fan: &User, purchase: &Value) -> Value {
    let id = str_field(purchase, "purchase_id");
    server
        .api()
        .get(&format!("/v1/purchases/{id}"))
        .user(fan)
        .send()
        .expect(200)
}

#[test]
fn a_card_payment_confirmed_at_stripe_credits_the_coins_once() {
    let (stripe, server) = stripe_and_server("stripe-paid");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_700");
    // The PaymentIntent as Stripe has it: the quoted amount in cents, our metadata.
    let intent = stripe.payment_intent(intent_id(&bought));
    assert_eq!(
        intent["amount"].as_i64(),
        Some(payments::minor_units(str_field(&bought["amount"], "gross")))
    );
    assert_eq!(intent["currency"], "eur");
    assert_eq!(intent["metadata"]["purchase_id"], bought["purchase_id"]);
    assert_eq!(intent["metadata"]["user_id"], fan.sub.as_str());
    assert_eq!(intent["client_secret"], bought["payment"]["client_secret"]);

    // WHEN the buyer's card pays it (Stripe.js would confirm it)
    let paid = stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    assert_eq!(paid.status, 200, "{paid:?}");

    // THEN localstripe's signed payment_intent.succeeded credits the purchase
    let credited = eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );
    assert_eq!(credited["payment_intent_id"], intent["id"]);
    assert_eq!(
        flows::balance(&server, &fan),
        u64_field(&bought, "total_coins")
    );
    // Stripe's event delivered again (a retry): nothing more.
    let event = stripe.event_about("payment_intent.succeeded", intent_id(&bought));
    let replay = server.deliver_webhook(&event).expect(200);
    assert_eq!(replay["outcome"], "replayed", "{replay}");
    assert_eq!(
        flows::balance(&server, &fan),
        u64_field(&bought, "total_coins")
    );
}

/// localstripe signs its webhooks at its wall-clock time: once the server's test clock moved
/// (`/_dev/clock`), they are still taken (the tolerance used to be measured against the test
/// clock, and every one was refused as too old).
#[test]
fn stripes_webhooks_are_taken_after_the_test_clock_moved() {
    let (stripe, server) = stripe_and_server("stripe-clock");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    server.advance_clock(3_600);
    let paid = stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    assert_eq!(paid.status, 200, "{paid:?}");
    eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );
}

#[test]
fn a_declined_card_fails_the_purchase() {
    let (stripe, server) = stripe_and_server("stripe-declined");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    let declined = stripe.pay(intent_id(&bought), localstripe::CARD_DECLINED);
    assert_eq!(declined.status, 402, "{declined:?}");
    eventually(
        "the failure",
        || view(&server, &fan, &bought),
        |view| view["status"] == "failed",
    );
    assert_eq!(flows::balance(&server, &fan), 0);
}

#[test]
fn a_refund_becomes_exactly_one_stripe_refund_whatever_the_redeliveries() {
    let (stripe, server) = stripe_and_server("stripe-refund");
    // A second server on the same table: a second dispatcher reading the same stream.
    let second = LocalServer::in_process(
        server.storage().clone(),
        Payments::Stripe {
            api_base: stripe.base_url().to_owned(),
        },
    );
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );

    let refund = flows::refund(&server, &fan, str_field(&bought, "purchase_id")).expect(200);
    assert_eq!(refund["refund"]["status"], "pending");
    let settled = server.settled_refund(&fan, str_field(&bought, "purchase_id"));
    assert_eq!(settled["refund"]["status"], "succeeded", "{settled}");
    // Both dispatchers saw the instruction; Stripe has one refund, for the whole amount, tagged
    // with the instruction.
    std::thread::sleep(Duration::from_secs(1));
    let refunds = stripe.refunds_of(intent_id(&bought));
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        refunds[0]["amount"].as_i64(),
        Some(payments::minor_units(str_field(&bought["amount"], "gross")))
    );
    assert_eq!(refunds[0]["id"], settled["refund"]["provider_refund_id"]);
    assert_eq!(
        refunds[0]["metadata"]["refund_id"],
        settled["refund"]["refund_id"]
    );
    // Stripe's payment event replayed after the refund changes nothing and sends nothing.
    let event = stripe.event_about("payment_intent.succeeded", intent_id(&bought));
    assert_eq!(
        server.deliver_webhook(&event).expect(200)["outcome"],
        "replayed"
    );
    assert_eq!(
        second.deliver_webhook(&event).expect(200)["outcome"],
        "replayed"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(stripe.refunds_of(intent_id(&bought)).len(), 1);
}

#[test]
fn a_payment_from_the_wrong_country_is_refunded_at_stripe() {
    let (stripe, server) = stripe_and_server("stripe-returned");
    // Billed in Germany, paid with localstripe's French card: not the quote's country.
    let fan = User::new("fan").in_country("DE", "Europe/Berlin");
    let bought = purchase(&server, &fan, "coins_70");
    stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    let returned = eventually(
        "the return",
        || view(&server, &fan, &bought),
        |view| view["refund"]["status"] == "succeeded",
    );
    assert_eq!(returned["status"], "refunded");
    assert_eq!(returned["refund"]["reason"], "region_mismatch");
    assert_eq!(flows::balance(&server, &fan), 0);
    let refunds = stripe.refunds_of(intent_id(&bought));
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        refunds[0]["amount"].as_i64(),
        Some(payments::minor_units(str_field(&bought["amount"], "gross")))
    );
}

#[test]
fn a_dispute_of_a_stripe_payment_takes_the_coins_back_and_a_won_dispute_returns_them() {
    let (stripe, server) = stripe_and_server("stripe-dispute");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );
    let dispute = |kind: &str, status: &str| {
        payments::event(
            kind,
            payments::dispute("dp_e2e_stripe", intent_id(&bought), status),
        )
    };
    let ack = server
        .deliver_webhook(&dispute("charge.dispute.created", "needs_response"))
        .expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    assert_eq!(view(&server, &fan, &bought)["status"], "reversed");
    assert_eq!(flows::balance(&server, &fan), 0);
    let ack = server
        .deliver_webhook(&dispute("charge.dispute.closed", "won"))
        .expect(200);
    assert_eq!(ack["outcome"], "reversal_undone", "{ack}");
    assert_eq!(
        flows::balance(&server, &fan),
        u64_field(&bought, "total_coins")
    );
    // No refund was made for a disputed payment.
    assert!(stripe.refunds_of(intent_id(&bought)).is_empty());
}

/// `coinctl reconcile` over the server's table and localstripe: its exit code and output.
fn reconcile(stripe: &Localstripe, server: &LocalServer, since: jiff::Timestamp) -> (i32, String) {
    let Storage::DynamoDb { endpoint, table } = server.storage() else {
        unreachable!("these servers are on DynamoDB Local");
    };
    let output = std::process::Command::new(binary("coinctl"))
        .args(["reconcile", "--stripe-api-base", stripe.base_url()])
        .args(["--dynamodb-endpoint", endpoint, "--table-name", table])
        .args(["--since", &since.to_string()])
        .env("STRIPE_SECRET_KEY", localstripe::SECRET_KEY)
        .output()
        .expect("coinctl runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn reconciliation_finds_stripe_and_the_ledger_agreeing_then_names_a_refund_made_behind_its_back() {
    let (stripe, server) = stripe_and_server("stripe-reconcile");
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(1);
    let fan = french_fan();
    let kept = purchase(&server, &fan, "coins_700");
    let refunded = purchase(&server, &fan, "coins_70");
    for bought in [&kept, &refunded] {
        stripe.pay(intent_id(bought), localstripe::CARD_OK);
        eventually(
            "the credit",
            || view(&server, &fan, bought),
            |view| view["status"] == "credited",
        );
    }
    flows::refund(&server, &fan, str_field(&refunded, "purchase_id")).expect(200);
    server.settled_refund(&fan, str_field(&refunded, "purchase_id"));

    let (code, output) = reconcile(&stripe, &server, since);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("2 Stripe payments, 2 purchases, 1 refund instructions")
            && output.contains(": 0 mismatches"),
        "{output}"
    );

    // Someone refunds the kept purchase in Stripe's dashboard: the coins stay, the money left.
    let manual = stripe.post("/v1/refunds", &[("payment_intent", intent_id(&kept))]);
    assert_eq!(manual.status, 200, "{manual:?}");
    let (code, output) = reconcile(&stripe, &server, since);
    assert_eq!(code, 1, "{output}");
    let expected = format!(
        "refund without instruction: {} of {}",
        manual.body["id"].as_str().unwrap(),
        intent_id(&kept)
    );
    assert!(output.contains(&expected), "{output}");
    assert!(output.contains(": 1 mismatches"), "{output}");
}

/// `POST /_dev/payments/{id}` on a server pointed at a Stripe API: the PaymentIntent is
/// confirmed there with a test card, and that API's own webhook delivers the event.
fn dev_pay(server: &LocalServer, purchase: &Value, outcome: &str) -> Value {
    let id = str_field(purchase, "purchase_id");
    server
        .api()
        .post(&format!("/_dev/payments/{id}"))
        .json(&serde_json::json!({ "outcome": outcome }))
        .send()
        .expect(202)
}

/// With `--stripe-api-base`, the dev payment route pays at that API with a test card, so its
/// own webhook credits the purchase and the refund that follows finds the charge there (it used
/// to sign an event about a charge localstripe never saw, and the refund waited for ever).
#[test]
fn the_dev_payment_route_pays_at_stripe_so_its_refunds_work() {
    let (stripe, server) = stripe_and_server("stripe-dev-pay");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    let paid = dev_pay(&server, &bought, "succeeded");
    assert_eq!(paid["status"], "succeeded", "{paid}");
    assert_eq!(
        stripe.payment_intent(intent_id(&bought))["status"],
        "succeeded"
    );
    eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );
    assert_eq!(flows::balance(&server, &fan), 350);
    flows::refund(&server, &fan, str_field(&bought, "purchase_id")).expect(200);
    let settled = server.settled_refund(&fan, str_field(&bought, "purchase_id"));
    assert_eq!(settled["refund"]["status"], "succeeded", "{settled}");
    assert_eq!(stripe.refunds_of(intent_id(&bought)).len(), 1);
}

/// A declined card does not end the purchase: the buyer retries the same PaymentIntent with
/// another card and is credited (it used to be refunded as `purchase_failed`). The decline is
/// localstripe's own (the dev route confirms with a card that is declined, and localstripe's
/// webhook reports it); localstripe cannot confirm an intent again after a decline, so the
/// success of the retry is Stripe's event signed by the test, about localstripe's intent.
#[test]
fn a_declined_card_then_a_success_of_the_same_intent_credits_the_purchase() {
    let (stripe, server) = stripe_and_server("stripe-retry");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    let declined = dev_pay(&server, &bought, "failed");
    assert_eq!(declined["status"], "requires_payment_method", "{declined}");
    eventually(
        "the failure",
        || view(&server, &fan, &bought),
        |view| view["status"] == "failed",
    );
    let mut intent = stripe.payment_intent(intent_id(&bought));
    intent["status"] = "succeeded".into();
    let retried = payments::event("payment_intent.succeeded", intent);
    let ack = server.deliver_webhook(&retried).expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    assert_eq!(view(&server, &fan, &bought)["status"], "credited");
    assert_eq!(flows::balance(&server, &fan), 350);
    assert!(stripe.refunds_of(intent_id(&bought)).is_empty());
}

/// A refund made in Stripe's Dashboard (here: straight at localstripe, which sends no
/// `charge.refunded`, so the test signs Stripe's event) takes the coins back, into debt where
/// spent; our own refund reported the same way changes nothing.
#[test]
fn a_dashboard_refund_takes_the_coins_back_and_our_own_refund_is_not_reversed_twice() {
    let (stripe, server) = stripe_and_server("stripe-dashboard-refund");
    let fan = french_fan();
    let kept = purchase(&server, &fan, "coins_350");
    let refunded = purchase(&server, &fan, "coins_70");
    for bought in [&kept, &refunded] {
        stripe.pay(intent_id(bought), localstripe::CARD_OK);
        eventually(
            "the credit",
            || view(&server, &fan, bought),
            |view| view["status"] == "credited",
        );
    }
    let charge = |bought: &Value| {
        let intent = stripe.payment_intent(intent_id(bought));
        let amount = intent["amount"].as_i64().unwrap();
        payments::event(
            "charge.refunded",
            serde_json::json!({"id": intent["latest_charge"]["id"], "object": "charge",
                "amount": amount, "amount_refunded": amount, "refunded": true,
                "payment_intent": intent["id"]}),
        )
    };
    // Our refund of one purchase, settled at localstripe, then reported: nothing more.
    flows::refund(&server, &fan, str_field(&refunded, "purchase_id")).expect(200);
    server.settled_refund(&fan, str_field(&refunded, "purchase_id"));
    let ack = server.deliver_webhook(&charge(&refunded)).expect(200);
    assert_eq!(ack["outcome"], "ignored", "{ack}");
    assert_eq!(flows::balance(&server, &fan), 350);

    let manual = stripe.post("/v1/refunds", &[("payment_intent", intent_id(&kept))]);
    assert_eq!(manual.status, 200, "{manual:?}");
    let ack = server.deliver_webhook(&charge(&kept)).expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    assert_eq!(view(&server, &fan, &kept)["status"], "reversed");
    assert_eq!(flows::balance(&server, &fan), 0);
    // Delivered again: once.
    let ack = server.deliver_webhook(&charge(&kept)).expect(200);
    assert_eq!(ack["outcome"], "ignored", "{ack}");
}

/// Radar's early fraud warning (signed by the test: localstripe has none) while the coins are
/// unspent: the purchase is refunded at Stripe.
#[test]
fn an_early_fraud_warning_refunds_unspent_coins_at_stripe() {
    let (stripe, server) = stripe_and_server("stripe-efw");
    let fan = french_fan();
    let bought = purchase(&server, &fan, "coins_350");
    stripe.pay(intent_id(&bought), localstripe::CARD_OK);
    eventually(
        "the credit",
        || view(&server, &fan, &bought),
        |view| view["status"] == "credited",
    );
    let intent = stripe.payment_intent(intent_id(&bought));
    let warning = payments::event(
        "radar.early_fraud_warning.created",
        serde_json::json!({"id": "issfr_e2e_1", "object": "radar.early_fraud_warning",
            "actionable": true, "charge": intent["latest_charge"]["id"],
            "fraud_type": "made_with_stolen_card", "payment_intent": intent["id"]}),
    );
    let ack = server.deliver_webhook(&warning).expect(200);
    assert_eq!(ack["outcome"], "refunded", "{ack}");
    let settled = server.settled_refund(&fan, str_field(&bought, "purchase_id"));
    assert_eq!(settled["refund"]["reason"], "fraud_warning", "{settled}");
    assert_eq!(settled["refund"]["status"], "succeeded", "{settled}");
    assert_eq!(stripe.refunds_of(intent_id(&bought)).len(), 1);
    assert_eq!(flows::balance(&server, &fan), 0);
}
