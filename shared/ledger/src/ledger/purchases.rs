//! Quotes, purchases and payments: a purchase is created from a quote, paired with the
//! provider's payment, and credited, as one lot, at most once, when that payment succeeds with
//! the quoted amount, currency and country. A payment that cannot be credited is returned: its
//! refund instruction is written in the same transaction that records why.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{
    EventId, IdempotencyKey, PaymentIntentId, PurchaseId, QuoteId, RefundId, TxnId, UserId,
};
use coins_rules::money::{Currency, Money};
use coins_rules::pricing::check_quote_fresh;
use coins_rules::refund::refundable_until;
use coins_rules::{BillingCountry, Zone};

use super::{Attempt, Ledger};
use crate::domain::{self, Lot, Wallet};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{
    HistoryRecord, LotMarkerRecord, PaymentEventRecord, PaymentIntentRecord, PurchaseRecord,
    PurchaseStatus, Quote, QuoteRecord, RefundReason, RefundRecord, Row, TxnKind, keys,
};

/// What `POST /v1/purchases` records as its first result (the payment is added to the answer
/// by the function, from the provider).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseReceipt {
    pub purchase_id: PurchaseId,
    pub status: PurchaseStatus,
    pub total_coins: u64,
    /// The quoted gross price to pay.
    pub amount: Money,
    /// When the purchase stops waiting for its payment.
    pub expires_at: Timestamp,
}

/// What was paid, in the currency's minor units, as the provider says: any currency, since a
/// payment in one we do not sell in is returned like any other that cannot be credited.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Paid {
    pub amount_minor: i64,
    /// ISO 4217, upper case.
    pub currency: String,
}

impl Paid {
    pub fn new(amount_minor: i64, currency: &str) -> Paid {
        Paid {
            amount_minor,
            currency: currency.to_ascii_uppercase(),
        }
    }

    /// The money paid, in a currency we know.
    fn money(&self) -> Option<Money> {
        let currency: Currency = self.currency.parse().ok()?;
        Some(Money::from_minor_units(self.amount_minor, currency))
    }
}

/// What the provider says happened to a payment, read at the edge.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Payment {
    /// Paid with a payment method from `country` (unknown when the provider does not say).
    Succeeded {
        paid: Paid,
        country: Option<BillingCountry>,
    },
    Failed,
}

/// A verified payment-provider event about one payment.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PaymentEvent {
    pub event_id: EventId,
    /// The provider's event type, recorded with the event.
    pub kind: String,
    pub payment_intent_id: PaymentIntentId,
    /// The purchase the payment names (its metadata), if any.
    pub purchase_id: Option<PurchaseId>,
    pub payment: Payment,
}

/// What happened to a payment event. The webhook answers 200 to all of them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PaymentOutcome {
    /// The purchase's coins were credited as one lot (debt repaid first).
    Credited {
        purchase_id: PurchaseId,
        coins: u64,
        balance: u64,
    },
    /// This event, or this payment's outcome, was applied before: nothing changed.
    Replayed,
    /// The payment cannot be credited: a refund of it is recorded for dispatch.
    Returned {
        refund_id: RefundId,
        reason: RefundReason,
    },
    /// The provider reported a failed payment; the purchase is recorded as failed.
    Failed,
    /// Nothing to do (a failure for a purchase no longer pending).
    Ignored,
}

impl PaymentOutcome {
    pub fn name(&self) -> &'static str {
        match self {
            PaymentOutcome::Credited { .. } => "credited",
            PaymentOutcome::Replayed => "replayed",
            PaymentOutcome::Returned { .. } => "returned",
            PaymentOutcome::Failed => "failed",
            PaymentOutcome::Ignored => "ignored",
        }
    }
}

/// Why a succeeded payment cannot credit this pending purchase, if it cannot: the country
/// first (the VPN-arbitrage guard), then the currency, then the exact amount.
pub(crate) fn mismatch(
    purchase: &PurchaseRecord,
    paid: &Paid,
    country: Option<BillingCountry>,
) -> Option<RefundReason> {
    if country != Some(purchase.country) {
        return Some(RefundReason::RegionMismatch);
    }
    match paid.money() {
        Some(money) if money.currency() != purchase.amount.currency() => {
            Some(RefundReason::CurrencyMismatch)
        }
        None => Some(RefundReason::CurrencyMismatch),
        Some(money) if money != purchase.amount => Some(RefundReason::AmountMismatch),
        Some(_) => None,
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
    /// the refund window will be counted in it. A restricted account may not buy.
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
            self.refuse_if_restricted(user).await?;
            let quote = self.get_quote(user, quote_id).await?;
            check_quote_fresh(quote.expires_at, now)?;
            let record = PurchaseRecord::pending(purchase_id.clone(), &quote, zone, now);
            let receipt = PurchaseReceipt {
                purchase_id: purchase_id.clone(),
                status: PurchaseStatus::Pending,
                total_coins: record.total_coins,
                amount: record.amount,
                expires_at: record.payment_due_by,
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

    /// Pairs a pending purchase with the provider's payment created for it. Returns the payment
    /// now paired: `payment`, or one paired earlier (a concurrent or retried request), which
    /// the caller uses instead of its own.
    pub async fn attach_payment(
        &self,
        purchase_id: &PurchaseId,
        payment: &PaymentIntentId,
    ) -> Result<PaymentIntentId, LedgerError> {
        self.transact(|| async move {
            let purchase = self.get_purchase(purchase_id).await?;
            if let Some(paired) = &purchase.payment_intent_id {
                return Ok(Attempt::Done(paired.clone()));
            }
            if purchase.status != PurchaseStatus::Pending {
                return Err(LedgerError::InvalidRequest(format!(
                    "purchase {purchase_id} is {}",
                    purchase.status.as_str()
                )));
            }
            let index = PaymentIntentRecord {
                payment_intent_id: payment.clone(),
                purchase_id: purchase_id.clone(),
            };
            let paired = purchase.changed(|p| p.payment_intent_id = Some(payment.clone()));
            let transaction = Transaction::of([
                Write::put(paired, Condition::VersionIs(purchase.version)),
                Write::put(index, Condition::Absent),
            ]);
            Ok(Attempt::Commit(transaction, payment.clone()))
        })
        .await
    }

    /// The purchase a provider payment was paired with (a dispute names only the payment).
    pub async fn purchase_for_payment(
        &self,
        payment: &PaymentIntentId,
    ) -> Result<Option<PurchaseRecord>, LedgerError> {
        self.purchase_of(None, payment).await
    }

    /// The purchase a provider payment belongs to: the one it names, else the one it was
    /// paired with.
    pub(crate) async fn purchase_of(
        &self,
        named: Option<&PurchaseId>,
        payment: &PaymentIntentId,
    ) -> Result<Option<PurchaseRecord>, LedgerError> {
        if let Some(purchase_id) = named {
            match self.get_purchase(purchase_id).await {
                Ok(purchase) => return Ok(Some(purchase)),
                Err(LedgerError::NotFound) => {}
                Err(error) => return Err(error),
            }
        }
        let Some(record) = self.store.get(&keys::payment_intent(payment)).await? else {
            return Ok(None);
        };
        let purchase_id = PaymentIntentRecord::try_from(record)?.purchase_id;
        Ok(Some(self.get_purchase(&purchase_id).await?))
    }

    /// Applies a verified payment event: at most once per event id; a purchase is credited at
    /// most once whatever the event ids; every payment that cannot be credited is returned,
    /// once per payment.
    pub async fn apply_payment(
        &self,
        event: &PaymentEvent,
        now: Timestamp,
    ) -> Result<PaymentOutcome, LedgerError> {
        // The credit's history entry: one id for the whole call, whatever the retries.
        let entry_id = &TxnId::generate();
        self.transact(|| async move {
            let event_key = keys::payment_event(&event.event_id);
            if self.store.get(&event_key).await?.is_some() {
                return Ok(Attempt::Done(PaymentOutcome::Replayed));
            }
            let purchase = self
                .purchase_of(event.purchase_id.as_ref(), &event.payment_intent_id)
                .await?;
            let (mut writes, outcome) = match (&event.payment, purchase) {
                (Payment::Failed, Some(purchase)) => fail(purchase, &event.payment_intent_id),
                (Payment::Failed, None) => (Vec::new(), PaymentOutcome::Ignored),
                (Payment::Succeeded { paid, country }, purchase) => {
                    let paid = Settlement {
                        event,
                        paid,
                        country: *country,
                        now,
                    };
                    match self.settle(&paid, purchase, entry_id).await? {
                        Some(settled) => settled,
                        None => return Ok(Attempt::Done(PaymentOutcome::Replayed)),
                    }
                }
            };
            writes.push(Write::put(
                PaymentEventRecord {
                    event_id: event.event_id.clone(),
                    kind: event.kind.clone(),
                    outcome: outcome.name().to_owned(),
                    received_at: now,
                },
                Condition::Absent,
            ));
            Ok(Attempt::Commit(Transaction::of(writes), outcome))
        })
        .await
    }

    /// The writes a succeeded payment makes, or `None` when this payment's outcome is already
    /// recorded (another event id about the same payment).
    async fn settle(
        &self,
        settlement: &Settlement<'_>,
        purchase: Option<PurchaseRecord>,
        entry_id: &TxnId,
    ) -> Result<Option<(Vec<Write>, PaymentOutcome)>, LedgerError> {
        let payment = &settlement.event.payment_intent_id;
        let Some(purchase) = purchase else {
            return self
                .return_once(settlement.returned(None, RefundReason::UnknownPurchase))
                .await;
        };
        let this_payment = purchase.payment_intent_id.as_ref() == Some(payment);
        let reason = match purchase.status {
            PurchaseStatus::Pending | PurchaseStatus::Failed
                if awaits(&purchase, payment, settlement.now) =>
            {
                match mismatch(&purchase, settlement.paid, settlement.country) {
                    Some(reason) => reason,
                    None => {
                        let credit =
                            self.credit(purchase, false, payment, entry_id, settlement.now);
                        return credit.await.map(Some);
                    }
                }
            }
            PurchaseStatus::Pending => RefundReason::PurchaseExpired,
            PurchaseStatus::Failed => RefundReason::PurchaseFailed,
            // This payment settled the purchase before (an event about it under another id).
            _ if this_payment => return Ok(None),
            _ => {
                // A second payment for a purchase already paid: returned, the purchase kept.
                let returned = settlement.returned(Some(&purchase), RefundReason::AlreadyPaid);
                return self.return_once(returned).await;
            }
        };
        // The purchase's own money goes back: it shows why.
        let returned = settlement.returned(Some(&purchase), reason);
        let refunded = purchase.changed(|p| {
            p.status = PurchaseStatus::Refunded;
            p.payment_intent_id = Some(payment.clone());
            p.refund_id = Some(returned.refund_id.clone());
            p.refunded_at = Some(settlement.now);
            p.settled_by_event = Some(settlement.event.event_id.clone());
        });
        let outcome = PaymentOutcome::Returned {
            refund_id: returned.refund_id.clone(),
            reason,
        };
        let writes = vec![
            Write::put(refunded, Condition::VersionIs(purchase.version)),
            Write::put(returned, Condition::Absent),
        ];
        Ok(Some((writes, outcome)))
    }

    /// The return of a payment no purchase keeps, unless it was recorded before.
    async fn return_once(
        &self,
        returned: RefundRecord,
    ) -> Result<Option<(Vec<Write>, PaymentOutcome)>, LedgerError> {
        if self.store.get(&returned.key()).await?.is_some() {
            return Ok(None);
        }
        let outcome = PaymentOutcome::Returned {
            refund_id: returned.refund_id.clone(),
            reason: returned.reason,
        };
        Ok(Some((
            vec![Write::put(returned, Condition::Absent)],
            outcome,
        )))
    }

    /// The writes crediting a pending purchase as one lot, debt repaid first.
    pub(crate) async fn credit(
        &self,
        purchase: PurchaseRecord,
        is_new: bool,
        payment: &PaymentIntentId,
        entry_id: &TxnId,
        now: Timestamp,
    ) -> Result<(Vec<Write>, PaymentOutcome), LedgerError> {
        let until = refundable_until(now, purchase.zone.tz());
        let user = &purchase.user_id;
        let snapshot = self.snapshot(user, &purchase.zone, now).await?;
        let lot = Lot::new(
            user,
            &purchase.purchase_id,
            purchase.total_coins,
            now,
            until,
        );
        let (wallet, lot) = domain::credit(&snapshot.wallet, lot, now)?;
        let coins = i64::try_from(lot.coins).map_err(|_| LedgerError::Overflow)?;
        let history = HistoryRecord::of(
            &wallet,
            entry_id.clone(),
            TxnKind::Purchase,
            coins,
            &purchase.purchase_id,
        );
        let credited = purchase.changed(|p| {
            p.status = PurchaseStatus::Credited;
            p.payment_intent_id = Some(payment.clone());
            p.credited_at = Some(now);
            p.refundable_until = Some(until);
        });
        let outcome = PaymentOutcome::Credited {
            purchase_id: purchase.purchase_id.clone(),
            coins: purchase.total_coins,
            balance: wallet.balance,
        };
        // A store purchase is written here for the first time; a web one was pending.
        let condition = if is_new {
            Condition::Absent
        } else {
            Condition::VersionIs(purchase.version)
        };
        let mut writes = vec![
            Write::put(wallet, Condition::version(snapshot.wallet.version)),
            Write::put(history, Condition::Absent),
            Write::put(credited, condition),
        ];
        // A lot that the debt took whole holds nothing to spend, refund or close.
        if lot.remaining > 0 {
            writes.push(Write::put(
                LotMarkerRecord::for_lot(&lot),
                Condition::Absent,
            ));
            writes.push(Write::put(lot, Condition::Absent));
        }
        Ok((writes, outcome))
    }

    /// Refused with [`LedgerError::AccountRestricted`] while the user's account is restricted.
    pub async fn refuse_if_restricted(&self, user: &UserId) -> Result<(), LedgerError> {
        let Some(record) = self.store.get(&keys::wallet(user)).await? else {
            return Ok(());
        };
        if Wallet::try_from(record)?.restricted {
            Err(LedgerError::AccountRestricted)
        } else {
            Ok(())
        }
    }
}

/// Whether a purchase still takes `payment` at `now`: inside its payment window, pending, or
/// failed by a declined attempt of this same payment (or before one was paired). A decline does
/// not end a purchase: Stripe lets the buyer retry the same PaymentIntent (another card, 3-D
/// Secure), and a success then must credit it, not return the money as `purchase_failed`.
fn awaits(purchase: &PurchaseRecord, payment: &PaymentIntentId, now: Timestamp) -> bool {
    let ours = purchase
        .payment_intent_id
        .as_ref()
        .is_none_or(|p| p == payment);
    now < purchase.payment_due_by
        && match purchase.status {
            PurchaseStatus::Pending => true,
            PurchaseStatus::Failed => ours,
            _ => false,
        }
}

/// A failed payment: a pending purchase (of this payment, or not yet paired) shows it as
/// failed, until a retry of the same payment succeeds inside the payment window ([`awaits`]).
fn fail(purchase: PurchaseRecord, payment: &PaymentIntentId) -> (Vec<Write>, PaymentOutcome) {
    let ours = purchase
        .payment_intent_id
        .as_ref()
        .is_none_or(|p| p == payment);
    if purchase.status != PurchaseStatus::Pending || !ours {
        return (Vec::new(), PaymentOutcome::Ignored);
    }
    let failed = purchase.changed(|p| p.status = PurchaseStatus::Failed);
    let write = Write::put(failed, Condition::VersionIs(purchase.version));
    (vec![write], PaymentOutcome::Failed)
}

/// A succeeded payment being settled.
struct Settlement<'a> {
    event: &'a PaymentEvent,
    paid: &'a Paid,
    country: Option<BillingCountry>,
    now: Timestamp,
}

impl Settlement<'_> {
    /// The instruction returning this payment, whole: one per payment, whatever the events.
    fn returned(&self, purchase: Option<&PurchaseRecord>, reason: RefundReason) -> RefundRecord {
        let payment = &self.event.payment_intent_id;
        tracing::warn!(
            payment_intent_id = %payment,
            reason = reason.code(),
            "payment cannot be credited: returned"
        );
        RefundRecord::pending(
            RefundId::for_return(payment),
            purchase,
            payment,
            self.paid.amount_minor,
            &self.paid.currency,
            reason,
            None,
            self.now,
        )
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

    fn country(code: &str) -> Option<BillingCountry> {
        Some(code.parse().unwrap())
    }

    fn quoted(purchase: &PurchaseRecord) -> Paid {
        let amount = purchase.amount;
        Paid::new(amount.minor_units().unwrap(), amount.currency().code())
    }

    #[test]
    fn a_payment_of_the_quoted_money_from_the_quoted_country_matches() {
        let us = purchase("US");
        assert_eq!(mismatch(&us, &quoted(&us), country("US")), None);
        let lower_case = Paid::new(quoted(&us).amount_minor, "usd");
        assert_eq!(mismatch(&us, &lower_case, country("US")), None);
    }

    #[test]
    fn a_payment_from_another_or_an_unknown_country_is_a_region_mismatch() {
        let jp = purchase("JP");
        assert_eq!(
            mismatch(&jp, &quoted(&jp), country("TR")),
            Some(RefundReason::RegionMismatch)
        );
        assert_eq!(
            mismatch(&jp, &quoted(&jp), None),
            Some(RefundReason::RegionMismatch)
        );
    }

    #[test]
    fn another_amount_or_currency_or_an_unknown_currency_does_not_match() {
        let us = purchase("US");
        let paid = quoted(&us);
        let cents = paid.amount_minor;
        assert_eq!(
            mismatch(&us, &Paid::new(cents - 1, "USD"), country("US")),
            Some(RefundReason::AmountMismatch)
        );
        assert_eq!(
            mismatch(&us, &Paid::new(cents, "EUR"), country("US")),
            Some(RefundReason::CurrencyMismatch)
        );
        assert_eq!(
            mismatch(&us, &Paid::new(cents, "XTS"), country("US")),
            Some(RefundReason::CurrencyMismatch)
        );
    }
}
