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

/// Moving the clock backwards would reopen closed refund windows and unexpire quotes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the test clock only moves forward: it is {now}, {requested} is earlier")]
pub struct ClockWentBack {
    pub now: Timestamp,
    pub requested: Timestamp,
}

impl TestClock {
    pub fn new(now: Timestamp) -> Self {
        TestClock {
            now: Arc::new(Mutex::new(now)),
        }
    }

    /// Sets the time; it may not go backwards.
    pub fn set(&self, requested: Timestamp) -> Result<Timestamp, ClockWentBack> {
        let mut now = self.now.lock().unwrap_or_else(PoisonError::into_inner);
        if requested < *now {
            return Err(ClockWentBack {
                now: *now,
                requested,
            });
        }
        *now = requested;
        Ok(requested)
    }

    /// Moves the time forward by `by` (which must not be negative).
    pub fn advance(&self, by: SignedDuration) -> Result<Timestamp, ClockWentBack> {
        let now = self.now();
        let requested = now.checked_add(by).unwrap_or(Timestamp::MAX);
        self.set(requested)
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
        let clock = TestClock::new(at("2026-03-01T00:00:00Z"));
        assert_eq!(clock.now(), at("2026-03-01T00:00:00Z"));
        clock.advance(SignedDuration::from_hours(24)).unwrap();
        assert_eq!(clock.now(), at("2026-03-02T00:00:00Z"));
        clock.set(at("2026-04-01T00:00:00Z")).unwrap();
        assert_eq!(clock.now(), at("2026-04-01T00:00:00Z"));
    }

    #[test]
    fn the_test_clock_never_goes_back() {
        let clock = TestClock::new(at("2026-03-01T00:00:00Z"));
        assert!(clock.set(at("2026-02-28T00:00:00Z")).is_err());
        assert!(clock.advance(SignedDuration::from_secs(-1)).is_err());
        assert_eq!(clock.now(), at("2026-03-01T00:00:00Z"));
    }

    #[test]
    fn clones_share_one_time() {
        let clock = TestClock::new(at("2026-03-01T00:00:00Z"));
        let other = clock.clone();
        clock.advance(SignedDuration::from_secs(60)).unwrap();
        assert_eq!(other.now(), at("2026-03-01T00:01:00Z"));
    }
}
