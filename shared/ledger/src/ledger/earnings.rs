//! The creator's side of gifts, written from the table's stream, never in a sender's
//! transaction.
//!
//! A batch of gift entries becomes, per creator, pages of gifts received (up to 100 gifts an
//! item) written in one transaction with the creator's earnings, then each gift's history entry
//! in its sender's partition, in plain batch writes (half a transaction's units). A gift counts
//! exactly once, whatever is redelivered, reordered or regrouped:
//!
//! - every count conditions on the earnings' version, so two counts of one creator never both
//!   take a gift as new;
//! - a gift whose sender history entry exists was counted;
//! - a counted gift without its history entry yet is in a page the earnings list as
//!   *unconfirmed* until its history entries are written. A count first finishes the pages that
//!   hold one of its gifts (a redelivery) or whose writer must have stopped ([`CONFIRM_GRACE`]),
//!   and leaves the others to the writer still finishing them.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use coins_ids::{GiftTxnId, UserId};
use coins_rules::gifts::payout_value;
use coins_rules::payouts::{HOLD_DAYS, released_at};
use coins_rules::{GiftId, GiftTarget};

use super::accounts::{MAX_PAGE, decode_cursor, encode_cursor};
use super::{Ledger, Retry};
use crate::error::LedgerError;
use crate::store::{Condition, Key, Query, SortKey, Store, Transaction, Write};
use crate::table::{
    CountedGift, EarningsRecord, FEED_SHARDS, GiftRecord, GiftsPageRecord, Hold, Record, Row,
    Unconfirmed, feed_shard, keys,
};

/// Gifts per page of gifts received: ~20 KB, a cheap read for a feed.
pub const GIFTS_PER_PAGE: usize = 100;

/// Pages written with one earnings update: 1,000 gifts, ~250 KB of DynamoDB's 4 MB per
/// transaction.
const PAGES_PER_TRANSACTION: usize = 10;

/// How long an unconfirmed page is left to the count that wrote it: Lambda's longest timeout,
/// so a writer still running has not given up yet.
pub const CONFIRM_GRACE: SignedDuration = SignedDuration::from_mins(15);

/// What counting did.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Counted {
    /// Gifts counted now.
    pub gifts: usize,
    /// Gifts counted before (a redelivery).
    pub already: usize,
    /// Pages of gifts received written.
    pub pages: usize,
}

impl std::ops::AddAssign for Counted {
    fn add_assign(&mut self, other: Counted) {
        self.gifts += other.gifts;
        self.already += other.already;
        self.pages += other.pages;
    }
}

/// `GET /v1/creators/me/earnings`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Earnings {
    pub creator_id: UserId,
    pub diamonds_earned: u64,
    pub pending: u64,
    pub available: u64,
    pub in_payout: u64,
    pub paid_out: u64,
    pub hold_days: i64,
    pub available_value: ValueView,
}

/// A USD amount as the API shows it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ValueView {
    pub currency: String,
    pub amount: String,
}

/// `GET /v1/creators/me/gifts`: gifts received, newest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReceivedPage {
    pub items: Vec<ReceivedGiftView>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReceivedGiftView {
    pub gift_txn_id: GiftTxnId,
    pub sender_id: UserId,
    pub gift_id: GiftId,
    pub quantity: u32,
    pub diamonds: u64,
    pub target: GiftTarget,
    pub at: Timestamp,
}

impl From<&CountedGift> for ReceivedGiftView {
    fn from(gift: &CountedGift) -> Self {
        ReceivedGiftView {
            gift_txn_id: gift.gift_txn_id.clone(),
            sender_id: gift.sender_id.clone(),
            gift_id: gift.gift_id.clone(),
            quantity: gift.quantity,
            diamonds: gift.diamonds,
            target: gift.target.clone(),
            at: gift.at,
        }
    }
}

impl EarningsRecord {
    /// A creator's earnings before any gift.
    pub fn empty(creator: &UserId, now: Timestamp) -> Self {
        EarningsRecord {
            creator_id: creator.clone(),
            version: 0,
            earned: 0,
            holds: Vec::new(),
            in_payout: 0,
            paid_out: 0,
            payout_day: None,
            payout_cents_today: 0,
            unconfirmed: Vec::new(),
            updated_at: now,
        }
    }

    /// Diamonds still held at `now`.
    pub fn pending(&self, now: Timestamp) -> u64 {
        self.holds
            .iter()
            .filter(|hold| hold.release_at > now)
            .map(|hold| hold.diamonds)
            .sum()
    }

    /// Diamonds that may be paid out at `now`.
    pub fn available(&self, now: Timestamp) -> u64 {
        self.earned
            .saturating_sub(self.pending(now))
            .saturating_sub(self.in_payout)
            .saturating_sub(self.paid_out)
    }

    /// One version on at `now`, released holds dropped (they count as available already).
    pub fn next(&self, now: Timestamp) -> Result<EarningsRecord, LedgerError> {
        let mut next = self.clone();
        next.version = self.version.checked_add(1).ok_or(LedgerError::Overflow)?;
        next.holds.retain(|hold| hold.release_at > now);
        next.updated_at = now;
        Ok(next)
    }

    /// The earnings with `gifts` counted: their diamonds earned, each held until its release.
    fn with_gifts(&self, gifts: &[CountedGift], now: Timestamp) -> Result<Self, LedgerError> {
        let mut next = self.next(now)?;
        for gift in gifts {
            next.earned = next
                .earned
                .checked_add(gift.diamonds)
                .ok_or(LedgerError::Overflow)?;
            let release_at = released_at(gift.at);
            if release_at <= now {
                continue;
            }
            match next
                .holds
                .iter_mut()
                .find(|hold| hold.release_at == release_at)
            {
                Some(hold) => {
                    hold.diamonds = hold
                        .diamonds
                        .checked_add(gift.diamonds)
                        .ok_or(LedgerError::Overflow)?
                }
                None => next.holds.push(Hold {
                    release_at,
                    diamonds: gift.diamonds,
                }),
            }
        }
        next.holds.sort_by_key(|hold| hold.release_at);
        Ok(next)
    }

    pub fn view(&self, now: Timestamp) -> Earnings {
        let available = self.available(now);
        let value = payout_value(available);
        Earnings {
            creator_id: self.creator_id.clone(),
            diamonds_earned: self.earned,
            pending: self.pending(now),
            available,
            in_payout: self.in_payout,
            paid_out: self.paid_out,
            hold_days: HOLD_DAYS,
            available_value: ValueView {
                currency: value.currency().code().to_owned(),
                amount: value.to_string(),
            },
        }
    }
}

impl<S: Store> Ledger<S> {
    /// Counts gift entries into their creators' earnings and gifts received, each gift once
    /// (tests and tools; the stream consumer counts creator by creator, to report which
    /// failed).
    pub async fn count_gifts(
        &self,
        gifts: &[GiftRecord],
        now: Timestamp,
    ) -> Result<Counted, LedgerError> {
        let mut counted = Counted::default();
        for (creator, gifts) in by_creator(gifts, |gift| gift) {
            counted += self.count_creator_gifts(creator, &gifts, now).await?;
        }
        Ok(counted)
    }

    /// Counts one creator's gift entries, each once.
    pub async fn count_creator_gifts(
        &self,
        creator: &UserId,
        gifts: &[&GiftRecord],
        now: Timestamp,
    ) -> Result<Counted, LedgerError> {
        // One entry twice in a batch (a redelivery merged into a batch holding it) is one
        // gift: both copies would look new to the check below and be counted twice.
        let mut seen = HashSet::with_capacity(gifts.len());
        let gifts: Vec<&GiftRecord> = gifts
            .iter()
            .copied()
            .filter(|gift| seen.insert(&gift.details.gift_txn_id))
            .collect();
        let mut counted = Counted::default();
        for chunk in gifts.chunks(GIFTS_PER_PAGE * PAGES_PER_TRANSACTION) {
            counted += self.count_chunk(creator, chunk, now).await?;
        }
        Ok(counted)
    }

    async fn count_chunk(
        &self,
        creator: &UserId,
        gifts: &[&GiftRecord],
        now: Timestamp,
    ) -> Result<Counted, LedgerError> {
        let mut retry = self.retry();
        loop {
            let current = self.earnings_record(creator, now).await?;
            // Finish what a stopped count left, and what holds one of these gifts (a
            // redelivery): their gifts then have history entries, which the check below sees.
            let to_finish = self.counts_to_finish(&current, gifts, now).await?;
            if !to_finish.is_empty() {
                self.confirm(&current, &to_finish, now).await?;
                continue;
            }
            let keys: Vec<Key> = gifts
                .iter()
                .map(|gift| keys::txn(&gift.sender_id, gift.seq))
                .collect();
            let entries = self.store.get_many(&keys).await?;
            let mut new: Vec<CountedGift> = gifts
                .iter()
                .zip(&entries)
                .filter(|(_, entry)| entry.is_none())
                .map(|(gift, _)| gift.counted())
                .collect();
            let already = gifts.len() - new.len();
            if new.is_empty() {
                self.mark_counted(gifts, now).await?;
                return Ok(Counted {
                    already,
                    ..Counted::default()
                });
            }
            new.sort_by(CountedGift::newest_first);
            let pages: Vec<GiftsPageRecord> = new
                .chunks(GIFTS_PER_PAGE)
                .map(|gifts| GiftsPageRecord {
                    creator_id: creator.clone(),
                    gifts: gifts.to_vec(),
                })
                .collect();
            let this_count = Unconfirmed {
                pages: pages.iter().map(GiftsPageRecord::page_ref).collect(),
                counted_at: now,
            };
            let mut earnings = current.with_gifts(&new, now)?;
            earnings.unconfirmed.push(this_count.clone());
            let mut transaction = Transaction::of([Write::put(
                earnings.clone(),
                Condition::version(current.version),
            )]);
            for page in &pages {
                transaction.push(Write::put(page.clone(), Condition::Absent));
            }
            if let Err(error) = self.store.commit(transaction).await {
                retry.after(error).await?;
                continue;
            }
            let written = pages.len();
            self.confirm(&earnings, &[(this_count, pages)], now).await?;
            self.mark_counted(gifts, now).await?;
            return Ok(Counted {
                gifts: new.len(),
                already,
                pages: written,
            });
        }
    }

    /// Takes counted gift entries out of the outstanding index and lets them expire, in plain
    /// batch writes: only once their history entries exist (confirmed), since an entry that
    /// expired before its gift was counted would leave the creator unpaid. Unconditional: the
    /// counted state is final, and nothing but this mark rewrites an entry.
    async fn mark_counted(&self, gifts: &[&GiftRecord], now: Timestamp) -> Result<(), LedgerError> {
        let marked = gifts
            .iter()
            .filter(|gift| gift.counted_at.is_none())
            .map(|gift| {
                gift.marked_counted(now, self.config.idempotency_ttl)
                    .map(Record::from)
            })
            .collect::<Result<Vec<Record>, LedgerError>>()?;
        if marked.is_empty() {
            return Ok(());
        }
        let mut retry = self.retry();
        while let Err(error) = self.store.put_many(marked.clone()).await {
            retry.after(error).await?;
        }
        Ok(())
    }

    /// The unconfirmed counts of `earnings` this count must finish, with their pages: those
    /// past the grace, and those holding one of `gifts`.
    async fn counts_to_finish(
        &self,
        earnings: &EarningsRecord,
        gifts: &[&GiftRecord],
        now: Timestamp,
    ) -> Result<Vec<(Unconfirmed, Vec<GiftsPageRecord>)>, LedgerError> {
        let mut to_finish = Vec::new();
        for unconfirmed in &earnings.unconfirmed {
            let keys: Vec<Key> = unconfirmed
                .pages
                .iter()
                .map(|page| page.key(&earnings.creator_id))
                .collect();
            let mut pages = Vec::with_capacity(keys.len());
            for (key, page) in keys.iter().zip(self.store.get_many(&keys).await?) {
                let page = page.ok_or_else(|| {
                    LedgerError::Corrupt(format!("earnings list a missing page {key:?}"))
                })?;
                pages.push(GiftsPageRecord::try_from(page)?);
            }
            let stale = unconfirmed
                .counted_at
                .checked_add(CONFIRM_GRACE)
                .is_ok_and(|deadline| deadline <= now);
            let ours = pages.iter().flat_map(|page| &page.gifts).any(|counted| {
                gifts
                    .iter()
                    .any(|gift| gift.details.gift_txn_id == counted.gift_txn_id)
            });
            if stale || ours {
                to_finish.push((unconfirmed.clone(), pages));
            }
        }
        Ok(to_finish)
    }

    /// Writes the sender history entries of the pages of `counts`, then drops the counts from
    /// the earnings' unconfirmed list. Whoever confirms first wins; the entries are the same
    /// either way.
    async fn confirm(
        &self,
        earnings: &EarningsRecord,
        counts: &[(Unconfirmed, Vec<GiftsPageRecord>)],
        now: Timestamp,
    ) -> Result<(), LedgerError> {
        let entries: Vec<Record> = counts
            .iter()
            .flat_map(|(_, pages)| pages)
            .flat_map(|page| {
                page.gifts
                    .iter()
                    .map(|gift| gift.history(&page.creator_id).into())
            })
            .collect();
        let mut retry: Retry<'_> = self.retry();
        while let Err(error) = self.store.put_many(entries.clone()).await {
            retry.after(error).await?;
        }
        let confirmed: Vec<&Unconfirmed> = counts.iter().map(|(count, _)| count).collect();
        let mut current = earnings.clone();
        loop {
            if !current
                .unconfirmed
                .iter()
                .any(|count| confirmed.contains(&count))
            {
                return Ok(());
            }
            let mut next = current.next(now)?;
            next.unconfirmed.retain(|count| !confirmed.contains(&count));
            let write = Write::put(next, Condition::VersionIs(current.version));
            match self.store.commit(Transaction::of([write])).await {
                Ok(()) => return Ok(()),
                Err(error) => {
                    // Another count or a payout moved the earnings on: drop ours from theirs.
                    retry.after(error).await?;
                    current = self.earnings_record(&earnings.creator_id, now).await?;
                }
            }
        }
    }

    /// A creator's earnings at `now` (zero before any gift).
    pub async fn earnings(
        &self,
        creator: &UserId,
        now: Timestamp,
    ) -> Result<Earnings, LedgerError> {
        if !self.is_creator(creator).await? {
            return Err(LedgerError::NotFound);
        }
        Ok(self.earnings_record(creator, now).await?.view(now))
    }

    /// The earnings item, or an empty one (version 0) before any gift.
    pub(crate) async fn earnings_record(
        &self,
        creator: &UserId,
        now: Timestamp,
    ) -> Result<EarningsRecord, LedgerError> {
        match self.store.get(&keys::earnings(creator)).await? {
            Some(record) => EarningsRecord::try_from(record),
            None => Ok(EarningsRecord::empty(creator, now)),
        }
    }

    /// The gifts a creator received, newest first by page (gifts counted together are listed
    /// together), `limit` at a time: the feed's partitions merged. A cursor names a page and
    /// how many of its gifts were shown.
    pub async fn gifts_received(
        &self,
        creator: &UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<ReceivedPage, LedgerError> {
        if !self.is_creator(creator).await? {
            return Err(LedgerError::NotFound);
        }
        let resume = cursor.map(FeedCursor::decode).transpose()?;
        // Each partition's next page, newest first; the cursor's page is where it stopped.
        let mut heads: Vec<Option<(GiftsPageRecord, usize)>> = Vec::new();
        for shard in 0..FEED_SHARDS {
            let head = match &resume {
                Some(cursor) if cursor.shard == shard => {
                    let key = Key::new(keys::feed_pk(creator, shard), cursor.sk.clone());
                    let page = self
                        .store
                        .get(&key)
                        .await?
                        .ok_or_else(FeedCursor::invalid)?;
                    Some((GiftsPageRecord::try_from(page)?, cursor.shown))
                }
                Some(cursor) => self
                    .feed_page(creator, shard, Some(&cursor.sk))
                    .await?
                    .map(|p| (p, 0)),
                None => self.feed_page(creator, shard, None).await?.map(|p| (p, 0)),
            };
            heads.push(head);
        }
        let limit = limit.clamp(1, MAX_PAGE) as usize;
        let mut items: Vec<ReceivedGiftView> = Vec::with_capacity(limit);
        loop {
            let newest = heads
                .iter()
                .enumerate()
                .filter_map(|(shard, head)| head.as_ref().map(|(page, _)| (page.key().sk, shard)))
                .max();
            let Some((sk, shard)) = newest else {
                return Ok(ReceivedPage {
                    items,
                    next_cursor: None,
                });
            };
            let (page, shown) = heads[shard].take().expect("the newest head exists");
            for (index, gift) in page.gifts.iter().enumerate().skip(shown) {
                if items.len() == limit {
                    let cursor = FeedCursor {
                        shard: u8::try_from(shard).expect("shards fit a u8"),
                        sk,
                        shown: index,
                    };
                    return Ok(ReceivedPage {
                        items,
                        next_cursor: Some(cursor.encode()),
                    });
                }
                items.push(gift.into());
            }
            heads[shard] = self
                .feed_page(
                    creator,
                    u8::try_from(shard).expect("shards fit a u8"),
                    Some(&sk),
                )
                .await?
                .map(|page| (page, 0));
        }
    }

    /// The newest page of one feed partition older than `before` (or the newest of all).
    async fn feed_page(
        &self,
        creator: &UserId,
        shard: u8,
        before: Option<&str>,
    ) -> Result<Option<GiftsPageRecord>, LedgerError> {
        let sort = match before {
            Some(sk) => SortKey::Before(sk.to_owned()),
            None => SortKey::All,
        };
        let query = Query {
            descending: true,
            limit: Some(1),
            ..Query::table(keys::feed_pk(creator, shard), sort)
        };
        match self.store.query(&query).await?.into_iter().next() {
            Some(record) => Ok(Some(GiftsPageRecord::try_from(record)?)),
            None => Ok(None),
        }
    }
}

/// Groups items by the creator of their gift entry, in first-seen order.
pub fn by_creator<T>(
    items: &[T],
    gift: impl Fn(&T) -> &GiftRecord,
) -> Vec<(&UserId, Vec<&GiftRecord>)> {
    let mut groups: Vec<(&UserId, Vec<&GiftRecord>)> = Vec::new();
    for item in items {
        let gift = gift(item);
        let creator = &gift.details.recipient_id;
        match groups.iter_mut().find(|(known, _)| *known == creator) {
            Some((_, group)) => group.push(gift),
            None => groups.push((creator, vec![gift])),
        }
    }
    groups
}

/// Where a gifts-received listing stopped: a page (its partition and sort key) and how many of
/// its gifts were shown.
struct FeedCursor {
    shard: u8,
    sk: String,
    shown: usize,
}

impl FeedCursor {
    fn encode(&self) -> String {
        encode_cursor(&format!("{}|{}@{}", self.shard, self.sk, self.shown))
    }

    fn decode(cursor: &str) -> Result<FeedCursor, LedgerError> {
        let text = decode_cursor(cursor, |_| true)?;
        let (shard, rest) = text.split_once('|').ok_or_else(FeedCursor::invalid)?;
        let (sk, shown) = rest.rsplit_once('@').ok_or_else(FeedCursor::invalid)?;
        let shard: u8 = shard.parse().map_err(|_| FeedCursor::invalid())?;
        let shown: usize = shown.parse().map_err(|_| FeedCursor::invalid())?;
        // A page's partition follows from its newest gift, named at the end of its sort key.
        let newest = sk
            .split_once('#')
            .and_then(|(_, gift)| GiftTxnId::new(gift).ok())
            .ok_or_else(FeedCursor::invalid)?;
        if feed_shard(&newest) != shard {
            return Err(FeedCursor::invalid());
        }
        Ok(FeedCursor {
            shard,
            sk: sk.to_owned(),
            shown,
        })
    }

    fn invalid() -> LedgerError {
        LedgerError::InvalidRequest("invalid cursor".into())
    }
}
