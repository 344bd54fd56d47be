//! `coinctl reconcile`: Stripe's money against the ledger's coins for a period.
//!
//! Stripe's side is every PaymentIntent that succeeded in the period (from its
//! `payment_intent.succeeded` events, the one list with a time filter every Stripe API has) and
//! the refunds of each; the ledger's side is every purchase paired with a PaymentIntent and every
//! refund instruction (a scan: an operator's tool, not a request path). [`compare`] is pure and
//! names every mismatch:
//!
//! - money without coins: a payment succeeded, no purchase was credited with it and no refund
//!   instruction returns it;
//! - coins without money: a purchase was credited with a payment Stripe does not show succeeded;
//! - refund not sent: an instruction failed, is still pending after the grace period, or says
//!   succeeded while Stripe has no such refund;
//! - refund without instruction: Stripe refunded a payment and no instruction asked for it;
//! - amount differs: a payment or refund of another amount or currency than the ledger's.

use std::collections::{HashMap, HashSet};
use std::fmt;

use coins_ledger::table::{PurchaseRecord, Record};
use coins_ledger::{RefundRecord, RefundStatus};
use coins_payments::stripe::{PaymentIntent, Refund, Stripe};
use jiff::{SignedDuration, Timestamp};

/// A PaymentIntent that succeeded at Stripe, and its refunds.
#[derive(Clone, Debug)]
pub struct StripePayment {
    pub intent: PaymentIntent,
    pub refunds: Vec<Refund>,
}

/// What the ledger holds about payments.
#[derive(Clone, Debug, Default)]
pub struct LedgerSide {
    pub purchases: Vec<PurchaseRecord>,
    pub instructions: Vec<RefundRecord>,
}

/// One way Stripe and the ledger disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    MoneyWithoutCoins {
        payment_intent: String,
        amount: String,
    },
    CoinsWithoutMoney {
        purchase_id: String,
        payment_intent: String,
    },
    RefundNotSent {
        refund_id: String,
        payment_intent: String,
        why: String,
    },
    RefundWithoutInstruction {
        stripe_refund: String,
        payment_intent: String,
    },
    AmountDiffers {
        what: String,
        ledger: String,
        stripe: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::MoneyWithoutCoins {
                payment_intent,
                amount,
            } => write!(
                f,
                "money without coins: {payment_intent} paid {amount}, no purchase credited and no refund"
            ),
            Mismatch::CoinsWithoutMoney {
                purchase_id,
                payment_intent,
            } => write!(
                f,
                "coins without money: {purchase_id} credited with {payment_intent}, which Stripe does not show paid"
            ),
            Mismatch::RefundNotSent {
                refund_id,
                payment_intent,
                why,
            } => write!(f, "refund not sent: {refund_id} of {payment_intent}: {why}"),
            Mismatch::RefundWithoutInstruction {
                stripe_refund,
                payment_intent,
            } => write!(
                f,
                "refund without instruction: {stripe_refund} of {payment_intent}"
            ),
            Mismatch::AmountDiffers {
                what,
                ledger,
                stripe,
            } => write!(
                f,
                "amount differs: {what}: ledger {ledger}, Stripe {stripe}"
            ),
        }
    }
}

/// Compares the two sides for the period `[since, until)`; `now - grace` is how old a pending
/// instruction may be before it counts as not sent (the dispatcher runs within seconds).
pub fn compare(
    stripe: &[StripePayment],
    ledger: &LedgerSide,
    since: Timestamp,
    until: Timestamp,
    now: Timestamp,
    grace: SignedDuration,
) -> Vec<Mismatch> {
    let mut mismatches = Vec::new();
    let paid: HashMap<&str, &StripePayment> = stripe
        .iter()
        .map(|payment| (payment.intent.id.as_str(), payment))
        .collect();
    let credited: HashMap<&str, &PurchaseRecord> = ledger
        .purchases
        .iter()
        .filter(|purchase| purchase.credited_at.is_some())
        .filter_map(|purchase| Some((purchase.payment_intent_id.as_ref()?.as_str(), purchase)))
        .collect();
    let instructions: HashMap<&str, Vec<&RefundRecord>> =
        ledger
            .instructions
            .iter()
            .fold(HashMap::new(), |mut by_intent, instruction| {
                by_intent
                    .entry(instruction.payment_intent_id.as_str())
                    .or_insert_with(Vec::new)
                    .push(instruction);
                by_intent
            });

    for payment in stripe {
        let intent = &payment.intent;
        let own = instructions.get(intent.id.as_str());
        match credited.get(intent.id.as_str()) {
            Some(purchase) => {
                let ledger_amount = (
                    purchase.amount.minor_units(),
                    purchase.amount.currency().code(),
                );
                if ledger_amount.0 != Some(intent.amount)
                    || !ledger_amount.1.eq_ignore_ascii_case(&intent.currency)
                {
                    mismatches.push(Mismatch::AmountDiffers {
                        what: format!("payment {} of {}", intent.id, purchase.purchase_id),
                        ledger: purchase.amount.to_string(),
                        stripe: format!("{} {}", intent.amount, intent.currency),
                    });
                }
            }
            None if own.is_none() => mismatches.push(Mismatch::MoneyWithoutCoins {
                payment_intent: intent.id.clone(),
                amount: format!("{} {}", intent.amount, intent.currency),
            }),
            None => {}
        }
        let asked: HashSet<&str> = own
            .into_iter()
            .flatten()
            .map(|instruction| instruction.refund_id.as_str())
            .collect();
        for refund in &payment.refunds {
            let ours = refund
                .metadata
                .get("refund_id")
                .is_some_and(|id| asked.contains(id.as_str()));
            if !ours {
                mismatches.push(Mismatch::RefundWithoutInstruction {
                    stripe_refund: refund.id.clone(),
                    payment_intent: intent.id.clone(),
                });
            }
        }
    }

    for purchase in &ledger.purchases {
        let (Some(credited_at), Some(intent)) = (purchase.credited_at, &purchase.payment_intent_id)
        else {
            continue;
        };
        if (since..until).contains(&credited_at) && !paid.contains_key(intent.as_str()) {
            mismatches.push(Mismatch::CoinsWithoutMoney {
                purchase_id: purchase.purchase_id.to_string(),
                payment_intent: intent.to_string(),
            });
        }
    }

    for instruction in &ledger.instructions {
        if !(since..until).contains(&instruction.created_at) {
            continue;
        }
        let not_sent = |why: String| Mismatch::RefundNotSent {
            refund_id: instruction.refund_id.to_string(),
            payment_intent: instruction.payment_intent_id.to_string(),
            why,
        };
        match instruction.status {
            RefundStatus::Failed => mismatches.push(not_sent(format!(
                "failed after {} attempts ({})",
                instruction.attempts,
                instruction
                    .last_error
                    .as_deref()
                    .unwrap_or("no error recorded")
            ))),
            RefundStatus::Pending if instruction.created_at + grace < now => mismatches.push(
                not_sent(format!("pending since {}", instruction.created_at)),
            ),
            RefundStatus::Pending => {}
            RefundStatus::Succeeded => {
                let made = paid
                    .get(instruction.payment_intent_id.as_str())
                    .and_then(|payment| {
                        payment.refunds.iter().find(|refund| {
                            Some(&refund.id) == instruction.provider_refund_id.as_ref()
                        })
                    });
                match made {
                    None => mismatches.push(not_sent(format!(
                        "recorded as {} but Stripe has no such refund",
                        instruction.provider_refund_id.as_deref().unwrap_or("?")
                    ))),
                    Some(refund) if refund.amount != instruction.amount_minor => {
                        mismatches.push(Mismatch::AmountDiffers {
                            what: format!("refund {}", instruction.refund_id),
                            ledger: format!(
                                "{} {}",
                                instruction.amount_minor, instruction.currency
                            ),
                            stripe: format!("{} {}", refund.amount, refund.currency),
                        })
                    }
                    Some(_) => {}
                }
            }
        }
    }
    mismatches
}

/// Stripe's side: the PaymentIntents that succeeded in `[since, until)` (by their event) and
/// the refunds of each. Intents paid in the period but credited later are still found: the
/// event's time is when Stripe took the money.
pub async fn stripe_side(
    stripe: &Stripe,
    since: Timestamp,
    until: Timestamp,
) -> Result<Vec<StripePayment>, String> {
    let mut intents: Vec<PaymentIntent> = Vec::new();
    let mut seen = HashSet::new();
    let mut after: Option<String> = None;
    loop {
        let page = stripe
            .events(
                "payment_intent.succeeded",
                since.as_second(),
                after.as_deref(),
            )
            .await
            .map_err(|error| format!("listing Stripe's events: {error}"))?;
        for event in &page.data {
            if event.created >= until.as_second() {
                continue;
            }
            let intent: PaymentIntent = event
                .object()
                .map_err(|error| format!("event {}: {error}", event.id))?;
            if seen.insert(intent.id.clone()) {
                intents.push(intent);
            }
        }
        match (page.has_more, page.data.last()) {
            (true, Some(last)) => after = Some(last.id.clone()),
            _ => break,
        }
    }
    let mut payments = Vec::with_capacity(intents.len());
    for intent in intents {
        let refunds = stripe
            .refunds_of(&intent.id)
            .await
            .map_err(|error| format!("refunds of {}: {error}", intent.id))?;
        payments.push(StripePayment { intent, refunds });
    }
    Ok(payments)
}

/// The ledger's side, from a scan of the table.
pub fn ledger_side(records: Vec<Record>) -> LedgerSide {
    let mut side = LedgerSide::default();
    for record in records {
        match record {
            Record::Purchase(purchase) if purchase.payment_intent_id.is_some() => {
                side.purchases.push(purchase)
            }
            Record::Refund(instruction) => side.instructions.push(instruction),
            _ => {}
        }
    }
    side
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::{PaymentIntentId, PurchaseId, RefundId, UserId};
    use coins_ledger::{Quote, RefundReason};
    use coins_rules::{Channel, PriceBook, QuoteItem, Zone};

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const SINCE: &str = "2026-03-01T00:00:00Z";
    const UNTIL: &str = "2026-03-02T00:00:00Z";
    const NOW: &str = "2026-03-02T00:00:00Z";

    fn intent(id: &str, amount: i64) -> PaymentIntent {
        serde_json::from_value(serde_json::json!({
            "id": id, "amount": amount, "currency": "jpy", "status": "succeeded"
        }))
        .unwrap()
    }

    fn refund(id: &str, amount: i64, refund_id: &str) -> Refund {
        serde_json::from_value(serde_json::json!({
            "id": id, "amount": amount, "currency": "jpy", "status": "succeeded",
            "metadata": {"refund_id": refund_id}
        }))
        .unwrap()
    }

    /// A credited purchase of 700 coins in Japan: 1099 yen.
    fn purchase(id: &str, intent: &str) -> PurchaseRecord {
        let priced = PriceBook::embedded()
            .quote(
                "JP".parse().unwrap(),
                Channel::Web,
                QuoteItem::Package("coins_700".parse().unwrap()),
            )
            .unwrap();
        let user = UserId::new("alice").unwrap();
        let quote = Quote::new(priced, &user, at(SINCE));
        let zone = Zone::get("Asia/Tokyo").unwrap();
        let mut purchase =
            PurchaseRecord::pending(PurchaseId::new(id).unwrap(), &quote, &zone, at(SINCE));
        purchase.payment_intent_id = Some(PaymentIntentId::new(intent).unwrap());
        purchase.credited_at = Some(at("2026-03-01T10:01:00Z"));
        purchase
    }

    fn instruction(id: &str, intent: &str, yen: i64, status: RefundStatus) -> RefundRecord {
        let mut record = RefundRecord::pending(
            RefundId::new(id).unwrap(),
            None,
            &PaymentIntentId::new(intent).unwrap(),
            yen,
            "JPY",
            RefundReason::Customer,
            None,
            at("2026-03-01T12:00:00Z"),
        );
        record.status = status;
        record
    }

    fn run(stripe: &[StripePayment], ledger: &LedgerSide) -> Vec<Mismatch> {
        compare(
            stripe,
            ledger,
            at(SINCE),
            at(UNTIL),
            at(NOW),
            SignedDuration::from_mins(15),
        )
    }

    #[test]
    fn a_credited_payment_and_a_sent_refund_agree() {
        let mut sent = instruction("rfd_1", "pi_2", 500, RefundStatus::Succeeded);
        sent.provider_refund_id = Some("re_1".into());
        let stripe = [
            StripePayment {
                intent: intent("pi_1", 1099),
                refunds: vec![],
            },
            StripePayment {
                intent: intent("pi_2", 500),
                refunds: vec![refund("re_1", 500, "rfd_1")],
            },
        ];
        let ledger = LedgerSide {
            purchases: vec![purchase("pur_1", "pi_1")],
            instructions: vec![sent],
        };
        assert_eq!(run(&stripe, &ledger), []);
    }

    #[test]
    fn every_kind_of_mismatch_is_named() {
        let mut phantom = instruction("rfd_3", "pi_3", 500, RefundStatus::Succeeded);
        phantom.provider_refund_id = Some("re_missing".into());
        let stripe = [
            // Paid, neither credited nor returned.
            StripePayment {
                intent: intent("pi_lost", 700),
                refunds: vec![],
            },
            // Credited for another amount; refunded by someone in the dashboard.
            StripePayment {
                intent: intent("pi_1", 999),
                refunds: vec![refund("re_manual", 999, "")],
            },
            StripePayment {
                intent: intent("pi_3", 500),
                refunds: vec![],
            },
        ];
        let ledger = LedgerSide {
            purchases: vec![
                purchase("pur_1", "pi_1"),
                // Credited, but Stripe shows no such payment.
                purchase("pur_2", "pi_ghost"),
            ],
            instructions: vec![
                instruction("rfd_2", "pi_x", 500, RefundStatus::Failed),
                instruction("rfd_4", "pi_y", 500, RefundStatus::Pending),
                phantom,
            ],
        };
        let found: Vec<String> = run(&stripe, &ledger)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "money without coins: pi_lost paid 700 jpy, no purchase credited and no refund",
                "amount differs: payment pi_1 of pur_1: ledger 1099, Stripe 999 jpy",
                "refund without instruction: re_manual of pi_1",
                "coins without money: pur_2 credited with pi_ghost, which Stripe does not show paid",
                "refund not sent: rfd_2 of pi_x: failed after 0 attempts (no error recorded)",
                "refund not sent: rfd_4 of pi_y: pending since 2026-03-01T12:00:00Z",
                "refund not sent: rfd_3 of pi_3: recorded as re_missing but Stripe has no such refund",
            ]
        );
    }

    #[test]
    fn a_pending_refund_inside_the_grace_period_is_not_a_mismatch() {
        let pending = instruction("rfd_1", "pi_1", 500, RefundStatus::Pending);
        let ledger = LedgerSide {
            purchases: vec![],
            instructions: vec![pending],
        };
        let found = compare(
            &[],
            &ledger,
            at(SINCE),
            at(UNTIL),
            at("2026-03-01T12:10:00Z"),
            SignedDuration::from_mins(15),
        );
        assert_eq!(found, []);
    }
}
