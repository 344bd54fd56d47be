//! The steps a client takes, as one call each (quote, buy through the signed webhook, enroll,
//! gift, read the wallet and its whole history), asserting the happy answer of API.md. Tests
//! use these to reach a state, then assert what they are about.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::Reply;
use crate::identity::User;
use crate::payments;
use crate::server::LocalServer;

/// A paid, credited purchase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bought {
    pub purchase_id: String,
    pub payment_intent_id: String,
    pub total_coins: u64,
    pub currency: String,
    pub gross: String,
}

/// `POST /v1/quotes` with `body`, expecting 201; returns the quote.
#[track_caller]
pub fn quote(server: &LocalServer, user: &User, body: Value) -> Value {
    server
        .api()
        .post("/v1/quotes")
        .user(user)
        .json(&body)
        .send()
        .expect(201)
}

/// A web quote for a fixed package.
#[track_caller]
pub fn quote_package(server: &LocalServer, user: &User, package_id: &str) -> Value {
    quote(
        server,
        user,
        json!({ "channel": "web", "package_id": package_id }),
    )
}

/// `POST /v1/purchases` for `quote_id` with a fresh idempotency key, expecting 201 pending
/// with a Stripe PaymentIntent.
#[track_caller]
pub fn purchase(server: &LocalServer, user: &User, quote_id: &str) -> Value {
    let purchase = purchase_with_key(server, user, quote_id, &new_key("purchase")).expect(201);
    assert_eq!(purchase["status"], "pending", "{purchase}");
    assert_eq!(purchase["payment"]["provider"], "stripe", "{purchase}");
    assert!(
        purchase["payment"]["client_secret"].is_string(),
        "{purchase}"
    );
    purchase
}

/// `POST /v1/purchases` with a given idempotency key; the reply as it came.
pub fn purchase_with_key(server: &LocalServer, user: &User, quote_id: &str, key: &str) -> Reply {
    server
        .api()
        .post("/v1/purchases")
        .user(user)
        .idempotency_key(key)
        .json(&json!({ "quote_id": quote_id }))
        .send()
}

/// Stripe's `payment_intent.succeeded` for `purchase` (as `POST /v1/purchases` answered it):
/// its PaymentIntent paid in full by a card from `country`.
pub fn succeeded_event(purchase: &Value, country: &str) -> String {
    payments::event("payment_intent.succeeded", paid_intent(purchase, country))
}

/// Stripe's `payment_intent.payment_failed` for `purchase`.
pub fn failed_event(purchase: &Value) -> String {
    let mut intent = paid_intent(purchase, "JP");
    intent["status"] = "requires_payment_method".into();
    payments::event("payment_intent.payment_failed", intent)
}

/// The PaymentIntent of `purchase` as Stripe reports it paid by a card from `country`.
pub fn paid_intent(purchase: &Value, country: &str) -> Value {
    payments::payment_intent(
        str_field(&purchase["payment"], "payment_intent_id"),
        str_field(purchase, "purchase_id"),
        payments::minor_units(str_field(&purchase["amount"], "gross")),
        str_field(&purchase["amount"], "currency"),
        country,
    )
}

/// Quote, purchase and Stripe's signed `payment_intent.succeeded`: the coins are credited.
#[track_caller]
pub fn buy(server: &LocalServer, user: &User, package_id: &str) -> Bought {
    let quote = quote_package(server, user, package_id);
    let purchase = purchase(server, user, str_field(&quote, "quote_id"));
    let ack = server
        .deliver_webhook(&succeeded_event(&purchase, &user.billing_country))
        .expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    bought(&purchase)
}

/// What a test keeps of a purchase it paid.
pub fn bought(purchase: &Value) -> Bought {
    Bought {
        purchase_id: str_field(purchase, "purchase_id").to_owned(),
        payment_intent_id: str_field(&purchase["payment"], "payment_intent_id").to_owned(),
        total_coins: u64_field(purchase, "total_coins"),
        currency: str_field(&purchase["amount"], "currency").to_owned(),
        gross: str_field(&purchase["amount"], "gross").to_owned(),
    }
}

/// `POST /v1/creators/me`, expecting 201 (newly enrolled).
#[track_caller]
pub fn enroll(server: &LocalServer, user: &User) {
    let body = server
        .api()
        .post("/v1/creators/me")
        .user(user)
        .send()
        .expect(201);
    assert_eq!(body["creator_id"], user.sub.as_str());
}

/// `POST /v1/gifts` of `quantity` × `gift_id` to `recipient` on a live, with a fresh key.
pub fn send_gift(
    server: &LocalServer,
    sender: &User,
    recipient: &User,
    gift_id: &str,
    quantity: u64,
) -> Reply {
    send_gift_with_key(
        server,
        sender,
        &new_key("gift"),
        &gift_body(recipient, gift_id, quantity),
    )
}

/// The body of a gift on a live.
pub fn gift_body(recipient: &User, gift_id: &str, quantity: u64) -> Value {
    json!({
        "gift_id": gift_id,
        "quantity": quantity,
        "recipient_id": recipient.sub,
        "target": { "kind": "live", "id": "live-e2e-1" },
    })
}

/// `POST /v1/gifts` with a given key and body; the reply as it came.
pub fn send_gift_with_key(server: &LocalServer, sender: &User, key: &str, body: &Value) -> Reply {
    server
        .api()
        .post("/v1/gifts")
        .user(sender)
        .idempotency_key(key)
        .json(body)
        .send()
}

/// `GET /v1/wallet`.
#[track_caller]
pub fn wallet(server: &LocalServer, user: &User) -> Value {
    server.api().get("/v1/wallet").user(user).send().expect(200)
}

/// The wallet's balance.
#[track_caller]
pub fn balance(server: &LocalServer, user: &User) -> u64 {
    u64_field(&wallet(server, user), "balance")
}

/// Reads `read` until `done` holds (the stream's consumers run behind the API: a gift's history
/// entry and its creator's earnings follow within a moment, refunds go out, webhooks arrive);
/// the last reading, after at most 30 s.
#[track_caller]
pub fn eventually<T: std::fmt::Debug>(
    what: &str,
    read: impl Fn() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = read();
        if done(&value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen: {value:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The whole history, newest first, in pages of `page_size`, once it is complete: the stream
/// writes a gift's entry a moment after the gift, so it is read until every entry's
/// `balance_after` follows from the ones before and the last one is the wallet's balance.
#[track_caller]
pub fn all_transactions(server: &LocalServer, user: &User, page_size: u32) -> Vec<Value> {
    eventually(
        "a complete history",
        || {
            let history = history_pages(server, user, page_size);
            (balance(server, user), history)
        },
        |(balance, history)| adds_up(history, *balance),
    )
    .1
}

/// Whether each entry's `balance_after` is the running total of the coins before it (0 in
/// debt) and the last is `balance`.
fn adds_up(history_newest_first: &[Value], balance: u64) -> bool {
    let mut net: i64 = 0;
    for entry in history_newest_first.iter().rev() {
        net += entry["coins"].as_i64().unwrap_or(0);
        if entry["balance_after"].as_i64() != Some(net.max(0)) {
            return false;
        }
    }
    u64::try_from(net.max(0)) == Ok(balance)
}

/// The history as it is now, newest first, following `next_cursor` with pages of `page_size`.
#[track_caller]
pub fn history_pages(server: &LocalServer, user: &User, page_size: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    // A history longer than this is a cursor that never ends.
    for _ in 0..1000 {
        let path = match &cursor {
            None => format!("/v1/wallet/transactions?limit={page_size}"),
            Some(cursor) => format!("/v1/wallet/transactions?limit={page_size}&cursor={cursor}"),
        };
        let page = server.api().get(&path).user(user).send().expect(200);
        let page_items = page["items"].as_array().expect("items is an array");
        assert!(
            page_items.len() <= page_size as usize,
            "a page of {page_size} held {}",
            page_items.len()
        );
        items.extend(page_items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(encode_query_value(next)),
            None => {
                assert!(page["next_cursor"].is_null(), "{page}");
                return items;
            }
        }
    }
    panic!("the transaction history never ended");
}

/// `GET /v1/creators/me/earnings`, as it is now.
#[track_caller]
pub fn earnings(server: &LocalServer, creator: &User) -> Value {
    server
        .api()
        .get("/v1/creators/me/earnings")
        .user(creator)
        .send()
        .expect(200)
}

/// The creator's earnings once the stream has counted `diamonds_earned` (it counts each gift a
/// moment after it was sent).
#[track_caller]
pub fn earnings_reaching(server: &LocalServer, creator: &User, diamonds_earned: u64) -> Value {
    eventually(
        &format!("earnings of {diamonds_earned} diamonds"),
        || earnings(server, creator),
        |earnings| earnings["diamonds_earned"].as_u64() == Some(diamonds_earned),
    )
}

/// `POST /v1/purchases/{id}/refund` by the buyer.
pub fn refund(server: &LocalServer, user: &User, purchase_id: &str) -> Reply {
    server
        .api()
        .post(&format!("/v1/purchases/{purchase_id}/refund"))
        .user(user)
        .send()
}

/// A fresh idempotency key.
pub fn new_key(label: &str) -> String {
    format!("{label}-{:016x}", rand::random::<u64>())
}

/// A string field, or a panic naming it.
#[track_caller]
pub fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("`{name}` is not a string in {value}"))
}

/// A non-negative integer field, or a panic naming it.
#[track_caller]
pub fn u64_field(value: &Value, name: &str) -> u64 {
    value[name]
        .as_u64()
        .unwrap_or_else(|| panic!("`{name}` is not a non-negative integer in {value}"))
}

/// Percent-encodes a query value (cursors are opaque and may hold `=`, `+`, `/`).
pub fn encode_query_value(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode_query_value("ab-_.~09"), "ab-_.~09");
        assert_eq!(encode_query_value("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }

    #[test]
    fn a_succeeded_event_pays_the_purchase_amount_in_minor_units() {
        let purchase = json!({
            "purchase_id": "pur_1",
            "amount": { "currency": "USD", "gross": "7.98" },
            "payment": { "payment_intent_id": "pi_1" },
        });
        let event: Value = serde_json::from_str(&succeeded_event(&purchase, "US")).unwrap();
        assert_eq!(event["type"], "payment_intent.succeeded");
        let intent = &event["data"]["object"];
        assert_eq!(
            (&intent["id"], &intent["amount"], &intent["currency"]),
            (&json!("pi_1"), &json!(798), &json!("usd"))
        );
        assert_eq!(intent["metadata"]["purchase_id"], "pur_1");
        assert_eq!(
            intent["latest_charge"]["payment_method_details"]["card"]["country"],
            "US"
        );
    }
}
