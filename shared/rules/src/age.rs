//! The age gate on buying, sending and receiving gifts: age on the user's local date, against the
//! minimum age of their billing jurisdiction.
//!
//! Minimum ages are data (the price book's `jurisdictions` table): 18 by default, 19 in KR, US-AL
//! and US-NE, 20 in TH, 21 in US-MS. Age is counted in whole years on the user's *local* calendar
//! date, because that is the date on which the law (and the user) says a birthday arrives: a
//! Tokyo user turns 18 at local midnight, hours before UTC's date changes.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::country::{BillingCountry, BillingRegion};
use crate::price_book::PriceBook;

/// The user is old enough.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AgeOk {
    pub age: u32,
    pub minimum_age: u32,
}

/// The user is younger than the jurisdiction's minimum. HTTP 403 `age_restricted`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error, Serialize, Deserialize)]
#[error("age {age} is below the minimum age of {minimum_age}")]
pub struct AgeBelowMinimum {
    pub age: u32,
    pub minimum_age: u32,
}

/// Whole years from `birthdate` to `on`; 0 if `on` is before the birth.
///
/// A birthday is reached when the month and day are reached, so a 29 February birthday is
/// reached on 1 March in common years (28 February is still before it), as most jurisdictions
/// with a rule on it hold.
pub fn age_on(birthdate: Date, on: Date) -> u32 {
    if on < birthdate {
        return 0;
    }
    let years = i32::from(on.year()) - i32::from(birthdate.year());
    let birthday_reached = (on.month(), on.day()) >= (birthdate.month(), birthdate.day());
    let age = if birthday_reached { years } else { years - 1 };
    u32::try_from(age).unwrap_or(0)
}

/// Checks an age against a minimum, on a given date.
pub fn gate(birthdate: Date, on: Date, minimum_age: u32) -> Result<AgeOk, AgeBelowMinimum> {
    let age = age_on(birthdate, on);
    if age >= minimum_age {
        Ok(AgeOk { age, minimum_age })
    } else {
        Err(AgeBelowMinimum { age, minimum_age })
    }
}

/// Checks a user billed in `country` (and `region`) against the embedded book's minimum age, on
/// the calendar date `on`.
pub fn check_age_on(
    birthdate: Date,
    country: BillingCountry,
    region: Option<BillingRegion>,
    on: Date,
) -> Result<AgeOk, AgeBelowMinimum> {
    gate(
        birthdate,
        on,
        PriceBook::embedded().minimum_age(country, region),
    )
}

/// Checks a user billed in `country` (and `region`) at instant `now`, counted on their local date
/// in `zone` (their `zoneinfo` claim; looked up once by the caller).
pub fn check_age(
    birthdate: Date,
    country: BillingCountry,
    region: Option<BillingRegion>,
    now: Timestamp,
    zone: &TimeZone,
) -> Result<AgeOk, AgeBelowMinimum> {
    check_age_on(birthdate, country, region, zone.to_datetime(now).date())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn country(code: &str) -> BillingCountry {
        code.parse().unwrap()
    }

    fn region(code: &str) -> Option<BillingRegion> {
        Some(code.parse().unwrap())
    }

    fn at(instant: &str) -> Timestamp {
        instant.parse().unwrap()
    }

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn age_counts_whole_years_reached_on_the_birthday() {
        let born = date(2008, 6, 15);
        assert_eq!(age_on(born, date(2026, 6, 14)), 17);
        assert_eq!(age_on(born, date(2026, 6, 15)), 18);
        assert_eq!(age_on(born, date(2026, 12, 31)), 18);
        assert_eq!(age_on(born, born), 0);
    }

    #[test]
    fn a_leap_day_birthday_is_reached_on_the_first_of_march_in_common_years() {
        let born = date(2008, 2, 29);
        assert_eq!(age_on(born, date(2026, 2, 28)), 17);
        assert_eq!(age_on(born, date(2026, 3, 1)), 18);
        // In a leap year the birthday itself exists.
        assert_eq!(age_on(born, date(2028, 2, 28)), 19);
        assert_eq!(age_on(born, date(2028, 2, 29)), 20);
    }

    #[test]
    fn a_date_before_the_birth_counts_as_age_zero() {
        assert_eq!(age_on(date(2030, 1, 1), date(2026, 1, 1)), 0);
    }

    #[test]
    fn an_eighteen_year_old_may_buy_in_japan() {
        assert_eq!(
            check_age_on(date(2008, 6, 15), country("JP"), None, date(2026, 6, 15)),
            Ok(AgeOk {
                age: 18,
                minimum_age: 18
            })
        );
    }

    #[test]
    fn an_eighteen_year_old_may_not_buy_in_korea_or_thailand() {
        let born = date(2008, 6, 15);
        let on = date(2026, 6, 15);
        assert_eq!(
            check_age_on(born, country("KR"), None, on),
            Err(AgeBelowMinimum {
                age: 18,
                minimum_age: 19
            })
        );
        assert_eq!(
            check_age_on(born, country("TH"), None, on),
            Err(AgeBelowMinimum {
                age: 18,
                minimum_age: 20
            })
        );
    }

    #[test]
    fn us_states_with_a_higher_age_of_majority_apply_it() {
        let born = date(2006, 6, 15);
        let on = date(2026, 6, 15); // 20 years old
        assert!(check_age_on(born, country("US"), None, on).is_ok());
        assert!(check_age_on(born, country("US"), region("US-AL"), on).is_ok());
        assert_eq!(
            check_age_on(born, country("US"), region("US-MS"), on),
            Err(AgeBelowMinimum {
                age: 20,
                minimum_age: 21
            })
        );
        assert_eq!(
            check_age_on(date(2007, 6, 16), country("US"), region("US-NE"), on),
            Err(AgeBelowMinimum {
                age: 18,
                minimum_age: 19
            })
        );
    }

    #[test]
    fn the_birthday_arrives_at_local_midnight_east_of_utc() {
        // 15:30 UTC on 14 June is 00:30 on 15 June in Tokyo: the 18th birthday has arrived there.
        let now = at("2026-06-14T15:30:00Z");
        let born = date(2008, 6, 15);
        assert_eq!(
            check_age(born, country("JP"), None, now, &zone("Asia/Tokyo")),
            Ok(AgeOk {
                age: 18,
                minimum_age: 18
            })
        );
        // The same instant is still 14 June in UTC.
        assert_eq!(
            check_age(born, country("JP"), None, now, &TimeZone::UTC),
            Err(AgeBelowMinimum {
                age: 17,
                minimum_age: 18
            })
        );
    }

    #[test]
    fn the_birthday_has_not_arrived_late_in_the_evening_west_of_utc() {
        // 06:30 UTC on 15 June is 23:30 on 14 June in Los Angeles: still 17 there.
        let now = at("2026-06-15T06:30:00Z");
        assert_eq!(
            check_age(
                date(2008, 6, 15),
                country("US"),
                None,
                now,
                &zone("America/Los_Angeles")
            ),
            Err(AgeBelowMinimum {
                age: 17,
                minimum_age: 18
            })
        );
    }
}
