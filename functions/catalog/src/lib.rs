//! `catalog`: what can be bought and sent — the caller's localized price list and the gift
//! catalog. Read-only: it prices from the rules and never touches the table.

use coins_http::{ApiError, Claims, Route, query_param, resolve, response, serve};
use coins_ledger::Store;
use coins_rules::Channel;
use coins_runtime::Deps;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// `GET /v1/packages?channel=web|ios|android`.
pub const PACKAGES: Route = Route::get("/v1/packages");
/// `GET /v1/gifts/catalog`.
pub const GIFT_CATALOG: Route = Route::get("/v1/gifts/catalog");
/// Every route this function serves (API Gateway's and the local server's table).
pub const ROUTES: &[Route] = &[PACKAGES, GIFT_CATALOG];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        let claims = Claims::from_request(&req)?;
        match route {
            PACKAGES => packages(deps, &claims, &req),
            GIFT_CATALOG => gift_catalog(deps),
            _ => Err(coins_http::unrouted(route)),
        }
    })
    .await
}

/// The list for the caller's billing country (from the verified identity, never the request).
fn packages<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let channel: Channel = query_param(req, "channel")?
        .ok_or_else(|| {
            ApiError::invalid("query parameter `channel` (web, ios or android) is required")
        })?
        .parse()
        .map_err(ApiError::invalid)?;
    let list = deps.price_book().package_list(claims.location(), channel)?;
    response::ok(&list)
}

#[derive(Serialize)]
struct GiftCatalogBody<'a> {
    version: &'a str,
    gifts: &'a [coins_rules::gifts::Gift],
}

fn gift_catalog<S: Store>(deps: &Deps<S>) -> Result<Response<Body>, ApiError> {
    response::ok(&GiftCatalogBody {
        version: deps.gifts().version(),
        gifts: deps.gifts().gifts(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_testkit::{Event, T0, assert_problem, memory_deps, read};

    fn fixture(name: &str) -> Event {
        Event::load(name)
    }

    #[tokio::test]
    async fn a_japanese_web_buyer_gets_yen_prices_tax_included() {
        let (deps, _) = memory_deps(T0);
        let (status, body) = read(&handle(&deps, fixture("get-packages").request()).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["country"], "JP");
        assert_eq!(body["currency"], "JPY");
        assert_eq!(body["tax_inclusive"], true);
        assert!(
            body["price_book_version"]
                .as_str()
                .is_some_and(|v| !v.is_empty())
        );
        let first = &body["packages"][0];
        assert!(first["package_id"].is_string() && first["coins"].is_u64());
        // Yen has no minor digits: the gross is a whole number as a string.
        let gross = first["price"]["gross"].as_str().unwrap();
        assert!(gross.chars().all(|c| c.is_ascii_digit()), "{gross}");
        assert!(body["custom"]["min_coins"].is_u64());
    }

    #[tokio::test]
    async fn app_channels_have_no_custom_range_and_never_undercut_the_web() {
        let (deps, _) = memory_deps(T0);
        let web = read(&handle(&deps, fixture("get-packages").request()).await).1;
        let ios = read(
            &handle(
                &deps,
                fixture("get-packages").query("channel=ios").request(),
            )
            .await,
        )
        .1;
        assert!(ios["custom"].is_null());
        for (web, app) in web["packages"]
            .as_array()
            .unwrap()
            .iter()
            .zip(ios["packages"].as_array().unwrap())
        {
            let gross = |p: &serde_json::Value| {
                p["price"]["gross"]
                    .as_str()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
            };
            assert!(gross(app) >= gross(web), "{app} vs {web}");
        }
    }

    #[tokio::test]
    async fn the_price_country_is_the_billing_country_of_the_identity() {
        let (deps, _) = memory_deps(T0);
        let event = fixture("get-packages")
            .claim("billing_country", Some("US"))
            .claim("billing_region", Some("US-IL"))
            .claim("zoneinfo", Some("America/Chicago"));
        let (_, body) = read(&handle(&deps, event.request()).await);
        assert_eq!(
            (body["country"].as_str(), body["currency"].as_str()),
            (Some("US"), Some("USD"))
        );
        assert_eq!(body["tax_inclusive"], false);
    }

    #[tokio::test]
    async fn a_missing_or_unknown_channel_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        assert_problem(
            &handle(&deps, fixture("get-packages").query("").request()).await,
            400,
            "invalid_request",
        );
        let response = handle(
            &deps,
            fixture("get-packages").query("channel=fax").request(),
        )
        .await;
        assert_problem(&response, 400, "invalid_request");
        assert!(
            read(&response).1["detail"]
                .as_str()
                .unwrap()
                .contains("fax")
        );
    }

    #[tokio::test]
    async fn a_country_where_coins_are_not_sold_is_forbidden() {
        let (deps, _) = memory_deps(T0);
        let event = fixture("get-packages").claim("billing_country", Some("AQ"));
        assert_problem(&handle(&deps, event.request()).await, 403, "forbidden");
    }

    #[tokio::test]
    async fn without_verified_claims_it_is_unauthenticated() {
        let (deps, _) = memory_deps(T0);
        let no_authorizer = fixture("get-gift-catalog").without_authorizer();
        assert_problem(
            &handle(&deps, no_authorizer.request()).await,
            401,
            "unauthenticated",
        );
        let no_zone = fixture("get-packages").claim("zoneinfo", None);
        assert_problem(
            &handle(&deps, no_zone.request()).await,
            401,
            "unauthenticated",
        );
    }

    #[tokio::test]
    async fn the_gift_catalog_lists_every_gift_with_its_price() {
        let (deps, _) = memory_deps(T0);
        let (status, body) = read(&handle(&deps, fixture("get-gift-catalog").request()).await);
        assert_eq!(status, 200);
        assert!(body["version"].is_string());
        let rose = body["gifts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|gift| gift["gift_id"] == "rose")
            .expect("a rose");
        assert_eq!(rose["coins"], 1);
        assert_eq!(rose["name"], "Rose");
    }
}
