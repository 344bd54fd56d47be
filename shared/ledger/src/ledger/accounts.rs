//! Reads and account settings: the wallet view, history pages, the daily limit, creators.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{PurchaseId, TxnId, UserId};
use coins_rules::Zone;
use coins_rules::limits::{DailyLimit, PendingLimit, local_day};
use coins_rules::refund::check_refund;

use super::{Attempt, Ledger};
use crate::domain::{self, Wallet};
use crate::error::LedgerError;
use crate::store::{Condition, Key, Query, SortKey, Store, Transaction, Write};
use crate::table::{CreatorRecord, DiamondsRecord, HistoryRecord, Row, TxnKind, keys};

/// `GET /v1/wallet`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletView {
    pub user_id: UserId,
    pub balance: u64,
    /// Open lots, oldest first.
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

/// A creator's diamonds; the caller values them with the rules.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Earnings {
    pub creator_id: UserId,
    pub diamonds: u64,
}

/// History page size when the client does not say.
pub const DEFAULT_PAGE: u32 = 20;
/// Largest history page.
pub const MAX_PAGE: u32 = 100;

fn encode_cursor(sk: &str) -> String {
    hex::encode(sk)
}

fn decode_cursor(cursor: &str) -> Result<String, LedgerError> {
    let invalid = || LedgerError::InvalidRequest("invalid cursor".into());
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let sk = String::from_utf8(bytes).map_err(|_| invalid())?;
    if sk.starts_with(keys::TXN_SK_PREFIX) {
        Ok(sk)
    } else {
        Err(invalid())
    }
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
        let today = local_day(now, zone.tz());
        let snapshot = self.snapshot(user, now).await?;
        let wallet = snapshot.wallet;
        let lots = snapshot
            .lots
            .into_iter()
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
        let start_after = cursor
            .map(decode_cursor)
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
        requested: Option<u64>,
        now: Timestamp,
    ) -> Result<DailyLimit, LedgerError> {
        self.transact(|| async move {
            let current = match self.store.get(&keys::wallet(user)).await? {
                Some(record) => Wallet::try_from(record)?,
                None => Wallet::empty(user, now),
            };
            let next = domain::set_daily_limit(&current, requested, now)?;
            let limit = next.daily_limit;
            let write = Write::put(next, Condition::version(current.version));
            Ok(Attempt::Commit(Transaction::of([write]), limit))
        })
        .await
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
            diamond_shards: self.config.creator_shards,
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

    /// A creator's diamonds: the sum of their shards (one read each; earnings are read
    /// rarely, gifts written often).
    pub async fn earnings(&self, creator: &UserId) -> Result<Earnings, LedgerError> {
        let profile = self
            .creator_profile(creator)
            .await?
            .ok_or(LedgerError::NotFound)?;
        let mut diamonds: u64 = 0;
        for shard in 0..profile.diamond_shards {
            let Some(record) = self
                .store
                .get(&keys::diamonds_shard(creator, shard))
                .await?
            else {
                continue;
            };
            let shard = DiamondsRecord::try_from(record)?;
            diamonds = diamonds
                .checked_add(shard.diamonds)
                .ok_or(LedgerError::Overflow)?;
        }
        Ok(Earnings {
            creator_id: creator.clone(),
            diamonds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_forged_one_is_refused() {
        let sk = "TXN#00000000000000000042";
        assert_eq!(decode_cursor(&encode_cursor(sk)).unwrap(), sk);
        assert!(decode_cursor(&encode_cursor("WALLET")).is_err());
        assert!(decode_cursor("zz").is_err());
    }
}
