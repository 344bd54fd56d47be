//! The invariants: checked over the whole table after every step, and at the end of a run.
//!
//! The ledger's own audit (`Ledger::audit`: coins credited = balances − debt + gifted +
//! refunded + reversed, wallets = their lots, the history adding up, each gift in at most one
//! page, diamonds earned = pages, each creator's earned ≥ held + in payout + paid out, in
//! payout and paid out = their payouts), and what only the simulator knows: what the clients
//! were told, what the provider did. (One effect per idempotency key is checked on the change
//! feed, as each new item appears: `Sim::feed`.)

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use coins_ids::UserId;
use coins_ledger::domain::{Lot, Wallet};
use coins_ledger::store::{Key, Query, Store, StoreError, Transaction};
use coins_ledger::table::{
    EarningsRecord, GiftRecord, PayoutRecord, PayoutStatus, PurchaseRecord, PurchaseStatus, Record,
    RefundRecord, RefundStatus,
};
use coins_ledger::{AuditReport, Ledger};

use crate::sim::Sim;

/// The table's rows the checks read, by type.
#[derive(Default)]
struct Table<'r> {
    wallets: Vec<&'r Wallet>,
    lots: Vec<&'r Lot>,
    purchases: Vec<&'r PurchaseRecord>,
    gifts: Vec<&'r GiftRecord>,
    instructions: Vec<&'r RefundRecord>,
    payouts: Vec<&'r PayoutRecord>,
    earnings: Vec<&'r EarningsRecord>,
}

impl<'r> Table<'r> {
    fn of(records: &'r [Record]) -> Table<'r> {
        let mut table = Table::default();
        for record in records {
            match record {
                Record::Wallet(wallet) => table.wallets.push(wallet),
                Record::Lot(lot) => table.lots.push(lot),
                Record::Purchase(purchase) => table.purchases.push(purchase),
                Record::Gift(gift) => table.gifts.push(gift),
                Record::Refund(instruction) => table.instructions.push(instruction),
                Record::Payout(payout) => table.payouts.push(payout),
                Record::Earnings(earnings) => table.earnings.push(earnings),
                _ => {}
            }
        }
        table
    }
}

/// The table as scanned once for a step: the audit reads the same copy through this store,
/// which only hands it over (copying the whole table is most of what a check costs).
#[derive(Clone)]
struct Scanned(Arc<Mutex<Option<Vec<Record>>>>);

impl Scanned {
    fn only_scans() -> StoreError {
        StoreError::Fatal("a scanned copy of the table only scans".into())
    }
}

impl Store for Scanned {
    async fn get(&self, _: &Key) -> Result<Option<Record>, StoreError> {
        Err(Scanned::only_scans())
    }

    async fn query(&self, _: &Query) -> Result<Vec<Record>, StoreError> {
        Err(Scanned::only_scans())
    }

    async fn query_keys(&self, _: &Query) -> Result<Vec<Key>, StoreError> {
        Err(Scanned::only_scans())
    }

    async fn commit(&self, _: Transaction) -> Result<(), StoreError> {
        Err(Scanned::only_scans())
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        let mut records = self.0.lock().expect("one thread per seed");
        records.take().ok_or_else(Scanned::only_scans)
    }
}

/// A user's coins as their purchases and gift entries account for them.
#[derive(Default, PartialEq, Eq, Debug)]
struct Accounted {
    purchased: u64,
    gifted: u64,
    refunded: u64,
    reversed: u64,
}

/// Fails with `message` unless `holds`.
pub fn ensure(holds: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if holds { Ok(()) } else { Err(message()) }
}

impl Sim {
    /// Every invariant that holds at any instant.
    pub fn check(&mut self) -> Result<(), String> {
        let records = self.scan();
        let table = Table::of(&records);
        self.gifts_expire_once_counted(&records)?;
        self.store_checks(&records)?;
        self.accounts(&table)?;
        self.told_effects_kept(&table)?;
        self.money_out_once(&table)?;
        self.diamonds_never_above_gifts(&table)?;
        let scanned = Scanned(Arc::new(Mutex::new(Some(records))));
        self.audit(Ledger::new(scanned)).map(|_| ())
    }

    fn scan(&self) -> Vec<Record> {
        self.block_on(self.store.scan_all())
            .expect("memory reads do not fail")
    }

    /// The ledger's own audit, every violation a failure.
    fn audit<S: Store>(&self, ledger: Ledger<S>) -> Result<AuditReport, String> {
        let report = self
            .block_on(ledger.audit())
            .map_err(|error| format!("the audit failed: {error}"))?;
        self.checked("coins and diamonds conserved (Ledger::audit)");
        ensure(report.is_conserved(), || {
            format!("the audit found: {}", report.violations.join("; "))
        })?;
        Ok(report)
    }

    /// Each wallet's totals are those of its own purchases and gift entries (the audit sums
    /// the table: coins moved from one user to another would pass it), and a user owes only
    /// what reversals took.
    fn accounts(&self, table: &Table) -> Result<(), String> {
        let mut accounted: BTreeMap<&UserId, Accounted> = BTreeMap::new();
        for purchase in &table.purchases {
            let account = accounted.entry(&purchase.user_id).or_default();
            account.reversed += purchase.reversed_coins;
            if purchase.credited_at.is_some() {
                account.purchased += purchase.total_coins;
                if purchase.status == PurchaseStatus::Refunded {
                    account.refunded += purchase.total_coins;
                }
            }
        }
        for gift in &table.gifts {
            accounted.entry(&gift.sender_id).or_default().gifted += gift.coins;
        }
        self.checked("each wallet's totals are its own purchases' and gifts'");
        self.checked("no debt beyond what reversals took");
        for wallet in &table.wallets {
            let kept = Accounted {
                purchased: wallet.purchased_total,
                gifted: wallet.gifted_total,
                refunded: wallet.refunded_total,
                reversed: wallet.reversed_total,
            };
            let account = accounted.remove(&wallet.user_id).unwrap_or_default();
            ensure(kept == account, || {
                format!(
                    "wallet of {} keeps {kept:?}, its purchases and gifts say {account:?}",
                    wallet.user_id
                )
            })?;
            ensure(wallet.debt <= wallet.reversed_total, || {
                format!(
                    "{} owes {} coins with {} reversed",
                    wallet.user_id, wallet.debt, wallet.reversed_total
                )
            })?;
        }
        for (user, account) in accounted {
            ensure(account == Accounted::default(), || {
                format!("{user} has no wallet, yet {account:?}")
            })?;
        }
        Ok(())
    }

    /// What a client was told happened stays in the table.
    fn told_effects_kept(&self, table: &Table) -> Result<(), String> {
        self.checked("effects told to clients are in the table");
        let gifts: BTreeMap<&str, &GiftRecord> = table
            .gifts
            .iter()
            .copied()
            .map(|gift| (gift.details.gift_txn_id.as_str(), gift))
            .collect();
        for (id, (sender, coins)) in &self.told.gifts {
            ensure(
                gifts
                    .get(id.as_str())
                    .is_some_and(|gift| gift.sender_id == *sender && gift.coins == *coins),
                || format!("gift {id} of {sender} ({coins} coins) was told sent, is not there"),
            )?;
        }
        let purchases: BTreeMap<&coins_ids::PurchaseId, &PurchaseRecord> = table
            .purchases
            .iter()
            .copied()
            .map(|purchase| (&purchase.purchase_id, purchase))
            .collect();
        for &name in &self.told.credited {
            let credited = purchases
                .get(&self.purchases[name].id)
                .is_some_and(|purchase| purchase.credited_at.is_some());
            ensure(credited, || format!("p{name} was credited, is not"))?;
        }
        for (&name, refund) in &self.told.refunds {
            let refunded = purchases.get(&self.purchases[name].id).is_some_and(|p| {
                p.status == PurchaseStatus::Refunded && p.refund_id.as_ref() == Some(refund)
            });
            ensure(refunded, || {
                format!("p{name} was refunded as {refund}, is not")
            })?;
        }
        let payouts: BTreeMap<&str, &PayoutRecord> = table
            .payouts
            .iter()
            .copied()
            .map(|payout| (payout.payout_id.as_str(), payout))
            .collect();
        for (id, (creator, diamonds)) in &self.told.payouts {
            ensure(
                payouts.get(id.as_str()).is_some_and(|payout| {
                    payout.creator_id == *creator && payout.diamonds == *diamonds
                }),
                || format!("payout {id} of {creator} was told made, is not there"),
            )?;
        }
        Ok(())
    }

    /// Money leaves once: at most one refund instruction per payment, never above what the
    /// provider charged; at most one provider refund per instruction and one transfer per
    /// payout, each matching it; a succeeded instruction and a paid payout have theirs.
    fn money_out_once(&self, table: &Table) -> Result<(), String> {
        self.checked("one refund instruction per payment, within what it charged");
        self.checked("one provider refund per refund instruction");
        self.checked("one provider transfer per payout");
        let provider = self.provider.lock().expect("one thread per seed");
        let mut per_payment: BTreeMap<&str, Vec<&RefundRecord>> = BTreeMap::new();
        for instruction in &table.instructions {
            per_payment
                .entry(instruction.payment_intent_id.as_str())
                .or_default()
                .push(instruction);
        }
        for (payment, instructions) in &per_payment {
            ensure(instructions.len() == 1, || {
                format!(
                    "payment {payment} has {} refund instructions",
                    instructions.len()
                )
            })?;
            let charged = provider.charged.get(*payment).copied().unwrap_or(0);
            ensure(instructions[0].amount_minor <= charged, || {
                format!(
                    "payment {payment} charged {charged}, instructed to refund {}",
                    instructions[0].amount_minor
                )
            })?;
        }
        let instructions: BTreeMap<&str, &RefundRecord> = table
            .instructions
            .iter()
            .copied()
            .map(|instruction| (instruction.refund_id.as_str(), instruction))
            .collect();
        let mut refunds_of: BTreeMap<&str, usize> = BTreeMap::new();
        for refund in &provider.refunds {
            *refunds_of.entry(&refund.instruction).or_default() += 1;
            let matches = instructions
                .get(refund.instruction.as_str())
                .is_some_and(|i| {
                    i.amount_minor == refund.amount_minor
                        && i.payment_intent_id.as_str() == refund.payment
                });
            ensure(matches, || {
                format!(
                    "the provider refunded {} for no matching instruction",
                    refund.instruction
                )
            })?;
        }
        for (instruction, record) in &instructions {
            let made = refunds_of.get(instruction).copied().unwrap_or(0);
            ensure(made <= 1, || {
                format!("the provider made {made} refunds for instruction {instruction}")
            })?;
            ensure(
                record.status != RefundStatus::Succeeded || made == 1,
                || format!("instruction {instruction} succeeded without a provider refund"),
            )?;
        }
        let payouts: BTreeMap<&str, &PayoutRecord> = table
            .payouts
            .iter()
            .copied()
            .map(|payout| (payout.payout_id.as_str(), payout))
            .collect();
        let mut transfers_of: BTreeMap<&str, usize> = BTreeMap::new();
        for transfer in &provider.transfers {
            *transfers_of.entry(&transfer.payout).or_default() += 1;
            let matches = payouts
                .get(transfer.payout.as_str())
                .is_some_and(|payout| payout.amount.minor_units() == Some(transfer.cents));
            ensure(matches, || {
                format!(
                    "the provider transferred for {}, no matching payout",
                    transfer.payout
                )
            })?;
        }
        for (id, payout) in &payouts {
            let made = transfers_of.get(id).copied().unwrap_or(0);
            ensure(made <= 1, || {
                format!("the provider made {made} transfers for payout {id}")
            })?;
            ensure(payout.status != PayoutStatus::Paid || made == 1, || {
                format!("payout {id} paid without a transfer")
            })?;
        }
        Ok(())
    }

    /// A creator never earns more diamonds than the gifts sent to them hold.
    fn diamonds_never_above_gifts(&self, table: &Table) -> Result<(), String> {
        self.checked("diamonds earned never above the gifts sent");
        let gifted = self.gifted_diamonds(table);
        for earnings in &table.earnings {
            let sent = gifted.get(&earnings.creator_id).copied().unwrap_or(0);
            ensure(earnings.earned <= sent, || {
                format!(
                    "{} earned {} diamonds of gifts holding {sent}",
                    earnings.creator_id, earnings.earned
                )
            })?;
        }
        Ok(())
    }

    fn gifted_diamonds<'r>(&self, table: &Table<'r>) -> BTreeMap<&'r UserId, u64> {
        let mut gifted: BTreeMap<&UserId, u64> = BTreeMap::new();
        for gift in &table.gifts {
            *gifted.entry(&gift.details.recipient_id).or_default() += gift.diamonds;
        }
        gifted
    }

    /// Once everything was delivered: every gift counted exactly once, every refund and payout
    /// finished with the provider's side matching, every lot past its window closed by its
    /// marker's removal, and the liabilities report agreeing with the audit.
    pub fn final_check(&mut self) -> Result<(), String> {
        let report = self.audit(self.ledger())?;
        self.checked("every gift counted exactly once, after the drain");
        ensure(
            report.gifts_pending == 0 && report.gifts_unconfirmed == 0,
            || {
                format!(
                    "after the drain, {} gifts are not counted and {} not confirmed",
                    report.gifts_pending, report.gifts_unconfirmed
                )
            },
        )?;
        let records = self.scan();
        self.nothing_outstanding(&records)?;
        self.store_final(&records)?;
        let table = Table::of(&records);
        let gifted = self.gifted_diamonds(&table);
        for earnings in &table.earnings {
            let sent = gifted.get(&earnings.creator_id).copied().unwrap_or(0);
            ensure(earnings.earned == sent, || {
                format!(
                    "{} earned {} diamonds of gifts holding {sent}",
                    earnings.creator_id, earnings.earned
                )
            })?;
            ensure(earnings.in_payout == 0, || {
                format!(
                    "{} has {} diamonds in payout after the drain",
                    earnings.creator_id, earnings.in_payout
                )
            })?;
        }
        self.finished_with_the_provider(&table)?;
        self.checked("no lot open past its window once its marker's removal is delivered");
        for lot in &table.lots {
            ensure(lot.refundable_until >= self.now, || {
                format!(
                    "the lot of {} closing {} is open at {}",
                    lot.purchase_id, lot.refundable_until, self.now
                )
            })?;
        }
        self.sweep_now()?;
        self.liabilities_agree()
    }

    /// Every instruction and payout finished, the provider agreeing: one refund for a succeeded
    /// instruction, one transfer for a paid payout, none for a failed one. A send with no
    /// answer leaves the item pending, so the provider's word alone ends it: a failed one with
    /// a refund or transfer made (support refunding again, diamonds back to be paid twice)
    /// breaks the invariant like any other mismatch.
    fn finished_with_the_provider(&self, table: &Table) -> Result<(), String> {
        self.checked("every refund and payout finished, the provider agreeing");
        let provider = self.provider.lock().expect("one thread per seed");
        for instruction in &table.instructions {
            let id = instruction.refund_id.as_str();
            let made = provider
                .refunds
                .iter()
                .filter(|refund| refund.instruction == id)
                .count();
            match (instruction.status, made) {
                (RefundStatus::Succeeded, 1) | (RefundStatus::Failed, 0) => {}
                (status, made) => {
                    return Err(format!(
                        "instruction {id} ended {status:?} with {made} provider refunds"
                    ));
                }
            }
        }
        for payout in &table.payouts {
            let id = payout.payout_id.as_str();
            let made = provider
                .transfers
                .iter()
                .filter(|transfer| transfer.payout == id)
                .count();
            match (payout.status, made) {
                (PayoutStatus::Paid, 1) | (PayoutStatus::Failed, 0) => {}
                (status, made) => {
                    return Err(format!(
                        "payout {id} ({} diamonds) ended {status:?} with {made} transfers",
                        payout.diamonds
                    ));
                }
            }
        }
        Ok(())
    }

    /// `Ledger::liabilities` owes what the audit counts.
    fn liabilities_agree(&mut self) -> Result<(), String> {
        self.checked("the liabilities report agrees with the audit");
        let ledger = self.ledger();
        let report = self.audit(ledger.clone())?;
        let owed = self
            .block_on(ledger.liabilities(self.now))
            .map_err(|error| format!("the liabilities failed: {error}"))?;
        let unpaid = report.diamonds - report.diamonds_paid_out;
        ensure(
            owed.coins.outstanding == report.balance_coins
                && owed.coins.debt == report.debt_coins
                && u128::from(owed.diamonds.total.diamonds) == unpaid,
            || {
                format!(
                    "liabilities {owed:?} against balances {}, debt {}, diamonds unpaid {unpaid}",
                    report.balance_coins, report.debt_coins
                )
            },
        )
    }
}
