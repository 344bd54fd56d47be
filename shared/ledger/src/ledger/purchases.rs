//! Quotes, purchases and payment events: a purchase is created from a quote and credited, as
//! one lot, at most once, when its payment succeeds with the quoted amount, currency and country.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_rules::money::{Currency, Money};
use coins_rules::refund::refundable_until;

use super::{Ledger, zone};
use crate::domain;
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::ids::{EventId, IdempotencyKey, PurchaseId, QuoteId, TxnId, UserId};
use crate::model::{
    HistoryRecord, ItemType, LotMarkerRecord, LotRecord, PaymentEventRecord, PaymentKind,
    PaymentRejection, PurchaseRecord, PurchaseStatus, Quote, QuoteRecord, TxnKind, keys,
};
use crate::store::{Condition, Store, StoreError, Transaction, Write};

/// What `POST /v1/purchases` answers (201).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseReceipt {
    pub purchase_id: PurchaseId,
    pub status: PurchaseStatus,
    pub total_coins: u64,
    /// The quoted gross price to pay.
    pub amount: Money,
}

/// A verified payment-provider event (the webhook checked the signature).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentEvent {
    pub event_id: EventId,
    pub kind: PaymentKind,
    pub purchase_id: PurchaseId,
    /// The amount paid, as the provider sent it (a decimal string).
    pub amount: String,
    /// ISO 4217 code of the amount.
    pub currency: String,
    /// ISO 3166-1 alpha-2 country of the payment method.
    pub country: String,
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
    event: &PaymentEvent,
) -> Result<(), PaymentRejection> {
    if !event.country.eq_ignore_ascii_case(&purchase.country) {
        return Err(PaymentRejection::RegionMismatch);
    }
    let expected = purchase.amount;
    let currency: Currency = event
        .currency
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| PaymentRejection::CurrencyMismatch)?;
    if currency != expected.currency() {
        return Err(PaymentRejection::CurrencyMismatch);
    }
    match Money::parse(&event.amount, currency) {
        Ok(paid) if paid == expected => Ok(()),
        _ => Err(PaymentRejection::AmountMismatch),
    }
}

#[derive(Serialize)]
struct PurchaseCanonical<'a> {
    op: &'static str,
    quote_id: &'a QuoteId,
}

impl<S: Store> Ledger<S> {
    /// Stores a quote priced by the function layer.
    pub async fn save_quote(&self, quote: &Quote) -> Result<(), LedgerError> {
        let record = QuoteRecord::from(quote.clone());
        let mut transaction = Transaction::new();
        transaction.push(Write::Put {
            record: record.into(),
            condition: Condition::Absent,
        });
        let mut retry = self.retry();
        loop {
            match self.store.commit(transaction.clone()).await {
                Ok(()) => return Ok(()),
                // Quote ids are fresh random ids: a failed "absent" means our own earlier
                // attempt landed (lost response), unless the stored quote is someone else's.
                Err(StoreError::ConditionFailed { .. }) => {
                    let stored = self.get_quote(&quote.user_id, &quote.quote_id).await?;
                    return if stored == *quote {
                        Ok(())
                    } else {
                        Err(LedgerError::Corrupt("quote id collision".into()))
                    };
                }
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// The user's quote, expired or not (the caller decides); another user's is not found.
    pub async fn get_quote(&self, user: &UserId, quote_id: &QuoteId) -> Result<Quote, LedgerError> {
        let record = self
            .store
            .get(&keys::quote(quote_id))
            .await?
            .ok_or(LedgerError::NotFound)?;
        let record = QuoteRecord::try_from(record)?;
        if record.user_id != *user {
            return Err(LedgerError::NotFound);
        }
        Ok(record.into())
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

    /// Creates a pending purchase at the quoted price. `zone` is the buyer's IANA zone (from the
    /// claims): the refund window will be counted in it.
    pub async fn create_purchase(
        &self,
        user: &UserId,
        quote_id: &QuoteId,
        zone_name: &str,
        now: Timestamp,
        key: &IdempotencyKey,
    ) -> Result<PurchaseReceipt, LedgerError> {
        zone(zone_name)?;
        let hash = request_hash(&PurchaseCanonical {
            op: "purchase",
            quote_id,
        })?;
        let purchase_id = PurchaseId::generate();
        let mut retry = self.retry();
        loop {
            if let Some(prior) = prior_response(&self.store, user, key, &hash, now).await? {
                return Ok(prior);
            }
            let quote = self.get_quote(user, quote_id).await?;
            if now >= quote.expires_at {
                return Err(LedgerError::QuoteExpired {
                    expired_at: quote.expires_at,
                });
            }
            let record_key = keys::purchase(&purchase_id);
            let record = PurchaseRecord {
                pk: record_key.pk,
                sk: record_key.sk,
                item_type: ItemType::Purchase,
                purchase_id: purchase_id.clone(),
                user_id: user.clone(),
                quote_id: quote_id.clone(),
                zone: zone_name.to_owned(),
                country: quote.country,
                channel: quote.channel,
                coins: quote.coins,
                bonus_coins: quote.bonus_coins,
                total_coins: quote.total_coins,
                amount: quote.price.gross,
                price_book_version: quote.price_book_version,
                status: PurchaseStatus::Pending,
                created_at: now,
                credited_at: None,
                refundable_until: None,
                lot_sk: None,
                closed_remaining: None,
                settled_by_event: None,
                rejection: None,
                refunded_at: None,
                refund_reason: None,
                refund_nonce: None,
            };
            let receipt = PurchaseReceipt {
                purchase_id: purchase_id.clone(),
                status: PurchaseStatus::Pending,
                total_coins: record.total_coins,
                amount: record.amount,
            };
            let mut transaction = Transaction::new();
            transaction.push(Write::Put {
                record: record.into(),
                condition: Condition::Absent,
            });
            transaction.push(record_write(
                user,
                key,
                &hash,
                &receipt,
                now,
                self.config.idempotency_ttl,
            )?);
            match self.store.commit(transaction).await {
                Ok(()) => return Ok(receipt),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// Applies a verified payment event: at most once per event id, and a purchase is credited
    /// at most once whatever the event ids.
    pub async fn apply_payment(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentOutcome, LedgerError> {
        let event_key = keys::payment_event(&event.event_id);
        // The credit's history entry: one id for the whole call, whatever the retries.
        let entry_id = TxnId::generate();
        let mut retry = self.retry();
        loop {
            if self.store.get(&event_key).await?.is_some() {
                return Ok(PaymentOutcome::Replayed);
            }
            let mut purchase = self.get_purchase(&event.purchase_id).await?;
            if purchase.status != PurchaseStatus::Pending {
                // A concurrent delivery of this very event may have landed between our two
                // reads: the purchase names the event that settled it.
                if purchase.settled_by_event.as_ref() == Some(&event.event_id) {
                    return Ok(PaymentOutcome::Replayed);
                }
                return Ok(PaymentOutcome::AlreadySettled {
                    status: purchase.status,
                });
            }
            let mut transaction = Transaction::new();
            let outcome = match event.kind {
                PaymentKind::Failed => {
                    purchase.status = PurchaseStatus::Failed;
                    PaymentOutcome::Failed
                }
                PaymentKind::Succeeded => match check_payment(&purchase, event) {
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
                        let (credit_writes, balance) =
                            self.credit_writes(&mut purchase, &entry_id, now).await?;
                        for write in credit_writes {
                            transaction.push(write);
                        }
                        PaymentOutcome::Credited {
                            purchase_id: purchase.purchase_id.clone(),
                            coins: purchase.total_coins,
                            balance,
                        }
                    }
                },
            };
            purchase.settled_by_event = Some(event.event_id.clone());
            transaction.push(Write::Put {
                record: purchase.clone().into(),
                condition: Condition::PurchaseStatusIs(PurchaseStatus::Pending),
            });
            let event_record = PaymentEventRecord {
                pk: event_key.pk.clone(),
                sk: event_key.sk.clone(),
                item_type: ItemType::PaymentEvent,
                event_id: event.event_id.clone(),
                purchase_id: event.purchase_id.clone(),
                kind: event.kind,
                outcome: match &outcome {
                    PaymentOutcome::Rejected { reason } => reason.code().to_owned(),
                    _ => purchase.status.as_str().to_owned(),
                },
                received_at: now,
            };
            transaction.push(Write::Put {
                record: event_record.into(),
                condition: Condition::Absent,
            });
            match self.store.commit(transaction).await {
                Ok(()) => return Ok(outcome),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    /// The writes crediting a pending purchase as one lot; marks `purchase` credited. Returns
    /// the writes and the new balance.
    async fn credit_writes(
        &self,
        purchase: &mut PurchaseRecord,
        entry_id: &TxnId,
        now: Timestamp,
    ) -> Result<(Vec<Write>, u64), LedgerError> {
        let buyer_zone = zone(&purchase.zone)?;
        let until = refundable_until(now, &buyer_zone);
        let user = purchase.user_id.clone();
        let snapshot = self.snapshot(&user, now).await?;
        let lot = LotRecord::new(
            &user,
            &purchase.purchase_id,
            purchase.total_coins,
            now,
            until,
        );
        let wallet = domain::credit(&snapshot.wallet, &lot, now)?;
        let marker_key = keys::marker(&user, &purchase.purchase_id);
        let marker = LotMarkerRecord {
            pk: marker_key.pk,
            sk: marker_key.sk,
            item_type: ItemType::LotMarker,
            user_id: user.clone(),
            purchase_id: purchase.purchase_id.clone(),
            expires_at: until.as_second(),
        };
        let history_key = keys::txn(&user, wallet.version);
        let history = HistoryRecord {
            pk: history_key.pk,
            sk: history_key.sk,
            item_type: ItemType::History,
            id: entry_id.to_string(),
            kind: TxnKind::Purchase,
            coins: i64::try_from(lot.coins).map_err(|_| LedgerError::Overflow)?,
            balance_after: wallet.balance,
            at: now,
            reference: purchase.purchase_id.to_string(),
            non_refundable_coins: None,
            gift: None,
        };
        purchase.status = PurchaseStatus::Credited;
        purchase.credited_at = Some(now);
        purchase.refundable_until = Some(until);
        purchase.lot_sk = Some(lot.sk.clone());
        let writes = vec![
            Write::Put {
                record: wallet.clone().into(),
                condition: Condition::version(snapshot.wallet.version),
            },
            Write::Put {
                record: lot.into(),
                condition: Condition::Absent,
            },
            Write::Put {
                record: marker.into(),
                condition: Condition::Absent,
            },
            Write::Put {
                record: history.into(),
                condition: Condition::Absent,
            },
        ];
        Ok((writes, wallet.balance))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purchase(amount: &str, currency: &str, country: &str) -> PurchaseRecord {
        let key = keys::purchase(&PurchaseId::generate());
        PurchaseRecord {
            pk: key.pk,
            sk: key.sk,
            item_type: ItemType::Purchase,
            purchase_id: PurchaseId::generate(),
            user_id: UserId::new("fan").unwrap(),
            quote_id: QuoteId::generate(),
            zone: "Asia/Tokyo".into(),
            country: country.into(),
            channel: "web".into(),
            coins: 700,
            bonus_coins: 0,
            total_coins: 700,
            amount: Money::parse(amount, currency.parse().unwrap()).unwrap(),
            price_book_version: "2026-03".into(),
            status: PurchaseStatus::Pending,
            created_at: Timestamp::UNIX_EPOCH,
            credited_at: None,
            refundable_until: None,
            lot_sk: None,
            closed_remaining: None,
            settled_by_event: None,
            rejection: None,
            refunded_at: None,
            refund_reason: None,
            refund_nonce: None,
        }
    }

    fn event(amount: &str, currency: &str, country: &str) -> PaymentEvent {
        PaymentEvent {
            event_id: EventId::new("evt_1").unwrap(),
            kind: PaymentKind::Succeeded,
            purchase_id: PurchaseId::generate(),
            amount: amount.into(),
            currency: currency.into(),
            country: country.into(),
        }
    }

    #[test]
    fn a_payment_matching_the_quote_is_accepted_whatever_its_trailing_zeros() {
        let jp = purchase("1200", "JPY", "JP");
        assert_eq!(check_payment(&jp, &event("1200", "JPY", "JP")), Ok(()));
        let us = purchase("7.49", "USD", "US");
        assert_eq!(check_payment(&us, &event("7.490", "usd", "us")), Ok(()));
    }

    #[test]
    fn a_payment_from_another_country_is_a_region_mismatch() {
        let jp = purchase("1200", "JPY", "JP");
        assert_eq!(
            check_payment(&jp, &event("1200", "JPY", "TR")),
            Err(PaymentRejection::RegionMismatch)
        );
    }

    #[test]
    fn a_different_amount_or_currency_is_rejected() {
        let us = purchase("7.49", "USD", "US");
        assert_eq!(
            check_payment(&us, &event("7.48", "USD", "US")),
            Err(PaymentRejection::AmountMismatch)
        );
        assert_eq!(
            check_payment(&us, &event("7.491", "USD", "US")),
            Err(PaymentRejection::AmountMismatch)
        );
        assert_eq!(
            check_payment(&us, &event("7.49", "EUR", "US")),
            Err(PaymentRejection::CurrencyMismatch)
        );
        assert_eq!(
            check_payment(&us, &event("7.49", "XXX", "US")),
            Err(PaymentRejection::CurrencyMismatch)
        );
    }
}
