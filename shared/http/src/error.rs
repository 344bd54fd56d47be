//! The one error type of the HTTP boundary and its `application/problem+json` rendering.
//!
//! Every rejection a client can see is a variant here, with a stable snake_case `code` (the
//! contract of API.md) and one HTTP status. Internal failures are logged with the request id and
//! answered with a bare 500: no error body ever carries an internal message.

use std::fmt;

use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Response};
use serde::Serialize;

use coins_ledger::LedgerError;
use coins_ledger::store::StoreError;
use coins_rules::{AgeBelowMinimum, GiftError, QuoteError, RefundRejected};

/// The `Content-Type` of every error body (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error source we do not show to clients (storage, serialization, configuration).
pub type InternalError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything a request can fail with, as the client sees it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request`: malformed JSON, a missing or wrong-typed field, an unknown enum
    /// value, an amount out of bounds, a missing or bad header. The text is shown to the client.
    #[error("{0}")]
    InvalidRequest(String),
    /// 413 `payload_too_large`: the body is larger than [`crate::body::MAX_BODY_BYTES`].
    #[error("the request body is larger than {limit_bytes} bytes")]
    PayloadTooLarge { limit_bytes: usize },
    /// 401 `unauthenticated`: no verified identity, or its claims are incomplete or invalid.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403 `age_restricted`: the caller is under the minimum age of their jurisdiction.
    #[error("you must be at least {minimum_age} years old to do this")]
    AgeRestricted { minimum_age: u32 },
    /// 403 `forbidden`: authenticated, but not allowed (e.g. an admin route without `coins:admin`).
    #[error("{0}")]
    Forbidden(String),
    /// 404 `not_found`: no such route or resource (or not the caller's).
    #[error("{0}")]
    NotFound(String),
    /// 405 `method_not_allowed`: the path exists, the method does not.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 409 `insufficient_coins`.
    #[error("{0}")]
    InsufficientCoins(String),
    /// 409 `coins_already_spent`: some of the purchase's coins are spent, so it is not refundable.
    #[error("{0}")]
    CoinsAlreadySpent(String),
    /// 409 `refund_window_closed`.
    #[error("{0}")]
    RefundWindowClosed(String),
    /// 409 `already_refunded`.
    #[error("{0}")]
    AlreadyRefunded(String),
    /// 409 `quote_expired`.
    #[error("{0}")]
    QuoteExpired(String),
    /// 409 `spending_limit_reached`: the gift would pass the caller's daily limit.
    #[error("{0}")]
    SpendingLimitReached(String),
    /// 409 `purchase_not_credited`: the purchase is pending, failed or rejected, so there is
    /// nothing to refund.
    #[error("{0}")]
    PurchaseNotCredited(String),
    /// 409 `gift_too_fragmented`: the gift would consume more purchase lots than one atomic
    /// write can touch; a smaller gift goes through.
    #[error("{0}")]
    GiftTooFragmented(String),
    /// 422 `idempotency_key_reused`: the same `Idempotency-Key` came with a different body.
    #[error("{0}")]
    IdempotencyKeyReused(String),
    /// 422 `region_mismatch`: the quote or payment belongs to another billing country.
    #[error("{0}")]
    RegionMismatch(String),
    /// 422 `self_gift`.
    #[error("{0}")]
    SelfGift(String),
    /// 422 `recipient_not_creator`.
    #[error("{0}")]
    RecipientNotCreator(String),
    /// 422 `channel_not_allowed`: e.g. a custom amount outside the web shop.
    #[error("{0}")]
    ChannelNotAllowed(String),
    /// 400 `invalid_signature`: the payment webhook's signature is missing, malformed, stale or wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// 503 `unavailable`: a transient failure (throttling, a lost transaction race); safe to retry
    /// with the same idempotency key.
    #[error("the service is busy; retry with the same Idempotency-Key")]
    Unavailable(#[source] InternalError),
    /// 500 `internal`: logged with the request id, never described to the client.
    #[error("internal error")]
    Internal(#[source] InternalError),
}

impl ApiError {
    /// Wraps any error we will not show to the client.
    pub fn internal(error: impl Into<InternalError>) -> Self {
        ApiError::Internal(error.into())
    }

    pub fn invalid(detail: impl fmt::Display) -> Self {
        ApiError::InvalidRequest(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) | ApiError::InvalidSignature(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::AgeRestricted { .. } | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InsufficientCoins(_)
            | ApiError::CoinsAlreadySpent(_)
            | ApiError::RefundWindowClosed(_)
            | ApiError::AlreadyRefunded(_)
            | ApiError::QuoteExpired(_)
            | ApiError::SpendingLimitReached(_)
            | ApiError::PurchaseNotCredited(_)
            | ApiError::GiftTooFragmented(_) => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused(_)
            | ApiError::RegionMismatch(_)
            | ApiError::SelfGift(_)
            | ApiError::RecipientNotCreator(_)
            | ApiError::ChannelNotAllowed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code of API.md.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Unauthenticated(_) => "unauthenticated",
            ApiError::AgeRestricted { .. } => "age_restricted",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InsufficientCoins(_) => "insufficient_coins",
            ApiError::CoinsAlreadySpent(_) => "coins_already_spent",
            ApiError::RefundWindowClosed(_) => "refund_window_closed",
            ApiError::AlreadyRefunded(_) => "already_refunded",
            ApiError::QuoteExpired(_) => "quote_expired",
            ApiError::SpendingLimitReached(_) => "spending_limit_reached",
            ApiError::PurchaseNotCredited(_) => "purchase_not_credited",
            ApiError::GiftTooFragmented(_) => "gift_too_fragmented",
            ApiError::IdempotencyKeyReused(_) => "idempotency_key_reused",
            ApiError::RegionMismatch(_) => "region_mismatch",
            ApiError::SelfGift(_) => "self_gift",
            ApiError::RecipientNotCreator(_) => "recipient_not_creator",
            ApiError::ChannelNotAllowed(_) => "channel_not_allowed",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The short human summary of the problem type (the same for every instance of a code).
    fn title(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "Invalid request",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::Unauthenticated(_) => "Unauthenticated",
            ApiError::AgeRestricted { .. } => "Age restricted",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::NotFound(_) => "Not found",
            ApiError::MethodNotAllowed => "Method not allowed",
            ApiError::InsufficientCoins(_) => "Insufficient coins",
            ApiError::CoinsAlreadySpent(_) => "Coins already spent",
            ApiError::RefundWindowClosed(_) => "Refund window closed",
            ApiError::AlreadyRefunded(_) => "Already refunded",
            ApiError::QuoteExpired(_) => "Quote expired",
            ApiError::SpendingLimitReached(_) => "Spending limit reached",
            ApiError::PurchaseNotCredited(_) => "Purchase not credited",
            ApiError::GiftTooFragmented(_) => "Gift too fragmented",
            ApiError::IdempotencyKeyReused(_) => "Idempotency key reused",
            ApiError::RegionMismatch(_) => "Region mismatch",
            ApiError::SelfGift(_) => "Self gift",
            ApiError::RecipientNotCreator(_) => "Recipient is not a creator",
            ApiError::ChannelNotAllowed(_) => "Channel not allowed",
            ApiError::InvalidSignature(_) => "Invalid signature",
            ApiError::Unavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// Is this a fault of ours (logged at error level) rather than of the request?
    pub fn is_server_fault(&self) -> bool {
        self.status().is_server_error()
    }

    /// The `application/problem+json` response. Internal sources are logged here (inside the
    /// request's span, so with its request id) and never rendered.
    pub fn into_response(self) -> Response<Body> {
        if let ApiError::Internal(source) | ApiError::Unavailable(source) = &self {
            tracing::error!(code = self.code(), error = %source, source_chain = ?source, "request failed");
        }
        let problem = Problem {
            r#type: format!("urn:coins:problem:{}", self.code()),
            title: self.title(),
            status: self.status().as_u16(),
            // Display of Internal/Unavailable is a fixed text, never the source's message.
            detail: self.to_string(),
            code: self.code(),
        };
        let body = serde_json::to_string(&problem)
            .expect("a problem of strings and a number always serializes");
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if matches!(self, ApiError::Unavailable(_)) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// RFC 9457 problem details, plus our stable `code`.
#[derive(Serialize)]
struct Problem {
    r#type: String,
    title: &'static str,
    status: u16,
    detail: String,
    code: &'static str,
}

impl From<serde_json::Error> for ApiError {
    /// Serializing a response failed: a bug of ours, not the client's.
    fn from(error: serde_json::Error) -> Self {
        ApiError::internal(error)
    }
}

/// The ledger's rejections keep their names and codes; its failures stay internal.
impl From<LedgerError> for ApiError {
    fn from(error: LedgerError) -> Self {
        let detail = error.to_string();
        match error {
            LedgerError::NotFound => ApiError::NotFound(detail),
            LedgerError::QuoteExpired { .. } => ApiError::QuoteExpired(detail),
            LedgerError::InsufficientCoins { .. } => ApiError::InsufficientCoins(detail),
            LedgerError::SelfGift => ApiError::SelfGift(detail),
            LedgerError::RecipientNotCreator => ApiError::RecipientNotCreator(detail),
            LedgerError::SpendingLimitReached(_) => ApiError::SpendingLimitReached(detail),
            LedgerError::AlreadyRefunded => ApiError::AlreadyRefunded(detail),
            LedgerError::CoinsAlreadySpent => ApiError::CoinsAlreadySpent(detail),
            LedgerError::RefundWindowClosed { .. } => ApiError::RefundWindowClosed(detail),
            LedgerError::PurchaseNotCredited => ApiError::PurchaseNotCredited(detail),
            LedgerError::GiftTooFragmented { .. } => ApiError::GiftTooFragmented(detail),
            LedgerError::IdempotencyKeyReused => ApiError::IdempotencyKeyReused(detail),
            LedgerError::InvalidRequest(detail) => ApiError::InvalidRequest(detail),
            // Retrying the same request (same idempotency key) may well succeed.
            LedgerError::Contention
            | LedgerError::Store(StoreError::Transient(_) | StoreError::Ambiguous(_)) => {
                ApiError::Unavailable(error.into())
            }
            LedgerError::Store(_) | LedgerError::Corrupt(_) | LedgerError::Overflow => {
                ApiError::internal(error)
            }
        }
    }
}

impl From<QuoteError> for ApiError {
    fn from(error: QuoteError) -> Self {
        let detail = error.to_string();
        match error {
            QuoteError::UnknownCountry(_) => ApiError::Forbidden(detail),
            QuoteError::UnknownPackage(_) | QuoteError::CoinsOutOfBounds { .. } => {
                ApiError::InvalidRequest(detail)
            }
            QuoteError::ChannelNotAllowed { .. } => ApiError::ChannelNotAllowed(detail),
            QuoteError::PriceOutOfRange => ApiError::internal(error),
        }
    }
}

impl From<GiftError> for ApiError {
    fn from(error: GiftError) -> Self {
        let detail = error.to_string();
        match error {
            GiftError::UnknownGift(_)
            | GiftError::InvalidQuantity { .. }
            | GiftError::PriceOverflow => ApiError::InvalidRequest(detail),
            GiftError::SelfGift => ApiError::SelfGift(detail),
        }
    }
}

impl From<AgeBelowMinimum> for ApiError {
    fn from(error: AgeBelowMinimum) -> Self {
        ApiError::AgeRestricted {
            minimum_age: error.minimum_age,
        }
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
        let response = ApiError::InsufficientCoins("you have 3 coins, the gift costs 5".into())
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
        let response = ApiError::Unavailable("throttled".into()).into_response();
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
        assert_eq!(ApiError::from(GiftError::SelfGift).code(), "self_gift");
        let until = "2026-03-16T00:00:00Z".parse().unwrap();
        let error = ApiError::from(RefundRejected::WindowClosed {
            refundable_until: until,
        });
        assert_eq!(error.code(), "refund_window_closed");
    }

    #[test]
    fn the_contract_codes_have_the_statuses_of_api_md() {
        let cases: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::invalid("x"), 400, "invalid_request"),
            (
                ApiError::Unauthenticated("x".into()),
                401,
                "unauthenticated",
            ),
            (
                ApiError::AgeRestricted { minimum_age: 18 },
                403,
                "age_restricted",
            ),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (ApiError::NotFound("x".into()), 404, "not_found"),
            (
                ApiError::InsufficientCoins("x".into()),
                409,
                "insufficient_coins",
            ),
            (
                ApiError::CoinsAlreadySpent("x".into()),
                409,
                "coins_already_spent",
            ),
            (
                ApiError::RefundWindowClosed("x".into()),
                409,
                "refund_window_closed",
            ),
            (
                ApiError::AlreadyRefunded("x".into()),
                409,
                "already_refunded",
            ),
            (ApiError::QuoteExpired("x".into()), 409, "quote_expired"),
            (
                ApiError::SpendingLimitReached("x".into()),
                409,
                "spending_limit_reached",
            ),
            (
                ApiError::IdempotencyKeyReused("x".into()),
                422,
                "idempotency_key_reused",
            ),
            (ApiError::RegionMismatch("x".into()), 422, "region_mismatch"),
            (ApiError::SelfGift("x".into()), 422, "self_gift"),
            (
                ApiError::RecipientNotCreator("x".into()),
                422,
                "recipient_not_creator",
            ),
            (
                ApiError::ChannelNotAllowed("x".into()),
                422,
                "channel_not_allowed",
            ),
            (
                ApiError::InvalidSignature("x".into()),
                400,
                "invalid_signature",
            ),
            (
                ApiError::PayloadTooLarge { limit_bytes: 1 },
                413,
                "payload_too_large",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!(
                (error.status().as_u16(), error.code()),
                (status, code),
                "{error:?}"
            );
        }
    }
}
