//! The refund window: "14 days from the day after purchase", in the buyer's own time zone.
//!
//! Bought on local date D, a purchase is refundable until the start of local day D+15. Only a
//! purchase whose coins are all unspent can be refunded; an admin may waive the window (never the
//! unspent condition: the coins must be taken back before the money goes back).

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

/// The first instant at which the purchase is no longer refundable, with the buyer's offset.
///
/// The start of day D+15 is taken from the zone's rules, so it is right on days when a DST change
/// makes midnight not exist (the day then starts at 01:00).
pub fn refund_deadline(purchased_at: Timestamp, zone: &TimeZone) -> Zoned {
    let purchase_day = purchased_at.to_zoned(zone.clone()).date();
    let last_day_after = purchase_day
        .checked_add((REFUND_WINDOW_DAYS + 1).days())
        .expect("a purchase date plus 15 days is within jiff's range");
    last_day_after
        .to_zoned(zone.clone())
        .and_then(|day| day.start_of_day())
        .expect("every civil date has a start of day in every zone")
}

/// [`refund_deadline`] as an instant.
pub fn refundable_until(purchased_at: Timestamp, zone: &TimeZone) -> Timestamp {
    refund_deadline(purchased_at, zone).timestamp()
}

/// Decides a refund request at `now` for a lot whose deadline is `refundable_until`.
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
}
