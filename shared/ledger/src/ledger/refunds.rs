//! Refunds: an untouched lot's coins leave the wallet and a refund instruction enters the
//! outbox in the same transaction, so the money goes back exactly when the coins do.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_rules::money::Money;
use coins_rules::refund::{AdminOverride, check_refund};

use super::Ledger;
use crate::domain;
use crate::error::LedgerError;
use crate::ids::{PurchaseId, TxnId, UserId};
use crate::model::{
    HistoryRecord, ItemType, OutboxRefundRecord, PurchaseRecord, PurchaseStatus, RefundReason,
    TxnKind, keys,
};
use crate::store::{Condition, Store, Transaction, Write};

/// Who asks for a refund.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RefundBy {
    /// The buyer, inside the window; another user's purchase is not found.
    Owner(UserId),
    /// Support, for any user's purchase, outside the window too (never for spent coins).
    Admin(AdminOverride),
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
        let (admin_override, reason) = match by {
            RefundBy::Owner(_) => (None, RefundReason::Customer),
            RefundBy::Admin(AdminOverride::Defective) => {
                (Some(AdminOverride::Defective), RefundReason::Defective)
            }
            RefundBy::Admin(AdminOverride::Legal) => {
                (Some(AdminOverride::Legal), RefundReason::Legal)
            }
        };
        // Both fixed for the whole call: the nonce recognises our own refund after a lost
        // response, and the history entry keeps one id whatever the retries.
        let nonce = TxnId::generate().to_string();
        let entry_id = TxnId::generate();
        let mut retry = self.retry();
        loop {
            let mut purchase = self.get_purchase(purchase_id).await?;
            if let RefundBy::Owner(user) = by
                && purchase.user_id != *user
            {
                return Err(LedgerError::NotFound);
            }
            match purchase.status {
                PurchaseStatus::Credited => {}
                PurchaseStatus::Refunded if purchase.refund_nonce.as_deref() == Some(&nonce) => {
                    // Our own earlier attempt landed but its response was lost.
                    return Ok(receipt(&purchase));
                }
                PurchaseStatus::Refunded => return Err(LedgerError::AlreadyRefunded),
                PurchaseStatus::Pending | PurchaseStatus::Failed | PurchaseStatus::Rejected => {
                    return Err(LedgerError::PurchaseNotCredited);
                }
            }
            let until = purchase.refundable_until.ok_or_else(|| {
                LedgerError::Corrupt(format!("credited purchase {purchase_id} has no window"))
            })?;
            let user = purchase.user_id.clone();
            let snapshot = self.snapshot(&user, now).await?;
            let open_lot = snapshot
                .lots
                .iter()
                .find(|lot| lot.purchase_id == *purchase_id);

            let mut transaction = Transaction::new();
            let wallet = match (open_lot, purchase.closed_remaining) {
                (Some(lot), _) => {
                    check_refund(until, now, lot.untouched(), admin_override)?;
                    transaction.push(Write::Delete {
                        key: lot.key(),
                        condition: Condition::Exists,
                    });
                    domain::refund_open_lot(&snapshot.wallet, lot, now)?
                }
                (None, Some(remaining_at_close)) => {
                    // Closed untouched, its coins joined the non-refundable balance: an admin
                    // may still take them back from there while that balance covers them.
                    let untouched = remaining_at_close == purchase.total_coins;
                    check_refund(until, now, untouched, admin_override)?;
                    domain::refund_closed_lot(&snapshot.wallet, purchase.total_coins, now)?
                }
                // Open but gone: a gift spent it to zero (exhausted lots are deleted).
                (None, None) => return Err(LedgerError::CoinsAlreadySpent),
            };

            purchase.status = PurchaseStatus::Refunded;
            purchase.refunded_at = Some(now);
            purchase.refund_reason = Some(reason);
            purchase.refund_nonce = Some(nonce.clone());
            let history_key = keys::txn(&user, wallet.version);
            let history = HistoryRecord {
                pk: history_key.pk,
                sk: history_key.sk,
                item_type: ItemType::History,
                id: entry_id.to_string(),
                kind: TxnKind::Refund,
                coins: -i64::try_from(purchase.total_coins).map_err(|_| LedgerError::Overflow)?,
                balance_after: wallet.balance,
                at: now,
                reference: purchase_id.to_string(),
                non_refundable_coins: None,
                gift: None,
            };
            let outbox_key = keys::outbox_refund(purchase_id);
            let outbox = OutboxRefundRecord {
                pk: outbox_key.pk,
                sk: outbox_key.sk,
                item_type: ItemType::OutboxRefund,
                purchase_id: purchase_id.clone(),
                user_id: user.clone(),
                amount: purchase.amount,
                reason,
                created_at: now,
                status: "pending".to_owned(),
            };
            transaction.push(Write::Put {
                record: wallet.into(),
                condition: Condition::version(snapshot.wallet.version),
            });
            transaction.push(Write::Put {
                record: purchase.clone().into(),
                condition: Condition::PurchaseStatusIs(PurchaseStatus::Credited),
            });
            transaction.push(Write::Put {
                record: history.into(),
                condition: Condition::Absent,
            });
            transaction.push(Write::Put {
                record: outbox.into(),
                condition: Condition::Absent,
            });
            match self.store.commit(transaction).await {
                Ok(()) => return Ok(receipt(&purchase)),
                Err(error) => retry.after(error).await?,
            }
        }
    }
}
