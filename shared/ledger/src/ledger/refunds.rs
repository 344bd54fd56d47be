//! Refunds: an untouched lot's coins leave the wallet and a refund instruction enters the
//! outbox in the same transaction, so the money goes back exactly when the coins do.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{PurchaseId, TxnId, UserId};
use coins_rules::money::Money;
use coins_rules::refund::{AdminOverride, check_refund};

use super::{Attempt, Ledger, Snapshot};
use crate::domain::{self, Wallet};
use crate::error::LedgerError;
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, OutboxRefundRecord, PurchaseRecord, PurchaseStatus, RefundReason, Row, TxnKind,
};

/// Who asks for a refund.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RefundBy {
    /// The buyer, inside the window; another user's purchase is not found.
    Owner(UserId),
    /// Support, for any user's purchase, outside the window too (never for spent coins).
    Admin(AdminOverride),
}

impl RefundBy {
    fn admin_override(&self) -> Option<AdminOverride> {
        match self {
            RefundBy::Owner(_) => None,
            RefundBy::Admin(reason) => Some(*reason),
        }
    }

    fn reason(&self) -> RefundReason {
        match self {
            RefundBy::Owner(_) => RefundReason::Customer,
            RefundBy::Admin(AdminOverride::Defective) => RefundReason::Defective,
            RefundBy::Admin(AdminOverride::Legal) => RefundReason::Legal,
        }
    }
}

/// What the refund routes answer (200).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefundReceipt {
    pub purchase_id: PurchaseId,
    /// Always `refunded`.
    pub status: PurchaseStatus,
    pub coins_reversed: u64,
    /// The gross amount going back to the buyer.
    pub amount: Money,
}

fn receipt(purchase: &PurchaseRecord) -> RefundReceipt {
    RefundReceipt {
        purchase_id: purchase.purchase_id.clone(),
        status: PurchaseStatus::Refunded,
        coins_reversed: purchase.total_coins,
        amount: purchase.amount,
    }
}

impl<S: Store> Ledger<S> {
    /// Refunds a credited purchase whose coins are all unspent, inside its window (or outside
    /// with an admin override).
    pub async fn refund_purchase(
        &self,
        by: &RefundBy,
        purchase_id: &PurchaseId,
        now: Timestamp,
    ) -> Result<RefundReceipt, LedgerError> {
        // Both fixed for the whole call: the nonce recognises our own refund after a lost
        // response, and the history entry keeps one id whatever the retries.
        let (nonce, entry_id) = (&TxnId::generate().to_string(), &TxnId::generate());
        self.transact(|| async move {
            let mut purchase = self.get_purchase(purchase_id).await?;
            if let RefundBy::Owner(user) = by
                && purchase.user_id != *user
            {
                return Err(LedgerError::NotFound);
            }
            match purchase.status {
                PurchaseStatus::Credited => {}
                PurchaseStatus::Refunded
                    if purchase.refund_nonce.as_deref() == Some(nonce.as_str()) =>
                {
                    // Our own earlier attempt landed but its response was lost.
                    return Ok(Attempt::Done(receipt(&purchase)));
                }
                PurchaseStatus::Refunded => return Err(LedgerError::AlreadyRefunded),
                PurchaseStatus::Pending | PurchaseStatus::Failed | PurchaseStatus::Rejected => {
                    return Err(LedgerError::PurchaseNotCredited);
                }
            }
            let snapshot = self.snapshot(&purchase.user_id, now).await?;
            let (wallet, lot_delete) = take_back(&snapshot, &purchase, by.admin_override(), now)?;

            purchase.status = PurchaseStatus::Refunded;
            purchase.refunded_at = Some(now);
            purchase.refund_reason = Some(by.reason());
            purchase.refund_nonce = Some(nonce.clone());
            let coins = i64::try_from(purchase.total_coins).map_err(|_| LedgerError::Overflow)?;
            let history = HistoryRecord::of(
                &wallet,
                entry_id.clone(),
                TxnKind::Refund,
                -coins,
                purchase_id,
            );
            let outbox = OutboxRefundRecord::pending(&purchase, by.reason(), now);
            let answer = receipt(&purchase);
            let transaction = Transaction::of(lot_delete.into_iter().chain([
                Write::put(wallet, Condition::version(snapshot.wallet.version)),
                Write::put(
                    purchase,
                    Condition::PurchaseStatusIs(PurchaseStatus::Credited),
                ),
                Write::put(history, Condition::Absent),
                Write::put(outbox, Condition::Absent),
            ]));
            Ok(Attempt::Commit(transaction, answer))
        })
        .await
    }
}

/// The wallet once the purchase's coins are taken back, and the delete of its lot if still
/// open; refused when the rules say the refund may not happen.
fn take_back(
    snapshot: &Snapshot,
    purchase: &PurchaseRecord,
    admin_override: Option<AdminOverride>,
    now: Timestamp,
) -> Result<(Wallet, Option<Write>), LedgerError> {
    let until = purchase.refundable_until.ok_or_else(|| {
        LedgerError::Corrupt(format!(
            "credited purchase {} has no window",
            purchase.purchase_id
        ))
    })?;
    match (
        snapshot.lot_of(&purchase.purchase_id),
        purchase.closed_remaining,
    ) {
        (Some(lot), _) => {
            check_refund(until, now, lot.untouched(), admin_override)?;
            let delete = Write::Delete {
                key: lot.key(),
                condition: Condition::Exists,
            };
            Ok((
                domain::refund_open_lot(&snapshot.wallet, lot, now)?,
                Some(delete),
            ))
        }
        (None, Some(remaining_at_close)) => {
            // Closed untouched, its coins joined the non-refundable balance: an admin may still
            // take them back from there while that balance covers them.
            let untouched = remaining_at_close == purchase.total_coins;
            check_refund(until, now, untouched, admin_override)?;
            let wallet = domain::refund_closed_lot(&snapshot.wallet, purchase.total_coins, now)?;
            Ok((wallet, None))
        }
        // Open but gone: a gift spent it to zero (exhausted lots are deleted).
        (None, None) => Err(LedgerError::CoinsAlreadySpent),
    }
}
