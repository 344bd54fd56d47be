//! The refund window: "14 days from the day after purchase", in the buyer's own time zone.
//!
//! Bought on local date D, a purchase is refundable until the start of local day D+15. Only a
//! purchase whose coins are all unspent can be refunded; an admin may waive the window (never the
//! unspent condition: the coins must be taken back before the money goes back).

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};
use serde::{Deserialize, Serialize};

/// Whole local days after the day of purchase that a purchase stays refundable.
pub const REFUND_WINDOW_DAYS: i32 = 14;

/// Why an admin refunds outside the window.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdminOverride {
    /// The coins did not work as sold.
    Defective,
    /// A legal obligation (a court order, a statutory withdrawal right).
    Legal,
}

/// Why a refund is refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
pub enum RefundRejected {
    /// HTTP 409 `refund_window_closed`.
    #[error("the refund window closed at {refundable_until}")]
    WindowClosed { refundable_until: Timestamp },
    /// HTTP 409 `coins_already_spent`.
    #[error("some of the purchase's coins are already spent")]
    CoinsAlreadySpent,
}

/// A purchase so close to the end of time (the year 9999) that its window cannot be computed.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("no refund deadline can be computed for a purchase at {purchased_at}")]
pub struct DeadlineOutOfRange {
    pub purchased_at: Timestamp,
}

/// The refund deadline as an instant, or an error for instants near the end of jiff's range.
///
/// The start of a day is its first instant: local midnight, or the end of a DST gap when midnight
/// does not exist (Santiago's clocks jump from 00:00 to 01:00), or the earlier midnight when it
/// happens twice. jiff's "compatible" disambiguation picks exactly that, as `Zoned::start_of_day`
/// does; this path avoids building two `Zoned` values, since it runs on every wallet read.
pub fn try_refundable_until(
    purchased_at: Timestamp,
    zone: &TimeZone,
) -> Result<Timestamp, DeadlineOutOfRange> {
    let out_of_range = |_| DeadlineOutOfRange { purchased_at };
    let purchase_day = zone.to_datetime(purchased_at).date();
    let deadline_day = purchase_day
        .checked_add((REFUND_WINDOW_DAYS + 1).days())
        .map_err(out_of_range)?;
    zone.to_ambiguous_timestamp(deadline_day.to_datetime(Time::midnight()))
        .compatible()
        .map_err(out_of_range)
}

/// [`try_refundable_until`] with the buyer's offset, for display.
pub fn try_refund_deadline(
    purchased_at: Timestamp,
    zone: &TimeZone,
) -> Result<Zoned, DeadlineOutOfRange> {
    try_refundable_until(purchased_at, zone).map(|deadline| deadline.to_zoned(zone.clone()))
}

/// The first instant at which the purchase is no longer refundable, with the buyer's offset.
///
/// The start of day D+15 is taken from the zone's rules, so it is right on days when a DST change
/// makes midnight not exist (the day then starts at 01:00).
///
/// Panics only for purchases in the last fortnight of the year 9999; input from outside should
/// go through [`try_refund_deadline`].
pub fn refund_deadline(purchased_at: Timestamp, zone: &TimeZone) -> Zoned {
    try_refund_deadline(purchased_at, zone)
        .expect("a purchase date plus 15 days is within jiff's range")
}

/// [`refund_deadline`] as an instant.
///
/// Panics only for purchases in the last fortnight of the year 9999; see [`try_refundable_until`].
pub fn refundable_until(purchased_at: Timestamp, zone: &TimeZone) -> Timestamp {
    try_refundable_until(purchased_at, zone)
        .expect("a purchase date plus 15 days is within jiff's range")
}

/// Decides a refund request at `now` for a lot whose deadline is `refundable_until`.
///
/// Spent coins are checked first and an admin override never waives them: a refund takes the
/// lot's coins back before the money goes back, and coins already given away as gifts (final,
/// and credited to a creator) cannot be taken back. The override waives only the window.
pub fn check_refund(
    refundable_until: Timestamp,
    now: Timestamp,
    lot_untouched: bool,
    admin_override: Option<AdminOverride>,
) -> Result<(), RefundRejected> {
    if !lot_untouched {
        return Err(RefundRejected::CoinsAlreadySpent);
    }
    if now >= refundable_until && admin_override.is_none() {
        return Err(RefundRejected::WindowClosed { refundable_until });
    }
    Ok(())
}

/// [`check_refund`] from the purchase instant and the buyer's zone (the lot's stored
/// `refundable_until` is the same value; this form is for callers that do not store it).
pub fn check_refund_at(
    purchased_at: Timestamp,
    zone: &TimeZone,
    now: Timestamp,
    lot_untouched: bool,
    admin_override: Option<AdminOverride>,
) -> Result<(), RefundRejected> {
    // A purchase too near the year 9999 to have a deadline is treated as never closing; only a
    // corrupt clock could produce one, and the unspent-coins check still applies.
    let until = try_refundable_until(purchased_at, zone).unwrap_or(Timestamp::MAX);
    check_refund(until, now, lot_untouched, admin_override)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn deadline(purchased_at: &str, zone_name: &str) -> String {
        refund_deadline(purchased_at.parse().unwrap(), &zone(zone_name)).to_string()
    }

    #[test]
    fn the_window_ends_at_the_start_of_local_day_d_plus_15() {
        assert_eq!(
            deadline("2026-03-01T03:00:00Z", "Asia/Tokyo"),
            "2026-03-16T00:00:00+09:00[Asia/Tokyo]"
        );
    }

    #[test]
    fn a_late_evening_purchase_counts_on_the_local_date_not_utc() {
        // 23:30 on 1 June in Los Angeles is already 2 June in UTC.
        assert_eq!(
            deadline("2026-06-02T06:30:00Z", "America/Los_Angeles"),
            "2026-06-16T00:00:00-07:00[America/Los_Angeles]"
        );
    }

    #[test]
    fn the_deadline_keeps_local_midnight_across_a_dst_change() {
        // Bought in winter time, the window ends in summer time: still local midnight.
        assert_eq!(
            deadline("2026-03-01T12:00:00Z", "America/New_York"),
            "2026-03-16T00:00:00-04:00[America/New_York]"
        );
    }

    #[test]
    fn outside_the_window_only_an_admin_override_refunds() {
        let until: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
        let after: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
        assert_eq!(
            check_refund(until, after, true, None),
            Err(RefundRejected::WindowClosed {
                refundable_until: until
            })
        );
        assert_eq!(
            check_refund(until, after, true, Some(AdminOverride::Legal)),
            Ok(())
        );
    }

    #[test]
    fn spent_coins_are_never_refunded_even_by_an_admin() {
        let until: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
        let before: Timestamp = "2026-03-02T00:00:00Z".parse().unwrap();
        assert_eq!(
            check_refund(until, before, false, Some(AdminOverride::Defective)),
            Err(RefundRejected::CoinsAlreadySpent)
        );
    }

    fn at(instant: &str) -> Timestamp {
        instant.parse().unwrap()
    }

    #[test]
    fn a_purchase_east_of_utc_counts_on_the_next_local_date() {
        // 20:00 UTC on 1 March is 05:00 on 2 March in Tokyo: day D is 2 March.
        assert_eq!(
            deadline("2026-03-01T20:00:00Z", "Asia/Tokyo"),
            "2026-03-17T00:00:00+09:00[Asia/Tokyo]"
        );
        // Kolkata's half-hour offset: 18:29 UTC is 23:59 local, 18:30 UTC is the next day.
        assert_eq!(
            deadline("2026-03-01T18:29:00Z", "Asia/Kolkata"),
            "2026-03-16T00:00:00+05:30[Asia/Kolkata]"
        );
        assert_eq!(
            deadline("2026-03-01T18:30:00Z", "Asia/Kolkata"),
            "2026-03-17T00:00:00+05:30[Asia/Kolkata]"
        );
    }

    #[test]
    fn a_purchase_at_2330_in_los_angeles_closes_14_days_and_30_minutes_later() {
        // 23:30 PDT on 1 June: D = 1 June, deadline 16 June 00:00 PDT = 07:00 UTC.
        let purchased = at("2026-06-02T06:30:00Z");
        let until = refundable_until(purchased, &zone("America/Los_Angeles"));
        assert_eq!(until, at("2026-06-16T07:00:00Z"));
        assert_eq!(
            until.duration_since(purchased),
            jiff::SignedDuration::from_mins(14 * 24 * 60 + 30)
        );
        // One second before the deadline a refund is still allowed; at it, refused.
        assert_eq!(
            check_refund(until, at("2026-06-16T06:59:59Z"), true, None),
            Ok(())
        );
        assert!(check_refund(until, until, true, None).is_err());
    }

    #[test]
    fn a_purchase_on_the_new_york_dst_start_day_closes_at_local_midnight() {
        // 8 March 2026: clocks jump 02:00 → 03:00 EST → EDT. Bought at 01:30 EST.
        assert_eq!(
            deadline("2026-03-08T06:30:00Z", "America/New_York"),
            "2026-03-23T00:00:00-04:00[America/New_York]"
        );
    }

    #[test]
    fn a_purchase_on_the_new_york_dst_end_day_closes_at_local_midnight() {
        // 1 November 2026: 02:00 EDT → 01:00 EST. 01:30 happens twice; both are 1 November.
        let first = "2026-11-01T05:30:00Z"; // 01:30 EDT
        let second = "2026-11-01T06:30:00Z"; // 01:30 EST
        for purchased in [first, second] {
            assert_eq!(
                deadline(purchased, "America/New_York"),
                "2026-11-16T00:00:00-05:00[America/New_York]"
            );
        }
    }

    #[test]
    fn a_window_spanning_the_berlin_autumn_change_is_an_hour_longer() {
        // Bought at noon CEST on 20 October; clocks go back on 25 October.
        let purchased = at("2026-10-20T10:00:00Z");
        let berlin = zone("Europe/Berlin");
        assert_eq!(
            refund_deadline(purchased, &berlin).to_string(),
            "2026-11-04T00:00:00+01:00[Europe/Berlin]"
        );
        // 14 days and 12 hours of wall time, plus the hour given back.
        assert_eq!(
            refundable_until(purchased, &berlin).duration_since(purchased),
            jiff::SignedDuration::from_hours(14 * 24 + 13)
        );
    }

    #[test]
    fn a_purchase_on_the_berlin_dst_start_day_closes_at_local_midnight() {
        // 29 March 2026: 02:00 CET → 03:00 CEST. Bought at 01:59 CET, just before.
        assert_eq!(
            deadline("2026-03-29T00:59:00Z", "Europe/Berlin"),
            "2026-04-13T00:00:00+02:00[Europe/Berlin]"
        );
    }

    #[test]
    fn where_midnight_does_not_exist_the_window_closes_when_the_day_starts() {
        // Chile moves its clocks at midnight: 6 September 2026 begins at 01:00 in Santiago.
        // Bought on 22 August, the window closes at the start of 6 September: 01:00 -03.
        let purchased = at("2026-08-22T16:00:00Z");
        let santiago = zone("America/Santiago");
        assert_eq!(
            refund_deadline(purchased, &santiago).to_string(),
            "2026-09-06T01:00:00-03:00[America/Santiago]"
        );
        let via_zoned = jiff::civil::date(2026, 9, 6)
            .to_zoned(santiago.clone())
            .unwrap()
            .start_of_day()
            .unwrap();
        assert_eq!(
            refundable_until(purchased, &santiago),
            via_zoned.timestamp()
        );
    }

    #[test]
    fn a_purchase_on_a_leap_day_counts_fifteen_days_on_the_calendar() {
        assert_eq!(
            deadline("2028-02-29T12:00:00Z", "Europe/Berlin"),
            "2028-03-15T00:00:00+01:00[Europe/Berlin]"
        );
        // Across the end of a common February: 14 February + 15 days = 1 March.
        assert_eq!(
            deadline("2027-02-14T12:00:00Z", "UTC"),
            "2027-03-01T00:00:00+00:00[UTC]"
        );
    }

    #[test]
    fn an_admin_override_inside_the_window_changes_nothing() {
        let until = at("2026-03-16T00:00:00Z");
        let before = at("2026-03-02T00:00:00Z");
        assert_eq!(
            check_refund(until, before, true, Some(AdminOverride::Defective)),
            Ok(())
        );
        assert_eq!(check_refund(until, before, true, None), Ok(()));
    }

    #[test]
    fn the_purchase_instant_form_agrees_with_the_stored_deadline_form() {
        let tokyo = zone("Asia/Tokyo");
        let purchased = at("2026-03-01T03:00:00Z");
        assert_eq!(
            check_refund_at(purchased, &tokyo, at("2026-03-15T14:59:59Z"), true, None),
            Ok(())
        );
        assert_eq!(
            check_refund_at(purchased, &tokyo, at("2026-03-15T15:00:00Z"), true, None),
            Err(RefundRejected::WindowClosed {
                refundable_until: at("2026-03-15T15:00:00Z")
            })
        );
    }

    #[test]
    fn a_purchase_at_the_end_of_time_has_no_deadline_rather_than_a_panic() {
        let purchased = at("9999-12-30T00:00:00Z");
        assert_eq!(
            try_refundable_until(purchased, &TimeZone::UTC),
            Err(DeadlineOutOfRange {
                purchased_at: purchased
            })
        );
        assert_eq!(
            check_refund_at(purchased, &TimeZone::UTC, purchased, false, None),
            Err(RefundRejected::CoinsAlreadySpent)
        );
    }

    #[test]
    fn admin_override_reasons_are_lower_case_on_the_wire() {
        assert_eq!(
            serde_json::to_string(&AdminOverride::Defective).unwrap(),
            r#""defective""#
        );
        assert_eq!(
            serde_json::from_str::<AdminOverride>(r#""legal""#).unwrap(),
            AdminOverride::Legal
        );
        assert!(serde_json::from_str::<AdminOverride>(r#""Legal""#).is_err());
    }
}
