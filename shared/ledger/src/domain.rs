//! The pure core of the ledger: wallets and lots as plain values, FIFO allocation and the
//! wallet transitions, with no I/O and no keys.
//!
//! Every transition takes the wallet as read and returns the wallet to write, one version
//! higher, with checked arithmetic. The [`crate::Ledger`] turns these into conditional writes
//! of the rows [`crate::table`] lays out.
//!
//! Lots are spent oldest first, so what is left of each is not stored on the lot: the wallet
//! counts the coins spent from its open lots (`lot_spent`) and each lot's remaining coins
//! follow from it ([`derive_remaining`]). Spending then writes the wallet alone, however many
//! lots it reaches into; a lot item is written when it is credited, closed, refunded or
//! reversed.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use coins_ids::{PurchaseId, UserId};
use coins_rules::Zone;
use coins_rules::limits::DailyLimit;
use coins_rules::reversals::{counted_after, restricts, take_back};

use crate::error::LedgerError;

/// A user's coins: balances, debt, the daily limit and the version every change bumps.
///
/// `balance = non_refundable + Σ open lots' remaining`, `balance − debt = purchased_total −
/// gifted_total − refunded_total − reversed_total`, and debt only while the balance is 0,
/// always; the audit checks all three.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Wallet {
    pub user_id: UserId,
    /// The zone the wallet was opened in: its local days (the daily limit's) are counted there,
    /// whatever zone a later token names.
    pub zone: Zone,
    /// Bumped by every change; the optimistic-concurrency guard of the wallet and its lots.
    pub version: u64,
    pub balance: u64,
    /// Coins no longer refundable (from closed lots), spent before any lot.
    pub non_refundable: u64,
    /// Coins spent from the open lots, oldest lot first: what is left of each lot follows.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lot_spent: u64,
    pub purchased_total: u64,
    pub gifted_total: u64,
    pub refunded_total: u64,
    /// Coins of purchases the provider took back (disputes, store refunds), net of undos.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reversed_total: u64,
    /// Coins owed after a reversal found them spent: blocks gifting, repaid by the next purchase.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub debt: u64,
    /// When the reversals still counted towards a restriction happened (the last 90 days).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reversals: Vec<Timestamp>,
    /// No quotes or purchases until an admin lifts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restricted: bool,
    #[serde(default)]
    pub daily_limit: DailyLimit,
    /// The sender's local day `spent_today` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_day: Option<Date>,
    #[serde(default)]
    pub spent_today: u64,
    pub updated_at: Timestamp,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl Wallet {
    /// The wallet of a user who has none yet (version 0: not stored), opened in `zone`.
    pub fn empty(user: &UserId, zone: &Zone, now: Timestamp) -> Self {
        Wallet {
            user_id: user.clone(),
            zone: zone.clone(),
            version: 0,
            balance: 0,
            non_refundable: 0,
            lot_spent: 0,
            purchased_total: 0,
            gifted_total: 0,
            refunded_total: 0,
            reversed_total: 0,
            debt: 0,
            reversals: Vec::new(),
            restricted: false,
            daily_limit: DailyLimit::default(),
            spent_day: None,
            spent_today: 0,
            updated_at: now,
        }
    }

    /// Coins spent on gifts on `day` (0 if the counter belongs to another day).
    pub fn spent_on(&self, day: Date) -> u64 {
        if self.spent_day == Some(day) {
            self.spent_today
        } else {
            0
        }
    }
}

/// The coins of one credited purchase while its refund window is open.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Lot {
    pub user_id: UserId,
    pub purchase_id: PurchaseId,
    pub coins: u64,
    /// What is left of it: derived from the wallet's `lot_spent` when read, never stored.
    #[serde(skip)]
    pub remaining: u64,
    pub purchased_at: Timestamp,
    pub refundable_until: Timestamp,
    /// The wallet version that credited it: lots are kept, and spent, in this order.
    pub credited_seq: u64,
}

impl Lot {
    pub fn new(
        user: &UserId,
        purchase: &PurchaseId,
        coins: u64,
        purchased_at: Timestamp,
        refundable_until: Timestamp,
    ) -> Self {
        Lot {
            user_id: user.clone(),
            purchase_id: purchase.clone(),
            coins,
            remaining: coins,
            purchased_at,
            refundable_until,
            credited_seq: 0,
        }
    }

    pub fn untouched(&self) -> bool {
        self.remaining == self.coins
    }
}

/// Fills in each open lot's remaining coins: `lot_spent` coins taken oldest lot first.
pub fn derive_remaining(lot_spent: u64, lots_oldest_first: &mut [Lot]) {
    let mut spent = lot_spent;
    for lot in lots_oldest_first {
        let taken = spent.min(lot.coins);
        lot.remaining = lot.coins - taken;
        spent -= taken;
    }
}

/// How a debit is spread: the non-refundable balance first, then open lots oldest first.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Allocation {
    pub from_non_refundable: u64,
    /// `(index into the lots given, coins taken)`, oldest first.
    pub from_lots: Vec<(usize, u64)>,
}

/// Not enough coins for a debit.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Shortfall {
    pub available: u64,
}

/// Spends `coins` oldest first. Spending non-refundable coins first keeps lots untouched (and
/// so refundable) as long as possible; among lots, the oldest closes soonest anyway.
pub fn allocate_fifo(
    non_refundable: u64,
    lots_remaining_oldest_first: &[u64],
    coins: u64,
) -> Result<Allocation, Shortfall> {
    let available: u128 = u128::from(non_refundable)
        + lots_remaining_oldest_first
            .iter()
            .map(|&r| u128::from(r))
            .sum::<u128>();
    if available < u128::from(coins) {
        return Err(Shortfall {
            available: u64::try_from(available).unwrap_or(u64::MAX),
        });
    }
    let from_non_refundable = non_refundable.min(coins);
    let mut left = coins - from_non_refundable;
    let mut from_lots = Vec::new();
    for (index, &remaining) in lots_remaining_oldest_first.iter().enumerate() {
        if left == 0 {
            break;
        }
        let take = remaining.min(left);
        if take > 0 {
            from_lots.push((index, take));
            left -= take;
        }
    }
    debug_assert_eq!(left, 0, "available covered the debit");
    Ok(Allocation {
        from_non_refundable,
        from_lots,
    })
}

/// The wallet one version on, stamped `now`.
fn next_version(wallet: &Wallet, now: Timestamp) -> Result<Wallet, LedgerError> {
    let mut next = wallet.clone();
    next.version = wallet.version.checked_add(1).ok_or(LedgerError::Overflow)?;
    next.updated_at = now;
    Ok(next)
}

fn add(a: u64, b: u64) -> Result<u64, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

/// Subtraction that must not go below zero: a negative result would be a broken invariant.
fn sub(a: u64, b: u64) -> Result<u64, LedgerError> {
    a.checked_sub(b)
        .ok_or_else(|| LedgerError::Corrupt(format!("coin underflow: {a} - {b}")))
}

/// A purchase's coins arrive as one lot, repaying any debt first: the lot keeps what is left
/// (none when the debt took it all), and a lot that repaid debt is touched, so not refundable.
pub fn credit(wallet: &Wallet, mut lot: Lot, now: Timestamp) -> Result<(Wallet, Lot), LedgerError> {
    let repaid = wallet.debt.min(lot.coins);
    let mut next = next_version(wallet, now)?;
    lot.credited_seq = next.version;
    next.debt = sub(wallet.debt, repaid)?;
    lot.remaining = sub(lot.coins, repaid)?;
    // In debt, the balance is 0: every older lot is spent, so counting the repaid coins as
    // spent takes them from this lot. A lot the debt took whole is not kept at all.
    if lot.remaining > 0 {
        next.lot_spent = add(wallet.lot_spent, repaid)?;
    }
    next.balance = add(wallet.balance, lot.remaining)?;
    next.purchased_total = add(wallet.purchased_total, lot.coins)?;
    Ok((next, lot))
}

/// Debits a gift of `coins` sent on the sender's local `day`, enforcing balance and daily limit:
/// the wallet to write (the lots it spends from are counted in it, not written).
pub fn debit_gift(
    wallet: &Wallet,
    lots_oldest_first: &[Lot],
    coins: u64,
    day: Date,
    now: Timestamp,
) -> Result<Wallet, LedgerError> {
    if wallet.debt > 0 {
        return Err(LedgerError::CoinDebt { debt: wallet.debt });
    }
    let remaining: Vec<u64> = lots_oldest_first.iter().map(|lot| lot.remaining).collect();
    let allocation = allocate_fifo(wallet.non_refundable, &remaining, coins).map_err(
        |Shortfall { available }| LedgerError::InsufficientCoins {
            balance: available,
            requested: coins,
        },
    )?;
    let limit = wallet.daily_limit.settled(now);
    let spent_today = wallet.spent_on(day);
    limit.check_spend(now, spent_today, coins)?;

    let mut next = next_version(wallet, now)?;
    next.daily_limit = limit;
    next.balance = sub(wallet.balance, coins)?;
    next.non_refundable = sub(wallet.non_refundable, allocation.from_non_refundable)?;
    next.gifted_total = add(wallet.gifted_total, coins)?;
    next.spent_day = Some(day);
    next.spent_today = add(spent_today, coins)?;
    next.lot_spent = add(wallet.lot_spent, from_lots(&allocation))?;
    Ok(next)
}

/// The coins an allocation takes from lots.
fn from_lots(allocation: &Allocation) -> u64 {
    allocation.from_lots.iter().map(|&(_, coins)| coins).sum()
}

/// A provider took a purchase's money back: the wallet after taking its coins back, and what
/// becomes of the purchase's own open lot (if it has one).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReversalDebit {
    pub wallet: Wallet,
    pub own_lot: Option<OwnLot>,
}

/// The reversed purchase's own lot after the reversal.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum OwnLot {
    /// Nothing left in it: deleted.
    Emptied(Lot),
    /// Part of it taken back (a share of a multi-unit purchase): it holds fewer coins.
    Shrunk(Lot),
}

/// Takes `coins` of `purchase` back by the rules ([`take_back`]): from the purchase's own open
/// lot, then the non-refundable balance, then the other lots oldest first; the rest becomes debt.
/// The reversal counts towards a restriction.
pub fn reverse(
    wallet: &Wallet,
    lots_oldest_first: &[Lot],
    purchase: &PurchaseId,
    coins: u64,
    now: Timestamp,
) -> Result<ReversalDebit, LedgerError> {
    let own = lots_oldest_first
        .iter()
        .position(|lot| lot.purchase_id == *purchase);
    let own_remaining = own.map_or(0, |index| lots_oldest_first[index].remaining);
    let takeback = take_back(coins, own_remaining, sub(wallet.balance, own_remaining)?);
    let mut next = next_version(wallet, now)?;
    // The own lot gives what the rules take from it out of turn: it shrinks by that much (its
    // spent part stays counted in `lot_spent`), or, emptied, leaves the lots with its spent part.
    // One already spent to its last coin (kept open until its window ends) leaves too: left
    // beside its reversed purchase, its closure would find the purchase no longer credited.
    let own_lot = match own {
        Some(index) if takeback.from_own_lot > 0 || own_remaining == 0 => {
            let mut lot = lots_oldest_first[index].clone();
            lot.remaining = sub(lot.remaining, takeback.from_own_lot)?;
            if lot.remaining == 0 {
                next.lot_spent = sub(wallet.lot_spent, sub(lot.coins, own_remaining)?)?;
                Some(OwnLot::Emptied(lot))
            } else {
                lot.coins = sub(lot.coins, takeback.from_own_lot)?;
                Some(OwnLot::Shrunk(lot))
            }
        }
        _ => None,
    };
    // The rest of the balance is spent as a gift would spend it, skipping the own lot (taken
    // whole by then whenever the balance is reached).
    let others: Vec<u64> = lots_oldest_first
        .iter()
        .enumerate()
        .map(|(index, lot)| if Some(index) == own { 0 } else { lot.remaining })
        .collect();
    let allocation = allocate_fifo(wallet.non_refundable, &others, takeback.from_balance)
        .map_err(|_| LedgerError::Corrupt(format!("wallet {} balance", wallet.user_id)))?;
    next.lot_spent = add(next.lot_spent, from_lots(&allocation))?;
    next.balance = sub(
        wallet.balance,
        takeback.from_own_lot + takeback.from_balance,
    )?;
    next.non_refundable = sub(wallet.non_refundable, allocation.from_non_refundable)?;
    next.debt = add(wallet.debt, takeback.debt)?;
    next.reversed_total = add(wallet.reversed_total, coins)?;
    next.reversals = counted_after(&wallet.reversals, now);
    next.restricted = wallet.restricted || restricts(&next.reversals);
    Ok(ReversalDebit {
        wallet: next,
        own_lot,
    })
}

/// A reversal was undone (a dispute won, a store refund reversed): the coins come back,
/// repaying debt first, the rest as non-refundable coins.
pub fn undo_reversal(wallet: &Wallet, coins: u64, now: Timestamp) -> Result<Wallet, LedgerError> {
    let repaid = wallet.debt.min(coins);
    let mut next = next_version(wallet, now)?;
    next.reversed_total = sub(wallet.reversed_total, coins)?;
    next.debt = sub(wallet.debt, repaid)?;
    next.non_refundable = add(wallet.non_refundable, coins - repaid)?;
    next.balance = add(wallet.balance, coins - repaid)?;
    Ok(next)
}

/// A dispute opened before the payment's own event credited the purchase: no coin moves (none
/// were credited, and none will be), but the reversal counts towards a restriction.
pub fn reverse_uncredited(wallet: &Wallet, now: Timestamp) -> Result<Wallet, LedgerError> {
    let mut next = next_version(wallet, now)?;
    next.reversals = counted_after(&wallet.reversals, now);
    next.restricted = wallet.restricted || restricts(&next.reversals);
    Ok(next)
}

/// The reversal of a purchase never credited is undone (a dispute opened before the payment's
/// event, then won): the purchase's coins are credited now, debt repaid first, the rest as
/// non-refundable coins (its refund window went with the dispute).
pub fn credit_after_reversal(
    wallet: &Wallet,
    coins: u64,
    now: Timestamp,
) -> Result<Wallet, LedgerError> {
    let repaid = wallet.debt.min(coins);
    let mut next = next_version(wallet, now)?;
    next.debt = sub(wallet.debt, repaid)?;
    next.purchased_total = add(wallet.purchased_total, coins)?;
    next.non_refundable = add(wallet.non_refundable, coins - repaid)?;
    next.balance = add(wallet.balance, coins - repaid)?;
    Ok(next)
}

/// An admin lifts (or sets) the restriction.
pub fn set_restricted(
    wallet: &Wallet,
    restricted: bool,
    now: Timestamp,
) -> Result<Wallet, LedgerError> {
    let mut next = next_version(wallet, now)?;
    next.restricted = restricted;
    Ok(next)
}

/// An untouched open lot is refunded: its coins leave the wallet.
pub fn refund_open_lot(wallet: &Wallet, lot: &Lot, now: Timestamp) -> Result<Wallet, LedgerError> {
    let mut next = next_version(wallet, now)?;
    next.balance = sub(wallet.balance, lot.coins)?;
    next.refunded_total = add(wallet.refunded_total, lot.coins)?;
    Ok(next)
}

/// An admin refund after the lot closed untouched: its coins are taken back out of the
/// non-refundable balance they joined. Refused if that balance no longer covers them.
pub fn refund_closed_lot(
    wallet: &Wallet,
    coins: u64,
    now: Timestamp,
) -> Result<Wallet, LedgerError> {
    if wallet.non_refundable < coins {
        return Err(LedgerError::CoinsAlreadySpent);
    }
    let mut next = next_version(wallet, now)?;
    next.non_refundable = sub(wallet.non_refundable, coins)?;
    next.balance = sub(wallet.balance, coins)?;
    next.refunded_total = add(wallet.refunded_total, coins)?;
    Ok(next)
}

/// The user asks for a daily gifting limit (`None`: no limit); the rules decide when it applies.
pub fn set_daily_limit(
    wallet: &Wallet,
    requested: Option<u64>,
    now: Timestamp,
) -> Result<Wallet, LedgerError> {
    let mut next = next_version(wallet, now)?;
    next.daily_limit = wallet.daily_limit.request(requested, now);
    Ok(next)
}

/// A lot's window ended: its remaining coins join the non-refundable balance and its spent
/// part leaves `lot_spent` with it.
pub fn close_lot(wallet: &Wallet, lot: &Lot, now: Timestamp) -> Result<Wallet, LedgerError> {
    let mut next = next_version(wallet, now)?;
    next.non_refundable = add(wallet.non_refundable, lot.remaining)?;
    next.lot_spent = sub(wallet.lot_spent, sub(lot.coins, lot.remaining)?)?;
    Ok(next)
}

/// The wallet's own invariants; the audit reports any breach.
pub fn wallet_invariant_breaches(wallet: &Wallet, lots: &[Lot]) -> Vec<String> {
    let mut breaches = Vec::new();
    let in_lots: u128 = lots.iter().map(|lot| u128::from(lot.remaining)).sum();
    let lot_coins: u128 = lots.iter().map(|lot| u128::from(lot.coins)).sum();
    if u128::from(wallet.lot_spent) > lot_coins {
        breaches.push(format!(
            "wallet {}: {} coins spent from lots holding {}",
            wallet.user_id, wallet.lot_spent, lot_coins
        ));
    }
    if u128::from(wallet.balance) != u128::from(wallet.non_refundable) + in_lots {
        breaches.push(format!(
            "wallet {}: balance {} != non-refundable {} + lots {}",
            wallet.user_id, wallet.balance, wallet.non_refundable, in_lots
        ));
    }
    let net = i128::from(wallet.purchased_total)
        - i128::from(wallet.gifted_total)
        - i128::from(wallet.refunded_total)
        - i128::from(wallet.reversed_total);
    if net != i128::from(wallet.balance) - i128::from(wallet.debt) {
        breaches.push(format!(
            "wallet {}: purchased {} - gifted {} - refunded {} - reversed {} != balance {} - debt {}",
            wallet.user_id,
            wallet.purchased_total,
            wallet.gifted_total,
            wallet.refunded_total,
            wallet.reversed_total,
            wallet.balance,
            wallet.debt
        ));
    }
    if wallet.debt > 0 && wallet.balance > 0 {
        breaches.push(format!(
            "wallet {}: debt {} beside a balance of {}",
            wallet.user_id, wallet.debt, wallet.balance
        ));
    }
    for lot in lots {
        if lot.remaining > lot.coins {
            breaches.push(format!(
                "lot {}: remaining {} above its coins {}",
                lot.purchase_id, lot.remaining, lot.coins
            ));
        }
    }
    breaches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn wallet_with(non_refundable: u64, lots: &[u64]) -> (Wallet, Vec<Lot>) {
        let user = UserId::new("fan").unwrap();
        let now = at("2026-03-01T00:00:00Z");
        let mut wallet = Wallet::empty(&user, &Zone::get("Asia/Tokyo").unwrap(), now);
        wallet.version = 3;
        let lots: Vec<Lot> = lots
            .iter()
            .enumerate()
            .map(|(i, &coins)| {
                let bought = now + jiff::SignedDuration::from_hours(i as i64);
                Lot::new(&user, &PurchaseId::generate(), coins, bought, bought)
            })
            .collect();
        wallet.non_refundable = non_refundable;
        wallet.purchased_total = non_refundable + lots.iter().map(|l| l.coins).sum::<u64>();
        wallet.balance = wallet.purchased_total;
        (wallet, lots)
    }

    #[test]
    fn non_refundable_coins_are_spent_before_any_lot() {
        let allocation = allocate_fifo(50, &[100, 100], 30).unwrap();
        assert_eq!(allocation.from_non_refundable, 30);
        assert!(allocation.from_lots.is_empty());
    }

    #[test]
    fn lots_are_spent_oldest_first() {
        let allocation = allocate_fifo(10, &[100, 100, 100], 150).unwrap();
        assert_eq!(allocation.from_non_refundable, 10);
        assert_eq!(allocation.from_lots, vec![(0, 100), (1, 40)]);
    }

    #[test]
    fn a_debit_above_the_balance_is_a_shortfall() {
        assert_eq!(
            allocate_fifo(10, &[5], 16),
            Err(Shortfall { available: 15 })
        );
        assert!(allocate_fifo(10, &[5], 15).is_ok());
    }

    #[test]
    fn a_gift_spends_lots_oldest_first_by_counting_in_the_wallet() {
        let (wallet, lots) = wallet_with(0, &[100, 100]);
        let now = at("2026-03-02T00:00:00Z");
        let debited = debit_gift(
            &wallet,
            &lots,
            120,
            now.to_zoned(jiff::tz::TimeZone::UTC).date(),
            now,
        )
        .unwrap();
        assert_eq!(debited.version, 4);
        assert_eq!(debited.balance, 80);
        assert_eq!(debited.gifted_total, 120);
        assert_eq!(debited.lot_spent, 120);
        let mut lots = lots;
        derive_remaining(debited.lot_spent, &mut lots);
        assert_eq!([lots[0].remaining, lots[1].remaining], [0, 80]);
        assert!(wallet_invariant_breaches(&debited, &lots).is_empty());
    }

    #[test]
    fn the_daily_limit_counts_only_today() {
        let (mut wallet, lots) = wallet_with(1000, &[]);
        let now = at("2026-03-02T12:00:00Z");
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        wallet.daily_limit = DailyLimit::default().request(Some(100), now);
        wallet.spent_day = Some(today);
        wallet.spent_today = 90;
        assert!(matches!(
            debit_gift(&wallet, &lots, 11, today, now),
            Err(LedgerError::SpendingLimitReached(_))
        ));
        let tomorrow = today.tomorrow().unwrap();
        let debited = debit_gift(&wallet, &lots, 100, tomorrow, now).unwrap();
        assert_eq!(debited.spent_today, 100);
        assert_eq!(debited.spent_day, Some(tomorrow));
    }

    #[test]
    fn closing_a_lot_moves_its_remaining_coins_to_non_refundable() {
        let (mut wallet, mut lots) = wallet_with(5, &[100, 50]);
        wallet.lot_spent = 40;
        wallet.balance = 115;
        wallet.gifted_total = 40;
        derive_remaining(wallet.lot_spent, &mut lots);
        let closed = close_lot(&wallet, &lots[0], at("2026-03-20T00:00:00Z")).unwrap();
        assert_eq!(closed.non_refundable, 65);
        assert_eq!(closed.balance, 115);
        // The lot's spent part left with it: the younger lot is still untouched.
        assert_eq!(closed.lot_spent, 0);
        let mut rest = vec![lots[1].clone()];
        derive_remaining(closed.lot_spent, &mut rest);
        assert!(rest[0].untouched());
        assert!(wallet_invariant_breaches(&closed, &rest).is_empty());
    }

    #[test]
    fn a_closed_lot_is_refunded_only_while_non_refundable_coins_cover_it() {
        let (wallet, _) = wallet_with(99, &[]);
        assert_eq!(
            refund_closed_lot(&wallet, 100, at("2026-04-01T00:00:00Z")),
            Err(LedgerError::CoinsAlreadySpent)
        );
        let refunded = refund_closed_lot(&wallet, 99, at("2026-04-01T00:00:00Z")).unwrap();
        assert_eq!(refunded.balance, 0);
        assert!(wallet_invariant_breaches(&refunded, &[]).is_empty());
    }

    proptest::proptest! {
        /// Whatever the balances, an allocation takes exactly the coins asked, the
        /// non-refundable balance first, then lots strictly oldest first.
        #[test]
        fn fifo_takes_exactly_the_coins_oldest_first(
            non_refundable in 0u64..1_000,
            lots in proptest::collection::vec(0u64..500, 0..12),
            coins in 0u64..4_000,
        ) {
            let available = non_refundable + lots.iter().sum::<u64>();
            match allocate_fifo(non_refundable, &lots, coins) {
                Err(Shortfall { available: reported }) => {
                    proptest::prop_assert!(coins > available);
                    proptest::prop_assert_eq!(reported, available);
                }
                Ok(allocation) => {
                    proptest::prop_assert!(coins <= available);
                    proptest::prop_assert_eq!(allocation.from_non_refundable, non_refundable.min(coins));
                    let from_lots: u64 = allocation.from_lots.iter().map(|&(_, take)| take).sum();
                    proptest::prop_assert_eq!(allocation.from_non_refundable + from_lots, coins);
                    for (position, &(index, take)) in allocation.from_lots.iter().enumerate() {
                        proptest::prop_assert!(take > 0 && take <= lots[index]);
                        // Every lot before the last one touched is spent to zero, and no
                        // non-empty lot is skipped.
                        if position + 1 < allocation.from_lots.len() {
                            proptest::prop_assert_eq!(take, lots[index]);
                        }
                        let skipped = allocation.from_lots[..position].last().map_or(0, |&(i, _)| i + 1);
                        proptest::prop_assert!(lots[skipped..index].iter().all(|&r| r == 0));
                    }
                }
            }
        }
    }

    #[test]
    fn a_reversal_takes_its_own_lot_then_the_rest_and_owes_what_is_missing() {
        let (mut wallet, lots) = wallet_with(20, &[100, 50]);
        // 60 of the first purchase's 100 coins were gifted.
        let mut lots = lots;
        wallet.lot_spent = 60;
        wallet.balance = 110;
        wallet.gifted_total = 60;
        derive_remaining(wallet.lot_spent, &mut lots);
        let now = at("2026-03-05T00:00:00Z");
        let reversal = reverse(&wallet, &lots, &lots[0].purchase_id, 100, now).unwrap();
        // 40 from its lot, 20 non-refundable, 40 of the other lot's 50: 10 left, no debt.
        assert_eq!((reversal.wallet.balance, reversal.wallet.debt), (10, 0));
        assert_eq!(reversal.wallet.non_refundable, 0);
        assert!(
            matches!(&reversal.own_lot, Some(OwnLot::Emptied(lot)) if lot.purchase_id == lots[0].purchase_id)
        );
        let mut rest = vec![lots[1].clone()];
        derive_remaining(reversal.wallet.lot_spent, &mut rest);
        assert_eq!(rest[0].remaining, 10);
        assert!(wallet_invariant_breaches(&reversal.wallet, &rest).is_empty());
        let (mut poorer, lots) = wallet_with(0, &[100]);
        poorer.balance = 30;
        poorer.gifted_total = 70;
        poorer.lot_spent = 70;
        let mut lots = lots;
        derive_remaining(poorer.lot_spent, &mut lots);
        let reversal = reverse(&poorer, &lots, &lots[0].purchase_id, 100, now).unwrap();
        assert_eq!((reversal.wallet.balance, reversal.wallet.debt), (0, 70));
        assert_eq!(reversal.wallet.reversed_total, 100);
        assert!(wallet_invariant_breaches(&reversal.wallet, &[]).is_empty());
        assert!(
            !reversal.wallet.restricted,
            "one reversal does not restrict"
        );
    }

    #[test]
    fn debt_blocks_gifts_and_the_next_purchase_repays_it_first() {
        let (mut wallet, _) = wallet_with(0, &[]);
        wallet.debt = 70;
        wallet.reversed_total = 70;
        wallet.purchased_total = 0;
        let now = at("2026-03-06T00:00:00Z");
        let day = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        assert_eq!(
            debit_gift(&wallet, &[], 1, day, now),
            Err(LedgerError::CoinDebt { debt: 70 })
        );
        let lot = Lot::new(&wallet.user_id, &PurchaseId::generate(), 100, now, now);
        let (credited, lot) = credit(&wallet, lot, now).unwrap();
        assert_eq!(
            (credited.debt, credited.balance, lot.remaining),
            (0, 30, 30)
        );
        assert!(!lot.untouched(), "a lot that repaid debt is not refundable");
        assert!(wallet_invariant_breaches(&credited, &[lot]).is_empty());
    }

    #[test]
    fn an_undone_reversal_repays_debt_then_returns_coins_as_non_refundable() {
        let (mut wallet, _) = wallet_with(0, &[]);
        wallet.debt = 70;
        wallet.reversed_total = 100;
        wallet.purchased_total = 100;
        wallet.gifted_total = 70;
        let undone = undo_reversal(&wallet, 100, at("2026-03-07T00:00:00Z")).unwrap();
        assert_eq!(
            (undone.debt, undone.balance, undone.non_refundable),
            (0, 30, 30)
        );
        assert!(wallet_invariant_breaches(&undone, &[]).is_empty());
    }

    #[test]
    fn a_second_reversal_within_90_days_restricts_the_account() {
        let (wallet, lots) = wallet_with(0, &[100, 100]);
        let first = reverse(
            &wallet,
            &lots,
            &lots[0].purchase_id,
            100,
            at("2026-03-01T00:00:00Z"),
        )
        .unwrap();
        assert!(!first.wallet.restricted);
        let second = reverse(
            &first.wallet,
            &lots[1..],
            &lots[1].purchase_id,
            100,
            at("2026-05-01T00:00:00Z"),
        )
        .unwrap();
        assert!(second.wallet.restricted);
    }

    #[test]
    fn broken_invariants_are_reported() {
        let (mut wallet, lots) = wallet_with(0, &[100]);
        wallet.balance = 101;
        assert_eq!(wallet_invariant_breaches(&wallet, &lots).len(), 2);
    }
}
