//! Provider reversals: a dispute, a store refund or a refund made outside the ledger (Stripe's
//! Dashboard) takes a credited purchase's money back, so
//! its coins go too (from its lot, then the rest of the balance, the rest as debt); a dispute
//! won gives them back. Each happens at most once, recorded in one transaction with the
//! provider's event.
//!
//! Stripe does not promise the order of its events: a dispute may arrive before the payment's
//! own `succeeded`. It then reverses the pending purchase with no coin moving, so the late
//! payment credits nothing (and is not refunded: the dispute took that money); a dispute won
//! after that credits the coins for the first time.

use jiff::Timestamp;

use coins_ids::{EventId, PaymentIntentId, PurchaseId, ReversalRef, TxnId};

use super::{Attempt, Ledger, RefundBy};
use crate::domain::{self, OwnLot};
use crate::error::LedgerError;
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, PaymentEventRecord, PurchaseRecord, PurchaseStatus, Reversal, Row, TxnKind, keys,
};

/// What a reversal event did.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ReversalOutcome {
    /// The purchase's coins were taken back; `debt` of them were already spent.
    Reversed { coins: u64, debt: u64 },
    /// A reversal was undone: the coins came back (repaying debt first).
    Undone { coins: u64 },
    /// A fraud warning found the coins unspent: the purchase was refunded instead.
    Refunded { coins: u64 },
    /// This event was applied before.
    Replayed,
    /// Nothing to do: the purchase is not in a state this event changes (never credited,
    /// refunded already, reversed already, or never reversed by this reference).
    Ignored,
}

impl ReversalOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            ReversalOutcome::Reversed { .. } => "reversed",
            ReversalOutcome::Undone { .. } => "reversal_undone",
            ReversalOutcome::Refunded { .. } => "refunded",
            ReversalOutcome::Replayed => "replayed",
            ReversalOutcome::Ignored => "ignored",
        }
    }
}

/// A provider event about a reversal of one purchase.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReversalEvent {
    pub event_id: EventId,
    /// The provider's event type, recorded with the event.
    pub kind: String,
    pub purchase_id: PurchaseId,
    /// The dispute or store refund.
    pub by: ReversalRef,
    /// How much of the purchase the provider took back so far: all of it (`None`), or
    /// `refunded` of its `of` units (a store's partial refund of a multi-unit order). A later
    /// event with a larger share takes back the difference.
    pub share: Option<Share>,
}

/// Units of a multi-unit purchase refunded so far.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Share {
    pub refunded: u32,
    pub of: u32,
}

impl ReversalEvent {
    /// The coins of `total` this event says are taken back in all.
    fn target(&self, total: u64) -> u64 {
        match self.share {
            None => total,
            Some(Share { refunded, of }) => {
                let share =
                    u128::from(total) * u128::from(refunded.min(of)) / u128::from(of.max(1));
                u64::try_from(share).unwrap_or(total)
            }
        }
    }
}

impl<S: Store> Ledger<S> {
    /// The provider took the purchase's money back: its coins go too, once.
    pub async fn reverse_purchase(
        &self,
        event: &ReversalEvent,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        self.reverse(event, false, None, now).await
    }

    /// A store's word on a credited `transaction` (kept by [`Ledger::record_store_word`]):
    /// `revoked` reverses the purchase, else undoes that, each only while this word is still
    /// the transaction's latest (checked in the same transaction): a later word recorded
    /// meanwhile makes this one stale, whatever order their applications run in.
    pub async fn apply_store_word(
        &self,
        transaction: &PaymentIntentId,
        event: &ReversalEvent,
        revoked: bool,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        if revoked {
            self.reverse(event, false, Some(transaction), now).await
        } else {
            self.undo(event, Some(transaction), now).await
        }
    }

    /// The card's issuer warned of fraud on the purchase's payment (Stripe Radar's early fraud
    /// warning): its coins unspent, the purchase is refunded (the money goes back before a
    /// chargeback takes it, whatever the window); some spent, the buyer's account is
    /// restricted and the purchase reversed (its coins back, debt where spent), in one
    /// transaction. Once: a refunded or reversed purchase is left as it is.
    pub async fn fraud_warning(
        &self,
        event: &ReversalEvent,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        let refund = self.refund_purchase(&RefundBy::FraudWarning, &event.purchase_id, now, None);
        match refund.await {
            Ok(receipt) => Ok(ReversalOutcome::Refunded {
                coins: receipt.coins_reversed,
            }),
            // Spent (or no longer refundable as a lot): reversed, and the account restricted.
            Err(LedgerError::CoinsAlreadySpent | LedgerError::PurchaseNotCredited) => {
                self.reverse(event, true, None, now).await
            }
            Err(LedgerError::AlreadyRefunded) => Ok(ReversalOutcome::Ignored),
            Err(error) => Err(error),
        }
    }

    /// Takes the purchase's coins back, once; `restrict` restricts the buyer's account too.
    async fn reverse(
        &self,
        event: &ReversalEvent,
        restrict: bool,
        store_word: Option<&PaymentIntentId>,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        let entry_id = &TxnId::generate();
        self.transact(|| async move {
            let Some(purchase) = self.unseen(event).await? else {
                return Ok(Attempt::Done(ReversalOutcome::Replayed));
            };
            let Some(guard) = self.still_latest(store_word, event).await? else {
                return Ok(Attempt::Done(ReversalOutcome::Ignored));
            };
            let reversal = Reversal {
                by: event.by.clone(),
                at: now,
                undone_at: None,
            };
            let target = event.target(purchase.total_coins);
            match purchase.status {
                // This share (or more) was taken back before.
                PurchaseStatus::Credited | PurchaseStatus::Reversed
                    if target <= purchase.reversed_coins =>
                {
                    return Ok(Attempt::Done(ReversalOutcome::Ignored));
                }
                PurchaseStatus::Credited => {}
                PurchaseStatus::Pending => {
                    let mut transaction = self
                        .reverse_uncredited(purchase, reversal, event, restrict, entry_id, now)
                        .await?;
                    transaction.writes.extend(guard);
                    let outcome = ReversalOutcome::Reversed { coins: 0, debt: 0 };
                    return Ok(Attempt::Commit(transaction, outcome));
                }
                _ => return Ok(Attempt::Done(ReversalOutcome::Ignored)),
            }
            let coins = target - purchase.reversed_coins;
            let snapshot = self
                .snapshot(&purchase.user_id, &purchase.zone, now)
                .await?;
            let mut debit = domain::reverse(
                &snapshot.wallet,
                &snapshot.lots,
                &purchase.purchase_id,
                coins,
                now,
            )?;
            debit.wallet.restricted |= restrict;
            let debt = debit.wallet.debt - snapshot.wallet.debt;
            let signed = i64::try_from(coins).map_err(|_| LedgerError::Overflow)?;
            let history = HistoryRecord::of(
                &debit.wallet,
                entry_id.clone(),
                TxnKind::Reversal,
                -signed,
                &purchase.purchase_id,
            );
            let reversed = purchase.changed(|p| {
                // A share leaves the rest of the purchase credited.
                if target == p.total_coins {
                    p.status = PurchaseStatus::Reversed;
                }
                p.reversed_coins = target;
                p.reversal = Some(reversal);
            });
            let mut writes = vec![Write::put(
                debit.wallet,
                Condition::version(snapshot.wallet.version),
            )];
            writes.extend(debit.own_lot.map(lot_write));
            writes.extend(guard);
            let outcome = ReversalOutcome::Reversed { coins, debt };
            writes.extend([
                Write::put(reversed, Condition::VersionIs(purchase.version)),
                Write::put(history, Condition::Absent),
                seen(event, &outcome, now),
            ]);
            Ok(Attempt::Commit(Transaction::of(writes), outcome))
        })
        .await
    }

    /// The provider gave the money back (a dispute won, a store refund reversed): the reversal
    /// by `event.by` is undone, once.
    pub async fn undo_reversal(
        &self,
        event: &ReversalEvent,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        self.undo(event, None, now).await
    }

    async fn undo(
        &self,
        event: &ReversalEvent,
        store_word: Option<&PaymentIntentId>,
        now: Timestamp,
    ) -> Result<ReversalOutcome, LedgerError> {
        let entry_id = &TxnId::generate();
        self.transact(|| async move {
            let Some(purchase) = self.unseen(event).await? else {
                return Ok(Attempt::Done(ReversalOutcome::Replayed));
            };
            let Some(guard) = self.still_latest(store_word, event).await? else {
                return Ok(Attempt::Done(ReversalOutcome::Ignored));
            };
            let undoable = purchase.status == PurchaseStatus::Reversed
                && purchase.reversal.as_ref().is_some_and(|reversal| {
                    reversal.by == event.by && reversal.undone_at.is_none()
                });
            if !undoable {
                return Ok(Attempt::Done(ReversalOutcome::Ignored));
            }
            // What was taken back comes back; never credited (the dispute came first), this is
            // the purchase's credit.
            let coins = if purchase.credited_at.is_some() {
                purchase.reversed_coins
            } else {
                purchase.total_coins
            };
            let snapshot = self
                .snapshot(&purchase.user_id, &purchase.zone, now)
                .await?;
            let (wallet, kind) = if purchase.credited_at.is_some() {
                let wallet = domain::undo_reversal(&snapshot.wallet, coins, now)?;
                (wallet, TxnKind::ReversalUndone)
            } else {
                let wallet = domain::credit_after_reversal(&snapshot.wallet, coins, now)?;
                (wallet, TxnKind::Purchase)
            };
            let signed = i64::try_from(coins).map_err(|_| LedgerError::Overflow)?;
            let history = HistoryRecord::of(
                &wallet,
                entry_id.clone(),
                kind,
                signed,
                &purchase.purchase_id,
            );
            let restored = purchase.changed(|p| {
                // Its coins are back as non-refundable coins: credited, but no lot to refund.
                p.status = PurchaseStatus::Credited;
                p.credited_at.get_or_insert(now);
                // Credited for the first time, its window (which went with the dispute) ends as
                // it opens: a credited purchase has one, and the refund rules read it.
                p.refundable_until.get_or_insert(now);
                p.reversed_coins = 0;
                if let Some(reversal) = &mut p.reversal {
                    reversal.undone_at = Some(now);
                }
            });
            let outcome = ReversalOutcome::Undone { coins };
            let mut transaction = Transaction::of([
                Write::put(wallet, Condition::version(snapshot.wallet.version)),
                Write::put(restored, Condition::VersionIs(purchase.version)),
                Write::put(history, Condition::Absent),
                seen(event, &outcome, now),
            ]);
            transaction.writes.extend(guard);
            Ok(Attempt::Commit(transaction, outcome))
        })
        .await
    }

    /// For a store word's application: `None` if a later word was kept since (this one is
    /// stale), else the write that holds the transaction's row as it is until the commit (none
    /// for other reversals).
    async fn still_latest(
        &self,
        store_word: Option<&PaymentIntentId>,
        event: &ReversalEvent,
    ) -> Result<Option<Option<Write>>, LedgerError> {
        let Some(transaction) = store_word else {
            return Ok(Some(None));
        };
        let row = self.store_transaction(transaction).await?;
        let latest = row.filter(|row| {
            row.revocation
                .as_ref()
                .is_some_and(|kept| kept.event_id == event.event_id)
        });
        Ok(latest.map(|row| {
            let version = row.version;
            Some(Write::put(row, Condition::VersionIs(version)))
        }))
    }

    /// The writes reversing a purchase still pending: the reversal counted, a history entry of
    /// no coins, the purchase closed to its payment.
    async fn reverse_uncredited(
        &self,
        purchase: PurchaseRecord,
        reversal: Reversal,
        event: &ReversalEvent,
        restrict: bool,
        entry_id: &TxnId,
        now: Timestamp,
    ) -> Result<Transaction, LedgerError> {
        let snapshot = self
            .snapshot(&purchase.user_id, &purchase.zone, now)
            .await?;
        let mut wallet = domain::reverse_uncredited(&snapshot.wallet, now)?;
        wallet.restricted |= restrict;
        let history = HistoryRecord::of(
            &wallet,
            entry_id.clone(),
            TxnKind::Reversal,
            0,
            &purchase.purchase_id,
        );
        let reversed = purchase.changed(|p| {
            p.status = PurchaseStatus::Reversed;
            p.reversal = Some(reversal);
        });
        let outcome = ReversalOutcome::Reversed { coins: 0, debt: 0 };
        Ok(Transaction::of([
            Write::put(wallet, Condition::version(snapshot.wallet.version)),
            Write::put(reversed, Condition::VersionIs(purchase.version)),
            Write::put(history, Condition::Absent),
            seen(event, &outcome, now),
        ]))
    }

    /// The purchase, unless the event was applied before.
    async fn unseen(&self, event: &ReversalEvent) -> Result<Option<PurchaseRecord>, LedgerError> {
        if self
            .store
            .get(&keys::payment_event(&event.event_id))
            .await?
            .is_some()
        {
            return Ok(None);
        }
        self.get_purchase(&event.purchase_id).await.map(Some)
    }
}

/// The event's record, written with its effect.
fn seen(event: &ReversalEvent, outcome: &ReversalOutcome, now: Timestamp) -> Write {
    Write::put(
        PaymentEventRecord {
            event_id: event.event_id.clone(),
            kind: event.kind.clone(),
            outcome: outcome.name().to_owned(),
            received_at: now,
        },
        Condition::Absent,
    )
}

/// The write of what a reversal left of the purchase's own lot. Its expiry marker stays:
/// closing a lot that is gone does nothing.
fn lot_write(own_lot: OwnLot) -> Write {
    match own_lot {
        OwnLot::Emptied(lot) => Write::Delete {
            key: lot.key(),
            condition: Condition::Exists,
        },
        OwnLot::Shrunk(lot) => Write::put(lot, Condition::Exists),
    }
}
