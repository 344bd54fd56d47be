//! Stripe's webhook: only a correct, fresh `Stripe-Signature` over the exact body is believed;
//! an event is applied once whatever the replays and their order; a payment that cannot be
//! credited is returned, in full, to the card, through the refund dispatcher.

use e2e_tests::flows::{self, balance, str_field, u64_field};
use e2e_tests::payments::{self, WEBHOOK_SECRET, signature_header};
use e2e_tests::scenarios::timestamp;
use e2e_tests::{LocalServer, User};
use serde_json::{Value, json};

/// A pending purchase (as `POST /v1/purchases` answered) and its `payment_intent.succeeded`.
fn pending(server: &LocalServer, fan: &User) -> (Value, String) {
    let quote = flows::quote_package(server, fan, "coins_350");
    let purchase = flows::purchase(server, fan, str_field(&quote, "quote_id"));
    let body = flows::succeeded_event(&purchase, "JP");
    (purchase, body)
}

fn post(server: &LocalServer, signature: Option<&str>, body: &str) -> e2e_tests::Reply {
    let mut call = server.api().post("/v1/webhooks/stripe");
    if let Some(signature) = signature {
        call = call.header("stripe-signature", signature);
    }
    call.raw("application/json", body.as_bytes()).send()
}

#[test]
fn a_webhook_without_a_good_signature_is_refused_and_credits_nothing() {
    let server = LocalServer::new("webhook-signature");
    let fan = User::new("fan");
    let (_, body) = pending(&server, &fan);
    let now = jiff::Timestamp::now().as_second();
    let tampered = body.replace("\"JP\"", "\"US\"");
    let good = signature_header(WEBHOOK_SECRET, now, body.as_bytes());
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, &body),
        (
            "another secret",
            Some(signature_header("whsec_other", now, body.as_bytes())),
            &body,
        ),
        ("a tampered body", Some(good.clone()), &tampered),
        (
            "301 s old",
            Some(signature_header(WEBHOOK_SECRET, now - 301, body.as_bytes())),
            &body,
        ),
        (
            "301 s ahead",
            Some(signature_header(WEBHOOK_SECRET, now + 301, body.as_bytes())),
            &body,
        ),
        (
            "400 days ahead",
            Some(signature_header(
                WEBHOOK_SECRET,
                now + 86_400 * 400,
                body.as_bytes(),
            )),
            &body,
        ),
        ("malformed", Some("v1=abc".to_owned()), &body),
        ("not hex", Some(format!("t={now},v1=zz")), &body),
        ("a v0 scheme only", Some(good.replace("v1=", "v0=")), &body),
    ];
    for (why, signature, body) in cases {
        let reply = post(&server, signature.as_deref(), body);
        assert_eq!(reply.status, 400, "{why}: {}", reply.text());
        reply.expect_problem(400, "invalid_signature");
    }
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn a_signature_at_the_edge_of_the_tolerance_or_among_several_is_accepted() {
    let server = LocalServer::new("webhook-tolerance");
    let fan = User::new("fan");
    let (_, body) = pending(&server, &fan);
    // Near the edge: the wall clock moves on while the request travels.
    let now = jiff::Timestamp::now().as_second() - 290;
    let old = signature_header(WEBHOOK_SECRET, now, body.as_bytes());
    // Stripe sends one v1 per active secret while a secret is rolled: one good one suffices.
    let rolled = signature_header("whsec_rolled_out", now, body.as_bytes());
    let header = format!("{rolled},{}", old.split(',').nth(1).unwrap());
    let ack = post(&server, Some(&header), &body).expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    assert_eq!(balance(&server, &fan), 350);
}

/// Once `/_dev/clock` has moved, a webhook Stripe signed at its wall-clock time is still taken:
/// the signature's tolerance is a transport check (it was measured against the test clock, so
/// every localstripe webhook was refused as too old).
#[test]
fn a_webhook_signed_at_the_wall_clock_is_accepted_after_the_test_clock_moved() {
    let server = LocalServer::new("webhook-wall-clock");
    let fan = User::new("fan");
    let (purchase, body) = pending(&server, &fan);
    server.advance_clock(3_600);
    let ack = server.deliver_webhook(&body).expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    assert_eq!(balance(&server, &fan), u64_field(&purchase, "total_coins"));
}

#[test]
fn a_replayed_or_duplicated_payment_credits_once() {
    let server = LocalServer::new("webhook-replay");
    let fan = User::new("fan");
    let (purchase, body) = pending(&server, &fan);
    assert_eq!(
        server.deliver_webhook(&body).expect(200)["outcome"],
        "credited"
    );
    // The same event again, later (re-signed, as a Stripe retry would be).
    server.advance_clock(120);
    let replay = server.deliver_webhook(&body).expect(200);
    assert_eq!(replay["outcome"], "replayed", "{replay}");
    // Another event about the same payment: still one credit, nothing returned.
    let duplicate = flows::succeeded_event(&purchase, "JP");
    let ack = server.deliver_webhook(&duplicate).expect(200);
    assert_eq!(ack["outcome"], "replayed", "{ack}");
    assert_eq!(balance(&server, &fan), 350);
    let history = flows::all_transactions(&server, &fan, 100);
    assert_eq!(history.len(), 1, "{history:?}");
}

#[test]
fn a_second_payment_for_a_paid_purchase_is_returned_to_its_card() {
    let server = LocalServer::new("webhook-second-payment");
    let fan = User::new("fan");
    let (purchase, body) = pending(&server, &fan);
    server.deliver_webhook(&body).expect(200);
    // The buyer paid twice (two tabs): a second PaymentIntent naming the same purchase.
    let mut second = flows::paid_intent(&purchase, "JP");
    second["id"] = json!(payments::new_id("pi_e2e_second_"));
    let ack = server
        .deliver_webhook(&payments::event("payment_intent.succeeded", second.clone()))
        .expect(200);
    assert_eq!(ack["outcome"], "returned", "{ack}");
    assert_eq!(balance(&server, &fan), 350, "credited once");
    let purchase_id = str_field(&purchase, "purchase_id");
    let view = settled_return(&server, &fan, purchase_id);
    assert_eq!(
        view["status"], "credited",
        "the purchase keeps its first payment"
    );
    let returned = &view["returned_payments"][0];
    assert_eq!(returned["reason"], "already_paid", "{view}");
    assert_eq!(returned["payment_intent_id"], second["id"], "{view}");
    assert_eq!(returned["status"], "succeeded", "{view}");
    let refunds = server.provider_refunds();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].payment, second["id"].as_str().unwrap());
    assert_eq!(
        refunds[0].amount_minor,
        payments::minor_units(str_field(&purchase["amount"], "gross"))
    );
}

#[test]
fn a_payment_that_cannot_be_credited_is_returned_and_the_purchase_says_why() {
    let server = LocalServer::new("webhook-returned");
    for (tamper, reason) in [
        ("country", "region_mismatch"),
        ("amount", "amount_mismatch"),
        ("currency", "currency_mismatch"),
    ] {
        let fan = User::new("fan");
        let (purchase, _) = pending(&server, &fan);
        let mut intent = flows::paid_intent(&purchase, "JP");
        match tamper {
            "country" => {
                intent["latest_charge"]["payment_method_details"]["card"]["country"] = json!("US")
            }
            "amount" => intent["amount"] = json!(1),
            _ => intent["currency"] = json!("usd"),
        }
        let ack = server
            .deliver_webhook(&payments::event("payment_intent.succeeded", intent))
            .expect(200);
        assert_eq!(ack["outcome"], "returned", "{reason}: {ack}");
        assert_eq!(balance(&server, &fan), 0, "{reason} credited coins");
        let view = server.settled_refund(&fan, str_field(&purchase, "purchase_id"));
        assert_eq!(view["status"], "refunded", "{view}");
        assert_eq!(view["refund"]["reason"], reason, "{view}");
        assert_eq!(view["refund"]["status"], "succeeded", "{view}");
        // The genuine event later credits nothing either: the purchase is settled.
        let genuine = flows::succeeded_event(&purchase, "JP");
        let ack = server.deliver_webhook(&genuine).expect(200);
        assert_ne!(ack["outcome"], "credited", "{ack}");
        assert_eq!(balance(&server, &fan), 0);
    }
}

#[test]
fn a_payment_for_an_unknown_purchase_is_acknowledged_and_returned() {
    let server = LocalServer::new("webhook-unknown");
    let intent = payments::payment_intent(
        &payments::new_id("pi_e2e_stray_"),
        "pur_never_made",
        1000,
        "JPY",
        "JP",
    );
    let ack = server
        .deliver_webhook(&payments::event("payment_intent.succeeded", intent.clone()))
        .expect(200);
    assert_eq!(ack["outcome"], "returned", "{ack}");
    wait_until(|| !refunds_for(&server, &intent["id"]).is_empty());
    let refunds = refunds_for(&server, &intent["id"]);
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(refunds[0].amount_minor, 1000);
}

/// A declined card does not end the purchase: the buyer retries the same PaymentIntent (Stripe
/// allows it) and its success credits the coins (it used to be returned as `purchase_failed`).
#[test]
fn a_declined_payment_then_a_success_of_the_same_intent_credits_the_purchase() {
    let server = LocalServer::new("webhook-failed");
    let fan = User::new("fan");
    let (purchase, succeeded) = pending(&server, &fan);
    let ack = server
        .deliver_webhook(&flows::failed_event(&purchase))
        .expect(200);
    assert_eq!(ack["outcome"], "failed", "{ack}");
    let purchase_id = str_field(&purchase, "purchase_id");
    let view = server
        .api()
        .get(&format!("/v1/purchases/{purchase_id}"))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(view["status"], "failed", "{view}");
    let ack = server.deliver_webhook(&succeeded).expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    assert_eq!(balance(&server, &fan), u64_field(&purchase, "total_coins"));
}

#[test]
fn a_payment_after_the_24_hour_window_is_returned() {
    let server = LocalServer::new("webhook-expired");
    let fan = User::new("fan");
    let (purchase, body) = pending(&server, &fan);
    assert_eq!(
        server.now() + jiff::SignedDuration::from_hours(24),
        timestamp(&purchase["expires_at"])
    );
    server.advance_clock(24 * 3600 + 1);
    let ack = server.deliver_webhook(&body).expect(200);
    assert_eq!(ack["outcome"], "returned", "{ack}");
    let view = server.settled_refund(&fan, str_field(&purchase, "purchase_id"));
    assert_eq!(view["refund"]["reason"], "purchase_expired", "{view}");
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn other_event_types_are_acknowledged_and_ignored() {
    let server = LocalServer::new("webhook-other");
    let ack = server
        .deliver_webhook(&payments::event(
            "customer.created",
            json!({"id": "cus_1", "object": "customer"}),
        ))
        .expect(200);
    assert_eq!(
        ack,
        json!({"received": true, "event_id": ack["event_id"], "ignored": true})
    );
}

#[test]
fn a_signed_but_unreadable_event_is_an_invalid_request() {
    let server = LocalServer::new("webhook-malformed");
    for body in [
        r#"{"id": "evt_1", "type": "payment_intent.succeeded""#,
        r#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded"}"#,
        r#"{"id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1"}}}"#,
    ] {
        server
            .deliver_webhook(body)
            .expect_problem(400, "invalid_request");
    }
}

/// The purchase once its returned payments have all reached the provider.
fn settled_return(server: &LocalServer, buyer: &User, purchase_id: &str) -> Value {
    let read = || {
        server
            .api()
            .get(&format!("/v1/purchases/{purchase_id}"))
            .user(buyer)
            .send()
            .expect(200)
    };
    wait_until(|| {
        read()["returned_payments"]
            .as_array()
            .is_some_and(|all| all.iter().all(|refund| refund["status"] != "pending"))
    });
    read()
}

fn refunds_for(
    server: &LocalServer,
    payment: &Value,
) -> Vec<coins_payments::test_mode::TestRefund> {
    server
        .provider_refunds()
        .into_iter()
        .filter(|refund| Some(refund.payment.as_str()) == payment.as_str())
        .collect()
}

#[track_caller]
fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..1500 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("not within 30 s");
}
