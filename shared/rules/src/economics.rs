//! Coin economics: whether every coin sold nets at least what its diamonds pay out, plus a margin.
//!
//! A coin gifted to a creator becomes [`diamonds_for`] diamonds, each paid out at
//! [`DIAMOND_VALUE_USD`]. If a coin bought anywhere netted less than that, buying coins there and
//! gifting them to one's own second creator account would turn a profit paid by the platform. So
//! for every country, channel and offer (each fixed package, bonus coins included, and any custom
//! web amount) this module works out what one credited coin nets:
//! 1. the price the buyer pays, less the **tax** in it (VAT and GST are included in the displayed
//!    price and backed out; US and Canadian sales tax is added on top, so the net is the displayed
//!    price whatever the region's rate);
//! 2. less the **store fee** on ios and android: the book's `store_fee_rate` (the stores' highest
//!    commission, 30%) of the price net of tax, as the stores charge it, rounded up to a minor unit;
//! 3. converted to US dollars at the currency's **floor rate** (`data/floor_rates.json`): the
//!    weakest the currency is assumed to get before the price book must be revised;
//! 4. divided by the coins credited (`coins + bonus_coins`: a bonus lowers what each coin nets).
//!
//! That must be at least the payout per coin plus the data's margin (a share of the payout that
//! covers what is not modelled here: payment processing on the web, disputes, conversion).
//! A custom web amount of `n` coins is charmed up from `n × coin_price`, and a tax backed out of it
//! is rounded by at most half a minor unit, so each of its coins nets at least
//! `coin_price / (1 + tax_rate) − ½ minor unit / min_coins`: the `custom_any` row checks that bound,
//! which holds for every amount in the range; `custom_<min>` and `custom_<max>` show the two ends.

use std::fmt;
use std::sync::LazyLock;

use jiff::civil::Date;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;

use crate::country::{BillingCountry, BillingLocation};
use crate::gifts::{DIAMOND_VALUE_USD, diamonds_for};
use crate::money::{Currency, Money};
use crate::price_book::{CountryPricing, PriceBook};
use crate::pricing::{Channel, PackageId, Price, QuoteError, QuoteItem};

/// The floor rates shipped with this build.
const EMBEDDED_JSON: &str = include_str!("../data/floor_rates.json");

static EMBEDDED: LazyLock<FloorRates> = LazyLock::new(|| {
    // `the_embedded_floor_rates_are_valid` loads the same text, so a bad file fails CI.
    FloorRates::from_json(EMBEDDED_JSON)
        .unwrap_or_else(|error| panic!("the embedded floor rates are invalid: {error}"))
});

/// A margin at or above this is taken for a typo (`10` for `0.10`).
const MAX_MARGIN_RATE: Decimal = Decimal::ONE;

/// One currency's floor: units of it per US dollar.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FloorRate {
    pub currency: Currency,
    /// The reference market rate the floor was set from.
    pub market: Decimal,
    /// The weakest the currency is assumed to get: at least `market`.
    pub floor: Decimal,
    /// When the entry was written or last reviewed.
    pub as_of: Date,
    /// Where `market` comes from and why the floor is where it is.
    pub source: String,
}

impl FloorRate {
    /// How far below the market the floor assumes the currency may fall: `0.31` for 31%.
    pub fn bound(&self) -> Decimal {
        (self.floor / self.market - Decimal::ONE).round_dp(2)
    }
}

/// The validated floor rates and margin.
#[derive(Clone, Debug)]
pub struct FloorRates {
    version: String,
    margin_rate: Decimal,
    /// Sorted by currency code.
    rates: Vec<FloorRate>,
}

/// Why a floor-rate file was refused. Each message names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloorRatesError {
    #[error("floor rates are not valid: {0}")]
    Malformed(String),
    #[error("margin rate {0} must be at least 0 and below 1")]
    MarginOutOfRange(Decimal),
    #[error("floor rate entry rates[{index}] ({currency:?}): {problem}")]
    Entry {
        index: usize,
        currency: String,
        problem: FloorRateProblem,
    },
}

/// What is wrong with one floor rate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FloorRateProblem {
    #[error("unknown currency")]
    UnknownCurrency,
    #[error("listed twice")]
    Duplicate,
    #[error("market {0} must be above 0")]
    MarketNotPositive(Decimal),
    #[error("floor {floor} is stronger than the market {market}: a floor is at least the market")]
    FloorAboveMarket { market: Decimal, floor: Decimal },
    #[error("USD is the payout currency: its market and floor are 1")]
    UsdNotOne,
    #[error("as_of {0:?} is not a YYYY-MM-DD date")]
    BadDate(String),
    #[error("the source is empty: say where the rate comes from")]
    NoSource,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFloorRates {
    version: String,
    #[allow(dead_code)]
    note: String,
    margin: RawMargin,
    rates: Vec<RawFloorRate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMargin {
    rate: Decimal,
    #[allow(dead_code)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFloorRate {
    currency: String,
    market: Decimal,
    floor: Decimal,
    as_of: String,
    source: String,
}

impl FloorRates {
    /// The floor rates compiled into this binary, parsed and validated on first use.
    pub fn embedded() -> &'static FloorRates {
        &EMBEDDED
    }

    /// Parses and validates a floor-rate file.
    pub fn from_json(text: &str) -> Result<FloorRates, FloorRatesError> {
        let raw: RawFloorRates =
            serde_json::from_str(text).map_err(|e| FloorRatesError::Malformed(e.to_string()))?;
        if raw.margin.rate < Decimal::ZERO || raw.margin.rate >= MAX_MARGIN_RATE {
            return Err(FloorRatesError::MarginOutOfRange(raw.margin.rate));
        }
        let mut rates: Vec<FloorRate> = Vec::with_capacity(raw.rates.len());
        for (index, entry) in raw.rates.iter().enumerate() {
            let rate = validate_rate(entry, &rates).map_err(|problem| FloorRatesError::Entry {
                index,
                currency: entry.currency.clone(),
                problem,
            })?;
            rates.push(rate);
        }
        rates.sort_by_key(|rate| rate.currency.code());
        Ok(FloorRates {
            version: raw.version,
            margin_rate: raw.margin.rate,
            rates,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The margin, as a share of the payout per coin: `0.10`.
    pub fn margin_rate(&self) -> Decimal {
        self.margin_rate
    }

    /// Every floor rate, by currency code.
    pub fn rates(&self) -> &[FloorRate] {
        &self.rates
    }

    /// The floor of `currency`, if the file has one.
    pub fn floor(&self, currency: Currency) -> Option<&FloorRate> {
        self.rates.iter().find(|rate| rate.currency == currency)
    }
}

fn validate_rate(raw: &RawFloorRate, known: &[FloorRate]) -> Result<FloorRate, FloorRateProblem> {
    let currency: Currency = raw
        .currency
        .parse()
        .map_err(|_| FloorRateProblem::UnknownCurrency)?;
    if known.iter().any(|rate| rate.currency == currency) {
        return Err(FloorRateProblem::Duplicate);
    }
    if raw.market <= Decimal::ZERO {
        return Err(FloorRateProblem::MarketNotPositive(raw.market));
    }
    if raw.floor < raw.market {
        return Err(FloorRateProblem::FloorAboveMarket {
            market: raw.market,
            floor: raw.floor,
        });
    }
    if currency == Currency::USD && (raw.market != Decimal::ONE || raw.floor != Decimal::ONE) {
        return Err(FloorRateProblem::UsdNotOne);
    }
    let as_of: Date = raw
        .as_of
        .parse()
        .map_err(|_| FloorRateProblem::BadDate(raw.as_of.clone()))?;
    if raw.source.trim().is_empty() {
        return Err(FloorRateProblem::NoSource);
    }
    Ok(FloorRate {
        currency,
        market: raw.market,
        floor: raw.floor,
        as_of,
        source: raw.source.clone(),
    })
}

/// What is sold: a fixed package, a custom web amount, or any custom amount (the bound).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Offer {
    Package(PackageId),
    Custom {
        coins: u64,
    },
    /// Every custom amount at once, per coin (see the module notes).
    CustomAny,
}

impl fmt::Display for Offer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offer::Package(id) => f.write_str(id.as_str()),
            Offer::Custom { coins } => write!(f, "custom_{coins}"),
            Offer::CustomAny => f.write_str("custom_any"),
        }
    }
}

/// What one offer nets per credited coin, against what a coin pays out. Local amounts are in
/// `currency`; for [`Offer::CustomAny`] they are per coin and `coins` is 1.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CoinNet {
    pub country: BillingCountry,
    pub channel: Channel,
    pub currency: Currency,
    pub offer: Offer,
    /// Coins credited, bonus included.
    pub coins: u64,
    /// What the buyer pays, tax included.
    pub gross: Decimal,
    pub tax: Decimal,
    pub store_fee: Decimal,
    /// `gross − tax − store_fee`: what the platform keeps, in `currency`.
    pub net_local: Decimal,
    /// Units of `currency` per US dollar, at the floor.
    pub floor_rate: Decimal,
    pub net_usd_per_coin: Decimal,
    /// What one credited coin pays a creator, in US dollars.
    pub payout_per_coin: Decimal,
    /// The margin a coin must net on top of its payout, in US dollars.
    pub margin_per_coin: Decimal,
}

impl CoinNet {
    /// Payout plus margin: the least a coin must net.
    pub fn required_per_coin(&self) -> Decimal {
        self.payout_per_coin + self.margin_per_coin
    }

    /// Whether a coin of this offer nets less than it must.
    pub fn is_short(&self) -> bool {
        self.net_usd_per_coin < self.required_per_coin()
    }
}

/// Why the economics cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EconomicsError {
    #[error("no floor rate for {0}, which {1} prices in")]
    NoFloorRate(Currency, BillingCountry),
    #[error("pricing {0}: {1}")]
    Quote(BillingCountry, QuoteError),
}

/// Every country × channel × offer of `book`, netted at `floors` (see the module notes).
pub fn coin_economics(
    book: &PriceBook,
    floors: &FloorRates,
) -> Result<Vec<CoinNet>, EconomicsError> {
    let mut rows = Vec::new();
    for pricing in book.countries() {
        let floor = floors
            .floor(pricing.currency())
            .ok_or(EconomicsError::NoFloorRate(
                pricing.currency(),
                pricing.country(),
            ))?;
        let netting = Netting {
            book,
            pricing,
            floor: floor.floor,
            margin_rate: floors.margin_rate(),
        };
        for channel in Channel::ALL {
            for offer in offers(book, channel) {
                rows.push(netting.row(channel, offer)?);
            }
        }
    }
    Ok(rows)
}

/// The offers sold on `channel`: every package, and on the web the custom range.
fn offers(book: &PriceBook, channel: Channel) -> Vec<Offer> {
    let mut offers: Vec<Offer> = book
        .packages()
        .iter()
        .map(|package| Offer::Package(package.package_id))
        .collect();
    if channel.allows_custom_amounts() {
        let bounds = book.custom_bounds();
        offers.push(Offer::Custom {
            coins: bounds.min_coins,
        });
        offers.push(Offer::Custom {
            coins: bounds.max_coins,
        });
        offers.push(Offer::CustomAny);
    }
    offers
}

/// One country's prices, netted at its floor.
struct Netting<'a> {
    book: &'a PriceBook,
    pricing: &'a CountryPricing,
    floor: Decimal,
    margin_rate: Decimal,
}

impl Netting<'_> {
    fn row(&self, channel: Channel, offer: Offer) -> Result<CoinNet, EconomicsError> {
        let country = self.pricing.country();
        let (coins, gross, tax) = match offer {
            Offer::CustomAny => {
                let (gross, tax) = self.custom_bound_per_coin();
                (1, gross, tax)
            }
            Offer::Package(id) => self.quoted(channel, QuoteItem::Package(id))?,
            Offer::Custom { coins } => self.quoted(channel, QuoteItem::Custom { coins })?,
        };
        let store_fee = if channel.has_store_fee() {
            self.store_fee(gross - tax)
        } else {
            Money::zero(self.pricing.currency()).amount()
        };
        let net_local = gross - tax - store_fee;
        let credited = Decimal::from(coins);
        let payout_per_coin = DIAMOND_VALUE_USD * Decimal::from(diamonds_for(coins)) / credited;
        Ok(CoinNet {
            country,
            channel,
            currency: self.pricing.currency(),
            offer,
            coins,
            gross,
            tax,
            store_fee,
            net_local,
            floor_rate: self.floor,
            net_usd_per_coin: net_local / self.floor / credited,
            payout_per_coin,
            margin_per_coin: payout_per_coin * self.margin_rate,
        })
    }

    /// Coins credited, gross and tax of a quote without a region (a region's sales tax is added
    /// on top of the same net, so it does not change what the platform keeps).
    fn quoted(
        &self,
        channel: Channel,
        item: QuoteItem,
    ) -> Result<(u64, Decimal, Decimal), EconomicsError> {
        let country = self.pricing.country();
        let quote = self
            .book
            .quote(BillingLocation::from(country), channel, item)
            .map_err(|error| EconomicsError::Quote(country, error))?;
        let price: Price = quote.price();
        Ok((
            quote.total_coins(),
            price.gross().amount(),
            price.tax().amount(),
        ))
    }

    /// The least any custom amount nets per coin, as (gross, tax) per coin: see the module notes.
    fn custom_bound_per_coin(&self) -> (Decimal, Decimal) {
        let (price, rate) = (self.pricing.coin_price(), self.pricing.tax_rate());
        if !self.pricing.tax_inclusive() {
            // Tax on top: the net is the charmed price, at least `coin_price` a coin.
            return (price * (Decimal::ONE + rate), price * rate);
        }
        let half_unit = self.pricing.currency().smallest_unit() / Decimal::TWO;
        let min_coins = Decimal::from(self.book.custom_bounds().min_coins);
        let tax = price * rate / (Decimal::ONE + rate) + half_unit / min_coins;
        (price, tax)
    }

    /// The store's commission on a price net of tax, rounded up to the currency's minor unit.
    fn store_fee(&self, net_of_tax: Decimal) -> Decimal {
        let fee = net_of_tax * self.book.store_fee_rate();
        Money::rounded(fee, self.pricing.currency(), RoundingStrategy::AwayFromZero).amount()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    const BOOK_JSON: &str = include_str!("../data/price_book.json");

    fn code(text: &str) -> BillingCountry {
        text.parse().unwrap()
    }

    fn rows_of(book: &PriceBook) -> Vec<CoinNet> {
        coin_economics(book, FloorRates::embedded()).unwrap()
    }

    fn row<'a>(rows: &'a [CoinNet], country: &str, channel: Channel, offer: &str) -> &'a CoinNet {
        rows.iter()
            .find(|row| {
                row.country == code(country)
                    && row.channel == channel
                    && row.offer.to_string() == offer
            })
            .unwrap_or_else(|| panic!("no row {country} {channel} {offer}"))
    }

    /// The floor rates with one textual change, which must be present.
    fn floors_with(from: &str, to: &str) -> Result<FloorRates, FloorRatesError> {
        assert!(EMBEDDED_JSON.contains(from), "test edit {from:?} not found");
        FloorRates::from_json(&EMBEDDED_JSON.replacen(from, to, 1))
    }

    #[test]
    fn the_embedded_floor_rates_are_valid_and_cover_every_priced_currency() {
        let floors = FloorRates::from_json(EMBEDDED_JSON).unwrap();
        assert_eq!(floors.version(), "2026-12-08");
        assert_eq!(floors.margin_rate(), dec!(0.10));
        for pricing in PriceBook::embedded().countries() {
            let floor = floors.floor(pricing.currency());
            assert!(floor.is_some(), "no floor for {}", pricing.currency());
        }
        let turkish = floors.floor("TRY".parse().unwrap()).unwrap();
        assert_eq!((turkish.market, turkish.floor), (dec!(42), dec!(55)));
        assert_eq!(turkish.bound(), dec!(0.31));
    }

    #[test]
    fn every_offer_nets_at_least_the_payout_plus_margin_at_the_floor_rate() {
        let rows = rows_of(PriceBook::embedded());
        let book = PriceBook::embedded();
        let per_country = book.packages().len() * 3 + 3;
        assert_eq!(rows.len(), book.countries().len() * per_country);
        let short: Vec<String> = rows
            .iter()
            .filter(|row| row.is_short())
            .map(|row| {
                let (country, channel, offer) = (row.country, row.channel, row.offer);
                format!(
                    "{country} {channel} {offer}: {}",
                    row.net_usd_per_coin.round_dp(6)
                )
            })
            .collect();
        assert!(
            short.is_empty(),
            "coins netting less than payout + margin: {short:?}"
        );
    }

    #[test]
    fn a_turkish_coin_at_the_old_price_nets_less_than_its_payout() {
        // The hole of #18: 0.249 TRY a coin nets about USD 0.0049 at 42 TRY/USD, less at the floor.
        let text = BOOK_JSON.replacen(r#""coin_price": "0.389""#, r#""coin_price": "0.249""#, 1);
        assert_ne!(
            text, BOOK_JSON,
            "the TRY price is not where the test expects it"
        );
        let rows = rows_of(&PriceBook::from_json(&text).unwrap());
        let web = row(&rows, "TR", Channel::Web, "coins_700");
        assert!(web.is_short());
        assert!(
            web.net_usd_per_coin < dec!(0.005),
            "{}",
            web.net_usd_per_coin
        );
        assert!(row(&rows, "TR", Channel::Ios, "coins_17500").is_short());
        assert!(!row(&rows, "JP", Channel::Web, "coins_700").is_short());
    }

    #[test]
    fn an_app_coin_nets_the_price_less_tax_less_the_store_fee_at_the_floor() {
        let rows = rows_of(PriceBook::embedded());
        let ios = row(&rows, "JP", Channel::Ios, "coins_700");
        // ¥1570 with 10% consumption tax: ¥143 tax, 30% of ¥1427 (¥428.1) is ¥429 rounded up.
        assert_eq!(
            (ios.gross, ios.tax, ios.store_fee),
            (dec!(1570), dec!(143), dec!(429))
        );
        assert_eq!(ios.net_local, dec!(998));
        assert_eq!(ios.floor_rate, dec!(180));
        assert_eq!(ios.net_usd_per_coin, dec!(998) / dec!(180) / dec!(700));
        assert_eq!(ios.payout_per_coin, dec!(0.005));
        assert_eq!(ios.required_per_coin(), dec!(0.0055));
        // Sales tax is added on top in the US: the net is the displayed price.
        let us = row(&rows, "US", Channel::Web, "coins_700");
        assert_eq!(
            (us.gross, us.tax, us.net_local),
            (dec!(7.49), dec!(0), dec!(7.49))
        );
    }

    #[test]
    fn bonus_coins_are_counted_in_what_each_coin_nets() {
        let rows = rows_of(PriceBook::embedded());
        let largest = row(&rows, "JP", Channel::Web, "coins_17500");
        assert_eq!(largest.coins, 17_500 + 875);
        assert_eq!(
            largest.net_usd_per_coin,
            largest.net_local / largest.floor_rate / dec!(18375)
        );
    }

    #[test]
    fn the_custom_bound_is_below_what_any_custom_amount_nets() {
        let rows = rows_of(PriceBook::embedded());
        for pricing in PriceBook::embedded().countries() {
            let country = pricing.country().to_string();
            let bound = row(&rows, &country, Channel::Web, "custom_any").net_usd_per_coin;
            for coins in [30, 31, 99, 101, 777, 1001, 99_999, 2_500_000] {
                let quote = PriceBook::embedded()
                    .quote(
                        pricing.country().into(),
                        Channel::Web,
                        QuoteItem::Custom { coins },
                    )
                    .unwrap();
                let net = quote.price().net().amount();
                let floor = FloorRates::embedded()
                    .floor(pricing.currency())
                    .unwrap()
                    .floor;
                let per_coin = net / floor / Decimal::from(coins);
                assert!(bound <= per_coin, "{country} {coins}: {bound} > {per_coin}");
            }
        }
    }

    #[test]
    fn a_currency_without_a_floor_is_an_error_naming_it() {
        let floors = floors_with(r#""currency": "TRY""#, r#""currency": "CZK""#).unwrap();
        assert_eq!(
            coin_economics(PriceBook::embedded(), &floors)
                .unwrap_err()
                .to_string(),
            "no floor rate for TRY, which TR prices in"
        );
    }

    #[test]
    fn a_bad_floor_rate_is_refused_naming_the_entry() {
        let text = floors_with(r#""floor": "55""#, r#""floor": "40""#)
            .unwrap_err()
            .to_string();
        assert!(
            text.contains(r#"("TRY")"#) && text.contains("stronger than the market"),
            "{text}"
        );
        let text = floors_with(r#""market": "42""#, r#""market": "0""#)
            .unwrap_err()
            .to_string();
        assert!(text.contains("market 0 must be above 0"), "{text}");
        let text = floors_with(r#""as_of": "2026-12-08""#, r#""as_of": "yesterday""#)
            .unwrap_err()
            .to_string();
        assert!(text.contains("not a YYYY-MM-DD date"), "{text}");
        assert_eq!(
            floors_with(r#""rate": "0.10""#, r#""rate": "10""#).unwrap_err(),
            FloorRatesError::MarginOutOfRange(dec!(10))
        );
        let text = floors_with(r#""currency": "EUR""#, r#""currency": "USD""#)
            .unwrap_err()
            .to_string();
        assert!(text.contains("listed twice"), "{text}");
    }
}
