//! `payment-webhook`: the payment provider tells us a web purchase was paid (or failed).
//!
//! Nothing is read from the body until its signature verifies (HMAC-SHA256 over `t.body`, 300 s
//! tolerance on our clock, constant-time comparison). A verified event is applied at most once
//! per provider event id: a redelivery answers 200 again with no second credit. A payment whose
//! amount, currency or country differs from the quote is recorded as rejected, uncredited, and
//! still acknowledged, since retrying it cannot change the outcome.

use coins_http::webhook::SIGNATURE_HEADER;
use coins_http::{
    ApiError, Deps, Route, WebhookSecret, WebhookSecretSource, body, resolve, response, serve,
};
use coins_ledger::{EventId, PaymentEvent, PaymentKind, PaymentOutcome, PurchaseId, Store};
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
    /// A decimal string, compared exactly with the quoted gross by the ledger.
    amount: String,
    currency: String,
    country: String,
}

impl TryFrom<EventBody> for PaymentEvent {
    type Error = ApiError;

    fn try_from(event: EventBody) -> Result<Self, ApiError> {
        Ok(PaymentEvent {
            event_id: EventId::new(event.id).map_err(|e| ApiError::invalid(format!("id: {e}")))?,
            kind: match event.kind {
                EventType::Succeeded => PaymentKind::Succeeded,
                EventType::Failed => PaymentKind::Failed,
            },
            purchase_id: PurchaseId::new(event.data.purchase_id)
                .map_err(|e| ApiError::invalid(format!("data.purchase_id: {e}")))?,
            amount: event.data.amount,
            currency: event.data.currency,
            country: event.data.country,
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
            ApiError::InvalidSignature("the Payment-Signature header is not ASCII".into())
        })?),
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidSignature(
                "more than one Payment-Signature header".into(),
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

/// Why the webhook secret could not be loaded at cold start.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("reading the webhook secret from Secrets Manager failed: {0}")]
    SecretsManager(String),
    #[error("the webhook secret {arn} has no string value")]
    NoString { arn: String },
    #[error("the webhook secret is empty")]
    Empty,
}

/// Resolves the secret once per cold start: from Secrets Manager by ARN on AWS, or the plain
/// value for local runs.
pub async fn load_secret(
    source: WebhookSecretSource,
    aws: &aws_config::SdkConfig,
) -> Result<WebhookSecret, SecretError> {
    match source {
        WebhookSecretSource::Plain(secret) => Ok(secret),
        WebhookSecretSource::SecretsManager { arn } => {
            let output = aws_sdk_secretsmanager::Client::new(aws)
                .get_secret_value()
                .secret_id(&arn)
                .send()
                .await
                .map_err(|error| SecretError::SecretsManager(error.to_string()))?;
            let value = output
                .secret_string()
                .ok_or(SecretError::NoString { arn })?;
            WebhookSecret::new(value.trim()).map_err(|_| SecretError::Empty)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_http::testing::{Event, T0, assert_problem, at, memory_deps, read};
    use coins_ledger::{IdempotencyKey, MemoryStore, UserId};
    use coins_rules::{Channel, QuoteItem};
    use jiff::{SignedDuration, Timestamp};
    use serde_json::{Value, json};

    fn secret() -> WebhookSecret {
        WebhookSecret::new("whsec_test_secret").unwrap()
    }

    fn fixture() -> Event {
        Event::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/post-webhook.json"
        ))
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
        let quote = coins_http::convert::stored_quote(&priced, &user, deps.now());
        deps.ledger.save_quote(&quote).await.unwrap();
        let receipt = deps
            .ledger
            .create_purchase(
                &user,
                &quote.quote_id,
                "Asia/Tokyo",
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
            .wallet(&user, "Asia/Tokyo", deps.now())
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
