//! The webhook handler's tests: signatures, each event kind, replays and ordering, on the
//! in-memory ledger with the test-mode provider.
use super::*;
use coins_ids::UserId;
use coins_ledger::{MemoryStore, PurchaseStatus};
use coins_payments::test_mode::TestMode;
use coins_payments::{NewPayment, Provider};
use coins_testkit::{Event as Fixture, T0, assert_problem, buy_package, memory_deps, read, zone};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

fn webhook() -> Webhook {
    Webhook {
        provider: Provider::TestMode(TestMode::default()),
        secret: WebhookSecret::new("whsec_test_secret").unwrap(),
    }
}

/// A Stripe event of `kind` about `object`, signed at `at`.
fn signed(webhook: &Webhook, kind: &str, object: Value, at: Timestamp) -> Fixture {
    let body = json!({
        "id": format!("evt_{:016x}", rand_id()),
        "object": "event",
        "type": kind,
        "created": at.as_second(),
        "data": {"object": object},
    })
    .to_string();
    Fixture::load("post-stripe-webhook").raw_body(&body).header(
        SIGNATURE_HEADER,
        Some(&webhook.secret.sign(at, body.as_bytes())),
    )
}

fn rand_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Signs `object` as an event of `kind` now and delivers it: the status and the answer.
async fn deliver(
    deps: &Deps<MemoryStore>,
    webhook: &Webhook,
    kind: &str,
    object: Value,
) -> (u16, Value) {
    let event = signed(webhook, kind, object, Timestamp::now());
    read(&handle(deps, webhook, event.request()).await)
}

/// A pending purchase of 700 coins by alice in Japan, paired with its payment.
async fn pending(
    deps: &Deps<MemoryStore>,
    webhook: &Webhook,
) -> (PurchaseId, PaymentIntentId, i64) {
    let user = UserId::new("alice").unwrap();
    let priced = deps
        .price_book()
        .quote(
            "JP".parse().unwrap(),
            coins_rules::Channel::Web,
            coins_rules::QuoteItem::Package("coins_700".parse().unwrap()),
        )
        .unwrap();
    let quote = coins_ledger::Quote::new(priced, &user, deps.now());
    deps.ledger.save_quote(&quote).await.unwrap();
    let receipt = deps
        .ledger
        .create_purchase(
            &user,
            &quote.quote_id,
            &zone("Asia/Tokyo"),
            deps.now(),
            &coins_ids::IdempotencyKey::new(format!("k-{}", quote.quote_id)).unwrap(),
        )
        .await
        .unwrap();
    let payment = webhook
        .provider
        .create_payment(&NewPayment {
            purchase_id: &receipt.purchase_id,
            user_id: &user,
            amount: receipt.amount,
        })
        .await
        .unwrap();
    deps.ledger
        .attach_payment(&receipt.purchase_id, &payment.id)
        .await
        .unwrap();
    let minor = receipt.amount.minor_units().unwrap();
    (receipt.purchase_id, payment.id, minor)
}

fn intent(purchase: &PurchaseId, payment: &PaymentIntentId, amount: i64, country: &str) -> Value {
    json!({
        "id": payment, "object": "payment_intent", "amount": amount, "currency": "jpy",
        "status": "succeeded", "metadata": {"purchase_id": purchase, "user_id": "alice"},
        "latest_charge": {"id": "ch_1", "object": "charge",
            "payment_method_details": {"card": {"country": country}}},
    })
}

async fn status(deps: &Deps<MemoryStore>, purchase: &PurchaseId) -> PurchaseStatus {
    deps.ledger.get_purchase(purchase).await.unwrap().status
}

async fn balance(deps: &Deps<MemoryStore>) -> (u64, u64) {
    let wallet = deps
        .ledger
        .wallet(
            &UserId::new("alice").unwrap(),
            &zone("Asia/Tokyo"),
            deps.now(),
        )
        .await
        .unwrap();
    (wallet.balance, wallet.debt)
}

#[tokio::test]
async fn a_succeeded_payment_credits_once_and_a_replay_answers_200() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    let event = signed(
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
        Timestamp::now(),
    );
    let (code, ack) = read(&handle(&deps, &webhook, event.request()).await);
    assert_eq!(
        (code, ack["outcome"].as_str()),
        (200, Some("credited")),
        "{ack}"
    );
    let (_, again) = read(&handle(&deps, &webhook, event.request()).await);
    assert_eq!(again["outcome"], "replayed");
    assert_eq!(balance(&deps).await, (700, 0));
}

#[tokio::test]
async fn a_payment_that_cannot_be_credited_is_returned() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    let (code, ack) = deliver(
        &deps,
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "US"),
    )
    .await;
    assert_eq!((code, ack["outcome"].as_str()), (200, Some("returned")));
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Refunded);
    let view = deps
        .ledger
        .purchase_view(None, &purchase, deps.now())
        .await
        .unwrap();
    assert_eq!(view.refund.unwrap().reason.code(), "region_mismatch");
    assert_eq!(balance(&deps).await, (0, 0));
}

#[tokio::test]
async fn an_unknown_purchase_is_200_and_its_money_returned() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let stranger = PurchaseId::generate();
    let payment = PaymentIntentId::new("pi_stranger").unwrap();
    let (code, ack) = deliver(
        &deps,
        &webhook,
        "payment_intent.succeeded",
        intent(&stranger, &payment, 1100, "JP"),
    )
    .await;
    assert_eq!((code, ack["outcome"].as_str()), (200, Some("returned")));
}

#[tokio::test]
async fn a_declined_payment_then_a_retry_on_the_same_intent_credits_the_purchase() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "payment_intent.payment_failed",
        intent(&purchase, &payment, amount, "JP"),
    )
    .await;
    assert_eq!(ack["outcome"], "failed");
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Failed);
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
    )
    .await;
    assert_eq!(ack["outcome"], "credited");
    assert_eq!(balance(&deps).await, (700, 0));
}

#[tokio::test]
async fn a_dispute_reverses_into_debt_and_a_won_dispute_undoes_it_once() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    deliver(
        &deps,
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
    )
    .await;
    let dispute = |status: &str| {
        json!({"id": "dp_1", "object": "dispute", "payment_intent": payment,
               "charge": "ch_1", "amount": amount, "currency": "jpy", "status": status})
    };
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "charge.dispute.created",
        dispute("needs_response"),
    )
    .await;
    assert_eq!(ack["outcome"], "reversed");
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Reversed);
    assert_eq!(balance(&deps).await, (0, 0));
    let (_, ack) = deliver(&deps, &webhook, "charge.dispute.closed", dispute("lost")).await;
    assert_eq!(ack["outcome"], "ignored");
    let (_, ack) = deliver(&deps, &webhook, "charge.dispute.closed", dispute("won")).await;
    assert_eq!(ack["outcome"], "reversal_undone");
    let (_, ack) = deliver(&deps, &webhook, "charge.dispute.closed", dispute("won")).await;
    assert_eq!(ack["outcome"], "ignored");
    assert_eq!(balance(&deps).await, (700, 0));
}

#[tokio::test]
async fn a_dispute_before_the_credit_leaves_nothing_to_credit() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    let dispute = json!({"id": "dp_2", "object": "dispute", "payment_intent": payment,
                         "charge": "ch_1", "status": "needs_response"});
    let (code, ack) = deliver(&deps, &webhook, "charge.dispute.created", dispute).await;
    assert_eq!((code, ack["outcome"].as_str()), (200, Some("reversed")));
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
    )
    .await;
    assert_eq!(
        ack["outcome"], "replayed",
        "the dispute took that money back"
    );
    assert_eq!(balance(&deps).await, (0, 0));
}

#[tokio::test]
async fn other_events_are_acknowledged_and_ignored() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (code, ack) = deliver(&deps, &webhook, "customer.created", json!({"id": "cus_1"})).await;
    assert_eq!(
        (code, ack["received"].as_bool(), ack["ignored"].as_bool()),
        (200, Some(true), Some(true))
    );
}

#[tokio::test]
async fn bad_signatures_are_refused_before_anything_is_read() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
    let other = Webhook {
        secret: WebhookSecret::new("whsec_other").unwrap(),
        ..webhook.clone()
    };
    let object = json!({"id": "pi_x", "amount": 1, "currency": "jpy", "status": "succeeded"});
    let forged = signed(
        &other,
        "payment_intent.succeeded",
        object.clone(),
        Timestamp::now(),
    );
    let stale = signed(
        &webhook,
        "payment_intent.succeeded",
        object.clone(),
        Timestamp::now() - SignedDuration::from_secs(301),
    );
    let unsigned = Fixture::load("post-stripe-webhook")
        .raw_body(&object.to_string())
        .header(SIGNATURE_HEADER, None);
    for event in [forged, stale, unsigned] {
        assert_problem(
            &handle(&deps, &webhook, event.request()).await,
            400,
            "invalid_signature",
        );
    }
}

#[tokio::test]
async fn a_verified_but_malformed_event_is_invalid_request() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let bad = signed(
        &webhook,
        "payment_intent.succeeded",
        json!({"id": 42}),
        Timestamp::now(),
    );
    assert_problem(
        &handle(&deps, &webhook, bad.request()).await,
        400,
        "invalid_request",
    );
}

fn test_mode(webhook: &Webhook) -> &TestMode {
    let Provider::TestMode(test) = &webhook.provider else {
        unreachable!("the tests' webhook is in test mode")
    };
    test
}

/// alice buys 700 coins in Japan (credited); the purchase, its payment and its amount.
async fn credited(deps: &Deps<MemoryStore>) -> (PurchaseId, PaymentIntentId, i64) {
    let purchase = buy_package(deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
    let record = deps.ledger.get_purchase(&purchase).await.unwrap();
    let amount = record.amount.minor_units().unwrap();
    (purchase, record.payment_intent_id.unwrap(), amount)
}

/// alice gifts `coins` roses to bob.
async fn spend(deps: &Deps<MemoryStore>, coins: u32) {
    coins_testkit::enroll(deps, "bob").await;
    let request = coins_ledger::GiftRequest {
        sender: UserId::new("alice").unwrap(),
        recipient: UserId::new("bob").unwrap(),
        order: deps.gifts().order(&"rose".parse().unwrap(), coins).unwrap(),
        target: coins_rules::GiftTarget::new(coins_rules::TargetKind::Live, "live-1").unwrap(),
        sender_zone: zone("Asia/Tokyo"),
    };
    let key = coins_ids::IdempotencyKey::new("spend-1").unwrap();
    deps.ledger
        .send_gift(&request, deps.now(), &key)
        .await
        .unwrap();
}

fn charge(payment: &PaymentIntentId, amount: i64, refunded: i64) -> Value {
    json!({"id": "ch_1", "object": "charge", "amount": amount, "amount_refunded": refunded,
           "refunded": refunded == amount, "payment_intent": payment})
}

async fn restricted(deps: &Deps<MemoryStore>) -> bool {
    let alice = UserId::new("alice").unwrap();
    let tokyo = zone("Asia/Tokyo");
    let wallet = deps.ledger.wallet(&alice, &tokyo, deps.now());
    wallet.await.unwrap().restricted
}

#[tokio::test]
async fn a_dashboard_refund_reverses_the_purchase_once() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = credited(&deps).await;
    test_mode(&webhook).refund_outside(&payment, amount);
    let refunded = charge(&payment, amount, amount);
    let (code, ack) = deliver(&deps, &webhook, "charge.refunded", refunded.clone()).await;
    assert_eq!((code, ack["outcome"].as_str()), (200, Some("reversed")));
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Reversed);
    assert_eq!(balance(&deps).await, (0, 0));
    // Stripe's event again, under another id: nothing more.
    let (_, ack) = deliver(&deps, &webhook, "charge.refunded", refunded).await;
    assert_eq!(ack["outcome"], "ignored");
    assert_eq!(balance(&deps).await, (0, 0));
}

#[tokio::test]
async fn our_own_refund_reported_as_charge_refunded_changes_nothing() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = credited(&deps).await;
    let receipt = deps
        .ledger
        .refund_purchase(
            &coins_ledger::RefundBy::Owner(UserId::new("alice").unwrap()),
            &purchase,
            deps.now(),
            None,
        )
        .await
        .unwrap();
    let order = coins_payments::RefundOrder {
        refund_id: &receipt.refund_id,
        payment: &payment,
        amount_minor: amount,
        purchase_id: Some(&purchase),
    };
    webhook.provider.refund(&order).await.unwrap();
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "charge.refunded",
        charge(&payment, amount, amount),
    )
    .await;
    assert_eq!(ack["outcome"], "ignored");
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Refunded);
    assert_eq!(balance(&deps).await, (0, 0));
}

#[tokio::test]
async fn a_partial_dashboard_refund_of_spent_coins_reverses_its_share_into_debt() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = credited(&deps).await;
    spend(&deps, 600).await;
    assert_eq!(balance(&deps).await, (100, 0));
    test_mode(&webhook).refund_outside(&payment, amount / 2);
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "charge.refunded",
        charge(&payment, amount, amount / 2),
    )
    .await;
    assert_eq!(ack["outcome"], "reversed");
    // Its share of the coins, rounded down (as a store's partial refund is).
    let share = u64::try_from(700 * (amount / 2) / amount).unwrap();
    assert_eq!(balance(&deps).await, (0, share - 100));
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Credited);
    // The rest refunded later: the difference.
    test_mode(&webhook).refund_outside(&payment, amount - amount / 2);
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "charge.refunded",
        charge(&payment, amount, amount),
    )
    .await;
    assert_eq!(ack["outcome"], "reversed");
    assert_eq!(balance(&deps).await, (0, 600));
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Reversed);
}

fn warning(payment: &PaymentIntentId) -> Value {
    json!({"id": "issfr_1", "object": "radar.early_fraud_warning", "actionable": true,
           "charge": "ch_1", "fraud_type": "made_with_stolen_card", "payment_intent": payment})
}

#[tokio::test]
async fn a_fraud_warning_refunds_unspent_coins() {
    let (deps, clock) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, _) = credited(&deps).await;
    // Outside the buyer's window too: a chargeback would not wait.
    clock.advance(SignedDuration::from_hours(24 * 20)).unwrap();
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "radar.early_fraud_warning.created",
        warning(&payment),
    )
    .await;
    assert_eq!(ack["outcome"], "refunded", "{ack}");
    let view = deps
        .ledger
        .purchase_view(None, &purchase, deps.now())
        .await
        .unwrap();
    assert_eq!(view.refund.unwrap().reason.code(), "fraud_warning");
    assert_eq!(balance(&deps).await, (0, 0));
    assert!(!restricted(&deps).await);
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "radar.early_fraud_warning.created",
        warning(&payment),
    )
    .await;
    assert_eq!(ack["outcome"], "ignored");
}

#[tokio::test]
async fn a_fraud_warning_on_spent_coins_restricts_the_account_and_reverses() {
    let (deps, _) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, _) = credited(&deps).await;
    spend(&deps, 100).await;
    let (_, ack) = deliver(
        &deps,
        &webhook,
        "radar.early_fraud_warning.created",
        warning(&payment),
    )
    .await;
    assert_eq!(ack["outcome"], "reversed", "{ack}");
    assert_eq!(status(&deps, &purchase).await, PurchaseStatus::Reversed);
    assert_eq!(balance(&deps).await, (0, 100));
    assert!(restricted(&deps).await);
}

/// The ledger's clock (a local server's test clock, moved by `/_dev/clock`) is not the
/// signature's: Stripe signs at its wall-clock time, and that is what the tolerance is about.
#[tokio::test]
async fn a_signature_is_timed_by_the_wall_clock_not_the_ledgers() {
    let (deps, clock) = memory_deps(T0);
    let webhook = webhook();
    let (purchase, payment, amount) = pending(&deps, &webhook).await;
    clock.advance(SignedDuration::from_hours(2)).unwrap();
    let event = signed(
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
        Timestamp::now(),
    );
    let (code, ack) = read(&handle(&deps, &webhook, event.request()).await);
    assert_eq!(
        (code, ack["outcome"].as_str()),
        (200, Some("credited")),
        "{ack}"
    );
    let at_the_ledgers_time = signed(
        &webhook,
        "payment_intent.succeeded",
        intent(&purchase, &payment, amount, "JP"),
        deps.now(),
    );
    assert_problem(
        &handle(&deps, &webhook, at_the_ledgers_time.request()).await,
        400,
        "invalid_signature",
    );
}
