//! What each operation answered, checked as it comes: one answer per idempotency key, a
//! refusal only where the rules allow it (and for the reason they give), what a receipt says
//! against what was asked, one effect per provider event; and what the clients were told is
//! remembered, for `check` to find in the table at every step.

use coins_ids::PaymentIntentId;
use coins_ledger::LedgerError;
use coins_ledger::table::{Record, keys};

use crate::ops::{Answer, Ask, Done, Request, Webhook};
use crate::sim::{Purchase, Sim};
use crate::world::{CLIENT_PATIENCE, GIFTS};

impl Sim {
    /// What operation `index` of the step did: checked, traced, and carried on (a retry
    /// waiting, records to deliver again).
    pub fn apply(&mut self, index: usize, done: Done) -> Result<(), String> {
        match done {
            Done::Asked(request, answer) => self.answered(index, request, answer),
            Done::Hooked(webhook, outcome) => self.hooked(index, webhook, outcome),
            Done::Consumed {
                stream,
                summary,
                retry,
            } => {
                self.trace(format!(
                    "  op{index} {stream:?}: {summary}; {} to redeliver",
                    retry.len()
                ));
                let mut stats = self.stats.lock().expect("one thread per seed");
                self.streams[stream as usize].redeliver(
                    retry,
                    self.step,
                    &mut self.rng,
                    &self.profile,
                    &mut stats.faults,
                );
                Ok(())
            }
            Done::Swept(report) => {
                let report = report.map_err(|error| format!("the sweep failed: {error}"))?;
                self.trace(format!("  op{index} sweep: {report:?}"));
                if report.failed > 0 {
                    return Err(format!("the sweep failed on {} lots", report.failed));
                }
                Ok(())
            }
            Done::Admin(what, result) => {
                match &result {
                    Err(error) if !error.is_retryable() => {
                        return Err(format!("{what}: {error}"));
                    }
                    _ => {}
                }
                self.trace(format!(
                    "  op{index} {what}: {:?}",
                    result.map_err(|e| e.to_string())
                ));
                Ok(())
            }
            Done::Broken(message) => Err(message),
        }
    }

    /// A client's answer: the first for its key, or the same as the first.
    fn answered(
        &mut self,
        index: usize,
        request: Box<Request>,
        answer: Result<Answer, LedgerError>,
    ) -> Result<(), String> {
        let label = format!(
            "  op{index} r{}{} {} {}",
            request.name,
            if request.replay { " (replay)" } else { "" },
            request.user,
            request.ask.describe()
        );
        let key = (request.caller.clone(), request.key.clone());
        let body = request.ask.body();
        let answer = match answer {
            Ok(answer) => answer,
            Err(error) => {
                self.trace(format!("{label}: {error}"));
                return self.refused(*request, &body, error);
            }
        };
        let key_use = self.keys.entry(key).or_default();
        match &key_use.first {
            Some((first_body, _)) if *first_body != body => {
                return Err(format!(
                    "key {} answered `{body}` after `{first_body}`: one key, two effects",
                    request.key
                ));
            }
            Some((_, first)) if *first != answer => {
                return Err(format!(
                    "key {} answered {answer:?} after {first:?}",
                    request.key
                ));
            }
            Some(_) => {}
            None => key_use.first = Some((body, answer.clone())),
        }
        let said = self.learn(&request, &answer)?;
        self.trace(format!("{label}: {said}"));
        if !request.replay {
            self.answered.push_back(*request);
            if self.answered.len() > 64 {
                self.answered.pop_front();
            }
        }
        Ok(())
    }

    /// A refusal: retried later if it may pass, else one the rules allow, checked where the
    /// error says why.
    fn refused(&mut self, request: Request, body: &str, error: LedgerError) -> Result<(), String> {
        if error.is_retryable() {
            if self.now.duration_since(request.since) < CLIENT_PATIENCE {
                self.waiting.push(request);
            }
            return Ok(());
        }
        let key = (request.caller.clone(), request.key.clone());
        let allowed = match (&request.ask, &error) {
            (_, LedgerError::IdempotencyKeyReused) => {
                // Only another body sent with the key may have taken it.
                let bodies = &self.keys[&key].bodies;
                bodies.iter().any(|other| other != body)
            }
            (
                Ask::Buy { .. },
                LedgerError::AccountRestricted | LedgerError::QuoteExpired { .. },
            ) => true,
            (Ask::Gift { .. }, LedgerError::InsufficientCoins { balance, requested }) => {
                balance < requested
            }
            (
                Ask::Gift { .. },
                LedgerError::CoinDebt { .. } | LedgerError::SpendingLimitReached(_),
            ) => true,
            (
                Ask::Refund { admin: false, .. },
                LedgerError::RefundWindowClosed { refundable_until },
            ) => self.now >= *refundable_until,
            (
                Ask::Refund { .. },
                LedgerError::AlreadyRefunded
                | LedgerError::CoinsAlreadySpent
                | LedgerError::PurchaseNotCredited,
            ) => true,
            (
                Ask::Payout { .. },
                LedgerError::InsufficientDiamonds {
                    available,
                    requested,
                },
            ) => available < requested,
            (Ask::Payout { diamonds }, LedgerError::PayoutBelowMinimum { minimum }) => {
                diamonds < minimum
            }
            (
                Ask::Payout { .. },
                LedgerError::PayoutLimitReached | LedgerError::PayoutAccountMissing,
            ) => true,
            (Ask::Redeem { txn, .. }, LedgerError::PurchaseRevoked) => {
                self.revoked_refusal_allowed(*txn)
            }
            (Ask::Redeem { .. }, LedgerError::AccountRestricted) => true,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(format!(
                "{} r{} answered {error:?}, which the rules do not allow here",
                request.ask.call(),
                request.name
            ))
        }
    }

    /// What an answered request tells the clients (and so the table must keep), checked
    /// against what was asked.
    fn learn(&mut self, request: &Request, answer: &Answer) -> Result<String, String> {
        match (&request.ask, answer) {
            (Ask::Buy { quote, payment }, Answer::Bought(receipt, paired)) => {
                self.bought(request, quote, payment, receipt, paired)
            }
            (Ask::Gift { gift, quantity, .. }, Answer::Gave(receipt)) => {
                let price = GIFTS
                    .iter()
                    .find(|(name, _)| name == gift)
                    .map(|(_, coins)| coins * u64::from(*quantity));
                if Some(receipt.coins_spent) != price {
                    return Err(format!(
                        "gift r{} spent {} coins, priced {price:?}",
                        request.name, receipt.coins_spent
                    ));
                }
                self.told.gifts.insert(
                    receipt.gift_txn_id.to_string(),
                    (request.user.clone(), receipt.coins_spent),
                );
                Ok(format!(
                    "sent, {} coins, balance {}",
                    receipt.coins_spent, receipt.balance
                ))
            }
            (
                Ask::Refund {
                    purchase, admin, ..
                },
                Answer::Refunded(receipt),
            ) => {
                let total = self.purchases[*purchase].total_coins;
                if receipt.coins_reversed != total {
                    return Err(format!(
                        "refund of p{purchase} reversed {} coins of {total}",
                        receipt.coins_reversed
                    ));
                }
                if !admin {
                    self.refund_was_in_window(*purchase, request)?;
                }
                self.told
                    .refunds
                    .insert(*purchase, receipt.refund_id.clone());
                Ok(format!("refunded {total} coins"))
            }
            (Ask::Payout { diamonds }, Answer::PaidOut(view)) => {
                if view.diamonds != *diamonds {
                    return Err(format!(
                        "payout r{} of {} diamonds, asked {diamonds}",
                        request.name, view.diamonds
                    ));
                }
                self.told.payouts.insert(
                    view.payout_id.to_string(),
                    (request.user.clone(), view.diamonds),
                );
                Ok(format!("payout of {diamonds} diamonds"))
            }
            (Ask::Redeem { txn, .. }, Answer::Redeemed(credit)) => {
                self.redeemed(request, *txn, credit)
            }
            (ask, answer) => Err(format!("{} answered {answer:?}", ask.call())),
        }
    }

    /// A purchase answered: paired with its own payment, at its quoted coins; named once,
    /// and its payment's story begun.
    fn bought(
        &mut self,
        request: &Request,
        quote: &coins_ledger::Quote,
        payment: &PaymentIntentId,
        receipt: &coins_ledger::PurchaseReceipt,
        paired: &PaymentIntentId,
    ) -> Result<String, String> {
        if paired != payment {
            return Err(format!(
                "purchase of r{} paired with {paired}, not its own {payment}",
                request.name
            ));
        }
        if receipt.total_coins != quote.priced.total_coins() {
            return Err(format!(
                "purchase of r{} for {} coins, quoted {}",
                request.name,
                receipt.total_coins,
                quote.priced.total_coins()
            ));
        }
        if self.purchase_names.contains_key(&receipt.purchase_id) {
            let name = self.purchase_names[&receipt.purchase_id];
            return Ok(format!("p{name} again"));
        }
        let name = self.purchases.len();
        let user = self
            .users
            .iter()
            .position(|user| user.id == request.user)
            .expect("a user of the world");
        self.purchase_names
            .insert(receipt.purchase_id.clone(), name);
        self.purchases.push(Purchase {
            id: receipt.purchase_id.clone(),
            user,
            payment: payment.clone(),
            amount_minor: receipt.amount.minor_units().expect("minor units"),
            currency: receipt.amount.currency().code().to_owned(),
            total_coins: receipt.total_coins,
            bought_at: self.now,
            disputed: false,
            pays_twice: false,
        });
        self.pay(name);
        Ok(format!(
            "p{name}, {} coins for {}",
            receipt.total_coins, receipt.amount
        ))
    }

    /// An owner's refund happens only inside the purchase's window: asked before it ended (a
    /// retry or a replay may be answered later, with the first answer).
    fn refund_was_in_window(&self, purchase: usize, request: &Request) -> Result<(), String> {
        let Some(Record::Purchase(record)) =
            self.peek(&keys::purchase(&self.purchases[purchase].id))
        else {
            return Err(format!("refunded p{purchase} is not in the table"));
        };
        match record.refundable_until {
            Some(until) if request.since < until => Ok(()),
            until => Err(format!(
                "p{purchase} refunded to its owner asked at {}, its window ending {until:?}",
                request.since
            )),
        }
    }

    /// A provider event's outcome: at most one effect per event, one credit per purchase;
    /// refused, it is sent again.
    fn hooked(
        &mut self,
        index: usize,
        webhook: Webhook,
        outcome: Result<String, LedgerError>,
    ) -> Result<(), String> {
        let (what, purchase) = match &webhook {
            Webhook::Store { word, txn } => {
                let (word, txn) = (word.clone(), *txn);
                return self.store_hook_ended(index, webhook, &word, txn, outcome);
            }
            Webhook::Payment { purchase, said, .. } => (format!("payment {said}"), *purchase),
            Webhook::Dispute {
                won: false,
                purchase,
                ..
            } => ("dispute opened".to_owned(), *purchase),
            Webhook::Dispute {
                won: true,
                purchase,
                ..
            } => ("dispute won".to_owned(), *purchase),
        };
        let event = webhook.event_id().clone();
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(error) if error.is_retryable() => {
                self.trace(format!(
                    "  op{index} {event} {what} of p{purchase}: {error}"
                ));
                // Stripe sends it again until it is acknowledged.
                let mut stats = self.stats.lock().expect("one thread per seed");
                self.webhooks.redeliver(
                    vec![webhook],
                    self.step,
                    &mut self.rng,
                    &self.profile,
                    &mut stats.faults,
                );
                return Ok(());
            }
            Err(error) => return Err(format!("{event} ({what} of p{purchase}): {error}")),
        };
        self.trace(format!(
            "  op{index} {event} {what} of p{purchase}: {outcome}"
        ));
        // An event has at most one effect, whatever is redelivered.
        let effect = match &webhook {
            Webhook::Payment { .. } => outcome != "replayed",
            Webhook::Dispute { .. } => matches!(outcome.as_str(), "reversed" | "reversal_undone"),
            Webhook::Store { .. } => unreachable!("store words end in store_hook_ended"),
        };
        if effect {
            if let Some(first) = self.events.get(&event) {
                return Err(format!(
                    "event {event} had two effects: {first}, then {outcome}"
                ));
            }
            self.events.insert(event, outcome.clone());
        }
        if outcome == "credited" && !self.told.credited.insert(purchase) {
            return Err(format!("p{purchase} credited twice"));
        }
        if outcome == "credited" && self.purchases[purchase].pays_twice {
            // Only the payment paired with the purchase can be paid before it is credited (the
            // client holds no other's secret): a second one comes after.
            self.purchases[purchase].pays_twice = false;
            let second =
                PaymentIntentId::new(format!("{}_again", self.purchases[purchase].payment))
                    .expect("an id");
            let (amount, country) = (
                self.purchases[purchase].amount_minor,
                self.users[self.purchases[purchase].user].billing.country(),
            );
            self.charge(purchase, &second, amount, country.as_str(), None);
            self.trace(format!("provider: p{purchase} paid a second time"));
        }
        Ok(())
    }
}

impl Sim {
    /// A store word's delivery: refused, it is sent again (as the store does until
    /// acknowledged); applied, checked (`store_ops`).
    fn store_hook_ended(
        &mut self,
        index: usize,
        webhook: Webhook,
        word: &coins_ledger::StoreWord,
        txn: usize,
        outcome: Result<String, LedgerError>,
    ) -> Result<(), String> {
        match outcome {
            Ok(outcome) => self.store_hooked(index, word, txn, &outcome),
            Err(error) if error.is_retryable() => {
                let event = &word.event_id;
                self.trace(format!("  op{index} {event} store word on s{txn}: {error}"));
                let mut stats = self.stats.lock().expect("one thread per seed");
                self.webhooks.redeliver(
                    vec![webhook],
                    self.step,
                    &mut self.rng,
                    &self.profile,
                    &mut stats.faults,
                );
                Ok(())
            }
            Err(error) => Err(format!("{} (store word on s{txn}): {error}", word.event_id)),
        }
    }
}
