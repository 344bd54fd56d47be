//! Where "now" comes from: the system clock on Lambda, a settable test clock in the local server.
//!
//! Everything that reads the time (quote expiry, refund windows, daily limits, the webhook's
//! signature tolerance) takes it from a [`Clock`], so a test or a developer can move time.

use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};

/// A source of the current instant.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> Timestamp;
}

/// The machine's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that stands still until it is set or advanced (like a payment provider's test clock).
#[derive(Clone, Debug)]
pub struct TestClock {
    now: Arc<Mutex<Timestamp>>,
}

/// The earliest time the test clock takes (inclusive).
pub const TEST_CLOCK_EARLIEST: Timestamp = Timestamp::constant(946_684_800, 0); // 2000-01-01
/// The latest time the test clock takes (exclusive): far enough for any test, near enough that
/// every date computed from it (a window's end, a 90-day lookback, a signature's age) stays in
/// range.
pub const TEST_CLOCK_END: Timestamp = Timestamp::constant(7_258_118_400, 0); // 2200-01-01

/// Why the test clock refused to move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClockRefused {
    /// Backwards would reopen closed refund windows and unexpire quotes.
    #[error("the test clock only moves forward: it is {now}, {requested} is earlier")]
    WentBack {
        now: Timestamp,
        requested: Timestamp,
    },
    #[error("the test clock stays from {TEST_CLOCK_EARLIEST} to before {TEST_CLOCK_END}")]
    OutOfRange,
}

impl TestClock {
    /// A clock at `now`, which must be in the test clock's range.
    pub fn new(now: Timestamp) -> Result<Self, ClockRefused> {
        in_range(now)?;
        Ok(TestClock {
            now: Arc::new(Mutex::new(now)),
        })
    }

    /// Sets the time; it may not go backwards or leave the range.
    pub fn set(&self, requested: Timestamp) -> Result<Timestamp, ClockRefused> {
        in_range(requested)?;
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if requested < *now {
            return Err(ClockRefused::WentBack {
                now: *now,
                requested,
            });
        }
        *now = requested;
        Ok(requested)
    }

    /// Moves the time forward by `by` (which must not be negative).
    pub fn advance(&self, by: SignedDuration) -> Result<Timestamp, ClockRefused> {
        let requested = self
            .now()
            .checked_add(by)
            .map_err(|_| ClockRefused::OutOfRange)?;
        self.set(requested)
    }
}

fn in_range(at: Timestamp) -> Result<(), ClockRefused> {
    if (TEST_CLOCK_EARLIEST..TEST_CLOCK_END).contains(&at) {
        Ok(())
    } else {
        Err(ClockRefused::OutOfRange)
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn the_test_clock_stands_still_until_moved() {
        let clock = TestClock::new(at("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(clock.now(), at("2026-03-01T00:00:00Z"));
        clock.advance(SignedDuration::from_hours(24)).unwrap();
        assert_eq!(clock.now(), at("2026-03-02T00:00:00Z"));
        clock.set(at("2026-04-01T00:00:00Z")).unwrap();
        assert_eq!(clock.now(), at("2026-04-01T00:00:00Z"));
    }

    #[test]
    fn the_test_clock_never_goes_back() {
        let clock = TestClock::new(at("2026-03-01T00:00:00Z")).unwrap();
        assert!(clock.set(at("2026-02-28T00:00:00Z")).is_err());
        assert!(clock.advance(SignedDuration::from_secs(-1)).is_err());
        assert_eq!(clock.now(), at("2026-03-01T00:00:00Z"));
    }

    #[test]
    fn clones_share_one_time() {
        let clock = TestClock::new(at("2026-03-01T00:00:00Z")).unwrap();
        let other = clock.clone();
        clock.advance(SignedDuration::from_secs(60)).unwrap();
        assert_eq!(other.now(), at("2026-03-01T00:01:00Z"));
    }

    #[test]
    fn the_test_clock_stays_in_its_range() {
        assert_eq!(TEST_CLOCK_EARLIEST, at("2000-01-01T00:00:00Z"));
        assert_eq!(TEST_CLOCK_END, at("2200-01-01T00:00:00Z"));
        let clock = TestClock::new(at("2026-03-01T00:00:00Z")).unwrap();
        assert_eq!(
            clock.set(at("9999-01-01T00:00:00Z")),
            Err(ClockRefused::OutOfRange)
        );
        assert_eq!(
            clock.advance(SignedDuration::MAX),
            Err(ClockRefused::OutOfRange)
        );
        assert!(clock.set(at("2199-12-31T23:59:59Z")).is_ok());
        assert!(TestClock::new(at("1999-12-31T23:59:59Z")).is_err());
    }
}
