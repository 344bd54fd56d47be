//! Responsible spending: a user-set daily coin limit on gifting, counted on the user's local day.
//!
//! Lowering a limit (or setting one where there was none) protects the user, so it applies at
//! once. Raising or removing it could be an impulse, so it waits out a 24-hour cooling-off.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// How long a raise (or removal) of the daily limit waits before it applies.
pub const RAISE_COOLING_OFF: SignedDuration = SignedDuration::from_hours(24);

/// A user's daily gifting limit and any raise still cooling off.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct DailyLimit {
    /// The limit in force; `None` means no limit.
    pub coins: Option<u64>,
    /// A raise or removal waiting for its cooling-off to end.
    pub pending: Option<PendingLimit>,
}

/// A limit change that takes effect later.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PendingLimit {
    /// The new limit; `None` removes the limit.
    pub coins: Option<u64>,
    pub effective_at: Timestamp,
}

/// The gift would take the day's spending past the limit.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error(
    "daily limit of {limit_coins} coins reached: {spent_today_coins} spent today, {requested_coins} requested"
)]
pub struct SpendingLimitReached {
    pub limit_coins: u64,
    pub spent_today_coins: u64,
    pub requested_coins: u64,
}

impl DailyLimit {
    /// The limit as it stands at `now`: a pending change whose time has come is applied.
    pub fn settled(self, now: Timestamp) -> DailyLimit {
        match self.pending {
            Some(pending) if pending.effective_at <= now => DailyLimit {
                coins: pending.coins,
                pending: None,
            },
            _ => self,
        }
    }

    /// The limit in force at `now`; `None` means no limit.
    pub fn in_force(self, now: Timestamp) -> Option<u64> {
        self.settled(now).coins
    }

    /// The user asks for `requested` (`None` = no limit) at `now`.
    ///
    /// A lower (stricter) limit applies at once and cancels any pending raise; a higher one, or
    /// removing the limit, is scheduled after [`RAISE_COOLING_OFF`]. Asking for the limit already
    /// in force just cancels a pending raise.
    pub fn request(self, requested: Option<u64>, now: Timestamp) -> DailyLimit {
        let current = self.settled(now);
        if is_stricter_or_same(requested, current.coins) {
            DailyLimit {
                coins: requested,
                pending: None,
            }
        } else {
            DailyLimit {
                coins: current.coins,
                pending: Some(PendingLimit {
                    coins: requested,
                    effective_at: now + RAISE_COOLING_OFF,
                }),
            }
        }
    }

    /// May the user spend `requested_coins` more today, having spent `spent_today_coins`?
    pub fn check_spend(
        self,
        now: Timestamp,
        spent_today_coins: u64,
        requested_coins: u64,
    ) -> Result<(), SpendingLimitReached> {
        let Some(limit_coins) = self.in_force(now) else {
            return Ok(());
        };
        match spent_today_coins.checked_add(requested_coins) {
            Some(total) if total <= limit_coins => Ok(()),
            _ => Err(SpendingLimitReached {
                limit_coins,
                spent_today_coins,
                requested_coins,
            }),
        }
    }
}

/// `None` is "no limit", the loosest of all.
fn is_stricter_or_same(requested: Option<u64>, current: Option<u64>) -> bool {
    match (requested, current) {
        (_, None) => true,
        (None, Some(_)) => false,
        (Some(requested), Some(current)) => requested <= current,
    }
}

/// The user's local calendar day at `now`, on which daily spending is counted.
pub fn local_day(now: Timestamp, zone: &TimeZone) -> Date {
    now.to_zoned(zone.clone()).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn lowering_applies_at_once() {
        let now = at("2026-03-01T12:00:00Z");
        let limit = DailyLimit::default()
            .request(Some(500), now)
            .request(Some(100), now);
        assert_eq!(limit.in_force(now), Some(100));
        assert_eq!(limit.pending, None);
    }

    #[test]
    fn raising_waits_24_hours() {
        let now = at("2026-03-01T12:00:00Z");
        let limit = DailyLimit::default()
            .request(Some(100), now)
            .request(Some(1000), now);
        assert_eq!(limit.in_force(now), Some(100));
        assert_eq!(limit.in_force(at("2026-03-02T11:59:59Z")), Some(100));
        assert_eq!(limit.in_force(at("2026-03-02T12:00:00Z")), Some(1000));
    }

    #[test]
    fn removing_the_limit_is_a_raise() {
        let now = at("2026-03-01T12:00:00Z");
        let limit = DailyLimit::default()
            .request(Some(100), now)
            .request(None, now);
        assert_eq!(limit.in_force(now), Some(100));
        assert_eq!(limit.in_force(now + RAISE_COOLING_OFF), None);
    }

    #[test]
    fn lowering_cancels_a_pending_raise() {
        let now = at("2026-03-01T12:00:00Z");
        let limit = DailyLimit::default()
            .request(Some(100), now)
            .request(Some(1000), now)
            .request(Some(50), now);
        assert_eq!(limit.pending, None);
        assert_eq!(limit.in_force(now + RAISE_COOLING_OFF), Some(50));
    }

    #[test]
    fn spending_past_the_limit_is_refused() {
        let now = at("2026-03-01T12:00:00Z");
        let limit = DailyLimit::default().request(Some(100), now);
        assert!(limit.check_spend(now, 60, 40).is_ok());
        assert_eq!(
            limit.check_spend(now, 60, 41),
            Err(SpendingLimitReached {
                limit_coins: 100,
                spent_today_coins: 60,
                requested_coins: 41
            })
        );
        assert!(limit.check_spend(now, u64::MAX, 1).is_err());
        assert!(DailyLimit::default().check_spend(now, u64::MAX, 1).is_ok());
    }

    #[test]
    fn the_day_is_the_users_local_day() {
        let tokyo = TimeZone::get("Asia/Tokyo").unwrap();
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        let now = at("2026-03-01T20:00:00Z");
        assert_eq!(local_day(now, &tokyo).to_string(), "2026-03-02");
        assert_eq!(local_day(now, &la).to_string(), "2026-03-01");
    }
}
