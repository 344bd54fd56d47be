//! `creators`: a creator's side of the currency. Enrolling the caller (age-gated: receiving
//! gifts is gated like buying and sending); their earnings (diamonds held, then available, with
//! their USD value) and the gifts they received, both written from the table's stream within
//! seconds of each gift; their payouts to the Stripe Connect account an admin set. A payout
//! leaves through the outbox (`payout-dispatch`), idempotent on the `Idempotency-Key` header.

use coins_http::{
    ApiError, Claims, IdempotencyKey, Problem, Route, json_body, page, path_param, resolve,
    response, serve,
};
use coins_ids::{ConnectedAccountId, UserId};
use coins_ledger::{DEFAULT_PAGE, Enrollment, MAX_PAGE, Store};
use coins_runtime::Deps;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};

/// `POST /v1/creators/me`.
pub const ENROLL: Route = Route::post("/v1/creators/me");
/// `GET /v1/creators/me/earnings`.
pub const EARNINGS: Route = Route::get("/v1/creators/me/earnings");
/// `GET /v1/creators/me/gifts?limit=&cursor=`.
pub const GIFTS: Route = Route::get("/v1/creators/me/gifts");
/// `POST /v1/creators/me/payouts`.
pub const REQUEST_PAYOUT: Route = Route::post("/v1/creators/me/payouts");
/// `GET /v1/creators/me/payouts?limit=&cursor=`.
pub const PAYOUTS: Route = Route::get("/v1/creators/me/payouts");
/// `PUT /v1/admin/creators/{creator_id}/payout-account` (scope `coins:admin`).
pub const PAYOUT_ACCOUNT: Route = Route::put("/v1/admin/creators/{creator_id}/payout-account");
pub const ROUTES: &[Route] = &[
    ENROLL,
    EARNINGS,
    GIFTS,
    REQUEST_PAYOUT,
    PAYOUTS,
    PAYOUT_ACCOUNT,
];

/// A Stripe Connect account id's prefix.
const STRIPE_ACCOUNT_PREFIX: &str = "acct_";

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        let claims = Claims::from_request(&req)?;
        match route {
            ENROLL => enroll(deps, &claims).await,
            EARNINGS => earnings(deps, &claims).await,
            GIFTS => gifts(deps, &claims, &req).await,
            REQUEST_PAYOUT => request_payout(deps, &claims, &req).await,
            PAYOUTS => payouts(deps, &claims, &req).await,
            PAYOUT_ACCOUNT => set_payout_account(deps, &claims, &req).await,
            _ => Err(coins_http::unrouted(route)),
        }
    })
    .await
}

#[derive(Serialize)]
struct CreatorBody<'a> {
    creator_id: &'a str,
}

/// 201 when enrolled now, 200 when the caller already was a creator.
async fn enroll<S: Store>(deps: &Deps<S>, claims: &Claims) -> Result<Response<Body>, ApiError> {
    let now = deps.now();
    claims.check_age(now)?;
    let status = match deps.ledger.enroll_creator(&claims.user_id, now).await? {
        Enrollment::Created => StatusCode::CREATED,
        Enrollment::AlreadyEnrolled => StatusCode::OK,
    };
    response::json(
        status,
        &CreatorBody {
            creator_id: claims.user_id.as_str(),
        },
    )
}

/// 404 `not_found` if the caller is not a creator.
async fn earnings<S: Store>(deps: &Deps<S>, claims: &Claims) -> Result<Response<Body>, ApiError> {
    let earnings = deps.ledger.earnings(&claims.user_id, deps.now()).await?;
    response::ok(&earnings)
}

async fn gifts<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let (limit, cursor) = page(req, DEFAULT_PAGE, MAX_PAGE)?;
    let received = deps
        .ledger
        .gifts_received(&claims.user_id, limit, cursor.as_deref())
        .await?;
    response::ok(&received)
}

#[derive(Deserialize)]
struct PayoutRequest {
    diamonds: u64,
}

async fn request_payout<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let key = IdempotencyKey::from_request(req)?.into_ledger()?;
    let request: PayoutRequest = json_body(req)?;
    let payout = deps
        .ledger
        .request_payout(&claims.user_id, request.diamonds, deps.now(), &key)
        .await?;
    tracing::info!(payout_id = %payout.payout_id, diamonds = payout.diamonds, "payout requested");
    response::created(&payout)
}

async fn payouts<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let (limit, cursor) = page(req, DEFAULT_PAGE, MAX_PAGE)?;
    let payouts = deps
        .ledger
        .payouts(&claims.user_id, limit, cursor.as_deref())
        .await?;
    response::ok(&payouts)
}

#[derive(Deserialize)]
struct PayoutAccountRequest {
    stripe_account: String,
}

#[derive(Serialize)]
struct PayoutAccountBody<'a> {
    creator_id: &'a str,
    stripe_account: &'a str,
}

/// An admin sets the Stripe Connect account a creator is paid to (onboarding and identity
/// checks happen at Stripe). The scope is checked here too, not only on the route.
async fn set_payout_account<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    claims.require_admin()?;
    let creator = UserId::new(path_param(req, "creator_id")?)
        .map_err(|_| ApiError::new(Problem::NotFound, "no such creator"))?;
    let request: PayoutAccountRequest = json_body(req)?;
    if !request.stripe_account.starts_with(STRIPE_ACCOUNT_PREFIX) {
        return Err(ApiError::invalid(
            "stripe_account must be a Stripe account id (acct_…)",
        ));
    }
    let account = ConnectedAccountId::new(request.stripe_account)
        .map_err(|error| ApiError::invalid(format!("stripe_account: {error}")))?;
    // Recorded with the admin, the old and the new account and the time.
    deps.ledger
        .set_payout_account_by(&creator, &account, Some(&claims.user_id), deps.now())
        .await?;
    tracing::info!(admin = %claims.user_id, creator_id = %creator, "payout account set");
    response::ok(&PayoutAccountBody {
        creator_id: creator.as_str(),
        stripe_account: account.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ledger::{GiftRequest, MemoryStore};
    use coins_rules::{GiftTarget, TargetKind};
    use coins_testkit::{
        Event, T0, assert_problem, buy_package, count_gifts, enroll, memory_deps, read, zone,
    };
    use jiff::SignedDuration;
    use serde_json::json;

    fn fixture(name: &str) -> Event {
        Event::load(name)
    }

    /// bob sends alice (a creator) `coins` roses, which the stream then counts.
    async fn gifted(deps: &Deps<MemoryStore>, coins: u32) {
        let order = deps.gifts().order(&"rose".parse().unwrap(), coins).unwrap();
        let request = GiftRequest {
            sender: UserId::new("bob").unwrap(),
            recipient: UserId::new("alice").unwrap(),
            order,
            target: GiftTarget::new(TargetKind::Live, "live-1").unwrap(),
            sender_zone: zone("Asia/Tokyo"),
        };
        let key = coins_ids::IdempotencyKey::new(format!("gift-{coins}")).unwrap();
        deps.ledger
            .send_gift(&request, deps.now(), &key)
            .await
            .unwrap();
        count_gifts(deps).await;
    }

    #[tokio::test]
    async fn enrolling_answers_201_then_200() {
        let (deps, _) = memory_deps(T0);
        let first = read(&handle(&deps, fixture("post-creator").request()).await);
        assert_eq!(first, (201, json!({"creator_id": "alice"})));
        let again = read(&handle(&deps, fixture("post-creator").request()).await);
        assert_eq!(again, (200, json!({"creator_id": "alice"})));
    }

    #[tokio::test]
    async fn a_minor_cannot_enroll_to_receive_gifts() {
        let (deps, _) = memory_deps(T0);
        // 20 in Thailand is the minimum; a 19-year-old there is refused.
        let event = fixture("post-creator")
            .claim("billing_country", Some("TH"))
            .claim("zoneinfo", Some("Asia/Bangkok"))
            .claim("birthdate", Some("2006-06-01"));
        assert_problem(&handle(&deps, event.request()).await, 403, "age_restricted");
        assert_problem(
            &handle(&deps, fixture("get-earnings").request()).await,
            404,
            "not_found",
        );
    }

    #[tokio::test]
    async fn a_gifts_diamonds_are_held_then_available_and_listed_as_received() {
        let (deps, clock) = memory_deps(T0);
        handle(&deps, fixture("post-creator").request()).await;
        let (status, body) = read(&handle(&deps, fixture("get-earnings").request()).await);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"creator_id": "alice", "diamonds_earned": 0, "pending": 0, "available": 0,
                   "in_payout": 0, "paid_out": 0, "hold_days": 7,
                   "available_value": {"currency": "USD", "amount": "0.00"}})
        );
        buy_package(&deps, "bob", "JP", "Asia/Tokyo", "coins_700").await;
        gifted(&deps, 500).await;
        let (_, body) = read(&handle(&deps, fixture("get-earnings").request()).await);
        assert_eq!(
            (body["pending"].clone(), body["available"].clone()),
            (json!(500), json!(0))
        );
        clock.advance(SignedDuration::from_hours(24 * 8)).unwrap();
        let (_, body) = read(&handle(&deps, fixture("get-earnings").request()).await);
        assert_eq!(
            (
                body["available"].clone(),
                body["available_value"]["amount"].clone()
            ),
            (json!(500), json!("2.50"))
        );
        let (status, body) = read(&handle(&deps, fixture("get-creator-gifts").request()).await);
        assert_eq!(status, 200);
        assert_eq!(body["items"][0]["sender_id"], "bob");
        assert_eq!(body["items"][0]["diamonds"], 500);
        assert_eq!(body["next_cursor"], json!(null));
    }

    #[tokio::test]
    async fn each_payout_account_change_is_recorded_with_the_admin_the_old_and_the_new_account() {
        let (deps, clock) = memory_deps(T0);
        let t0: jiff::Timestamp = T0.parse().unwrap();
        enroll(&deps, "alice").await;
        let alice = UserId::new("alice").unwrap();
        let set = |account: &str| {
            fixture("put-admin-payout-account").body(json!({ "stripe_account": account }))
        };
        let (status, _) = read(&handle(&deps, set("acct_1NxCreator00001").request()).await);
        assert_eq!(status, 200);
        clock.advance(SignedDuration::from_hours(1)).unwrap();
        let by_other_admin = set("acct_1NxCreator00002").user("support-2");
        let (status, _) = read(&handle(&deps, by_other_admin.request()).await);
        assert_eq!(status, 200);
        // The account it already has: nothing changes, nothing is recorded.
        handle(&deps, set("acct_1NxCreator00002").request()).await;

        let changes = deps.ledger.payout_account_changes(&alice).await.unwrap();
        let seen: Vec<_> = changes
            .iter()
            .map(|change| {
                (
                    change.number,
                    change.changed_by.as_ref().map(UserId::as_str),
                    change.old_account.as_ref().map(|a| a.as_str()),
                    change.new_account.as_str(),
                    change.at,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (1, Some("support-1"), None, "acct_1NxCreator00001", t0),
                (
                    2,
                    Some("support-2"),
                    Some("acct_1NxCreator00001"),
                    "acct_1NxCreator00002",
                    t0 + SignedDuration::from_hours(1)
                ),
            ]
        );
    }

    #[tokio::test]
    async fn a_payout_needs_an_account_an_admin_sets_then_leaves_once_per_key() {
        let (deps, clock) = memory_deps(T0);
        enroll(&deps, "alice").await;
        for _ in 0..3 {
            buy_package(&deps, "bob", "JP", "Asia/Tokyo", "coins_7000").await;
        }
        gifted(&deps, 9_999).await;
        gifted(&deps, 9_998).await;
        clock.advance(SignedDuration::from_hours(24 * 8)).unwrap();
        assert_problem(
            &handle(&deps, fixture("post-payout").request()).await,
            422,
            "payout_account_missing",
        );
        // Only an admin sets it.
        let by_alice = fixture("put-admin-payout-account")
            .user("alice")
            .claim("scope", Some("openid"));
        assert_problem(&handle(&deps, by_alice.request()).await, 403, "forbidden");
        let not_stripe =
            fixture("put-admin-payout-account").body(json!({"stripe_account": "IBAN123"}));
        assert_problem(
            &handle(&deps, not_stripe.request()).await,
            400,
            "invalid_request",
        );
        let (status, body) =
            read(&handle(&deps, fixture("put-admin-payout-account").request()).await);
        assert_eq!(
            (status, body),
            (
                200,
                json!({"creator_id": "alice", "stripe_account": "acct_1NxCreator00001"})
            )
        );

        let (status, first) = read(&handle(&deps, fixture("post-payout").request()).await);
        assert_eq!(status, 201, "{first}");
        assert_eq!(first["status"], "pending");
        assert_eq!(
            first["amount"],
            json!({"currency": "USD", "gross": "50.00"})
        );
        let again = read(&handle(&deps, fixture("post-payout").request()).await);
        assert_eq!(again, (201, first.clone()));
        let too_much = fixture("post-payout")
            .header("idempotency-key", Some("3c1f6a0e-payout-0002"))
            .body(json!({"diamonds": 10_000}));
        assert_problem(
            &handle(&deps, too_much.request()).await,
            409,
            "insufficient_diamonds",
        );
        let too_little = fixture("post-payout")
            .header("idempotency-key", Some("3c1f6a0e-payout-0003"))
            .body(json!({"diamonds": 9_997}));
        assert_problem(
            &handle(&deps, too_little.request()).await,
            422,
            "payout_below_minimum",
        );
        let without_key = fixture("post-payout").header("idempotency-key", None);
        assert_problem(
            &handle(&deps, without_key.request()).await,
            400,
            "invalid_request",
        );

        let (status, listed) = read(&handle(&deps, fixture("get-payouts").request()).await);
        assert_eq!(status, 200);
        assert_eq!(listed["items"], json!([first]));
        let (_, earnings) = read(&handle(&deps, fixture("get-earnings").request()).await);
        assert_eq!(
            (earnings["available"].clone(), earnings["in_payout"].clone()),
            (json!(9_997), json!(10_000))
        );
    }

    #[tokio::test]
    async fn earnings_of_a_non_creator_are_not_found() {
        let (deps, _) = memory_deps(T0);
        for name in ["get-earnings", "get-creator-gifts"] {
            assert_problem(
                &handle(&deps, fixture(name).request()).await,
                404,
                "not_found",
            );
        }
    }

    #[tokio::test]
    async fn without_verified_claims_it_is_unauthenticated() {
        let (deps, _) = memory_deps(T0);
        let event = fixture("post-creator").without_authorizer();
        assert_problem(
            &handle(&deps, event.request()).await,
            401,
            "unauthenticated",
        );
    }
}
