//! `quote`: prices coins for the caller and stores the quote, so a purchase pays exactly that.
//!
//! The pricing country is the billing country of the verified identity, never anything in the
//! request: a quote cannot be shopped from another country's price list.

use coins_http::{ApiError, Claims, Route, json_body, resolve, response, serve};
use coins_ledger::{Quote, Store};
use coins_rules::{Channel, PackageId, Price, QuoteItem};
use coins_runtime::Deps;
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/quotes`.
pub const CREATE_QUOTE: Route = Route::post("/v1/quotes");
pub const ROUTES: &[Route] = &[CREATE_QUOTE];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (_, req) = resolve(ROUTES, req)?;
        create_quote(deps, &req).await
    })
    .await
}

/// The body as sent: a fixed package, or a custom number of coins (web only).
#[derive(Deserialize)]
struct QuoteRequest {
    channel: Channel,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    package_id: Option<String>,
    #[serde(default, deserialize_with = "coins_http::body::not_null")]
    coins: Option<u64>,
}

/// What is asked for, validated.
struct QuoteAsk {
    channel: Channel,
    item: QuoteItem,
}

impl TryFrom<QuoteRequest> for QuoteAsk {
    type Error = ApiError;

    fn try_from(request: QuoteRequest) -> Result<Self, ApiError> {
        let item = match (request.package_id, request.coins) {
            (Some(package_id), None) => {
                QuoteItem::Package(package_id.parse::<PackageId>().map_err(ApiError::invalid)?)
            }
            (None, Some(0)) => return Err(ApiError::invalid("coins must be at least 1")),
            (None, Some(coins)) => QuoteItem::Custom { coins },
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(
                    "give either package_id or coins, not both",
                ));
            }
            (None, None) => return Err(ApiError::invalid("package_id or coins is required")),
        };
        Ok(QuoteAsk {
            channel: request.channel,
            item,
        })
    }
}

/// The 201 body of API.md.
#[derive(Serialize)]
struct QuoteBody<'a> {
    quote_id: &'a str,
    channel: Channel,
    country: &'a str,
    currency: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_id: Option<PackageId>,
    coins: u64,
    bonus_coins: u64,
    total_coins: u64,
    price: Price,
    tax_inclusive: bool,
    price_book_version: &'a str,
    expires_at: Timestamp,
}

async fn create_quote<S: Store>(deps: &Deps<S>, req: &Request) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let ask = QuoteAsk::try_from(json_body::<QuoteRequest>(req)?)?;
    let now = deps.now();
    claims.check_age(now)?;
    deps.ledger.refuse_if_restricted(&claims.user_id).await?;
    let priced = deps
        .price_book()
        .quote(claims.location(), ask.channel, ask.item)?;
    let stored = Quote::new(priced, &claims.user_id, now);
    deps.ledger.save_quote(&stored).await?;
    let priced = &stored.priced;
    tracing::info!(quote_id = %stored.quote_id, total_coins = priced.total_coins(), "quote issued");
    response::created(&QuoteBody {
        quote_id: stored.quote_id.as_str(),
        channel: priced.channel(),
        country: priced.country().as_str(),
        currency: priced.currency().code(),
        package_id: priced.package_id(),
        coins: priced.coins(),
        bonus_coins: priced.bonus_coins(),
        total_coins: priced.total_coins(),
        price: priced.price(),
        tax_inclusive: priced.tax_inclusive(),
        price_book_version: priced.price_book_version().as_str(),
        expires_at: stored.expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::{QuoteId, UserId};
    use coins_testkit::{Event, T0, assert_problem, at, memory_deps, read};
    use serde_json::json;

    fn fixture() -> Event {
        Event::load("post-quote")
    }

    #[tokio::test]
    async fn a_package_quote_is_priced_for_the_billing_country_and_stored_for_15_minutes() {
        let (deps, _) = memory_deps(T0);
        let (status, body) = read(&handle(&deps, fixture().request()).await);
        assert_eq!(status, 201, "{body}");
        assert_eq!(body["country"], "JP");
        assert_eq!(body["currency"], "JPY");
        assert_eq!(body["channel"], "web");
        assert_eq!(body["coins"], 700);
        assert_eq!(
            body["total_coins"].as_u64(),
            Some(body["coins"].as_u64().unwrap() + body["bonus_coins"].as_u64().unwrap())
        );
        assert_eq!(body["expires_at"], "2026-03-01T03:15:00Z");
        let quote_id = QuoteId::new(body["quote_id"].as_str().unwrap()).unwrap();
        let stored = deps
            .ledger
            .get_quote(&UserId::new("alice").unwrap(), &quote_id)
            .await
            .unwrap();
        assert_eq!(
            stored.priced.price().gross().to_string(),
            body["price"]["gross"].as_str().unwrap()
        );
        assert_eq!(stored.expires_at, at("2026-03-01T03:15:00Z"));
    }

    #[tokio::test]
    async fn a_country_in_the_body_is_ignored_the_identity_decides() {
        let (deps, _) = memory_deps(T0);
        let event =
            fixture().body(json!({"channel": "web", "package_id": "coins_700", "country": "IN"}));
        let (status, body) = read(&handle(&deps, event.request()).await);
        assert_eq!((status, body["country"].as_str()), (201, Some("JP")));
    }

    #[tokio::test]
    async fn a_custom_amount_is_priced_on_the_web() {
        let (deps, _) = memory_deps(T0);
        let event = fixture().body(json!({"channel": "web", "coins": 1234}));
        let (status, body) = read(&handle(&deps, event.request()).await);
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            (body["coins"].as_u64(), body["bonus_coins"].as_u64()),
            (Some(1234), Some(0))
        );
    }

    #[tokio::test]
    async fn a_custom_amount_in_an_app_is_channel_not_allowed() {
        let (deps, _) = memory_deps(T0);
        let event = fixture().body(json!({"channel": "ios", "coins": 1234}));
        assert_problem(
            &handle(&deps, event.request()).await,
            422,
            "channel_not_allowed",
        );
    }

    #[tokio::test]
    async fn bad_bodies_are_invalid_requests_and_store_nothing() {
        let (deps, _) = memory_deps(T0);
        for body in [
            r#"{"channel": "web", "package_id": "coins_700""#,
            r#"{"channel": "fax", "package_id": "coins_700"}"#,
            r#"{"channel": "web", "coins": 0}"#,
            r#"{"channel": "web", "coins": -5}"#,
            r#"{"channel": "web", "coins": 18446744073709551616}"#,
            r#"{"channel": "web", "coins": "100"}"#,
            r#"{"channel": "web", "coins": 10}"#,
            r#"{"channel": "web", "coins": 100, "package_id": "coins_700"}"#,
            r#"{"channel": "web"}"#,
            r#"{"channel": "web", "package_id": "coins_123456"}"#,
            r#"{"channel": "web", "package_id": "Coins 700"}"#,
        ] {
            let response = handle(&deps, fixture().raw_body(body).request()).await;
            assert_problem(&response, 400, "invalid_request");
        }
        assert!(
            deps.ledger.store().is_empty(),
            "nothing is written for a bad request"
        );
    }

    #[tokio::test]
    async fn a_minor_is_age_restricted_on_their_local_date() {
        // 18 in Japan at local midnight of 2 March 2008 + 18 years = 2026-03-01T15:00Z.
        let (deps, clock) = memory_deps("2026-03-01T14:59:59Z");
        let teen = fixture().claim("birthdate", Some("2008-03-02"));
        assert_problem(
            &handle(&deps, teen.clone().request()).await,
            403,
            "age_restricted",
        );
        assert!(deps.ledger.store().is_empty());
        clock.set(at("2026-03-01T15:00:00Z")).unwrap();
        assert_eq!(read(&handle(&deps, teen.request()).await).0, 201);
    }

    #[tokio::test]
    async fn without_a_verified_identity_it_is_unauthenticated() {
        let (deps, _) = memory_deps(T0);
        let event = fixture().without_authorizer();
        assert_problem(
            &handle(&deps, event.request()).await,
            401,
            "unauthenticated",
        );
        let event = fixture().claim("birthdate", Some("someday"));
        assert_problem(
            &handle(&deps, event.request()).await,
            401,
            "unauthenticated",
        );
    }
}
