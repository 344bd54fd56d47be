//! Quotes: what a number of coins costs a buyer, by billing country and sales channel.
//!
//! The price of `n` coins is worked out in four named steps:
//! 1. **Base**: `n × coin_price` of the buyer's country (the web display price of one coin).
//! 2. **Charm** ([`Rounding`]): rounded *up* to the local price convention, so a buyer never pays
//!    less than the base and prices look local (`7.49`, `¥1099`, `₩10,430`).
//! 3. **Store fee** (ios and android only): the charmed web price divided by `1 − store_fee_rate`
//!    (30% in the shipped book, so the app keeps what the web shop keeps after the store's cut),
//!    charmed again, and never below the web price.
//! 4. **Tax**: where prices are shown tax-inclusive the charmed amount is the gross and the tax is
//!    backed out of it (`gross × rate / (1 + rate)`); elsewhere it is the net and the tax is added
//!    on top (`net × rate`). Tax is rounded to the currency's minor units with [`TAX_ROUNDING`];
//!    the other part is the exact difference, so `net + tax = gross` to the last minor unit.
//!
//! Fixed packages are priced at load ([`crate::price_book`]); custom web amounts here, on request.

use std::fmt;
use std::str::FromStr;

use jiff::{SignedDuration, Timestamp};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::country::{BillingCountry, BillingLocation, BillingRegion};
use crate::money::{Currency, Money, MoneyError};
use crate::price_book::{CountryPricing, EntryProblem, PriceBook, PriceBookVersion};

/// How long a quote's price is honoured.
pub const QUOTE_TTL: SignedDuration = SignedDuration::from_mins(15);

/// Tax is rounded half away from zero, the commercial rounding most VAT and GST rules ask for.
pub const TAX_ROUNDING: RoundingStrategy = RoundingStrategy::MidpointAwayFromZero;

/// Where a purchase is made. Only the web shop sells custom amounts and avoids the store fee.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Web,
    Ios,
    Android,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Web, Channel::Ios, Channel::Android];

    /// Whether an app store takes a commission on this channel.
    pub fn has_store_fee(self) -> bool {
        !matches!(self, Channel::Web)
    }

    /// Whether buyers may choose any coin amount here (app stores only sell fixed products).
    pub fn allows_custom_amounts(self) -> bool {
        matches!(self, Channel::Web)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Ios => "ios",
            Channel::Android => "android",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// A word that is not a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (expected web, ios or android)")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|channel| channel.as_str() == text)
            .ok_or_else(|| UnknownChannel(text.to_owned()))
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Longest package id; ids are stored inline so a quote never allocates for one.
const MAX_PACKAGE_ID_LEN: usize = 23;

/// A fixed package's id, e.g. `coins_700`: lower-case snake_case, at most 23 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PackageId {
    len: u8,
    bytes: [u8; MAX_PACKAGE_ID_LEN],
}

/// A string that cannot be a package id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a package id (lower-case snake_case, at most 23 characters)")]
pub struct BadPackageId(pub String);

impl PackageId {
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this never fails.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl FromStr for PackageId {
    type Err = BadPackageId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() <= MAX_PACKAGE_ID_LEN
            && bytes.first().is_some_and(u8::is_ascii_lowercase)
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            return Err(BadPackageId(text.to_owned()));
        }
        let mut id = PackageId {
            len: bytes.len() as u8,
            bytes: [0; MAX_PACKAGE_ID_LEN],
        };
        id.bytes[..bytes.len()].copy_from_slice(bytes);
        Ok(id)
    }
}

impl TryFrom<String> for PackageId {
    type Error = BadPackageId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<PackageId> for String {
    fn from(id: PackageId) -> Self {
        id.as_str().to_owned()
    }
}

impl fmt::Display for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for PackageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageId({})", self.as_str())
    }
}

/// A local price convention ("price charming"). Every rule rounds **up**, so the charmed price is
/// never below the computed one, and is monotone, so more coins never cost less.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rounding {
    /// For 2-decimal currencies (USD, EUR, GBP, CAD, AUD, ...): the next price ending in 9, on a
    /// grid that widens with the amount so small prices are not marked up much:
    /// below 10 the next `x.x9` (0.79, 7.49); from 10 to 100 the next `.49` or `.99` (14.99);
    /// from 100 up the next `.99` (185.99).
    Charm,
    /// The next whole multiple of `step`, in major units: `1` for whole yen or rupees, `10` for
    /// won, `100` for rupiah, `1000` for dong, `0.010` for Gulf dinars (whole tens of fils).
    Multiple { step: Decimal },
}

/// 0.10 and 0.50, the charm grid steps below 10 and below 100 (`from_parts` is `const`).
const TEN_CENTS: Decimal = Decimal::from_parts(10, 0, 0, false, 2);
const FIFTY_CENTS: Decimal = Decimal::from_parts(50, 0, 0, false, 2);

/// Charm grid steps: (amounts below this, step).
const CHARM_TIERS: [(Decimal, Decimal); 2] = [
    (Decimal::TEN, TEN_CENTS),
    (Decimal::ONE_HUNDRED, FIFTY_CENTS),
];
/// Charm grid step from 100 up.
const CHARM_TOP_STEP: Decimal = Decimal::ONE;

impl Rounding {
    /// Rounds `amount` (≥ 0) up to this convention, at `currency`'s scale; `None` on overflow.
    pub fn apply(self, amount: Decimal, currency: Currency) -> Option<Decimal> {
        let mut rounded = match self {
            Rounding::Charm => {
                let step = CHARM_TIERS
                    .iter()
                    .find(|(below, _)| amount < *below)
                    .map_or(CHARM_TOP_STEP, |&(_, step)| step);
                // The next grid point strictly above `amount`, minus one minor unit: x.x9.
                let unit = currency.smallest_unit();
                amount
                    .checked_add(unit)?
                    .checked_div(step)?
                    .ceil()
                    .checked_mul(step)?
                    .checked_sub(unit)?
            }
            Rounding::Multiple { step } => amount.checked_div(step)?.ceil().checked_mul(step)?,
        };
        rounded.rescale(currency.minor_units());
        Some(rounded)
    }

    /// Checks that this convention can produce amounts of `currency`.
    pub(crate) fn validate(self, currency: Currency) -> Result<(), EntryProblem> {
        match self {
            Rounding::Charm if currency.minor_units() != 2 => Err(
                EntryProblem::CharmNeedsTwoMinorUnits(currency, currency.minor_units()),
            ),
            Rounding::Charm => Ok(()),
            Rounding::Multiple { step } => {
                if step > Decimal::ZERO && step.normalize().scale() <= currency.minor_units() {
                    Ok(())
                } else {
                    Err(EntryProblem::BadRoundingStep { step, currency })
                }
            }
        }
    }
}

/// The three amounts of a price, in one currency; `net + tax = gross` exactly.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "PriceRepr", into = "PriceRepr")]
pub struct Price {
    net: Money,
    tax: Money,
    gross: Money,
}

/// A price whose parts do not add up, or are negative, or mix currencies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidPrice {
    #[error("net {net} + tax {tax} is not gross {gross}")]
    DoesNotAddUp {
        net: String,
        tax: String,
        gross: String,
    },
    #[error("a price part is negative")]
    Negative,
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl Price {
    /// A price from its parts, checking `net + tax = gross`, one currency and no negatives.
    pub fn new(net: Money, tax: Money, gross: Money) -> Result<Price, InvalidPrice> {
        if net.is_negative() || tax.is_negative() {
            return Err(InvalidPrice::Negative);
        }
        if net.checked_add(tax)? != gross {
            return Err(InvalidPrice::DoesNotAddUp {
                net: net.to_string(),
                tax: tax.to_string(),
                gross: gross.to_string(),
            });
        }
        Ok(Price { net, tax, gross })
    }

    /// Splits a displayed (charmed) amount into net, tax and gross; see the module notes.
    pub fn from_display(
        display: Money,
        tax_rate: Decimal,
        tax_inclusive: bool,
    ) -> Result<Price, MoneyError> {
        let currency = display.currency();
        if tax_inclusive {
            let gross = display;
            let backed_out = gross
                .amount()
                .checked_mul(tax_rate)
                .and_then(|tax| tax.checked_div(Decimal::ONE + tax_rate))
                .ok_or(MoneyError::Overflow)?;
            let tax = Money::rounded(backed_out, currency, TAX_ROUNDING);
            let net = gross.checked_sub(tax)?;
            Ok(Price { net, tax, gross })
        } else {
            let net = display;
            let on_top = net
                .amount()
                .checked_mul(tax_rate)
                .ok_or(MoneyError::Overflow)?;
            let tax = Money::rounded(on_top, currency, TAX_ROUNDING);
            let gross = net.checked_add(tax)?;
            Ok(Price { net, tax, gross })
        }
    }

    pub fn net(&self) -> Money {
        self.net
    }
    pub fn tax(&self) -> Money {
        self.tax
    }
    /// What the buyer pays.
    pub fn gross(&self) -> Money {
        self.gross
    }
    pub fn currency(&self) -> Currency {
        self.gross.currency()
    }
}

/// The wire form: amounts as strings with exactly the currency's minor digits, plus the currency
/// so a price never travels without it: `{"currency":"JPY","net":"999","tax":"100","gross":"1099"}`.
#[derive(Serialize, Deserialize)]
struct PriceRepr {
    currency: Currency,
    net: String,
    tax: String,
    gross: String,
}

impl From<Price> for PriceRepr {
    fn from(price: Price) -> Self {
        PriceRepr {
            currency: price.currency(),
            net: price.net.to_string(),
            tax: price.tax.to_string(),
            gross: price.gross.to_string(),
        }
    }
}

impl TryFrom<PriceRepr> for Price {
    type Error = InvalidPrice;
    fn try_from(repr: PriceRepr) -> Result<Self, Self::Error> {
        Price::new(
            Money::parse(&repr.net, repr.currency)?,
            Money::parse(&repr.tax, repr.currency)?,
            Money::parse(&repr.gross, repr.currency)?,
        )
    }
}

/// The coin amounts a web buyer may choose: `min_coins..=max_coins`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CustomBounds {
    pub min_coins: u64,
    pub max_coins: u64,
}

impl CustomBounds {
    pub fn contains(self, coins: u64) -> bool {
        (self.min_coins..=self.max_coins).contains(&coins)
    }
}

/// What the buyer asks a price for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QuoteItem {
    /// A fixed package, on any channel.
    Package(PackageId),
    /// Any number of coins within [`CustomBounds`], on the web only; no bonus coins.
    Custom { coins: u64 },
}

/// Why no quote can be given. Each variant's doc names its HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuoteError {
    /// We do not sell in the buyer's billing country. HTTP 403 `forbidden`.
    #[error("coins are not sold in {0}")]
    UnknownCountry(BillingCountry),
    /// No fixed package has this id. HTTP 400 `invalid_request`.
    #[error("unknown package {0}")]
    UnknownPackage(PackageId),
    /// Custom amounts on an app channel. HTTP 422 `channel_not_allowed`.
    #[error("custom coin amounts are sold on the web only, not on {channel}")]
    ChannelNotAllowed { channel: Channel },
    /// A custom amount outside the bounds. HTTP 400 `invalid_request`.
    #[error("{coins} coins is outside the custom range {min}..={max}")]
    CoinsOutOfBounds { coins: u64, min: u64, max: u64 },
    /// The arithmetic overflowed. A validated book prices every allowed amount, so this means a
    /// bug. HTTP 500.
    #[error("the price is out of range")]
    PriceOutOfRange,
}

/// A priced offer, bound to a billing country and a price-book version.
///
/// The function layer adds the quote id and `expires_at` (issue time + [`QUOTE_TTL`]) and stores
/// or signs it; a purchase then honours this price whatever the book says later.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "QuoteRepr")]
pub struct Quote {
    country: BillingCountry,
    /// The region whose tax rate priced it, where it has its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    region: Option<BillingRegion>,
    channel: Channel,
    /// `None` for a custom amount.
    package_id: Option<PackageId>,
    currency: Currency,
    coins: u64,
    bonus_coins: u64,
    total_coins: u64,
    price: Price,
    tax_inclusive: bool,
    price_book_version: PriceBookVersion,
}

impl Quote {
    /// `quantity` of this offer bought at once (a store order of several units): coins and
    /// every part of the price multiplied exactly.
    pub fn times(&self, quantity: u32) -> Result<Quote, QuoteError> {
        let count = u64::from(quantity);
        let coins = |value: u64| value.checked_mul(count).ok_or(QuoteError::PriceOutOfRange);
        let money = |value: Money| {
            value
                .amount()
                .checked_mul(Decimal::from(quantity))
                .ok_or(QuoteError::PriceOutOfRange)
                .and_then(|amount| {
                    Money::new(amount, value.currency()).map_err(|_| QuoteError::PriceOutOfRange)
                })
        };
        let price = Price::new(
            money(self.price.net())?,
            money(self.price.tax())?,
            money(self.price.gross())?,
        )
        .map_err(|_| QuoteError::PriceOutOfRange)?;
        Ok(Quote {
            coins: coins(self.coins)?,
            bonus_coins: coins(self.bonus_coins)?,
            total_coins: coins(self.total_coins)?,
            price,
            ..self.clone()
        })
    }

    pub fn country(&self) -> BillingCountry {
        self.country
    }
    pub fn region(&self) -> Option<BillingRegion> {
        self.region
    }
    pub fn channel(&self) -> Channel {
        self.channel
    }
    pub fn package_id(&self) -> Option<PackageId> {
        self.package_id
    }
    pub fn currency(&self) -> Currency {
        self.currency
    }
    /// Coins paid for.
    pub fn coins(&self) -> u64 {
        self.coins
    }
    /// Coins given on top.
    pub fn bonus_coins(&self) -> u64 {
        self.bonus_coins
    }
    /// Coins credited: `coins + bonus_coins`.
    pub fn total_coins(&self) -> u64 {
        self.total_coins
    }
    pub fn price(&self) -> Price {
        self.price
    }
    pub fn tax_inclusive(&self) -> bool {
        self.tax_inclusive
    }
    pub fn price_book_version(&self) -> &PriceBookVersion {
        &self.price_book_version
    }
}

/// A stored or signed quote read back: checked so a tampered or corrupt one is refused.
#[derive(Deserialize)]
struct QuoteRepr {
    country: BillingCountry,
    #[serde(default)]
    region: Option<BillingRegion>,
    channel: Channel,
    package_id: Option<PackageId>,
    currency: Currency,
    coins: u64,
    bonus_coins: u64,
    total_coins: u64,
    price: Price,
    tax_inclusive: bool,
    price_book_version: PriceBookVersion,
}

/// A quote read back whose fields contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidQuote {
    #[error("total_coins is not coins + bonus_coins")]
    TotalMismatch,
    #[error("the price is not in the quote's currency")]
    CurrencyMismatch,
    #[error("a custom amount cannot be quoted on {0}")]
    CustomOnApp(Channel),
}

impl TryFrom<QuoteRepr> for Quote {
    type Error = InvalidQuote;
    fn try_from(repr: QuoteRepr) -> Result<Self, Self::Error> {
        if repr.coins.checked_add(repr.bonus_coins) != Some(repr.total_coins) {
            return Err(InvalidQuote::TotalMismatch);
        }
        if repr.price.currency() != repr.currency {
            return Err(InvalidQuote::CurrencyMismatch);
        }
        if repr.package_id.is_none() && !repr.channel.allows_custom_amounts() {
            return Err(InvalidQuote::CustomOnApp(repr.channel));
        }
        Ok(Quote {
            country: repr.country,
            region: repr.region,
            channel: repr.channel,
            package_id: repr.package_id,
            currency: repr.currency,
            coins: repr.coins,
            bonus_coins: repr.bonus_coins,
            total_coins: repr.total_coins,
            price: repr.price,
            tax_inclusive: repr.tax_inclusive,
            price_book_version: repr.price_book_version,
        })
    }
}

/// A quote presented after its expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the quote expired at {expires_at}")]
pub struct QuoteExpired {
    pub expires_at: Timestamp,
}

/// When a quote issued at `issued_at` stops being honoured.
pub fn quote_expires_at(issued_at: Timestamp) -> Timestamp {
    issued_at
        .saturating_add(QUOTE_TTL)
        .unwrap_or(Timestamp::MAX)
}

/// How long a purchase waits for its payment before it expires (a payment arriving later is
/// returned).
pub const PAYMENT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// When a purchase created at `created_at` stops waiting for its payment.
pub fn payment_due_by(created_at: Timestamp) -> Timestamp {
    created_at
        .saturating_add(PAYMENT_WINDOW)
        .unwrap_or(Timestamp::MAX)
}

/// Refuses a quote at or after its expiry (HTTP 409 `quote_expired`).
pub fn check_quote_fresh(expires_at: Timestamp, now: Timestamp) -> Result<(), QuoteExpired> {
    if now < expires_at {
        Ok(())
    } else {
        Err(QuoteExpired { expires_at })
    }
}

/// One fixed package as listed for a buyer.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PackageOffer {
    pub package_id: PackageId,
    pub coins: u64,
    pub bonus_coins: u64,
    pub total_coins: u64,
    pub price: Price,
    /// The product id the app sells it under (ios and android only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_product_id: Option<String>,
}

/// A buyer's localized price list (`GET /v1/packages`).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PackageList {
    pub country: BillingCountry,
    pub channel: Channel,
    pub currency: Currency,
    pub tax_inclusive: bool,
    pub price_book_version: PriceBookVersion,
    pub packages: Vec<PackageOffer>,
    /// The custom-amount range on the web; `None` on app channels.
    pub custom: Option<CustomBounds>,
}

impl CountryPricing {
    /// The price of `coins` coins on `channel` in this country (steps 1 to 4 of the module notes).
    pub(crate) fn price_for(
        &self,
        coins: u64,
        channel: Channel,
        store_fee_rate: Decimal,
    ) -> Result<Price, QuoteError> {
        let base = self
            .coin_price
            .checked_mul(Decimal::from(coins))
            .ok_or(QuoteError::PriceOutOfRange)?;
        let web = self
            .rounding
            .apply(base, self.currency)
            .ok_or(QuoteError::PriceOutOfRange)?;
        let display = if channel.has_store_fee() {
            let grossed_up = web
                .checked_div(Decimal::ONE - store_fee_rate)
                .and_then(|amount| self.rounding.apply(amount, self.currency))
                .ok_or(QuoteError::PriceOutOfRange)?;
            grossed_up.max(web)
        } else {
            web
        };
        let display =
            Money::new(display, self.currency).map_err(|_| QuoteError::PriceOutOfRange)?;
        Price::from_display(display, self.tax_rate, self.tax_inclusive)
            .map_err(|_| QuoteError::PriceOutOfRange)
    }
}

impl PriceBook {
    /// Prices `item` for a buyer billed at `location`, buying on `channel`. Where the region has
    /// a tax rate of its own (US states, Canadian provinces), the price shown before tax is the
    /// country's and the tax is the region's, so the amount charged is the amount quoted.
    pub fn quote(
        &self,
        location: BillingLocation,
        channel: Channel,
        item: QuoteItem,
    ) -> Result<Quote, QuoteError> {
        let country = location.country();
        let pricing = self
            .country(country)
            .ok_or(QuoteError::UnknownCountry(country))?;
        let (package_id, coins, bonus_coins, price) = match item {
            QuoteItem::Package(package_id) => {
                let index = self
                    .package_index(package_id)
                    .ok_or(QuoteError::UnknownPackage(package_id))?;
                let package = &self.packages()[index];
                let price = pricing.package_prices[channel.index()][index];
                (Some(package_id), package.coins, package.bonus_coins, price)
            }
            QuoteItem::Custom { coins } => {
                if !channel.allows_custom_amounts() {
                    return Err(QuoteError::ChannelNotAllowed { channel });
                }
                let bounds = self.custom_bounds();
                if !bounds.contains(coins) {
                    return Err(QuoteError::CoinsOutOfBounds {
                        coins,
                        min: bounds.min_coins,
                        max: bounds.max_coins,
                    });
                }
                let price = pricing.price_for(coins, channel, self.store_fee_rate())?;
                (None, coins, 0, price)
            }
        };
        let price = self.with_regional_tax(price, pricing, location.region())?;
        let total_coins = coins
            .checked_add(bonus_coins)
            .ok_or(QuoteError::PriceOutOfRange)?;
        Ok(Quote {
            country,
            region: location.region(),
            channel,
            package_id,
            currency: pricing.currency,
            coins,
            bonus_coins,
            total_coins,
            price,
            tax_inclusive: pricing.tax_inclusive,
            price_book_version: self.version().clone(),
        })
    }

    /// A tax-exclusive price taxed at the region's own rate, if it has one.
    fn with_regional_tax(
        &self,
        price: Price,
        pricing: &CountryPricing,
        region: Option<BillingRegion>,
    ) -> Result<Price, QuoteError> {
        let rate = self.tax_rate(pricing, region);
        if rate == pricing.tax_rate {
            return Ok(price);
        }
        Price::from_display(price.net(), rate, false).map_err(|_| QuoteError::PriceOutOfRange)
    }

    /// Every fixed package with its price for a buyer billed at `location` on `channel`, and
    /// the custom range on the web.
    pub fn package_list(
        &self,
        location: BillingLocation,
        channel: Channel,
    ) -> Result<PackageList, QuoteError> {
        let country = location.country();
        let pricing = self
            .country(country)
            .ok_or(QuoteError::UnknownCountry(country))?;
        let packages = self
            .packages()
            .iter()
            .zip(&pricing.package_prices[channel.index()])
            .map(|(package, &price)| {
                Ok(PackageOffer {
                    package_id: package.package_id,
                    coins: package.coins,
                    bonus_coins: package.bonus_coins,
                    total_coins: package.coins.saturating_add(package.bonus_coins),
                    price: self.with_regional_tax(price, pricing, location.region())?,
                    store_product_id: package.store_product_id(channel).map(str::to_owned),
                })
            })
            .collect::<Result<_, QuoteError>>()?;
        Ok(PackageList {
            country,
            channel,
            currency: pricing.currency,
            tax_inclusive: pricing.tax_inclusive,
            price_book_version: self.version().clone(),
            packages,
            custom: channel
                .allows_custom_amounts()
                .then_some(self.custom_bounds()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn book() -> &'static PriceBook {
        PriceBook::embedded()
    }

    fn package(country: &str, channel: Channel, package_id: &str) -> Quote {
        book()
            .quote(
                country.parse().unwrap(),
                channel,
                QuoteItem::Package(package_id.parse().unwrap()),
            )
            .unwrap()
    }

    fn custom(country: &str, channel: Channel, coins: u64) -> Result<Quote, QuoteError> {
        book().quote(
            country.parse().unwrap(),
            channel,
            QuoteItem::Custom { coins },
        )
    }

    /// net, tax, gross as printed.
    fn parts(quote: &Quote) -> [String; 3] {
        let price = quote.price();
        [price.net(), price.tax(), price.gross()].map(|money| money.to_string())
    }

    fn located(location: &str, channel: Channel, package_id: &str) -> Quote {
        book()
            .quote(
                location.parse().unwrap(),
                channel,
                QuoteItem::Package(package_id.parse().unwrap()),
            )
            .unwrap()
    }

    #[test]
    fn three_units_cost_exactly_three_times_one() {
        let one = book()
            .quote(
                "US".parse::<BillingCountry>().unwrap().into(),
                Channel::Android,
                QuoteItem::Package("coins_700".parse().unwrap()),
            )
            .unwrap();
        let three = one.times(3).unwrap();
        assert_eq!(three.total_coins(), 3 * one.total_coins());
        assert_eq!(
            three.price().gross().amount(),
            one.price().gross().amount() * Decimal::from(3)
        );
        assert_eq!(one.times(1).unwrap(), one);
    }

    #[test]
    fn a_taxed_state_adds_its_rate_on_top_and_an_untaxed_one_adds_nothing() {
        // Washington taxes digital goods at 6.5%: 7.49 × 0.065 = 0.48685 → 0.49.
        let washington = located("US-WA", Channel::Web, "coins_700");
        assert_eq!(parts(&washington), ["7.49", "0.49", "7.98"]);
        assert_eq!(washington.region().unwrap().as_str(), "US-WA");
        assert!(!washington.tax_inclusive());
        // Oregon has no sales tax; California does not tax digital goods.
        assert_eq!(
            parts(&located("US-OR", Channel::Web, "coins_700")),
            ["7.49", "0.00", "7.49"]
        );
        assert_eq!(
            parts(&located("US-CA", Channel::Web, "coins_700")),
            ["7.49", "0.00", "7.49"]
        );
        // The app price is taxed the same way.
        assert_eq!(
            parts(&located("US-WA", Channel::Ios, "coins_700")),
            ["10.99", "0.71", "11.70"]
        );
    }

    #[test]
    fn a_province_with_hst_pays_it_instead_of_the_gst() {
        let ontario = located("CA-ON", Channel::Web, "coins_700");
        let alberta = located("CA-AB", Channel::Web, "coins_700");
        assert_eq!(ontario.price().net(), alberta.price().net());
        let rate = |quote: &Quote| quote.price().tax().amount() / quote.price().net().amount();
        assert!(
            (rate(&ontario) - dec!(0.13)).abs() < dec!(0.001),
            "{:?}",
            parts(&ontario)
        );
        assert!(
            (rate(&alberta) - dec!(0.05)).abs() < dec!(0.001),
            "{:?}",
            parts(&alberta)
        );
        let list = book()
            .package_list("CA-ON".parse().unwrap(), Channel::Web)
            .unwrap();
        assert_eq!(list.packages[2].price, ontario.price());
    }

    #[test]
    fn a_us_web_package_is_charmed_to_49_and_taxed_at_checkout() {
        // 700 × 0.0106 = 7.42 → next x.x9 = 7.49; US prices are shown before tax.
        let quote = package("US", Channel::Web, "coins_700");
        assert_eq!(parts(&quote), ["7.49", "0.00", "7.49"]);
        assert_eq!(quote.currency().code(), "USD");
        assert!(!quote.tax_inclusive());
        assert_eq!(quote.total_coins(), 700);
    }

    #[test]
    fn the_app_store_price_grosses_up_the_web_price_and_charms_it_again() {
        // 7.49 / 0.70 = 10.70 → from 10 the grid is .49/.99 → 10.99.
        assert_eq!(
            parts(&package("US", Channel::Ios, "coins_700")),
            ["10.99", "0.00", "10.99"]
        );
        assert_eq!(
            parts(&package("US", Channel::Android, "coins_700")),
            ["10.99", "0.00", "10.99"]
        );
        // 70 × 0.0106 = 0.742 → 0.79 on the web; 0.79 / 0.70 = 1.1286 → 1.19 in the app.
        assert_eq!(parts(&package("US", Channel::Web, "coins_70"))[2], "0.79");
        assert_eq!(parts(&package("US", Channel::Ios, "coins_70"))[2], "1.19");
    }

    #[test]
    fn large_prices_are_charmed_to_99() {
        // 17500 × 0.0106 = 185.50 → from 100 the next .99 → 185.99; 875 bonus coins (5%).
        let quote = package("US", Channel::Web, "coins_17500");
        assert_eq!(parts(&quote)[2], "185.99");
        assert_eq!(quote.bonus_coins(), 875);
        assert_eq!(quote.total_coins(), 18_375);
    }

    #[test]
    fn a_japanese_price_is_whole_yen_with_consumption_tax_backed_out() {
        // 700 × 1.57 = 1099 yen including 10%: tax = 1099 × 0.1 / 1.1 = 99.9 → 100, net 999.
        let quote = package("JP", Channel::Web, "coins_700");
        assert_eq!(parts(&quote), ["999", "100", "1099"]);
        assert!(quote.tax_inclusive());
        assert_eq!(quote.price_book_version().as_str(), "2026-12-08");
        // In the app: 1099 / 0.7 = 1570; tax 142.7 → 143.
        assert_eq!(
            parts(&package("JP", Channel::Ios, "coins_700")),
            ["1427", "143", "1570"]
        );
    }

    #[test]
    fn a_korean_price_is_whole_tens_of_won() {
        // 70 × 14.9 = 1043 → 1050 won; tax 1050 / 11 = 95.45 → 95.
        assert_eq!(
            parts(&package("KR", Channel::Web, "coins_70")),
            ["955", "95", "1050"]
        );
    }

    #[test]
    fn a_vietnamese_price_is_whole_thousands_of_dong() {
        // 700 × 199 = 139300 → 140000; tax 140000 / 11 = 12727.3 → 12727.
        assert_eq!(
            parts(&package("VN", Channel::Web, "coins_700")),
            ["127273", "12727", "140000"]
        );
    }

    #[test]
    fn gulf_dinar_prices_have_three_decimals() {
        // 700 × 0.0031 = 2.170 KWD, no VAT in Kuwait.
        assert_eq!(
            parts(&package("KW", Channel::Web, "coins_700")),
            ["2.170", "0.000", "2.170"]
        );
        // 70 × 0.0031 = 0.217 → the next ten fils, 0.220.
        assert_eq!(parts(&package("KW", Channel::Web, "coins_70"))[2], "0.220");
        // Bahrain: 10% VAT backed out of 2.170: 0.19727 → 0.197.
        assert_eq!(
            parts(&package("BH", Channel::Web, "coins_700")),
            ["1.973", "0.197", "2.170"]
        );
    }

    #[test]
    fn eu_prices_include_vat() {
        // 700 × 0.0109 = 7.63 → 7.69 including 19%: tax 1.2278 → 1.23.
        assert_eq!(
            parts(&package("DE", Channel::Web, "coins_700")),
            ["6.46", "1.23", "7.69"]
        );
    }

    #[test]
    fn a_tax_exactly_half_a_penny_rounds_away_from_zero() {
        // 6.99 including 20%: tax = 6.99 / 6 = 1.165 exactly → 1.17, not the even 1.16.
        assert_eq!(
            parts(&package("GB", Channel::Web, "coins_700")),
            ["5.82", "1.17", "6.99"]
        );
        // Canada shows prices before GST: 9.99 + 5% = 9.99 + 0.4995 → 0.50.
        assert_eq!(
            parts(&package("CA", Channel::Web, "coins_700")),
            ["9.99", "0.50", "10.49"]
        );
    }

    #[test]
    fn a_custom_web_amount_is_priced_like_a_package_without_bonus() {
        // 1234 × 0.0106 = 13.0804 → 13.49.
        let quote = custom("US", Channel::Web, 1234).unwrap();
        assert_eq!(parts(&quote)[2], "13.49");
        assert_eq!(quote.package_id(), None);
        assert_eq!(
            (quote.coins(), quote.bonus_coins(), quote.total_coins()),
            (1234, 0, 1234)
        );
        assert_eq!(
            custom("US", Channel::Web, 700).unwrap().price(),
            package("US", Channel::Web, "coins_700").price()
        );
    }

    #[test]
    fn custom_amounts_in_an_app_are_not_allowed() {
        assert_eq!(
            custom("US", Channel::Ios, 1234),
            Err(QuoteError::ChannelNotAllowed {
                channel: Channel::Ios
            })
        );
        assert_eq!(
            custom("JP", Channel::Android, 1234),
            Err(QuoteError::ChannelNotAllowed {
                channel: Channel::Android
            })
        );
    }

    #[test]
    fn custom_amounts_outside_the_bounds_are_refused() {
        let out = |coins| QuoteError::CoinsOutOfBounds {
            coins,
            min: 30,
            max: 2_500_000,
        };
        assert_eq!(custom("US", Channel::Web, 29), Err(out(29)));
        assert_eq!(custom("US", Channel::Web, 2_500_001), Err(out(2_500_001)));
        assert_eq!(custom("US", Channel::Web, 0), Err(out(0)));
        assert!(custom("US", Channel::Web, 30).is_ok());
        assert!(custom("VN", Channel::Web, 2_500_000).is_ok());
    }

    #[test]
    fn unknown_countries_and_packages_are_named() {
        let zz: BillingCountry = "ZZ".parse().unwrap();
        let coins_70 = "coins_70".parse().unwrap();
        assert_eq!(
            book().quote(zz.into(), Channel::Web, QuoteItem::Package(coins_70)),
            Err(QuoteError::UnknownCountry(zz))
        );
        let coins_71 = "coins_71".parse().unwrap();
        assert_eq!(
            book().quote(
                "JP".parse().unwrap(),
                Channel::Web,
                QuoteItem::Package(coins_71)
            ),
            Err(QuoteError::UnknownPackage(coins_71))
        );
        assert!(book().package_list(zz.into(), Channel::Web).is_err());
    }

    #[test]
    fn charm_rounding_ends_in_nine_on_a_widening_grid() {
        let usd: Currency = "USD".parse().unwrap();
        let charm = |amount| Rounding::Charm.apply(amount, usd).unwrap().to_string();
        assert_eq!(charm(dec!(0.01)), "0.09");
        assert_eq!(charm(dec!(0.79)), "0.79");
        assert_eq!(charm(dec!(0.791)), "0.89");
        assert_eq!(charm(dec!(9.995)), "10.09");
        assert_eq!(charm(dec!(10)), "10.49");
        assert_eq!(charm(dec!(10.50)), "10.99");
        assert_eq!(charm(dec!(99.999)), "100.49");
        assert_eq!(charm(dec!(100)), "100.99");
        assert_eq!(charm(dec!(100.99)), "100.99");
    }

    #[test]
    fn multiple_rounding_goes_up_to_the_step() {
        let vnd: Currency = "VND".parse().unwrap();
        let kwd: Currency = "KWD".parse().unwrap();
        let step = |step| Rounding::Multiple { step };
        assert_eq!(
            step(dec!(1000))
                .apply(dec!(132300), vnd)
                .unwrap()
                .to_string(),
            "133000"
        );
        assert_eq!(
            step(dec!(1000))
                .apply(dec!(133000), vnd)
                .unwrap()
                .to_string(),
            "133000"
        );
        assert_eq!(
            step(dec!(0.010))
                .apply(dec!(0.2171), kwd)
                .unwrap()
                .to_string(),
            "0.220"
        );
    }

    #[test]
    fn the_package_list_prices_every_package_and_offers_custom_on_the_web_only() {
        let jp = "JP".parse().unwrap();
        let web = book().package_list(jp, Channel::Web).unwrap();
        assert_eq!(web.packages.len(), 7);
        assert_eq!(web.packages[2].package_id.as_str(), "coins_700");
        assert_eq!(web.packages[2].price.gross().to_string(), "1099");
        assert_eq!(
            web.custom,
            Some(CustomBounds {
                min_coins: 30,
                max_coins: 2_500_000
            })
        );
        let ios = book().package_list(jp, Channel::Ios).unwrap();
        assert_eq!(ios.custom, None);
        assert_eq!(ios.packages[2].price.gross().to_string(), "1570");
    }

    #[test]
    fn a_quote_serializes_with_amounts_as_strings() {
        let quote = package("JP", Channel::Web, "coins_700");
        let json = serde_json::to_value(&quote).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "country": "JP",
                "channel": "web",
                "package_id": "coins_700",
                "currency": "JPY",
                "coins": 700,
                "bonus_coins": 0,
                "total_coins": 700,
                "price": {"currency": "JPY", "net": "999", "tax": "100", "gross": "1099"},
                "tax_inclusive": true,
                "price_book_version": "2026-12-08"
            })
        );
        assert_eq!(serde_json::from_value::<Quote>(json).unwrap(), quote);
    }

    #[test]
    fn a_tampered_quote_is_refused_when_read_back() {
        let quote = package("US", Channel::Web, "coins_17500");
        let mut json = serde_json::to_value(&quote).unwrap();
        json["total_coins"] = 99_999.into();
        assert!(serde_json::from_value::<Quote>(json).is_err());

        let mut json = serde_json::to_value(&quote).unwrap();
        json["price"]["tax"] = "1.00".into();
        assert!(serde_json::from_value::<Quote>(json).is_err());

        let mut json = serde_json::to_value(custom("US", Channel::Web, 100).unwrap()).unwrap();
        json["channel"] = "ios".into();
        assert!(serde_json::from_value::<Quote>(json).is_err());
    }

    #[test]
    fn a_quote_is_honoured_for_fifteen_minutes() {
        let issued: Timestamp = "2026-11-01T12:00:00Z".parse().unwrap();
        let expires_at = quote_expires_at(issued);
        assert_eq!(expires_at.to_string(), "2026-11-01T12:15:00Z");
        assert_eq!(
            check_quote_fresh(expires_at, "2026-11-01T12:14:59Z".parse().unwrap()),
            Ok(())
        );
        assert_eq!(
            check_quote_fresh(expires_at, expires_at),
            Err(QuoteExpired { expires_at })
        );
    }

    #[test]
    fn channels_and_package_ids_parse_from_their_wire_form() {
        assert_eq!("android".parse::<Channel>(), Ok(Channel::Android));
        assert_eq!("Web".parse::<Channel>(), Err(UnknownChannel("Web".into())));
        assert_eq!(serde_json::to_string(&Channel::Ios).unwrap(), r#""ios""#);
        for bad in [
            "",
            "Coins_70",
            "coins-70",
            "7coins",
            "a_very_long_package_identifier",
        ] {
            assert!(bad.parse::<PackageId>().is_err(), "{bad:?}");
        }
    }
}
