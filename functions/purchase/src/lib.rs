//! `purchase`: turns the caller's quote into a pending purchase at exactly the quoted price.
//!
//! Idempotent on the `Idempotency-Key` header: the same key and body return the first purchase;
//! the same key with another quote is `idempotency_key_reused`. Coins are credited later, by the
//! payment webhook, never here.

use coins_http::{
    ApiError, Claims, IdempotencyKey, Problem, Route, json_body, resolve, response, serve,
};
use coins_ids::QuoteId;
use coins_ledger::Store;
use coins_runtime::Deps;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/purchases`.
pub const CREATE_PURCHASE: Route = Route::post("/v1/purchases");
pub const ROUTES: &[Route] = &[CREATE_PURCHASE];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (_, req) = resolve(ROUTES, req)?;
        create_purchase(deps, &req).await
    })
    .await
}

#[derive(Deserialize)]
struct PurchaseRequest {
    quote_id: String,
}

#[derive(Serialize)]
struct Amount<'a> {
    currency: &'a str,
    gross: String,
}

#[derive(Serialize)]
struct PurchaseBody<'a> {
    purchase_id: &'a str,
    status: &'a str,
    total_coins: u64,
    amount: Amount<'a>,
}

async fn create_purchase<S: Store>(
    deps: &Deps<S>,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let key = IdempotencyKey::from_request(req)?.into_ledger()?;
    let request: PurchaseRequest = json_body(req)?;
    let quote_id = QuoteId::new(request.quote_id)
        .map_err(|error| ApiError::invalid(format!("quote_id: {error}")))?;
    let now = deps.now();
    claims.check_age(now)?;
    // The quote is bound to the billing country it was priced for; if the caller's billing
    // country changed since, the price is not theirs to pay.
    let quote = deps.ledger.get_quote(&claims.user_id, &quote_id).await?;
    let priced_for = quote.priced.country();
    if priced_for != claims.billing_country {
        return Err(ApiError::new(
            Problem::RegionMismatch,
            format!(
                "the quote was priced for {priced_for}, your billing country is {}",
                claims.billing_country
            ),
        ));
    }
    let receipt = deps
        .ledger
        .create_purchase(&claims.user_id, &quote_id, &claims.zone, now, &key)
        .await?;
    tracing::info!(purchase_id = %receipt.purchase_id, quote_id = %quote_id, "purchase created");
    response::created(&PurchaseBody {
        purchase_id: receipt.purchase_id.as_str(),
        status: receipt.status.as_str(),
        total_coins: receipt.total_coins,
        amount: Amount {
            currency: receipt.amount.currency().code(),
            gross: receipt.amount.to_string(),
        },
    })
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
        let (status, body) = read(&handle(&deps, event.request()).await);
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
        let first = read(&handle(&deps, event.clone().request()).await).1;
        let again = read(&handle(&deps, event.request()).await);
        assert_eq!(again, (201, first));
    }

    #[tokio::test]
    async fn the_same_key_with_another_quote_is_rejected() {
        let (deps, _) = memory_deps(T0);
        let first = quote_for_alice(&deps).await;
        let second = quote_for_alice(&deps).await;
        read(&handle(&deps, fixture().body(json!({"quote_id": first})).request()).await);
        let response = handle(&deps, fixture().body(json!({"quote_id": second})).request()).await;
        assert_problem(&response, 422, "idempotency_key_reused");
    }

    #[tokio::test]
    async fn an_expired_quote_is_refused() {
        let (deps, clock) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        clock.advance(SignedDuration::from_mins(15)).unwrap();
        let response = handle(
            &deps,
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
            &handle(&deps, event.request()).await,
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
        assert_problem(&handle(&deps, event.request()).await, 404, "not_found");
        let unknown = fixture().body(json!({"quote_id": "quo_nope"}));
        assert_problem(&handle(&deps, unknown.request()).await, 404, "not_found");
    }

    #[tokio::test]
    async fn a_missing_or_invalid_idempotency_key_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        let quote_id = quote_for_alice(&deps).await;
        let event = fixture().body(json!({"quote_id": quote_id}));
        for key in [None, Some(""), Some("has space"), Some("a#b")] {
            let response = handle(
                &deps,
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
                &handle(&deps, fixture().raw_body(body).request()).await,
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
        assert_problem(&handle(&deps, event.request()).await, 403, "age_restricted");
    }
}
