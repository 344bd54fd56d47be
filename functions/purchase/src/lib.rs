//! `purchase`: turns the caller's quote into a pending purchase at exactly the quoted price,
//! with a Stripe PaymentIntent the app confirms; and shows the caller's purchases.
//!
//! Idempotent on the `Idempotency-Key` header: the same key and body return the first purchase
//! and its payment; the same key with another quote is `idempotency_key_reused`. The
//! PaymentIntent carries the purchase id as Stripe's own `Idempotency-Key` and in its metadata,
//! so a retry after Stripe answered but we did not never makes a second one that a buyer could
//! pay (a concurrent duplicate is canceled). Coins are credited later, by the Stripe webhook,
//! never here.

use coins_http::{
    ApiError, Claims, IdempotencyKey, Problem, Route, json_body, page, path_param, resolve,
    response, serve,
};
use coins_ids::{PaymentIntentId, PurchaseId, QuoteId};
use coins_ledger::{Amount, DEFAULT_PAGE, MAX_PAGE, PurchaseReceipt, Store};
use coins_payments::{NewPayment, Provider, ProviderPayment};
use coins_rules::Channel;
use coins_runtime::Deps;
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/purchases`.
pub const CREATE_PURCHASE: Route = Route::post("/v1/purchases");
/// `GET /v1/purchases/{purchase_id}`.
pub const GET_PURCHASE: Route = Route::get("/v1/purchases/{purchase_id}");
/// `GET /v1/purchases?limit=&cursor=`.
pub const LIST_PURCHASES: Route = Route::get("/v1/purchases");
pub const ROUTES: &[Route] = &[CREATE_PURCHASE, GET_PURCHASE, LIST_PURCHASES];

pub async fn handle<S: Store>(deps: &Deps<S>, provider: &Provider, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        match route {
            CREATE_PURCHASE => create_purchase(deps, provider, &req).await,
            GET_PURCHASE => get_purchase(deps, &req).await,
            LIST_PURCHASES => list_purchases(deps, &req).await,
            _ => Err(coins_http::unrouted(route)),
        }
    })
    .await
}

#[derive(Deserialize)]
struct PurchaseRequest {
    quote_id: String,
}

#[derive(Serialize)]
struct PaymentBody<'a> {
    provider: &'static str,
    payment_intent_id: &'a PaymentIntentId,
    client_secret: &'a str,
}

#[derive(Serialize)]
struct PurchaseBody<'a> {
    purchase_id: &'a PurchaseId,
    status: &'a str,
    total_coins: u64,
    amount: Amount,
    expires_at: Timestamp,
    payment: PaymentBody<'a>,
}

async fn create_purchase<S: Store>(
    deps: &Deps<S>,
    provider: &Provider,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let key = IdempotencyKey::from_request(req)?.into_ledger()?;
    let request: PurchaseRequest = json_body(req)?;
    let quote_id = QuoteId::new(request.quote_id)
        .map_err(|error| ApiError::invalid(format!("quote_id: {error}")))?;
    let now = deps.now();
    claims.check_age(now)?;
    let quote = deps.ledger.get_quote(&claims.user_id, &quote_id).await?;
    let priced = &quote.priced;
    if priced.channel() != Channel::Web {
        return Err(ApiError::new(
            Problem::ChannelNotAllowed,
            format!(
                "a {} quote is bought in the app, through its store",
                priced.channel().as_str()
            ),
        ));
    }
    // The quote is bound to the billing country it was priced for; if the caller's billing
    // country changed since, the price is not theirs to pay.
    if priced.country() != claims.billing_country {
        return Err(ApiError::new(
            Problem::RegionMismatch,
            format!(
                "the quote was priced for {}, your billing country is {}",
                priced.country(),
                claims.billing_country
            ),
        ));
    }
    let receipt = deps
        .ledger
        .create_purchase(&claims.user_id, &quote_id, &claims.zone, now, &key)
        .await?;
    let payment = payment_of(deps, provider, &receipt, &claims).await?;
    tracing::info!(purchase_id = %receipt.purchase_id, payment_intent_id = %payment.id, "purchase created");
    response::created(&PurchaseBody {
        purchase_id: &receipt.purchase_id,
        status: receipt.status.as_str(),
        total_coins: receipt.total_coins,
        amount: receipt.amount.into(),
        expires_at: receipt.expires_at,
        payment: PaymentBody {
            provider: "stripe",
            payment_intent_id: &payment.id,
            client_secret: &payment.client_secret,
        },
    })
}

/// The purchase's payment: the one paired with it before (a retried request), or a new one,
/// paired now. Stripe being down is a 503: the same request may be retried with the same key.
async fn payment_of<S: Store>(
    deps: &Deps<S>,
    provider: &Provider,
    receipt: &PurchaseReceipt,
    claims: &Claims,
) -> Result<ProviderPayment, ApiError> {
    let purchase = deps.ledger.get_purchase(&receipt.purchase_id).await?;
    if let Some(paired) = &purchase.payment_intent_id {
        return provider.payment(paired).await.map_err(provider_error);
    }
    let created = provider
        .create_payment(&NewPayment {
            purchase_id: &receipt.purchase_id,
            user_id: &claims.user_id,
            amount: receipt.amount,
        })
        .await
        .map_err(provider_error)?;
    let paired = deps
        .ledger
        .attach_payment(&receipt.purchase_id, &created.id)
        .await?;
    if paired == created.id {
        return Ok(created);
    }
    // A concurrent request paired its own payment first: ours must never be paid.
    if let Err(error) = provider.cancel_payment(&created.id).await {
        tracing::warn!(payment_intent_id = %created.id, %error, "duplicate payment not canceled");
    }
    provider.payment(&paired).await.map_err(provider_error)
}

/// Stripe unavailable is a 503 (retry with the same key); anything else is ours to look at.
fn provider_error(error: coins_payments::ProviderError) -> ApiError {
    if error.is_retryable() {
        ApiError::unavailable(error)
    } else {
        ApiError::internal(error)
    }
}

async fn get_purchase<S: Store>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    // An id that cannot exist is simply not found.
    let purchase_id = PurchaseId::new(path_param(req, "purchase_id")?)
        .map_err(|_| ApiError::new(Problem::NotFound, "no such purchase"))?;
    let view = deps
        .ledger
        .purchase_view(Some(&claims.user_id), &purchase_id, deps.now())
        .await?;
    response::ok(&view)
}

async fn list_purchases<S: Store>(
    deps: &Deps<S>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let (limit, cursor) = page(req, DEFAULT_PAGE, MAX_PAGE)?;
    let purchases = deps
        .ledger
        .purchases(&claims.user_id, limit, cursor.as_deref(), deps.now())
        .await?;
    response::ok(&purchases)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::UserId;
    use coins_ledger::{MemoryStore, Quote};
    use coins_rules::{Channel, QuoteItem};
    use coins_testkit::{Event, T0, assert_problem, memory_deps, read};
    use jiff::SignedDuration;
    use serde_json::json;

    /// One test-mode provider for the tests (payments are looked up again on a retry).
    fn provider() -> &'static Provider {
        static PROVIDER: std::sync::LazyLock<Provider> = std::sync::LazyLock::new(|| {
            Provider::TestMode(coins_payments::test_mode::TestMode::default())
        });
        &PROVIDER
    }

    fn fixture() -> Event {
        Event::load("post-purchase")
    }

    /// A stored quote for alice (billed in Japan) of the 700-coin web package.
    async fn quote_for_alice(deps: &Deps<MemoryStore>) -> String {
        let priced = deps
            .price_book()
            .quote(
                "JP".parse().unwrap(),
                Channel::Web,
                QuoteItem::Package("coins_700".parse().unwrap()),
            )
            .unwrap();
        let quote = Quote::new(priced, &UserId::new("alice").unwrap(), deps.now());
        deps.ledger.save_quote(&quote).await.unwrap();
        quote.quote_id.to_string()
    }

    #[tokio::test]
    async fn a_quote_becomes_a_pending_purchase_at_the_quoted_price() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture().body(json!({"quote_id": quote_id}));
        let (status, body) = read(&handle(&deps, provider(), event.request()).await);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["status"], "pending");
        assert_eq!(body["amount"]["currency"], "JPY");
        assert!(body["purchase_id"].as_str().unwrap().starts_with("pur_"));
        assert!(body["total_coins"].as_u64().unwrap() >= 700);
    }

    #[tokio::test]
    async fn the_same_key_and_body_return_the_first_purchase() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture().body(json!({"quote_id": quote_id}));
        let first = read(&handle(&deps, provider(), event.clone().request()).await).1;
        let again = read(&handle(&deps, provider(), event.request()).await);
        assert_eq!(again, (201, first));
    }

    #[tokio::test]
    async fn the_same_key_with_another_quote_is_rejected() {
        let (deps, _) = memory_deps(T0);
        let first = quote_for_alice(&deps).await;
        let second = quote_for_alice(&deps).await;
        read(
            &handle(
                &deps,
                provider(),
                fixture().body(json!({"quote_id": first})).request(),
            )
            .await,
        );
        let response = handle(
            &deps,
            provider(),
            fixture().body(json!({"quote_id": second})).request(),
        )
        .await;
        assert_problem(&response, 422, "idempotency_key_reused");
    }

    #[tokio::test]
    async fn an_expired_quote_is_refused() {
        let (deps, clock) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        clock.advance(SignedDuration::from_mins(15)).unwrap();
        let response = handle(
            &deps,
            provider(),
            fixture().body(json!({"quote_id": quote_id})).request(),
        )
        .await;
        assert_problem(&response, 409, "quote_expired");
    }

    #[tokio::test]
    async fn a_quote_priced_for_another_country_is_region_mismatch() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture()
            .body(json!({"quote_id": quote_id}))
            .claim("billing_country", Some("IN"))
            .claim("zoneinfo", Some("Asia/Kolkata"));
        assert_problem(
            &handle(&deps, provider(), event.request()).await,
            422,
            "region_mismatch",
        );
    }

    #[tokio::test]
    async fn another_users_quote_is_not_found() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture()
            .body(json!({"quote_id": quote_id}))
            .user("mallory");
        assert_problem(
            &handle(&deps, provider(), event.request()).await,
            404,
            "not_found",
        );
        let unknown = fixture().body(json!({"quote_id": "quo_nope"}));
        assert_problem(
            &handle(&deps, provider(), unknown.request()).await,
            404,
            "not_found",
        );
    }

    #[tokio::test]
    async fn a_missing_or_invalid_idempotency_key_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture().body(json!({"quote_id": quote_id}));
        for key in [None, Some(""), Some("has space"), Some("a#b")] {
            let response = handle(
                &deps,
                provider(),
                event.clone().header("Idempotency-Key", key).request(),
            )
            .await;
            assert_problem(&response, 400, "invalid_request");
        }
    }

    #[tokio::test]
    async fn malformed_bodies_are_invalid_requests() {
        let (deps, _) = memory_deps(T0);
        for body in [
            r#"{"quote_id": 42}"#,
            r#"{}"#,
            r#"{"quote_id": ""}"#,
            "quote",
        ] {
            assert_problem(
                &handle(&deps, provider(), fixture().raw_body(body).request()).await,
                400,
                "invalid_request",
            );
        }
    }

    #[tokio::test]
    async fn a_minor_cannot_buy() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture()
            .body(json!({"quote_id": quote_id}))
            .claim("birthdate", Some("2015-01-01"));
        assert_problem(
            &handle(&deps, provider(), event.request()).await,
            403,
            "age_restricted",
        );
    }
}
