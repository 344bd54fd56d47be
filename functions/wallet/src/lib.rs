//! `wallet`: the caller's own balance (and debt), history and daily gifting limit; and the admin's
//! lifting of a restriction.
//!
//! The wallet is always the caller's (`sub`): only the admin route takes a user id, so no one
//! else can read or change another user's wallet by naming it.

use coins_http::{
    ApiError, Claims, Problem, Route, body, json_body, page, path_param, resolve, response, serve,
};
use coins_ids::UserId;
use coins_ledger::{DEFAULT_PAGE, MAX_PAGE, Store};
use coins_rules::limits::DailyLimit;
use coins_runtime::Deps;
use jiff::Timestamp;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `GET /v1/wallet`.
pub const WALLET: Route = Route::get("/v1/wallet");
/// `GET /v1/wallet/transactions?limit=&cursor=`.
pub const TRANSACTIONS: Route = Route::get("/v1/wallet/transactions");
/// `PUT /v1/wallet/limits`.
pub const LIMITS: Route = Route::put("/v1/wallet/limits");
/// `PUT /v1/admin/users/{user_id}/restriction` (scope `coins:admin`).
pub const RESTRICTION: Route = Route::put("/v1/admin/users/{user_id}/restriction");
pub const ROUTES: &[Route] = &[WALLET, TRANSACTIONS, LIMITS, RESTRICTION];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        let claims = Claims::from_request(&req)?;
        match route {
            WALLET => wallet(deps, &claims).await,
            TRANSACTIONS => transactions(deps, &claims, &req).await,
            LIMITS => set_limit(deps, &claims, &req).await,
            RESTRICTION => set_restriction(deps, &claims, &req).await,
            _ => Err(coins_http::unrouted(route)),
        }
    })
    .await
}

async fn wallet<S: Store>(deps: &Deps<S>, claims: &Claims) -> Result<Response<Body>, ApiError> {
    let view = deps
        .ledger
        .wallet(&claims.user_id, &claims.zone, deps.now())
        .await?;
    response::ok(&view)
}

async fn transactions<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let (limit, cursor) = page(req, DEFAULT_PAGE, MAX_PAGE)?;
    let transactions = deps
        .ledger
        .transactions(&claims.user_id, limit, cursor.as_deref())
        .await?;
    response::ok(&transactions)
}

#[derive(Deserialize)]
struct LimitRequest {
    /// Required; `null` asks to remove the limit.
    #[serde(default, deserialize_with = "body::nullable")]
    daily_coins: Option<Option<u64>>,
}

#[derive(Serialize)]
struct PendingBody {
    daily_coins: Option<u64>,
    effective_at: Timestamp,
}

#[derive(Serialize)]
struct LimitBody {
    /// The limit in force now (`null`: none).
    daily_coins: Option<u64>,
    /// A raise or removal waiting out its cooling-off.
    pending: Option<PendingBody>,
}

impl LimitBody {
    fn at(limit: DailyLimit, now: Timestamp) -> LimitBody {
        let limit = limit.settled(now);
        LimitBody {
            daily_coins: limit.coins,
            pending: limit.pending.map(|pending| PendingBody {
                daily_coins: pending.coins,
                effective_at: pending.effective_at,
            }),
        }
    }
}

async fn set_limit<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let request: LimitRequest = json_body(req)?;
    let requested = request.daily_coins.ok_or_else(|| {
        ApiError::invalid(
            "daily_coins is required (a number of coins, or null to remove the limit)",
        )
    })?;
    let now = deps.now();
    let limit = deps
        .ledger
        .set_daily_limit(&claims.user_id, &claims.zone, requested, now)
        .await?;
    response::ok(&LimitBody::at(limit, now))
}

#[derive(Deserialize)]
struct RestrictionRequest {
    restricted: bool,
}

#[derive(Serialize)]
struct RestrictionBody<'a> {
    user_id: &'a str,
    restricted: bool,
}

/// An admin restricts a user or lifts it (a restriction follows repeated reversals). The
/// scope is checked here too: a function must not rely on a route setting someone could change.
async fn set_restriction<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    claims.require_admin()?;
    let user = UserId::new(path_param(req, "user_id")?)
        .map_err(|_| ApiError::new(Problem::NotFound, "no such user"))?;
    let request: RestrictionRequest = json_body(req)?;
    let wallet = deps
        .ledger
        .set_restriction(&user, request.restricted, deps.now())
        .await?;
    tracing::info!(admin = %claims.user_id, user = %user, restricted = wallet.restricted, "restriction set");
    response::ok(&RestrictionBody {
        user_id: user.as_str(),
        restricted: wallet.restricted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_testkit::{Event, T0, assert_problem, buy_package, memory_deps, read};
    use jiff::SignedDuration;
    use serde_json::json;

    fn fixture(name: &str) -> Event {
        Event::load(name)
    }

    #[tokio::test]
    async fn a_new_user_has_an_empty_wallet() {
        let (deps, _) = memory_deps(T0);
        let (status, body) = read(&handle(&deps, fixture("get-wallet").request()).await);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"user_id": "alice", "balance": 0, "debt": 0, "restricted": false, "lots": [], "daily_limit": null})
        );
    }

    #[tokio::test]
    async fn a_paid_purchase_shows_as_a_refundable_lot_until_local_day_d_plus_15() {
        let (deps, clock) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let (_, body) = read(&handle(&deps, fixture("get-wallet").request()).await);
        let lot = &body["lots"][0];
        assert_eq!(lot["purchase_id"], purchase.as_str());
        assert_eq!(lot["refundable"], true);
        // Bought 2026-03-01 in Tokyo: refundable until the start of 16 March, Tokyo time.
        assert_eq!(lot["refundable_until"], "2026-03-15T15:00:00Z");
        assert_eq!(body["balance"], lot["coins"]);
        clock.set("2026-03-15T15:00:00Z".parse().unwrap()).unwrap();
        let (_, body) = read(&handle(&deps, fixture("get-wallet").request()).await);
        assert_eq!(
            body["lots"][0]["refundable"], false,
            "decided at request time, not by the sweep"
        );
    }

    #[tokio::test]
    async fn the_history_is_newest_first_and_paged() {
        let (deps, clock) = memory_deps(T0);
        for _ in 0..3 {
            buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_70").await;
            clock.advance(SignedDuration::from_secs(60)).unwrap();
        }
        let event = fixture("get-transactions").query("limit=2");
        let (status, page) = read(&handle(&deps, event.request()).await);
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["kind"], "purchase");
        assert!(items[0]["at"].as_str() > items[1]["at"].as_str());
        let cursor = page["next_cursor"].as_str().unwrap();
        let next = fixture("get-transactions").query(&format!("limit=2&cursor={cursor}"));
        let (_, page) = read(&handle(&deps, next.request()).await);
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
        assert!(page["next_cursor"].is_null());
    }

    #[tokio::test]
    async fn a_bad_page_size_or_cursor_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        for query in [
            "limit=0",
            "limit=101",
            "limit=ten",
            "limit=-1",
            "cursor=zz",
            "limit=1&limit=2",
        ] {
            let event = fixture("get-transactions").query(query);
            assert_problem(
                &handle(&deps, event.request()).await,
                400,
                "invalid_request",
            );
        }
    }

    #[tokio::test]
    async fn lowering_the_limit_applies_at_once_raising_waits_24_hours() {
        let (deps, _) = memory_deps(T0);
        let (status, body) = read(&handle(&deps, fixture("put-limits").request()).await);
        assert_eq!(
            (status, body),
            (200, json!({"daily_coins": 500, "pending": null}))
        );
        let raise = fixture("put-limits").body(json!({"daily_coins": 1000}));
        let (_, body) = read(&handle(&deps, raise.request()).await);
        assert_eq!(
            body,
            json!({"daily_coins": 500, "pending": {"daily_coins": 1000, "effective_at": "2026-03-02T03:00:00Z"}})
        );
        let remove = fixture("put-limits").body(json!({"daily_coins": null}));
        let (_, body) = read(&handle(&deps, remove.request()).await);
        assert_eq!(body["daily_coins"], 500);
        assert!(body["pending"]["daily_coins"].is_null());
        let (_, wallet) = read(&handle(&deps, fixture("get-wallet").request()).await);
        assert_eq!(wallet["daily_limit"]["coins"], 500);
        assert_eq!(wallet["daily_limit"]["spent_today"], 0);
    }

    #[tokio::test]
    async fn a_limit_body_without_daily_coins_or_with_a_bad_value_is_invalid_request() {
        let (deps, _) = memory_deps(T0);
        for body in [
            r#"{}"#,
            r#"{"daily_coins": -1}"#,
            r#"{"daily_coins": "500"}"#,
            r#"{"daily_coins": 1.5}"#,
            "null",
        ] {
            let event = fixture("put-limits").raw_body(body);
            assert_problem(
                &handle(&deps, event.request()).await,
                400,
                "invalid_request",
            );
        }
        let (_, wallet) = read(&handle(&deps, fixture("get-wallet").request()).await);
        assert!(wallet["daily_limit"].is_null(), "nothing was written");
    }

    #[tokio::test]
    async fn each_caller_sees_only_their_own_wallet() {
        let (deps, _) = memory_deps(T0);
        buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let (_, body) = read(&handle(&deps, fixture("get-wallet").user("bob").request()).await);
        assert_eq!(
            (body["user_id"].as_str(), body["balance"].as_u64()),
            (Some("bob"), Some(0))
        );
    }

    #[tokio::test]
    async fn without_verified_claims_it_is_unauthenticated() {
        let (deps, _) = memory_deps(T0);
        for name in ["get-wallet", "get-transactions", "put-limits"] {
            let event = fixture(name).without_authorizer();
            assert_problem(
                &handle(&deps, event.request()).await,
                401,
                "unauthenticated",
            );
        }
    }

    #[tokio::test]
    async fn only_an_admin_lifts_a_restriction_and_only_of_a_known_user() {
        let (deps, _) = memory_deps(T0);
        buy_package(&deps, "bob", "JP", "Asia/Tokyo", "coins_70").await;
        let lift = fixture("put-admin-restriction");
        let (status, body) = read(&handle(&deps, lift.clone().request()).await);
        assert_eq!(
            (status, body["restricted"].as_bool()),
            (200, Some(false)),
            "{body}"
        );
        let not_admin = lift.clone().claim("scope", Some("openid"));
        assert_problem(&handle(&deps, not_admin.request()).await, 403, "forbidden");
        let nobody = lift.path_param("user_id", "nobody");
        assert_problem(&handle(&deps, nobody.request()).await, 404, "not_found");
    }
}
