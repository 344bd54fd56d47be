//! Whole journeys through the API, written once and run against every kind of server (the
//! in-process server on DynamoDB Local and in memory, the `local-server` binary).

use jiff::Timestamp;
use serde_json::Value;

use crate::flows::{
    self, all_transactions, balance, buy, enroll, send_gift, str_field, u64_field, wallet,
};
use crate::identity::User;
use crate::server::LocalServer;

/// The main flow of the product: packages → quote → purchase (a Stripe PaymentIntent) → Stripe's
/// signed webhook (and its replay) → wallet → enroll a creator → gift → earnings → refund of the
/// unspent purchase, sent to the provider once, with coins conserved and the history telling
/// the same story.
#[track_caller]
pub fn main_flow(server: &LocalServer) {
    let fan = User::new("fan");
    let creator = User::new("creator");
    let api = server.api();

    // GIVEN the fan's localized price list (Japan: yen, tax-inclusive, custom amounts on the web)
    let web = api
        .get("/v1/packages?channel=web")
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(web["country"], "JP");
    assert_eq!(web["currency"], "JPY");
    assert_eq!(web["tax_inclusive"], true);
    assert!(web["price_book_version"].is_string(), "{web}");
    assert!(web["custom"]["min_coins"].as_u64() < web["custom"]["max_coins"].as_u64());
    let web_700 = package(&web, "coins_700");
    assert_eq!(web_700["coins"], 700);
    for amount in ["net", "tax", "gross"] {
        let text = str_field(&web_700["price"], amount);
        assert!(
            !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()),
            "yen have no minor digits: {amount} = {text:?}"
        );
    }
    // The same package is never cheaper in an app than on the web; apps sell no custom amounts.
    let ios = api
        .get("/v1/packages?channel=ios")
        .user(&fan)
        .send()
        .expect(200);
    assert!(ios["custom"].is_null(), "{ios}");
    assert!(yen(&package(&ios, "coins_700")["price"]["gross"]) >= yen(&web_700["price"]["gross"]));

    // WHEN the fan quotes and buys 700 coins
    let quote = flows::quote_package(server, &fan, "coins_700");
    assert_eq!(quote["channel"], "web");
    assert_eq!(quote["country"], "JP");
    assert_eq!(quote["currency"], "JPY");
    assert_eq!(
        u64_field(&quote, "total_coins"),
        u64_field(&quote, "coins") + u64_field(&quote, "bonus_coins")
    );
    assert_eq!(
        quote["price"], web_700["price"],
        "the quote is the listed price"
    );
    assert_eq!(quote["price_book_version"], web["price_book_version"]);
    assert!(timestamp(&quote["expires_at"]) > server.now());
    let purchase = flows::purchase(server, &fan, str_field(&quote, "quote_id"));
    assert_eq!(purchase["total_coins"], quote["total_coins"]);
    assert_eq!(purchase["amount"]["currency"], "JPY");
    assert_eq!(purchase["amount"]["gross"], quote["price"]["gross"]);
    // THEN nothing is credited until the provider says it was paid
    assert_eq!(balance(server, &fan), 0);

    // WHEN the provider's signed webhook arrives, and is delivered again
    let event = flows::succeeded_event(&purchase, "JP");
    let ack = server.deliver_webhook(&event).expect(200);
    assert_eq!(ack["outcome"], "credited", "{ack}");
    let replay = server.deliver_webhook(&event).expect(200);
    assert_ne!(
        replay["outcome"], "credited",
        "a replay credits nothing: {replay}"
    );
    // THEN the coins are credited once, as one refundable lot
    let first_coins = u64_field(&purchase, "total_coins");
    let first_id = str_field(&purchase, "purchase_id").to_owned();
    let credited = api
        .get(&format!("/v1/purchases/{first_id}"))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(credited["status"], "credited", "{credited}");
    assert_eq!(credited["channel"], "web");
    assert!(credited["refund"].is_null(), "{credited}");
    assert!(credited["refundable_until"].is_string(), "{credited}");
    let view = wallet(server, &fan);
    assert_eq!(view["user_id"], fan.sub.as_str());
    assert_eq!(u64_field(&view, "balance"), first_coins);
    assert!(view["daily_limit"].is_null(), "{view}");
    let lots = view["lots"].as_array().expect("lots");
    assert_eq!(lots.len(), 1, "{view}");
    assert_eq!(lots[0]["purchase_id"], first_id.as_str());
    assert_eq!(u64_field(&lots[0], "coins"), first_coins);
    assert_eq!(u64_field(&lots[0], "remaining"), first_coins);
    assert_eq!(lots[0]["refundable"], true);
    // Bought on local date 2026-03-02 in Tokyo: refundable until the start of 2026-03-17 there.
    assert_eq!(
        timestamp(&lots[0]["refundable_until"]),
        "2026-03-17T00:00:00+09:00".parse::<Timestamp>().unwrap()
    );

    // GIVEN a second, later purchase (FIFO spends the first one first)
    server.advance_clock(60);
    let second = buy(server, &fan, "coins_350");
    assert_eq!(balance(server, &fan), first_coins + second.total_coins);

    // WHEN a creator enrolls (twice: the second is a 200) and the fan sends five roses
    enroll(server, &creator);
    let again = api
        .post("/v1/creators/me")
        .user(&creator)
        .send()
        .expect(200);
    assert_eq!(again["creator_id"], creator.sub.as_str());
    let catalog = api.get("/v1/gifts/catalog").user(&fan).send().expect(200);
    let rose = catalog["gifts"]
        .as_array()
        .expect("gifts")
        .iter()
        .find(|gift| gift["gift_id"] == "rose")
        .expect("a rose in the catalog");
    assert_eq!(rose["coins"], 1);
    let gift = send_gift(server, &fan, &creator, "rose", 5).expect(201);
    assert!(gift["gift_txn_id"].is_string(), "{gift}");
    assert_eq!(gift["coins_spent"], 5);
    assert_eq!(gift["diamonds"], 5);
    assert_eq!(
        u64_field(&gift, "balance"),
        first_coins + second.total_coins - 5
    );
    // THEN the creator earns the same number of diamonds, held for a week, and sees the gift
    let earnings = flows::earnings_reaching(server, &creator, 5);
    assert_eq!(earnings["creator_id"], creator.sub.as_str());
    assert_eq!(
        (earnings["pending"].as_u64(), earnings["available"].as_u64()),
        (Some(5), Some(0))
    );
    assert_eq!(earnings["hold_days"], 7);
    assert_eq!(earnings["available_value"]["currency"], "USD", "{earnings}");
    let received = api
        .get("/v1/creators/me/gifts")
        .user(&creator)
        .send()
        .expect(200);
    assert_eq!(
        received["items"][0]["gift_txn_id"], gift["gift_txn_id"],
        "{received}"
    );
    assert_eq!(received["items"][0]["sender_id"], fan.sub.as_str());
    assert_eq!(received["items"][0]["quantity"], 5);

    // WHEN the fan asks for refunds: the first purchase is partly spent, the second is not
    flows::refund(server, &fan, &first_id).expect_problem(409, "coins_already_spent");
    let refund = flows::refund(server, &fan, &second.purchase_id).expect(200);
    assert_eq!(refund["purchase_id"], second.purchase_id.as_str());
    assert_eq!(refund["status"], "refunded");
    assert_eq!(u64_field(&refund, "coins_reversed"), second.total_coins);
    assert_eq!(refund["amount"]["currency"], second.currency.as_str());
    assert_eq!(refund["amount"]["gross"], second.gross.as_str());
    assert_eq!(refund["refund"]["status"], "pending", "{refund}");
    flows::refund(server, &fan, &second.purchase_id).expect_problem(409, "already_refunded");
    // THEN the money reaches the provider, once, for the whole amount
    let settled = server.settled_refund(&fan, &second.purchase_id);
    assert_eq!(settled["status"], "refunded", "{settled}");
    assert_eq!(settled["refund"]["status"], "succeeded", "{settled}");
    assert_eq!(settled["refund"]["reason"], "customer", "{settled}");
    assert!(
        settled["refund"]["provider_refund_id"].is_string(),
        "{settled}"
    );
    let mine = api.get("/v1/purchases").user(&fan).send().expect(200);
    let statuses: Vec<&str> = mine["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| str_field(item, "status"))
        .collect();
    assert_eq!(statuses, ["refunded", "credited"], "newest first: {mine}");

    // THEN coins are conserved and the history, newest first, tells the same story
    let final_balance = balance(server, &fan);
    assert_eq!(final_balance, first_coins - 5);
    let history = all_transactions(server, &fan, 2);
    let kinds: Vec<&str> = history.iter().map(|t| str_field(t, "kind")).collect();
    assert_eq!(kinds, ["refund", "gift", "purchase", "purchase"]);
    assert_history_adds_up(&history, final_balance);
    let purchased = first_coins + second.total_coins;
    let spent = 5;
    let refunded = second.total_coins;
    assert_eq!(
        purchased,
        final_balance + spent + refunded,
        "coins are conserved"
    );
}

/// Each entry's signed `coins` moves the wallet's net (balance − debt), and `balance_after` is
/// that net, or 0 while coins are owed (a reversal of spent coins leaves debt, which the next
/// credits repay first); ids are unique, times never go backwards, and the newest entry's
/// balance is the wallet's.
#[track_caller]
pub fn assert_history_adds_up(history_newest_first: &[Value], balance: u64) {
    let mut net: i64 = 0;
    let mut ids = std::collections::HashSet::new();
    let mut last_at: Option<Timestamp> = None;
    for entry in history_newest_first.iter().rev() {
        let coins = entry["coins"]
            .as_i64()
            .unwrap_or_else(|| panic!("coins is an integer: {entry}"));
        net += coins;
        assert_eq!(
            entry["balance_after"].as_i64(),
            Some(net.max(0)),
            "balance_after of {entry}"
        );
        assert!(
            ids.insert(str_field(entry, "id").to_owned()),
            "duplicate id {entry}"
        );
        assert!(entry["ref"].is_string(), "{entry}");
        let at = timestamp(&entry["at"]);
        assert!(
            last_at.is_none_or(|last| last <= at),
            "time went back at {entry}"
        );
        last_at = Some(at);
    }
    assert_eq!(
        net.max(0),
        i64::try_from(balance).unwrap(),
        "history ends at the balance"
    );
}

/// The package `package_id` of a price list.
#[track_caller]
pub fn package<'a>(list: &'a Value, package_id: &str) -> &'a Value {
    list["packages"]
        .as_array()
        .expect("packages is an array")
        .iter()
        .find(|package| package["package_id"] == package_id)
        .unwrap_or_else(|| panic!("no {package_id} in {list}"))
}

/// An RFC 3339 string field as a timestamp.
#[track_caller]
pub fn timestamp(value: &Value) -> Timestamp {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {value}"))
}

#[track_caller]
fn yen(value: &Value) -> u64 {
    value
        .as_str()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| panic!("not a whole yen amount: {value}"))
}
