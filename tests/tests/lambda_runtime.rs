//! Through the real Lambda runtime interface: each function binary runs as Lambda runs it (its
//! `lambda_runtime` polling a Runtime API, here `cargo lambda watch --only-lambda-apis`), and
//! `cargo lambda invoke --data-file` hands it a real API Gateway HTTP API event.
//!
//! Needs cargo-lambda (scripts/test installs it), the function binaries (`cargo build
//! --workspace --bins`) and DynamoDB Local (`DYNAMODB_ENDPOINT`); any of them missing fails
//! the test with a message saying so.

use e2e_tests::User;
use e2e_tests::dynamodb;
use e2e_tests::events::{Caller, Event};
use e2e_tests::flows::{new_key, str_field, u64_field};
use e2e_tests::lambda::{LambdaFunction, http_response};
use e2e_tests::payments::{self, WEBHOOK_SECRET, signature_header};
use serde_json::{Value, json};

/// A fresh table on DynamoDB Local, and the environment a function needs to use it.
fn table_env(label: &str) -> Vec<(&'static str, String)> {
    let endpoint = dynamodb::endpoint();
    let table = dynamodb::fresh_table_name(label);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    runtime.block_on(async {
        let client = coins_ledger::dynamo::client_for_endpoint(&endpoint).await;
        coins_ledger::dynamo::create_table(&client, &table)
            .await
            .unwrap_or_else(|error| panic!("creating {table} at {endpoint}: {error}"));
    });
    vec![
        ("TABLE_NAME", table),
        // The AWS SDK's standard per-service endpoint override: the functions' own config
        // (aws_config::load_from_env) honours it, so no test-only code path is involved.
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "local".into()),
        ("AWS_SECRET_ACCESS_KEY", "local".into()),
        ("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
    ]
}

/// Starts the named functions side by side (each with its own emulator).
fn start_all(names: &[&str], env: &[(&'static str, String)]) -> Vec<LambdaFunction> {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| scope.spawn(|| LambdaFunction::start(name, &env)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Invokes `function` with `event` and returns the HTTP status and JSON body it answered.
#[track_caller]
fn call(function: &mut LambdaFunction, event: Event) -> (u16, Value) {
    let payload = function.invoke(&event.0);
    let content_type = payload["headers"]["content-type"].as_str().unwrap_or("");
    assert!(
        content_type.starts_with("application/json")
            || content_type.starts_with("application/problem+json"),
        "content type {content_type:?} in {payload}"
    );
    http_response(&payload)
}

#[test]
fn the_gift_catalog_is_served_through_the_lambda_runtime_interface() {
    let env = table_env("lambda-catalog");
    let mut catalog = start_all(&["catalog"], &env).remove(0);
    let (status, body) = call(
        &mut catalog,
        Event::load("get-gift-catalog").caller(&User::new("fan")),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body["version"].is_string(), "{body}");
    let gifts = body["gifts"].as_array().expect("gifts");
    assert!(
        gifts
            .iter()
            .any(|gift| gift == &json!({"gift_id": "rose", "name": "Rose", "coins": 1}))
    );
    assert!(
        gifts
            .iter()
            .any(|gift| gift["gift_id"] == "universe" && gift["coins"] == 44999)
    );
    // The function logged the request as JSON with API Gateway's request id.
    assert!(
        catalog.log().contains("Ab1cD2eFgHiJkL="),
        "{}",
        catalog.log()
    );
}

#[test]
fn a_fan_buys_and_gifts_through_the_lambda_runtime_interface_on_dynamodb() {
    let env = table_env("lambda-flow");
    let mut functions = start_all(
        &[
            "quote",
            "purchase",
            "payment-webhook",
            "creators",
            "gift",
            "wallet",
        ],
        &env,
    );
    let [quote, purchase, webhook, creators, gift, wallet] = &mut functions[..] else {
        unreachable!("six functions were started");
    };
    let fan = User::new("fan");
    let creator = User::new("creator");

    let (status, quoted) = call(quote, Event::load("post-quote").caller(&fan));
    assert_eq!(status, 201, "{quoted}");
    assert_eq!(quoted["country"], "JP");
    assert_eq!(quoted["coins"], 700);

    let (status, bought) = call(
        purchase,
        Event::load("post-purchase")
            .caller(&fan)
            .header("idempotency-key", Some(&new_key("purchase")))
            .raw_body(&json!({ "quote_id": quoted["quote_id"] }).to_string()),
    );
    assert_eq!(status, 201, "{bought}");
    assert_eq!(bought["status"], "pending");
    assert_eq!(bought["amount"]["gross"], quoted["price"]["gross"]);

    // The provider's webhook, signed now (a Lambda function reads the system clock).
    let event = payments::event(
        &payments::new_event_id(),
        "payment.succeeded",
        str_field(&bought, "purchase_id"),
        str_field(&bought["amount"], "gross"),
        "JPY",
        "JP",
    );
    let signature = signature_header(
        WEBHOOK_SECRET,
        jiff::Timestamp::now().as_second(),
        event.as_bytes(),
    );
    let delivery = Event::load("post-payment-webhook")
        .raw_body(&event)
        .header("payment-signature", Some(&signature));
    let (status, ack) = call(webhook, delivery.clone());
    assert_eq!(
        (status, &ack["outcome"]),
        (200, &json!("credited")),
        "{ack}"
    );
    let (status, replay) = call(webhook, delivery);
    assert_eq!(
        (status, &replay["outcome"]),
        (200, &json!("replayed")),
        "{replay}"
    );
    let forged = Event::load("post-payment-webhook").raw_body(&event);
    let (status, problem) = call(webhook, forged);
    assert_eq!(
        (status, &problem["code"]),
        (400, &json!("invalid_signature")),
        "{problem}"
    );

    let (status, enrolled) = call(creators, Event::load("post-creator").caller(&creator));
    assert_eq!(status, 201, "{enrolled}");

    let (status, sent) = call(
        gift,
        Event::load("post-gift")
            .caller(&fan)
            .header("idempotency-key", Some(&new_key("gift")))
            .raw_body(
                &json!({"gift_id": "rose", "quantity": 5, "recipient_id": creator.sub, "target": {"kind": "live", "id": "live-8812"}})
                    .to_string(),
            ),
    );
    assert_eq!(status, 201, "{sent}");
    assert_eq!(sent["coins_spent"], 5);
    assert_eq!(u64_field(&sent, "balance"), 700 - 5);

    let (status, view) = call(wallet, Event::load("get-wallet").caller(&fan));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["balance"], 695);
    assert_eq!(view["lots"][0]["purchase_id"], bought["purchase_id"]);
    assert_eq!(view["lots"][0]["remaining"], 695);

    // An error crosses the runtime interface as problem+json too.
    let (status, problem) = call(
        gift,
        Event::load("post-gift")
            .caller(&fan)
            .header("idempotency-key", Some(&new_key("gift")))
            .raw_body(&json!({"gift_id": "rose", "quantity": 1, "recipient_id": fan.sub, "target": {"kind": "live", "id": "l"}}).to_string()),
    );
    assert_eq!(
        (status, &problem["code"]),
        (422, &json!("self_gift")),
        "{problem}"
    );
}
