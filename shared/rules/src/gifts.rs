//! Gifts: the versioned catalog (`data/gift_catalog.json`), what a gift costs, and what it earns.
//!
//! A gift of `quantity` items costs `coins × quantity`, checked. The creator is credited diamonds
//! equal to the coins spent, and a diamond's payout value is a fixed USD rate rounded down to the
//! cent, so the platform never pays out a fraction it did not earn. Sent gifts are final.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::LazyLock;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use coins_ids::UserId;

use crate::money::{Currency, Money};

/// The catalog shipped with this build.
const EMBEDDED_JSON: &str = include_str!("../data/gift_catalog.json");

static EMBEDDED: LazyLock<GiftCatalog> = LazyLock::new(|| {
    // `the_embedded_catalog_is_valid` loads the same text, so a bad file fails CI, not a cold start.
    GiftCatalog::from_json(EMBEDDED_JSON)
        .unwrap_or_else(|error| panic!("the embedded gift catalog is invalid: {error}"))
});

/// How many of one gift a single send (a "combo") may hold.
pub const QUANTITY_BOUNDS: RangeInclusive<u32> = 1..=9999;

/// What one diamond pays a creator: half a US cent.
pub const DIAMOND_VALUE_USD: Decimal = Decimal::from_parts(5, 0, 0, false, 3);

/// Payouts are rounded down (toward zero) to the cent: a creator is never paid a fraction of a
/// cent that their diamonds have not earned.
pub const PAYOUT_ROUNDING: RoundingStrategy = RoundingStrategy::ToZero;

/// Longest gift id we accept.
const MAX_GIFT_ID_LEN: usize = 64;

/// A gift's id, e.g. `money_gun`: lower-case snake_case.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GiftId(String);

/// A string that cannot be a gift id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a gift id (lower-case snake_case, at most 64 characters)")]
pub struct BadGiftId(pub String);

impl GiftId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for GiftId {
    type Err = BadGiftId;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let well_formed = bytes.len() <= MAX_GIFT_ID_LEN
            && bytes.first().is_some_and(u8::is_ascii_lowercase)
            && bytes
                .iter()
                .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if well_formed {
            Ok(GiftId(text.to_owned()))
        } else {
            Err(BadGiftId(text.to_owned()))
        }
    }
}

impl TryFrom<String> for GiftId {
    type Error = BadGiftId;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<GiftId> for String {
    fn from(id: GiftId) -> Self {
        id.0
    }
}

impl fmt::Display for GiftId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One catalog entry, as `GET /v1/gifts/catalog` lists it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Gift {
    pub gift_id: GiftId,
    pub name: String,
    /// Price of one item.
    pub coins: u64,
}

/// Where a gift is sent: a live stream or a video.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Live,
    Video,
}

/// Longest live or video id accepted.
pub const MAX_TARGET_ID_LEN: usize = 128;

/// The live or video a gift is sent on: a kind and an id of 1 to [`MAX_TARGET_ID_LEN`]
/// characters of the safe id set ([`coins_ids::is_id_char`]), checked once, here, wherever the
/// target comes from.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(try_from = "RawTarget")]
pub struct GiftTarget {
    kind: TargetKind,
    id: String,
}

#[derive(Deserialize)]
struct RawTarget {
    kind: TargetKind,
    id: String,
}

/// A target id that is empty, too long or holds control characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "target.id must be 1 to {MAX_TARGET_ID_LEN} characters: letters, digits and - _ . : | @ + = /"
)]
pub struct BadTargetId;

impl GiftTarget {
    pub fn new(kind: TargetKind, id: impl Into<String>) -> Result<GiftTarget, BadTargetId> {
        let id = id.into();
        if id.is_empty() || id.len() > MAX_TARGET_ID_LEN || !id.chars().all(coins_ids::is_id_char) {
            return Err(BadTargetId);
        }
        Ok(GiftTarget { kind, id })
    }

    pub fn kind(&self) -> TargetKind {
        self.kind
    }

    pub fn id(&self) -> &str {
        &self.id
    }
}

impl TryFrom<RawTarget> for GiftTarget {
    type Error = BadTargetId;
    fn try_from(raw: RawTarget) -> Result<Self, BadTargetId> {
        GiftTarget::new(raw.kind, raw.id)
    }
}

/// A gift priced by the catalog: only [`GiftCatalog::order`] makes one, so a quantity out of
/// bounds or an unknown gift never reaches the ledger.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GiftOrder {
    gift_id: GiftId,
    quantity: u32,
    coins: u64,
}

impl GiftOrder {
    pub fn gift_id(&self) -> &GiftId {
        &self.gift_id
    }

    pub fn quantity(&self) -> u32 {
        self.quantity
    }

    /// What the sender pays.
    pub fn coins(&self) -> u64 {
        self.coins
    }

    /// What the creator earns.
    pub fn diamonds(&self) -> u64 {
        diamonds_for(self.coins)
    }
}

/// A user sending a gift to themself. HTTP 422 `self_gift`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a gift cannot be sent to oneself")]
pub struct SelfGift;

/// Why a gift cannot be sent. Each variant's doc names its HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftError {
    /// No such gift in the catalog. HTTP 400 `invalid_request`.
    #[error("unknown gift {0}")]
    UnknownGift(GiftId),
    /// Quantity outside [`QUANTITY_BOUNDS`]. HTTP 400 `invalid_request`.
    #[error("quantity {quantity} is outside {min}..={max}")]
    InvalidQuantity { quantity: u32, min: u32, max: u32 },
    /// The price does not fit a coin count (impossible within the bounds). HTTP 400.
    #[error("the gift's price overflows")]
    PriceOverflow,
}

/// Why a gift catalog was refused. Each message names the entry at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftCatalogError {
    #[error("gift catalog is not valid: {0}")]
    Malformed(String),
    #[error("gift catalog version is empty")]
    EmptyVersion,
    #[error("gift catalog entry gifts[{index}] ({gift_id:?}): {problem}")]
    Entry {
        index: usize,
        gift_id: String,
        problem: GiftEntryProblem,
    },
}

/// What is wrong with one catalog entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GiftEntryProblem {
    #[error("not a gift id (lower-case snake_case, at most 64 characters)")]
    BadGiftId,
    #[error("listed twice")]
    Duplicate,
    #[error("a gift costs at least 1 coin")]
    ZeroCoins,
    #[error("the name is empty")]
    EmptyName,
}

/// The validated gift catalog.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct GiftCatalog {
    version: String,
    gifts: Vec<Gift>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalog {
    version: String,
    gifts: Vec<RawGift>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGift {
    gift_id: String,
    name: String,
    coins: u64,
}

impl GiftCatalog {
    /// The catalog compiled into this binary, parsed and validated on first use.
    pub fn embedded() -> &'static GiftCatalog {
        &EMBEDDED
    }

    /// Parses and validates a catalog.
    pub fn from_json(text: &str) -> Result<GiftCatalog, GiftCatalogError> {
        let raw: RawCatalog =
            serde_json::from_str(text).map_err(|e| GiftCatalogError::Malformed(e.to_string()))?;
        if raw.version.trim().is_empty() {
            return Err(GiftCatalogError::EmptyVersion);
        }
        let mut gifts: Vec<Gift> = Vec::with_capacity(raw.gifts.len());
        for (index, entry) in raw.gifts.into_iter().enumerate() {
            let fail = |problem| GiftCatalogError::Entry {
                index,
                gift_id: entry.gift_id.clone(),
                problem,
            };
            let gift_id: GiftId = entry
                .gift_id
                .parse()
                .map_err(|_| fail(GiftEntryProblem::BadGiftId))?;
            if gifts.iter().any(|gift| gift.gift_id == gift_id) {
                return Err(fail(GiftEntryProblem::Duplicate));
            }
            if entry.coins == 0 {
                return Err(fail(GiftEntryProblem::ZeroCoins));
            }
            if entry.name.trim().is_empty() {
                return Err(fail(GiftEntryProblem::EmptyName));
            }
            gifts.push(Gift {
                gift_id,
                name: entry.name,
                coins: entry.coins,
            });
        }
        Ok(GiftCatalog {
            version: raw.version,
            gifts,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Every gift, in catalog order.
    pub fn gifts(&self) -> &[Gift] {
        &self.gifts
    }

    pub fn get(&self, gift_id: &GiftId) -> Option<&Gift> {
        self.gifts.iter().find(|gift| &gift.gift_id == gift_id)
    }

    /// The coins `quantity` items of `gift_id` cost.
    pub fn price(&self, gift_id: &GiftId, quantity: u32) -> Result<u64, GiftError> {
        let gift = self
            .get(gift_id)
            .ok_or_else(|| GiftError::UnknownGift(gift_id.clone()))?;
        if !QUANTITY_BOUNDS.contains(&quantity) {
            return Err(GiftError::InvalidQuantity {
                quantity,
                min: *QUANTITY_BOUNDS.start(),
                max: *QUANTITY_BOUNDS.end(),
            });
        }
        gift.coins
            .checked_mul(u64::from(quantity))
            .ok_or(GiftError::PriceOverflow)
    }

    /// `quantity` items of `gift_id`, priced.
    pub fn order(&self, gift_id: &GiftId, quantity: u32) -> Result<GiftOrder, GiftError> {
        let coins = self.price(gift_id, quantity)?;
        Ok(GiftOrder {
            gift_id: gift_id.clone(),
            quantity,
            coins,
        })
    }
}

/// Refuses a gift from a user to themself.
pub fn check_recipient(sender: &UserId, recipient: &UserId) -> Result<(), SelfGift> {
    if sender == recipient {
        Err(SelfGift)
    } else {
        Ok(())
    }
}

/// Diamonds credited to the creator for a gift that cost `coins`: one per coin.
pub fn diamonds_for(coins: u64) -> u64 {
    coins
}

/// What `diamonds` pay out: [`DIAMOND_VALUE_USD`] each, rounded down to the cent.
pub fn payout_value(diamonds: u64) -> Money {
    // u64::MAX × 0.005 needs 67 bits; a Decimal holds 96, so this cannot overflow.
    let value = Decimal::from(diamonds) * DIAMOND_VALUE_USD;
    Money::rounded(value, Currency::USD, PAYOUT_ROUNDING)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> GiftId {
        text.parse().unwrap()
    }

    fn catalog() -> &'static GiftCatalog {
        GiftCatalog::embedded()
    }

    #[test]
    fn the_embedded_catalog_is_valid() {
        let loaded = GiftCatalog::from_json(EMBEDDED_JSON).unwrap();
        assert_eq!(&loaded, catalog());
        assert_eq!(loaded.version(), "2026-11-01");
    }

    #[test]
    fn the_catalog_lists_the_known_gifts_at_their_prices() {
        let prices: Vec<(&str, u64)> = catalog()
            .gifts()
            .iter()
            .map(|gift| (gift.gift_id.as_str(), gift.coins))
            .collect();
        assert_eq!(
            prices,
            [
                ("rose", 1),
                ("finger_heart", 5),
                ("perfume", 20),
                ("doughnut", 30),
                ("hand_hearts", 100),
                ("corgi", 299),
                ("money_gun", 500),
                ("galaxy", 1000),
                ("lion", 29999),
                ("universe", 44999)
            ]
        );
        assert_eq!(catalog().get(&id("rose")).unwrap().name, "Rose");
    }

    #[test]
    fn a_combo_costs_the_price_times_the_quantity() {
        assert_eq!(catalog().price(&id("rose"), 5), Ok(5));
        assert_eq!(catalog().price(&id("corgi"), 3), Ok(897));
        assert_eq!(catalog().price(&id("universe"), 9999), Ok(449_945_001));
    }

    #[test]
    fn a_quantity_outside_the_bounds_is_refused() {
        let invalid = |quantity| GiftError::InvalidQuantity {
            quantity,
            min: 1,
            max: 9999,
        };
        assert_eq!(catalog().price(&id("rose"), 0), Err(invalid(0)));
        assert_eq!(catalog().price(&id("rose"), 10_000), Err(invalid(10_000)));
    }

    #[test]
    fn an_unknown_gift_is_refused_by_name() {
        assert_eq!(
            catalog().price(&id("dragon"), 1),
            Err(GiftError::UnknownGift(id("dragon")))
        );
    }

    #[test]
    fn gifting_oneself_is_refused() {
        let user = |id: &str| UserId::new(id).unwrap();
        assert_eq!(check_recipient(&user("u1"), &user("u1")), Err(SelfGift));
        assert_eq!(check_recipient(&user("u1"), &user("u2")), Ok(()));
    }

    #[test]
    fn an_order_carries_its_price_and_the_diamonds_it_earns() {
        let order = catalog().order(&id("corgi"), 3).unwrap();
        assert_eq!(
            (order.coins(), order.diamonds(), order.quantity()),
            (897, 897, 3)
        );
        assert!(catalog().order(&id("corgi"), 0).is_err());
    }

    #[test]
    fn diamonds_equal_coins_and_pay_half_a_cent_rounded_down() {
        assert_eq!(diamonds_for(897), 897);
        assert_eq!(payout_value(0).to_string(), "0.00");
        assert_eq!(payout_value(1).to_string(), "0.00");
        assert_eq!(payout_value(2).to_string(), "0.01");
        assert_eq!(payout_value(299).to_string(), "1.49");
        assert_eq!(payout_value(44_999).to_string(), "224.99");
        assert_eq!(payout_value(u64::MAX).to_string(), "92233720368547758.07");
        assert_eq!(payout_value(1).currency(), Currency::USD);
    }

    #[test]
    fn targets_and_ids_travel_in_their_wire_form() {
        let target: GiftTarget = serde_json::from_str(r#"{"kind":"live","id":"l-1"}"#).unwrap();
        assert_eq!((target.kind(), target.id()), (TargetKind::Live, "l-1"));
        assert!(serde_json::from_str::<GiftTarget>(r#"{"kind":"story","id":"x"}"#).is_err());
        for bad in ["", "a\nb", "live\u{202E}1", "live 1"] {
            assert_eq!(GiftTarget::new(TargetKind::Video, bad), Err(BadTargetId));
        }
        assert!(GiftTarget::new(TargetKind::Video, "v".repeat(MAX_TARGET_ID_LEN + 1)).is_err());
        assert!("Money Gun".parse::<GiftId>().is_err());
        assert!("".parse::<GiftId>().is_err());
    }

    #[test]
    fn the_catalog_serializes_as_the_api_lists_it() {
        let json = serde_json::to_value(catalog()).unwrap();
        assert_eq!(json["version"], "2026-11-01");
        assert_eq!(
            json["gifts"][6],
            serde_json::json!({"gift_id": "money_gun", "name": "Money Gun", "coins": 500})
        );
    }

    #[test]
    fn a_bad_catalog_is_refused_naming_the_entry() {
        let edit = |from: &str, to: &str| {
            assert!(EMBEDDED_JSON.contains(from));
            GiftCatalog::from_json(&EMBEDDED_JSON.replacen(from, to, 1))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            edit(r#""coins": 299"#, r#""coins": 0"#),
            r#"gift catalog entry gifts[5] ("corgi"): a gift costs at least 1 coin"#
        );
        assert_eq!(
            edit(r#""gift_id": "lion""#, r#""gift_id": "rose""#),
            r#"gift catalog entry gifts[8] ("rose"): listed twice"#
        );
        assert_eq!(
            edit(r#""gift_id": "galaxy""#, r#""gift_id": "Galaxy""#),
            r#"gift catalog entry gifts[7] ("Galaxy"): not a gift id (lower-case snake_case, at most 64 characters)"#
        );
        assert_eq!(
            edit(r#""name": "Perfume""#, r#""name": " ""#),
            r#"gift catalog entry gifts[2] ("perfume"): the name is empty"#
        );
    }
}
