//! The price book: versioned pricing and age data (`data/price_book.json`), parsed and checked once.
//!
//! The file is the single source of truth for what a coin costs where. It is embedded in the
//! binary ([`PriceBook::embedded`]) so every function of one deployment prices from the same
//! version, and every quote carries that version. Loading validates every entry and computes
//! every fixed package's price in every country and channel up front: a bad book fails at start
//! with a message naming the entry, never at a customer's checkout, and a package quote is then
//! a lookup.
//!
//! Conventions the file follows (each checked here):
//! - `coin_price` is the web price of one coin as shown to the buyer, in the country's currency:
//!   tax included where `tax_inclusive` is true, before tax otherwise.
//! - `rounding` is the local price-charming convention, see [`Rounding`].
//! - `bonus_coins` are given as whole coins, so no rounding hides in them (1%, 2%, 3% and 5% on
//!   the four largest packages in the shipped book).
//! - `jurisdictions` lists only the places whose minimum age differs from `default_minimum_age`.
//!
//! Every price must net at least what its coins pay out once gifted, at the floor exchange rates of
//! `data/floor_rates.json`: [`crate::economics`] checks it (a test, and `coinctl economics`).

use std::fmt;
use std::sync::{Arc, LazyLock};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::country::{BillingCountry, BillingRegion};
use crate::money::Currency;
use crate::pricing::{Channel, CustomBounds, PackageId, Price, Rounding};

/// The price book shipped with this build.
const EMBEDDED_JSON: &str = include_str!("../data/price_book.json");

static EMBEDDED: LazyLock<PriceBook> = LazyLock::new(|| {
    // A test (`the_embedded_price_book_is_valid`) loads this same text, so a bad book fails CI
    // rather than a cold start.
    PriceBook::from_json(EMBEDDED_JSON)
        .unwrap_or_else(|error| panic!("the embedded price book is invalid: {error}"))
});

/// Minimum ages outside this range are taken for typos (an `180` for `18`).
const PLAUSIBLE_MINIMUM_AGES: std::ops::RangeInclusive<u32> = 13..=30;

/// A tax rate at or above this is taken for a typo (`19` for `0.19`).
const MAX_TAX_RATE: Decimal = Decimal::ONE;

/// Bonus coins above this share of a package's coins are taken for a typo.
const MAX_BONUS_PERCENT: u64 = 50;

/// The version of a price book, e.g. `"2026-11-01"`; cheap to clone into every quote.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct PriceBookVersion(Arc<str>);

impl PriceBookVersion {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<String> for PriceBookVersion {
    fn from(version: String) -> Self {
        PriceBookVersion(version.into())
    }
}

impl From<PriceBookVersion> for String {
    fn from(version: PriceBookVersion) -> Self {
        version.0.as_ref().to_owned()
    }
}

impl fmt::Display for PriceBookVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A fixed package: coins bought plus bonus coins given, and the product ids the apps sell it
/// under in their stores.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Package {
    pub package_id: PackageId,
    pub coins: u64,
    pub bonus_coins: u64,
    pub app_store_product_id: String,
    pub google_play_product_id: String,
}

impl Package {
    /// The id the store of `channel` sells it under (none on the web).
    pub fn store_product_id(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Web => None,
            Channel::Ios => Some(&self.app_store_product_id),
            Channel::Android => Some(&self.google_play_product_id),
        }
    }
}

/// How one billing country is priced.
#[derive(Clone, Debug)]
pub struct CountryPricing {
    pub(crate) country: BillingCountry,
    /// ISO 3166-1 alpha-3, as the App Store names storefronts.
    pub(crate) alpha3: String,
    pub(crate) currency: Currency,
    pub(crate) tax_rate: Decimal,
    pub(crate) tax_inclusive: bool,
    pub(crate) coin_price: Decimal,
    pub(crate) rounding: Rounding,
    /// Every fixed package's price, computed at load: `package_prices[channel][package index]`.
    pub(crate) package_prices: [Vec<Price>; Channel::ALL.len()],
}

impl CountryPricing {
    pub fn country(&self) -> BillingCountry {
        self.country
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// The tax rate as a fraction: `0.19` for 19%.
    pub fn tax_rate(&self) -> Decimal {
        self.tax_rate
    }
    /// The tax rate in percent, without trailing zeros: `19`, `8.1`, `0`.
    pub fn tax_percent(&self) -> Decimal {
        (self.tax_rate * Decimal::ONE_HUNDRED).normalize()
    }
    /// Whether displayed prices include tax (the charmed price is the gross).
    pub fn tax_inclusive(&self) -> bool {
        self.tax_inclusive
    }
    /// The web price of one coin, as displayed (see the module notes).
    pub fn coin_price(&self) -> Decimal {
        self.coin_price
    }
    pub fn rounding(&self) -> Rounding {
        self.rounding
    }
}

/// Why a price book was refused. Each message names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceBookError {
    /// The text is not JSON of the expected shape (unknown or missing fields included).
    #[error("price book is not valid: {0}")]
    Malformed(String),
    /// `version` is blank.
    #[error("price book version is empty")]
    EmptyVersion,
    /// `store_fee_rate` is not in `[0, 1)`.
    #[error("store_fee_rate {0} must be at least 0 and below 1")]
    StoreFeeOutOfRange(Decimal),
    /// `custom_coins` bounds are empty or start at zero.
    #[error(
        "custom_coins: min_coins {min_coins} must be at least 1 and at most max_coins {max_coins}"
    )]
    CustomBoundsInvalid { min_coins: u64, max_coins: u64 },
    /// No fixed packages at all.
    #[error("packages: the list is empty")]
    NoPackages,
    /// No countries at all.
    #[error("countries: the list is empty")]
    NoCountries,
    /// `default_minimum_age` is implausible.
    #[error("default_minimum_age {0} is outside {min}..={max}", min = PLAUSIBLE_MINIMUM_AGES.start(), max = PLAUSIBLE_MINIMUM_AGES.end())]
    DefaultMinimumAgeOutOfRange(u32),
    /// One entry of a list is wrong.
    #[error("price book entry {entry}: {problem}")]
    Entry {
        entry: String,
        problem: EntryProblem,
    },
}

/// What is wrong with one entry of the price book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    #[error("{0:?} is not a valid code")]
    BadCode(String),
    #[error("listed twice")]
    Duplicate,
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
    #[error("tax_rate {0} must be at least 0 and below 1")]
    TaxRateOutOfRange(Decimal),
    #[error("coin_price {0} must be above 0")]
    CoinPriceNotPositive(Decimal),
    #[error("charm rounding needs a currency with 2 minor units, {0} has {1}")]
    CharmNeedsTwoMinorUnits(Currency, u32),
    #[error("rounding step {step} must be above 0 and a whole number of {currency} minor units")]
    BadRoundingStep { step: Decimal, currency: Currency },
    #[error("{0:?} is not a package id (lower-case snake_case, at most 23 characters)")]
    BadPackageId(String),
    #[error(
        "{0:?} is not a store product id (letters, digits, `.` and `_`), or another package has it"
    )]
    BadStoreProductId(String),
    #[error("a package needs at least 1 coin")]
    ZeroCoins,
    #[error("coins plus bonus_coins does not fit a coin count")]
    TooManyCoins,
    #[error("bonus_coins {bonus_coins} is more than {MAX_BONUS_PERCENT}% of {coins} coins")]
    BonusTooLarge { bonus_coins: u64, coins: u64 },
    #[error("minimum_age {0} is outside {min}..={max}", min = PLAUSIBLE_MINIMUM_AGES.start(), max = PLAUSIBLE_MINIMUM_AGES.end())]
    MinimumAgeOutOfRange(u32),
    #[error("no country entry for {0}")]
    UnknownCountry(BillingCountry),
    #[error("{0} shows prices tax-inclusive: a regional rate would change its charmed prices")]
    RegionalTaxOnInclusiveCountry(BillingCountry),
    #[error("the price of {coins} coins on {channel} cannot be computed: {reason}")]
    Unpriceable {
        coins: u64,
        channel: Channel,
        reason: String,
    },
}

/// The validated price book.
#[derive(Clone, Debug)]
pub struct PriceBook {
    version: PriceBookVersion,
    store_fee_rate: Decimal,
    custom: CustomBounds,
    packages: Vec<Package>,
    /// Sorted by country code for binary search.
    countries: Vec<CountryPricing>,
    default_minimum_age: u32,
    /// Sorted by code.
    country_minimum_ages: Vec<(BillingCountry, u32)>,
    /// Sorted by code.
    region_minimum_ages: Vec<(BillingRegion, u32)>,
    /// The tax rate of a region where it differs from its country's, sorted by code.
    regional_tax: Vec<(BillingRegion, Decimal)>,
}

// The file's shape. Unknown fields are refused so a misspelt key ("tax_rat") cannot be ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    version: String,
    store_fee_rate: Decimal,
    custom_coins: RawCustom,
    packages: Vec<RawPackage>,
    countries: Vec<RawCountry>,
    default_minimum_age: u32,
    #[serde(default)]
    jurisdictions: Vec<RawJurisdiction>,
    #[serde(default)]
    regional_tax: Vec<RawRegionalTax>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCustom {
    min_coins: u64,
    max_coins: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackage {
    package_id: String,
    coins: u64,
    bonus_coins: u64,
    app_store_product_id: String,
    google_play_product_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCountry {
    country: String,
    alpha3: String,
    currency: String,
    tax_rate: Decimal,
    tax_inclusive: bool,
    coin_price: Decimal,
    rounding: Rounding,
    /// Free text for people reading the file (where a rate comes from); not used.
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJurisdiction {
    jurisdiction: String,
    minimum_age: u32,
}

/// The sales tax a buyer billed in `region` pays instead of the country's rate.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegionalTax {
    region: String,
    tax_rate: Decimal,
    #[serde(default)]
    #[allow(dead_code)]
    note: Option<String>,
}

fn entry_error(list: &str, index: usize, name: &str, problem: EntryProblem) -> PriceBookError {
    PriceBookError::Entry {
        entry: format!("{list}[{index}] ({name:?})"),
        problem,
    }
}

impl PriceBook {
    /// The price book compiled into this binary, parsed and validated on first use.
    pub fn embedded() -> &'static PriceBook {
        &EMBEDDED
    }

    /// Parses and validates a price book, computing every fixed package price.
    pub fn from_json(text: &str) -> Result<PriceBook, PriceBookError> {
        let raw: RawBook =
            serde_json::from_str(text).map_err(|e| PriceBookError::Malformed(e.to_string()))?;

        if raw.version.trim().is_empty() {
            return Err(PriceBookError::EmptyVersion);
        }
        if raw.store_fee_rate < Decimal::ZERO || raw.store_fee_rate >= Decimal::ONE {
            return Err(PriceBookError::StoreFeeOutOfRange(raw.store_fee_rate));
        }
        let custom = CustomBounds {
            min_coins: raw.custom_coins.min_coins,
            max_coins: raw.custom_coins.max_coins,
        };
        if custom.min_coins == 0 || custom.min_coins > custom.max_coins {
            return Err(PriceBookError::CustomBoundsInvalid {
                min_coins: custom.min_coins,
                max_coins: custom.max_coins,
            });
        }
        if !PLAUSIBLE_MINIMUM_AGES.contains(&raw.default_minimum_age) {
            return Err(PriceBookError::DefaultMinimumAgeOutOfRange(
                raw.default_minimum_age,
            ));
        }

        let packages = validate_packages(&raw.packages)?;

        if raw.countries.is_empty() {
            return Err(PriceBookError::NoCountries);
        }
        let mut countries = Vec::with_capacity(raw.countries.len());
        for (index, entry) in raw.countries.iter().enumerate() {
            let fail = |problem| entry_error("countries", index, &entry.country, problem);
            let country: BillingCountry = entry
                .country
                .parse()
                .map_err(|_| fail(EntryProblem::BadCode(entry.country.clone())))?;
            if countries
                .iter()
                .any(|known: &CountryPricing| known.country == country)
            {
                return Err(fail(EntryProblem::Duplicate));
            }
            let currency: Currency = entry
                .currency
                .parse()
                .map_err(|_| fail(EntryProblem::UnknownCurrency(entry.currency.clone())))?;
            if entry.tax_rate < Decimal::ZERO || entry.tax_rate >= MAX_TAX_RATE {
                return Err(fail(EntryProblem::TaxRateOutOfRange(entry.tax_rate)));
            }
            if entry.coin_price <= Decimal::ZERO {
                return Err(fail(EntryProblem::CoinPriceNotPositive(entry.coin_price)));
            }
            entry.rounding.validate(currency).map_err(fail)?;

            let alpha3_taken = countries
                .iter()
                .any(|known: &CountryPricing| known.alpha3 == entry.alpha3);
            let alpha3_valid =
                entry.alpha3.len() == 3 && entry.alpha3.bytes().all(|b| b.is_ascii_uppercase());
            if !alpha3_valid || alpha3_taken {
                return Err(fail(EntryProblem::BadCode(entry.alpha3.clone())));
            }
            let mut pricing = CountryPricing {
                country,
                alpha3: entry.alpha3.clone(),
                currency,
                tax_rate: entry.tax_rate,
                tax_inclusive: entry.tax_inclusive,
                coin_price: entry.coin_price,
                rounding: entry.rounding,
                package_prices: Default::default(),
            };
            for channel in Channel::ALL {
                let mut prices = Vec::with_capacity(packages.len());
                for package in &packages {
                    let price = pricing
                        .price_for(package.coins, channel, raw.store_fee_rate)
                        .map_err(|error| {
                            fail(EntryProblem::Unpriceable {
                                coins: package.coins,
                                channel,
                                reason: error.to_string(),
                            })
                        })?;
                    prices.push(price);
                }
                pricing.package_prices[channel.index()] = prices;
            }
            // The largest custom amount must be priceable too, so no quote can fail on arithmetic.
            pricing
                .price_for(custom.max_coins, Channel::Web, raw.store_fee_rate)
                .map_err(|error| {
                    fail(EntryProblem::Unpriceable {
                        coins: custom.max_coins,
                        channel: Channel::Web,
                        reason: error.to_string(),
                    })
                })?;
            countries.push(pricing);
        }
        countries.sort_by_key(|pricing| pricing.country);

        let (country_minimum_ages, region_minimum_ages) =
            validate_jurisdictions(&raw.jurisdictions)?;
        let regional_tax = validate_regional_tax(&raw.regional_tax, &countries)?;

        Ok(PriceBook {
            version: PriceBookVersion(raw.version.into()),
            store_fee_rate: raw.store_fee_rate,
            custom,
            packages,
            countries,
            default_minimum_age: raw.default_minimum_age,
            country_minimum_ages,
            region_minimum_ages,
            regional_tax,
        })
    }

    /// The tax rate a buyer billed at `location` pays: their region's where it has its own,
    /// else their country's.
    pub(crate) fn tax_rate(
        &self,
        pricing: &CountryPricing,
        region: Option<BillingRegion>,
    ) -> Decimal {
        region
            .and_then(|region| {
                self.regional_tax
                    .binary_search_by_key(&region, |&(code, _)| code)
                    .ok()
            })
            .map_or(pricing.tax_rate, |index| self.regional_tax[index].1)
    }

    /// Whether the rules for buyers billed in `country` differ by region (a minimum age or a tax
    /// rate of their own), so that the region must be known.
    pub fn region_required(&self, country: BillingCountry) -> bool {
        let in_country = |region: &BillingRegion| region.country() == country;
        self.region_minimum_ages
            .iter()
            .any(|(region, _)| in_country(region))
            || self
                .regional_tax
                .iter()
                .any(|(region, _)| in_country(region))
    }

    pub fn version(&self) -> &PriceBookVersion {
        &self.version
    }

    /// The app stores' commission, grossed up into ios and android prices: `0.30`.
    pub fn store_fee_rate(&self) -> Decimal {
        self.store_fee_rate
    }

    /// The coin amounts a web buyer may choose freely.
    pub fn custom_bounds(&self) -> CustomBounds {
        self.custom
    }

    /// The fixed packages, smallest first.
    pub fn packages(&self) -> &[Package] {
        &self.packages
    }

    /// Every country we sell in, by code.
    pub fn countries(&self) -> &[CountryPricing] {
        &self.countries
    }

    /// How `country` is priced, if we sell there.
    pub fn country(&self, country: BillingCountry) -> Option<&CountryPricing> {
        self.countries
            .binary_search_by_key(&country, |pricing| pricing.country)
            .ok()
            .map(|index| &self.countries[index])
    }

    /// The package the store of `channel` sells as `product_id`.
    pub fn package_for_store_product(
        &self,
        channel: Channel,
        product_id: &str,
    ) -> Option<&Package> {
        self.packages
            .iter()
            .find(|package| package.store_product_id(channel) == Some(product_id))
    }

    /// The billing country of an App Store storefront (ISO 3166-1 alpha-3), if we sell there.
    pub fn country_of_storefront(&self, alpha3: &str) -> Option<BillingCountry> {
        self.countries
            .iter()
            .find(|pricing| pricing.alpha3 == alpha3)
            .map(|pricing| pricing.country)
    }

    pub(crate) fn package_index(&self, package_id: PackageId) -> Option<usize> {
        self.packages
            .iter()
            .position(|package| package.package_id == package_id)
    }

    /// The minimum age to buy, send or receive gifts for someone billed in `country` (and
    /// `region`): the stricter of the two entries, the default where neither is listed.
    ///
    /// Taking the stricter also makes a region of another country (a caller's mistake that
    /// [`crate::country::BillingLocation`] prevents) fail safe rather than lower the age.
    pub fn minimum_age(&self, country: BillingCountry, region: Option<BillingRegion>) -> u32 {
        let country_age = self
            .country_minimum_ages
            .binary_search_by_key(&country, |&(code, _)| code)
            .map_or(self.default_minimum_age, |index| {
                self.country_minimum_ages[index].1
            });
        let region_age = region
            .and_then(|region| {
                self.region_minimum_ages
                    .binary_search_by_key(&region, |&(code, _)| code)
                    .ok()
            })
            .map(|index| self.region_minimum_ages[index].1);
        region_age.map_or(country_age, |region_age| region_age.max(country_age))
    }
}

fn validate_packages(raw: &[RawPackage]) -> Result<Vec<Package>, PriceBookError> {
    if raw.is_empty() {
        return Err(PriceBookError::NoPackages);
    }
    let mut packages: Vec<Package> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let fail = |problem| entry_error("packages", index, &entry.package_id, problem);
        let package_id: PackageId = entry
            .package_id
            .parse()
            .map_err(|_| fail(EntryProblem::BadPackageId(entry.package_id.clone())))?;
        if packages.iter().any(|known| known.package_id == package_id) {
            return Err(fail(EntryProblem::Duplicate));
        }
        if entry.coins == 0 {
            return Err(fail(EntryProblem::ZeroCoins));
        }
        if entry.coins.checked_add(entry.bonus_coins).is_none() {
            return Err(fail(EntryProblem::TooManyCoins));
        }
        // Compared as `bonus * 100 <= coins * 50` in u128 so no input can overflow.
        if u128::from(entry.bonus_coins) * 100
            > u128::from(entry.coins) * u128::from(MAX_BONUS_PERCENT)
        {
            return Err(fail(EntryProblem::BonusTooLarge {
                bonus_coins: entry.bonus_coins,
                coins: entry.coins,
            }));
        }
        let store_products = [
            (Channel::Ios, &entry.app_store_product_id),
            (Channel::Android, &entry.google_play_product_id),
        ];
        for (channel, product) in store_products {
            let taken = packages
                .iter()
                .any(|known| known.store_product_id(channel) == Some(product.as_str()));
            if taken || !is_store_product_id(product) {
                return Err(fail(EntryProblem::BadStoreProductId(product.clone())));
            }
        }
        packages.push(Package {
            package_id,
            coins: entry.coins,
            bonus_coins: entry.bonus_coins,
            app_store_product_id: entry.app_store_product_id.clone(),
            google_play_product_id: entry.google_play_product_id.clone(),
        });
    }
    packages.sort_by_key(|package| package.coins);
    Ok(packages)
}

/// Store product ids: what both stores accept (letters, digits, periods, underscores).
fn is_store_product_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_')
}

type MinimumAges = (Vec<(BillingCountry, u32)>, Vec<(BillingRegion, u32)>);

fn validate_regional_tax(
    raw: &[RawRegionalTax],
    countries: &[CountryPricing],
) -> Result<Vec<(BillingRegion, Decimal)>, PriceBookError> {
    let mut rates: Vec<(BillingRegion, Decimal)> = Vec::with_capacity(raw.len());
    for (index, entry) in raw.iter().enumerate() {
        let fail = |problem| entry_error("regional_tax", index, &entry.region, problem);
        let region: BillingRegion = entry
            .region
            .parse()
            .map_err(|_| fail(EntryProblem::BadCode(entry.region.clone())))?;
        let country = countries
            .iter()
            .find(|pricing| pricing.country == region.country())
            .ok_or_else(|| fail(EntryProblem::UnknownCountry(region.country())))?;
        if country.tax_inclusive {
            return Err(fail(EntryProblem::RegionalTaxOnInclusiveCountry(
                country.country,
            )));
        }
        if entry.tax_rate < Decimal::ZERO || entry.tax_rate >= MAX_TAX_RATE {
            return Err(fail(EntryProblem::TaxRateOutOfRange(entry.tax_rate)));
        }
        if rates.iter().any(|&(code, _)| code == region) {
            return Err(fail(EntryProblem::Duplicate));
        }
        rates.push((region, entry.tax_rate));
    }
    rates.sort_by_key(|&(code, _)| code);
    Ok(rates)
}

fn validate_jurisdictions(raw: &[RawJurisdiction]) -> Result<MinimumAges, PriceBookError> {
    let mut countries: Vec<(BillingCountry, u32)> = Vec::new();
    let mut regions: Vec<(BillingRegion, u32)> = Vec::new();
    for (index, entry) in raw.iter().enumerate() {
        let fail = |problem| entry_error("jurisdictions", index, &entry.jurisdiction, problem);
        if !PLAUSIBLE_MINIMUM_AGES.contains(&entry.minimum_age) {
            return Err(fail(EntryProblem::MinimumAgeOutOfRange(entry.minimum_age)));
        }
        let duplicate = if entry.jurisdiction.contains('-') {
            let region: BillingRegion = entry
                .jurisdiction
                .parse()
                .map_err(|_| fail(EntryProblem::BadCode(entry.jurisdiction.clone())))?;
            let known = regions.iter().any(|&(code, _)| code == region);
            regions.push((region, entry.minimum_age));
            known
        } else {
            let country: BillingCountry = entry
                .jurisdiction
                .parse()
                .map_err(|_| fail(EntryProblem::BadCode(entry.jurisdiction.clone())))?;
            let known = countries.iter().any(|&(code, _)| code == country);
            countries.push((country, entry.minimum_age));
            known
        };
        if duplicate {
            return Err(fail(EntryProblem::Duplicate));
        }
    }
    countries.sort_by_key(|&(code, _)| code);
    regions.sort_by_key(|&(code, _)| code);
    Ok((countries, regions))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> BillingCountry {
        text.parse().unwrap()
    }

    /// The shipped book with one textual change, which must be present.
    fn book_with(from: &str, to: &str) -> Result<PriceBook, PriceBookError> {
        assert!(EMBEDDED_JSON.contains(from), "test edit {from:?} not found");
        PriceBook::from_json(&EMBEDDED_JSON.replacen(from, to, 1))
    }

    fn error_text(from: &str, to: &str) -> String {
        book_with(from, to)
            .expect_err("the edited book should be refused")
            .to_string()
    }

    #[test]
    fn regions_are_required_where_rules_differ_by_region() {
        let book = PriceBook::embedded();
        assert!(book.region_required(code("US")));
        assert!(book.region_required(code("CA")));
        assert!(!book.region_required(code("JP")));
        let required: Vec<String> = book
            .countries()
            .iter()
            .filter(|pricing| book.region_required(pricing.country()))
            .map(|pricing| pricing.country().to_string())
            .collect();
        assert_eq!(required, crate::country::REGION_REQUIRED);
    }

    #[test]
    fn a_regional_rate_is_refused_where_prices_include_tax() {
        let text = EMBEDDED_JSON.replacen(r#""region": "CA-ON""#, r#""region": "JP-13""#, 1);
        assert_eq!(
            PriceBook::from_json(&text).unwrap_err().to_string(),
            r#"price book entry regional_tax[33] ("JP-13"): JP shows prices tax-inclusive: a regional rate would change its charmed prices"#
        );
    }

    #[test]
    fn the_embedded_price_book_is_valid() {
        let book = PriceBook::from_json(EMBEDDED_JSON).unwrap();
        assert_eq!(book.version().as_str(), "2026-12-08");
        assert_eq!(PriceBook::embedded().version(), book.version());
    }

    #[test]
    fn the_book_covers_the_required_countries_and_currencies() {
        let book = PriceBook::embedded();
        assert!(book.countries().len() >= 25);
        for country in [
            "JP", "KR", "VN", "KW", "BH", "DE", "FR", "IT", "ES", "NL", "IE", "GB", "CH", "NO",
            "US", "CA", "IN", "BR", "MX", "ID", "TR", "AU", "SA", "AE", "PH", "TH",
        ] {
            assert!(book.country(code(country)).is_some(), "{country} missing");
        }
        let minor_units = |country: &str| {
            book.country(code(country))
                .unwrap()
                .currency()
                .minor_units()
        };
        assert_eq!(minor_units("JP"), 0);
        assert_eq!(minor_units("KW"), 3);
        assert_eq!(minor_units("US"), 2);
        assert!(!book.country(code("US")).unwrap().tax_inclusive());
        assert!(!book.country(code("CA")).unwrap().tax_inclusive());
        assert!(book.country(code("DE")).unwrap().tax_inclusive());
    }

    #[test]
    fn tax_rates_print_as_percentages() {
        let percent = |country| {
            PriceBook::embedded()
                .country(code(country))
                .unwrap()
                .tax_percent()
                .to_string()
        };
        assert_eq!(percent("DE"), "19");
        assert_eq!(percent("CH"), "8.1");
        assert_eq!(percent("BR"), "14.25");
        assert_eq!(percent("KW"), "0");
    }

    #[test]
    fn a_country_we_do_not_sell_in_is_absent() {
        assert!(PriceBook::embedded().country(code("ZZ")).is_none());
    }

    #[test]
    fn minimum_ages_come_from_the_jurisdiction_table() {
        let book = PriceBook::embedded();
        let region = |text: &str| Some(text.parse::<BillingRegion>().unwrap());
        assert_eq!(book.minimum_age(code("JP"), None), 18);
        assert_eq!(book.minimum_age(code("KR"), None), 19);
        assert_eq!(book.minimum_age(code("TH"), None), 20);
        assert_eq!(book.minimum_age(code("US"), None), 18);
        assert_eq!(book.minimum_age(code("US"), region("US-CA")), 18);
        assert_eq!(book.minimum_age(code("US"), region("US-AL")), 19);
        assert_eq!(book.minimum_age(code("US"), region("US-NE")), 19);
        assert_eq!(book.minimum_age(code("US"), region("US-MS")), 21);
    }

    #[test]
    fn a_mismatched_region_can_only_raise_the_minimum_age() {
        let book = PriceBook::embedded();
        let us_ms = Some("US-MS".parse().unwrap());
        assert_eq!(book.minimum_age(code("KR"), us_ms), 21);
        let us_ca = Some("US-CA".parse().unwrap());
        assert_eq!(book.minimum_age(code("TH"), us_ca), 20);
    }

    #[test]
    fn a_negative_tax_rate_is_refused_naming_the_country() {
        assert_eq!(
            error_text(
                r#""country": "DE", "alpha3": "DEU", "currency": "EUR", "tax_rate": "0.19""#,
                r#""country": "DE", "alpha3": "DEU", "currency": "EUR", "tax_rate": "-0.19""#
            ),
            r#"price book entry countries[4] ("DE"): tax_rate -0.19 must be at least 0 and below 1"#
        );
    }

    #[test]
    fn a_percentage_typed_as_a_whole_number_is_refused() {
        let text = error_text(
            r#""tax_rate": "0.10", "tax_inclusive": true, "coin_price": "1.57""#,
            r#""tax_rate": "10", "tax_inclusive": true, "coin_price": "1.57""#,
        );
        assert!(
            text.contains(r#"("JP")"#) && text.contains("tax_rate 10"),
            "{text}"
        );
    }

    #[test]
    fn an_unknown_currency_is_refused_naming_the_country() {
        let text = error_text(r#""currency": "KWD""#, r#""currency": "KWX""#);
        assert_eq!(
            text,
            r#"price book entry countries[16] ("KW"): unknown currency "KWX""#
        );
    }

    #[test]
    fn charm_rounding_in_a_zero_decimal_currency_is_refused() {
        let text = error_text(
            r#""coin_price": "1.57", "rounding": { "kind": "multiple", "step": "1" }"#,
            r#""coin_price": "1.57", "rounding": { "kind": "charm" }"#,
        );
        assert!(
            text.contains(r#"("JP")"#) && text.contains("JPY has 0"),
            "{text}"
        );
    }

    #[test]
    fn a_rounding_step_finer_than_the_currency_is_refused() {
        let text = error_text(r#""step": "10""#, r#""step": "0.5""#);
        assert!(
            text.contains(r#"("KR")"#) && text.contains("step 0.5"),
            "{text}"
        );
    }

    #[test]
    fn store_products_name_packages_and_storefronts_name_countries() {
        let book = PriceBook::embedded();
        let ios = book
            .package_for_store_product(Channel::Ios, "com.example.coins.pack700")
            .unwrap();
        assert_eq!(ios.package_id.as_str(), "coins_700");
        let android = book
            .package_for_store_product(Channel::Android, "pack_700")
            .unwrap();
        assert_eq!(android.package_id.as_str(), "coins_700");
        // Each store's ids are its own; the web sells none.
        assert!(
            book.package_for_store_product(Channel::Android, "com.example.coins.pack700")
                .is_none()
        );
        assert!(
            book.package_for_store_product(Channel::Web, "pack_700")
                .is_none()
        );
        assert_eq!(
            book.country_of_storefront("JPN"),
            Some("JP".parse().unwrap())
        );
        assert_eq!(
            book.country_of_storefront("USA"),
            Some("US".parse().unwrap())
        );
        assert_eq!(book.country_of_storefront("ATA"), None);
    }

    #[test]
    fn a_store_product_id_used_twice_is_refused() {
        let text = error_text(
            r#""google_play_product_id": "pack_350""#,
            r#""google_play_product_id": "pack_70""#,
        );
        assert!(
            text.contains(r#""pack_70" is not a store product id"#),
            "{text}"
        );
    }

    #[test]
    fn a_country_listed_twice_is_refused() {
        let text = error_text(r#""country": "FR""#, r#""country": "DE""#);
        assert_eq!(
            text,
            r#"price book entry countries[5] ("DE"): listed twice"#
        );
    }

    #[test]
    fn a_misspelt_field_is_refused_not_ignored() {
        let text = error_text(
            r#""tax_inclusive": false, "coin_price": "0.0106""#,
            r#""tax_inclusive": false, "coin_prize": "0.0106""#,
        );
        assert!(text.contains("coin_prize"), "{text}");
    }

    #[test]
    fn a_bad_package_is_refused_naming_it() {
        assert_eq!(
            error_text(
                r#""coins": 70, "bonus_coins": 0"#,
                r#""coins": 18446744073709551615, "bonus_coins": 1"#
            ),
            r#"price book entry packages[0] ("coins_70"): coins plus bonus_coins does not fit a coin count"#
        );
        assert_eq!(
            error_text(
                r#""coins": 17500, "bonus_coins": 875"#,
                r#""coins": 17500, "bonus_coins": 17500"#
            ),
            r#"price book entry packages[6] ("coins_17500"): bonus_coins 17500 is more than 50% of 17500 coins"#
        );
        assert_eq!(
            error_text(r#""package_id": "coins_70""#, r#""package_id": "Coins 70""#),
            r#"price book entry packages[0] ("Coins 70"): "Coins 70" is not a package id (lower-case snake_case, at most 23 characters)"#
        );
    }

    #[test]
    fn an_implausible_minimum_age_is_refused_naming_the_jurisdiction() {
        assert_eq!(
            error_text(
                r#""jurisdiction": "US-MS", "minimum_age": 21"#,
                r#""jurisdiction": "US-MS", "minimum_age": 210"#
            ),
            r#"price book entry jurisdictions[4] ("US-MS"): minimum_age 210 is outside 13..=30"#
        );
    }

    #[test]
    fn book_wide_settings_are_checked() {
        assert_eq!(
            book_with(r#""store_fee_rate": "0.30""#, r#""store_fee_rate": "1""#).unwrap_err(),
            PriceBookError::StoreFeeOutOfRange(Decimal::ONE)
        );
        assert_eq!(
            book_with(r#""min_coins": 30"#, r#""min_coins": 0"#).unwrap_err(),
            PriceBookError::CustomBoundsInvalid {
                min_coins: 0,
                max_coins: 2_500_000
            }
        );
        assert_eq!(
            book_with(r#""version": "2026-12-08""#, r#""version": " ""#).unwrap_err(),
            PriceBookError::EmptyVersion
        );
        assert!(matches!(
            PriceBook::from_json("{"),
            Err(PriceBookError::Malformed(_))
        ));
    }

    #[test]
    fn a_coin_price_too_large_to_compute_is_refused_at_load() {
        let text = error_text(
            r#""coin_price": "199""#,
            r#""coin_price": "79228162514264337593543950335""#,
        );
        assert!(
            text.contains(r#"("VN")"#) && text.contains("cannot be computed"),
            "{text}"
        );
    }
}
