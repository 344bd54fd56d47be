//! [`Ledger`]: the operations the functions call, over any [`Store`].
//!
//! Every mutation follows one loop, [`Ledger::transact`]: read what it needs (strongly
//! consistent), compute the new state with [`crate::domain`], commit all item writes in one
//! conditional transaction, and on a failed condition, a transient refusal or an unknown outcome,
//! re-read and try again with jittered exponential backoff, a bounded number of times.
//! Re-reading makes even a lost response safe: the first thing each attempt reads is the marker
//! of its own effect (the idempotency record, the payment event, the refund nonce).

mod accounts;
mod dispatch;
mod earnings;
mod gifts;
mod lots;
mod outstanding;
mod payouts;
mod purchases;
mod refunds;
mod reversals;
mod stores;

use std::future::Future;
use std::time::Duration;

use jiff::SignedDuration;

pub use accounts::{
    Amount, DEFAULT_PAGE, DailyLimitView, Enrollment, LotView, MAX_CURSOR_CHARS, MAX_PAGE,
    PurchasePage, PurchaseView, RefundView, TxnPage, TxnView, WalletView,
};
pub use dispatch::{CLAIM_LEASE, Claim, Sent};
pub use earnings::{
    CONFIRM_GRACE, Counted, Earnings, GIFTS_PER_PAGE, ReceivedGiftView, ReceivedPage, ValueView,
    by_creator,
};
pub use gifts::{GiftReceipt, GiftRequest};
pub use lots::{CloseOutcome, SweepReport};
pub use outstanding::{
    OutstandingItem, STUCK_AFTER, SWEEP_AFTER, SWEEP_GIFTS_PER_PARTITION, SWEEP_SENDS_PER_PARTITION,
};
pub use payouts::{PayoutClaim, PayoutPage, PayoutView, Transferred};
pub use purchases::{Paid, Payment, PaymentEvent, PaymentOutcome, PurchaseReceipt};
pub use refunds::{RefundBy, RefundReceipt};
pub use reversals::{ReversalEvent, ReversalOutcome, Share};
pub use stores::{StoreCredit, StorePurchase, StoreWord, StoreWordOutcome};

use coins_ids::UserId;
use coins_rules::Zone;

use crate::domain::{self, Lot, Wallet};
use crate::error::LedgerError;
use crate::store::{Condition, Query, SortKey, Store, StoreError, Transaction, Write};
use crate::table::{Record, Row, keys};

/// Tunables; the defaults suit production.
#[derive(Clone, Debug)]
pub struct LedgerConfig {
    /// Attempts per operation (first try included) before giving up with
    /// [`LedgerError::Contention`]. Each failed attempt means another writer committed in between,
    /// so with N concurrent writers on one wallet, N attempts always suffice.
    pub max_attempts: u32,
    /// First backoff ceiling; doubles per attempt up to `backoff_cap`, with full jitter.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// How long a stored idempotent response is returned for a repeated key.
    pub idempotency_ttl: SignedDuration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            max_attempts: 10,
            backoff_base: Duration::from_millis(5),
            backoff_cap: Duration::from_millis(200),
            idempotency_ttl: SignedDuration::from_hours(24),
        }
    }
}

/// Balances, purchases, gifts and refunds over a store.
#[derive(Clone, Debug)]
pub struct Ledger<S: Store> {
    store: S,
    config: LedgerConfig,
}

/// A wallet and its open lots, read together in one consistent query.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    /// The wallet; version 0 if it does not exist yet.
    pub wallet: Wallet,
    /// Open lots, oldest first.
    pub lots: Vec<Lot>,
}

impl Snapshot {
    /// The open lot of `purchase`, if any.
    pub fn lot_of(&self, purchase: &coins_ids::PurchaseId) -> Option<&Lot> {
        self.lots.iter().find(|lot| lot.purchase_id == *purchase)
    }
}

/// What one attempt of a mutation decided, from what it read.
pub(crate) enum Attempt<T> {
    /// Nothing (more) to write: this is the answer (a replay, a rejection recorded before).
    Done(T),
    /// Commit these writes; this is the answer once they land.
    Commit(Transaction, T),
}

impl<S: Store> Ledger<S> {
    pub fn new(store: S) -> Self {
        Ledger::with_config(store, LedgerConfig::default())
    }

    pub fn with_config(store: S, config: LedgerConfig) -> Self {
        assert!(config.max_attempts > 0, "at least one attempt");
        Ledger { store, config }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn config(&self) -> &LedgerConfig {
        &self.config
    }

    fn retry(&self) -> Retry<'_> {
        Retry {
            config: &self.config,
            failures: 0,
        }
    }

    /// The loop every mutation runs: `attempt` reads and decides; its writes are committed; a
    /// failed condition, a transient refusal or an unknown outcome backs off and decides again
    /// from a fresh read. (`attempt` returns a future that borrows only what the caller lent
    /// it, not an async closure: that keeps the future `Send` for a multi-threaded runtime.)
    pub(crate) async fn transact<T, F, Fut>(&self, attempt: F) -> Result<T, LedgerError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Attempt<T>, LedgerError>>,
    {
        let mut retry = self.retry();
        loop {
            let (transaction, answer) = match attempt().await? {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Commit(transaction, answer) => (transaction, answer),
            };
            match self.store.commit(transaction).await {
                Ok(()) => return Ok(answer),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// Puts a row that must not exist yet: `false` if it does (or a lost response hid that our
    /// own earlier try wrote it). Transient failures are retried.
    pub(crate) async fn put_new(&self, row: impl Into<Record>) -> Result<bool, LedgerError> {
        let transaction = Transaction::of([Write::put(row, Condition::Absent)]);
        let mut retry = self.retry();
        loop {
            match self.store.commit(transaction.clone()).await {
                Ok(()) => return Ok(true),
                Err(StoreError::ConditionFailed { .. }) => return Ok(false),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// The wallet (or an empty one opened in `zone`) and its open lots, strongly consistent.
    pub(crate) async fn snapshot(
        &self,
        user: &UserId,
        zone: &Zone,
        now: jiff::Timestamp,
    ) -> Result<Snapshot, LedgerError> {
        Ok(match self.existing_snapshot(user).await? {
            Some(snapshot) => snapshot,
            None => Snapshot {
                wallet: Wallet::empty(user, zone, now),
                lots: Vec::new(),
            },
        })
    }

    /// The wallet and its open lots, if the user has a wallet.
    pub(crate) async fn existing_snapshot(
        &self,
        user: &UserId,
    ) -> Result<Option<Snapshot>, LedgerError> {
        let query = Query::table(
            keys::user_pk(user),
            SortKey::BeginsWith(keys::WALLET_SK.to_owned()),
        );
        let mut wallet = None;
        let mut lots = Vec::new();
        for record in self.store.query(&query).await? {
            match record {
                Record::Wallet(record) => wallet = Some(record),
                Record::Lot(lot) => lots.push(lot),
                other => {
                    return Err(LedgerError::Corrupt(format!(
                        "{:?} among a wallet's lots",
                        other.key()
                    )));
                }
            }
        }
        // What is left of each lot follows from the coins the wallet has spent from them.
        lots.sort_by_key(|lot| lot.key().sk);
        Ok(wallet.map(|wallet| {
            domain::derive_remaining(wallet.lot_spent, &mut lots);
            Snapshot { wallet, lots }
        }))
    }
}

/// Bounded retries with full-jitter exponential backoff.
pub(crate) struct Retry<'a> {
    config: &'a LedgerConfig,
    failures: u32,
}

impl Retry<'_> {
    /// Waits before the next attempt, or turns the failure into the operation's error when the
    /// budget is spent or retrying cannot help.
    pub async fn after(&mut self, error: StoreError) -> Result<(), LedgerError> {
        if let StoreError::Fatal(_) = error {
            return Err(error.into());
        }
        self.failures += 1;
        if self.failures >= self.config.max_attempts {
            tracing::warn!(%error, attempts = self.failures, "ledger retries exhausted");
            return Err(match error {
                StoreError::ConditionFailed { .. } => LedgerError::Contention,
                other => LedgerError::Store(other),
            });
        }
        tracing::debug!(%error, attempt = self.failures, "ledger retry");
        tokio::time::sleep(self.backoff()).await;
        Ok(())
    }

    fn backoff(&self) -> Duration {
        let exponent = self.failures.saturating_sub(1).min(16);
        let ceiling = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exponent)
            .min(self.config.backoff_cap);
        let ceiling_us = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rand::random_range(0..=ceiling_us))
    }
}
