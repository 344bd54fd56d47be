//! Payout dispatch against Stripe's Transfers API, faked on loopback (localstripe has no
//! Connect): the transfer is made once with the payout id as its `Idempotency-Key` and
//! `transfer_group`, found again after a lost answer, and a refusal fails the payout with its
//! diamonds back. Stripe down leaves it pending for the next delivery.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coins_ids::{ConnectedAccountId, IdempotencyKey, UserId};
use coins_ledger::store::Key;
use coins_ledger::table::{GiftRecord, PayoutStatus, keys};
use coins_ledger::{GiftRequest, MemoryStore, PayoutClaim, Store, Transferred};
use coins_payments::stripe::{SecretKey, Stripe};
use coins_payments::{Provider, TransferOrder};
use coins_rules::{GiftTarget, TargetKind};
use coins_runtime::{Deps, TestClock};
use coins_testkit::http::{form_fields, json_response, serve};
use coins_testkit::{T0, buy_package, enroll, memory_deps, zone};
use http_body_util::Full;
use hyper::Response;
use hyper::http::request::Parts;
use jiff::SignedDuration;
use payout_dispatch::{Dispatched, dispatch};
use serde_json::json;

/// What the fake does with the next transfer creations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehave {
    /// Answer 500 without making the transfer.
    Fail,
    /// Make the transfer, then answer 500: the answer is lost.
    LoseAnswer,
    /// Make the transfer, lose the answer, and from then on refuse our key (401): the key was
    /// rolled while the transfer was in flight.
    LoseAnswerThenRollKey,
    /// Make the transfer, then answer 200 with a body that is not a transfer (a proxy's page).
    GarbleAnswer,
    /// Make the transfer, then answer after the client gave up.
    AnswerTooLate,
    /// Refuse it with HTTP 400, `invalid_request_error` and this code.
    Refuse(&'static str),
}

/// How the fake answers every call, lookups included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Normal,
    /// 401: the key was rolled.
    KeyRolled,
    /// 403 with a body that is not Stripe's (a proxy, a firewall).
    Forbidden,
    /// 200 with a body that is not JSON.
    Garbled,
}

/// A made transfer: id, amount (cents), destination, group, idempotency key.
type Made = (String, i64, String, String, String);

#[derive(Default)]
struct FakeStripe {
    transfers: Vec<Made>,
    plan: Vec<Misbehave>,
    mode: Mode,
}

type Shared = Arc<Mutex<FakeStripe>>;

fn transfer_json(made: &Made) -> serde_json::Value {
    json!({"id": made.0, "object": "transfer", "amount": made.1, "currency": "usd",
           "destination": made.2, "transfer_group": made.3, "metadata": {}})
}

fn unreadable() -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .header("content-type", "text/html")
        .body(Full::new(Bytes::from_static(b"<html>maintenance</html>")))
        .unwrap()
}

async fn answer(fake: Shared, parts: Parts, body: Bytes) -> Response<Full<Bytes>> {
    let mode = fake.lock().unwrap().mode;
    match mode {
        Mode::Normal => {}
        Mode::KeyRolled => {
            return json_response(
                401,
                &json!({"error": {"type": "invalid_request_error",
                                  "message": "Invalid API Key provided: sk_test_****"}}),
            );
        }
        Mode::Forbidden => {
            return Response::builder()
                .status(403)
                .body(Full::new(Bytes::from_static(b"Forbidden")))
                .unwrap();
        }
        Mode::Garbled => return unreadable(),
    }
    if parts.uri.path() != "/v1/transfers" {
        return json_response(404, &json!({"error": {"message": "no such route"}}));
    }
    if parts.method == hyper::Method::GET {
        let query = form_fields(parts.uri.query().unwrap_or("").as_bytes());
        let group = query.get("transfer_group").cloned().unwrap_or_default();
        let data: Vec<_> = fake
            .lock()
            .unwrap()
            .transfers
            .iter()
            .filter(|made| made.3 == group)
            .map(transfer_json)
            .collect();
        return json_response(
            200,
            &json!({"object": "list", "data": data, "has_more": false}),
        );
    }
    let (response, late) = create(&fake, &parts, &body);
    if late {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    response
}

/// A transfer creation: the answer, and whether it comes after the client gave up.
fn create(fake: &Shared, parts: &Parts, body: &[u8]) -> (Response<Full<Bytes>>, bool) {
    let form = form_fields(body);
    let key = parts
        .headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut fake = fake.lock().unwrap();
    let behaviour = (!fake.plan.is_empty()).then(|| fake.plan.remove(0));
    if behaviour == Some(Misbehave::Fail) {
        return (
            json_response(
                500,
                &json!({"error": {"type": "api_error", "message": "boom"}}),
            ),
            false,
        );
    }
    if let Some(Misbehave::Refuse(code)) = behaviour {
        return (
            json_response(
                400,
                &json!({"error": {"type": "invalid_request_error", "code": code,
                              "message": "refused"}}),
            ),
            false,
        );
    }
    let destination = form.get("destination").cloned().unwrap_or_default();
    if destination.starts_with("acct_closed") {
        return (
            json_response(
                400,
                &json!({"error": {"type": "invalid_request_error", "code": "account_invalid",
                              "message": "The destination account is closed."}}),
            ),
            false,
        );
    }
    // Stripe answers a repeated idempotency key with the first result.
    let made = match fake.transfers.iter().find(|made| made.4 == key) {
        Some(made) => made.clone(),
        None => {
            let made = (
                format!("tr_{}", fake.transfers.len() + 1),
                form.get("amount").and_then(|a| a.parse().ok()).unwrap_or(0),
                destination,
                form.get("transfer_group").cloned().unwrap_or_default(),
                key,
            );
            fake.transfers.push(made.clone());
            made
        }
    };
    let lost = json_response(
        500,
        &json!({"error": {"type": "api_error", "message": "lost"}}),
    );
    match behaviour {
        Some(Misbehave::LoseAnswer) => (lost, false),
        Some(Misbehave::LoseAnswerThenRollKey) => {
            fake.mode = Mode::KeyRolled;
            (lost, false)
        }
        Some(Misbehave::GarbleAnswer) => (unreadable(), false),
        Some(Misbehave::AnswerTooLate) => (json_response(200, &transfer_json(&made)), true),
        _ => (json_response(200, &transfer_json(&made)), false),
    }
}

fn fake_stripe() -> (Shared, Provider) {
    let fake: Shared = Arc::default();
    let served = fake.clone();
    let base = serve(move |parts, body| answer(served.clone(), parts, body));
    (fake, stripe_at(&base))
}

fn stripe_at(base: &str) -> Provider {
    Provider::Stripe(Stripe::with_timeout(
        base,
        SecretKey::new("sk_test_payouts"),
        Duration::from_millis(500),
    ))
}

/// alice, a creator paid to `account`, with 20,000 diamonds available (bob's gifts, counted and
/// out of their hold), asks for a payout of 20,000 (USD 100.00); its key.
async fn payout(account: &str) -> (Deps<MemoryStore>, TestClock, Key) {
    let (deps, clock) = memory_deps(T0);
    enroll(&deps, "alice").await;
    let alice = UserId::new("alice").unwrap();
    deps.ledger
        .set_payout_account_by(
            &alice,
            &ConnectedAccountId::new(account).unwrap(),
            None,
            deps.now(),
        )
        .await
        .unwrap();
    for _ in 0..3 {
        buy_package(&deps, "bob", "JP", "Asia/Tokyo", "coins_7000").await;
    }
    for n in 0..2 {
        let request = GiftRequest {
            sender: UserId::new("bob").unwrap(),
            recipient: alice.clone(),
            order: deps.gifts().order(&"rose".parse().unwrap(), 9_999).unwrap(),
            target: GiftTarget::new(TargetKind::Live, "live-1").unwrap(),
            sender_zone: zone("Asia/Tokyo"),
        };
        let key = IdempotencyKey::new(format!("gift-{n}")).unwrap();
        deps.ledger
            .send_gift(&request, deps.now(), &key)
            .await
            .unwrap();
    }
    let gifts: Vec<GiftRecord> = deps
        .ledger
        .store()
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|record| GiftRecord::try_from(record).ok())
        .collect();
    deps.ledger.count_gifts(&gifts, deps.now()).await.unwrap();
    clock.advance(SignedDuration::from_hours(24 * 8)).unwrap();
    let key = IdempotencyKey::new("payout-1").unwrap();
    let view = deps
        .ledger
        .request_payout(&alice, 19_998, deps.now(), &key)
        .await
        .unwrap();
    let key = keys::payout(&alice, view.created_at, &view.payout_id);
    (deps, clock, key)
}

async fn earnings(deps: &Deps<MemoryStore>) -> (u64, u64, u64) {
    let alice = UserId::new("alice").unwrap();
    let e = deps.ledger.earnings(&alice, deps.now()).await.unwrap();
    (e.available, e.in_payout, e.paid_out)
}

/// Lets the claim of the previous delivery lapse, as the next delivery would find it.
fn later(clock: &TestClock) {
    clock
        .advance(coins_ledger::CLAIM_LEASE + SignedDuration::from_secs(1))
        .unwrap();
}

#[tokio::test]
async fn a_payout_becomes_one_transfer_named_by_its_id() {
    let (deps, _, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    let payout = deps.ledger.payout(&key).await.unwrap();
    let made = fake.lock().unwrap().transfers.clone();
    assert_eq!(
        made,
        [(
            "tr_1".to_owned(),
            9_999,
            "acct_1Alice".to_owned(),
            payout.payout_id.to_string(),
            payout.payout_id.to_string()
        )]
    );
    assert_eq!(payout.transfer_id.as_deref(), Some("tr_1"));
    assert_eq!(earnings(&deps).await, (0, 0, 19_998));
    // A redelivery finds it finished.
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    assert_eq!(fake.lock().unwrap().transfers.len(), 1);
    deps.ledger.conservation_check().await.unwrap();
}

#[tokio::test]
async fn a_lost_answer_is_found_by_its_transfer_group_not_repeated() {
    let (deps, _, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    fake.lock().unwrap().plan = vec![Misbehave::LoseAnswer];
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    assert_eq!(fake.lock().unwrap().transfers.len(), 1);
}

#[tokio::test]
async fn a_refused_transfer_fails_the_payout_and_returns_its_diamonds_once() {
    let (deps, _, key) = payout("acct_closed_1").await;
    let (fake, stripe) = fake_stripe();
    assert_eq!(earnings(&deps).await, (0, 19_998, 0));
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Failed)
    );
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Failed)
    );
    assert_eq!(earnings(&deps).await, (19_998, 0, 0));
    assert!(fake.lock().unwrap().transfers.is_empty());
    deps.ledger.conservation_check().await.unwrap();
}

#[tokio::test]
async fn stripe_down_leaves_it_pending_then_a_later_delivery_pays_it_once() {
    let (deps, clock, key) = payout("acct_1Alice").await;
    let down = stripe_at("http://127.0.0.1:9");
    assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
    assert_eq!(earnings(&deps).await, (0, 19_998, 0));
    later(&clock);
    let (fake, stripe) = fake_stripe();
    fake.lock().unwrap().plan = vec![Misbehave::Fail];
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    let payout = deps.ledger.payout(&key).await.unwrap();
    assert_eq!(
        (payout.attempts, fake.lock().unwrap().transfers.len()),
        (2, 1)
    );
}

/// The double payment the fault simulator found: a transfer made with its answer lost, then
/// Stripe unreachable for many deliveries. Failing the payout then (its diamonds back in
/// `available`) would let the creator be paid them again; it stays pending instead, and the
/// delivery after Stripe is back finds the transfer and records it once.
#[tokio::test]
async fn a_transfer_whose_answer_was_lost_is_never_failed_while_stripe_is_down() {
    let (deps, clock, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    fake.lock().unwrap().plan = vec![Misbehave::LoseAnswer];
    let PayoutClaim::Send(claimed) = deps.ledger.claim_payout(&key, deps.now()).await.unwrap()
    else {
        panic!("a new payout is claimed")
    };
    let order = TransferOrder {
        payout_id: &claimed.payout_id,
        destination: &claimed.destination,
        amount: claimed.amount,
    };
    let error = stripe.transfer(&order).await.unwrap_err();
    let retry = Transferred::Retry {
        error: error.to_string(),
    };
    deps.ledger
        .finish_payout(&claimed, &retry, deps.now())
        .await
        .unwrap();
    assert_eq!(fake.lock().unwrap().transfers.len(), 1, "made, answer lost");

    let down = stripe_at("http://127.0.0.1:9");
    for _ in 0..12 {
        later(&clock);
        assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
    }
    assert_eq!(earnings(&deps).await, (0, 19_998, 0), "still in payout");

    later(&clock);
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    assert_eq!(fake.lock().unwrap().transfers.len(), 1);
    assert_eq!(earnings(&deps).await, (0, 0, 19_998));
    deps.ledger.conservation_check().await.unwrap();
}

/// The double payment of issue 18: a transfer Stripe made whose answer was lost, and a key
/// rolled meanwhile, so every lookup answers 401. A 401 says nothing of the transfer: failing
/// the payout (its diamonds back in `available`) would let the creator be paid them twice. It
/// stays pending, in payout, through every delivery while the key is wrong, and the first
/// delivery with the new key finds the transfer and records it once.
#[tokio::test]
async fn a_transfer_made_with_its_answer_lost_then_401_on_the_lookup_stays_pending_and_is_paid_once()
 {
    let (deps, clock, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    fake.lock().unwrap().plan = vec![Misbehave::LoseAnswerThenRollKey];
    assert_eq!(dispatch(&deps, &stripe, &key).await, Dispatched::Retry);
    for _ in 0..5 {
        later(&clock);
        assert_eq!(dispatch(&deps, &stripe, &key).await, Dispatched::Retry);
    }
    let pending = deps.ledger.payout(&key).await.unwrap();
    assert_eq!(pending.status, PayoutStatus::Pending);
    assert!(pending.last_error.unwrap().contains("401"));
    assert_eq!(earnings(&deps).await, (0, 19_998, 0), "still in payout");
    assert_eq!(fake.lock().unwrap().transfers.len(), 1, "made once");

    fake.lock().unwrap().mode = Mode::Normal;
    later(&clock);
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Paid)
    );
    assert_eq!(fake.lock().unwrap().transfers.len(), 1);
    assert_eq!(earnings(&deps).await, (0, 0, 19_998));
    deps.ledger.conservation_check().await.unwrap();
}

/// Asserts that one delivery against `stripe` leaves the payout pending with its diamonds in
/// payout, however the answer was worded.
async fn stays_pending(mode: Mode, plan: Vec<Misbehave>) {
    let (deps, _, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    {
        let mut fake = fake.lock().unwrap();
        fake.mode = mode;
        fake.plan = plan.clone();
    }
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Retry,
        "{mode:?} {plan:?}"
    );
    let payout = deps.ledger.payout(&key).await.unwrap();
    assert_eq!(payout.status, PayoutStatus::Pending, "{mode:?} {plan:?}");
    assert_eq!(earnings(&deps).await, (0, 19_998, 0), "{mode:?} {plan:?}");
    deps.ledger.conservation_check().await.unwrap();
}

#[tokio::test]
async fn a_401_or_403_leaves_the_payout_pending() {
    stays_pending(Mode::KeyRolled, vec![]).await;
    stays_pending(Mode::Forbidden, vec![]).await;
}

#[tokio::test]
async fn an_unreadable_2xx_leaves_the_payout_pending() {
    stays_pending(Mode::Garbled, vec![]).await;
}

#[tokio::test]
async fn a_refusal_outside_the_closed_list_leaves_the_payout_pending() {
    let plan = vec![Misbehave::Refuse("parameter_unknown"); 3];
    stays_pending(Mode::Normal, plan).await;
    let plan = vec![Misbehave::Refuse("resource_missing"); 3];
    stays_pending(Mode::Normal, plan).await;
}

#[tokio::test]
async fn an_unreadable_or_late_answer_after_the_transfer_is_found_not_failed() {
    for plan in [Misbehave::GarbleAnswer, Misbehave::AnswerTooLate] {
        let (deps, _, key) = payout("acct_1Alice").await;
        let (fake, stripe) = fake_stripe();
        fake.lock().unwrap().plan = vec![plan];
        assert_eq!(
            dispatch(&deps, &stripe, &key).await,
            Dispatched::Finished(PayoutStatus::Paid),
            "{plan:?}"
        );
        assert_eq!(fake.lock().unwrap().transfers.len(), 1);
        assert_eq!(earnings(&deps).await, (0, 0, 19_998));
    }
}

#[tokio::test]
async fn an_insufficient_platform_balance_fails_the_payout_for_good() {
    let (deps, _, key) = payout("acct_1Alice").await;
    let (fake, stripe) = fake_stripe();
    fake.lock().unwrap().plan = vec![Misbehave::Refuse("balance_insufficient")];
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(PayoutStatus::Failed)
    );
    assert_eq!(earnings(&deps).await, (19_998, 0, 0));
    assert!(fake.lock().unwrap().transfers.is_empty());
}

#[tokio::test]
async fn a_payout_whose_deliveries_ran_out_is_paid_by_the_sweep_once() {
    let (deps, clock, key) = payout("acct_1Alice").await;
    // Stripe down for every delivery: the stream gives up on the record.
    let down = stripe_at("http://127.0.0.1:9");
    assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
    let (fake, stripe) = fake_stripe();
    let sweep = || {
        let event = lambda_runtime::LambdaEvent::new(
            coins_streams::sweep::scheduled_event(),
            lambda_runtime::Context::default(),
        );
        payout_dispatch::handle(&deps, &stripe, event)
    };
    // Within the threshold: left to the stream.
    later(&clock);
    sweep().await.unwrap();
    assert_eq!(
        deps.ledger.payout(&key).await.unwrap().status,
        PayoutStatus::Pending
    );
    // A day later, Stripe back: paid once, however often the sweep runs.
    clock.advance(jiff::SignedDuration::from_hours(25)).unwrap();
    for _ in 0..2 {
        assert!(sweep().await.unwrap().batch_item_failures.is_empty());
    }
    assert_eq!(
        deps.ledger.payout(&key).await.unwrap().status,
        PayoutStatus::Paid
    );
    assert_eq!(fake.lock().unwrap().transfers.len(), 1);
    assert_eq!(earnings(&deps).await, (0, 0, 19_998));
}
