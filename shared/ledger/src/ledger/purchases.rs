//! Quotes, purchases and payment events: a purchase is created from a quote and credited, as
//! one lot, at most once, when its payment succeeds with the quoted amount, currency and country.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{EventId, IdempotencyKey, PurchaseId, QuoteId, TxnId, UserId};
use coins_rules::money::Money;
use coins_rules::pricing::check_quote_fresh;
use coins_rules::refund::refundable_until;
use coins_rules::{BillingCountry, Zone};

use super::{Attempt, Ledger};
use crate::domain::{self, Lot};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, LotMarkerRecord, PaymentEventRecord, PaymentKind, PaymentRejection,
    PurchaseRecord, PurchaseStatus, Quote, QuoteRecord, TxnKind, keys,
};

/// What `POST /v1/purchases` answers (201).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseReceipt {
    pub purchase_id: PurchaseId,
    pub status: PurchaseStatus,
    pub total_coins: u64,
    /// The quoted gross price to pay.
    pub amount: Money,
}

/// What the provider says happened to a payment, read at the edge.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Payment {
    /// Paid `paid` with a payment method from `country`.
    Succeeded {
        paid: Money,
        country: BillingCountry,
    },
    Failed,
}

impl Payment {
    fn kind(self) -> PaymentKind {
        match self {
            Payment::Succeeded { .. } => PaymentKind::Succeeded,
            Payment::Failed => PaymentKind::Failed,
        }
    }
}

/// A verified payment-provider event (the webhook checked the signature).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentEvent {
    pub event_id: EventId,
    pub purchase_id: PurchaseId,
    pub payment: Payment,
}

/// What happened to a payment event. The webhook answers 200 to all of them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PaymentOutcome {
    /// The purchase's coins were credited as one lot.
    Credited {
        purchase_id: PurchaseId,
        coins: u64,
        balance: u64,
    },
    /// This event id was applied before: nothing changed.
    Replayed,
    /// Another event already settled the purchase (credited, failed, rejected or refunded).
    AlreadySettled { status: PurchaseStatus },
    /// The payment did not match the quote; the purchase is recorded as rejected, uncredited.
    Rejected { reason: PaymentRejection },
    /// The provider reported a failed payment; the purchase is recorded as failed.
    Failed,
}

/// Checks a succeeded payment against the purchase: country first (the VPN-arbitrage guard),
/// then currency, then the exact amount.
pub(crate) fn check_payment(
    purchase: &PurchaseRecord,
    paid: Money,
    country: BillingCountry,
) -> Result<(), PaymentRejection> {
    if country != purchase.country {
        return Err(PaymentRejection::RegionMismatch);
    }
    if paid.currency() != purchase.amount.currency() {
        return Err(PaymentRejection::CurrencyMismatch);
    }
    if paid != purchase.amount {
        return Err(PaymentRejection::AmountMismatch);
    }
    Ok(())
}

#[derive(Serialize)]
struct PurchaseCanonical<'a> {
    op: &'static str,
    quote_id: &'a QuoteId,
}

impl<S: Store> Ledger<S> {
    /// Stores a quote priced by the function layer.
    pub async fn save_quote(&self, quote: &Quote) -> Result<(), LedgerError> {
        if self.put_new(QuoteRecord::new(quote.clone())).await? {
            return Ok(());
        }
        // Quote ids are fresh random ids: an existing one is our own earlier attempt whose
        // response was lost, unless the stored quote is someone else's.
        let stored = self.get_quote(&quote.user_id, &quote.quote_id).await?;
        if stored == *quote {
            Ok(())
        } else {
            Err(LedgerError::Corrupt("quote id collision".into()))
        }
    }

    /// The user's quote, expired or not (the caller decides); another user's is not found.
    pub async fn get_quote(&self, user: &UserId, quote_id: &QuoteId) -> Result<Quote, LedgerError> {
        let record = self
            .store
            .get(&keys::quote(quote_id))
            .await?
            .ok_or(LedgerError::NotFound)?;
        let quote = QuoteRecord::try_from(record)?.quote;
        if quote.user_id != *user {
            return Err(LedgerError::NotFound);
        }
        Ok(quote)
    }

    /// A purchase by id, for support tools and the refund routes.
    pub async fn get_purchase(
        &self,
        purchase_id: &PurchaseId,
    ) -> Result<PurchaseRecord, LedgerError> {
        let record = self
            .store
            .get(&keys::purchase(purchase_id))
            .await?
            .ok_or(LedgerError::NotFound)?;
        PurchaseRecord::try_from(record)
    }

    /// Creates a pending purchase at the quoted price. `zone` is the buyer's (from the claims):
    /// the refund window will be counted in it.
    pub async fn create_purchase(
        &self,
        user: &UserId,
        quote_id: &QuoteId,
        zone: &Zone,
        now: Timestamp,
        key: &IdempotencyKey,
    ) -> Result<PurchaseReceipt, LedgerError> {
        let hash = request_hash(&PurchaseCanonical {
            op: "purchase",
            quote_id,
        })?;
        let (purchase_id, hash) = (&PurchaseId::generate(), &hash);
        self.transact(|| async move {
            if let Some(prior) = prior_response(&self.store, user, key, hash, now).await? {
                return Ok(Attempt::Done(prior));
            }
            let quote = self.get_quote(user, quote_id).await?;
            check_quote_fresh(quote.expires_at, now)?;
            let record = PurchaseRecord::pending(purchase_id.clone(), &quote, zone, now);
            let receipt = PurchaseReceipt {
                purchase_id: purchase_id.clone(),
                status: PurchaseStatus::Pending,
                total_coins: record.total_coins,
                amount: record.amount,
            };
            let ttl = self.config.idempotency_ttl;
            let transaction = Transaction::of([
                Write::put(record, Condition::Absent),
                record_write(user, key, hash, &receipt, now, ttl)?,
            ]);
            Ok(Attempt::Commit(transaction, receipt))
        })
        .await
    }

    /// Applies a verified payment event: at most once per event id, and a purchase is credited
    /// at most once whatever the event ids.
    pub async fn apply_payment(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentOutcome, LedgerError> {
        // The credit's history entry: one id for the whole call, whatever the retries.
        let entry_id = &TxnId::generate();
        self.transact(|| async move {
            if self
                .store
                .get(&keys::payment_event(&event.event_id))
                .await?
                .is_some()
            {
                return Ok(Attempt::Done(PaymentOutcome::Replayed));
            }
            let mut purchase = self.get_purchase(&event.purchase_id).await?;
            if purchase.status != PurchaseStatus::Pending {
                // A concurrent delivery of this very event may have landed between our two
                // reads: the purchase names the event that settled it.
                let outcome = if purchase.settled_by_event.as_ref() == Some(&event.event_id) {
                    PaymentOutcome::Replayed
                } else {
                    PaymentOutcome::AlreadySettled {
                        status: purchase.status,
                    }
                };
                return Ok(Attempt::Done(outcome));
            }
            let mut writes = Vec::new();
            let outcome = match event.payment {
                Payment::Failed => {
                    purchase.status = PurchaseStatus::Failed;
                    PaymentOutcome::Failed
                }
                Payment::Succeeded { paid, country } => {
                    match check_payment(&purchase, paid, country) {
                        Err(reason) => {
                            tracing::warn!(
                                purchase_id = %purchase.purchase_id,
                                reason = reason.code(),
                                "payment rejected"
                            );
                            purchase.status = PurchaseStatus::Rejected;
                            purchase.rejection = Some(reason);
                            PaymentOutcome::Rejected { reason }
                        }
                        Ok(()) => {
                            let (credit, balance) =
                                self.credit_writes(&mut purchase, entry_id, now).await?;
                            writes.extend(credit);
                            PaymentOutcome::Credited {
                                purchase_id: purchase.purchase_id.clone(),
                                coins: purchase.total_coins,
                                balance,
                            }
                        }
                    }
                }
            };
            purchase.settled_by_event = Some(event.event_id.clone());
            let seen = PaymentEventRecord {
                event_id: event.event_id.clone(),
                purchase_id: event.purchase_id.clone(),
                kind: event.payment.kind(),
                outcome: match &outcome {
                    PaymentOutcome::Rejected { reason } => reason.code().to_owned(),
                    _ => purchase.status.as_str().to_owned(),
                },
                received_at: now,
            };
            writes.push(Write::put(
                purchase,
                Condition::PurchaseStatusIs(PurchaseStatus::Pending),
            ));
            writes.push(Write::put(seen, Condition::Absent));
            Ok(Attempt::Commit(Transaction::of(writes), outcome))
        })
        .await
    }

    /// The writes crediting a pending purchase as one lot; marks `purchase` credited. Returns
    /// the writes and the new balance.
    async fn credit_writes(
        &self,
        purchase: &mut PurchaseRecord,
        entry_id: &TxnId,
        now: Timestamp,
    ) -> Result<(Vec<Write>, u64), LedgerError> {
        let until = refundable_until(now, purchase.zone.tz());
        let user = &purchase.user_id;
        let snapshot = self.snapshot(user, now).await?;
        let lot = Lot::new(
            user,
            &purchase.purchase_id,
            purchase.total_coins,
            now,
            until,
        );
        let wallet = domain::credit(&snapshot.wallet, &lot, now)?;
        let coins = i64::try_from(lot.coins).map_err(|_| LedgerError::Overflow)?;
        let history = HistoryRecord::of(
            &wallet,
            entry_id.clone(),
            TxnKind::Purchase,
            coins,
            &purchase.purchase_id,
        );
        purchase.status = PurchaseStatus::Credited;
        purchase.credited_at = Some(now);
        purchase.refundable_until = Some(until);
        let balance = wallet.balance;
        let marker = LotMarkerRecord::for_lot(&lot);
        let writes = vec![
            Write::put(wallet, Condition::version(snapshot.wallet.version)),
            Write::put(lot, Condition::Absent),
            Write::put(marker, Condition::Absent),
            Write::put(history, Condition::Absent),
        ];
        Ok((writes, balance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_rules::{Channel, PriceBook, QuoteItem};

    fn purchase(country: &str) -> PurchaseRecord {
        let priced = PriceBook::embedded()
            .quote(
                country.parse().unwrap(),
                Channel::Web,
                QuoteItem::Package("coins_700".parse().unwrap()),
            )
            .unwrap();
        let user = UserId::new("fan").unwrap();
        let quote = Quote::new(priced, &user, Timestamp::UNIX_EPOCH);
        let zone = Zone::get("Asia/Tokyo").unwrap();
        PurchaseRecord::pending(PurchaseId::generate(), &quote, &zone, Timestamp::UNIX_EPOCH)
    }

    fn money(amount: &str, currency: &str) -> Money {
        Money::parse(amount, currency.parse().unwrap()).unwrap()
    }

    fn country(code: &str) -> BillingCountry {
        code.parse().unwrap()
    }

    #[test]
    fn a_payment_matching_the_quote_is_accepted_whatever_its_trailing_zeros() {
        let us = purchase("US");
        let gross = us.amount.to_string();
        assert_eq!(
            check_payment(&us, money(&format!("{gross}0"), "USD"), country("US")),
            Ok(())
        );
    }

    #[test]
    fn a_payment_from_another_country_is_a_region_mismatch() {
        let jp = purchase("JP");
        assert_eq!(
            check_payment(&jp, jp.amount, country("TR")),
            Err(PaymentRejection::RegionMismatch)
        );
    }

    #[test]
    fn a_different_amount_or_currency_is_rejected() {
        let us = purchase("US");
        assert_eq!(
            check_payment(&us, money("0.01", "USD"), country("US")),
            Err(PaymentRejection::AmountMismatch)
        );
        assert_eq!(
            check_payment(&us, money(&us.amount.to_string(), "EUR"), country("US")),
            Err(PaymentRejection::CurrencyMismatch)
        );
    }
}
