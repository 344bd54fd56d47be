//! `refund`: gives a purchase back while all its coins are unspent — by the buyer inside the
//! window (14 days from the day after purchase, in their zone), or by an admin outside it for a
//! `defective` or `legal` reason. Never for spent coins: those must come back first.
//!
//! The coins are reversed and a refund instruction for Stripe is recorded in the same write (the
//! ledger's outbox), so money and coins never diverge; `refund-dispatch` sends it. An optional
//! `Idempotency-Key` makes a retried request return the first answer. Admin refunds record the
//! admin's `sub`.

use coins_http::{
    ApiError, Claims, IdempotencyKey, Problem, Route, json_body, path_param, resolve, response,
    serve,
};
use coins_ids::PurchaseId;
use coins_ledger::{Amount, RefundBy, RefundStatus, Store};
use coins_rules::AdminOverride;
use coins_runtime::Deps;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/purchases/{purchase_id}/refund`: the buyer's own refund.
pub const REFUND: Route = Route::post("/v1/purchases/{purchase_id}/refund");
/// `POST /v1/admin/purchases/{purchase_id}/refund`: support's override (scope `coins:admin`).
pub const ADMIN_REFUND: Route = Route::post("/v1/admin/purchases/{purchase_id}/refund");
pub const ROUTES: &[Route] = &[REFUND, ADMIN_REFUND];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        let claims = Claims::from_request(&req)?;
        let by = match route {
            REFUND => RefundBy::Owner(claims.user_id.clone()),
            ADMIN_REFUND => admin(&claims, &req)?,
            _ => return Err(coins_http::unrouted(route)),
        };
        refund(deps, &req, by).await
    })
    .await
}

#[derive(Deserialize)]
struct AdminRefundBody {
    reason: AdminOverride,
}

/// The admin route checks the scope itself too: API Gateway's authorizer does, but a function
/// must not rely on a route setting that someone could change.
fn admin(claims: &Claims, req: &Request) -> Result<RefundBy, ApiError> {
    claims.require_admin()?;
    let body: AdminRefundBody = json_body(req)?;
    tracing::info!(admin = %claims.user_id, reason = ?body.reason, "admin refund requested");
    Ok(RefundBy::Admin {
        admin: claims.user_id.clone(),
        reason: body.reason,
    })
}

#[derive(Serialize)]
struct RefundState {
    status: RefundStatus,
}

#[derive(Serialize)]
struct RefundBody<'a> {
    purchase_id: &'a str,
    status: &'a str,
    coins_reversed: u64,
    amount: Amount,
    refund: RefundState,
}

async fn refund<S: Store>(
    deps: &Deps<S>,
    req: &Request,
    by: RefundBy,
) -> Result<Response<Body>, ApiError> {
    // An id that cannot exist is simply not found.
    let purchase_id = PurchaseId::new(path_param(req, "purchase_id")?)
        .map_err(|_| ApiError::new(Problem::NotFound, "no such purchase"))?;
    let key = IdempotencyKey::optional(req)?;
    let receipt = deps
        .ledger
        .refund_purchase(&by, &purchase_id, deps.now(), key.as_ref())
        .await?;
    tracing::info!(purchase_id = %receipt.purchase_id, refund_id = %receipt.refund_id, coins = receipt.coins_reversed, "purchase refunded");
    response::ok(&RefundBody {
        purchase_id: receipt.purchase_id.as_str(),
        status: receipt.status.as_str(),
        coins_reversed: receipt.coins_reversed,
        amount: receipt.amount.into(),
        refund: RefundState {
            status: receipt.refund_status,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::{IdempotencyKey, UserId};
    use coins_ledger::{GiftRequest, MemoryStore};
    use coins_rules::{GiftCatalog, GiftTarget, TargetKind};
    use coins_testkit::{Event, T0, assert_problem, buy_package, enroll, memory_deps, read, zone};
    use serde_json::json;

    fn fixture(name: &str) -> Event {
        Event::load(name)
    }

    fn refund_of(purchase: &PurchaseId) -> Event {
        fixture("post-refund").path_param("purchase_id", purchase.as_str())
    }

    fn admin_refund_of(purchase: &PurchaseId, reason: &str) -> Event {
        fixture("post-admin-refund")
            .path_param("purchase_id", purchase.as_str())
            .body(json!({"reason": reason}))
    }

    async fn balance(deps: &Deps<MemoryStore>) -> u64 {
        let alice = UserId::new("alice").unwrap();
        deps.ledger
            .wallet(&alice, &zone("Asia/Tokyo"), deps.now())
            .await
            .unwrap()
            .balance
    }

    async fn spend_one_coin(deps: &Deps<MemoryStore>) {
        enroll(deps, "carol").await;
        let request = GiftRequest {
            sender: UserId::new("alice").unwrap(),
            recipient: UserId::new("carol").unwrap(),
            order: GiftCatalog::embedded()
                .order(&"rose".parse().unwrap(), 1)
                .unwrap(),
            target: GiftTarget::new(TargetKind::Live, "l1").unwrap(),
            sender_zone: zone("Asia/Tokyo"),
        };
        deps.ledger
            .send_gift(&request, deps.now(), &IdempotencyKey::new("g1").unwrap())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_unspent_purchase_is_refunded_inside_the_window() {
        let (deps, _) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let credited = balance(&deps).await;
        let (status, body) = read(&handle(&deps, refund_of(&purchase).request()).await);
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "refunded");
        assert_eq!(body["purchase_id"], purchase.as_str());
        assert_eq!(body["coins_reversed"].as_u64(), Some(credited));
        assert_eq!(body["amount"]["currency"], "JPY");
        assert_eq!(balance(&deps).await, 0);
        assert_problem(
            &handle(&deps, refund_of(&purchase).request()).await,
            409,
            "already_refunded",
        );
    }

    #[tokio::test]
    async fn the_window_closes_at_the_start_of_local_day_d_plus_15() {
        // Bought 2026-03-01 12:00 in Tokyo; the window ends 2026-03-16 00:00 Tokyo = 03-15 15:00Z.
        let (deps, clock) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        clock.set("2026-03-15T15:00:00Z".parse().unwrap()).unwrap();
        assert_problem(
            &handle(&deps, refund_of(&purchase).request()).await,
            409,
            "refund_window_closed",
        );
        let (status, body) =
            read(&handle(&deps, admin_refund_of(&purchase, "legal").request()).await);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("refunded")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn one_spent_coin_makes_a_purchase_unrefundable_even_for_an_admin() {
        let (deps, _) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        spend_one_coin(&deps).await;
        assert_problem(
            &handle(&deps, refund_of(&purchase).request()).await,
            409,
            "coins_already_spent",
        );
        let admin = admin_refund_of(&purchase, "defective");
        assert_problem(
            &handle(&deps, admin.request()).await,
            409,
            "coins_already_spent",
        );
    }

    #[tokio::test]
    async fn another_users_purchase_is_not_found() {
        let (deps, _) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let event = refund_of(&purchase).user("mallory");
        assert_problem(&handle(&deps, event.request()).await, 404, "not_found");
        let bogus = fixture("post-refund").path_param("purchase_id", "pur#x");
        assert_problem(&handle(&deps, bogus.request()).await, 404, "not_found");
    }

    #[tokio::test]
    async fn the_admin_route_needs_the_admin_scope_and_a_known_reason() {
        let (deps, _) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let not_admin = admin_refund_of(&purchase, "defective").claim("scope", Some("openid"));
        assert_problem(&handle(&deps, not_admin.request()).await, 403, "forbidden");
        let whim = admin_refund_of(&purchase, "changed_my_mind");
        assert_problem(&handle(&deps, whim.request()).await, 400, "invalid_request");
        let no_body = fixture("post-admin-refund")
            .path_param("purchase_id", purchase.as_str())
            .raw_body("");
        assert_problem(
            &handle(&deps, no_body.request()).await,
            400,
            "invalid_request",
        );
        assert!(balance(&deps).await > 0, "nothing was refunded");
    }

    #[tokio::test]
    async fn without_verified_claims_it_is_unauthenticated() {
        let (deps, _) = memory_deps(T0);
        let event = fixture("post-refund").without_authorizer();
        assert_problem(
            &handle(&deps, event.request()).await,
            401,
            "unauthenticated",
        );
    }
}
