//! App-store purchases: verified by the function against its store, credited here once per
//! store transaction. The store's id stands where a web purchase has its PaymentIntent (the
//! payment → purchase record), so a second credit of it is found, and a store refund finds its
//! purchase the way a dispute does. Events about stores (notifications, pushes) are applied
//! once each like Stripe's.
//!
//! A store may refund a transaction before the app redeems it (#18): that word is kept in the
//! transaction's own row ([`StoreTransactionRecord`]), which a credit reads and writes too, so
//! a refunded transaction is never credited later, and a credit and a refund never cross (both
//! write the row under its version). The latest word by the store's signing time wins: a refund
//! reversed (`REFUND_REVERSED`) before the redemption lets the transaction be credited again,
//! since the store has the money after all; a stale word delivered late changes nothing.

use jiff::Timestamp;

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, PurchaseId, TxnId, UserId};
use coins_rules::Zone;
use serde::{Deserialize, Serialize};

use super::{Attempt, Ledger};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Store, StoreError, Transaction, Write};
use crate::table::{
    PaymentEventRecord, PaymentIntentRecord, PurchaseRecord, Quote, StoreRevocation,
    StoreTransactionRecord, keys,
};

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
    /// The buyer agreed that consumption data may be sent to the App Store on a refund request.
    pub consumption_consent: bool,
}

/// A store's word on a transaction: refunded or voided (`revoked`), or that refund reversed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoreWord {
    pub transaction: PaymentIntentId,
    pub event_id: EventId,
    /// The store's notification type, recorded with the event.
    pub kind: String,
    pub revoked: bool,
    /// When the store signed it.
    pub stated_at: Timestamp,
}

/// What a store's word did to a transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StoreWordOutcome {
    /// Kept against a transaction not credited: a later redemption follows it.
    Recorded { revoked: bool },
    /// The store said something later already: kept as seen, nothing changed.
    Stale,
    /// This event was recorded before.
    Replayed,
    /// The transaction is credited: the word applies to its purchase (a reversal, or its undoing).
    Credited(PurchaseId),
}

impl StoreWordOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            StoreWordOutcome::Recorded { revoked: true } => "revocation_recorded",
            StoreWordOutcome::Recorded { revoked: false } => "reinstatement_recorded",
            StoreWordOutcome::Stale => "stale",
            StoreWordOutcome::Replayed => "replayed",
            StoreWordOutcome::Credited(_) => "credited",
        }
    }
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
    /// same purchase; by anyone else, [`LedgerError::AlreadyCredited`]; one its store refunded
    /// before, [`LedgerError::PurchaseRevoked`]. With an idempotency key, a retry gets the first
    /// answer (and the key may not be reused for another one).
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
            let row = self.store_transaction(&purchase.transaction).await?;
            if row
                .as_ref()
                .and_then(|row| row.revocation.as_ref())
                .is_some_and(|word| word.revoked)
            {
                return Err(LedgerError::PurchaseRevoked);
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
            // Under the version read: a store's refund recorded meanwhile makes this fail.
            let version = row.as_ref().map_or(0, |row| row.version);
            writes.push(Write::put(
                StoreTransactionRecord {
                    transaction: purchase.transaction.clone(),
                    version: version + 1,
                    purchase_id: Some(purchase_id.clone()),
                    consumption_consent: purchase.consumption_consent,
                    revocation: row.and_then(|row| row.revocation),
                },
                Condition::version(version),
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

    /// The store transaction's own row, if a credit or a store's word wrote it.
    pub async fn store_transaction(
        &self,
        transaction: &PaymentIntentId,
    ) -> Result<Option<StoreTransactionRecord>, LedgerError> {
        match self
            .store
            .get(&keys::store_transaction(transaction))
            .await?
        {
            Some(record) => StoreTransactionRecord::try_from(record).map(Some),
            None => Ok(None),
        }
    }

    /// Keeps a store's refund (or its reversal) of a transaction, once per event, and only if
    /// the store has not said something later (by its signing date): the latest word wins
    /// whatever order the notifications arrive in. Before the credit, the kept word decides a
    /// later redemption; after it, the caller applies a word that is not stale
    /// ([`StoreWordOutcome::Credited`]: reverses the purchase or undoes that), so an older
    /// reversal arriving after a newer refund changes nothing.
    pub async fn record_store_word(
        &self,
        word: &StoreWord,
        now: Timestamp,
    ) -> Result<StoreWordOutcome, LedgerError> {
        self.transact(|| async move {
            if self.event_seen(&word.event_id).await? {
                return Ok(Attempt::Done(StoreWordOutcome::Replayed));
            }
            let credited = self
                .purchase_for_payment(&word.transaction)
                .await?
                .map(|purchase| purchase.purchase_id);
            let row = self.store_transaction(&word.transaction).await?;
            // Credited since the payment row was read: the row says so.
            let credited = credited.or_else(|| row.as_ref().and_then(|r| r.purchase_id.clone()));
            let version = row.as_ref().map_or(0, |row| row.version);
            let later = row
                .as_ref()
                .and_then(|row| row.revocation.as_ref())
                .is_some_and(|kept| kept.stated_at > word.stated_at);
            let outcome = match (later, &credited) {
                (true, _) => StoreWordOutcome::Stale,
                (false, Some(purchase_id)) => StoreWordOutcome::Credited(purchase_id.clone()),
                (false, None) => StoreWordOutcome::Recorded {
                    revoked: word.revoked,
                },
            };
            if let StoreWordOutcome::Credited(_) = outcome {
                // Kept first, applied by the caller after: a redelivery of this word (the
                // caller stopped before applying it) is not older than itself, so it applies.
                let kept = kept_word(word, row, credited, version);
                let write = Write::put(kept, Condition::version(version));
                return Ok(Attempt::Commit(Transaction::of([write]), outcome));
            }
            let event = PaymentEventRecord {
                event_id: word.event_id.clone(),
                kind: word.kind.clone(),
                outcome: outcome.name().to_owned(),
                received_at: now,
            };
            let mut writes = vec![Write::put(event, Condition::Absent)];
            if !later {
                // A credit committed meanwhile fails this; the retry finds it credited.
                let kept = kept_word(word, row, None, version);
                writes.push(Write::put(kept, Condition::version(version)));
            }
            Ok(Attempt::Commit(Transaction::of(writes), outcome))
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

/// The transaction's row keeping `word` as the store's latest, one version on from `row`.
fn kept_word(
    word: &StoreWord,
    row: Option<StoreTransactionRecord>,
    purchase_id: Option<PurchaseId>,
    version: u64,
) -> StoreTransactionRecord {
    StoreTransactionRecord {
        transaction: word.transaction.clone(),
        version: version + 1,
        purchase_id,
        consumption_consent: row.is_some_and(|row| row.consumption_consent),
        revocation: Some(StoreRevocation {
            revoked: word.revoked,
            stated_at: word.stated_at,
            event_id: word.event_id.clone(),
        }),
    }
}
