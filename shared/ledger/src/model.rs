//! The single-table model: key layout, item types and their stored form (via `serde_dynamo`).
//!
//! Every item lives in one table keyed by strings `pk`/`sk`. The full layout, with sizes and
//! write costs, is in `MODEL.md` beside this crate; the short version:
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | wallet | `USER#<user>` | `WALLET` |
//! | open lot | `USER#<user>` | `WALLET#LOT#<purchased_at ms, 15 digits>#<purchase>` |
//! | history entry | `USER#<user>` | `TXN#<wallet version, 20 digits>` |
//! | lot expiry marker (TTL) | `USER#<user>` | `LOTEXP#<purchase>` |
//! | quote (TTL) | `QUOTE#<quote>` | `QUOTE` |
//! | purchase | `PURCHASE#<purchase>` | `PURCHASE` |
//! | payment event | `PAYEVENT#<event>` | `PAYEVENT` |
//! | idempotency record (TTL) | `IDEM#<user>#<key>` | `IDEM` |
//! | creator profile | `CREATOR#<user>` | `PROFILE` |
//! | creator diamonds shard | `DIAMONDS#<user>#<shard, 3 digits>` | `DIAMONDS` |
//! | refund instruction (outbox) | `OUTBOX#<purchase>` | `REFUND` |
//!
//! Open lots also carry `gsi1pk = LOTDUE#<n>` (n = hash of the purchase id mod
//! [`LOT_INDEX_SHARDS`]) and `gsi1sk = <refundable_until epoch s, 12 digits>#<purchase>`, so
//! the sweep finds lots past their deadline without scanning. A wallet and its open lots share a
//! sort-key prefix so one strongly consistent query reads the whole balance.

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use coins_rules::limits::DailyLimit;
use coins_rules::money::Money;

use crate::error::LedgerError;
use crate::ids::{EventId, GiftTxnId, PurchaseId, QuoteId, UserId};
use crate::store::Key;

/// Attribute names shared by the adapters and the table definition.
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    /// The TTL attribute: epoch seconds.
    pub const EXPIRES_AT: &str = "expires_at";
    pub const VERSION: &str = "version";
    pub const STATUS: &str = "status";
    pub const DIAMONDS: &str = "diamonds";
    pub const ITEM_TYPE: &str = "item_type";
}

/// Partitions of the open-lots index: spreads lot credits (one index write each) over several
/// index partitions so a purchase burst does not make one of them hot; the sweep reads them all.
pub const LOT_INDEX_SHARDS: u8 = 8;

/// Key builders. Ids cannot contain `#`, so every key parses back unambiguously. Plain
/// concatenation where no number is formatted: keys are built on every request.
pub mod keys {
    use super::*;

    pub const WALLET_SK: &str = "WALLET";
    pub const LOT_SK_PREFIX: &str = "WALLET#LOT#";
    pub const TXN_SK_PREFIX: &str = "TXN#";
    pub const MARKER_SK_PREFIX: &str = "LOTEXP#";
    pub const USER_PK_PREFIX: &str = "USER#";
    pub const DIAMONDS_PK_PREFIX: &str = "DIAMONDS#";
    pub const DIAMONDS_SK: &str = "DIAMONDS";
    pub const LOT_INDEX_PK_PREFIX: &str = "LOTDUE#";

    pub fn user_pk(user: &UserId) -> String {
        [USER_PK_PREFIX, user.as_str()].concat()
    }

    pub fn wallet(user: &UserId) -> Key {
        Key::new(user_pk(user), WALLET_SK)
    }

    /// Lots sort oldest first by credit time (ms), ties broken by purchase id.
    pub fn lot_sk(purchased_at: Timestamp, purchase: &PurchaseId) -> String {
        format!(
            "{LOT_SK_PREFIX}{:015}#{purchase}",
            purchased_at.as_millisecond()
        )
    }

    pub fn txn(user: &UserId, sequence: u64) -> Key {
        Key::new(user_pk(user), format!("{TXN_SK_PREFIX}{sequence:020}"))
    }

    pub fn marker(user: &UserId, purchase: &PurchaseId) -> Key {
        Key::new(
            user_pk(user),
            [MARKER_SK_PREFIX, purchase.as_str()].concat(),
        )
    }

    pub fn quote(quote: &QuoteId) -> Key {
        Key::new(["QUOTE#", quote.as_str()].concat(), "QUOTE")
    }

    pub fn purchase(purchase: &PurchaseId) -> Key {
        Key::new(["PURCHASE#", purchase.as_str()].concat(), "PURCHASE")
    }

    pub fn payment_event(event: &EventId) -> Key {
        Key::new(["PAYEVENT#", event.as_str()].concat(), "PAYEVENT")
    }

    /// Keys are scoped to the user: two users may pick the same key.
    pub fn idempotency(user: &UserId, key: &crate::ids::IdempotencyKey) -> Key {
        Key::new(["IDEM#", user.as_str(), "#", key.as_str()].concat(), "IDEM")
    }

    pub fn creator_pk(creator: &UserId) -> String {
        ["CREATOR#", creator.as_str()].concat()
    }

    pub fn creator_profile(creator: &UserId) -> Key {
        Key::new(creator_pk(creator), "PROFILE")
    }

    /// Each shard is its own partition: items sharing a partition key share that
    /// partition's ~1,000 write units a second, so shards under one key would not help.
    pub fn diamonds_shard(creator: &UserId, shard: u16) -> Key {
        Key::new(
            format!("{DIAMONDS_PK_PREFIX}{creator}#{shard:03}"),
            DIAMONDS_SK,
        )
    }

    pub fn outbox_refund(purchase: &PurchaseId) -> Key {
        Key::new(["OUTBOX#", purchase.as_str()].concat(), "REFUND")
    }

    pub fn lot_index_pk(shard: u8) -> String {
        format!("{LOT_INDEX_PK_PREFIX}{shard}")
    }

    pub fn lot_index_sk(refundable_until: Timestamp, purchase: &PurchaseId) -> String {
        format!("{:012}#{purchase}", refundable_until.as_second())
    }

    /// The index sort key bound selecting lots due at `now` (deadline ≤ now).
    pub fn lot_index_due_bound(now: Timestamp) -> String {
        format!("{:012}", now.as_second().saturating_add(1))
    }
}

/// A stable small hash of a string, for shard picking.
pub(crate) fn stable_hash(value: &str) -> u64 {
    let digest = Sha256::digest(value.as_bytes());
    u64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

/// The open-lots index partition of a purchase.
pub fn lot_index_shard(purchase: &PurchaseId) -> u8 {
    u8::try_from(stable_hash(purchase.as_str()) % u64::from(LOT_INDEX_SHARDS))
        .expect("a value below LOT_INDEX_SHARDS fits a u8")
}

/// What an item is; stored so audits and stream consumers can tell items apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    Wallet,
    Lot,
    LotMarker,
    History,
    Quote,
    Purchase,
    PaymentEvent,
    Idempotency,
    Creator,
    Diamonds,
    OutboxRefund,
}

/// The hot item of a user: balances, the daily limit and the version every change bumps.
///
/// `balance = non_refundable + Σ open lots' remaining` and `balance = purchased_total −
/// gifted_total − refunded_total` always; the audit checks both.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub user_id: UserId,
    /// Bumped by every change; the optimistic-concurrency guard of the wallet and its lots.
    pub version: u64,
    pub balance: u64,
    /// Coins no longer refundable (from closed lots), spent before any lot.
    pub non_refundable: u64,
    pub purchased_total: u64,
    pub gifted_total: u64,
    pub refunded_total: u64,
    #[serde(default)]
    pub daily_limit: DailyLimit,
    /// The sender's local day `spent_today` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_day: Option<Date>,
    #[serde(default)]
    pub spent_today: u64,
    pub updated_at: Timestamp,
}

impl WalletRecord {
    pub fn empty(user: &UserId, now: Timestamp) -> Self {
        let key = keys::wallet(user);
        WalletRecord {
            pk: key.pk,
            sk: key.sk,
            item_type: ItemType::Wallet,
            user_id: user.clone(),
            version: 0,
            balance: 0,
            non_refundable: 0,
            purchased_total: 0,
            gifted_total: 0,
            refunded_total: 0,
            daily_limit: DailyLimit::default(),
            spent_day: None,
            spent_today: 0,
            updated_at: now,
        }
    }

    /// Coins spent on gifts on `day` (0 if the counter belongs to another day).
    pub fn spent_on(&self, day: Date) -> u64 {
        if self.spent_day == Some(day) {
            self.spent_today
        } else {
            0
        }
    }
}

/// The coins of one credited purchase while its refund window is open.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub user_id: UserId,
    pub purchase_id: PurchaseId,
    pub coins: u64,
    pub remaining: u64,
    pub purchased_at: Timestamp,
    pub refundable_until: Timestamp,
    pub gsi1pk: String,
    pub gsi1sk: String,
}

impl LotRecord {
    pub fn new(
        user: &UserId,
        purchase: &PurchaseId,
        coins: u64,
        purchased_at: Timestamp,
        refundable_until: Timestamp,
    ) -> Self {
        LotRecord {
            pk: keys::user_pk(user),
            sk: keys::lot_sk(purchased_at, purchase),
            item_type: ItemType::Lot,
            user_id: user.clone(),
            purchase_id: purchase.clone(),
            coins,
            remaining: coins,
            purchased_at,
            refundable_until,
            gsi1pk: keys::lot_index_pk(lot_index_shard(purchase)),
            gsi1sk: keys::lot_index_sk(refundable_until, purchase),
        }
    }

    pub fn key(&self) -> Key {
        Key::new(self.pk.clone(), self.sk.clone())
    }

    pub fn untouched(&self) -> bool {
        self.remaining == self.coins
    }
}

/// A TTL'd item per open lot, expiring at the lot's deadline: its TTL deletion reaches the
/// refund-expiry function through DynamoDB Streams, which then closes the lot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotMarkerRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub user_id: UserId,
    pub purchase_id: PurchaseId,
    pub expires_at: i64,
}

/// Kind of a history entry.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    Purchase,
    Gift,
    Refund,
    /// A lot's window ended: its coins became non-refundable (the balance is unchanged).
    WindowClosed,
}

/// Where a gift was sent.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftTarget {
    /// `live` or `video` (validated by the caller).
    pub kind: String,
    pub id: String,
}

/// What a gift entry records besides the coins.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftDetails {
    pub gift_txn_id: GiftTxnId,
    pub recipient_id: UserId,
    pub gift_id: String,
    pub quantity: u32,
    pub target: GiftTarget,
    pub diamonds_shard: u16,
}

/// An immutable history entry: every balance change leaves one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub id: String,
    pub kind: TxnKind,
    /// The signed balance change: + purchase, − gift and refund, 0 window closed.
    pub coins: i64,
    pub balance_after: u64,
    pub at: Timestamp,
    /// The purchase (purchase, refund, window closed) or gift transaction (gift).
    #[serde(rename = "ref")]
    pub reference: String,
    /// Window closed: how many coins became non-refundable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_refundable_coins: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gift: Option<GiftDetails>,
}

/// The quoted price of a quote: net + tax = gross, in the billing country's currency.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QuotePrice {
    pub net: Money,
    pub tax: Money,
    pub gross: Money,
}

/// A price quote: exact, bound to its owner's billing country, and short-lived. The function
/// layer prices it with the rules; the ledger stores it and holds purchases to it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Quote {
    pub quote_id: QuoteId,
    pub user_id: UserId,
    /// ISO 3166-1 alpha-2 billing country; a payment from elsewhere is `region_mismatch`.
    pub country: String,
    /// `web`, `ios` or `android`.
    pub channel: String,
    pub coins: u64,
    pub bonus_coins: u64,
    pub total_coins: u64,
    pub price: QuotePrice,
    pub tax_inclusive: bool,
    pub price_book_version: String,
    pub expires_at: Timestamp,
}

/// A quote as stored. Its own expiry is `valid_until`, because `expires_at` is the TTL.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QuoteRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub quote_id: QuoteId,
    pub user_id: UserId,
    pub country: String,
    pub channel: String,
    pub coins: u64,
    pub bonus_coins: u64,
    pub total_coins: u64,
    pub price: QuotePrice,
    pub tax_inclusive: bool,
    pub price_book_version: String,
    pub valid_until: Timestamp,
    /// TTL: a day after the quote's own expiry, so a late purchase gets `quote_expired` rather
    /// than `not_found` (TTL deletion lags anyway; the ledger checks `valid_until` itself).
    pub expires_at: i64,
}

/// How long an expired quote is kept before TTL may delete it.
pub const QUOTE_RETENTION_S: i64 = 24 * 60 * 60;

impl From<Quote> for QuoteRecord {
    fn from(quote: Quote) -> Self {
        let key = keys::quote(&quote.quote_id);
        QuoteRecord {
            pk: key.pk,
            sk: key.sk,
            item_type: ItemType::Quote,
            expires_at: quote
                .expires_at
                .as_second()
                .saturating_add(QUOTE_RETENTION_S),
            quote_id: quote.quote_id,
            user_id: quote.user_id,
            country: quote.country,
            channel: quote.channel,
            coins: quote.coins,
            bonus_coins: quote.bonus_coins,
            total_coins: quote.total_coins,
            price: quote.price,
            tax_inclusive: quote.tax_inclusive,
            price_book_version: quote.price_book_version,
            valid_until: quote.expires_at,
        }
    }
}

impl From<QuoteRecord> for Quote {
    fn from(record: QuoteRecord) -> Self {
        Quote {
            quote_id: record.quote_id,
            user_id: record.user_id,
            country: record.country,
            channel: record.channel,
            coins: record.coins,
            bonus_coins: record.bonus_coins,
            total_coins: record.total_coins,
            price: record.price,
            tax_inclusive: record.tax_inclusive,
            price_book_version: record.price_book_version,
            expires_at: record.valid_until,
        }
    }
}

/// Where a purchase stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Created from a quote, waiting for the payment.
    Pending,
    /// Paid; its coins were credited as one lot.
    Credited,
    /// The provider reported a failed payment.
    Failed,
    /// The payment did not match the quote (amount, currency or region): nothing credited.
    Rejected,
    /// Refunded: coins taken back, a refund instruction in the outbox.
    Refunded,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "pending",
            PurchaseStatus::Credited => "credited",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::Rejected => "rejected",
            PurchaseStatus::Refunded => "refunded",
        }
    }
}

/// Why a succeeded payment was not credited.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentRejection {
    /// HTTP code `region_mismatch`: paid from another country than the quote's.
    RegionMismatch,
    /// The amount paid differs from the quoted gross price.
    AmountMismatch,
    /// The currency paid differs from the quote's.
    CurrencyMismatch,
}

impl PaymentRejection {
    pub fn code(self) -> &'static str {
        match self {
            PaymentRejection::RegionMismatch => "region_mismatch",
            PaymentRejection::AmountMismatch => "amount_mismatch",
            PaymentRejection::CurrencyMismatch => "currency_mismatch",
        }
    }
}

/// Why a refund was made.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The buyer asked, inside the window.
    Customer,
    /// Admin override: the coins did not work as sold.
    Defective,
    /// Admin override: a legal obligation.
    Legal,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub purchase_id: PurchaseId,
    pub user_id: UserId,
    pub quote_id: QuoteId,
    /// The buyer's IANA zone at purchase: the refund window is counted in it.
    pub zone: String,
    pub country: String,
    pub channel: String,
    pub coins: u64,
    pub bonus_coins: u64,
    pub total_coins: u64,
    /// The quoted gross price, honoured even if the price book changed since.
    pub amount: Money,
    pub price_book_version: String,
    pub status: PurchaseStatus,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refundable_until: Option<Timestamp>,
    /// The lot's sort key while credited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot_sk: Option<String>,
    /// Set when the window closure ran: the lot's remaining coins at that moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by_event: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<PaymentRejection>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_reason: Option<RefundReason>,
    /// A random token per refund call: lets a retried call recognise its own refund after a
    /// lost response instead of reporting `already_refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_nonce: Option<String>,
}

/// What the provider told us.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentKind {
    Succeeded,
    Failed,
}

/// A payment event seen: its existence makes a redelivery a replay.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentEventRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub event_id: EventId,
    pub purchase_id: PurchaseId,
    pub kind: PaymentKind,
    /// `credited`, `failed`, or the rejection code.
    pub outcome: String,
    pub received_at: Timestamp,
}

/// The first result of a keyed request, returned to any retry with the same key and body.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub user_id: UserId,
    /// SHA-256 of the request's canonical form.
    pub request_hash: String,
    /// The first response, as JSON.
    pub response: String,
    pub created_at: Timestamp,
    pub expires_at: i64,
}

/// An enrolled creator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CreatorRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub user_id: UserId,
    pub enrolled_at: Timestamp,
    /// How many diamond shards this creator's gifts spread over; fixed at enrollment (from
    /// [`crate::LedgerConfig::creator_shards`]) so every reader agrees. An operator may raise
    /// it for a very hot creator, never lower it (earnings sum shards `0..diamond_shards`).
    pub diamond_shards: u16,
}

/// A refund instruction for the payment provider, written with the coin reversal; a stream
/// consumer (on INSERT of this item type) sends it, so money and coins never diverge.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OutboxRefundRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub purchase_id: PurchaseId,
    pub user_id: UserId,
    pub amount: Money,
    pub reason: RefundReason,
    pub created_at: Timestamp,
    pub status: String,
}

/// One creator's diamonds on one shard: a counter only ever added to (DynamoDB `ADD`), so
/// concurrent gifts to a hot creator never conflict on it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DiamondsRecord {
    pub pk: String,
    pub sk: String,
    pub item_type: ItemType,
    pub diamonds: u64,
}

/// Declares [`Record`] as written and derives from its one list of variants what every variant
/// has: the key and item type accessors, `From<XRecord> for Record` and `TryFrom<Record> for
/// XRecord` (reading the wrong type where a key promised another is corrupt data).
macro_rules! record_enum {
    ($(#[$meta:meta])* pub enum Record { $($variant:ident($record:ident)),* $(,)? }) => {
        $(#[$meta])*
        pub enum Record {
            $($variant($record)),*
        }

        impl Record {
            pub fn pk(&self) -> &str {
                match self {
                    $(Record::$variant(record) => &record.pk),*
                }
            }

            pub fn sk(&self) -> &str {
                match self {
                    $(Record::$variant(record) => &record.sk),*
                }
            }

            pub fn item_type(&self) -> ItemType {
                match self {
                    $(Record::$variant(record) => record.item_type),*
                }
            }
        }

        $(
            impl From<$record> for Record {
                fn from(record: $record) -> Record {
                    Record::$variant(record)
                }
            }

            impl TryFrom<Record> for $record {
                type Error = LedgerError;

                fn try_from(record: Record) -> Result<Self, LedgerError> {
                    match record {
                        Record::$variant(inner) => Ok(inner),
                        other => Err(LedgerError::Corrupt(format!(
                            "expected {} at {:?}, found {:?}",
                            stringify!($variant),
                            other.key(),
                            other.item_type()
                        ))),
                    }
                }
            }
        )*
    };
}

record_enum! {
    /// Any item of the table, typed: what the storage port reads and writes. The adapters decide
    /// the stored form (`serde_dynamo` in [`crate::dynamo`]; the records themselves in memory), so
    /// the ledger never handles attribute maps.
    #[derive(Clone, PartialEq, Eq, Debug, Serialize)]
    #[serde(untagged)]
    pub enum Record {
        Wallet(WalletRecord),
        Lot(LotRecord),
        LotMarker(LotMarkerRecord),
        History(HistoryRecord),
        Quote(QuoteRecord),
        Purchase(PurchaseRecord),
        PaymentEvent(PaymentEventRecord),
        Idempotency(IdempotencyRecord),
        Creator(CreatorRecord),
        Diamonds(DiamondsRecord),
        OutboxRefund(OutboxRefundRecord),
    }
}

impl Record {
    pub fn key(&self) -> Key {
        Key::new(self.pk(), self.sk())
    }

    /// The optimistic-concurrency version (wallets only).
    pub fn version(&self) -> Option<u64> {
        match self {
            Record::Wallet(wallet) => Some(wallet.version),
            _ => None,
        }
    }

    /// The TTL attribute `expires_at`, epoch seconds, on the items that expire.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Record::LotMarker(marker) => Some(marker.expires_at),
            Record::Quote(quote) => Some(quote.expires_at),
            Record::Idempotency(record) => Some(record.expires_at),
            _ => None,
        }
    }

    /// The open-lots index key (`gsi1pk`, `gsi1sk`): open lots only.
    pub fn open_lots_index_key(&self) -> Option<(&str, &str)> {
        match self {
            Record::Lot(lot) => Some((&lot.gsi1pk, &lot.gsi1sk)),
            _ => None,
        }
    }

    /// A purchase's status.
    pub fn purchase_status(&self) -> Option<PurchaseStatus> {
        match self {
            Record::Purchase(purchase) => Some(purchase.status),
            _ => None,
        }
    }
}

/// The lot a TTL'd marker stands for, parsed back from the marker's keys in a stream image.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LotMarker {
    pub user_id: UserId,
    pub purchase_id: PurchaseId,
}

/// The keys are not those of a lot marker (the stream carries every item type).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("not a lot marker: pk={pk:?} sk={sk:?}")]
pub struct NotALotMarker {
    pub pk: String,
    pub sk: String,
}

impl LotMarker {
    /// Parses `pk = USER#<user>`, `sk = LOTEXP#<purchase>`.
    pub fn from_keys(pk: &str, sk: &str) -> Result<LotMarker, NotALotMarker> {
        let not_a_marker = || NotALotMarker {
            pk: pk.to_owned(),
            sk: sk.to_owned(),
        };
        let user = pk
            .strip_prefix(keys::USER_PK_PREFIX)
            .and_then(|user| UserId::new(user).ok())
            .ok_or_else(not_a_marker)?;
        let purchase = sk
            .strip_prefix(keys::MARKER_SK_PREFIX)
            .and_then(|purchase| PurchaseId::new(purchase).ok())
            .ok_or_else(not_a_marker)?;
        Ok(LotMarker {
            user_id: user,
            purchase_id: purchase,
        })
    }

    pub fn key(&self) -> Key {
        keys::marker(&self.user_id, &self.purchase_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_parses_back_from_its_keys() {
        let user = UserId::new("u-1").unwrap();
        let purchase = PurchaseId::generate();
        let key = keys::marker(&user, &purchase);
        let marker = LotMarker::from_keys(&key.pk, &key.sk).unwrap();
        assert_eq!(marker.user_id, user);
        assert_eq!(marker.purchase_id, purchase);
        assert_eq!(marker.key(), key);
    }

    #[test]
    fn other_items_are_not_markers() {
        assert!(LotMarker::from_keys("USER#u-1", "WALLET").is_err());
        assert!(LotMarker::from_keys("PURCHASE#pur_x", "LOTEXP#pur_x").is_err());
        assert!(LotMarker::from_keys("USER#", "LOTEXP#pur_x").is_err());
    }

    #[test]
    fn lots_sort_oldest_first_by_key() {
        let older = keys::lot_sk(
            "2026-03-01T00:00:00Z".parse().unwrap(),
            &PurchaseId::generate(),
        );
        let newer = keys::lot_sk(
            "2026-03-02T00:00:00Z".parse().unwrap(),
            &PurchaseId::generate(),
        );
        assert!(older < newer);
        assert!(older.starts_with(keys::WALLET_SK));
    }

    #[test]
    fn the_due_bound_selects_deadlines_up_to_now() {
        let purchase = PurchaseId::generate();
        let deadline: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
        let sk = keys::lot_index_sk(deadline, &purchase);
        assert!(sk < keys::lot_index_due_bound(deadline));
        assert!(sk > keys::lot_index_due_bound(deadline - jiff::SignedDuration::from_secs(1)));
    }
}
