//! The pure rules of the coin economy: money, pricing, tax, age, refund windows, gifts, limits,
//! and the economics check that no coin nets less than its diamonds pay out.
//!
//! Synchronous and free of I/O: every function here takes the facts (the time, the user's zone,
//! the price book) as arguments, so each rule can be tested alone and run anywhere.

pub mod age;
pub mod country;
pub mod economics;
pub mod gifts;
pub mod limits;
pub mod money;
pub mod payouts;
pub mod price_book;
pub mod pricing;
pub mod refund;
pub mod reversals;
pub mod zone;

pub use age::{AgeBelowMinimum, AgeOk, age_on, check_age};
pub use country::{BillingCountry, BillingLocation, BillingRegion, REGION_REQUIRED};
pub use gifts::{GiftCatalog, GiftError, GiftId, GiftOrder, GiftTarget, SelfGift, TargetKind};
pub use money::{Currency, Money};
pub use price_book::PriceBook;
pub use pricing::{Channel, PackageId, Price, Quote, QuoteError, QuoteItem};
pub use refund::{AdminOverride, RefundRejected, check_refund, refundable_until};
pub use zone::Zone;
