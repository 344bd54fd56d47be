//! The ledger's one error type: every rejection a named variant, each doc giving its HTTP answer.
//!
//! The function layer maps [`LedgerError::code`] to the `code` of a problem+json body (API.md).
//! Store and corruption failures are internal: log them, answer 500/503, never echo them.

use jiff::Timestamp;

use coins_rules::limits::SpendingLimitReached;
use coins_rules::refund::RefundRejected;

use crate::ids::InvalidId;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// 404 `not_found`: no such quote/purchase/creator, or it belongs to another user.
    #[error("not found")]
    NotFound,
    /// 409 `quote_expired`.
    #[error("the quote expired at {expired_at}")]
    QuoteExpired { expired_at: Timestamp },
    /// 409 `insufficient_coins`.
    #[error("insufficient coins: {balance} available, {requested} requested")]
    InsufficientCoins { balance: u64, requested: u64 },
    /// 422 `self_gift`.
    #[error("a user cannot send a gift to themself")]
    SelfGift,
    /// 422 `recipient_not_creator`.
    #[error("the recipient is not an enrolled creator")]
    RecipientNotCreator,
    /// 409 `spending_limit_reached`.
    #[error(transparent)]
    SpendingLimitReached(#[from] SpendingLimitReached),
    /// 409 `already_refunded`.
    #[error("the purchase is already refunded")]
    AlreadyRefunded,
    /// 409 `coins_already_spent`.
    #[error("some of the purchase's coins are already spent")]
    CoinsAlreadySpent,
    /// 409 `refund_window_closed`.
    #[error("the refund window closed at {refundable_until}")]
    RefundWindowClosed { refundable_until: Timestamp },
    /// 409 `purchase_not_credited`: the purchase is pending, failed or rejected, so there is
    /// nothing to refund.
    #[error("the purchase was never credited")]
    PurchaseNotCredited,
    /// 409 `gift_too_fragmented`: the gift would consume more purchase lots than one atomic
    /// write can touch (over 90 small purchases in 15 days); a smaller gift goes through.
    #[error("the gift spans {lots} purchase lots, more than one atomic write allows")]
    GiftTooFragmented { lots: usize },
    /// 422 `idempotency_key_reused`: the same key came with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// 400 `invalid_request`: a value the caller should have validated (zero coins, unknown
    /// time zone, bad id, bad cursor).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// 503 (retryable): the wallet kept changing under us and the bounded retries ran out.
    #[error("too much contention on the wallet; retry")]
    Contention,
    /// 500/503: the store failed (its variant says whether a retry may help).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// 500: a stored item does not read back; data or code is wrong.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// 500: coin arithmetic overflowed u64; refused rather than wrapped.
    #[error("coin arithmetic overflow")]
    Overflow,
}

impl LedgerError {
    /// The stable snake_case code for clients (API.md), or `internal` for failures that are ours.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::NotFound => "not_found",
            LedgerError::QuoteExpired { .. } => "quote_expired",
            LedgerError::InsufficientCoins { .. } => "insufficient_coins",
            LedgerError::SelfGift => "self_gift",
            LedgerError::RecipientNotCreator => "recipient_not_creator",
            LedgerError::SpendingLimitReached(_) => "spending_limit_reached",
            LedgerError::AlreadyRefunded => "already_refunded",
            LedgerError::CoinsAlreadySpent => "coins_already_spent",
            LedgerError::RefundWindowClosed { .. } => "refund_window_closed",
            LedgerError::PurchaseNotCredited => "purchase_not_credited",
            LedgerError::GiftTooFragmented { .. } => "gift_too_fragmented",
            LedgerError::IdempotencyKeyReused => "idempotency_key_reused",
            LedgerError::InvalidRequest(_) => "invalid_request",
            LedgerError::Contention => "contention",
            LedgerError::Store(_) | LedgerError::Corrupt(_) | LedgerError::Overflow => "internal",
        }
    }

    /// The HTTP status the variant's doc names.
    pub fn status(&self) -> u16 {
        match self {
            LedgerError::NotFound => 404,
            LedgerError::QuoteExpired { .. }
            | LedgerError::InsufficientCoins { .. }
            | LedgerError::SpendingLimitReached(_)
            | LedgerError::AlreadyRefunded
            | LedgerError::CoinsAlreadySpent
            | LedgerError::RefundWindowClosed { .. }
            | LedgerError::PurchaseNotCredited
            | LedgerError::GiftTooFragmented { .. } => 409,
            LedgerError::SelfGift
            | LedgerError::RecipientNotCreator
            | LedgerError::IdempotencyKeyReused => 422,
            LedgerError::InvalidRequest(_) => 400,
            LedgerError::Contention => 503,
            LedgerError::Store(StoreError::Transient(_) | StoreError::Ambiguous(_)) => 503,
            LedgerError::Store(_) | LedgerError::Corrupt(_) | LedgerError::Overflow => 500,
        }
    }

    /// May the client retry the same request (same idempotency key) and expect it to work?
    pub fn is_retryable(&self) -> bool {
        self.status() == 503
    }
}

impl From<RefundRejected> for LedgerError {
    fn from(rejected: RefundRejected) -> Self {
        match rejected {
            RefundRejected::WindowClosed { refundable_until } => {
                LedgerError::RefundWindowClosed { refundable_until }
            }
            RefundRejected::CoinsAlreadySpent => LedgerError::CoinsAlreadySpent,
        }
    }
}

impl From<InvalidId> for LedgerError {
    fn from(invalid: InvalidId) -> Self {
        LedgerError::InvalidRequest(invalid.to_string())
    }
}
