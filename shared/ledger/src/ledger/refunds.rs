//! Refunds asked for: an untouched lot's coins leave the wallet and a refund instruction enters
//! the outbox in the same transaction, so the money goes back exactly when the coins do. The
//! dispatcher then sends it (see `dispatch`).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{IdempotencyKey, PurchaseId, RefundId, TxnId, UserId};
use coins_rules::money::Money;
use coins_rules::refund::{AdminOverride, RefundRejected, check_refund};

use super::{Attempt, Ledger, Snapshot};
use crate::domain::{self, Wallet};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, PurchaseRecord, PurchaseStatus, RefundReason, RefundRecord, RefundStatus, Row,
    TxnKind,
};

/// Who asks for a refund.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RefundBy {
    /// The buyer, inside the window; another user's purchase is not found.
    Owner(UserId),
    /// Support (`admin` is their `sub`), for any user's purchase, outside the window too (never
    /// for spent coins).
    Admin {
        admin: UserId,
        reason: AdminOverride,
    },
    /// The card's issuer warned of fraud (Stripe Radar): the money goes back before a
    /// chargeback takes it, outside the window too (never for spent coins).
    FraudWarning,
}

impl RefundBy {
    fn admin_override(&self) -> Option<AdminOverride> {
        match self {
            RefundBy::Owner(_) | RefundBy::FraudWarning => None,
            RefundBy::Admin { reason, .. } => Some(*reason),
        }
    }

    fn reason(&self) -> RefundReason {
        match self {
            RefundBy::Owner(_) => RefundReason::Customer,
            RefundBy::FraudWarning => RefundReason::FraudWarning,
            RefundBy::Admin {
                reason: AdminOverride::Defective,
                ..
            } => RefundReason::Defective,
            RefundBy::Admin {
                reason: AdminOverride::Legal,
                ..
            } => RefundReason::Legal,
        }
    }

    /// Whose idempotency keys the request's key is among (a fraud warning has none: the
    /// purchase's status makes it once).
    fn caller(&self) -> Option<&UserId> {
        match self {
            RefundBy::Owner(user) => Some(user),
            RefundBy::Admin { admin, .. } => Some(admin),
            RefundBy::FraudWarning => None,
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
    pub refund_id: RefundId,
    /// `pending` when asked: the dispatcher sends it.
    pub refund_status: RefundStatus,
}

fn receipt(purchase: &PurchaseRecord, refund_id: &RefundId) -> RefundReceipt {
    RefundReceipt {
        purchase_id: purchase.purchase_id.clone(),
        status: PurchaseStatus::Refunded,
        coins_reversed: purchase.total_coins,
        amount: purchase.amount,
        refund_id: refund_id.clone(),
        refund_status: RefundStatus::Pending,
    }
}

#[derive(Serialize)]
struct RefundCanonical<'a> {
    op: &'static str,
    purchase_id: &'a PurchaseId,
    reason: RefundReason,
}

impl<S: Store> Ledger<S> {
    /// Refunds a credited purchase whose coins are all unspent, inside its window (or outside
    /// with an admin override); with `key`, once per idempotency key.
    pub async fn refund_purchase(
        &self,
        by: &RefundBy,
        purchase_id: &PurchaseId,
        now: Timestamp,
        key: Option<&IdempotencyKey>,
    ) -> Result<RefundReceipt, LedgerError> {
        let hash = &request_hash(&RefundCanonical {
            op: "refund",
            purchase_id,
            reason: by.reason(),
        })?;
        // Fixed for the whole call: the nonce recognises our own refund after a lost response,
        // and the history entry and the instruction keep one id whatever the retries.
        let (nonce, entry_id, refund_id) = (
            &TxnId::generate().to_string(),
            &TxnId::generate(),
            &RefundId::generate(),
        );
        self.transact(|| async move {
            if let Some(key) = key
                && let Some(caller) = by.caller()
                && let Some(prior) = prior_response(&self.store, caller, key, hash, now).await?
            {
                return Ok(Attempt::Done(prior));
            }
            let purchase = self.get_purchase(purchase_id).await?;
            if let RefundBy::Owner(user) = by
                && purchase.user_id != *user
            {
                return Err(LedgerError::NotFound);
            }
            // The store took the money; only the store can give it back.
            if purchase.channel != coins_rules::Channel::Web {
                return Err(LedgerError::RefundViaStore);
            }
            match purchase.status {
                PurchaseStatus::Credited => {}
                PurchaseStatus::Refunded if purchase.refund_nonce.as_deref() == Some(nonce) => {
                    // Our own earlier attempt landed but its response was lost.
                    return Ok(Attempt::Done(receipt(&purchase, refund_id)));
                }
                PurchaseStatus::Refunded | PurchaseStatus::Reversed => {
                    return Err(LedgerError::AlreadyRefunded);
                }
                PurchaseStatus::Pending | PurchaseStatus::Failed => {
                    return Err(LedgerError::PurchaseNotCredited);
                }
            }
            let payment = purchase.payment_intent_id.clone().ok_or_else(|| {
                LedgerError::Corrupt(format!("credited purchase {purchase_id} has no payment"))
            })?;
            let amount_minor = purchase.amount.minor_units().ok_or(LedgerError::Overflow)?;
            let snapshot = self
                .snapshot(&purchase.user_id, &purchase.zone, now)
                .await?;
            let (wallet, lot_delete) = take_back(&snapshot, &purchase, by, now)?;
            let admin = match by {
                RefundBy::Admin { admin, .. } => Some(admin),
                RefundBy::Owner(_) | RefundBy::FraudWarning => None,
            };
            let instruction = RefundRecord::pending(
                refund_id.clone(),
                Some(&purchase),
                &payment,
                amount_minor,
                purchase.amount.currency().code(),
                by.reason(),
                admin,
                now,
            );
            let refunded = purchase.changed(|p| {
                p.status = PurchaseStatus::Refunded;
                p.refund_id = Some(refund_id.clone());
                p.refunded_at = Some(now);
                p.refund_nonce = Some(nonce.clone());
            });
            let coins = i64::try_from(purchase.total_coins).map_err(|_| LedgerError::Overflow)?;
            let history = HistoryRecord::of(
                &wallet,
                entry_id.clone(),
                TxnKind::Refund,
                -coins,
                purchase_id,
            );
            let answer = receipt(&purchase, refund_id);
            let mut writes: Vec<Write> = lot_delete.into_iter().collect();
            writes.extend([
                Write::put(wallet, Condition::version(snapshot.wallet.version)),
                Write::put(refunded, Condition::VersionIs(purchase.version)),
                Write::put(history, Condition::Absent),
                Write::put(instruction, Condition::Absent),
            ]);
            if let Some(key) = key
                && let Some(caller) = by.caller()
            {
                let ttl = self.config.idempotency_ttl;
                writes.push(record_write(caller, key, hash, &answer, now, ttl)?);
            }
            Ok(Attempt::Commit(Transaction::of(writes), answer))
        })
        .await
    }
}

/// The wallet once the purchase's coins are taken back, and the delete of its lot if still
/// open; refused when the rules say the refund may not happen.
fn take_back(
    snapshot: &Snapshot,
    purchase: &PurchaseRecord,
    by: &RefundBy,
    now: Timestamp,
) -> Result<(Wallet, Option<Write>), LedgerError> {
    let until = purchase.refundable_until.ok_or_else(|| {
        LedgerError::Corrupt(format!(
            "credited purchase {} has no window",
            purchase.purchase_id
        ))
    })?;
    let admin_override = by.admin_override();
    let check = |untouched| match check_refund(until, now, untouched, admin_override) {
        // A fraud warning refunds outside the window: a chargeback would not wait for it.
        Err(RefundRejected::WindowClosed { .. }) if *by == RefundBy::FraudWarning => Ok(()),
        checked => checked,
    };
    match (
        snapshot.lot_of(&purchase.purchase_id),
        purchase.closed_remaining,
    ) {
        (Some(lot), _) => {
            check(lot.untouched())?;
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
            check(untouched)?;
            let wallet = domain::refund_closed_lot(&snapshot.wallet, purchase.total_coins, now)?;
            Ok((wallet, None))
        }
        // Open but gone: a gift spent it to zero (exhausted lots are deleted), a debt took it
        // whole, or a reversal took it (a dispute won gives the coins back, not the lot).
        (None, None) => Err(LedgerError::CoinsAlreadySpent),
    }
}
