//! The user's time zone: an IANA zone, checked once where it enters (the `zoneinfo` claim) and
//! carried as a type from there, so no layer re-parses a name or falls back to UTC.

use std::fmt;

use jiff::tz::TimeZone;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An IANA time zone from the bundled tzdb (`Asia/Tokyo`): local days, refund windows and
/// ages are counted in it. Stored by its name.
#[derive(Clone, PartialEq, Eq)]
pub struct Zone(TimeZone);

/// A name that is not an IANA zone of the bundled tzdb.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not an IANA time zone")]
pub struct UnknownZone(pub String);

impl Zone {
    pub fn get(name: &str) -> Result<Zone, UnknownZone> {
        match TimeZone::get(name) {
            // Every zone from the database has its IANA name: `name()` never needs a fallback.
            Ok(zone) if zone.iana_name().is_some() => Ok(Zone(zone)),
            _ => Err(UnknownZone(name.to_owned())),
        }
    }

    /// The IANA name.
    pub fn name(&self) -> &str {
        self.0.iana_name().expect("checked at construction")
    }

    pub fn tz(&self) -> &TimeZone {
        &self.0
    }
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Zone {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Zone, D::Error> {
        let name = String::deserialize(deserializer)?;
        Zone::get(&name).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_keeps_its_iana_name_and_round_trips() {
        let zone = Zone::get("Asia/Tokyo").unwrap();
        assert_eq!(zone.name(), "Asia/Tokyo");
        let json = serde_json::to_string(&zone).unwrap();
        assert_eq!(json, r#""Asia/Tokyo""#);
        assert_eq!(serde_json::from_str::<Zone>(&json).unwrap(), zone);
    }

    #[test]
    fn an_unknown_name_is_refused() {
        assert!(Zone::get("Mars/Olympus_Mons").is_err());
        assert!(serde_json::from_str::<Zone>(r#""Mars/Olympus_Mons""#).is_err());
    }
}
