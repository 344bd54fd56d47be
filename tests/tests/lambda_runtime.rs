//! Through the real Lambda runtime interface: each function binary runs as Lambda runs it (its
//! `lambda_runtime` polling a Runtime API, here `cargo lambda watch --only-lambda-apis`), and
//! `cargo lambda invoke --data-file` hands it a real API Gateway HTTP API event.
//!
//! The event-driven functions get real stream records, read from DynamoDB Local's Streams API.
//!
//! Needs cargo-lambda and localstripe (scripts/test installs both), the function binaries
//! (`cargo build --workspace --bins`) and DynamoDB Local (`DYNAMODB_ENDPOINT`); any of them
//! missing fails the test with a message saying so.

use e2e_tests::User;
use e2e_tests::dynamodb;
use e2e_tests::events::{Caller, Event};
use e2e_tests::flows::{new_key, str_field, u64_field};
use e2e_tests::lambda::{LambdaFunction, http_response};
use e2e_tests::localstripe::{self, Localstripe};
use e2e_tests::payments::{self, WEBHOOK_SECRET, signature_header};
use local_server::streams::{DynamoFeed, Feed};
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
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.into()),
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
fn money_comes_in_and_goes_back_out_through_the_lambda_runtime_interface() {
    let stripe = Localstripe::start();
    let mut env = table_env("lambda-flow");
    env.extend([
        ("STRIPE_API_BASE", stripe.base_url().to_owned()),
        ("STRIPE_SECRET_KEY", localstripe::SECRET_KEY.to_owned()),
    ]);
    let mut stream = Stream::open(&env);
    let mut functions = start_all(
        &[
            "quote",
            "purchase",
            "stripe-webhook",
            "creators",
            "gift",
            "wallet",
            "refund",
            "refund-dispatch",
            "refund-expiry",
            "earnings",
        ],
        &env,
    );
    let [
        quote,
        purchase,
        webhook,
        creators,
        gift,
        wallet,
        refund,
        dispatch,
        expiry,
        earnings,
    ] = &mut functions[..]
    else {
        unreachable!("ten functions were started");
    };
    // localstripe's cards are French.
    let fan = User::new("fan").in_country("FR", "Europe/Paris");
    let creator = User::new("creator");
    let mut buy = |package: &str| {
        let (status, quoted) = call(
            quote,
            Event::load("post-quote")
                .caller(&fan)
                .raw_body(&json!({"channel": "web", "package_id": package}).to_string()),
        );
        assert_eq!(status, 201, "{quoted}");
        let (status, bought) = call(
            purchase,
            Event::load("post-purchase")
                .caller(&fan)
                .header("idempotency-key", Some(&new_key("purchase")))
                .raw_body(&json!({ "quote_id": quoted["quote_id"] }).to_string()),
        );
        assert_eq!(status, 201, "{bought}");
        assert_eq!(bought["amount"]["gross"], quoted["price"]["gross"]);
        // The PaymentIntent is Stripe's, for the quoted amount in cents.
        let intent_id = str_field(&bought["payment"], "payment_intent_id").to_owned();
        let intent = stripe.payment_intent(&intent_id);
        assert_eq!(
            intent["amount"].as_i64(),
            Some(payments::minor_units(str_field(&quoted["price"], "gross")))
        );
        assert_eq!(intent["metadata"]["purchase_id"], bought["purchase_id"]);
        let paid = stripe.pay(&intent_id, localstripe::CARD_OK);
        assert_eq!(paid.status, 200, "{paid:?}");
        (
            bought,
            stripe.event_about("payment_intent.succeeded", &intent_id),
        )
    };

    // A purchase paid, its webhook delivered (signed now: a Lambda function reads the system
    // clock), replayed and forged.
    let (first, succeeded) = buy("coins_700");
    let signature = signature_header(
        WEBHOOK_SECRET,
        jiff::Timestamp::now().as_second(),
        succeeded.as_bytes(),
    );
    let delivery = Event::load("post-stripe-webhook")
        .raw_body(&succeeded)
        .header("stripe-signature", Some(&signature));
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
    let forged = Event::load("post-stripe-webhook").raw_body(&succeeded);
    let (status, problem) = call(webhook, forged);
    assert_eq!(
        (status, &problem["code"]),
        (400, &json!("invalid_signature")),
        "{problem}"
    );

    // Refunded: the instruction reaches the dispatcher as a real stream record, twice (a
    // redelivery), and Stripe makes one refund.
    let (status, refunded) = call(
        refund,
        Event::load("post-refund")
            .caller(&fan)
            .path_param("purchase_id", str_field(&first, "purchase_id")),
    );
    assert_eq!(status, 200, "{refunded}");
    let instruction = stream.next_matching(|record| {
        record["eventName"] == "INSERT"
            && record["dynamodb"]["NewImage"]["item_type"]["S"] == "refund"
    });
    for _ in 0..2 {
        let answer = dispatch.invoke(&json!({"Records": [instruction]}));
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    let intent_id = str_field(&first["payment"], "payment_intent_id");
    let refunds = stripe.refunds_of(intent_id);
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!(
        refunds[0]["amount"],
        stripe.payment_intent(intent_id)["amount"]
    );

    // A second purchase, gifted from, and its refund window's marker expiring: refund-expiry
    // reads the real REMOVE record (with the TTL principal, as DynamoDB's TTL deletes carry).
    let (second, succeeded) = buy("coins_350");
    let signature = signature_header(
        WEBHOOK_SECRET,
        jiff::Timestamp::now().as_second(),
        succeeded.as_bytes(),
    );
    let (status, ack) = call(
        webhook,
        Event::load("post-stripe-webhook")
            .raw_body(&succeeded)
            .header("stripe-signature", Some(&signature)),
    );
    assert_eq!(
        (status, &ack["outcome"]),
        (200, &json!("credited")),
        "{ack}"
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
    let total = u64_field(&second, "total_coins");
    assert_eq!(u64_field(&sent, "balance"), total - 5);
    let (status, view) = call(wallet, Event::load("get-wallet").caller(&fan));
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["lots"][0]["purchase_id"], second["purchase_id"]);
    assert_eq!(view["lots"][0]["remaining"], total - 5);
    // The gift entry reaches the earnings function as a real stream record, twice (a
    // redelivery): the creator earns its diamonds once, and the fan's history shows the gift.
    let entry =
        stream.next_matching(|record| record["dynamodb"]["NewImage"]["item_type"]["S"] == "gift");
    for _ in 0..2 {
        let answer = earnings.invoke(&json!({"Records": [entry]}));
        assert_eq!(answer, json!({"batchItemFailures": []}));
    }
    let (status, earned) = call(creators, Event::load("get-earnings").caller(&creator));
    assert_eq!(
        (status, &earned["diamonds_earned"]),
        (200, &json!(5)),
        "{earned}"
    );
    let (status, history) = call(wallet, Event::load("get-transactions").caller(&fan));
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["items"][0]["kind"], "gift", "{history}");

    stream.delete_marker(&fan.sub, str_field(&second, "purchase_id"));
    let mut removal = stream.next_matching(|record| record["eventName"] == "REMOVE");
    removal["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    let answer = expiry.invoke(&json!({"Records": [removal]}));
    assert_eq!(answer, json!({"batchItemFailures": []}));
    // Not due yet (the window runs 14 more days): the lot stays open.
    let (_, view) = call(wallet, Event::load("get-wallet").caller(&fan));
    assert_eq!(
        view["lots"][0]["purchase_id"], second["purchase_id"],
        "{view}"
    );
    assert!(expiry.log().contains("lot not due yet"), "{}", expiry.log());

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

/// The table's stream, read with DynamoDB Local's Streams API, as Lambda's records.
struct Stream {
    runtime: tokio::runtime::Runtime,
    feed: Feed,
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl Stream {
    /// The stream of the table in `env`, from now on.
    fn open(env: &[(&'static str, String)]) -> Stream {
        let value = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
                .expect("set by table_env")
        };
        let table = value("TABLE_NAME");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime");
        let (feed, client) = runtime.block_on(async {
            let aws = coins_ledger::dynamo::local_config(&value("AWS_ENDPOINT_URL_DYNAMODB")).await;
            let feed = DynamoFeed::open(&aws, &table)
                .await
                .unwrap_or_else(|error| panic!("the stream of {table}: {error}"));
            (Feed::Dynamo(feed), aws_sdk_dynamodb::Client::new(&aws))
        });
        Stream {
            runtime,
            feed,
            client,
            table,
        }
    }

    /// The next record `wanted` picks, skipping the others.
    #[track_caller]
    fn next_matching(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..300 {
            let records = self
                .runtime
                .block_on(self.feed.next())
                .unwrap_or_else(|error| panic!("reading the stream: {error}"));
            if let Some(record) = records.into_iter().find(|record| wanted(record)) {
                return record;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("no such record on the stream within 15 s");
    }

    /// Deletes the refund-window marker of `purchase`, as DynamoDB's TTL would.
    fn delete_marker(&self, user: &str, purchase: &str) {
        let key = |value: String| aws_sdk_dynamodb::types::AttributeValue::S(value);
        self.runtime
            .block_on(
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", key(format!("USER#{user}")))
                    .key("sk", key(format!("LOTEXP#{purchase}")))
                    .send(),
            )
            .expect("deleting the marker");
    }
}
