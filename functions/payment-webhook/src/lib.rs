//! `payment-webhook`: the payment provider tells us a web purchase was paid (or failed).
//!
//! Nothing is read from the body until its signature verifies (HMAC-SHA256 over `t.body`, 300 s
//! tolerance on our clock, constant-time comparison). A verified event is applied at most once
//! per provider event id: a redelivery answers 200 again with no second credit. A payment whose
//! amount, currency or country differs from the quote is recorded as rejected, uncredited, and
//! still acknowledged, since retrying it cannot change the outcome.

use coins_http::webhook::SIGNATURE_HEADER;
use coins_http::{ApiError, Problem, Route, WebhookSecret, body, resolve, response, serve};
use coins_ids::{EventId, PurchaseId};
use coins_ledger::{Payment, PaymentEvent, PaymentOutcome, Store};
use coins_rules::{Currency, Money};
use coins_runtime::{Deps, SdkConfig, Secret, SecretError};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/webhooks/payments` (no JWT: the signature is the authentication).
pub const PAYMENT_WEBHOOK: Route = Route::post("/v1/webhooks/payments");
pub const ROUTES: &[Route] = &[PAYMENT_WEBHOOK];

pub async fn handle<S: Store>(
    deps: &Deps<S>,
    secret: &WebhookSecret,
    req: Request,
) -> Response<Body> {
    serve(req, |req| async move {
        let (_, req) = resolve(ROUTES, req)?;
        receive(deps, secret, &req).await
    })
    .await
}

/// The event as the provider sends it.
#[derive(Deserialize)]
struct EventBody {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    data: EventData,
}

#[derive(Deserialize)]
enum EventType {
    #[serde(rename = "payment.succeeded")]
    Succeeded,
    #[serde(rename = "payment.failed")]
    Failed,
}

#[derive(Deserialize)]
struct EventData {
    purchase_id: String,
    /// A decimal string in the currency's minor digits.
    amount: String,
    currency: String,
    country: String,
}

/// Parsed once, here: the ledger gets money and a country, never the provider's strings.
impl TryFrom<EventBody> for PaymentEvent {
    type Error = ApiError;

    fn try_from(event: EventBody) -> Result<Self, ApiError> {
        let invalid = |field: &str, error: &dyn std::fmt::Display| {
            ApiError::invalid(format!("{field}: {error}"))
        };
        let data = event.data;
        let payment = match event.kind {
            EventType::Failed => Payment::Failed,
            EventType::Succeeded => {
                let currency: Currency = data
                    .currency
                    .to_ascii_uppercase()
                    .parse()
                    .map_err(|e| invalid("data.currency", &e))?;
                Payment::Succeeded {
                    paid: Money::parse(&data.amount, currency)
                        .map_err(|e| invalid("data.amount", &e))?,
                    country: data
                        .country
                        .parse()
                        .map_err(|e| invalid("data.country", &e))?,
                }
            }
        };
        Ok(PaymentEvent {
            event_id: EventId::new(event.id).map_err(|e| invalid("id", &e))?,
            purchase_id: PurchaseId::new(data.purchase_id)
                .map_err(|e| invalid("data.purchase_id", &e))?,
            payment,
        })
    }
}

/// The 200 acknowledgement: what we did with the event (the provider only needs the status).
#[derive(Serialize)]
struct Ack<'a> {
    received: bool,
    event_id: &'a str,
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

async fn receive<S: Store>(
    deps: &Deps<S>,
    secret: &WebhookSecret,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let raw = body::raw_body(req)?;
    let mut signatures = req.headers().get_all(SIGNATURE_HEADER).iter();
    let header = match (signatures.next(), signatures.next()) {
        (Some(value), None) => Some(value.to_str().map_err(|_| {
            ApiError::new(
                Problem::InvalidSignature,
                "the Payment-Signature header is not ASCII",
            )
        })?),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                Problem::InvalidSignature,
                "more than one Payment-Signature header",
            ));
        }
    };
    secret.verify(header, raw, deps.now())?;

    let event: EventBody = serde_json::from_slice(raw)
        .map_err(|error| ApiError::invalid(format!("invalid event: {error}")))?;
    let event = PaymentEvent::try_from(event)?;
    let outcome = deps.ledger.apply_payment(&event, deps.now()).await?;
    let (outcome_name, reason) = match &outcome {
        PaymentOutcome::Credited { .. } => ("credited", None),
        PaymentOutcome::Replayed => ("replayed", None),
        PaymentOutcome::AlreadySettled { .. } => ("already_settled", None),
        PaymentOutcome::Rejected { reason } => ("rejected", Some(reason.code())),
        PaymentOutcome::Failed => ("failed", None),
    };
    tracing::info!(
        event_id = %event.event_id,
        purchase_id = %event.purchase_id,
        outcome = outcome_name,
        reason,
        "payment event applied"
    );
    response::ok(&Ack {
        received: true,
        event_id: event.event_id.as_str(),
        outcome: outcome_name,
        reason,
    })
}

/// The webhook secret, once per cold start: `PAYMENT_WEBHOOK_SECRET_ARN` (Secrets Manager, on
/// AWS) or `PAYMENT_WEBHOOK_SECRET` (local runs).
pub async fn load_secret(aws: &SdkConfig) -> Result<WebhookSecret, SecretError> {
    let value = Secret::from_env("PAYMENT_WEBHOOK_SECRET")?
        .load(aws)
        .await?;
    Ok(WebhookSecret::new(value).expect("a loaded secret is never empty"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::{IdempotencyKey, UserId};
    use coins_ledger::{MemoryStore, Quote};
    use coins_rules::{Channel, QuoteItem};
    use coins_testkit::{Event, T0, assert_problem, at, memory_deps, read, zone};
    use jiff::{SignedDuration, Timestamp};
    use serde_json::{Value, json};

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_test_secret").unwrap()
    }

    fn fixture() -> Event {
        Event::load("post-payment-webhook")
    }

    /// The fixture with `body`, signed at `at` with `secret`.
    fn signed(body: &Value, secret: &WebhookSecret, at: Timestamp) -> Event {
        let text = body.to_string();
        fixture()
            .raw_body(&text)
            .header(SIGNATURE_HEADER, Some(&secret.sign(at, text.as_bytes())))
    }

    /// A pending purchase of 700 coins by alice in Japan; returns (purchase id, gross).
    async fn pending_purchase(deps: &Deps<MemoryStore>) -> (String, String) {
        let user = UserId::new("alice").unwrap();
        let priced = deps
            .price_book()
            .quote(
                "JP".parse().unwrap(),
                Channel::Web,
                QuoteItem::Package("coins_700".parse().unwrap()),
            )
            .unwrap();
        let quote = Quote::new(priced, &user, deps.now());
        deps.ledger.save_quote(&quote).await.unwrap();
        let receipt = deps
            .ledger
            .create_purchase(
                &user,
                &quote.quote_id,
                &zone("Asia/Tokyo"),
                deps.now(),
                &IdempotencyKey::new(format!("k-{}", quote.quote_id)).unwrap(),
            )
            .await
            .unwrap();
        (receipt.purchase_id.to_string(), receipt.amount.to_string())
    }

    fn succeeded(
        id: &str,
        purchase_id: &str,
        amount: &str,
        currency: &str,
        country: &str,
    ) -> Value {
        json!({
            "id": id,
            "type": "payment.succeeded",
            "data": {"purchase_id": purchase_id, "amount": amount, "currency": currency, "country": country},
        })
    }

    async fn balance(deps: &Deps<MemoryStore>) -> u64 {
        let user = UserId::new("alice").unwrap();
        deps.ledger
            .wallet(&user, &zone("Asia/Tokyo"), deps.now())
            .await
            .unwrap()
            .balance
    }

    #[tokio::test]
    async fn a_signed_payment_credits_the_purchase_once_and_replays_answer_200() {
        let (deps, _) = memory_deps(T0);
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let event = signed(
            &succeeded("evt_1", &purchase_id, &gross, "JPY", "JP"),
            &secret(),
            deps.now(),
        );
        let (status, body) = read(&handle(&deps, &secret(), event.clone().request()).await);
        assert_eq!(
            (status, body["outcome"].as_str()),
            (200, Some("credited")),
            "{body}"
        );
        let credited = balance(&deps).await;
        assert!(credited >= 700);
        let (status, body) = read(&handle(&deps, &secret(), event.request()).await);
        assert_eq!((status, body["outcome"].as_str()), (200, Some("replayed")));
        assert_eq!(balance(&deps).await, credited, "no second credit");
    }

    #[tokio::test]
    async fn a_payment_from_another_country_is_recorded_but_not_credited() {
        let (deps, _) = memory_deps(T0);
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let event = signed(
            &succeeded("evt_2", &purchase_id, &gross, "JPY", "US"),
            &secret(),
            deps.now(),
        );
        let (status, body) = read(&handle(&deps, &secret(), event.request()).await);
        assert_eq!(status, 200);
        assert_eq!(
            (body["outcome"].as_str(), body["reason"].as_str()),
            (Some("rejected"), Some("region_mismatch"))
        );
        assert_eq!(balance(&deps).await, 0);
    }

    #[tokio::test]
    async fn a_different_amount_or_currency_is_not_credited() {
        let (deps, _) = memory_deps(T0);
        let (purchase_id, _) = pending_purchase(&deps).await;
        let event = signed(
            &succeeded("evt_3", &purchase_id, "1", "JPY", "JP"),
            &secret(),
            deps.now(),
        );
        let (_, body) = read(&handle(&deps, &secret(), event.request()).await);
        assert_eq!(body["outcome"], "rejected");
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let event = signed(
            &succeeded("evt_4", &purchase_id, &gross, "USD", "JP"),
            &secret(),
            deps.now(),
        );
        let (_, body) = read(&handle(&deps, &secret(), event.request()).await);
        assert_eq!(body["outcome"], "rejected");
        assert_eq!(balance(&deps).await, 0);
    }

    #[tokio::test]
    async fn a_failed_payment_is_recorded_without_coins() {
        let (deps, _) = memory_deps(T0);
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let mut body = succeeded("evt_5", &purchase_id, &gross, "JPY", "JP");
        body["type"] = json!("payment.failed");
        let (status, ack) = read(
            &handle(
                &deps,
                &secret(),
                signed(&body, &secret(), deps.now()).request(),
            )
            .await,
        );
        assert_eq!((status, ack["outcome"].as_str()), (200, Some("failed")));
        assert_eq!(balance(&deps).await, 0);
    }

    #[tokio::test]
    async fn bad_signatures_are_rejected_before_anything_is_read() {
        let (deps, _) = memory_deps(T0);
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let body = succeeded("evt_6", &purchase_id, &gross, "JPY", "JP");
        let wrong_secret = signed(
            &body,
            &WebhookSecret::new("whsec_other").unwrap(),
            deps.now(),
        );
        let stale = signed(
            &body,
            &secret(),
            deps.now() - SignedDuration::from_secs(301),
        );
        let tampered = signed(&body, &secret(), deps.now())
            .raw_body(&succeeded("evt_6", &purchase_id, "1", "JPY", "JP").to_string());
        let unsigned = fixture()
            .raw_body(&body.to_string())
            .header(SIGNATURE_HEADER, None);
        for event in [wrong_secret, stale, tampered, unsigned] {
            assert_problem(
                &handle(&deps, &secret(), event.request()).await,
                400,
                "invalid_signature",
            );
        }
        assert_eq!(balance(&deps).await, 0);
    }

    #[tokio::test]
    async fn the_tolerance_is_measured_on_the_deps_clock() {
        let (deps, clock) = memory_deps(T0);
        let (purchase_id, gross) = pending_purchase(&deps).await;
        let event = signed(
            &succeeded("evt_7", &purchase_id, &gross, "JPY", "JP"),
            &secret(),
            at(T0),
        );
        clock.advance(SignedDuration::from_secs(300)).unwrap();
        assert_eq!(
            read(&handle(&deps, &secret(), event.request()).await).0,
            200
        );
    }

    #[tokio::test]
    async fn a_verified_but_malformed_event_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        let bad = [
            json!({"id": "evt_8", "type": "payment.refunded", "data": {"purchase_id": "pur_x", "amount": "1", "currency": "JPY", "country": "JP"}}),
            json!({"id": "evt_9", "type": "payment.succeeded", "data": {"purchase_id": "pur_x", "amount": 1100, "currency": "JPY", "country": "JP"}}),
            json!({"id": "evt_10", "type": "payment.succeeded"}),
            json!({"id": "", "type": "payment.succeeded", "data": {"purchase_id": "pur_x", "amount": "1", "currency": "JPY", "country": "JP"}}),
        ];
        for body in bad {
            let response = handle(
                &deps,
                &secret(),
                signed(&body, &secret(), deps.now()).request(),
            )
            .await;
            assert_problem(&response, 400, "invalid_request");
        }
    }

    #[tokio::test]
    async fn an_event_for_an_unknown_purchase_is_not_found() {
        let (deps, _) = memory_deps(T0);
        let body = succeeded("evt_11", "pur_unknown", "1100", "JPY", "JP");
        let response = handle(
            &deps,
            &secret(),
            signed(&body, &secret(), deps.now()).request(),
        )
        .await;
        assert_problem(&response, 404, "not_found");
    }
}
