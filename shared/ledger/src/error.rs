//! The ledger's one error type: every rejection a named variant saying what happened.
//!
//! What a client is answered (status, code) is the HTTP edge's business: `coins-http` maps each
//! variant in one table. Store and corruption failures are internal: never echoed to a client.

use jiff::Timestamp;

use coins_ids::InvalidId;
use coins_rules::SelfGift;
use coins_rules::limits::SpendingLimitReached;
use coins_rules::pricing::QuoteExpired;
use coins_rules::refund::RefundRejected;

use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// No such quote, purchase or creator, or it belongs to another user.
    #[error("not found")]
    NotFound,
    /// The quote is past its expiry.
    #[error("the quote expired at {expired_at}")]
    QuoteExpired { expired_at: Timestamp },
    /// The balance does not cover the debit.
    #[error("insufficient coins: {balance} available, {requested} requested")]
    InsufficientCoins { balance: u64, requested: u64 },
    /// A user sending a gift to themself.
    #[error("a user cannot send a gift to themself")]
    SelfGift,
    /// The recipient never enrolled as a creator.
    #[error("the recipient is not an enrolled creator")]
    RecipientNotCreator,
    /// The sender owes coins after a reversal: no gifts until a purchase repays them.
    #[error("you owe {debt} coins from a reversed purchase; your next purchase repays them")]
    CoinDebt { debt: u64 },
    /// The account is restricted after repeated reversals: no quotes or purchases.
    #[error("the account is restricted after repeated payment reversals; contact support")]
    AccountRestricted,
    /// The gift would pass the sender's daily limit.
    #[error(transparent)]
    SpendingLimitReached(#[from] SpendingLimitReached),
    /// The purchase was refunded before.
    #[error("the purchase is already refunded")]
    AlreadyRefunded,
    /// Some of the purchase's coins are spent, so it is not refundable.
    #[error("some of the purchase's coins are already spent")]
    CoinsAlreadySpent,
    /// The refund window ended and no admin override applies.
    #[error("the refund window closed at {refundable_until}")]
    RefundWindowClosed { refundable_until: Timestamp },
    /// An app-store purchase: its store refunds it, not us.
    #[error("the purchase was made in an app store; ask the store for a refund")]
    RefundViaStore,
    /// A payout of more diamonds than are available.
    #[error("{available} diamonds are available, {requested} requested")]
    InsufficientDiamonds { available: u64, requested: u64 },
    /// A payout under the minimum.
    #[error("a payout is at least {minimum} diamonds")]
    PayoutBelowMinimum { minimum: u64 },
    /// A payout past the day's maximum.
    #[error("the payouts of one day may not pass the daily maximum")]
    PayoutLimitReached,
    /// No Stripe Connect account to pay the creator to.
    #[error("no payout account is set up for this creator")]
    PayoutAccountMissing,
    /// The store transaction was credited to another user.
    #[error("this store transaction was credited to another account")]
    AlreadyCredited,
    /// The store refunded (revoked) the transaction, or voided the order: nothing is credited.
    #[error("the store refunded or voided this transaction")]
    PurchaseRevoked,
    /// The purchase is pending, failed or rejected, so there is nothing to refund.
    #[error("the purchase was never credited")]
    PurchaseNotCredited,
    /// The same idempotency key came with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// A value the caller should have validated (zero coins, bad id, bad cursor).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The wallet kept changing under us and the bounded retries ran out.
    #[error("too much contention on the wallet; retry")]
    Contention,
    /// The store failed (its variant says whether a retry may help).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored item does not read back: data or code is wrong.
    #[error("corrupt item: {0}")]
    Corrupt(String),
    /// Coin arithmetic overflowed u64: refused rather than wrapped.
    #[error("coin arithmetic overflow")]
    Overflow,
}

impl LedgerError {
    /// May the same request (same idempotency key) be retried and expect to work? Contention
    /// and a refused or unknown store outcome may pass on a later try; nothing else will.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LedgerError::Contention
                | LedgerError::Store(StoreError::Transient(_) | StoreError::Ambiguous(_))
        )
    }
}

impl From<QuoteExpired> for LedgerError {
    fn from(expired: QuoteExpired) -> Self {
        LedgerError::QuoteExpired {
            expired_at: expired.expires_at,
        }
    }
}

impl From<SelfGift> for LedgerError {
    fn from(_: SelfGift) -> Self {
        LedgerError::SelfGift
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
