//! The conservation audit: scans the whole table and checks that no coin was lost or made.
//!
//! credited = balances − debt + gifted + refunded + reversed; every wallet equals its
//! non-refundable coins plus what is left of its open lots, and owes debt only with nothing
//! left; the history entries add up to the same totals (gifts whose history entry the stream
//! has not written yet counted from their page or gift entry); every refunded purchase has its
//! refund instruction. On the creator side: every gift is in at most one page of gifts
//! received, the diamonds earned are those of the pages' gifts, a gift entry is marked counted
//! (and so may expire) only once in a page, a gift's history entry exists once counted unless
//! its page is unconfirmed, and each creator's earned = pending +
//! available + in payout + paid out, with their payouts accounting for what is in payout and
//! paid out. For tests, the fault simulator and operators.

use std::collections::{HashMap, HashSet};

use coins_ids::{GiftTxnId, PurchaseId, RefundId, UserId};
use coins_rules::gifts::payout_value;
use jiff::Timestamp;
use serde::Serialize;

use crate::domain::{Lot, Wallet, derive_remaining, wallet_invariant_breaches};
use crate::error::LedgerError;
use crate::ledger::Ledger;
use crate::store::Store;
use crate::table::{
    EarningsRecord, GiftRecord, GiftsPageRecord, PayoutRecord, PayoutStatus, PurchaseRecord,
    PurchaseStatus, Record, Row, TxnKind,
};

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
    /// Gifts the stream has not counted yet.
    pub gifts_pending: usize,
    /// Gifts counted whose sender history entry is not written yet (unconfirmed pages).
    pub gifts_unconfirmed: usize,
    pub diamonds_in_payout: u128,
    pub diamonds_paid_out: u128,
    pub violations: Vec<String>,
}

impl AuditReport {
    pub fn is_conserved(&self) -> bool {
        self.violations.is_empty()
    }
}

/// What the ledger owes at an instant: the coins users hold (and the coins they owe), and the
/// creators' diamonds not paid out yet with what they pay out in US dollars. `coinctl
/// liabilities` prints it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Liabilities {
    pub at: Timestamp,
    pub coins: CoinLiabilities,
    pub diamonds: DiamondLiabilities,
}

#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize)]
pub struct CoinLiabilities {
    /// Every wallet's balance.
    pub outstanding: u128,
    /// Of which in open lots, refundable while untouched and inside their window.
    pub in_open_lots: u128,
    /// Coins owed after reversals.
    pub debt: u128,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DiamondLiabilities {
    pub pending: DiamondsWorth,
    pub available: DiamondsWorth,
    pub in_payout: DiamondsWorth,
    /// Gifts sent whose diamonds the stream has not counted yet.
    pub gifts_not_yet_counted: u64,
    /// All of the above (uncounted gifts priced at their diamonds).
    pub total: DiamondsWorth,
}

/// Diamonds and what they pay out (rounded down to the cent).
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DiamondsWorth {
    pub diamonds: u64,
    pub usd: String,
}

impl DiamondsWorth {
    fn of(diamonds: u64) -> Self {
        DiamondsWorth {
            diamonds,
            usd: payout_value(diamonds).to_string(),
        }
    }
}

/// The totals the history entries add up to.
#[derive(Default)]
struct HistoryTotals {
    purchased: i128,
    gifted: i128,
    refunded: i128,
    reversed: i128,
}

impl HistoryTotals {
    fn add(&mut self, kind: TxnKind, coins: i64, id: &str, violations: &mut Vec<String>) {
        let signed = i128::from(coins);
        match kind {
            TxnKind::Purchase => self.purchased += signed,
            TxnKind::Gift => self.gifted -= signed,
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
        let mut gift_history: HashSet<(UserId, u64)> = HashSet::new();
        let mut gift_entries: Vec<GiftRecord> = Vec::new();
        let mut pages: Vec<GiftsPageRecord> = Vec::new();
        let mut earnings: Vec<EarningsRecord> = Vec::new();
        let mut payouts: Vec<PayoutRecord> = Vec::new();

        for record in items {
            match record {
                Record::Wallet(wallet) => wallets.push(wallet),
                Record::Lot(lot) => {
                    *lots_per_purchase
                        .entry(lot.purchase_id.clone())
                        .or_default() += 1;
                    lots.entry(lot.user_id.clone()).or_default().push(lot);
                }
                Record::Purchase(purchase) => purchases.push(purchase),
                Record::History(entry) => {
                    if entry.kind == TxnKind::Gift {
                        gift_history.insert((entry.user_id.clone(), entry.seq));
                    }
                    history.add(
                        entry.kind,
                        entry.coins,
                        entry.id.as_str(),
                        &mut report.violations,
                    )
                }
                Record::Gift(gift) => gift_entries.push(gift),
                Record::Earnings(record) => earnings.push(record),
                Record::Payout(payout) => payouts.push(payout),
                Record::Refund(refund) => {
                    instructions.insert(refund.refund_id);
                }
                Record::LotMarker(_)
                | Record::Quote(_)
                | Record::PaymentEvent(_)
                | Record::PaymentIntent(_)
                | Record::StoreTransaction(_)
                | Record::Idempotency(_)
                | Record::Creator(_)
                | Record::PayoutAccountChange(_) => {}
                Record::GiftsPage(page) => pages.push(page),
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
        check_gifts(
            &mut report,
            &mut history,
            &gift_entries,
            &pages,
            &gift_history,
            &earnings,
        );
        check_creators(&mut report, &earnings, &payouts);
        for wallet in &wallets {
            report.balance_coins += u128::from(wallet.balance);
            report.debt_coins += u128::from(wallet.debt);
            report.gifted_coins += u128::from(wallet.gifted_total);
            let mut own_lots = lots.remove(&wallet.user_id).unwrap_or_default();
            own_lots.sort_by_key(|lot| lot.key().sk);
            derive_remaining(wallet.lot_spent, &mut own_lots);
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

    /// What the ledger owes at `now` (a full scan, as the audit).
    pub async fn liabilities(&self, now: Timestamp) -> Result<Liabilities, LedgerError> {
        let mut coins = CoinLiabilities::default();
        let mut spent_from_lots: u128 = 0;
        let (mut pending, mut available, mut in_payout) = (0u64, 0u64, 0u64);
        let mut uncounted: HashMap<GiftTxnId, u64> = HashMap::new();
        let mut counted: HashSet<GiftTxnId> = HashSet::new();
        let add = |total: u64, more: u64| total.checked_add(more).ok_or(LedgerError::Overflow);
        for record in self.store().scan_all().await? {
            match record {
                Record::Wallet(wallet) => {
                    coins.outstanding += u128::from(wallet.balance);
                    coins.debt += u128::from(wallet.debt);
                    spent_from_lots += u128::from(wallet.lot_spent);
                }
                Record::Lot(lot) => coins.in_open_lots += u128::from(lot.coins),
                Record::Earnings(earnings) => {
                    pending = add(pending, earnings.pending(now))?;
                    available = add(available, earnings.available(now))?;
                    in_payout = add(in_payout, earnings.in_payout)?;
                }
                Record::Gift(gift) => {
                    uncounted.insert(gift.details.gift_txn_id.clone(), gift.diamonds);
                }
                Record::GiftsPage(page) => {
                    counted.extend(page.gifts.into_iter().map(|gift| gift.gift_txn_id));
                }
                _ => {}
            }
        }
        uncounted.retain(|gift, _| !counted.contains(gift));
        let not_counted = uncounted
            .values()
            .try_fold(0u64, |total, d| add(total, *d))?;
        // What a wallet spent from its lots is counted in it, not in them.
        coins.in_open_lots = coins.in_open_lots.saturating_sub(spent_from_lots);
        let total = [pending, available, in_payout, not_counted]
            .into_iter()
            .try_fold(0u64, add)?;
        Ok(Liabilities {
            at: now,
            coins,
            diamonds: DiamondLiabilities {
                pending: DiamondsWorth::of(pending),
                available: DiamondsWorth::of(available),
                in_payout: DiamondsWorth::of(in_payout),
                gifts_not_yet_counted: uncounted.len() as u64,
                total: DiamondsWorth::of(total),
            },
        })
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

/// The stream's counting: each gift in at most one page, the diamonds earned those of the
/// pages, a counted gift's history entry written unless its page is unconfirmed, and the coins
/// of gifts without a history entry yet added to the history's total from their page or entry.
fn check_gifts(
    report: &mut AuditReport,
    history: &mut HistoryTotals,
    gift_entries: &[GiftRecord],
    pages: &[GiftsPageRecord],
    gift_history: &HashSet<(UserId, u64)>,
    earnings: &[EarningsRecord],
) {
    let unconfirmed: HashSet<_> = earnings
        .iter()
        .flat_map(|record| {
            record
                .unconfirmed
                .iter()
                .flat_map(|count| &count.pages)
                .map(|page| page.key(&record.creator_id))
        })
        .collect();
    let mut counted: HashSet<&GiftTxnId> = HashSet::new();
    let mut page_diamonds: u128 = 0;
    for page in pages {
        let page_unconfirmed = unconfirmed.contains(&page.key());
        for gift in &page.gifts {
            page_diamonds += u128::from(gift.diamonds);
            if !counted.insert(&gift.gift_txn_id) {
                report
                    .violations
                    .push(format!("gift {} counted twice", gift.gift_txn_id));
            }
            if !gift_history.contains(&(gift.sender_id.clone(), gift.seq)) {
                history.gifted += i128::from(gift.coins);
                report.gifts_unconfirmed += 1;
                if !page_unconfirmed {
                    report.violations.push(format!(
                        "gift {} counted without its history entry",
                        gift.gift_txn_id
                    ));
                }
            }
        }
    }
    for gift in gift_entries {
        if counted.contains(&gift.details.gift_txn_id) {
            continue;
        }
        if gift.counted_at.is_some() {
            // Marked counted (so it will expire) without being in any page: the creator
            // would never get it.
            report.violations.push(format!(
                "gift {} marked counted but in no page",
                gift.details.gift_txn_id
            ));
        }
        report.gifts_pending += 1;
        history.gifted += i128::from(gift.coins);
    }
    let earned: u128 = earnings
        .iter()
        .map(|record| u128::from(record.earned))
        .sum();
    if earned != page_diamonds {
        report.violations.push(format!(
            "diamonds earned {earned} != {page_diamonds} of the gifts counted"
        ));
    }
    if gift_history.len() + report.gifts_unconfirmed != counted.len() {
        report.violations.push(format!(
            "{} gift history entries, {} counted gifts of which {} unconfirmed",
            gift_history.len(),
            counted.len(),
            report.gifts_unconfirmed
        ));
    }
}

/// Each creator's earnings against their payouts: in payout = the pending ones, paid out = the
/// paid ones, and never more taken out than earned.
fn check_creators(report: &mut AuditReport, earnings: &[EarningsRecord], payouts: &[PayoutRecord]) {
    for record in earnings {
        report.diamonds += u128::from(record.earned);
        report.diamonds_in_payout += u128::from(record.in_payout);
        report.diamonds_paid_out += u128::from(record.paid_out);
        let sum = |status: PayoutStatus| -> u128 {
            payouts
                .iter()
                .filter(|p| p.creator_id == record.creator_id && p.status == status)
                .map(|p| u128::from(p.diamonds))
                .sum()
        };
        let (pending, paid) = (sum(PayoutStatus::Pending), sum(PayoutStatus::Paid));
        if pending != u128::from(record.in_payout) || paid != u128::from(record.paid_out) {
            report.violations.push(format!(
                "creator {}: in payout {} and paid out {}, payouts pending {pending} and paid {paid}",
                record.creator_id, record.in_payout, record.paid_out
            ));
        }
        let held: u128 = record
            .holds
            .iter()
            .map(|hold| u128::from(hold.diamonds))
            .sum();
        if held + u128::from(record.in_payout) + u128::from(record.paid_out)
            > u128::from(record.earned)
        {
            report.violations.push(format!(
                "creator {}: held {held} + in payout {} + paid out {} > earned {}",
                record.creator_id, record.in_payout, record.paid_out, record.earned
            ));
        }
    }
}
