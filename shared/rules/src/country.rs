//! Billing country and region codes (ISO 3166-1 alpha-2, ISO 3166-2), parsed once at the edge.
//!
//! Both are `Copy` and stored inline, so quotes and lookups never allocate for them. The codes
//! come from the verified identity (the `billing_country` and `billing_region` claims), never from
//! a request body, so a quote cannot be priced for a country the buyer does not bill in.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a country or region code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// Not two ASCII letters.
    #[error("{0:?} is not an ISO 3166-1 alpha-2 country code (two letters, e.g. \"JP\")")]
    BadCountry(String),
    /// Not `CC-XXX`: a country code, a hyphen and one to three letters or digits.
    #[error("{0:?} is not an ISO 3166-2 region code (e.g. \"US-AL\")")]
    BadRegion(String),
    /// The region belongs to another country than the one it was paired with.
    #[error("region {region} is not in country {country}")]
    RegionNotInCountry {
        country: BillingCountry,
        region: BillingRegion,
    },
}

/// An ISO 3166-1 alpha-2 country code, upper case: `JP`, `US`.
///
/// Only the shape is checked here; whether we sell there is the price book's question.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BillingCountry([u8; 2]);

impl BillingCountry {
    /// The code as text, e.g. `"JP"`.
    pub fn as_str(&self) -> &str {
        // Only ASCII letters are ever stored, so this never fails.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for BillingCountry {
    type Err = CodeError;

    /// Accepts either case (`"jp"`) and stores upper case, the ISO form.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        match code.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => Ok(BillingCountry([
                a.to_ascii_uppercase(),
                b.to_ascii_uppercase(),
            ])),
            _ => Err(CodeError::BadCountry(code.to_owned())),
        }
    }
}

impl TryFrom<String> for BillingCountry {
    type Error = CodeError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        code.parse()
    }
}

impl From<BillingCountry> for String {
    fn from(country: BillingCountry) -> Self {
        country.as_str().to_owned()
    }
}

impl fmt::Display for BillingCountry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BillingCountry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BillingCountry({})", self.as_str())
    }
}

/// Longest ISO 3166-2 subdivision part (after the hyphen).
const MAX_SUBDIVISION_LEN: usize = 3;

/// An ISO 3166-2 subdivision code, upper case: `US-AL`, `US-MS`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BillingRegion {
    country: BillingCountry,
    /// Length of the subdivision part.
    len: u8,
    /// `CC-XXX` kept whole so `as_str` can borrow it; bytes past the code are zero.
    text: [u8; 2 + 1 + MAX_SUBDIVISION_LEN],
}

impl BillingRegion {
    /// The country the region belongs to: `US` for `US-AL`.
    pub fn country(&self) -> BillingCountry {
        self.country
    }

    /// The part after the hyphen: `AL` for `US-AL`.
    pub fn subdivision(&self) -> &str {
        std::str::from_utf8(&self.text[3..3 + usize::from(self.len)]).unwrap_or_default()
    }

    /// The whole code, e.g. `"US-AL"`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..3 + usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for BillingRegion {
    type Err = CodeError;

    /// Accepts either case (`"us-al"`) and stores upper case.
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let bad = || CodeError::BadRegion(code.to_owned());
        let (country, subdivision) = code.split_once('-').ok_or_else(bad)?;
        let country: BillingCountry = country.parse().map_err(|_| bad())?;
        let sub = subdivision.as_bytes();
        if sub.is_empty()
            || sub.len() > MAX_SUBDIVISION_LEN
            || !sub.iter().all(u8::is_ascii_alphanumeric)
        {
            return Err(bad());
        }
        let mut region = BillingRegion {
            country,
            len: sub.len() as u8,
            text: [0; 2 + 1 + MAX_SUBDIVISION_LEN],
        };
        region.text[..2].copy_from_slice(&country.0);
        region.text[2] = b'-';
        for (slot, byte) in region.text[3..].iter_mut().zip(sub) {
            *slot = byte.to_ascii_uppercase();
        }
        Ok(region)
    }
}

impl TryFrom<String> for BillingRegion {
    type Error = CodeError;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        code.parse()
    }
}

impl From<BillingRegion> for String {
    fn from(region: BillingRegion) -> Self {
        region.as_str().to_owned()
    }
}

impl fmt::Display for BillingRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for BillingRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BillingRegion({})", self.as_str())
    }
}

/// Where a buyer is billed: a country and, where it matters, a region of that same country.
///
/// Building one is how the edge checks that the two claims agree, so the rules never see a
/// `KR` buyer with a `US-MS` region.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct BillingLocation {
    country: BillingCountry,
    region: Option<BillingRegion>,
}

/// The countries whose rules differ by region (minimum ages, sales tax), so a buyer billed there
/// must name their region: the price book's `region_required`, kept as a list so reading a
/// caller's claims does not load the whole book (a test keeps the two equal).
pub const REGION_REQUIRED: &[&str] = &["CA", "US"];

impl BillingCountry {
    /// Whether a buyer billed here must name their region ([`REGION_REQUIRED`]).
    pub fn region_required(self) -> bool {
        REGION_REQUIRED.contains(&self.as_str())
    }
}

/// `JP` (a country) or `US-WA` (a region, within its country).
impl FromStr for BillingLocation {
    type Err = CodeError;
    fn from_str(text: &str) -> Result<Self, CodeError> {
        if text.contains('-') {
            let region: BillingRegion = text.parse()?;
            Ok(BillingLocation {
                country: region.country(),
                region: Some(region),
            })
        } else {
            Ok(text.parse::<BillingCountry>()?.into())
        }
    }
}

/// A country alone, where no region is known or needed.
impl From<BillingCountry> for BillingLocation {
    fn from(country: BillingCountry) -> Self {
        BillingLocation {
            country,
            region: None,
        }
    }
}

impl BillingLocation {
    /// Pairs a country with an optional region, rejecting a region of another country.
    pub fn new(
        country: BillingCountry,
        region: Option<BillingRegion>,
    ) -> Result<BillingLocation, CodeError> {
        match region {
            Some(region) if region.country() != country => {
                Err(CodeError::RegionNotInCountry { country, region })
            }
            _ => Ok(BillingLocation { country, region }),
        }
    }

    pub fn country(&self) -> BillingCountry {
        self.country
    }

    pub fn region(&self) -> Option<BillingRegion> {
        self.region
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_codes_are_two_letters_stored_upper_case() {
        assert_eq!("jp".parse::<BillingCountry>().unwrap().as_str(), "JP");
        assert_eq!("US".parse::<BillingCountry>().unwrap().to_string(), "US");
        for bad in ["", "J", "JPN", "J1", "日本", "U S"] {
            assert_eq!(
                bad.parse::<BillingCountry>(),
                Err(CodeError::BadCountry(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn region_codes_keep_their_country_and_subdivision() {
        let region: BillingRegion = "us-al".parse().unwrap();
        assert_eq!(region.as_str(), "US-AL");
        assert_eq!(region.country().as_str(), "US");
        assert_eq!(region.subdivision(), "AL");
        assert_eq!(
            "FR-75C".parse::<BillingRegion>().unwrap().as_str(),
            "FR-75C"
        );
        assert_eq!("GB-W".parse::<BillingRegion>().unwrap().as_str(), "GB-W");
    }

    #[test]
    fn malformed_region_codes_are_rejected() {
        for bad in ["US", "US-", "-AL", "USA-AL", "US-ALAB", "US-A L", "US_AL"] {
            assert_eq!(
                bad.parse::<BillingRegion>(),
                Err(CodeError::BadRegion(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_region_of_another_country_does_not_make_a_location() {
        let kr: BillingCountry = "KR".parse().unwrap();
        let us_ms: BillingRegion = "US-MS".parse().unwrap();
        assert_eq!(
            BillingLocation::new(kr, Some(us_ms)),
            Err(CodeError::RegionNotInCountry {
                country: kr,
                region: us_ms
            })
        );
        let us: BillingCountry = "US".parse().unwrap();
        assert_eq!(
            BillingLocation::new(us, Some(us_ms)).unwrap().region(),
            Some(us_ms)
        );
    }

    #[test]
    fn codes_travel_as_json_strings() {
        let region: BillingRegion = "US-NE".parse().unwrap();
        assert_eq!(serde_json::to_string(&region).unwrap(), r#""US-NE""#);
        assert_eq!(
            serde_json::from_str::<BillingRegion>(r#""US-NE""#).unwrap(),
            region
        );
        assert!(serde_json::from_str::<BillingCountry>(r#""USA""#).is_err());
    }
}
