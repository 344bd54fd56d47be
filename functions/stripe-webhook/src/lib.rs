//! `stripe-webhook`: Stripe tells us what happened to a payment.
//!
//! Nothing is read from the body until its `Stripe-Signature` verifies (HMAC-SHA256 over
//! `t.body`, 300 s tolerance on the machine's wall clock, constant-time comparison). A verified event is
//! applied at most once per event id:
//!
//! - `payment_intent.succeeded` credits the purchase once if the amount, currency and the
//!   card's country match its quote; any payment that cannot be credited (a mismatch, an expired
//!   or failed purchase, a second payment, an unknown purchase) is returned: a refund of the
//!   whole amount is recorded with the reason, and dispatched like any refund.
//! - `payment_intent.payment_failed`: a pending purchase shows as failed; it is not ended, since
//!   the buyer may retry the same PaymentIntent, and its success inside the payment window
//!   still credits it.
//! - `charge.dispute.created` reverses the purchase (coins back, debt where spent);
//!   `charge.dispute.closed` as won undoes it.
//! - `charge.refunded` by a refund we did not make (the Dashboard) reverses the purchase's share
//!   of it; our own refunds (named by our instruction id in their metadata) change nothing.
//! - `radar.early_fraud_warning.created` refunds the purchase while its coins are unspent, else
//!   restricts the buyer's account and reverses the purchase.
//! - Anything else: 200, ignored.
//!
//! Every verified event is answered 200, an unknown purchase included: Stripe would otherwise
//! retry it for days.

use coins_http::webhook::SIGNATURE_HEADER;
use coins_http::{ApiError, Problem, Route, WebhookSecret, body, resolve, response, serve};
use coins_ids::{EventId, PaymentIntentId, PurchaseId, ReversalRef};
use coins_ledger::{Paid, Payment, PaymentEvent, ReversalEvent, Share, Store};
use coins_payments::Provider;
use coins_payments::stripe::{Charge, Dispute, EarlyFraudWarning, Event, PaymentIntent};
use coins_runtime::{Deps, SdkConfig, Secret, SecretError};
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// `POST /v1/webhooks/stripe` (no JWT: the signature is the authentication).
pub const STRIPE_WEBHOOK: Route = Route::post("/v1/webhooks/stripe");
pub const ROUTES: &[Route] = &[STRIPE_WEBHOOK];

/// What the webhook runs with besides the ledger: Stripe (to read a card's country) and the
/// endpoint's signing secret.
#[derive(Clone, Debug)]
pub struct Webhook {
    pub provider: Provider,
    pub secret: WebhookSecret,
}

/// Loaded once per cold start: `STRIPE_WEBHOOK_SECRET_ARN` (Secrets Manager) or
/// `STRIPE_WEBHOOK_SECRET`, and Stripe itself ([`Provider::from_env`]).
pub async fn load(aws: &SdkConfig) -> Result<Webhook, SecretError> {
    let secret = Secret::from_env("STRIPE_WEBHOOK_SECRET")?.load(aws).await?;
    Ok(Webhook {
        provider: Provider::from_env(aws).await?,
        secret: WebhookSecret::new(secret).expect("a loaded secret is never empty"),
    })
}

pub async fn handle<S: Store>(deps: &Deps<S>, webhook: &Webhook, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (_, req) = resolve(ROUTES, req)?;
        receive(deps, webhook, &req).await
    })
    .await
}

/// The 200 acknowledgement: what we did with the event (Stripe only needs the status).
#[derive(Serialize)]
struct Ack<'a> {
    received: bool,
    event_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ignored: bool,
}

async fn receive<S: Store>(
    deps: &Deps<S>,
    webhook: &Webhook,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let raw = body::raw_body(req)?;
    let mut signatures = req.headers().get_all(SIGNATURE_HEADER).iter();
    let header = match (signatures.next(), signatures.next()) {
        (Some(value), None) => Some(value.to_str().map_err(|_| {
            ApiError::new(
                Problem::InvalidSignature,
                "the Stripe-Signature header is not ASCII",
            )
        })?),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Problem::InvalidSignature,
                "more than one Stripe-Signature header",
            ));
        }
    };
    // On the wall clock, never the ledger's: see `verify_now`.
    webhook.secret.verify_now(header, raw)?;

    let event: Event = serde_json::from_slice(raw)
        .map_err(|error| ApiError::invalid(format!("invalid event: {error}")))?;
    let outcome = match event.kind.as_str() {
        "payment_intent.succeeded" => Some(payment(deps, webhook, &event, true).await?),
        "payment_intent.payment_failed" => Some(payment(deps, webhook, &event, false).await?),
        "charge.dispute.created" => Some(dispute(deps, &event, true).await?),
        "charge.dispute.closed" => Some(dispute(deps, &event, false).await?),
        "charge.refunded" => Some(refunded(deps, webhook, &event).await?),
        "radar.early_fraud_warning.created" => Some(fraud_warning(deps, webhook, &event).await?),
        _ => None,
    };
    tracing::info!(event_id = %event.id, kind = %event.kind, outcome, "stripe event");
    response::ok(&Ack {
        received: true,
        event_id: &event.id,
        outcome,
        ignored: outcome.is_none(),
    })
}

/// The object of `event` as `T`, or 400: a verified event we cannot read is a bug somewhere,
/// and 400 makes Stripe retry it while we look.
fn object<T: serde::de::DeserializeOwned>(event: &Event) -> Result<T, ApiError> {
    event
        .object()
        .map_err(|error| ApiError::invalid(format!("event {} object: {error}", event.id)))
}

fn event_id(event: &Event) -> Result<EventId, ApiError> {
    EventId::new(&event.id).map_err(|error| ApiError::invalid(format!("event id: {error}")))
}

async fn payment<S: Store>(
    deps: &Deps<S>,
    webhook: &Webhook,
    event: &Event,
    succeeded: bool,
) -> Result<&'static str, ApiError> {
    let intent: PaymentIntent = object(event)?;
    let payment_intent_id = PaymentIntentId::new(&intent.id)
        .map_err(|error| ApiError::invalid(format!("payment intent id: {error}")))?;
    // A purchase id we could never have minted names no purchase: returned as unknown.
    let purchase_id = intent
        .metadata
        .get("purchase_id")
        .and_then(|id| PurchaseId::new(id).ok());
    let payment = if succeeded {
        let country = webhook
            .provider
            .card_country(&intent)
            .await
            .map_err(ApiError::unavailable)?
            .and_then(|country| country.parse().ok());
        Payment::Succeeded {
            paid: Paid::new(intent.amount, &intent.currency),
            country,
        }
    } else {
        Payment::Failed
    };
    let event = PaymentEvent {
        event_id: event_id(event)?,
        kind: event.kind.clone(),
        payment_intent_id,
        purchase_id,
        payment,
    };
    let outcome = deps.ledger.apply_payment(&event, deps.now()).await?;
    Ok(outcome.name())
}

/// A dispute opened takes the money back; only one closed as won gives it back (a lost or
/// warning closure changes nothing).
async fn dispute<S: Store>(
    deps: &Deps<S>,
    event: &Event,
    opened: bool,
) -> Result<&'static str, ApiError> {
    let dispute: Dispute = object(event)?;
    if !opened && dispute.status != "won" {
        return Ok("ignored");
    }
    let Some(payment) = dispute
        .payment_intent
        .as_deref()
        .and_then(|id| PaymentIntentId::new(id).ok())
    else {
        tracing::warn!(dispute = %dispute.id, "dispute without a payment intent");
        return Ok("ignored");
    };
    let Some(purchase) = deps.ledger.purchase_for_payment(&payment).await? else {
        tracing::warn!(dispute = %dispute.id, %payment, "dispute of a payment no purchase has");
        return Ok("ignored");
    };
    let reversal = ReversalEvent {
        event_id: event_id(event)?,
        kind: event.kind.clone(),
        purchase_id: purchase.purchase_id,
        by: ReversalRef::new(&dispute.id)
            .map_err(|error| ApiError::invalid(format!("dispute id: {error}")))?,
        share: None,
    };
    let now = deps.now();
    let outcome = if opened {
        deps.ledger.reverse_purchase(&reversal, now).await?
    } else {
        deps.ledger.undo_reversal(&reversal, now).await?
    };
    Ok(outcome.name())
}

/// A charge refunded (wholly or in part): a refund of ours (every one carries our instruction id
/// in its metadata) changes nothing; refunds made outside the ledger (the Dashboard) reverse
/// the purchase's share of what they gave back, to coin debt where spent, once per share (a
/// later, larger refund takes the difference).
async fn refunded<S: Store>(
    deps: &Deps<S>,
    webhook: &Webhook,
    event: &Event,
) -> Result<&'static str, ApiError> {
    let charge: Charge = object(event)?;
    let payment = charge
        .payment_intent
        .as_deref()
        .and_then(|id| PaymentIntentId::new(id).ok());
    let (Some(payment), Some(amount)) = (payment, charge.amount) else {
        tracing::warn!(charge = %charge.id, "refunded charge without a payment intent or amount");
        return Ok("ignored");
    };
    let Some(purchase) = deps.ledger.purchase_for_payment(&payment).await? else {
        return Ok("ignored");
    };
    // Asked of Stripe, not read from the event: its list of refunds is not in the event, and a
    // lookup that fails answers 503, so Stripe delivers it again.
    let outside = webhook
        .provider
        .refunded_outside(&payment)
        .await
        .map_err(ApiError::unavailable)?;
    if outside <= 0 {
        return Ok("ignored");
    }
    let units = |minor: i64| {
        u32::try_from(minor).map_err(|_| ApiError::invalid(format!("charge amount {minor}")))
    };
    let reversal = ReversalEvent {
        event_id: event_id(event)?,
        kind: event.kind.clone(),
        purchase_id: purchase.purchase_id,
        by: ReversalRef::new(&charge.id)
            .map_err(|error| ApiError::invalid(format!("charge id: {error}")))?,
        share: Some(Share {
            refunded: units(outside.min(amount))?,
            of: units(amount)?,
        }),
    };
    Ok(deps
        .ledger
        .reverse_purchase(&reversal, deps.now())
        .await?
        .name())
}

/// Radar's early fraud warning: the purchase is refunded while its coins are unspent, else the
/// buyer's account is restricted and the purchase reversed ([`coins_ledger::Ledger::fraud_warning`]).
async fn fraud_warning<S: Store>(
    deps: &Deps<S>,
    webhook: &Webhook,
    event: &Event,
) -> Result<&'static str, ApiError> {
    let warning: EarlyFraudWarning = object(event)?;
    let payment = match warning.payment_intent {
        Some(payment) => Some(payment),
        None => webhook
            .provider
            .payment_of_charge(&warning.charge)
            .await
            .map_err(ApiError::unavailable)?,
    };
    let Some(payment) = payment.and_then(|id| PaymentIntentId::new(id).ok()) else {
        tracing::error!(warning = %warning.id, charge = %warning.charge,
            "fraud warning without a payment intent");
        return Ok("ignored");
    };
    let Some(purchase) = deps.ledger.purchase_for_payment(&payment).await? else {
        tracing::warn!(warning = %warning.id, %payment, "fraud warning of a payment no purchase has");
        return Ok("ignored");
    };
    let reversal = ReversalEvent {
        event_id: event_id(event)?,
        kind: event.kind.clone(),
        purchase_id: purchase.purchase_id,
        by: ReversalRef::new(&warning.id)
            .map_err(|error| ApiError::invalid(format!("warning id: {error}")))?,
        share: None,
    };
    Ok(deps
        .ledger
        .fraud_warning(&reversal, deps.now())
        .await?
        .name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::UserId;
    use coins_ledger::{MemoryStore, PurchaseStatus};
    use coins_payments::test_mode::TestMode;
    use coins_payments::{NewPayment, Provider};
    use coins_testkit::{
        Event as Fixture, T0, assert_problem, buy_package, memory_deps, read, zone,
    };
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

    fn intent(
        purchase: &PurchaseId,
        payment: &PaymentIntentId,
        amount: i64,
        country: &str,
    ) -> Value {
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
        let (code, ack) =
            deliver(&deps, &webhook, "customer.created", json!({"id": "cus_1"})).await;
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
}
