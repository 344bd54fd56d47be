//! Money: a decimal amount tied to an ISO 4217 currency and its minor units. Never a float.
//!
//! An amount always carries exactly its currency's minor digits ("7.49", "160", "2.500"), so two
//! equal amounts print the same. Arithmetic checks the currency and overflow; rounding is never
//! implicit: the caller names the strategy.

use std::fmt;
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency the price book uses, with its number of minor units.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(into = "&'static str")]
pub struct Currency {
    code: &'static str,
    minor_units: u32,
}

/// The currencies we can price in. Minor units from ISO 4217 (IDR has 2 there, though cash has none).
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("IDR", 2),
    ("INR", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MXN", 2),
    ("NOK", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("THB", 2),
    ("TND", 3),
    ("TRY", 2),
    ("USD", 2),
    ("VND", 0),
];

/// A currency code we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency code {0:?}")]
pub struct UnknownCurrency(pub String);

impl Currency {
    /// US dollars, the currency creator payouts are valued in.
    pub const USD: Currency = Currency {
        code: "USD",
        minor_units: 2,
    };

    /// The ISO 4217 alphabetic code, e.g. `"JPY"`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// Digits after the decimal point: 0 for JPY, 2 for USD, 3 for KWD.
    pub fn minor_units(self) -> u32 {
        self.minor_units
    }

    /// The smallest representable amount: 1, 0.01 or 0.001.
    pub fn smallest_unit(self) -> Decimal {
        Decimal::new(1, self.minor_units)
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        CURRENCIES
            .iter()
            .find(|(known, _)| *known == code)
            .map(|&(code, minor_units)| Currency { code, minor_units })
            .ok_or_else(|| UnknownCurrency(code.to_owned()))
    }
}

impl TryFrom<String> for Currency {
    type Error = UnknownCurrency;
    fn try_from(code: String) -> Result<Self, Self::Error> {
        code.parse()
    }
}

// By hand: the derive would demand `'de: 'static` (for the `&'static str` field, even behind
// `try_from`), so a currency could only be read from `'static` input.
impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = String::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

impl From<Currency> for &'static str {
    fn from(currency: Currency) -> Self {
        currency.code
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// Why an amount could not be made into [`Money`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The amount has more decimals than the currency has minor units.
    #[error("{amount} has more than {minor_units} decimals for {currency}")]
    TooPrecise {
        amount: Decimal,
        currency: Currency,
        minor_units: u32,
    },
    /// Adding or subtracting two different currencies.
    #[error("currency mismatch: {0} and {1}")]
    CurrencyMismatch(Currency, Currency),
    /// The result does not fit a decimal.
    #[error("amount overflow")]
    Overflow,
}

/// An exact amount of one currency, always at the currency's scale.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Money {
    amount: Decimal,
    currency: Currency,
}

impl Money {
    /// An exact amount; rejects more decimals than the currency has (nothing is rounded silently).
    pub fn new(amount: Decimal, currency: Currency) -> Result<Self, MoneyError> {
        let mut normalized = amount.normalize();
        if normalized.scale() > currency.minor_units {
            return Err(MoneyError::TooPrecise {
                amount,
                currency,
                minor_units: currency.minor_units,
            });
        }
        normalized.rescale(currency.minor_units);
        Ok(Money {
            amount: normalized,
            currency,
        })
    }

    /// Rounds `amount` to the currency's minor units with the named strategy.
    pub fn rounded(amount: Decimal, currency: Currency, rounding: RoundingStrategy) -> Self {
        let mut amount = amount.round_dp_with_strategy(currency.minor_units, rounding);
        amount.rescale(currency.minor_units);
        Money { amount, currency }
    }

    /// Zero of a currency.
    pub fn zero(currency: Currency) -> Self {
        Money::rounded(Decimal::ZERO, currency, RoundingStrategy::ToZero)
    }

    /// An amount from an integer count of minor units (cents, yen, fils).
    pub fn from_minor_units(minor: i64, currency: Currency) -> Self {
        Money {
            amount: Decimal::new(minor, currency.minor_units),
            currency,
        }
    }

    /// Parses the wire form: a decimal string with at most the currency's minor digits.
    pub fn parse(amount: &str, currency: Currency) -> Result<Self, MoneyError> {
        let decimal = Decimal::from_str_exact(amount).map_err(|_| MoneyError::Overflow)?;
        Money::new(decimal, currency)
    }

    pub fn amount(self) -> Decimal {
        self.amount
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    /// The amount as an integer count of minor units; `None` if it does not fit an `i64`.
    pub fn minor_units(self) -> Option<i64> {
        let exact = self
            .amount
            .checked_mul(Decimal::from(10i64.pow(self.currency.minor_units)))?;
        i64::try_from(exact.normalize()).ok()
    }

    pub fn is_negative(self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, ..self })
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money { amount, ..self })
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }
}

/// Prints exactly the currency's minor digits, without the code: `7.49`, `160`, `2.500`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.amount)
    }
}

/// The stored and wire form of money: `{"currency": "JPY", "amount": "160"}`.
#[derive(Serialize, Deserialize)]
struct MoneyRepr {
    currency: String,
    amount: String,
}

impl Serialize for Money {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MoneyRepr {
            currency: self.currency.code.to_owned(),
            amount: self.to_string(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = MoneyRepr::deserialize(deserializer)?;
        let currency = repr.currency.parse().map_err(serde::de::Error::custom)?;
        Money::parse(&repr.amount, currency).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn cur(code: &str) -> Currency {
        code.parse().unwrap()
    }

    #[test]
    fn amounts_print_with_exactly_the_minor_digits() {
        assert_eq!(
            Money::new(dec!(7.49), cur("USD")).unwrap().to_string(),
            "7.49"
        );
        assert_eq!(
            Money::new(dec!(7.5), cur("EUR")).unwrap().to_string(),
            "7.50"
        );
        assert_eq!(
            Money::new(dec!(160), cur("JPY")).unwrap().to_string(),
            "160"
        );
        assert_eq!(
            Money::new(dec!(2.5), cur("KWD")).unwrap().to_string(),
            "2.500"
        );
    }

    #[test]
    fn more_decimals_than_the_currency_has_are_rejected_not_rounded() {
        assert!(matches!(
            Money::new(dec!(160.5), cur("JPY")),
            Err(MoneyError::TooPrecise { .. })
        ));
        assert!(Money::new(dec!(1.2345), cur("BHD")).is_err());
        assert!(Money::new(dec!(1.2300), cur("USD")).is_ok());
    }

    #[test]
    fn rounding_is_named_by_the_caller() {
        let up = Money::rounded(dec!(1.001), cur("USD"), RoundingStrategy::AwayFromZero);
        let even = Money::rounded(
            dec!(0.125),
            cur("USD"),
            RoundingStrategy::MidpointNearestEven,
        );
        assert_eq!(up.to_string(), "1.01");
        assert_eq!(even.to_string(), "0.12");
    }

    #[test]
    fn minor_units_are_exact_integers() {
        assert_eq!(
            Money::parse("2.500", cur("KWD")).unwrap().minor_units(),
            Some(2500)
        );
        assert_eq!(
            Money::parse("160", cur("JPY")).unwrap().minor_units(),
            Some(160)
        );
        assert_eq!(Money::from_minor_units(749, cur("USD")).to_string(), "7.49");
    }

    #[test]
    fn different_currencies_do_not_add() {
        let usd = Money::parse("1.00", cur("USD")).unwrap();
        let eur = Money::parse("1.00", cur("EUR")).unwrap();
        assert_eq!(
            usd.checked_add(eur),
            Err(MoneyError::CurrencyMismatch(cur("USD"), cur("EUR")))
        );
    }

    #[test]
    fn the_usd_constant_is_the_listed_usd() {
        assert_eq!(Currency::USD, cur("USD"));
    }

    #[test]
    fn serde_round_trips_as_strings() {
        let m = Money::parse("2.5", cur("BHD")).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, r#"{"currency":"BHD","amount":"2.500"}"#);
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert!("XXX".parse::<Currency>().is_err());
    }

    #[test]
    fn a_currency_reads_from_short_lived_input() {
        let json = String::from(r#""KWD""#);
        assert_eq!(serde_json::from_str::<Currency>(&json).unwrap(), cur("KWD"));
        assert!(serde_json::from_str::<Currency>(r#""XXX""#).is_err());
    }
}
