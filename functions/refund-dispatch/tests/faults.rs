//! Refund dispatch against a misbehaving Stripe, spoken to over real HTTP on loopback: down
//! (connection refused), failing (500), hanging (timeout), and losing its answer after making
//! the refund. Whatever happens, one instruction becomes one refund.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use coins_ids::{PurchaseId, UserId};
use coins_ledger::store::Key;
use coins_ledger::table::{Row, keys};
use coins_ledger::{MemoryStore, RefundBy, RefundStatus};
use coins_payments::Provider;
use coins_payments::stripe::{SecretKey, Stripe};
use coins_runtime::Deps;
use coins_testkit::http::json_response;
use coins_testkit::{T0, buy_package, memory_deps};
use http_body_util::Full;
use hyper::Response;
use hyper::http::request::Parts;
use refund_dispatch::{Dispatched, dispatch};

/// What the fake does with the next refund creations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Misbehave {
    /// Answer 500 without making the refund.
    Fail,
    /// Make the refund, then answer 500: the answer is lost.
    LoseAnswer,
    /// Make nothing and never answer in time.
    Hang,
    /// Make the refund, lose the answer, and from then on refuse our key (401).
    LoseAnswerThenRollKey,
    /// Make the refund, then answer 200 with a body that is not a refund.
    GarbleAnswer,
    /// Refuse it with HTTP 400, `invalid_request_error` and this code.
    Refuse(&'static str),
}

#[derive(Default)]
struct FakeStripe {
    /// Made refunds: (id, payment intent, our refund id).
    refunds: Vec<(String, String, String)>,
    plan: Vec<Misbehave>,
    /// Every call, lookups included, answers 401: the key was rolled.
    key_rolled: bool,
}

fn unreadable() -> Response<Full<Bytes>> {
    Response::builder()
        .status(200)
        .body(Full::new(Bytes::from_static(b"<html>maintenance</html>")))
        .unwrap()
}

type Shared = Arc<Mutex<FakeStripe>>;

fn json(status: u16, body: serde_json::Value) -> Response<Full<Bytes>> {
    json_response(status, &body)
}

async fn answer(fake: Shared, parts: Parts, body: Bytes) -> Response<Full<Bytes>> {
    let query = parts.uri.query().unwrap_or("").to_owned();
    let post = parts.method == hyper::Method::POST;
    let field = |text: &str, name: &str| form_field(text, name).unwrap_or_default();
    if fake.lock().unwrap().key_rolled {
        return json(
            401,
            serde_json::json!({"error": {"type": "invalid_request_error",
                                         "message": "Invalid API Key provided"}}),
        );
    }
    if !post {
        let payment = field(&query, "payment_intent");
        let data: Vec<_> = fake
            .lock()
            .unwrap()
            .refunds
            .iter()
            .filter(|(_, intent, _)| *intent == payment)
            .map(|(id, intent, refund_id)| {
                serde_json::json!({
                "id": id, "object": "refund", "amount": 1100, "currency": "jpy",
                "status": "succeeded", "payment_intent": intent,
                "metadata": {"refund_id": refund_id}})
            })
            .collect();
        return json(
            200,
            serde_json::json!({"object": "list", "data": data, "has_more": false}),
        );
    }
    let form = String::from_utf8(body.to_vec()).unwrap();
    let behaviour = {
        let mut fake = fake.lock().unwrap();
        if fake.plan.is_empty() {
            None
        } else {
            Some(fake.plan.remove(0))
        }
    };
    match behaviour {
        Some(Misbehave::Fail) => {
            return json(500, serde_json::json!({"error": {"message": "boom"}}));
        }
        Some(Misbehave::Hang) => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return json(500, serde_json::json!({}));
        }
        Some(Misbehave::Refuse(code)) => {
            return json(
                400,
                serde_json::json!({"error": {"type": "invalid_request_error", "code": code,
                                             "message": "refused"}}),
            );
        }
        _ => {}
    }
    let id = format!("re_{}", fake.lock().unwrap().refunds.len() + 1);
    let intent = field(&form, "payment_intent");
    let refund_id = field(&form, "metadata[refund_id]");
    fake.lock()
        .unwrap()
        .refunds
        .push((id.clone(), intent.clone(), refund_id));
    match behaviour {
        Some(Misbehave::LoseAnswer) => {
            return json(500, serde_json::json!({"error": {"message": "lost"}}));
        }
        Some(Misbehave::LoseAnswerThenRollKey) => {
            fake.lock().unwrap().key_rolled = true;
            return json(500, serde_json::json!({"error": {"message": "lost"}}));
        }
        Some(Misbehave::GarbleAnswer) => return unreadable(),
        _ => {}
    }
    json(
        200,
        serde_json::json!({"id": id, "object": "refund", "amount": 1100,
        "currency": "jpy", "status": "succeeded", "payment_intent": intent, "metadata": {}}),
    )
}

fn form_field(text: &str, name: &str) -> Option<String> {
    text.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        let key = key.replace("%5B", "[").replace("%5D", "]");
        (key == name).then(|| value.to_owned())
    })
}

/// A fake Stripe on a free loopback port.
async fn fake_stripe() -> (Shared, String) {
    let fake: Shared = Arc::default();
    let served = fake.clone();
    let base = coins_testkit::http::serve(move |parts, body| answer(served.clone(), parts, body));
    (fake, base)
}

fn stripe_at(base: &str) -> Provider {
    Provider::Stripe(Stripe::with_timeout(
        base,
        SecretKey::new("sk_test_faults"),
        Duration::from_millis(500),
    ))
}

/// A refunded purchase; the key of its refund instruction.
async fn refund_instruction(deps: &Deps<MemoryStore>) -> Key {
    let purchase = buy_package(deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
    let receipt = deps
        .ledger
        .refund_purchase(
            &RefundBy::Owner(UserId::new("alice").unwrap()),
            &purchase,
            deps.now(),
            None,
        )
        .await
        .unwrap();
    instruction_key(deps, &purchase, &receipt.refund_id).await
}

async fn instruction_key(
    deps: &Deps<MemoryStore>,
    purchase: &PurchaseId,
    refund_id: &coins_ids::RefundId,
) -> Key {
    let payment = deps
        .ledger
        .get_purchase(purchase)
        .await
        .unwrap()
        .payment_intent_id
        .unwrap();
    keys::refund(Some(purchase), &payment, refund_id)
}

async fn status(deps: &Deps<MemoryStore>, key: &Key) -> (RefundStatus, Option<String>, u32) {
    let instruction = deps.ledger.refund_instruction(key).await.unwrap();
    assert_eq!(&instruction.key(), key);
    (
        instruction.status,
        instruction.provider_refund_id,
        instruction.attempts,
    )
}

/// Lets the claim of the previous delivery lapse, as the next delivery would find it.
fn later(clock: &coins_runtime::TestClock) {
    clock
        .advance(coins_ledger::CLAIM_LEASE + jiff::SignedDuration::from_secs(1))
        .unwrap();
}

#[tokio::test]
async fn stripe_down_then_up_makes_one_refund() {
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let down = stripe_at("http://127.0.0.1:9");
    assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
    assert_eq!(status(&deps, &key).await.0, RefundStatus::Pending);
    later(&clock);
    let (fake, base) = fake_stripe().await;
    let up = stripe_at(&base);
    assert_eq!(
        dispatch(&deps, &up, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(
        status(&deps, &key).await,
        (RefundStatus::Succeeded, Some("re_1".into()), 2)
    );
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn a_500_is_retried_with_backoff_in_the_same_delivery() {
    let (deps, _) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    fake.lock().unwrap().plan = vec![Misbehave::Fail, Misbehave::Fail];
    let stripe = stripe_at(&base);
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn a_timeout_then_a_later_delivery_makes_one_refund() {
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    fake.lock().unwrap().plan = vec![Misbehave::Hang; 3];
    let stripe = stripe_at(&base);
    assert_eq!(dispatch(&deps, &stripe, &key).await, Dispatched::Retry);
    later(&clock);
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn a_lost_answer_after_stripe_made_the_refund_is_found_not_repeated() {
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    // Made, answer lost; then Stripe fails the retries of this delivery.
    fake.lock().unwrap().plan = vec![Misbehave::LoseAnswer];
    let stripe = stripe_at(&base);
    // The in-delivery retry lists the refunds and finds the one made.
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(status(&deps, &key).await.1, Some("re_1".into()));
    // A redelivery of the same record changes nothing.
    later(&clock);
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn two_concurrent_dispatchers_make_one_refund() {
    let (deps, _) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    let stripe = stripe_at(&base);
    let (first, second) = tokio::join!(
        dispatch(&deps, &stripe, &key),
        dispatch(&deps, &stripe, &key)
    );
    let outcomes = [first, second];
    assert!(outcomes.contains(&Dispatched::Finished(RefundStatus::Succeeded)));
    assert!(outcomes.contains(&Dispatched::Retry), "{outcomes:?}");
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn stripe_down_for_many_deliveries_never_fails_the_instruction() {
    // Stripe may have made the refund and lost the answer: only its word ends the instruction.
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let down = stripe_at("http://127.0.0.1:9");
    for _ in 0..12 {
        assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
        later(&clock);
    }
    let (status, _, attempts) = status(&deps, &key).await;
    assert_eq!((status, attempts), (RefundStatus::Pending, 12));
}

#[tokio::test]
async fn a_refund_made_with_its_answer_lost_then_401_on_the_lookup_stays_pending_and_is_made_once()
{
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    fake.lock().unwrap().plan = vec![Misbehave::LoseAnswerThenRollKey];
    let stripe = stripe_at(&base);
    for _ in 0..4 {
        assert_eq!(dispatch(&deps, &stripe, &key).await, Dispatched::Retry);
        later(&clock);
    }
    assert_eq!(status(&deps, &key).await.0, RefundStatus::Pending);
    fake.lock().unwrap().key_rolled = false;
    assert_eq!(
        dispatch(&deps, &stripe, &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(status(&deps, &key).await.1, Some("re_1".into()));
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn an_unreadable_2xx_after_the_refund_is_found_not_failed() {
    let (deps, _) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    let (fake, base) = fake_stripe().await;
    fake.lock().unwrap().plan = vec![Misbehave::GarbleAnswer];
    assert_eq!(
        dispatch(&deps, &stripe_at(&base), &key).await,
        Dispatched::Finished(RefundStatus::Succeeded)
    );
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
}

#[tokio::test]
async fn only_a_listed_refusal_fails_the_instruction() {
    for (code, expected) in [
        ("resource_missing", Dispatched::Retry),
        ("parameter_unknown", Dispatched::Retry),
        (
            "charge_already_refunded",
            Dispatched::Finished(RefundStatus::Failed),
        ),
        (
            "charge_disputed",
            Dispatched::Finished(RefundStatus::Failed),
        ),
    ] {
        let (deps, _) = memory_deps(T0);
        let key = refund_instruction(&deps).await;
        let (fake, base) = fake_stripe().await;
        fake.lock().unwrap().plan = vec![Misbehave::Refuse(code); 3];
        assert_eq!(
            dispatch(&deps, &stripe_at(&base), &key).await,
            expected,
            "{code}"
        );
        assert!(fake.lock().unwrap().refunds.is_empty());
    }
}

/// The scheduled sweep through the function's entry point.
async fn sweep(deps: &Deps<MemoryStore>, stripe: &Provider) {
    let event = lambda_runtime::LambdaEvent::new(
        coins_streams::sweep::scheduled_event(),
        lambda_runtime::Context::default(),
    );
    let answer = refund_dispatch::handle(deps, stripe, event).await.unwrap();
    assert!(answer.batch_item_failures.is_empty());
}

#[tokio::test]
async fn an_instruction_whose_deliveries_ran_out_is_sent_by_the_sweep_once() {
    let (deps, clock) = memory_deps(T0);
    let key = refund_instruction(&deps).await;
    // Stripe down for every delivery: the stream gives up (its batch goes to the dead-letter
    // queue, and the record leaves the stream after 24 hours).
    let down = stripe_at("http://127.0.0.1:9");
    assert_eq!(dispatch(&deps, &down, &key).await, Dispatched::Retry);
    let (fake, base) = fake_stripe().await;
    let up = stripe_at(&base);
    // Within the sweep's threshold, the stream may still be at it: left alone.
    later(&clock);
    sweep(&deps, &up).await;
    assert_eq!(status(&deps, &key).await.0, RefundStatus::Pending);
    // A day later, Stripe back: the sweep sends it, and a second sweep finds nothing owed.
    clock.advance(jiff::SignedDuration::from_hours(25)).unwrap();
    for _ in 0..2 {
        sweep(&deps, &up).await;
    }
    assert_eq!(status(&deps, &key).await.0, RefundStatus::Succeeded);
    assert_eq!(fake.lock().unwrap().refunds.len(), 1);
    assert!(
        deps.ledger
            .all_outstanding(deps.now())
            .await
            .unwrap()
            .is_empty()
    );
}
