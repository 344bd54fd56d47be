//! The conservation audit: scans the whole table and checks that no coin was lost or made.
//!
//! purchased (credited) = balances + spent on gifts + refunded; every wallet equals its
//! non-refundable coins plus its open lots; no lot holds more than it was bought with; diamonds
//! equal what the gifts earned by the rules; history entries add up to the same totals. For tests and operators.

use std::collections::HashMap;

use coins_ids::{PurchaseId, UserId};
use coins_rules::gifts::diamonds_for;

use crate::domain::{Lot, Wallet, wallet_invariant_breaches};
use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::store::Store;
use crate::table::{PurchaseRecord, PurchaseStatus, Record, TxnKind};

/// Totals found by the audit and every breach of an invariant.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AuditReport {
    pub items: usize,
    pub wallets: usize,
    pub open_lots: usize,
    /// Coins of every purchase ever credited (refunded ones included).
    pub credited_coins: u128,
    pub balance_coins: u128,
    pub gifted_coins: u128,
    pub refunded_coins: u128,
    pub diamonds: u128,
    pub outbox_refunds: usize,
    pub violations: Vec<String>,
}

impl AuditReport {
    pub fn is_conserved(&self) -> bool {
        self.violations.is_empty()
    }
}

impl<S: Store> Ledger<S> {
    /// Scans the table and checks every conservation invariant.
    pub async fn audit(&self) -> Result<AuditReport, LedgerError> {
        let items = self.store().scan_all().await?;
        let mut report = AuditReport {
            items: items.len(),
            ..AuditReport::default()
        };
        let mut wallets: Vec<Wallet> = Vec::new();
        let mut lots: HashMap<UserId, Vec<Lot>> = HashMap::new();
        let mut lots_per_purchase: HashMap<PurchaseId, usize> = HashMap::new();
        let mut purchases: HashMap<PurchaseId, PurchaseRecord> = HashMap::new();
        let (mut history_purchased, mut history_gifted, mut history_refunded) =
            (0i128, 0i128, 0i128);
        // What the gifts in the histories earned their creators, by the rules.
        let mut diamonds_earned: u128 = 0;

        for record in items {
            match record {
                Record::Diamonds(shard) => report.diamonds += u128::from(shard.diamonds),
                Record::Wallet(wallet) => wallets.push(wallet),
                Record::Lot(lot) => {
                    *lots_per_purchase
                        .entry(lot.purchase_id.clone())
                        .or_default() += 1;
                    lots.entry(lot.user_id.clone()).or_default().push(lot);
                }
                Record::Purchase(purchase) => {
                    purchases.insert(purchase.purchase_id.clone(), purchase);
                }
                Record::History(entry) => {
                    let coins = i128::from(entry.coins);
                    match entry.kind {
                        TxnKind::Purchase => history_purchased += coins,
                        TxnKind::Gift => {
                            history_gifted -= coins;
                            let spent = entry.coins.unsigned_abs();
                            diamonds_earned += u128::from(diamonds_for(spent));
                        }
                        TxnKind::Refund => history_refunded -= coins,
                        TxnKind::WindowClosed if coins != 0 => report
                            .violations
                            .push(format!("window_closed entry {} moves coins", entry.id)),
                        TxnKind::WindowClosed => {}
                    }
                }
                Record::OutboxRefund(_) => report.outbox_refunds += 1,
                Record::LotMarker(_)
                | Record::Quote(_)
                | Record::PaymentEvent(_)
                | Record::Idempotency(_)
                | Record::Creator(_) => {}
            }
        }

        for purchase in purchases.values() {
            match purchase.status {
                PurchaseStatus::Credited => {
                    report.credited_coins += u128::from(purchase.total_coins)
                }
                PurchaseStatus::Refunded => {
                    report.credited_coins += u128::from(purchase.total_coins);
                    report.refunded_coins += u128::from(purchase.total_coins);
                }
                PurchaseStatus::Pending | PurchaseStatus::Failed | PurchaseStatus::Rejected => {}
            }
        }
        for (purchase_id, count) in &lots_per_purchase {
            report.open_lots += count;
            if *count > 1 {
                report
                    .violations
                    .push(format!("purchase {purchase_id} has {count} lots"));
            }
            match purchases.get(purchase_id).map(|p| p.status) {
                Some(PurchaseStatus::Credited) => {}
                status => report.violations.push(format!(
                    "open lot for purchase {purchase_id} in status {status:?}"
                )),
            }
        }
        for wallet in &wallets {
            report.balance_coins += u128::from(wallet.balance);
            report.gifted_coins += u128::from(wallet.gifted_total);
            let own_lots = lots.remove(&wallet.user_id).unwrap_or_default();
            report
                .violations
                .extend(wallet_invariant_breaches(wallet, &own_lots));
        }
        report.wallets = wallets.len();
        for (user, orphans) in lots {
            report
                .violations
                .push(format!("{} lots of {user} without a wallet", orphans.len()));
        }

        let accounted = report.balance_coins + report.gifted_coins + report.refunded_coins;
        if report.credited_coins != accounted {
            report.violations.push(format!(
                "credited {} != balances {} + gifted {} + refunded {}",
                report.credited_coins,
                report.balance_coins,
                report.gifted_coins,
                report.refunded_coins
            ));
        }
        if report.diamonds != diamonds_earned {
            report.violations.push(format!(
                "diamonds {} != {diamonds_earned} earned by the gifts of {} coins",
                report.diamonds, report.gifted_coins
            ));
        }
        let expect = |name: &str, history: i128, total: u128, violations: &mut Vec<String>| {
            if history != total as i128 {
                violations.push(format!("history {name} {history} != {total}"));
            }
        };
        expect(
            "purchased",
            history_purchased,
            report.credited_coins,
            &mut report.violations,
        );
        expect(
            "gifted",
            history_gifted,
            report.gifted_coins,
            &mut report.violations,
        );
        expect(
            "refunded",
            history_refunded,
            report.refunded_coins,
            &mut report.violations,
        );
        let refunded_purchases = purchases
            .values()
            .filter(|p| p.status == PurchaseStatus::Refunded)
            .count();
        if report.outbox_refunds != refunded_purchases {
            report.violations.push(format!(
                "{} refund instructions for {refunded_purchases} refunded purchases",
                report.outbox_refunds
            ));
        }
        Ok(report)
    }

    /// [`Ledger::audit`], failing with every violation if coins are not conserved.
    pub async fn conservation_check(&self) -> Result<AuditReport, LedgerError> {
        let report = self.audit().await?;
        if report.is_conserved() {
            Ok(report)
        } else {
            Err(LedgerError::Corrupt(format!(
                "conservation broken: {}",
                report.violations.join("; ")
            )))
        }
    }
}
