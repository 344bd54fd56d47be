//! What the stream's consumers still owe, found by age for their sweeps and the audit.
//!
//! A gift entry until the earnings consumer counted it, a refund instruction or a payout while
//! pending: each sits in the outstanding index (`gsi3`, keys only, by kind and age) for exactly
//! that long, since its index keys are derived from its state ([`Record::outstanding`]). A
//! stream record whose batch went to the dead-letter queue is gone after the stream's 24 hours,
//! but the item stays in the index, so each consumer's scheduled sweep finds what it still owes
//! past a threshold and acts on it again, idempotently as ever: nothing parked is lost. The
//! sweeps run inside the consumers themselves, so no other role gains the right to write gift
//! entries or payouts.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::{Counted, Ledger};
use crate::error::LedgerError;
use crate::store::{Index, Key, Query, SortKey, Store, StoreError};
use crate::table::{GiftRecord, OUTSTANDING_SHARDS, Outstanding, Record, keys};

/// How long an item may stay outstanding before its consumer's sweep acts on it again: well
/// past what the stream normally takes (seconds), so a sweep only picks up what was dropped.
pub const SWEEP_AFTER: SignedDuration = SignedDuration::from_mins(10);

/// The oldest gift entries one earnings sweep takes from each index partition (3,200 in all):
/// a backlog after an outage is worked off over several sweeps, within the function's timeout.
pub const SWEEP_GIFTS_PER_PARTITION: u32 = 100;

/// The oldest refunds or payouts one dispatcher's sweep takes from each partition (64 in all):
/// each may take a few provider calls, and the sweep must end within the function's timeout.
pub const SWEEP_SENDS_PER_PARTITION: u32 = 2;

/// Outstanding for longer than this, an item is stuck: its sweep logs it at error level (the
/// alarm), and `coinctl audit` fails on it.
pub const STUCK_AFTER: SignedDuration = SignedDuration::from_hours(1);

/// One outstanding item, as a consistent read found it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct OutstandingItem {
    pub kind: Outstanding,
    #[serde(skip)]
    pub key: Key,
    pub id: String,
    pub since: Timestamp,
    /// Seconds outstanding at the time of the look.
    pub age_seconds: i64,
}

impl OutstandingItem {
    pub fn is_stuck(&self) -> bool {
        self.age_seconds >= STUCK_AFTER.as_secs()
    }
}

impl<S: Store> Ledger<S> {
    /// The items of `kind` outstanding since `now − older_than` or before, oldest first (at most
    /// `per_partition` of each index partition, if given). Reads the index (eventually
    /// consistent), then each item consistently, so what finished in between is left out.
    pub async fn outstanding(
        &self,
        kind: Outstanding,
        now: Timestamp,
        older_than: SignedDuration,
        per_partition: Option<u32>,
    ) -> Result<Vec<OutstandingItem>, LedgerError> {
        Ok(self
            .outstanding_records(kind, now, older_than, per_partition)
            .await?
            .into_iter()
            .map(|(item, _)| item)
            .collect())
    }

    /// Every outstanding item of every kind, oldest first within each kind (the audit).
    pub async fn all_outstanding(
        &self,
        now: Timestamp,
    ) -> Result<Vec<OutstandingItem>, LedgerError> {
        let mut all = Vec::new();
        for kind in Outstanding::ALL {
            all.extend(
                self.outstanding(kind, now, SignedDuration::ZERO, None)
                    .await?,
            );
        }
        Ok(all)
    }

    /// The earnings consumer's sweep: counts the gift entries left uncounted for longer than
    /// `older_than` (their stream records dead-lettered or expired), each once as ever, the
    /// oldest [`SWEEP_GIFTS_PER_PARTITION`] of each partition at a time.
    pub async fn count_outstanding_gifts(
        &self,
        now: Timestamp,
        older_than: SignedDuration,
    ) -> Result<(Vec<OutstandingItem>, Counted), LedgerError> {
        let (items, gifts): (Vec<OutstandingItem>, Vec<GiftRecord>) = self
            .outstanding_records(
                Outstanding::Gift,
                now,
                older_than,
                Some(SWEEP_GIFTS_PER_PARTITION),
            )
            .await?
            .into_iter()
            .filter_map(|(item, record)| match record {
                Record::Gift(gift) => Some((item, gift)),
                _ => None,
            })
            .unzip();
        let counted = self.count_gifts(&gifts, now).await?;
        Ok((items, counted))
    }

    /// One partition of the index and its items, a throttled read retried with backoff (one
    /// refusal must not fail a whole sweep of 32 partitions).
    async fn read_partition(
        &self,
        query: &Query,
    ) -> Result<(Vec<Key>, Vec<Option<Record>>), LedgerError> {
        let mut retry = self.retry();
        loop {
            let read = async {
                let keys = self.store.query_keys(query).await?;
                let records = self.store.get_many(&keys).await?;
                Ok::<_, StoreError>((keys, records))
            };
            match read.await {
                Ok(read) => return Ok(read),
                Err(error) => retry.after(error).await?,
            }
        }
    }

    async fn outstanding_records(
        &self,
        kind: Outstanding,
        now: Timestamp,
        older_than: SignedDuration,
        per_partition: Option<u32>,
    ) -> Result<Vec<(OutstandingItem, Record)>, LedgerError> {
        let cutoff = now
            .checked_sub(older_than)
            .map_err(|_| LedgerError::Overflow)?;
        let mut found = Vec::new();
        for shard in 0..OUTSTANDING_SHARDS {
            let query = Query {
                index: Index::Outstanding,
                partition: keys::outstanding_pk(kind, shard),
                sort: SortKey::Before(keys::outstanding_bound(cutoff)),
                descending: false,
                limit: per_partition,
                start_after: None,
            };
            let (keys, records) = self.read_partition(&query).await?;
            for (key, record) in keys.iter().zip(records) {
                let Some(record) = record else { continue };
                let Some((_, since, id)) = record.outstanding() else {
                    continue;
                };
                let item = OutstandingItem {
                    kind,
                    key: key.clone(),
                    id: id.to_owned(),
                    since,
                    age_seconds: now.duration_since(since).as_secs(),
                };
                found.push((item, record));
            }
        }
        found.sort_by(|(a, _), (b, _)| (a.since, &a.id).cmp(&(b.since, &b.id)));
        Ok(found)
    }
}
