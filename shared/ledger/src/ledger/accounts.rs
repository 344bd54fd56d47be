//! Reads and account settings: the wallet view, history pages, purchases, the daily limit,
//! the restriction, creators.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{PaymentIntentId, PurchaseId, RefundId, TxnId, UserId};
use coins_rules::limits::{DailyLimit, PendingLimit, local_day};
use coins_rules::money::Money;
use coins_rules::refund::check_refund;
use coins_rules::{Channel, Zone};

use super::{Attempt, Ledger};
use crate::domain::{self, Wallet};
use crate::error::LedgerError;
use crate::store::{Condition, Index, Key, Query, SortKey, Store, Transaction, Write};
use crate::table::{
    CreatorRecord, HistoryRecord, PurchaseRecord, Record, RefundReason, RefundRecord, RefundStatus,
    Row, TxnKind, keys,
};

/// `GET /v1/wallet`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletView {
    pub user_id: UserId,
    pub balance: u64,
    /// Coins owed after a reversal (the balance is then 0).
    pub debt: u64,
    /// Quotes and purchases refused until an admin lifts it.
    pub restricted: bool,
    /// Open lots with coins left, oldest first.
    pub lots: Vec<LotView>,
    pub daily_limit: Option<DailyLimitView>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LotView {
    pub purchase_id: PurchaseId,
    pub coins: u64,
    pub remaining: u64,
    pub purchased_at: Timestamp,
    pub refundable_until: Timestamp,
    /// Decided by the rules at the time of the request, not by whether closure ran yet.
    pub refundable: bool,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DailyLimitView {
    pub coins: u64,
    pub spent_today: u64,
    /// A raise or removal still cooling off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingLimit>,
}

/// One page of history, newest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxnPage {
    pub items: Vec<TxnView>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TxnView {
    pub id: TxnId,
    pub kind: TxnKind,
    pub coins: i64,
    pub balance_after: u64,
    pub at: Timestamp,
    #[serde(rename = "ref")]
    pub reference: String,
    /// Window closed: how many coins became non-refundable (the balance is unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_refundable_coins: Option<u64>,
}

/// Whether `enroll_creator` enrolled the user now (201) or they already were (200).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Enrollment {
    Created,
    AlreadyEnrolled,
}

/// An amount as the API shows a price paid: `{"currency": "JPY", "gross": "1100"}`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Amount {
    pub currency: String,
    pub gross: String,
}

impl From<Money> for Amount {
    fn from(money: Money) -> Self {
        Amount {
            currency: money.currency().code().to_owned(),
            gross: money.to_string(),
        }
    }
}

/// `GET /v1/purchases/{purchase_id}`: a purchase and where its money stands.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchaseView {
    pub purchase_id: PurchaseId,
    pub channel: Channel,
    /// `pending`, `credited`, `failed`, `expired`, `refunded` or `reversed`.
    pub status: String,
    pub total_coins: u64,
    pub amount: Amount,
    pub created_at: Timestamp,
    pub credited_at: Option<Timestamp>,
    pub refundable_until: Option<Timestamp>,
    /// The purchase's own money going back, if it is.
    pub refund: Option<RefundView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_intent_id: Option<PaymentIntentId>,
    /// Other payments made for it and returned (a second payment of a purchase already paid).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub returned_payments: Vec<RefundView>,
}

/// Where a refund instruction stands.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefundView {
    pub refund_id: RefundId,
    pub status: RefundStatus,
    pub provider_refund_id: Option<String>,
    pub reason: RefundReason,
    pub payment_intent_id: PaymentIntentId,
}

impl From<&RefundRecord> for RefundView {
    fn from(refund: &RefundRecord) -> Self {
        RefundView {
            refund_id: refund.refund_id.clone(),
            status: refund.status,
            provider_refund_id: refund.provider_refund_id.clone(),
            reason: refund.reason,
            payment_intent_id: refund.payment_intent_id.clone(),
        }
    }
}

/// One page of a user's purchases, newest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PurchasePage {
    pub items: Vec<PurchaseView>,
    pub next_cursor: Option<String>,
}

/// Page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 20;
/// Largest page.
pub const MAX_PAGE: u32 = 100;
/// Longest cursor accepted: ours are the hex of a sort key of a few dozen characters.
pub const MAX_CURSOR_CHARS: usize = 128;

pub(crate) fn encode_cursor(sk: &str) -> String {
    hex::encode(sk)
}

/// The sort key a cursor stands for, if it is one of ours (`prefix` tells which list).
pub(crate) fn decode_cursor(
    cursor: &str,
    valid: impl Fn(&str) -> bool,
) -> Result<String, LedgerError> {
    let invalid = || LedgerError::InvalidRequest("invalid cursor".into());
    if cursor.len() > MAX_CURSOR_CHARS {
        return Err(invalid());
    }
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let sk = String::from_utf8(bytes).map_err(|_| invalid())?;
    if valid(&sk) { Ok(sk) } else { Err(invalid()) }
}

impl<S: Store> Ledger<S> {
    /// The user's balance, open lots and daily limit at `now`; `zone` (the user's) decides
    /// which day's spending `spent_today` shows.
    pub async fn wallet(
        &self,
        user: &UserId,
        zone: &Zone,
        now: Timestamp,
    ) -> Result<WalletView, LedgerError> {
        let snapshot = self.snapshot(user, zone, now).await?;
        let wallet = snapshot.wallet;
        // The day the limit counts is the wallet's, in the zone it was opened in.
        let today = local_day(now, wallet.zone.tz());
        // A lot spent to the last coin stays stored until its window closes, but is no
        // longer one the user holds.
        let lots = snapshot
            .lots
            .into_iter()
            .filter(|lot| lot.remaining > 0)
            .map(|lot| LotView {
                refundable: check_refund(lot.refundable_until, now, lot.untouched(), None).is_ok(),
                purchase_id: lot.purchase_id,
                coins: lot.coins,
                remaining: lot.remaining,
                purchased_at: lot.purchased_at,
                refundable_until: lot.refundable_until,
            })
            .collect();
        let limit = wallet.daily_limit.settled(now);
        let daily_limit = limit.coins.map(|coins| DailyLimitView {
            coins,
            spent_today: wallet.spent_on(today),
            pending: limit.pending,
        });
        Ok(WalletView {
            user_id: user.clone(),
            balance: wallet.balance,
            debt: wallet.debt,
            restricted: wallet.restricted,
            lots,
            daily_limit,
        })
    }

    /// History, newest first, `limit` (1 to 100) entries from `cursor`.
    pub async fn transactions(
        &self,
        user: &UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<TxnPage, LedgerError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let is_txn = |sk: &str| sk.starts_with(keys::TXN_SK_PREFIX);
        let start_after = cursor
            .map(|cursor| decode_cursor(cursor, is_txn))
            .transpose()?
            .map(|sk| Key::new(keys::user_pk(user), sk));
        // One extra entry tells whether another page exists, identically on both adapters.
        let query = Query {
            descending: true,
            limit: Some(limit + 1),
            start_after,
            ..Query::table(
                keys::user_pk(user),
                SortKey::BeginsWith(keys::TXN_SK_PREFIX.to_owned()),
            )
        };
        let mut records = self
            .store
            .query(&query)
            .await?
            .into_iter()
            .map(HistoryRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_cursor = more
            .then(|| records.last().map(|last| encode_cursor(&last.key().sk)))
            .flatten();
        Ok(TxnPage {
            items: records
                .into_iter()
                .map(|record| TxnView {
                    id: record.id,
                    kind: record.kind,
                    coins: record.coins,
                    balance_after: record.balance_after,
                    at: record.at,
                    reference: record.reference,
                    non_refundable_coins: record.non_refundable_coins,
                })
                .collect(),
            next_cursor,
        })
    }

    /// Sets the daily gifting limit (`None`: no limit) by the rules: lower at once, higher after
    /// the cooling-off. Returns the limit now stored, with any pending raise.
    pub async fn set_daily_limit(
        &self,
        user: &UserId,
        zone: &Zone,
        requested: Option<u64>,
        now: Timestamp,
    ) -> Result<DailyLimit, LedgerError> {
        self.update_wallet(user, Some(zone), |wallet| {
            domain::set_daily_limit(wallet, requested, now)
        })
        .await
        .map(|wallet| wallet.daily_limit)
    }

    /// Restricts a user or lifts their restriction (an admin's call); a user without a wallet
    /// is not found.
    pub async fn set_restriction(
        &self,
        user: &UserId,
        restricted: bool,
        now: Timestamp,
    ) -> Result<Wallet, LedgerError> {
        self.update_wallet(user, None, |wallet| {
            domain::set_restricted(wallet, restricted, now)
        })
        .await
    }

    /// Writes the wallet as `change` makes it; a wallet not yet stored is opened in `open_in`,
    /// or not found without it.
    async fn update_wallet(
        &self,
        user: &UserId,
        open_in: Option<&Zone>,
        change: impl Fn(&Wallet) -> Result<Wallet, LedgerError>,
    ) -> Result<Wallet, LedgerError> {
        let change = &change;
        self.transact(|| async move {
            let current = match (self.store.get(&keys::wallet(user)).await?, open_in) {
                (Some(record), _) => Wallet::try_from(record)?,
                (None, Some(zone)) => Wallet::empty(user, zone, jiff::Timestamp::UNIX_EPOCH),
                (None, None) => return Err(LedgerError::NotFound),
            };
            let next = change(&current)?;
            let write = Write::put(next.clone(), Condition::version(current.version));
            Ok(Attempt::Commit(Transaction::of([write]), next))
        })
        .await
    }

    /// A purchase with its refunds, as its owner (`owner`, or anyone when `None`) sees it.
    pub async fn purchase_view(
        &self,
        owner: Option<&UserId>,
        purchase_id: &PurchaseId,
        now: Timestamp,
    ) -> Result<PurchaseView, LedgerError> {
        // The purchase and its refund instructions share a partition: one query.
        let query = Query::table(keys::purchase_pk(purchase_id), SortKey::All);
        let mut purchase = None;
        let mut refunds = Vec::new();
        for record in self.store.query(&query).await? {
            match record {
                Record::Purchase(record) => purchase = Some(record),
                Record::Refund(refund) => refunds.push(refund),
                other => {
                    return Err(LedgerError::Corrupt(format!(
                        "{:?} beside purchase {purchase_id}",
                        other.key()
                    )));
                }
            }
        }
        let purchase = purchase.ok_or(LedgerError::NotFound)?;
        if owner.is_some_and(|owner| *owner != purchase.user_id) {
            return Err(LedgerError::NotFound);
        }
        Ok(view(&purchase, &refunds, now))
    }

    /// The user's purchases, newest first, `limit` (1 to 100) from `cursor`.
    pub async fn purchases(
        &self,
        user: &UserId,
        limit: u32,
        cursor: Option<&str>,
        now: Timestamp,
    ) -> Result<PurchasePage, LedgerError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let is_purchase = |sk: &str| sk.split_once('#').is_some_and(|(ms, _)| ms.len() == 15);
        let sort = match cursor {
            Some(cursor) => SortKey::Before(decode_cursor(cursor, is_purchase)?),
            None => SortKey::All,
        };
        let query = Query {
            index: Index::PurchasesByUser,
            descending: true,
            limit: Some(limit + 1),
            ..Query::table(keys::user_purchases_pk(user), sort)
        };
        let mut found = self.store.query_keys(&query).await?;
        let more = found.len() > limit as usize;
        found.truncate(limit as usize);
        let mut items = Vec::with_capacity(found.len());
        let mut last_sk = None;
        for key in found {
            let record =
                self.store.get(&key).await?.ok_or_else(|| {
                    LedgerError::Corrupt(format!("indexed purchase {key:?} is gone"))
                })?;
            let purchase = PurchaseRecord::try_from(record)?;
            last_sk = Some(purchase.index_sk());
            items.push(
                self.purchase_view(Some(user), &purchase.purchase_id, now)
                    .await?,
            );
        }
        let next_cursor = last_sk.filter(|_| more).map(|sk| encode_cursor(&sk));
        Ok(PurchasePage { items, next_cursor })
    }

    /// Enrolls the user as a creator (the caller checked the age).
    pub async fn enroll_creator(
        &self,
        user: &UserId,
        now: Timestamp,
    ) -> Result<Enrollment, LedgerError> {
        let profile = CreatorRecord {
            user_id: user.clone(),
            enrolled_at: now,
            payout_account: None,
            payout_account_changes: 0,
        };
        Ok(if self.put_new(profile).await? {
            Enrollment::Created
        } else {
            Enrollment::AlreadyEnrolled
        })
    }

    /// Whether the user is an enrolled creator.
    pub async fn is_creator(&self, user: &UserId) -> Result<bool, LedgerError> {
        Ok(self.creator_profile(user).await?.is_some())
    }

    /// The creator's profile, if enrolled.
    pub(crate) async fn creator_profile(
        &self,
        user: &UserId,
    ) -> Result<Option<CreatorRecord>, LedgerError> {
        match self.store.get(&keys::creator_profile(user)).await? {
            Some(record) => Ok(Some(CreatorRecord::try_from(record)?)),
            None => Ok(None),
        }
    }
}

/// What the purchase view shows of a purchase and its refund instructions at `now`.
fn view(purchase: &PurchaseRecord, refunds: &[RefundRecord], now: Timestamp) -> PurchaseView {
    let own = |refund: &&RefundRecord| Some(&refund.refund_id) == purchase.refund_id.as_ref();
    let status = if purchase.expired_at(now) {
        "expired"
    } else {
        purchase.status.as_str()
    };
    PurchaseView {
        purchase_id: purchase.purchase_id.clone(),
        channel: purchase.channel,
        status: status.to_owned(),
        total_coins: purchase.total_coins,
        amount: purchase.amount.into(),
        created_at: purchase.created_at,
        credited_at: purchase.credited_at,
        refundable_until: purchase.refundable_until,
        refund: refunds.iter().find(own).map(RefundView::from),
        payment_intent_id: purchase.payment_intent_id.clone(),
        returned_payments: refunds
            .iter()
            .filter(|refund| !own(refund))
            .map(RefundView::from)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_or_long_one_is_refused() {
        let is_txn = |sk: &str| sk.starts_with(keys::TXN_SK_PREFIX);
        let sk = "TXN#00000000000000000042";
        assert_eq!(decode_cursor(&encode_cursor(sk), is_txn).unwrap(), sk);
        assert!(decode_cursor(&encode_cursor("WALLET"), is_txn).is_err());
        assert!(decode_cursor("zz", is_txn).is_err());
        let long = encode_cursor(&format!("TXN#{}", "0".repeat(100)));
        assert!(decode_cursor(&long, is_txn).is_err());
    }
}
