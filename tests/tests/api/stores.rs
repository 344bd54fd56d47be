//! In-app purchases end to end (API.md "In-app purchases"): App Store transactions signed by
//! a chain of our own that the server is configured to trust, Google Play purchases held by the
//! local Play API fake, the stores' notifications signed the same way; refunds by the store
//! take the coins back into debt, the creator keeps the diamonds, and coins are conserved. A
//! transaction is redeemed only by the account it names (`GET /v1/purchases/store-accounts`),
//! never once refunded, even when the refund came first (#18).

use base64::Engine;
use coins_testkit::stores::{
    AppleSigner, Leaf, PUSH_ACCOUNT, PUSH_AUDIENCE, apple_notification, apple_transaction,
    play_purchase,
};
use e2e_tests::app_stores::store_fakes;
use e2e_tests::flows::{self, balance, enroll, send_gift, str_field, u64_field, wallet};
use e2e_tests::{LocalServer, Reply, User};
use serde_json::{Value, json};

const PACK_700_IOS: &str = "com.example.coins.pack700";
const PACK_700_ANDROID: &str = "pack_700";

fn fresh(prefix: &str) -> String {
    format!("{prefix}{}", rand::random::<u32>())
}

/// The user's store account values: (`app_account_token`, `obfuscated_account_id`).
fn store_accounts(server: &LocalServer, user: &User) -> (String, String) {
    let accounts = server
        .api()
        .get("/v1/purchases/store-accounts")
        .user(user)
        .send()
        .expect(200);
    (
        str_field(&accounts, "app_account_token").to_owned(),
        str_field(&accounts, "obfuscated_account_id").to_owned(),
    )
}

/// A StoreKit 2 transaction of `product` in `storefront` bought by `buyer` (its
/// `appAccountToken`), signed by the trusted chain now.
fn signed_for(
    server: &LocalServer,
    buyer: &User,
    id: &str,
    product: &str,
    storefront: &str,
) -> String {
    let at = server.now().as_millisecond();
    let mut transaction = apple_transaction(id, product, storefront, at);
    transaction["appAccountToken"] = json!(store_accounts(server, buyer).0);
    store_fakes().apple.sign(&transaction)
}

fn buy_in_app_store(server: &LocalServer, user: &User, signed: &str) -> Reply {
    server
        .api()
        .post("/v1/purchases/app-store")
        .user(user)
        .json(&json!({ "signed_transaction": signed }))
        .send()
}

fn notify_app_store(server: &LocalServer, payload: &Value, signer: &AppleSigner) -> Reply {
    server
        .api()
        .post("/v1/webhooks/app-store")
        .json(&json!({ "signedPayload": signer.sign(payload) }))
        .send()
}

#[test]
fn an_app_store_transaction_is_credited_once_and_only_to_its_buyer() {
    let server = LocalServer::new("app-store-credit");
    let fan = User::new("fan");
    let id = fresh("2000000");
    let signed = signed_for(&server, &fan, &id, PACK_700_IOS, "JPN");
    let first = buy_in_app_store(&server, &fan, &signed).expect(201);
    assert_eq!(first["status"], "credited");
    assert_eq!(first["store"], "app_store");
    assert_eq!(first["transaction_id"], id.as_str());
    assert_eq!(u64_field(&first, "total_coins"), 700);
    let again = buy_in_app_store(&server, &fan, &signed).expect(200);
    assert_eq!(again["purchase_id"], first["purchase_id"]);
    buy_in_app_store(&server, &User::new("other"), &signed)
        .expect_problem(409, "purchase_not_bound");
    assert_eq!(balance(&server, &fan), 700);
    // The store refunds it, not us.
    flows::refund(&server, &fan, str_field(&first, "purchase_id"))
        .expect_problem(409, "refund_via_store");
    let view = server
        .api()
        .get(&format!(
            "/v1/purchases/{}",
            str_field(&first, "purchase_id")
        ))
        .user(&fan)
        .send()
        .expect(200);
    assert_eq!(view["channel"], "ios");
    assert_eq!(view["status"], "credited");
    // With an Idempotency-Key, a retry gets the first answer: 201.
    let keyed = signed_for(&server, &fan, &fresh("2100000"), PACK_700_IOS, "JPN");
    let buy_keyed = || {
        server
            .api()
            .post("/v1/purchases/app-store")
            .user(&fan)
            .idempotency_key("iap-1")
            .json(&json!({ "signed_transaction": keyed }))
            .send()
    };
    let first_keyed = buy_keyed().expect(201);
    assert_eq!(buy_keyed().expect(201), first_keyed);
    server.assert_conserved();
}

#[test]
fn an_app_store_transaction_that_does_not_verify_or_fit_writes_nothing() {
    let server = LocalServer::new("app-store-refused");
    let fan = User::new("fan");
    let at = server.now().as_millisecond();
    let token = store_accounts(&server, &fan).0;
    let transaction = |product: &str, storefront: &str| {
        let mut transaction = apple_transaction(&fresh("2000000"), product, storefront, at);
        transaction["appAccountToken"] = json!(token);
        transaction
    };
    // Signed by a chain the server does not trust.
    let stranger = AppleSigner::new(Leaf::Good).sign(&transaction(PACK_700_IOS, "JPN"));
    buy_in_app_store(&server, &fan, &stranger).expect_problem(400, "invalid_signature");
    buy_in_app_store(&server, &fan, "e30.e30.e30").expect_problem(400, "invalid_signature");
    let signer = &store_fakes().apple;
    let mut other_app = transaction(PACK_700_IOS, "JPN");
    other_app["bundleId"] = json!("com.other.app");
    buy_in_app_store(&server, &fan, &signer.sign(&other_app)).expect_problem(422, "wrong_app");
    let unknown = signer.sign(&transaction("com.example.coins.gems", "JPN"));
    buy_in_app_store(&server, &fan, &unknown).expect_problem(422, "store_product_unknown");
    let abroad = signer.sign(&transaction(PACK_700_IOS, "USA"));
    buy_in_app_store(&server, &fan, &abroad).expect_problem(422, "region_mismatch");
    let minor = User::new("minor").born("2015-01-01");
    let mut minors = transaction(PACK_700_IOS, "JPN");
    minors["appAccountToken"] = json!(store_accounts(&server, &minor).0);
    buy_in_app_store(&server, &minor, &signer.sign(&minors)).expect_problem(403, "age_restricted");
    assert_eq!(balance(&server, &fan), 0);
    let history = flows::all_transactions(&server, &fan, 10);
    assert!(history.is_empty(), "{history:?}");
}

#[test]
fn an_app_store_refund_after_gifting_leaves_debt_and_its_reversal_repays_it() {
    let server = LocalServer::new("app-store-refund");
    let (fan, creator) = (User::new("fan"), User::new("creator"));
    enroll(&server, &creator);
    let id = fresh("2000000");
    let signed = signed_for(&server, &fan, &id, PACK_700_IOS, "JPN");
    buy_in_app_store(&server, &fan, &signed).expect(201);
    send_gift(&server, &fan, &creator, "rose", 600).expect(201);
    let signer = &store_fakes().apple;
    let at = server.now().as_millisecond();
    let refund = apple_notification("REFUND", &fresh_uuid(), Some(&signed), at);
    let ack = notify_app_store(&server, &refund, signer).expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    assert_eq!(
        notify_app_store(&server, &refund, signer).expect(200)["outcome"],
        "replayed"
    );
    let view = wallet(&server, &fan);
    assert_eq!(
        (view["balance"].as_u64(), view["debt"].as_u64()),
        (Some(0), Some(600)),
        "{view}"
    );
    flows::earnings_reaching(&server, &creator, 600);
    send_gift(&server, &fan, &creator, "rose", 1).expect_problem(409, "coin_debt");
    server.assert_conserved();

    let reversed = apple_notification("REFUND_REVERSED", &fresh_uuid(), Some(&signed), at);
    let ack = notify_app_store(&server, &reversed, signer).expect(200);
    assert_eq!(ack["outcome"], "reversal_undone", "{ack}");
    let view = wallet(&server, &fan);
    assert_eq!(
        (view["balance"].as_u64(), view["debt"].as_u64()),
        (Some(100), Some(0)),
        "{view}"
    );
    server.assert_conserved();
}

#[test]
fn a_consumption_request_is_answered_through_the_app_store_server_api() {
    let server = LocalServer::new("app-store-consumption");
    let (fan, creator) = (User::new("fan"), User::new("creator"));
    enroll(&server, &creator);
    let id = fresh("2000000");
    let signed = signed_for(&server, &fan, &id, PACK_700_IOS, "JPN");
    server
        .api()
        .post("/v1/purchases/app-store")
        .user(&fan)
        .json(&json!({ "signed_transaction": signed, "consumption_consent": true }))
        .send()
        .expect(201);
    send_gift(&server, &fan, &creator, "rose", 100).expect(201);
    let at = server.now().as_millisecond();
    let request = apple_notification("CONSUMPTION_REQUEST", &fresh_uuid(), Some(&signed), at);
    let ack = notify_app_store(&server, &request, &store_fakes().apple).expect(200);
    assert_eq!(ack["outcome"], "consumption_sent", "{ack}");
    let sent = store_fakes().stores.lock().consumption.clone();
    let (_, body) = sent
        .iter()
        .find(|(transaction, _)| *transaction == id)
        .expect("Apple received the consumption information");
    assert_eq!(body["consumptionStatus"], 2, "partly consumed: {body}");
    assert_eq!(body["customerConsented"], true);
    assert_eq!(
        body["appAccountToken"],
        store_accounts(&server, &fan).0.as_str()
    );
    // Without the buyer's consent, Apple is not answered at all (its customerConsented docs).
    let unconsented = fresh("2000000");
    let signed = signed_for(&server, &fan, &unconsented, PACK_700_IOS, "JPN");
    buy_in_app_store(&server, &fan, &signed).expect(201);
    let request = apple_notification("CONSUMPTION_REQUEST", &fresh_uuid(), Some(&signed), at);
    let ack = notify_app_store(&server, &request, &store_fakes().apple).expect(200);
    assert_eq!(ack["outcome"], "no_consent", "{ack}");
    let sent = store_fakes().stores.lock().consumption.clone();
    assert!(
        sent.iter()
            .all(|(transaction, _)| *transaction != unconsented),
        "{sent:?}"
    );
    // A test notification, and anything unsigned, change nothing.
    let test = apple_notification("TEST", &fresh_uuid(), None, at);
    assert_eq!(
        notify_app_store(&server, &test, &store_fakes().apple).expect(200)["outcome"],
        "ignored"
    );
    notify_app_store(&server, &test, &AppleSigner::new(Leaf::Good))
        .expect_problem(400, "invalid_signature");
}

fn fresh_uuid() -> String {
    format!(
        "{:08x}-0bc6-42e0-af24-{:012x}",
        rand::random::<u32>(),
        rand::random::<u64>() >> 16
    )
}

fn buy_in_google_play(server: &LocalServer, user: &User, product: &str, token: &str) -> Reply {
    server
        .api()
        .post("/v1/purchases/google-play")
        .user(user)
        .json(&json!({ "product_id": product, "purchase_token": token }))
        .send()
}

/// Google Play holds a purchase of `units` by `buyer` (its obfuscated account id) under a
/// fresh token: (token, order id).
fn play_order(server: &LocalServer, buyer: &User, units: u32, region: &str) -> (String, String) {
    let (token, order) = (fresh("token-"), fresh("GPA.3301-2211-"));
    let mut purchase = play_purchase(&order, PACK_700_ANDROID, region, units);
    purchase["obfuscatedExternalAccountId"] = json!(store_accounts(server, buyer).1);
    store_fakes().stores.add_play_purchase(&token, purchase);
    (token, order)
}

#[test]
fn a_google_play_purchase_is_verified_credited_once_and_consumed() {
    let server = LocalServer::new("google-play-credit");
    let fan = User::new("fan");
    let (token, order) = play_order(&server, &fan, 1, "JP");
    let first = buy_in_google_play(&server, &fan, PACK_700_ANDROID, &token).expect(201);
    assert_eq!(first["store"], "google_play");
    assert_eq!(first["order_id"], order.as_str());
    assert_eq!(u64_field(&first, "total_coins"), 700);
    assert!(store_fakes().stores.lock().consumed.contains(&token));
    assert_eq!(
        buy_in_google_play(&server, &fan, PACK_700_ANDROID, &token).expect(200)["purchase_id"],
        first["purchase_id"]
    );
    buy_in_google_play(&server, &User::new("other"), PACK_700_ANDROID, &token)
        .expect_problem(409, "purchase_not_bound");
    assert_eq!(balance(&server, &fan), 700);

    // What does not verify or fit is refused, and nothing is written.
    let other = User::new("other-fan");
    buy_in_google_play(&server, &other, PACK_700_ANDROID, "no-such-token")
        .expect_problem(400, "invalid_signature");
    let (abroad, _) = play_order(&server, &other, 1, "US");
    buy_in_google_play(&server, &other, PACK_700_ANDROID, &abroad)
        .expect_problem(422, "region_mismatch");
    let (pending, _) = play_order(&server, &other, 1, "JP");
    store_fakes()
        .stores
        .lock()
        .play_purchases
        .get_mut(&pending)
        .unwrap()["purchaseState"] = json!(2);
    buy_in_google_play(&server, &other, PACK_700_ANDROID, &pending)
        .expect_problem(409, "purchase_not_credited");
    buy_in_google_play(&server, &other, "gems_100", &token)
        .expect_problem(422, "store_product_unknown");
    assert_eq!(balance(&server, &other), 0);
    server.assert_conserved();
}

fn push(server: &LocalServer, notification: &Value, token: &str) -> Reply {
    let data = base64::engine::general_purpose::STANDARD.encode(notification.to_string());
    server
        .api()
        .post("/v1/webhooks/google-play")
        .header("authorization", &format!("Bearer {token}"))
        .json(&json!({
            "message": { "data": data, "messageId": fresh(""), "publishTime": "2026-03-02T03:00:00Z" },
            "subscription": "projects/coins-test/subscriptions/play-rtdn",
        }))
        .send()
}

fn voided(token: &str, order: &str, refund_type: i32) -> Value {
    json!({
        "version": "1.0",
        "packageName": "com.example.coins",
        "eventTimeMillis": "1772420400000",
        "voidedPurchaseNotification": {
            "purchaseToken": token, "orderId": order, "productType": 2, "refundType": refund_type,
        },
    })
}

#[test]
fn a_voided_google_play_order_takes_its_coins_back_its_partial_refund_only_its_share() {
    let server = LocalServer::new("google-play-voided");
    let (fan, creator) = (User::new("fan"), User::new("creator"));
    enroll(&server, &creator);
    let google = &store_fakes().google;
    let token_now = || google.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, server.now().as_second());

    // Three units of one order: 2100 coins; 2000 of them gifted.
    let (token, order) = play_order(&server, &fan, 3, "JP");
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &token).expect(201);
    send_gift(&server, &fan, &creator, "rose", 2000).expect(201);
    // Google refunds one unit: a third of the coins goes back.
    store_fakes()
        .stores
        .lock()
        .play_purchases
        .get_mut(&token)
        .unwrap()["refundableQuantity"] = json!(2);
    let ack = push(&server, &voided(&token, &order, 2), &token_now()).expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    let view = wallet(&server, &fan);
    assert_eq!(
        (view["balance"].as_u64(), view["debt"].as_u64()),
        (Some(0), Some(600)),
        "{view}"
    );
    // Then the whole order: the rest.
    let ack = push(&server, &voided(&token, &order, 1), &token_now()).expect(200);
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    let view = wallet(&server, &fan);
    assert_eq!(view["debt"].as_u64(), Some(2000), "{view}");
    flows::earnings_reaching(&server, &creator, 2000);
    server.assert_conserved();

    // A push not signed by Google for us is refused; a test notification is acknowledged.
    let forged = coins_testkit::stores::GoogleKey::new("google-push-1").push_token(
        PUSH_AUDIENCE,
        PUSH_ACCOUNT,
        server.now().as_second(),
    );
    push(&server, &voided(&token, &order, 1), &forged).expect_problem(400, "invalid_signature");
    let test = json!({"version": "1.0", "packageName": "com.example.coins",
        "eventTimeMillis": "1772420400000", "testNotification": {"version": "1.0"}});
    assert_eq!(
        push(&server, &test, &token_now()).expect(200)["outcome"],
        "ignored"
    );
}

#[test]
fn store_account_values_are_stable_per_user_and_a_transaction_of_another_is_refused() {
    let server = LocalServer::new("store-accounts");
    let (fan, thief) = (User::new("fan"), User::new("thief"));
    let (token, obfuscated) = store_accounts(&server, &fan);
    assert_eq!(
        store_accounts(&server, &fan),
        (token.clone(), obfuscated.clone())
    );
    assert_ne!(store_accounts(&server, &thief).0, token);
    assert!(
        token.len() == 36 && obfuscated.len() <= 64,
        "{token} {obfuscated}"
    );
    server
        .api()
        .get("/v1/purchases/store-accounts")
        .send()
        .expect_problem(401, "unauthenticated");
    // The fan's JWS, presented by someone else; one naming no account at all.
    let signed = signed_for(&server, &fan, &fresh("2000000"), PACK_700_IOS, "JPN");
    buy_in_app_store(&server, &thief, &signed).expect_problem(409, "purchase_not_bound");
    let at = server.now().as_millisecond();
    let unbound = store_fakes().apple.sign(&apple_transaction(
        &fresh("2000000"),
        PACK_700_IOS,
        "JPN",
        at,
    ));
    buy_in_app_store(&server, &fan, &unbound).expect_problem(409, "purchase_not_bound");
    // The same with Google Play: the fan's order, and one naming no account.
    let (token_of_fan, _) = play_order(&server, &fan, 1, "JP");
    buy_in_google_play(&server, &thief, PACK_700_ANDROID, &token_of_fan)
        .expect_problem(409, "purchase_not_bound");
    let anonymous = fresh("token-");
    store_fakes().stores.add_play_purchase(
        &anonymous,
        play_purchase(&fresh("GPA.3301-"), PACK_700_ANDROID, "JP", 1),
    );
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &anonymous)
        .expect_problem(409, "purchase_not_bound");
    // Nothing was written: the fan still redeems their own purchases.
    assert_eq!(balance(&server, &thief), 0);
    assert!(flows::all_transactions(&server, &thief, 10).is_empty());
    buy_in_app_store(&server, &fan, &signed).expect(201);
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &token_of_fan).expect(201);
    assert_eq!(balance(&server, &fan), 1400);
    server.assert_conserved();
}

#[test]
fn an_app_store_transaction_refunded_before_its_redemption_is_not_credited() {
    let server = LocalServer::new("app-store-revoked");
    let fan = User::new("fan");
    let signer = &store_fakes().apple;
    let at = server.now().as_millisecond();
    // Signed with its revocation: refused outright.
    let mut revoked = apple_transaction(&fresh("2000000"), PACK_700_IOS, "JPN", at);
    revoked["appAccountToken"] = json!(store_accounts(&server, &fan).0);
    revoked["revocationDate"] = json!(at - 10);
    revoked["revocationReason"] = json!(0);
    buy_in_app_store(&server, &fan, &signer.sign(&revoked)).expect_problem(409, "purchase_revoked");
    // Apple's REFUND arrives before the app redeems the (older, unrevoked) transaction.
    let id = fresh("2000000");
    let signed = signed_for(&server, &fan, &id, PACK_700_IOS, "JPN");
    let refund = apple_notification("REFUND", &fresh_uuid(), Some(&signed), at + 1_000);
    let ack = notify_app_store(&server, &refund, signer).expect(200);
    assert_eq!(ack["outcome"], "revocation_recorded", "{ack}");
    assert_eq!(
        notify_app_store(&server, &refund, signer).expect(200)["outcome"],
        "replayed"
    );
    buy_in_app_store(&server, &fan, &signed).expect_problem(409, "purchase_revoked");
    assert_eq!(balance(&server, &fan), 0);
    // A reversal signed before the refund, delivered late, changes nothing.
    let stale = apple_notification("REFUND_REVERSED", &fresh_uuid(), Some(&signed), at);
    assert_eq!(
        notify_app_store(&server, &stale, signer).expect(200)["outcome"],
        "stale"
    );
    buy_in_app_store(&server, &fan, &signed).expect_problem(409, "purchase_revoked");
    // Apple reversed its refund: it has the money after all, so the redemption is credited.
    let reversed = apple_notification("REFUND_REVERSED", &fresh_uuid(), Some(&signed), at + 2_000);
    assert_eq!(
        notify_app_store(&server, &reversed, signer).expect(200)["outcome"],
        "reinstatement_recorded"
    );
    buy_in_app_store(&server, &fan, &signed).expect(201);
    assert_eq!(balance(&server, &fan), 700);
    server.assert_conserved();
}

#[test]
fn a_google_play_order_credits_its_paid_units_only_and_no_promo_or_voided_order() {
    let server = LocalServer::new("google-play-units");
    let fan = User::new("fan");
    let edit = |token: &str, field: &str, value: Value| {
        store_fakes()
            .stores
            .lock()
            .play_purchases
            .get_mut(token)
            .unwrap()[field] = value;
    };
    // Three units, every one refunded: nothing; two of three refunded: one unit.
    let (all_refunded, _) = play_order(&server, &fan, 3, "JP");
    edit(&all_refunded, "refundableQuantity", json!(0));
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &all_refunded)
        .expect_problem(409, "purchase_revoked");
    let (one_left, _) = play_order(&server, &fan, 3, "JP");
    edit(&one_left, "refundableQuantity", json!(1));
    let credit = buy_in_google_play(&server, &fan, PACK_700_ANDROID, &one_left).expect(201);
    assert_eq!(u64_field(&credit, "total_coins"), 700);
    // A promo code is not sold as coins; a license tester's purchase is credited only where the
    // deployment allows it (the local server does; the template does not).
    let (promo, _) = play_order(&server, &fan, 1, "JP");
    edit(&promo, "purchaseType", json!(1));
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &promo)
        .expect_problem(409, "purchase_not_credited");
    let (tester, _) = play_order(&server, &fan, 1, "JP");
    edit(&tester, "purchaseType", json!(0));
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &tester).expect(201);
    // Voided before it was redeemed: the redemption is refused.
    let (voided_first, order) = play_order(&server, &fan, 1, "JP");
    let google = &store_fakes().google;
    let push_token = google.push_token(PUSH_AUDIENCE, PUSH_ACCOUNT, server.now().as_second());
    let ack = push(&server, &voided(&voided_first, &order, 1), &push_token).expect(200);
    assert_eq!(ack["outcome"], "revocation_recorded", "{ack}");
    buy_in_google_play(&server, &fan, PACK_700_ANDROID, &voided_first)
        .expect_problem(409, "purchase_revoked");
    assert_eq!(balance(&server, &fan), 1400);
    server.assert_conserved();
}
