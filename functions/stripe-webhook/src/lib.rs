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
    let reversal = reversal_event(event, purchase.purchase_id, &dispute.id, None)?;
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
    let share = Share {
        refunded: units(outside.min(amount))?,
        of: units(amount)?,
    };
    let reversal = reversal_event(event, purchase.purchase_id, &charge.id, Some(share))?;
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
    let reversal = reversal_event(event, purchase.purchase_id, &warning.id, None)?;
    Ok(deps
        .ledger
        .fraud_warning(&reversal, deps.now())
        .await?
        .name())
}

/// The reversal `event` asks of `purchase`, named by the Stripe object that caused it (a
/// dispute, a charge refunded outside the ledger, a fraud warning): its id keeps the reversal
/// once per cause.
fn reversal_event(
    event: &Event,
    purchase: PurchaseId,
    by: &str,
    share: Option<Share>,
) -> Result<ReversalEvent, ApiError> {
    Ok(ReversalEvent {
        event_id: event_id(event)?,
        kind: event.kind.clone(),
        purchase_id: purchase,
        by: ReversalRef::new(by)
            .map_err(|error| ApiError::invalid(format!("reversal cause {by:?}: {error}")))?,
        share,
    })
}

#[cfg(test)]
mod tests;
