//! The table layout, in one place: every item's keys, its item type and its row, and the one
//! constructor of each row. Nothing else in the ledger names a key attribute or builds a key.
//!
//! Keys are derived from the row (a wallet's key from its user, a lot's from its user, credit
//! time and purchase), so a row cannot disagree with its key; the DynamoDB adapter writes them
//! as the `pk`/`sk` (and for open lots `gsi1pk`/`gsi1sk`) attributes with `item_type` beside
//! them. `MODEL.md` beside this crate gives sizes and write costs.
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | wallet | `USER#<user>` | `WALLET` |
//! | open lot | `USER#<user>` | `WALLET#LOT#<wallet version that credited it, 20 digits>#<purchase>` |
//! | history entry | `USER#<user>` | `TXN#<wallet version, 20 digits>` |
//! | lot expiry marker (TTL) | `USER#<user>` | `LOTEXP#<purchase>` |
//! | quote (TTL) | `QUOTE#<quote>` | `QUOTE` |
//! | purchase | `PURCHASE#<purchase>` | `PURCHASE` |
//! | refund instruction (outbox) | `PURCHASE#<purchase>`, or `PAYINTENT#<payment>` for a payment without a purchase | `REFUND#<refund>` |
//! | payment → purchase | `PAYINTENT#<payment>` | `PAYINTENT` |
//! | store transaction (its refund before credit, its buyer's consent) | `PAYINTENT#<store transaction>` | `STORE` |
//! | payment event | `PAYEVENT#<event>` | `PAYEVENT` |
//! | idempotency record (TTL) | `IDEM#<user>#<key>` | `IDEM` |
//! | gift entry, keyed by its idempotency key (TTL once counted) | `GIFT#<sender>#<key>` | `GIFT` |
//! | creator profile | `CREATOR#<user>` | `PROFILE` |
//! | creator earnings | `CREATOR#<user>` | `EARNINGS` |
//! | payout account change (who, old, new, when) | `CREATOR#<user>` | `PAYOUTACCT#<change number, 6 digits>` |
//! | gifts received (pages of up to 100 gifts counted together) | `GIFTS#<user>#<n>` (n = hash of its newest gift mod [`FEED_SHARDS`]) | `<newest gift ms, 15 digits>#<gift>` |
//! | payout (outbox) | `CREATOR#<user>` | `PAYOUT#<created ms, 15 digits>#<payout>` |
//!
//! Open lots also carry `gsi1pk = LOTDUE#<n>` (n = hash of the purchase id mod
//! [`LOT_INDEX_SHARDS`]) and `gsi1sk = <refundable_until epoch s, 12 digits>#<purchase>`, so
//! the sweep finds lots past their deadline without scanning; purchases carry `gsi2pk =
//! PURCHASES#<user>` and `gsi2sk = <created ms, 15 digits>#<purchase>`, a user's purchases
//! newest first. What the stream's consumers still owe carries `gsi3pk = OUTSTANDING#<kind>#<n>`
//! (n = hash of its id mod [`OUTSTANDING_SHARDS`]) and `gsi3sk = <since ms, 15 digits>#<id>`: a
//! gift entry until counted, a refund instruction or a payout while pending; the consumers'
//! sweeps and the audit read it by age. Every index projects keys only. A wallet and its open lots share a sort-key
//! prefix so one strongly consistent query reads the whole balance; a purchase and its refund
//! instructions share a partition, so one query reads what the purchase view shows.

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use coins_ids::{
    ConnectedAccountId, EventId, GiftTxnId, IdempotencyKey, PaymentIntentId, PayoutId, PurchaseId,
    QuoteId, RefundId, ReversalRef, TxnId, UserId,
};
use coins_rules::money::Money;
use coins_rules::price_book::PriceBookVersion;
use coins_rules::pricing::{payment_due_by, quote_expires_at};
use coins_rules::{BillingCountry, BillingRegion, Channel, GiftOrder, GiftTarget, Zone};

use crate::domain::{Lot, Wallet};
use crate::error::LedgerError;
use crate::store::{Index, Key};

/// Attribute names shared by the adapters and the table definition.
pub mod attr {
    pub const PK: &str = "pk";
    pub const SK: &str = "sk";
    pub const GSI1PK: &str = "gsi1pk";
    pub const GSI1SK: &str = "gsi1sk";
    pub const GSI2PK: &str = "gsi2pk";
    pub const GSI2SK: &str = "gsi2sk";
    pub const GSI3PK: &str = "gsi3pk";
    pub const GSI3SK: &str = "gsi3sk";
    /// The TTL attribute: epoch seconds.
    pub const EXPIRES_AT: &str = "expires_at";
    pub const VERSION: &str = "version";
    pub const STATUS: &str = "status";
    pub const ITEM_TYPE: &str = "item_type";
}

/// Partitions of the open-lots index: spreads lot credits (one index write each) over several
/// index partitions so a purchase burst does not make one of them hot; the sweep reads them all.
pub const LOT_INDEX_SHARDS: u8 = 8;

/// Partitions of each creator's gifts-received feed. A feed takes ~0.2 KB per gift, written in
/// a transaction (2 units per KB): at 10,000 gifts/s into one creator that is ~4,000 write
/// units/s, over the 1,000 a partition takes, so pages spread over 8 partitions (~500 each).
/// Readers merge them.
pub const FEED_SHARDS: u8 = 8;

/// Partitions of the outstanding index, per kind. Every gift enters it when sent and leaves it
/// when counted: at 10,000 gifts a second that is 20,000 index writes a second, and an index
/// partition takes 1,000 (a hot index partition throttles the table's writes), so 32 (~625
/// each). The consumers' sweeps read all of theirs a few times an hour.
pub const OUTSTANDING_SHARDS: u8 = 32;

/// Key builders. Ids cannot contain `#`, so every key parses back unambiguously. Plain
/// concatenation where no number is formatted: keys are built on every request.
pub mod keys {
    use super::*;

    pub const WALLET_SK: &str = "WALLET";
    pub const LOT_SK_PREFIX: &str = "WALLET#LOT#";
    pub const TXN_SK_PREFIX: &str = "TXN#";
    pub const MARKER_SK_PREFIX: &str = "LOTEXP#";
    pub const USER_PK_PREFIX: &str = "USER#";
    pub const EARNINGS_SK: &str = "EARNINGS";
    pub const FEED_PK_PREFIX: &str = "GIFTS#";
    pub const PAYOUT_SK_PREFIX: &str = "PAYOUT#";
    pub const LOT_INDEX_PK_PREFIX: &str = "LOTDUE#";
    pub const GIFT_PK_PREFIX: &str = "GIFT#";
    pub const GIFT_SK: &str = "GIFT";
    pub const OUTSTANDING_PK_PREFIX: &str = "OUTSTANDING#";

    pub fn user_pk(user: &UserId) -> String {
        [USER_PK_PREFIX, user.as_str()].concat()
    }

    pub fn wallet(user: &UserId) -> Key {
        Key::new(user_pk(user), WALLET_SK)
    }

    /// Lots sort in the order they were credited: by the wallet version that credited them.
    /// Not by time: two credits in one millisecond (or on clocks a little apart) must still
    /// keep their order, since what is left of each lot is derived from it.
    pub fn lot(user: &UserId, credited_seq: u64, purchase: &PurchaseId) -> Key {
        Key::new(
            user_pk(user),
            format!("{LOT_SK_PREFIX}{credited_seq:020}#{purchase}"),
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

    pub const PURCHASE_SK: &str = "PURCHASE";
    pub const REFUND_SK_PREFIX: &str = "REFUND#";

    pub fn purchase_pk(purchase: &PurchaseId) -> String {
        ["PURCHASE#", purchase.as_str()].concat()
    }

    pub fn purchase(purchase: &PurchaseId) -> Key {
        Key::new(purchase_pk(purchase), PURCHASE_SK)
    }

    pub fn payment_intent_pk(payment: &PaymentIntentId) -> String {
        ["PAYINTENT#", payment.as_str()].concat()
    }

    pub fn payment_intent(payment: &PaymentIntentId) -> Key {
        Key::new(payment_intent_pk(payment), "PAYINTENT")
    }

    /// A store transaction's own row (`appstore-<id>`, `play-<order>`), beside its payment row.
    pub fn store_transaction(transaction: &PaymentIntentId) -> Key {
        Key::new(payment_intent_pk(transaction), "STORE")
    }

    /// A refund instruction lives beside its purchase, or beside the payment it returns when
    /// there is no purchase to hold it.
    pub fn refund(
        purchase: Option<&PurchaseId>,
        payment: &PaymentIntentId,
        refund: &RefundId,
    ) -> Key {
        let pk = match purchase {
            Some(purchase) => purchase_pk(purchase),
            None => payment_intent_pk(payment),
        };
        Key::new(pk, [REFUND_SK_PREFIX, refund.as_str()].concat())
    }

    /// A purchase's key in the purchases-by-user index (`gsi2pk`, `gsi2sk`).
    pub fn user_purchases_index(
        user: &UserId,
        created_at: Timestamp,
        purchase: &PurchaseId,
    ) -> Key {
        Key::new(
            user_purchases_pk(user),
            format!("{:015}#{purchase}", created_at.as_millisecond()),
        )
    }

    pub fn user_purchases_pk(user: &UserId) -> String {
        ["PURCHASES#", user.as_str()].concat()
    }

    pub fn payment_event(event: &EventId) -> Key {
        Key::new(["PAYEVENT#", event.as_str()].concat(), "PAYEVENT")
    }

    /// Keys are scoped to the user: two users may pick the same key.
    pub fn idempotency(user: &UserId, key: &IdempotencyKey) -> Key {
        Key::new(["IDEM#", user.as_str(), "#", key.as_str()].concat(), "IDEM")
    }

    /// A gift entry: under its own prefix, so that only the gift function's role may write one
    /// (the earnings consumer turns gift entries into diamonds).
    pub fn gift_entry(sender: &UserId, key: &IdempotencyKey) -> Key {
        Key::new(
            [GIFT_PK_PREFIX, sender.as_str(), "#", key.as_str()].concat(),
            GIFT_SK,
        )
    }

    pub fn outstanding_pk(kind: Outstanding, shard: u8) -> String {
        format!("{OUTSTANDING_PK_PREFIX}{}#{shard}", kind.as_str())
    }

    /// An item's key in the outstanding index (`gsi3pk`, `gsi3sk`): by kind, then age.
    pub fn outstanding_index(kind: Outstanding, since: Timestamp, id: &str) -> Key {
        Key::new(
            outstanding_pk(kind, shard_of(id, OUTSTANDING_SHARDS)),
            format!("{:015}#{id}", since.as_millisecond()),
        )
    }

    /// The index sort key bound selecting items outstanding since `cutoff` or before.
    pub fn outstanding_bound(cutoff: Timestamp) -> String {
        format!("{:015}", cutoff.as_millisecond().max(0).saturating_add(1))
    }

    pub fn creator_pk(creator: &UserId) -> String {
        ["CREATOR#", creator.as_str()].concat()
    }

    pub fn creator_profile(creator: &UserId) -> Key {
        Key::new(creator_pk(creator), "PROFILE")
    }

    pub fn earnings(creator: &UserId) -> Key {
        Key::new(creator_pk(creator), EARNINGS_SK)
    }

    /// One partition of a creator's gifts-received feed.
    pub fn feed_pk(creator: &UserId, shard: u8) -> String {
        format!("{FEED_PK_PREFIX}{creator}#{shard}")
    }

    /// A page of gifts received, named and sorted by its newest gift.
    pub fn gifts_page(creator: &UserId, newest_at: Timestamp, newest: &GiftTxnId) -> Key {
        Key::new(
            feed_pk(creator, feed_shard(newest)),
            gifts_page_sk(newest_at, newest),
        )
    }

    pub fn gifts_page_sk(newest_at: Timestamp, newest: &GiftTxnId) -> String {
        format!("{:015}#{newest}", newest_at.as_millisecond())
    }

    pub const PAYOUT_ACCOUNT_SK_PREFIX: &str = "PAYOUTACCT#";

    /// The `number`th change of a creator's payout account (1 for the first).
    pub fn payout_account_change(creator: &UserId, number: u64) -> Key {
        Key::new(
            creator_pk(creator),
            format!("{PAYOUT_ACCOUNT_SK_PREFIX}{number:06}"),
        )
    }

    pub fn payout(creator: &UserId, created_at: Timestamp, payout: &PayoutId) -> Key {
        Key::new(
            creator_pk(creator),
            format!(
                "{PAYOUT_SK_PREFIX}{:015}#{payout}",
                created_at.as_millisecond()
            ),
        )
    }

    pub fn lot_index_pk(shard: u8) -> String {
        format!("{LOT_INDEX_PK_PREFIX}{shard}")
    }

    /// A lot's key in the open-lots index (`gsi1pk`, `gsi1sk`).
    pub fn lot_index(refundable_until: Timestamp, purchase: &PurchaseId) -> Key {
        Key::new(
            lot_index_pk(lot_index_shard(purchase)),
            format!("{:012}#{purchase}", refundable_until.as_second()),
        )
    }

    /// The index sort key bound selecting lots due at `now` (deadline ≤ now).
    pub fn lot_index_due_bound(now: Timestamp) -> String {
        format!("{:012}", now.as_second().saturating_add(1))
    }
}

/// The open-lots index partition of a purchase: a stable hash, so every writer agrees.
pub fn lot_index_shard(purchase: &PurchaseId) -> u8 {
    shard_of(purchase.as_str(), LOT_INDEX_SHARDS)
}

/// The feed partition of a page, from its newest gift: a stable hash, so every reader agrees.
pub fn feed_shard(newest: &GiftTxnId) -> u8 {
    shard_of(newest.as_str(), FEED_SHARDS)
}

/// `text`'s shard of `shards`, by SHA-256.
fn shard_of(text: &str, shards: u8) -> u8 {
    let digest = Sha256::digest(text.as_bytes());
    let hash = u64::from_be_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"));
    u8::try_from(hash % u64::from(shards)).expect("below the shard count")
}

/// What the stream's consumers still owe: a kind of outstanding item.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outstanding {
    /// A gift entry the earnings consumer has not counted.
    Gift,
    /// A refund instruction not sent (or not answered) yet.
    Refund,
    /// A payout not sent (or not answered) yet.
    Payout,
}

impl Outstanding {
    pub const ALL: [Outstanding; 3] = [Outstanding::Gift, Outstanding::Refund, Outstanding::Payout];

    pub fn as_str(self) -> &'static str {
        match self {
            Outstanding::Gift => "gift",
            Outstanding::Refund => "refund",
            Outstanding::Payout => "payout",
        }
    }
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
    Refund,
    PaymentIntent,
    StoreTransaction,
    Gift,
    Earnings,
    GiftsPage,
    Payout,
    PayoutAccountChange,
}

/// A row of the table: its stored fields, and the key derived from them. Its item type is its
/// [`Record`] variant's name.
pub trait Row: Serialize + DeserializeOwned + Into<Record> {
    fn key(&self) -> Key;
}

impl Row for Wallet {
    fn key(&self) -> Key {
        keys::wallet(&self.user_id)
    }
}

impl Row for Lot {
    fn key(&self) -> Key {
        keys::lot(&self.user_id, self.credited_seq, &self.purchase_id)
    }
}

/// A TTL'd item per open lot, expiring at the lot's deadline: its TTL deletion reaches the
/// refund-expiry function through DynamoDB Streams, which then closes the lot.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotMarkerRecord {
    pub user_id: UserId,
    pub purchase_id: PurchaseId,
    pub expires_at: i64,
}

impl LotMarkerRecord {
    pub fn for_lot(lot: &Lot) -> Self {
        LotMarkerRecord {
            user_id: lot.user_id.clone(),
            purchase_id: lot.purchase_id.clone(),
            expires_at: lot.refundable_until.as_second(),
        }
    }
}

impl Row for LotMarkerRecord {
    fn key(&self) -> Key {
        keys::marker(&self.user_id, &self.purchase_id)
    }
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
    /// The provider took the purchase's money back: its coins left (or became debt).
    Reversal,
    /// The provider gave it back (a dispute won): the coins returned.
    ReversalUndone,
}

/// What a gift entry records besides the coins.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftDetails {
    pub gift_txn_id: GiftTxnId,
    pub recipient_id: UserId,
    pub gift_id: coins_rules::GiftId,
    pub quantity: u32,
    pub target: GiftTarget,
}

/// A gift as its sender's transaction writes it: the gift entry, which is also the idempotency
/// record of its key. The table's stream then makes it the sender's history entry and the
/// creator's earnings and gifts received; until then it is outstanding (in the outstanding
/// index, which the earnings consumer sweeps) and never expires: a sender who paid must not lose the
/// creator's side to a TTL. Once counted it expires with its key's idempotency window.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftRecord {
    pub sender_id: UserId,
    pub key: IdempotencyKey,
    /// SHA-256 of the request's canonical form: the same key with another gift is refused.
    pub request_hash: String,
    pub details: GiftDetails,
    pub coins: u64,
    pub diamonds: u64,
    /// The sender's wallet version this gift produced, and the balance after it.
    pub seq: u64,
    pub balance_after: u64,
    pub at: Timestamp,
    /// When the earnings consumer counted it (none: outstanding).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_at: Option<Timestamp>,
    /// The TTL attribute, epoch seconds: set once counted, never before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

impl GiftRecord {
    /// The entry once counted at `now`: out of the outstanding index, expiring `window` after
    /// the gift (the key's idempotency window, as for any other operation).
    pub fn marked_counted(
        &self,
        now: Timestamp,
        window: jiff::SignedDuration,
    ) -> Result<GiftRecord, LedgerError> {
        let expires_at = self
            .at
            .checked_add(window)
            .map_err(|_| LedgerError::Overflow)?;
        Ok(GiftRecord {
            counted_at: Some(now),
            expires_at: Some(expires_at.as_second()),
            ..self.clone()
        })
    }

    /// The gift as its creator's feed keeps it once counted.
    pub fn counted(&self) -> CountedGift {
        CountedGift {
            gift_txn_id: self.details.gift_txn_id.clone(),
            sender_id: self.sender_id.clone(),
            gift_id: self.details.gift_id.clone(),
            quantity: self.details.quantity,
            diamonds: self.diamonds,
            target: self.details.target.clone(),
            at: self.at,
            coins: self.coins,
            seq: self.seq,
            balance_after: self.balance_after,
        }
    }
}

impl Row for GiftRecord {
    fn key(&self) -> Key {
        keys::gift_entry(&self.sender_id, &self.key)
    }
}

impl GiftDetails {
    pub fn new(
        gift_txn_id: GiftTxnId,
        recipient: &UserId,
        order: &GiftOrder,
        target: &GiftTarget,
    ) -> Self {
        GiftDetails {
            gift_txn_id,
            recipient_id: recipient.clone(),
            gift_id: order.gift_id().clone(),
            quantity: order.quantity(),
            target: target.clone(),
        }
    }
}

/// An immutable history entry: every balance change leaves one, at the position of the wallet
/// version the change produced.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub user_id: UserId,
    /// The wallet version this change produced: the entry's place in the history.
    pub seq: u64,
    pub id: TxnId,
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

impl HistoryRecord {
    /// The entry for the change that produced `wallet` (its user, version, balance and time).
    pub fn of(
        wallet: &Wallet,
        id: TxnId,
        kind: TxnKind,
        coins: i64,
        reference: impl ToString,
    ) -> Self {
        HistoryRecord {
            user_id: wallet.user_id.clone(),
            seq: wallet.version,
            id,
            kind,
            coins,
            balance_after: wallet.balance,
            at: wallet.updated_at,
            reference: reference.to_string(),
            non_refundable_coins: None,
            gift: None,
        }
    }
}

impl Row for HistoryRecord {
    fn key(&self) -> Key {
        keys::txn(&self.user_id, self.seq)
    }
}

/// A price quote: exact, bound to its owner's billing country (inside `priced`), short-lived.
/// The function layer prices it with the rules; the ledger stores it and holds purchases to it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Quote {
    pub quote_id: QuoteId,
    pub user_id: UserId,
    pub priced: coins_rules::Quote,
    pub expires_at: Timestamp,
}

impl Quote {
    /// A new quote of `priced` for `user`, expiring after the rules' quote lifetime.
    pub fn new(priced: coins_rules::Quote, user: &UserId, now: Timestamp) -> Self {
        Quote {
            quote_id: QuoteId::generate(),
            user_id: user.clone(),
            priced,
            expires_at: quote_expires_at(now),
        }
    }
}

/// A quote as stored: the quote, and the TTL a day after its own expiry, so a late purchase gets
/// `quote_expired` rather than `not_found` (TTL deletion lags anyway; the ledger checks the
/// quote's own expiry).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct QuoteRecord {
    pub quote: Quote,
    pub expires_at: i64,
}

/// How long an expired quote is kept before TTL may delete it.
pub const QUOTE_RETENTION_S: i64 = 24 * 60 * 60;

impl QuoteRecord {
    pub fn new(quote: Quote) -> Self {
        let expires_at = quote
            .expires_at
            .as_second()
            .saturating_add(QUOTE_RETENTION_S);
        QuoteRecord { quote, expires_at }
    }
}

impl Row for QuoteRecord {
    fn key(&self) -> Key {
        keys::quote(&self.quote.quote_id)
    }
}

/// Where a purchase stands. (`expired` is what a pending purchase past its payment window
/// shows; it is not stored.)
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurchaseStatus {
    /// Created from a quote, waiting for the payment.
    Pending,
    /// Paid; its coins were credited as one lot.
    Credited,
    /// The provider reported a failed payment attempt; a retry of the same payment that
    /// succeeds inside the payment window still credits it.
    Failed,
    /// Money given back: refunded as asked, or returned because it could not be credited.
    Refunded,
    /// The provider took the money back (a dispute, a store refund): the coins went with it.
    Reversed,
}

impl PurchaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PurchaseStatus::Pending => "pending",
            PurchaseStatus::Credited => "credited",
            PurchaseStatus::Failed => "failed",
            PurchaseStatus::Refunded => "refunded",
            PurchaseStatus::Reversed => "reversed",
        }
    }
}

/// Why money is given back.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    /// The buyer asked, inside the window.
    Customer,
    /// Admin override: the coins did not work as sold.
    Defective,
    /// Admin override: a legal obligation.
    Legal,
    /// Paid from another country than the quote's.
    RegionMismatch,
    /// Paid another amount than the quoted gross price.
    AmountMismatch,
    /// Paid in another currency than the quote's.
    CurrencyMismatch,
    /// Paid after the purchase's payment window.
    PurchaseExpired,
    /// Paid after the provider reported the purchase's payment failed.
    PurchaseFailed,
    /// A second payment for a purchase already paid.
    AlreadyPaid,
    /// A payment naming no purchase we know.
    UnknownPurchase,
    /// The card's issuer warned of fraud (Stripe Radar) while the coins were unspent.
    FraudWarning,
}

impl RefundReason {
    pub fn code(self) -> &'static str {
        match self {
            RefundReason::Customer => "customer",
            RefundReason::Defective => "defective",
            RefundReason::Legal => "legal",
            RefundReason::RegionMismatch => "region_mismatch",
            RefundReason::AmountMismatch => "amount_mismatch",
            RefundReason::CurrencyMismatch => "currency_mismatch",
            RefundReason::PurchaseExpired => "purchase_expired",
            RefundReason::PurchaseFailed => "purchase_failed",
            RefundReason::AlreadyPaid => "already_paid",
            RefundReason::UnknownPurchase => "unknown_purchase",
            RefundReason::FraudWarning => "fraud_warning",
        }
    }
}

/// A provider's reversal of a credited purchase, and its undoing.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Reversal {
    /// The dispute (or store refund) that took the money back.
    pub by: ReversalRef,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undone_at: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseRecord {
    pub purchase_id: PurchaseId,
    pub user_id: UserId,
    pub quote_id: QuoteId,
    /// The buyer's zone at purchase: the refund window is counted in it.
    pub zone: Zone,
    pub country: BillingCountry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<BillingRegion>,
    pub channel: Channel,
    pub coins: u64,
    pub bonus_coins: u64,
    pub total_coins: u64,
    /// The quoted gross price, honoured even if the price book changed since.
    pub amount: Money,
    pub price_book_version: PriceBookVersion,
    pub status: PurchaseStatus,
    /// Bumped by every change: the optimistic-concurrency guard of the purchase.
    pub version: u64,
    pub created_at: Timestamp,
    /// A payment arriving later is returned (not `expires_at`: that name is the table's TTL).
    pub payment_due_by: Timestamp,
    /// The provider's payment: attached when created, or the one that paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<PaymentIntentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credited_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refundable_until: Option<Timestamp>,
    /// Set when the window closure ran: the lot's remaining coins at that moment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_remaining: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_by_event: Option<EventId>,
    /// The instruction giving this purchase's money back, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<RefundId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refunded_at: Option<Timestamp>,
    /// A random token per refund call: lets a retried call recognise its own refund after a
    /// lost response instead of reporting `already_refunded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reversal: Option<Reversal>,
    /// The package bought (none for a custom amount).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_id: Option<coins_rules::PackageId>,
    /// Coins taken back by reversals not undone: all of them after a dispute, a share after a
    /// store's partial refund of a multi-unit order.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reversed_coins: u64,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

impl PurchaseRecord {
    /// A pending purchase of `quote` at its quoted price.
    pub fn pending(purchase_id: PurchaseId, quote: &Quote, zone: &Zone, now: Timestamp) -> Self {
        let priced = &quote.priced;
        PurchaseRecord {
            purchase_id,
            user_id: quote.user_id.clone(),
            quote_id: quote.quote_id.clone(),
            zone: zone.clone(),
            country: priced.country(),
            region: priced.region(),
            channel: priced.channel(),
            coins: priced.coins(),
            bonus_coins: priced.bonus_coins(),
            total_coins: priced.total_coins(),
            amount: priced.price().gross(),
            price_book_version: priced.price_book_version().clone(),
            status: PurchaseStatus::Pending,
            version: 1,
            created_at: now,
            payment_due_by: payment_due_by(now),
            payment_intent_id: None,
            credited_at: None,
            refundable_until: None,
            closed_remaining: None,
            settled_by_event: None,
            refund_id: None,
            refunded_at: None,
            refund_nonce: None,
            reversal: None,
            package_id: priced.package_id(),
            reversed_coins: 0,
        }
    }

    /// The purchase as changed by `change`, one version on.
    pub fn changed(&self, change: impl FnOnce(&mut PurchaseRecord)) -> PurchaseRecord {
        let mut next = self.clone();
        change(&mut next);
        next.version = self.version + 1;
        next
    }

    /// Its sort key in the purchases-by-user index.
    pub fn index_sk(&self) -> String {
        keys::user_purchases_index(&self.user_id, self.created_at, &self.purchase_id).sk
    }

    /// Whether a pending purchase's payment window has passed at `now`.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.status == PurchaseStatus::Pending && now >= self.payment_due_by
    }
}

impl Row for PurchaseRecord {
    fn key(&self) -> Key {
        keys::purchase(&self.purchase_id)
    }
}

/// Which provider payment belongs to which purchase: how a dispute, which names the payment,
/// finds the purchase.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentIntentRecord {
    pub payment_intent_id: PaymentIntentId,
    pub purchase_id: PurchaseId,
}

impl Row for PaymentIntentRecord {
    fn key(&self) -> Key {
        keys::payment_intent(&self.payment_intent_id)
    }
}

/// What the store said of one of its transactions, kept by the transaction (#18): its refund
/// (or void) when that came before the credit, so a later redemption is refused; and, once
/// credited, whether the buyer consented to consumption data being sent to the App Store. A
/// credit and a store's word both write this row (version condition), so they never cross.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StoreTransactionRecord {
    pub transaction: PaymentIntentId,
    pub version: u64,
    /// The purchase it credited, once credited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<PurchaseId>,
    #[serde(default)]
    pub consumption_consent: bool,
    /// The store's latest word by its signing date (before or after the credit), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation: Option<StoreRevocation>,
}

/// A store's refund (`revoked`) or its reversal, as of when the store signed it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StoreRevocation {
    pub revoked: bool,
    /// When the store signed it: a later word replaces an earlier one, never the reverse.
    pub stated_at: Timestamp,
    pub event_id: EventId,
}

impl Row for StoreTransactionRecord {
    fn key(&self) -> Key {
        keys::store_transaction(&self.transaction)
    }
}

/// Where a refund instruction stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Written, not yet confirmed by the provider.
    Pending,
    /// The provider made the refund.
    Succeeded,
    /// The provider refused it, or retries ran out: support must look (alarmed).
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RefundStatus::Pending => "pending",
            RefundStatus::Succeeded => "succeeded",
            RefundStatus::Failed => "failed",
        }
    }
}

/// An instruction to give a payment back through the provider (the outbox): written in the
/// same transaction as the coin change or the record of why the payment cannot be credited, and
/// sent by the refund dispatcher, which reads these inserts from the table's stream.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefundRecord {
    pub refund_id: RefundId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purchase_id: Option<PurchaseId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub payment_intent_id: PaymentIntentId,
    /// The whole payment, in the currency's minor units.
    pub amount_minor: i64,
    /// ISO 4217, upper case: as paid (a payment we cannot credit may be in any currency).
    pub currency: String,
    pub reason: RefundReason,
    /// The admin who asked, for an admin refund.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<UserId>,
    pub status: RefundStatus,
    pub version: u64,
    /// Sends tried so far.
    pub attempts: u32,
    /// A dispatcher is sending it until then; another waits (two never send at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl RefundRecord {
    /// A pending instruction to give back `amount_minor` of `currency` paid with `payment`.
    #[allow(clippy::too_many_arguments)]
    pub fn pending(
        refund_id: RefundId,
        purchase: Option<&PurchaseRecord>,
        payment: &PaymentIntentId,
        amount_minor: i64,
        currency: &str,
        reason: RefundReason,
        requested_by: Option<&UserId>,
        now: Timestamp,
    ) -> Self {
        RefundRecord {
            refund_id,
            purchase_id: purchase.map(|p| p.purchase_id.clone()),
            user_id: purchase.map(|p| p.user_id.clone()),
            payment_intent_id: payment.clone(),
            amount_minor,
            currency: currency.to_ascii_uppercase(),
            reason,
            requested_by: requested_by.cloned(),
            status: RefundStatus::Pending,
            version: 1,
            attempts: 0,
            claimed_until: None,
            provider_refund_id: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The instruction as changed by `change` at `now`, one version on.
    pub fn changed(&self, now: Timestamp, change: impl FnOnce(&mut RefundRecord)) -> RefundRecord {
        let mut next = self.clone();
        change(&mut next);
        next.version = self.version + 1;
        next.updated_at = now;
        next
    }
}

impl Row for RefundRecord {
    fn key(&self) -> Key {
        keys::refund(
            self.purchase_id.as_ref(),
            &self.payment_intent_id,
            &self.refund_id,
        )
    }
}

/// A provider event applied: its existence makes a redelivery a replay.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PaymentEventRecord {
    pub event_id: EventId,
    /// The provider's type (`payment_intent.succeeded`).
    pub kind: String,
    /// What it did (`credited`, `returned`, `failed`, `reversed`, …).
    pub outcome: String,
    pub received_at: Timestamp,
}

impl Row for PaymentEventRecord {
    fn key(&self) -> Key {
        keys::payment_event(&self.event_id)
    }
}

/// The first result of a keyed request, returned to any retry with the same key and body.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub user_id: UserId,
    pub key: IdempotencyKey,
    /// SHA-256 of the request's canonical form.
    pub request_hash: String,
    /// The first response, as JSON.
    pub response: String,
    pub created_at: Timestamp,
    pub expires_at: i64,
}

impl Row for IdempotencyRecord {
    fn key(&self) -> Key {
        keys::idempotency(&self.user_id, &self.key)
    }
}

/// An enrolled creator.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CreatorRecord {
    pub user_id: UserId,
    pub enrolled_at: Timestamp,
    /// The Stripe Connect account payouts go to, once an admin has set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_account: Option<ConnectedAccountId>,
    /// How many times it was set: the number of the last [`PayoutAccountChangeRecord`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub payout_account_changes: u64,
}

/// One change of a creator's payout account: who made it, from what to what, and when. Written
/// with the profile in one transaction, under the next change number and only if that number
/// is free, so concurrent changes are serialized and each one's `old` is what it replaced.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayoutAccountChangeRecord {
    pub creator_id: UserId,
    /// 1 for the first change.
    pub number: u64,
    /// The admin who made it (none: set outside the admin route, by a test or a tool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_by: Option<UserId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_account: Option<ConnectedAccountId>,
    pub new_account: ConnectedAccountId,
    pub at: Timestamp,
}

impl Row for PayoutAccountChangeRecord {
    fn key(&self) -> Key {
        keys::payout_account_change(&self.creator_id, self.number)
    }
}

impl Row for CreatorRecord {
    fn key(&self) -> Key {
        keys::creator_profile(&self.user_id)
    }
}

/// Diamonds released from their hold at `release_at`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Hold {
    pub release_at: Timestamp,
    pub diamonds: u64,
}

/// A creator's diamonds: written from the table's stream (a batch of gifts at a time) and by
/// payouts, never by a sender's gift. Earned = pending + available + in payout + paid out.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct EarningsRecord {
    pub creator_id: UserId,
    pub version: u64,
    /// Every diamond the creator's gifts earned.
    pub earned: u64,
    /// Diamonds still held, by release time (pruned once released).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
    /// In a payout not yet paid.
    pub in_payout: u64,
    pub paid_out: u64,
    /// The UTC day `payout_cents_today` counts, and the USD cents paid out that day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payout_day: Option<jiff::civil::Date>,
    #[serde(default)]
    pub payout_cents_today: i64,
    /// Pages counted in these earnings whose gifts' sender history entries may not all be
    /// written yet, by the count that wrote them ([`crate::ledger`]'s earnings explain when
    /// another count finishes them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<Unconfirmed>,
    pub updated_at: Timestamp,
}

impl Row for EarningsRecord {
    fn key(&self) -> Key {
        keys::earnings(&self.creator_id)
    }
}

/// A gift counted into its creator's earnings, as a page of their feed keeps it: what the feed
/// shows, and what its sender's history entry is written from.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CountedGift {
    pub gift_txn_id: GiftTxnId,
    pub sender_id: UserId,
    pub gift_id: coins_rules::GiftId,
    pub quantity: u32,
    pub diamonds: u64,
    pub target: GiftTarget,
    pub at: Timestamp,
    /// The coins spent, and the sender's wallet version and balance right after.
    pub coins: u64,
    pub seq: u64,
    pub balance_after: u64,
}

impl CountedGift {
    /// The sender's history entry of this gift to `creator`.
    pub fn history(&self, creator: &UserId) -> HistoryRecord {
        HistoryRecord {
            user_id: self.sender_id.clone(),
            seq: self.seq,
            id: TxnId::for_gift(&self.gift_txn_id),
            kind: TxnKind::Gift,
            coins: -i64::try_from(self.coins).unwrap_or(i64::MAX),
            balance_after: self.balance_after,
            at: self.at,
            reference: self.gift_txn_id.to_string(),
            non_refundable_coins: None,
            gift: Some(GiftDetails {
                gift_txn_id: self.gift_txn_id.clone(),
                recipient_id: creator.clone(),
                gift_id: self.gift_id.clone(),
                quantity: self.quantity,
                target: self.target.clone(),
            }),
        }
    }

    /// Newest first: by time, then by id.
    pub fn newest_first(a: &CountedGift, b: &CountedGift) -> std::cmp::Ordering {
        (b.at, &b.gift_txn_id).cmp(&(a.at, &a.gift_txn_id))
    }
}

/// Gifts counted together into one creator's earnings, newest first: one item for up to 100
/// gifts, in one of the creator's [`FEED_SHARDS`] feed partitions.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftsPageRecord {
    pub creator_id: UserId,
    pub gifts: Vec<CountedGift>,
}

impl GiftsPageRecord {
    /// The page's name: its newest gift.
    pub fn page_ref(&self) -> PageRef {
        let newest = self.gifts.first().expect("a page holds at least one gift");
        PageRef {
            at: newest.at,
            gift_txn_id: newest.gift_txn_id.clone(),
        }
    }
}

impl Row for GiftsPageRecord {
    fn key(&self) -> Key {
        self.page_ref().key(&self.creator_id)
    }
}

/// The pages one count wrote, listed in the earnings until their gifts' history entries are
/// written, and when it wrote them.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Unconfirmed {
    pub pages: Vec<PageRef>,
    pub counted_at: Timestamp,
}

/// A page of gifts received, by its newest gift; stored as its sort key (`<ms>#<gift>`): the
/// earnings item lists up to ten of them and must stay under 1 KB.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PageRef {
    pub at: Timestamp,
    pub gift_txn_id: GiftTxnId,
}

impl PageRef {
    pub fn key(&self, creator: &UserId) -> Key {
        keys::gifts_page(creator, self.at, &self.gift_txn_id)
    }
}

impl From<PageRef> for String {
    fn from(page: PageRef) -> String {
        keys::gifts_page_sk(page.at, &page.gift_txn_id)
    }
}

impl TryFrom<String> for PageRef {
    type Error = String;

    fn try_from(text: String) -> Result<PageRef, String> {
        let invalid = || format!("not a page reference: {text:?}");
        let (ms, gift) = text.split_once('#').ok_or_else(invalid)?;
        let at = ms
            .parse::<i64>()
            .ok()
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .ok_or_else(invalid)?;
        let gift_txn_id = GiftTxnId::new(gift).map_err(|_| invalid())?;
        Ok(PageRef { at, gift_txn_id })
    }
}

/// Where a payout stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutStatus {
    Pending,
    Paid,
    Failed,
}

impl PayoutStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Pending => "pending",
            PayoutStatus::Paid => "paid",
            PayoutStatus::Failed => "failed",
        }
    }
}

/// A payout of a creator's diamonds (the outbox): written with the diamonds it takes, sent to
/// Stripe Connect by the dispatcher, which records how it ended.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayoutRecord {
    pub payout_id: PayoutId,
    pub creator_id: UserId,
    pub diamonds: u64,
    /// USD.
    pub amount: Money,
    pub destination: ConnectedAccountId,
    pub status: PayoutStatus,
    pub version: u64,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Row for PayoutRecord {
    fn key(&self) -> Key {
        keys::payout(&self.creator_id, self.created_at, &self.payout_id)
    }
}

/// How an adapter reads one stored row of a known type (the DynamoDB adapter: `serde_dynamo`).
pub trait RowReader {
    type Error;
    fn read<R: Row>(self) -> Result<R, Self::Error>;
}

/// Declares [`Record`] and derives from its one list of variants what every variant has: the
/// key and item type, `From<XRecord> for Record` and `TryFrom<Record> for XRecord` (reading the
/// wrong type where a key promised another is corrupt data), and [`Record::read`], the adapters'
/// dispatch on a stored item type.
macro_rules! record_enum {
    ($(#[$meta:meta])* pub enum Record { $($variant:ident($row:ty)),* $(,)? }) => {
        $(#[$meta])*
        pub enum Record {
            $($variant($row)),*
        }

        impl Record {
            pub fn key(&self) -> Key {
                match self {
                    $(Record::$variant(row) => row.key()),*
                }
            }

            pub fn item_type(&self) -> ItemType {
                match self {
                    $(Record::$variant(_) => ItemType::$variant),*
                }
            }

            /// Reads a stored row of `item_type` with `reader`.
            pub fn read<R: RowReader>(item_type: ItemType, reader: R) -> Result<Record, R::Error> {
                match item_type {
                    $(ItemType::$variant => reader.read::<$row>().map(Record::$variant),)*
                }
            }
        }

        $(
            impl From<$row> for Record {
                fn from(row: $row) -> Record {
                    Record::$variant(row)
                }
            }

            impl TryFrom<Record> for $row {
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
    /// the stored form (`serde_dynamo` plus the derived key attributes in [`crate::dynamo`]; the
    /// records themselves in memory), so the ledger never handles attribute maps.
    #[derive(Clone, PartialEq, Eq, Debug, Serialize)]
    #[serde(untagged)]
    pub enum Record {
        Wallet(Wallet),
        Lot(Lot),
        LotMarker(LotMarkerRecord),
        History(HistoryRecord),
        Quote(QuoteRecord),
        Purchase(PurchaseRecord),
        PaymentEvent(PaymentEventRecord),
        Idempotency(IdempotencyRecord),
        Creator(CreatorRecord),
        Refund(RefundRecord),
        PaymentIntent(PaymentIntentRecord),
        StoreTransaction(StoreTransactionRecord),
        Gift(GiftRecord),
        Earnings(EarningsRecord),
        GiftsPage(GiftsPageRecord),
        Payout(PayoutRecord),
        PayoutAccountChange(PayoutAccountChangeRecord),
    }
}

impl Record {
    /// The optimistic-concurrency version of the rows that have one.
    pub fn version(&self) -> Option<u64> {
        match self {
            Record::Wallet(wallet) => Some(wallet.version),
            Record::Purchase(purchase) => Some(purchase.version),
            Record::Refund(refund) => Some(refund.version),
            Record::Earnings(earnings) => Some(earnings.version),
            Record::Payout(payout) => Some(payout.version),
            Record::StoreTransaction(row) => Some(row.version),
            _ => None,
        }
    }

    /// The TTL attribute `expires_at`, epoch seconds, on the items that expire.
    pub fn expires_at(&self) -> Option<i64> {
        match self {
            Record::LotMarker(marker) => Some(marker.expires_at),
            Record::Quote(quote) => Some(quote.expires_at),
            Record::Idempotency(record) => Some(record.expires_at),
            Record::Gift(gift) => gift.expires_at,
            _ => None,
        }
    }

    /// The row's key in `index`, if it is in it.
    pub fn index_key(&self, index: Index) -> Option<Key> {
        match (index, self) {
            (Index::OpenLotsByDeadline, Record::Lot(lot)) => {
                Some(keys::lot_index(lot.refundable_until, &lot.purchase_id))
            }
            (Index::PurchasesByUser, Record::Purchase(purchase)) => {
                Some(keys::user_purchases_index(
                    &purchase.user_id,
                    purchase.created_at,
                    &purchase.purchase_id,
                ))
            }
            (Index::Outstanding, record) => record
                .outstanding()
                .map(|(kind, since, id)| keys::outstanding_index(kind, since, id)),
            _ => None,
        }
    }
}

impl Record {
    /// What the stream's consumers still owe for this item, since when, and its id.
    pub fn outstanding(&self) -> Option<(Outstanding, Timestamp, &str)> {
        match self {
            Record::Gift(gift) if gift.counted_at.is_none() => Some((
                Outstanding::Gift,
                gift.at,
                gift.details.gift_txn_id.as_str(),
            )),
            Record::Refund(refund) if refund.status == RefundStatus::Pending => Some((
                Outstanding::Refund,
                refund.created_at,
                refund.refund_id.as_str(),
            )),
            Record::Payout(payout) if payout.status == PayoutStatus::Pending => Some((
                Outstanding::Payout,
                payout.created_at,
                payout.payout_id.as_str(),
            )),
            _ => None,
        }
    }
}

/// The lot a TTL'd marker stands for, parsed back from the marker's keys in a stream record.
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

/// The (user, purchase) of an open lot from its table key (the open-lots index gives keys only).
pub fn lot_from_key(key: &Key) -> Option<(UserId, PurchaseId)> {
    let user = key.pk.strip_prefix(keys::USER_PK_PREFIX)?;
    let rest = key.sk.strip_prefix(keys::LOT_SK_PREFIX)?;
    let (_, purchase) = rest.split_once('#')?;
    Some((UserId::new(user).ok()?, PurchaseId::new(purchase).ok()?))
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
    fn lots_sort_oldest_first_by_key_and_name_their_user_and_purchase() {
        let user = UserId::new("fan-1").unwrap();
        let purchase = PurchaseId::generate();
        let older = keys::lot(&user, 9, &purchase);
        let newer = keys::lot(&user, 10, &PurchaseId::generate());
        assert!(older < newer);
        assert!(older.sk.starts_with(keys::WALLET_SK));
        assert_eq!(lot_from_key(&older), Some((user.clone(), purchase)));
        assert_eq!(lot_from_key(&keys::wallet(&user)), None);
    }

    #[test]
    fn a_page_reference_is_stored_as_its_sort_key() {
        let page = PageRef {
            at: "2026-03-01T03:00:00.123Z".parse().unwrap(),
            gift_txn_id: GiftTxnId::generate(),
        };
        let text = String::from(page.clone());
        assert_eq!(text, page.key(&UserId::new("star").unwrap()).sk);
        assert_eq!(PageRef::try_from(text), Ok(page));
        assert!(PageRef::try_from("soon#gft_1".to_owned()).is_err());
    }

    #[test]
    fn the_due_bound_selects_deadlines_up_to_now() {
        let purchase = PurchaseId::generate();
        let deadline: Timestamp = "2026-03-16T00:00:00Z".parse().unwrap();
        let sk = keys::lot_index(deadline, &purchase).sk;
        assert!(sk < keys::lot_index_due_bound(deadline));
        assert!(sk > keys::lot_index_due_bound(deadline - jiff::SignedDuration::from_secs(1)));
    }
}
