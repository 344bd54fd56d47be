//! Refund-window closure: a lot past its deadline is closed and its remaining coins join the
//! non-refundable balance. Driven by the TTL'd marker's stream event and by a sweep of the
//! open-lots index for stragglers (TTL deletion can lag by days). Idempotent; never early.

use jiff::Timestamp;

use coins_ids::{PurchaseId, TxnId, UserId};

use super::{Attempt, Ledger};
use crate::domain;
use crate::error::LedgerError;
use crate::store::{Condition, Index, Query, SortKey, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, LOT_INDEX_SHARDS, PurchaseStatus, Row, TxnKind, keys, lot_from_key,
};

/// What `close_lot` did.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CloseOutcome {
    /// The lot was closed; this many coins became non-refundable.
    Closed { non_refundable_coins: u64 },
    /// The window is still open: nothing done.
    NotDue { refundable_until: Timestamp },
    /// No open lot: already closed, refunded, spent to zero, or never credited.
    NothingOpen,
}

/// What a sweep did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct SweepReport {
    pub closed: u32,
    pub not_due: u32,
    pub nothing_open: u32,
    /// Lots whose closure failed (logged); the next sweep retries them.
    pub failed: u32,
}

impl<S: Store> Ledger<S> {
    /// Closes the user's lot of this purchase if its window has ended at `now`.
    pub async fn close_lot(
        &self,
        user: &UserId,
        purchase_id: &PurchaseId,
        now: Timestamp,
    ) -> Result<CloseOutcome, LedgerError> {
        // Fixed for the whole call (the marker event and the sweep may close one lot at once).
        let entry_id = &TxnId::generate();
        self.transact(|| async move {
            let Some(snapshot) = self.existing_snapshot(user).await? else {
                return Ok(Attempt::Done(CloseOutcome::NothingOpen));
            };
            let Some(lot) = snapshot.lot_of(purchase_id) else {
                return Ok(Attempt::Done(CloseOutcome::NothingOpen));
            };
            if now < lot.refundable_until {
                return Ok(Attempt::Done(CloseOutcome::NotDue {
                    refundable_until: lot.refundable_until,
                }));
            }
            let purchase = self.get_purchase(purchase_id).await?;
            // A refund or reversal may have taken the lot between the two reads (the purchase
            // is read after the lot): only a lot still there now is out of place.
            if purchase.user_id == *user
                && purchase.status != PurchaseStatus::Credited
                && self.store.get(&lot.key()).await?.is_none()
            {
                return Ok(Attempt::Done(CloseOutcome::NothingOpen));
            }
            if purchase.user_id != *user || purchase.status != PurchaseStatus::Credited {
                return Err(LedgerError::Corrupt(format!(
                    "open lot of {user} for purchase {purchase_id} in status {:?}",
                    purchase.status
                )));
            }
            let wallet = domain::close_lot(&snapshot.wallet, lot, now)?;
            let closed = purchase.changed(|p| p.closed_remaining = Some(lot.remaining));
            let mut history = HistoryRecord::of(
                &wallet,
                entry_id.clone(),
                TxnKind::WindowClosed,
                0,
                purchase_id,
            );
            history.non_refundable_coins = Some(lot.remaining);
            let transaction = Transaction::of([
                Write::put(wallet, Condition::version(snapshot.wallet.version)),
                Write::Delete {
                    key: lot.key(),
                    condition: Condition::Exists,
                },
                Write::put(closed, Condition::VersionIs(purchase.version)),
                Write::put(history, Condition::Absent),
            ]);
            let outcome = CloseOutcome::Closed {
                non_refundable_coins: lot.remaining,
            };
            Ok(Attempt::Commit(transaction, outcome))
        })
        .await
    }

    /// Closes up to `max` lots whose deadline has passed, across all users, from the open-lots
    /// index. Each lot is re-checked by [`Ledger::close_lot`] (the index is eventually
    /// consistent), so running it often or concurrently is harmless.
    pub async fn close_due_lots(
        &self,
        now: Timestamp,
        max: u32,
    ) -> Result<SweepReport, LedgerError> {
        let mut report = SweepReport::default();
        let mut budget = max;
        for shard in 0..LOT_INDEX_SHARDS {
            if budget == 0 {
                break;
            }
            let query = Query {
                index: Index::OpenLotsByDeadline,
                partition: keys::lot_index_pk(shard),
                sort: SortKey::Before(keys::lot_index_due_bound(now)),
                descending: false,
                limit: Some(budget),
                start_after: None,
            };
            let due = self.store.query_keys(&query).await?;
            budget = budget.saturating_sub(u32::try_from(due.len()).unwrap_or(u32::MAX));
            for key in due {
                let Some((user, purchase)) = lot_from_key(&key) else {
                    tracing::error!(?key, "unreadable key in the open-lots index");
                    report.failed += 1;
                    continue;
                };
                match self.close_lot(&user, &purchase, now).await {
                    Ok(CloseOutcome::Closed { .. }) => report.closed += 1,
                    Ok(CloseOutcome::NotDue { .. }) => report.not_due += 1,
                    Ok(CloseOutcome::NothingOpen) => report.nothing_open += 1,
                    Err(error) => {
                        tracing::warn!(%error, %user, %purchase, "closing a due lot failed");
                        report.failed += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}
