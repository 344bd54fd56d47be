//! Provider reversals (a card dispute, a store refund): what they take back, and when they
//! restrict an account.
//!
//! A reversal takes the purchase's coins back: first from the purchase's own lot, then from the
//! rest of the balance; what is missing becomes coin debt, which blocks gifting and is repaid
//! first by the next purchase. Diamonds a creator earned are never taken back. Two reversals
//! within 90 days restrict the account (no quotes, no purchases) until an admin lifts it.

use jiff::{SignedDuration, Timestamp};

/// How far back reversals count towards a restriction.
pub const REVERSAL_LOOKBACK: SignedDuration = SignedDuration::from_hours(90 * 24);

/// Reversals within the lookback that restrict an account.
pub const REVERSALS_TO_RESTRICT: usize = 2;

/// The reversals still counted at `now`, oldest first, after one more at `now`.
pub fn counted_after(previous: &[Timestamp], now: Timestamp) -> Vec<Timestamp> {
    let since = now.checked_sub(REVERSAL_LOOKBACK).unwrap_or(Timestamp::MIN);
    previous
        .iter()
        .copied()
        .filter(|&at| at > since)
        .chain([now])
        .collect()
}

/// Whether these counted reversals restrict the account.
pub fn restricts(counted: &[Timestamp]) -> bool {
    counted.len() >= REVERSALS_TO_RESTRICT
}

/// How a reversal of `coins` is taken from a wallet: from the purchase's own lot, then the rest
/// of the balance, the remainder as debt.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Takeback {
    pub from_own_lot: u64,
    pub from_balance: u64,
    pub debt: u64,
}

/// Splits a reversal of `coins` given what the purchase's lot still holds and the rest of the
/// balance.
pub fn take_back(coins: u64, own_lot_remaining: u64, rest_of_balance: u64) -> Takeback {
    let from_own_lot = coins.min(own_lot_remaining);
    let from_balance = (coins - from_own_lot).min(rest_of_balance);
    Takeback {
        from_own_lot,
        from_balance,
        debt: coins - from_own_lot - from_balance,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_second_reversal_within_90_days_restricts() {
        let first = counted_after(&[], at("2026-01-01T00:00:00Z"));
        assert!(!restricts(&first));
        let second = counted_after(&first, at("2026-03-31T23:59:59Z"));
        assert!(restricts(&second));
        let late = counted_after(&first, at("2026-04-01T00:00:01Z"));
        assert_eq!(late.len(), 1, "the first is older than 90 days");
        assert!(!restricts(&late));
    }

    #[test]
    fn coins_come_from_the_lot_then_the_balance_then_become_debt() {
        assert_eq!(
            take_back(700, 650, 30),
            Takeback {
                from_own_lot: 650,
                from_balance: 30,
                debt: 20
            }
        );
        assert_eq!(take_back(700, 700, 5).debt, 0);
        assert_eq!(take_back(700, 0, 1000).from_balance, 700);
    }
}
