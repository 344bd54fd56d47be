//! Creator payouts: a gift's diamonds are held for a while (the period in which payments are
//! most often reversed), then available to pay out in US dollars, in amounts between a minimum
//! and a daily maximum.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

/// Days a gift's diamonds are held before they can be paid out.
pub const HOLD_DAYS: i64 = 7;

/// The smallest payout, in diamonds (USD 50 at half a cent each).
pub const MIN_PAYOUT_DIAMONDS: u64 = 10_000;

/// The most a creator is paid out in one UTC day, in US cents.
pub const DAILY_PAYOUT_MAX_USD_CENTS: i64 = 100_000;

/// When a gift's diamonds leave their hold: the first UTC midnight at least [`HOLD_DAYS`] after
/// the gift. Held by day, so a creator's pending diamonds fit in a handful of buckets; a gift
/// is held at most a day longer than the hold.
pub fn released_at(gifted_at: Timestamp) -> Timestamp {
    let held_until = gifted_at
        .saturating_add(SignedDuration::from_hours(24 * HOLD_DAYS))
        .unwrap_or(Timestamp::MAX);
    let day = held_until.to_zoned(TimeZone::UTC).date();
    let midnight = day.to_zoned(TimeZone::UTC).map(|zoned| zoned.timestamp());
    match midnight {
        Ok(midnight) if midnight == held_until => midnight,
        _ => day
            .checked_add(1.day())
            .and_then(|next| next.to_zoned(TimeZone::UTC))
            .map_or(Timestamp::MAX, |zoned| zoned.timestamp()),
    }
}

/// The UTC day a payout counts towards the daily maximum.
pub fn payout_day(at: Timestamp) -> Date {
    at.to_zoned(TimeZone::UTC).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn diamonds_are_held_seven_days_then_to_the_next_utc_midnight() {
        assert_eq!(
            released_at(at("2026-03-01T10:30:00Z")),
            at("2026-03-09T00:00:00Z")
        );
        // A gift at midnight is released exactly seven days later.
        assert_eq!(
            released_at(at("2026-03-01T00:00:00Z")),
            at("2026-03-08T00:00:00Z")
        );
        assert_eq!(
            released_at(at("2026-03-01T23:59:59Z")),
            at("2026-03-09T00:00:00Z")
        );
    }

    #[test]
    fn the_payout_day_is_the_utc_date() {
        assert_eq!(
            payout_day(at("2026-03-01T23:30:00-05:00")),
            "2026-03-02".parse().unwrap()
        );
    }
}
