//! The one error type of the HTTP boundary and its `application/problem+json` rendering.
//!
//! Every answer a client can get that is not a success is a [`Problem`]: a stable snake_case
//! `code` (the contract of API.md), one HTTP status and one title, all in one table
//! ([`Problem::describe`]). The ledger's and the rules' errors say what happened; which problem
//! each one is, is decided here, once. Internal failures are logged with the request id and
//! answered with a bare 500 or 503: no error body ever carries an internal message.

use std::fmt;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use coins_ledger::LedgerError;
use coins_ledger::store::StoreError;
use coins_rules::gifts::BadTargetId;
use coins_rules::{AgeBelowMinimum, GiftError, QuoteError, RefundRejected, SelfGift};

/// The `Content-Type` of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error source we do not show to clients (storage, serialization, configuration).
pub type InternalError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong, as a client sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Problem {
    /// Malformed JSON, a missing or wrong-typed field, an unknown enum value, an amount out of
    /// bounds, a missing or bad header.
    InvalidRequest,
    /// The body is larger than [`crate::body::MAX_BODY_BYTES`].
    PayloadTooLarge,
    /// No verified identity, or its claims are incomplete or invalid.
    Unauthenticated,
    /// The caller is under the minimum age of their jurisdiction.
    AgeRestricted,
    /// Authenticated, but not allowed (an admin route without `coins:admin`, a country we do not
    /// sell in).
    Forbidden,
    /// Restricted after repeated payment reversals: no quotes or purchases.
    AccountRestricted,
    /// No such route or resource (or not the caller's).
    NotFound,
    /// The path exists, the method does not.
    MethodNotAllowed,
    InsufficientCoins,
    /// The caller owes coins after a reversal: no gifts until a purchase repays them.
    CoinDebt,
    /// Some of the purchase's coins are spent, so it is not refundable.
    CoinsAlreadySpent,
    RefundWindowClosed,
    AlreadyRefunded,
    QuoteExpired,
    /// The gift would pass the caller's daily limit.
    SpendingLimitReached,
    /// The purchase is pending, failed or rejected, so there is nothing to refund.
    PurchaseNotCredited,
    /// The same `Idempotency-Key` came with a different body.
    IdempotencyKeyReused,
    /// The quote or payment belongs to another billing country.
    RegionMismatch,
    SelfGift,
    RecipientNotCreator,
    /// E.g. a custom amount outside the web shop.
    ChannelNotAllowed,
    /// A webhook's signature or a store's signed payload is missing, malformed, stale or wrong.
    InvalidSignature,
    /// An app-store purchase: the store refunds it.
    RefundViaStore,
    /// The store transaction was credited to another user.
    AlreadyCredited,
    /// The store refunded or voided the transaction (issue #18): nothing is credited.
    PurchaseRevoked,
    /// The store transaction does not name the caller's store account (`appAccountToken`,
    /// `obfuscatedExternalAccountId`): nothing is credited.
    PurchaseNotBound,
    /// Genuine store data, but for another app (bundle id, package name) or environment.
    WrongApp,
    /// The store product is not one of our packages.
    StoreProductUnknown,
    InsufficientDiamonds,
    PayoutLimitReached,
    PayoutBelowMinimum,
    PayoutAccountMissing,
    /// A transient failure (throttling, a lost transaction race): safe to retry with the same
    /// idempotency key.
    Unavailable,
    /// Logged with the request id, never described to the client.
    Internal,
}

impl Problem {
    /// The table: status, code and title of every problem.
    pub const fn describe(self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Problem::InvalidRequest => (S::BAD_REQUEST, "invalid_request", "Invalid request"),
            Problem::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            Problem::Unauthenticated => (S::UNAUTHORIZED, "unauthenticated", "Unauthenticated"),
            Problem::AgeRestricted => (S::FORBIDDEN, "age_restricted", "Age restricted"),
            Problem::Forbidden => (S::FORBIDDEN, "forbidden", "Forbidden"),
            Problem::AccountRestricted => {
                (S::FORBIDDEN, "account_restricted", "Account restricted")
            }
            Problem::NotFound => (S::NOT_FOUND, "not_found", "Not found"),
            Problem::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            Problem::InsufficientCoins => (S::CONFLICT, "insufficient_coins", "Insufficient coins"),
            Problem::CoinDebt => (S::CONFLICT, "coin_debt", "Coin debt"),
            Problem::CoinsAlreadySpent => {
                (S::CONFLICT, "coins_already_spent", "Coins already spent")
            }
            Problem::RefundWindowClosed => {
                (S::CONFLICT, "refund_window_closed", "Refund window closed")
            }
            Problem::AlreadyRefunded => (S::CONFLICT, "already_refunded", "Already refunded"),
            Problem::QuoteExpired => (S::CONFLICT, "quote_expired", "Quote expired"),
            Problem::SpendingLimitReached => (
                S::CONFLICT,
                "spending_limit_reached",
                "Spending limit reached",
            ),
            Problem::PurchaseNotCredited => (
                S::CONFLICT,
                "purchase_not_credited",
                "Purchase not credited",
            ),
            Problem::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "Idempotency key reused",
            ),
            Problem::RegionMismatch => (
                S::UNPROCESSABLE_ENTITY,
                "region_mismatch",
                "Region mismatch",
            ),
            Problem::SelfGift => (S::UNPROCESSABLE_ENTITY, "self_gift", "Self gift"),
            Problem::RecipientNotCreator => (
                S::UNPROCESSABLE_ENTITY,
                "recipient_not_creator",
                "Recipient is not a creator",
            ),
            Problem::ChannelNotAllowed => (
                S::UNPROCESSABLE_ENTITY,
                "channel_not_allowed",
                "Channel not allowed",
            ),
            Problem::InvalidSignature => (S::BAD_REQUEST, "invalid_signature", "Invalid signature"),
            Problem::RefundViaStore => (S::CONFLICT, "refund_via_store", "Refund via the store"),
            Problem::AlreadyCredited => (S::CONFLICT, "already_credited", "Already credited"),
            Problem::PurchaseRevoked => (S::CONFLICT, "purchase_revoked", "Purchase revoked"),
            Problem::PurchaseNotBound => (S::CONFLICT, "purchase_not_bound", "Purchase not bound"),
            Problem::WrongApp => (S::UNPROCESSABLE_ENTITY, "wrong_app", "Wrong app"),
            Problem::StoreProductUnknown => (
                S::UNPROCESSABLE_ENTITY,
                "store_product_unknown",
                "Store product unknown",
            ),
            Problem::InsufficientDiamonds => (
                S::CONFLICT,
                "insufficient_diamonds",
                "Insufficient diamonds",
            ),
            Problem::PayoutLimitReached => {
                (S::CONFLICT, "payout_limit_reached", "Payout limit reached")
            }
            Problem::PayoutBelowMinimum => (
                S::UNPROCESSABLE_ENTITY,
                "payout_below_minimum",
                "Payout below minimum",
            ),
            Problem::PayoutAccountMissing => (
                S::UNPROCESSABLE_ENTITY,
                "payout_account_missing",
                "Payout account missing",
            ),
            Problem::Unavailable => (S::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            Problem::Internal => (S::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    pub const fn status(self) -> StatusCode {
        self.describe().0
    }

    /// The stable machine-readable code of API.md.
    pub const fn code(self) -> &'static str {
        self.describe().1
    }

    /// The short human summary (the same for every instance of a code).
    pub const fn title(self) -> &'static str {
        self.describe().2
    }
}

/// A request that failed: its problem, what to tell the client, and for our own failures the
/// cause (logged, never shown).
#[derive(Debug)]
pub struct ApiError {
    problem: Problem,
    detail: String,
    source: Option<InternalError>,
    /// The methods the path allows, for a 405's `Allow` header (RFC 9110 requires it).
    allow: Option<String>,
}

impl ApiError {
    /// A problem with the detail the client reads.
    pub fn new(problem: Problem, detail: impl fmt::Display) -> Self {
        ApiError {
            problem,
            detail: detail.to_string(),
            source: None,
            allow: None,
        }
    }

    /// 405 `method_not_allowed`: the path exists with these methods only.
    pub fn method_not_allowed(allowed: &[&str]) -> Self {
        let allow = allowed.join(", ");
        ApiError {
            allow: Some(allow.clone()),
            ..ApiError::new(
                Problem::MethodNotAllowed,
                format!("this path allows {allow} only"),
            )
        }
    }

    /// 400 `invalid_request` with this detail.
    pub fn invalid(detail: impl fmt::Display) -> Self {
        ApiError::new(Problem::InvalidRequest, detail)
    }

    /// 500 `internal`: a failure of ours, logged and never described.
    pub fn internal(error: impl Into<InternalError>) -> Self {
        ApiError {
            problem: Problem::Internal,
            detail: "internal error".into(),
            source: Some(error.into()),
            allow: None,
        }
    }

    /// 503 `unavailable`: a transient failure of ours; the same request may succeed later.
    pub fn unavailable(error: impl Into<InternalError>) -> Self {
        ApiError {
            problem: Problem::Unavailable,
            detail: "the service is busy; retry with the same Idempotency-Key".into(),
            source: Some(error.into()),
            allow: None,
        }
    }

    pub fn problem(&self) -> Problem {
        self.problem
    }

    pub fn status(&self) -> StatusCode {
        self.problem.status()
    }

    pub fn code(&self) -> &'static str {
        self.problem.code()
    }

    /// Is this a fault of ours (logged at error level) rather than of the request?
    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
    }

    /// The `application/problem+json` response. Internal sources are logged here (inside the
    /// request's span, so with its request id) and never rendered.
    pub fn into_response(self) -> Response<Body> {
        let (status, code, title) = self.problem.describe();
        if let Some(source) = &self.source {
            tracing::error!(code, error = %source, source_chain = ?source, "request failed");
        }
        let problem = ProblemBody {
            r#type: format!("urn:coins:problem:{code}"),
            title,
            status: status.as_u16(),
            detail: &self.detail,
            code,
        };
        let body = serde_json::to_string(&problem)
            .expect("a problem of strings and a number always serializes");
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.problem == Problem::Unavailable {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Some(allow) = self
            .allow
            .as_deref()
            .and_then(|a| HeaderValue::from_str(a).ok())
        {
            headers.insert(header::ALLOW, allow);
        }
        response
    }
}

/// The detail the client reads (internal failures have a fixed one).
impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for ApiError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

/// RFC 9457 problem details, plus our stable `code`.
#[derive(Serialize)]
struct ProblemBody<'a> {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
}

impl From<serde_json::Error> for ApiError {
    /// Serializing a response failed: a bug of ours, not the client's.
    fn from(error: serde_json::Error) -> Self {
        ApiError::internal(error)
    }
}

/// The ledger's rejections are the client's problems; its failures stay internal.
impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        let problem = match &error {
            LedgerError::NotFound => Problem::NotFound,
            LedgerError::QuoteExpired { .. } => Problem::QuoteExpired,
            LedgerError::InsufficientCoins { .. } => Problem::InsufficientCoins,
            LedgerError::SelfGift => Problem::SelfGift,
            LedgerError::RecipientNotCreator => Problem::RecipientNotCreator,
            LedgerError::SpendingLimitReached(_) => Problem::SpendingLimitReached,
            LedgerError::CoinDebt { .. } => Problem::CoinDebt,
            LedgerError::AccountRestricted => Problem::AccountRestricted,
            LedgerError::AlreadyRefunded => Problem::AlreadyRefunded,
            LedgerError::CoinsAlreadySpent => Problem::CoinsAlreadySpent,
            LedgerError::RefundWindowClosed { .. } => Problem::RefundWindowClosed,
            LedgerError::PurchaseNotCredited => Problem::PurchaseNotCredited,
            LedgerError::RefundViaStore => Problem::RefundViaStore,
            LedgerError::AlreadyCredited => Problem::AlreadyCredited,
            LedgerError::PurchaseRevoked => Problem::PurchaseRevoked,
            LedgerError::InsufficientDiamonds { .. } => Problem::InsufficientDiamonds,
            LedgerError::PayoutLimitReached => Problem::PayoutLimitReached,
            LedgerError::PayoutBelowMinimum { .. } => Problem::PayoutBelowMinimum,
            LedgerError::PayoutAccountMissing => Problem::PayoutAccountMissing,
            LedgerError::IdempotencyKeyReused => Problem::IdempotencyKeyReused,
            LedgerError::InvalidRequest(_) => Problem::InvalidRequest,
            // Retrying the same request (same idempotency key) may well succeed.
            LedgerError::Contention
            | LedgerError::Store(StoreError::Transient(_) | StoreError::Ambiguous(_)) => {
                return ApiError::unavailable(error);
            }
            LedgerError::Store(_) | LedgerError::Corrupt(_) | LedgerError::Overflow => {
                return ApiError::internal(error);
            }
        };
        ApiError::new(problem, error)
    }
}

impl From<QuoteError> for ApiError {
    fn from(error: QuoteError) -> Self {
        let problem = match &error {
            QuoteError::UnknownCountry(_) => Problem::Forbidden,
            QuoteError::UnknownPackage(_) | QuoteError::CoinsOutOfBounds { .. } => {
                Problem::InvalidRequest
            }
            QuoteError::ChannelNotAllowed { .. } => Problem::ChannelNotAllowed,
            QuoteError::PriceOutOfRange => return ApiError::internal(error),
        };
        ApiError::new(problem, error)
    }
}

impl From<GiftError> for ApiError {
    /// An unknown gift or a quantity out of bounds: what the client asked for does not exist.
    fn from(error: GiftError) -> Self {
        ApiError::invalid(error)
    }
}

impl From<BadTargetId> for ApiError {
    fn from(error: BadTargetId) -> Self {
        ApiError::invalid(error)
    }
}

impl From<SelfGift> for ApiError {
    fn from(error: SelfGift) -> Self {
        ApiError::new(Problem::SelfGift, error)
    }
}

impl From<AgeBelowMinimum> for ApiError {
    fn from(error: AgeBelowMinimum) -> Self {
        ApiError::new(
            Problem::AgeRestricted,
            format!(
                "you must be at least {} years old to do this",
                error.minimum_age
            ),
        )
    }
}

impl From<RefundRejected> for ApiError {
    fn from(error: RefundRejected) -> Self {
        ApiError::from(LedgerError::from(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_json(response: &Response<Body>) -> serde_json::Value {
        serde_json::from_slice(response.body().as_ref()).unwrap()
    }

    #[test]
    fn a_rejection_renders_as_problem_json_with_its_code() {
        let response = ApiError::new(
            Problem::InsufficientCoins,
            "you have 3 coins, the gift costs 5",
        )
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(
            body_json(&response),
            serde_json::json!({
                "type": "urn:coins:problem:insufficient_coins",
                "title": "Insufficient coins",
                "status": 409,
                "detail": "you have 3 coins, the gift costs 5",
                "code": "insufficient_coins",
            })
        );
    }

    #[test]
    fn an_internal_error_never_shows_its_message() {
        let secret = "connection to dynamodb.internal:443 refused; table coins-prod";
        let response = ApiError::internal(secret).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let text = std::str::from_utf8(response.body().as_ref()).unwrap();
        assert!(!text.contains("dynamodb"), "leaked: {text}");
        assert_eq!(body_json(&response)["code"], "internal");
        assert_eq!(body_json(&response)["detail"], "internal error");
    }

    #[test]
    fn a_transient_failure_is_503_with_retry_after() {
        let response = ApiError::unavailable("throttled").into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        assert!(
            !std::str::from_utf8(response.body().as_ref())
                .unwrap()
                .contains("throttled")
        );
    }

    #[test]
    fn ledger_rejections_keep_their_codes_and_failures_stay_internal() {
        let spent = ApiError::from(LedgerError::CoinsAlreadySpent);
        assert_eq!(
            (spent.status().as_u16(), spent.code()),
            (409, "coins_already_spent")
        );
        let busy = ApiError::from(LedgerError::Contention);
        assert_eq!((busy.status().as_u16(), busy.code()), (503, "unavailable"));
        let throttled = ApiError::from(LedgerError::Store(StoreError::Transient(
            "throttled".into(),
        )));
        assert_eq!(throttled.status().as_u16(), 503);
        let fatal = ApiError::from(LedgerError::Store(StoreError::Fatal(
            "no table coins-prod".into(),
        )));
        assert_eq!(fatal.code(), "internal");
        let corrupt = ApiError::from(LedgerError::Corrupt("pk=USER#alice".into())).into_response();
        assert!(
            !std::str::from_utf8(corrupt.body().as_ref())
                .unwrap()
                .contains("alice")
        );
    }

    #[test]
    fn rules_rejections_map_to_their_codes() {
        let channel = coins_rules::Channel::Ios;
        let error = ApiError::from(QuoteError::ChannelNotAllowed { channel });
        assert_eq!(
            (error.status().as_u16(), error.code()),
            (422, "channel_not_allowed")
        );
        let error = ApiError::from(QuoteError::CoinsOutOfBounds {
            coins: 1,
            min: 30,
            max: 2_500_000,
        });
        assert_eq!(error.code(), "invalid_request");
        let error = ApiError::from(AgeBelowMinimum {
            age: 17,
            minimum_age: 18,
        });
        assert_eq!(
            (error.status().as_u16(), error.code()),
            (403, "age_restricted")
        );
        assert_eq!(ApiError::from(SelfGift).code(), "self_gift");
        let until = "2026-03-16T00:00:00Z".parse().unwrap();
        let error = ApiError::from(RefundRejected::WindowClosed {
            refundable_until: until,
        });
        assert_eq!(error.code(), "refund_window_closed");
    }

    #[test]
    fn the_contract_codes_have_the_statuses_of_api_md() {
        let cases = [
            (Problem::InvalidRequest, 400, "invalid_request"),
            (Problem::Unauthenticated, 401, "unauthenticated"),
            (Problem::AgeRestricted, 403, "age_restricted"),
            (Problem::Forbidden, 403, "forbidden"),
            (Problem::AccountRestricted, 403, "account_restricted"),
            (Problem::CoinDebt, 409, "coin_debt"),
            (Problem::NotFound, 404, "not_found"),
            (Problem::InsufficientCoins, 409, "insufficient_coins"),
            (Problem::CoinsAlreadySpent, 409, "coins_already_spent"),
            (Problem::RefundWindowClosed, 409, "refund_window_closed"),
            (Problem::AlreadyRefunded, 409, "already_refunded"),
            (Problem::QuoteExpired, 409, "quote_expired"),
            (Problem::SpendingLimitReached, 409, "spending_limit_reached"),
            (Problem::IdempotencyKeyReused, 422, "idempotency_key_reused"),
            (Problem::RegionMismatch, 422, "region_mismatch"),
            (Problem::SelfGift, 422, "self_gift"),
            (Problem::RecipientNotCreator, 422, "recipient_not_creator"),
            (Problem::ChannelNotAllowed, 422, "channel_not_allowed"),
            (Problem::InvalidSignature, 400, "invalid_signature"),
            (Problem::PayloadTooLarge, 413, "payload_too_large"),
        ];
        for (problem, status, code) in cases {
            assert_eq!(
                (problem.status().as_u16(), problem.code()),
                (status, code),
                "{problem:?}"
            );
        }
    }
}
