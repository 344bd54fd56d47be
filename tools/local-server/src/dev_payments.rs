//! `POST /_dev/payments/{purchase_id}`: pays (or fails) a purchase without a card.
//!
//! With `--stripe-api-base` (localstripe), it confirms the purchase's PaymentIntent at that API
//! with a test card and answers 202; that API's own webhook then delivers the event.
//!
//! In test mode, it builds the
//! Stripe event the payment would produce (`payment_intent.succeeded` or `.payment_failed`,
//! for the purchase's PaymentIntent, its amount, currency and country unless told otherwise),
//! signs it with the webhook's secret at the wall clock's time (as Stripe does; the event's
//! `created` is the test clock's), and sends it through
//! `POST /v1/webhooks/stripe`, the path real events take; the answer is that endpoint's. This
//! route exists only here, never in a Lambda function.

use std::collections::HashMap;

use bytes::Bytes;
use coins_http::webhook::SIGNATURE_HEADER;
use coins_http::{ApiError, Problem, Route, response, serve};
use coins_ids::{PaymentIntentId, PurchaseId};
use coins_ledger::Store;
use coins_payments::stripe::{Stripe, TEST_CARD_DECLINED, TEST_CARD_SUCCEEDS};
use coins_payments::{Provider, ProviderError};
use lambda_http::http::request::Parts;
use lambda_http::http::{self, header};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;

use crate::App;

/// With `--stripe-api-base`: the PaymentIntent is confirmed at that API with a test card (one
/// that pays, or one that is declined), so the API's own webhook delivers the event and its
/// refunds find the charge (a signed event about a charge that API never saw left every refund
/// of it waiting). Answers 202: the webhook follows.
async fn confirm_at_stripe(
    stripe: &Stripe,
    ask: &DevPayment,
    payment: &PaymentIntentId,
) -> Result<Response<Body>, ApiError> {
    if ask.amount.is_some() || ask.currency.is_some() || ask.country.is_some() {
        return Err(ApiError::invalid(
            "with --stripe-api-base the test card pays what the PaymentIntent asks, from its own \
             country: amount, currency and country cannot be chosen",
        ));
    }
    let card = match ask.outcome {
        Outcome::Succeeded => TEST_CARD_SUCCEEDS,
        Outcome::Failed => TEST_CARD_DECLINED,
    };
    let status = match stripe.confirm_with_test_card(payment.as_str(), card).await {
        Ok(intent) => intent.status,
        // The declined card's answer: the intent waits for another payment method.
        Err(ProviderError::Refused { status: 402, .. }) if ask.outcome == Outcome::Failed => {
            "requires_payment_method".to_owned()
        }
        Err(error) if error.is_retryable() => return Err(ApiError::unavailable(error)),
        Err(error) => return Err(ApiError::internal(error)),
    };
    response::json(
        http::StatusCode::ACCEPTED,
        &json!({"payment_intent_id": payment, "status": status}),
    )
}

pub const PAY: Route = Route::post("/_dev/payments/{purchase_id}");
pub const ROUTES: &[Route] = &[PAY];

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Succeeded,
    Failed,
}

/// `{"outcome": "succeeded" | "failed"}`, optionally paying another amount, currency or country.
#[derive(Deserialize)]
struct DevPayment {
    outcome: Outcome,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    amount: Option<u64>,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    currency: Option<String>,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    country: Option<String>,
}

/// Largest amount a test payment may claim (in minor units): what the document says.
const MAX_AMOUNT: u64 = 999_999_999_999;

impl DevPayment {
    /// The bounds of the OpenAPI document: the event is still Stripe's shape, so a wrong amount,
    /// currency or country tests the webhook's refusals, never its parser.
    fn check(&self) -> Result<(), ApiError> {
        if self.amount.is_some_and(|amount| amount > MAX_AMOUNT) {
            return Err(ApiError::invalid(format!("amount is at most {MAX_AMOUNT}")));
        }
        let letters = |text: &Option<String>, len: usize, upper_only: bool| {
            text.as_deref().is_none_or(|text| {
                text.len() == len
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || (!upper_only && b.is_ascii_lowercase()))
            })
        };
        if !letters(&self.currency, 3, false) {
            return Err(ApiError::invalid("currency is 3 letters (ISO 4217)"));
        }
        if !letters(&self.country, 2, true) {
            return Err(ApiError::invalid(
                "country is 2 capital letters (ISO 3166-1)",
            ));
        }
        Ok(())
    }
}

pub async fn handle<S: Store>(
    app: &App<S>,
    parts: &Parts,
    body: &Bytes,
    params: HashMap<String, String>,
) -> Response<Body> {
    let mut request = Request::new(Body::from(body.to_vec()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    serve(request, |request| async move {
        let not_found = || ApiError::new(Problem::NotFound, "no such purchase");
        let purchase_id = params
            .get("purchase_id")
            .and_then(|id| PurchaseId::new(id).ok())
            .ok_or_else(not_found)?;
        let ask: DevPayment = coins_http::json_body(&request)?;
        ask.check()?;
        let purchase = app.deps.ledger.get_purchase(&purchase_id).await?;
        let payment = purchase.payment_intent_id.clone().ok_or_else(|| {
            ApiError::new(
                Problem::Forbidden,
                "the purchase has no payment yet (it was not created by POST /v1/purchases)",
            )
        })?;
        if let Provider::Stripe(stripe) = &app.payments.provider {
            return confirm_at_stripe(stripe, &ask, &payment).await;
        }
        let amount = purchase.amount;
        let now = app.clock_now();
        let kind = match ask.outcome {
            Outcome::Succeeded => "payment_intent.succeeded",
            Outcome::Failed => "payment_intent.payment_failed",
        };
        let event = json!({
            "id": format!("evt_test_{:016x}", rand::random::<u64>()),
            "object": "event",
            "type": kind,
            "created": now.as_second(),
            "data": {"object": {
                "id": payment,
                "object": "payment_intent",
                "amount": ask.amount.and_then(|a| i64::try_from(a).ok()).or(amount.minor_units()).unwrap_or_default(),
                "currency": ask.currency.unwrap_or_else(|| amount.currency().code().to_owned()).to_ascii_lowercase(),
                "status": if ask.outcome == Outcome::Succeeded { "succeeded" } else { "requires_payment_method" },
                "metadata": {"purchase_id": purchase.purchase_id, "user_id": purchase.user_id},
                "latest_charge": {
                    "id": format!("ch_test_{:016x}", rand::random::<u64>()),
                    "object": "charge",
                    "payment_method_details": {"card": {
                        "country": ask.country.unwrap_or_else(|| purchase.country.to_string()),
                    }},
                },
            }},
        })
        .to_string();
        // Signed at the wall clock, as Stripe signs: the tolerance is a transport check.
        let signature = app
            .payments
            .secret
            .sign(jiff::Timestamp::now(), event.as_bytes());
        let delivery = http::Request::post("/v1/webhooks/stripe")
            .header(header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(Bytes::from(event))
            .map_err(ApiError::internal)?;
        // Boxed: the webhook is answered by the same `App::handle` that called us.
        let answer = Box::pin(app.handle(delivery, None)).await;
        let (status, body) = answer.into_parts();
        let value: serde_json::Value =
            serde_json::from_slice(body.as_ref()).map_err(ApiError::internal)?;
        response::json(status.status, &value)
    })
    .await
}
