//! App-store purchases: verified by the function against its store, credited here once per
//! store transaction. The store's id stands where a web purchase has its PaymentIntent (the
//! payment → purchase record), so a second credit of it is found, and a store refund finds its
//! purchase the way a dispute does. Events about stores (notifications, pushes) are applied
//! once each like Stripe's.

use jiff::Timestamp;

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, PurchaseId, TxnId, UserId};
use coins_rules::Zone;
use serde::{Deserialize, Serialize};

use super::{Attempt, Ledger};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Store, StoreError, Transaction, Write};
use crate::table::{PaymentEventRecord, PaymentIntentRecord, PurchaseRecord, Quote, keys};

/// A purchase its store has confirmed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StorePurchase {
    pub user_id: UserId,
    /// The buyer's zone: their refund window and daily limit count in it.
    pub zone: Zone,
    /// The package at its app price for the buyer's billing country, times the units bought.
    pub priced: coins_rules::Quote,
    /// The store's transaction (`appstore-<transactionId>`, `play-<orderId>`).
    pub transaction: PaymentIntentId,
}

/// What identifies a store purchase request for its idempotency key.
#[derive(Serialize)]
struct StoreCanonical<'a> {
    op: &'static str,
    transaction: &'a PaymentIntentId,
}

/// The credited purchase, and whether this call credited it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StoreCredit {
    pub purchase_id: PurchaseId,
    pub total_coins: u64,
    pub newly_credited: bool,
}

impl<S: Store> Ledger<S> {
    /// Credits a store purchase once: the same transaction presented again by its buyer is the
    /// same purchase; by anyone else, [`LedgerError::AlreadyCredited`]. With an idempotency
    /// key, a retry gets the first answer (and the key may not be reused for another one).
    pub async fn credit_store_purchase(
        &self,
        purchase: &StorePurchase,
        now: Timestamp,
        key: Option<&IdempotencyKey>,
    ) -> Result<StoreCredit, LedgerError> {
        let user = &purchase.user_id;
        let hash = &request_hash(&StoreCanonical {
            op: "store_purchase",
            transaction: &purchase.transaction,
        })?;
        // One purchase id and history entry id for the whole call, whatever the retries.
        let (purchase_id, entry_id) = (&PurchaseId::generate(), &TxnId::generate());
        self.transact(|| async move {
            if let Some(key) = key
                && let Some(prior) = prior_response(&self.store, user, key, hash, now).await?
            {
                return Ok(Attempt::Done(prior));
            }
            self.refuse_if_restricted(user).await?;
            if let Some(existing) = self.purchase_for_payment(&purchase.transaction).await? {
                if existing.user_id != purchase.user_id {
                    return Err(LedgerError::AlreadyCredited);
                }
                return Ok(Attempt::Done(StoreCredit {
                    purchase_id: existing.purchase_id,
                    total_coins: existing.total_coins,
                    newly_credited: false,
                }));
            }
            let quote = Quote::new(purchase.priced.clone(), &purchase.user_id, now);
            let pending = PurchaseRecord::pending(purchase_id.clone(), &quote, &purchase.zone, now);
            let total_coins = pending.total_coins;
            let (mut writes, _) = self
                .credit(pending, true, &purchase.transaction, entry_id, now)
                .await?;
            // Written with the credit: a concurrent credit of the same transaction fails here.
            writes.push(Write::put(
                PaymentIntentRecord {
                    payment_intent_id: purchase.transaction.clone(),
                    purchase_id: purchase_id.clone(),
                },
                Condition::Absent,
            ));
            let credit = StoreCredit {
                purchase_id: purchase_id.clone(),
                total_coins,
                newly_credited: true,
            };
            if let Some(key) = key {
                let ttl = self.config.idempotency_ttl;
                writes.push(record_write(user, key, hash, &credit, now, ttl)?);
            }
            Ok(Attempt::Commit(Transaction::of(writes), credit))
        })
        .await
    }

    /// Whether a provider event was applied before.
    pub async fn event_seen(&self, event: &EventId) -> Result<bool, LedgerError> {
        Ok(self.store.get(&keys::payment_event(event)).await?.is_some())
    }

    /// Records an event that changed no coins (a consumption answer sent, a test notification),
    /// so a redelivery is recognised. Recording it twice is harmless.
    pub async fn record_event(
        &self,
        event: &EventId,
        kind: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let record = PaymentEventRecord {
            event_id: event.clone(),
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
            received_at: now,
        };
        match self
            .store
            .commit(Transaction::of([Write::put(record, Condition::Absent)]))
            .await
        {
            Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}
