//! `creators`: enrolling the caller as a creator (age-gated: receiving gifts is gated like
//! buying and sending) and reading their diamonds with what they pay out.

use coins_http::{ApiError, Claims, Route, resolve, response, serve};
use coins_ledger::{Enrollment, Store};
use coins_rules::Money;
use coins_rules::gifts::payout_value;
use coins_runtime::Deps;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// `POST /v1/creators/me`.
pub const ENROLL: Route = Route::post("/v1/creators/me");
/// `GET /v1/creators/me/earnings`.
pub const EARNINGS: Route = Route::get("/v1/creators/me/earnings");
pub const ROUTES: &[Route] = &[ENROLL, EARNINGS];

pub async fn handle<S: Store>(deps: &Deps<S>, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        let claims = Claims::from_request(&req)?;
        match route {
            ENROLL => enroll(deps, &claims).await,
            EARNINGS => earnings(deps, &claims).await,
            _ => Err(ApiError::method_not_allowed()),
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

#[derive(Serialize)]
struct EarningsBody<'a> {
    creator_id: &'a str,
    diamonds: u64,
    /// `{"currency": "USD", "amount": "1.23"}`, rounded down to the cent.
    payout_value: Money,
}

/// 404 `not_found` if the caller is not a creator.
async fn earnings<S: Store>(deps: &Deps<S>, claims: &Claims) -> Result<Response<Body>, ApiError> {
    let earnings = deps.ledger.earnings(&claims.user_id).await?;
    response::ok(&EarningsBody {
        creator_id: earnings.creator_id.as_str(),
        diamonds: earnings.diamonds,
        payout_value: payout_value(earnings.diamonds),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_testkit::{Event, T0, assert_problem, memory_deps, read};
    use serde_json::json;

    fn fixture(name: &str) -> Event {
        Event::load(name)
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
    async fn a_new_creator_has_no_diamonds_worth_nothing() {
        let (deps, _) = memory_deps(T0);
        handle(&deps, fixture("post-creator").request()).await;
        let (status, body) = read(&handle(&deps, fixture("get-earnings").request()).await);
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"creator_id": "alice", "diamonds": 0, "payout_value": {"currency": "USD", "amount": "0.00"}})
        );
    }

    #[tokio::test]
    async fn earnings_of_a_non_creator_are_not_found() {
        let (deps, _) = memory_deps(T0);
        assert_problem(
            &handle(&deps, fixture("get-earnings").request()).await,
            404,
            "not_found",
        );
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
