//! The local server end to end in-process: API Gateway's part (routes, the dev authorizer) and
//! the functions' handlers over the in-memory store, on the test clock.

use std::sync::Arc;

use bytes::Bytes;
use coins_http::WebhookSecret;
use coins_ledger::{Ledger, MemoryStore};
use coins_payments::Provider;
use coins_payments::test_mode::TestMode;
use coins_runtime::TestClock;
use jiff::Timestamp;
use lambda_http::http;
use local_server::App;
use local_server::auth::{DevAuth, DevClaims};
use local_server::streams::{self, Feed};
use serde_json::{Value, json};
use stripe_webhook::Webhook;

const START: &str = "2026-03-01T03:00:00Z";

/// The stores as the local server configures them by default: Apple's root, Google's
/// endpoints, the dev push account, no credentials.
async fn default_stores() -> stores::Stores {
    let no_aws = aws_config::SdkConfig::builder().build();
    stores::load_with(&no_aws, &local_server::default_store_setting)
        .await
        .unwrap()
}

/// The server over a fresh in-memory store, its stream consumers running, and the test-mode
/// provider's books.
async fn app() -> (Arc<App<MemoryStore>>, TestMode) {
    let clock = TestClock::new(START.parse().unwrap()).unwrap();
    let store = MemoryStore::with_change_feed();
    let feed = Feed::memory(&store);
    let provider = TestMode::default();
    let app = Arc::new(App::new(
        Ledger::new(store),
        clock,
        DevAuth::new("test-jwt-secret"),
        Webhook {
            provider: Provider::TestMode(provider.clone()),
            secret: WebhookSecret::new("test-webhook-secret").unwrap(),
        },
        default_stores().await,
    ));
    tokio::spawn(streams::run(app.clone(), feed));
    (app, provider)
}

fn token(app: &Arc<App<MemoryStore>>, sub: &str, admin: bool) -> String {
    let claims = DevClaims::new(
        sub,
        "1990-01-01",
        "JP",
        None,
        "Asia/Tokyo",
        admin,
        Timestamp::now(),
    );
    app.auth.mint(&claims)
}

struct Call<'a> {
    method: &'a str,
    path: &'a str,
    token: Option<String>,
    headers: Vec<(&'a str, String)>,
    body: String,
}

fn call<'a>(method: &'a str, path: &'a str) -> Call<'a> {
    Call {
        method,
        path,
        token: None,
        headers: Vec::new(),
        body: String::new(),
    }
}

impl<'a> Call<'a> {
    fn auth(mut self, token: &str) -> Self {
        self.token = Some(token.to_owned());
        self
    }

    fn header(mut self, name: &'a str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    fn json(mut self, body: &Value) -> Self {
        self.body = body.to_string();
        self
    }

    async fn send(self, app: &Arc<App<MemoryStore>>) -> (u16, Value) {
        let mut builder = http::Request::builder().method(self.method).uri(self.path);
        if let Some(token) = self.token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if !self.body.is_empty() {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let response = app
            .handle(builder.body(Bytes::from(self.body)).unwrap(), None)
            .await;
        let body = if response.body().is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(response.body().as_ref()).unwrap()
        };
        (response.status().as_u16(), body)
    }
}

#[tokio::test]
async fn without_a_valid_bearer_token_the_authorizer_answers_401() {
    let (app, _) = app().await;
    let (status, body) = call("GET", "/v1/wallet").send(&app).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let forged = DevAuth::new("another-secret").mint(&DevClaims::example(Timestamp::now()));
    let (status, _) = call("GET", "/v1/wallet").auth(&forged).send(&app).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let (app, _) = app().await;
    assert_eq!(
        call("GET", "/v1/nothing").send(&app).await.1["code"],
        "not_found"
    );
    assert_eq!(call("DELETE", "/v1/wallet").send(&app).await.0, 405);
}

#[tokio::test]
async fn the_test_clock_reads_sets_and_advances_but_never_goes_back() {
    let (app, _) = app().await;
    assert_eq!(
        call("GET", "/_dev/clock").send(&app).await,
        (200, json!({"now": START}))
    );
    let (status, body) = call("POST", "/_dev/clock")
        .json(&json!({"advance_seconds": 3600}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["now"].as_str()),
        (200, Some("2026-03-01T04:00:00Z"))
    );
    let (status, body) = call("POST", "/_dev/clock")
        .json(&json!({"now": "2026-03-02T00:00:00+09:00"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["now"].as_str()),
        (200, Some("2026-03-01T15:00:00Z"))
    );
    let (status, body) = call("POST", "/_dev/clock")
        .json(&json!({"now": "2026-01-01T00:00:00Z"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_request"))
    );
    for bad in [
        json!({}),
        json!({"advance_seconds": -5}),
        json!({"now": "tomorrow"}),
        json!({"now": START, "advance_seconds": 1}),
    ] {
        assert_eq!(
            call("POST", "/_dev/clock").json(&bad).send(&app).await.0,
            400,
            "{bad}"
        );
    }
}

/// Buys 700 coins for `user` through the API: quote, purchase, a test-mode payment.
async fn buy(app: &Arc<App<MemoryStore>>, token: &str, key: &str) -> (String, u64) {
    let (status, quote) = call("POST", "/v1/quotes")
        .auth(token)
        .json(&json!({"channel": "web", "package_id": "coins_700"}))
        .send(app)
        .await;
    assert_eq!(status, 201, "{quote}");
    let (status, purchase) = call("POST", "/v1/purchases")
        .auth(token)
        .header("idempotency-key", key)
        .json(&json!({"quote_id": quote["quote_id"]}))
        .send(app)
        .await;
    assert_eq!(status, 201, "{purchase}");
    assert!(
        purchase["payment"]["payment_intent_id"]
            .as_str()
            .unwrap()
            .starts_with("pi_test_")
    );
    let purchase_id = purchase["purchase_id"].as_str().unwrap().to_owned();
    let (status, ack) = call("POST", &format!("/_dev/payments/{purchase_id}"))
        .json(&json!({"outcome": "succeeded"}))
        .send(app)
        .await;
    assert_eq!(
        (status, ack["outcome"].as_str()),
        (200, Some("credited")),
        "{ack}"
    );
    (purchase_id, purchase["total_coins"].as_u64().unwrap())
}

/// Reads the purchase until its refund instruction is settled (the dispatcher runs on the
/// stream, a moment after the refund).
/// `GET path` as the token's user until `done` holds: the stream consumers run behind the API
/// (a refund is sent, a gift counted, a moment later).
async fn eventually(
    app: &Arc<App<MemoryStore>>,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..200 {
        let (status, body) = call("GET", path).auth(token).send(app).await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{path} never got there");
}

async fn settled_refund(app: &Arc<App<MemoryStore>>, token: &str, purchase_id: &str) -> Value {
    let path = format!("/v1/purchases/{purchase_id}");
    eventually(app, token, &path, |purchase| {
        purchase["refund"]["status"] != "pending"
    })
    .await
}

#[tokio::test]
async fn buying_gifting_and_refunding_through_the_api_conserves_coins() {
    let (app, provider) = app().await;
    let alice = token(&app, "alice", false);
    let carol = token(&app, "carol", false);
    // Two lots bought at the same instant: spent in the order they were credited.
    let (first, coins) = buy(&app, &alice, "order-1").await;
    let (second, _) = buy(&app, &alice, "order-2").await;
    let (status, _) = call("POST", "/v1/creators/me")
        .auth(&carol)
        .send(&app)
        .await;
    assert_eq!(status, 201);

    let gift = json!({"gift_id": "rose", "quantity": 10, "recipient_id": "carol", "target": {"kind": "live", "id": "live-1"}});
    let (status, receipt) = call("POST", "/v1/gifts")
        .auth(&alice)
        .header("idempotency-key", "gift-1")
        .json(&gift)
        .send(&app)
        .await;
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["balance"].as_u64(), Some(2 * coins - 10));

    // The gift spent the oldest lot: the first purchase is no longer refundable, the second is.
    let first_refund = format!("/v1/purchases/{first}/refund");
    let (status, body) = call("POST", &first_refund).auth(&alice).send(&app).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("coins_already_spent"))
    );
    let second_refund = format!("/v1/purchases/{second}/refund");
    let (status, body) = call("POST", &second_refund).auth(&alice).send(&app).await;
    assert_eq!(
        (status, body["coins_reversed"].as_u64()),
        (200, Some(coins)),
        "{body}"
    );
    // The stream consumer sends the refund to the provider, once.
    let refunded = settled_refund(&app, &alice, &second).await;
    assert_eq!(refunded["refund"]["status"], "succeeded", "{refunded}");
    let sent = provider.refunds();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        Some(sent[0].id.as_str()),
        refunded["refund"]["provider_refund_id"].as_str()
    );

    let (_, wallet) = call("GET", "/v1/wallet").auth(&alice).send(&app).await;
    assert_eq!(wallet["balance"].as_u64(), Some(coins - 10));
    // The earnings consumer counts the gift, and writes its history entry.
    eventually(&app, &carol, "/v1/creators/me/earnings", |earnings| {
        earnings["diamonds_earned"] == 10
    })
    .await;
    let history = eventually(&app, &alice, "/v1/wallet/transactions", |history| {
        history["items"].as_array().map(Vec::len) == Some(4)
    })
    .await;
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["refund", "gift", "purchase", "purchase"]);
}

#[tokio::test]
async fn moving_the_clock_past_the_window_closes_lots_and_refunds_then_need_an_admin() {
    let (app, _) = app().await;
    let alice = token(&app, "alice", false);
    let (purchase, _) = buy(&app, &alice, "order-1").await;
    // Bought 2026-03-01 in Tokyo: refundable until the start of 16 March, Tokyo time.
    let (status, body) = call("POST", "/_dev/clock")
        .json(&json!({"now": "2026-03-15T15:00:00Z"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["lots_closed"].as_u64()),
        (200, Some(1)),
        "{body}"
    );
    let (_, wallet) = call("GET", "/v1/wallet").auth(&alice).send(&app).await;
    assert_eq!(wallet["lots"], json!([]));
    let refund = format!("/v1/purchases/{purchase}/refund");
    let (status, body) = call("POST", &refund).auth(&alice).send(&app).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("refund_window_closed")),
        "{body}"
    );

    let admin_path = format!("/v1/admin/purchases/{purchase}/refund");
    let (status, _) = call("POST", &admin_path)
        .auth(&alice)
        .json(&json!({"reason": "legal"}))
        .send(&app)
        .await;
    assert_eq!(status, 403);
    let support = token(&app, "support-1", true);
    let (status, body) = call("POST", &admin_path)
        .auth(&support)
        .json(&json!({"reason": "legal"}))
        .send(&app)
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("refunded")),
        "{body}"
    );
}

/// The signature's tolerance is a transport check on the wall clock: a webhook Stripe (or
/// localstripe) signed now is taken whatever the test clock says, and one signed at the test
/// clock's time, far from now, is refused.
#[tokio::test]
async fn a_webhook_is_timed_by_the_wall_clock_not_the_test_clock() {
    let (app, _) = app().await;
    let body = json!({"id": "evt_x", "object": "event", "type": "customer.created", "created": 1, "data": {"object": {"id": "cus_x"}}});
    let sign = |at| app.payments.secret.sign(at, body.to_string().as_bytes());
    let (status, ack) = call("POST", "/v1/webhooks/stripe")
        .header("stripe-signature", &sign(Timestamp::now()))
        .json(&body)
        .send(&app)
        .await;
    assert_eq!(
        (status, ack["ignored"].as_bool()),
        (200, Some(true)),
        "{ack}"
    );
    let (status, problem) = call("POST", "/v1/webhooks/stripe")
        .header("stripe-signature", &sign(START.parse().unwrap()))
        .json(&body)
        .send(&app)
        .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (400, Some("invalid_signature"))
    );
}

#[tokio::test]
async fn the_test_clock_stays_within_2000_to_2200_and_payments_still_work_at_its_end() {
    let (app, _) = app().await;
    for far in ["9999-01-01T00:00:00Z", "2200-01-01T00:00:00Z"] {
        let (status, body) = call("POST", "/_dev/clock")
            .json(&json!({"now": far}))
            .send(&app)
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("invalid_request"))
        );
    }
    let (status, _) = call("POST", "/_dev/clock")
        .json(&json!({"advance_seconds": u64::MAX}))
        .send(&app)
        .await;
    assert_eq!(status, 400);
    let (status, _) = call("POST", "/_dev/clock")
        .json(&json!({"now": "2199-12-31T00:00:00Z"}))
        .send(&app)
        .await;
    assert_eq!(status, 200);
    // Every date computed from the clock's last day (expiry, windows, the signature's age) holds.
    let alice = token(&app, "alice", false);
    let (purchase, coins) = buy(&app, &alice, "late-order").await;
    let (_, wallet) = call("GET", "/v1/wallet").auth(&alice).send(&app).await;
    assert_eq!(wallet["balance"].as_u64(), Some(coins));
    let (status, body) = call("POST", &format!("/v1/purchases/{purchase}/refund"))
        .auth(&alice)
        .send(&app)
        .await;
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_server_runs_every_function_of_the_workspace() {
    let mut served: Vec<String> = local_server::Function::ALL
        .iter()
        .map(|function| function.name().to_owned())
        .collect();
    served.sort();
    assert_eq!(served, coins_testkit::function_names());
}
