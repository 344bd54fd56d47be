//! The conservation audit: scans the whole table and checks that no coin was lost or made.
//!
//! credited = balances − debt + gifted + refunded + reversed; every wallet equals its
//! non-refundable coins plus its open lots, and owes debt only with nothing left; no lot holds
//! more than it was bought with; diamonds equal what the gifts earned by the rules; the history
//! entries add up to the same totals; every refunded purchase has its refund instruction. For
//! tests, the fault simulator and operators.

use std::collections::{HashMap, HashSet};

use coins_ids::{PurchaseId, RefundId, UserId};
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
    /// Coins of every purchase ever credited (refunded and reversed ones included).
    pub credited_coins: u128,
    pub balance_coins: u128,
    pub debt_coins: u128,
    pub gifted_coins: u128,
    pub refunded_coins: u128,
    pub reversed_coins: u128,
    pub diamonds: u128,
    pub refund_instructions: usize,
    pub violations: Vec<String>,
}

impl AuditReport {
    pub fn is_conserved(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The totals the history entries add up to.
#[derive(Default)]
struct HistoryTotals {
    purchased: i128,
    gifted: i128,
    refunded: i128,
    reversed: i128,
    diamonds_earned: u128,
}

impl HistoryTotals {
    fn add(&mut self, kind: TxnKind, coins: i64, id: &str, violations: &mut Vec<String>) {
        let signed = i128::from(coins);
        match kind {
            TxnKind::Purchase => self.purchased += signed,
            TxnKind::Gift => {
                self.gifted -= signed;
                self.diamonds_earned += u128::from(diamonds_for(coins.unsigned_abs()));
            }
            TxnKind::Refund => self.refunded -= signed,
            TxnKind::Reversal => self.reversed -= signed,
            TxnKind::ReversalUndone => self.reversed -= signed,
            TxnKind::WindowClosed if coins != 0 => {
                violations.push(format!("window_closed entry {id} moves coins"))
            }
            TxnKind::WindowClosed => {}
        }
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
        let mut purchases: Vec<PurchaseRecord> = Vec::new();
        let mut instructions: HashSet<RefundId> = HashSet::new();
        let mut history = HistoryTotals::default();

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
                Record::Purchase(purchase) => purchases.push(purchase),
                Record::History(entry) => history.add(
                    entry.kind,
                    entry.coins,
                    entry.id.as_str(),
                    &mut report.violations,
                ),
                Record::Refund(refund) => {
                    instructions.insert(refund.refund_id);
                }
                Record::LotMarker(_)
                | Record::Quote(_)
                | Record::PaymentEvent(_)
                | Record::PaymentIntent(_)
                | Record::Idempotency(_)
                | Record::Creator(_) => {}
            }
        }
        report.refund_instructions = instructions.len();

        let mut statuses: HashMap<&PurchaseId, PurchaseStatus> = HashMap::new();
        for purchase in &purchases {
            statuses.insert(&purchase.purchase_id, purchase.status);
            let coins = u128::from(purchase.total_coins);
            // Coins were credited if the purchase ever was: a payment returned uncredited moved
            // none.
            if purchase.credited_at.is_some() {
                report.credited_coins += coins;
                report.reversed_coins += u128::from(purchase.reversed_coins);
                if purchase.status == PurchaseStatus::Refunded {
                    report.refunded_coins += coins;
                }
            }
            if purchase.status == PurchaseStatus::Refunded
                && !purchase
                    .refund_id
                    .as_ref()
                    .is_some_and(|refund| instructions.contains(refund))
            {
                report.violations.push(format!(
                    "refunded purchase {} has no refund instruction",
                    purchase.purchase_id
                ));
            }
        }
        for (purchase_id, count) in &lots_per_purchase {
            report.open_lots += count;
            if *count > 1 {
                report
                    .violations
                    .push(format!("purchase {purchase_id} has {count} lots"));
            }
            match statuses.get(purchase_id) {
                Some(PurchaseStatus::Credited) => {}
                status => report.violations.push(format!(
                    "open lot for purchase {purchase_id} in status {status:?}"
                )),
            }
        }
        for wallet in &wallets {
            report.balance_coins += u128::from(wallet.balance);
            report.debt_coins += u128::from(wallet.debt);
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
        self.check_totals(&mut report, &history);
        Ok(report)
    }

    fn check_totals(&self, report: &mut AuditReport, history: &HistoryTotals) {
        let accounted = report.balance_coins
            + report.gifted_coins
            + report.refunded_coins
            + report.reversed_coins;
        if report.credited_coins + report.debt_coins != accounted {
            report.violations.push(format!(
                "credited {} != balances {} - debt {} + gifted {} + refunded {} + reversed {}",
                report.credited_coins,
                report.balance_coins,
                report.debt_coins,
                report.gifted_coins,
                report.refunded_coins,
                report.reversed_coins
            ));
        }
        if report.diamonds != history.diamonds_earned {
            report.violations.push(format!(
                "diamonds {} != {} earned by the gifts of {} coins",
                report.diamonds, history.diamonds_earned, report.gifted_coins
            ));
        }
        for (name, from_history, total) in [
            ("purchased", history.purchased, report.credited_coins),
            ("gifted", history.gifted, report.gifted_coins),
            ("refunded", history.refunded, report.refunded_coins),
            ("reversed", history.reversed, report.reversed_coins),
        ] {
            if from_history != total as i128 {
                report
                    .violations
                    .push(format!("history {name} {from_history} != {total}"));
            }
        }
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
