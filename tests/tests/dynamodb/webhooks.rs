//! The payment webhook: only a correct, fresh `Payment-Signature` over the exact body is
//! believed; a replayed event is acknowledged and credits nothing.

use e2e_tests::flows::{self, balance, str_field};
use e2e_tests::payments::{WEBHOOK_SECRET, event, new_event_id, signature_header};
use e2e_tests::{LocalServer, User};

/// A pending purchase (as `POST /v1/purchases` answered) and its `payment.succeeded` body.
fn pending(server: &LocalServer, fan: &User) -> (serde_json::Value, String) {
    let quote = flows::quote_package(server, fan, "coins_350");
    let purchase = flows::purchase(server, fan, str_field(&quote, "quote_id"));
    let body = flows::succeeded_event(&purchase, "JP");
    (purchase, body)
}

fn post(server: &LocalServer, signature: Option<&str>, body: &str) -> e2e_tests::Reply {
    let mut call = server.api().post("/v1/webhooks/payments");
    if let Some(signature) = signature {
        call = call.header("payment-signature", signature);
    }
    call.raw("application/json", body.as_bytes()).send()
}

#[test]
fn a_webhook_without_a_good_signature_is_refused_and_credits_nothing() {
    let server = LocalServer::on_dynamodb("webhook-signature");
    let fan = User::new("fan");
    let (_, body) = pending(&server, &fan);
    let now = server.now().as_second();
    let tampered = body.replace("\"JP\"", "\"US\"");
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, &body),
        (
            "another secret",
            Some(signature_header("not-the-secret", now, body.as_bytes())),
            &body,
        ),
        (
            "a tampered body",
            Some(signature_header(WEBHOOK_SECRET, now, body.as_bytes())),
            &tampered,
        ),
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
            "signed at the machine's time, not the clock's",
            Some(signature_header(
                WEBHOOK_SECRET,
                jiff::Timestamp::now().as_second() + 86_400 * 400,
                body.as_bytes(),
            )),
            &body,
        ),
        ("malformed", Some("v1=abc".to_owned()), &body),
        ("not hex", Some(format!("t={now},v1=zz")), &body),
        (
            "a v0 scheme only",
            Some(signature_header(WEBHOOK_SECRET, now, body.as_bytes()).replace("v1=", "v0=")),
            &body,
        ),
    ];
    for (why, signature, body) in cases {
        let reply = post(&server, signature.as_deref(), body);
        assert_eq!(reply.status, 400, "{why}: {}", reply.text());
        reply.expect_problem(400, "invalid_signature");
    }
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn a_signature_at_the_edge_of_the_tolerance_is_accepted() {
    let server = LocalServer::on_dynamodb("webhook-tolerance");
    let fan = User::new("fan");
    let (_, body) = pending(&server, &fan);
    let now = server.now().as_second();
    let ack = post(
        &server,
        Some(&signature_header(
            WEBHOOK_SECRET,
            now - 300,
            body.as_bytes(),
        )),
        &body,
    )
    .expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    assert_eq!(balance(&server, &fan), 350);
}

#[test]
fn a_replayed_or_duplicated_payment_credits_once() {
    let server = LocalServer::on_dynamodb("webhook-replay");
    let fan = User::new("fan");
    let (purchase, body) = pending(&server, &fan);
    assert_eq!(
        server.deliver_webhook(&body).expect(200)["outcome"],
        "credited"
    );
    // The same event again, later (re-signed, as a provider retry would be).
    server.advance_clock(120);
    let replay = server.deliver_webhook(&body).expect(200);
    assert_eq!(replay["outcome"], "replayed", "{replay}");
    // Another event id for the same purchase (a provider bug): still one credit.
    let duplicate = event(
        &new_event_id(),
        "payment.succeeded",
        str_field(&purchase, "purchase_id"),
        str_field(&purchase["amount"], "gross"),
        "JPY",
        "JP",
    );
    let ack = server.deliver_webhook(&duplicate).expect(200);
    assert_eq!(ack["outcome"], "already_settled", "{ack}");
    assert_eq!(balance(&server, &fan), 350);
    let history = flows::all_transactions(&server, &fan, 100);
    assert_eq!(history.len(), 1, "{history:?}");
}

#[test]
fn a_failed_payment_credits_nothing() {
    let server = LocalServer::on_dynamodb("webhook-failed");
    let fan = User::new("fan");
    let (_, body) = pending(&server, &fan);
    let failed = body.replace("payment.succeeded", "payment.failed");
    let ack = server.deliver_webhook(&failed).expect(200);
    assert_eq!(ack["outcome"], "failed", "{ack}");
    assert_eq!(balance(&server, &fan), 0);
}

#[test]
fn a_signed_but_malformed_event_is_an_invalid_request() {
    let server = LocalServer::on_dynamodb("webhook-malformed");
    for body in [
        r#"{"id": "evt_1", "type": "payment.succeeded""#,
        r#"{"id": "evt_1", "type": "payment.refunded", "data": {"purchase_id": "pur_1", "amount": "1", "currency": "JPY", "country": "JP"}}"#,
        r#"{"id": "evt_1", "type": "payment.succeeded"}"#,
    ] {
        server
            .deliver_webhook(body)
            .expect_problem(400, "invalid_request");
    }
}
