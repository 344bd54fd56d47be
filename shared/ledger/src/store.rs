//! The storage port: the few operations the ledger needs from a table, with DynamoDB's semantics.
//!
//! The domain computes; the store only reads items and commits a set of item writes atomically,
//! each write guarded by a [`Condition`]. Items
//! cross the port as typed [`Record`]s: each adapter owns its stored form. Both adapters
//! ([`crate::memory::MemoryStore`], [`crate::dynamo::DynamoStore`]) implement exactly this, so
//! one contract suite proves they behave the same.

use std::future::Future;

use crate::table::Record;

/// The primary key of an item.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// What must hold of the item's current state for a write to apply.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Condition {
    /// Unconditional.
    Always,
    /// The item does not exist (`attribute_not_exists(pk)`).
    Absent,
    /// The item does not exist or its TTL has passed (`attribute_not_exists(pk) OR expires_at <
    /// :now`): TTL deletion lags, so an expired record must be treated as gone by the condition
    /// itself, not by hoping DynamoDB already deleted it.
    AbsentOrExpired { now_epoch_s: i64 },
    /// The item exists (`attribute_exists(pk)`).
    Exists,
    /// Optimistic concurrency: the item exists with this `version` (wallets, purchases,
    /// refund instructions).
    VersionIs(u64),
}

impl Condition {
    /// The condition for replacing an item last read at `version` (0: it did not exist).
    pub fn version(version: u64) -> Condition {
        if version == 0 {
            Condition::Absent
        } else {
            Condition::VersionIs(version)
        }
    }

    /// Evaluates the condition on the item's current state, as DynamoDB would.
    pub fn holds(&self, current: Option<&Record>) -> bool {
        match (self, current) {
            (Condition::Always, _) => true,
            (Condition::Absent | Condition::AbsentOrExpired { .. }, None) => true,
            (Condition::Absent, Some(_)) => false,
            (Condition::AbsentOrExpired { now_epoch_s }, Some(record)) => record
                .expires_at()
                .is_some_and(|expires_at| expires_at < *now_epoch_s),
            (Condition::Exists, current) => current.is_some(),
            (Condition::VersionIs(version), Some(record)) => record.version() == Some(*version),
            (Condition::VersionIs(_), None) => false,
        }
    }
}

/// One item write inside a commit.
// A record is a few hundred bytes and a transaction holds at most 100 writes, moved once into
// the store: boxing each record would cost an allocation per write for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, Debug)]
pub enum Write {
    /// Replaces the whole item.
    Put {
        record: Record,
        condition: Condition,
    },
    /// Deletes the item.
    Delete { key: Key, condition: Condition },
}

impl Write {
    /// A put of `row` under `condition`.
    pub fn put(row: impl Into<Record>, condition: Condition) -> Write {
        Write::Put {
            record: row.into(),
            condition,
        }
    }

    pub fn key(&self) -> Key {
        match self {
            Write::Put { record, .. } => record.key(),
            Write::Delete { key, .. } => key.clone(),
        }
    }

    /// The condition the item's current state must meet.
    pub fn condition(&self) -> &Condition {
        match self {
            Write::Put { condition, .. } | Write::Delete { condition, .. } => condition,
        }
    }
}

/// Writes applied all or nothing. One write is sent as a single conditional write (half the
/// write units of a transaction); several as one `TransactWriteItems`.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Transaction {
    pub writes: Vec<Write>,
}

/// DynamoDB's limit on items in one `TransactWriteItems`.
pub const MAX_TRANSACTION_WRITES: usize = 100;

impl Transaction {
    pub fn new() -> Self {
        Transaction::default()
    }

    pub fn push(&mut self, write: Write) -> usize {
        self.writes.push(write);
        self.writes.len() - 1
    }

    /// A transaction of these writes.
    pub fn of(writes: impl IntoIterator<Item = Write>) -> Self {
        Transaction {
            writes: writes.into_iter().collect(),
        }
    }

    /// The key of every write, in order, once what DynamoDB would refuse outright is ruled
    /// out: no writes, too many, one item twice.
    pub fn validated_keys(&self) -> Result<Vec<Key>, StoreError> {
        if self.writes.is_empty() || self.writes.len() > MAX_TRANSACTION_WRITES {
            return Err(StoreError::Fatal(format!(
                "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
                self.writes.len()
            )));
        }
        let keys: Vec<Key> = self.writes.iter().map(Write::key).collect();
        // At most 100 writes: comparing pairs is cheaper than hashing every key.
        for (index, key) in keys.iter().enumerate() {
            if keys[..index].contains(key) {
                return Err(StoreError::Fatal(format!(
                    "one transaction writes {key:?} twice"
                )));
            }
        }
        Ok(keys)
    }
}

/// Which sort keys a query selects within its partition.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum SortKey {
    All,
    BeginsWith(String),
    /// Strictly less than the bound.
    Before(String),
}

/// Which key a query reads: the table's (`pk`/`sk`, strongly consistent) or an index
/// (eventually consistent as every GSI is, and projecting keys only).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Index {
    Table,
    /// `gsi1`: open lots by refund deadline, for the closure sweep.
    OpenLotsByDeadline,
    /// `gsi2`: each user's purchases by creation time.
    PurchasesByUser,
    /// `gsi3`: what the stream's consumers still owe (gifts not counted, refunds and payouts
    /// pending) by age, for the sweeper and the audit.
    Outstanding,
}

/// A query in one partition.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort: SortKey,
    pub descending: bool,
    /// At most this many items; `None` reads the whole selection, page by page.
    pub limit: Option<u32>,
    /// Resume after this table key (table queries only).
    pub start_after: Option<Key>,
}

impl Query {
    /// A strongly consistent table query.
    pub fn table(partition: impl Into<String>, sort: SortKey) -> Self {
        Query {
            index: Index::Table,
            partition: partition.into(),
            sort,
            descending: false,
            limit: None,
            start_after: None,
        }
    }
}

/// Why a store operation failed. The variant decides whether to retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The conditions of these writes (indexes into the transaction) failed; nothing was written.
    #[error("condition failed on writes {writes:?}")]
    ConditionFailed { writes: Vec<usize> },
    /// Refused before applying (throttled, transaction conflict): safe to retry as is.
    #[error("transient store failure: {0}")]
    Transient(String),
    /// The outcome is unknown (timeout, lost response): it may or may not have applied. Safe to
    /// retry only by re-reading, which every ledger operation does.
    #[error("store outcome unknown: {0}")]
    Ambiguous(String),
    /// Misconfiguration, invalid request or unreadable data: retrying will not help.
    #[error("store failure: {0}")]
    Fatal(String),
}

/// The storage port. Reads of the table are strongly consistent.
pub trait Store: Clone + Send + Sync + 'static {
    /// Reads one item.
    fn get(&self, key: &Key) -> impl Future<Output = Result<Option<Record>, StoreError>> + Send;

    /// Reads items of one table partition in sort-key order (reversed if `descending`).
    fn query(&self, query: &Query) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;

    /// The keys of the items a query selects, in its order: the only read of the open-lots
    /// index, which projects keys alone.
    fn query_keys(
        &self,
        query: &Query,
    ) -> impl Future<Output = Result<Vec<Key>, StoreError>> + Send;

    /// Applies all writes or none.
    fn commit(
        &self,
        transaction: Transaction,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Reads many items, in the order of `keys` (`BatchGetItem`, strongly consistent). By
    /// default one read each; DynamoDB reads up to 100 per request.
    fn get_many(
        &self,
        keys: &[Key],
    ) -> impl Future<Output = Result<Vec<Option<Record>>, StoreError>> + Send {
        async move {
            let mut records = Vec::with_capacity(keys.len());
            for key in keys {
                records.push(self.get(key).await?);
            }
            Ok(records)
        }
    }

    /// Writes many items unconditionally and not atomically (`BatchWriteItem`), each at a plain
    /// write's units: only for items whose every write has the same content, or settles them for
    /// good (a gift entry marked counted), so a repeat or a half-done batch is harmless. By default one commit each; DynamoDB writes up to 25 per
    /// request.
    fn put_many(
        &self,
        records: Vec<Record>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            for record in records {
                self.commit(Transaction::of([Write::put(record, Condition::Always)]))
                    .await?;
            }
            Ok(())
        }
    }

    /// Every item in the table (audits and tests only: a full scan).
    fn scan_all(&self) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Wallet;
    use crate::table::{IdempotencyRecord, keys};
    use coins_ids::{IdempotencyKey, UserId};

    fn idempotency_record(expires_at: i64) -> Record {
        Record::Idempotency(IdempotencyRecord {
            user_id: UserId::new("a").unwrap(),
            key: IdempotencyKey::new("k").unwrap(),
            request_hash: String::new(),
            response: String::new(),
            created_at: jiff::Timestamp::UNIX_EPOCH,
            expires_at,
        })
    }

    #[test]
    fn an_expired_record_counts_as_absent() {
        let record = idempotency_record(100);
        let at = |now_epoch_s| Condition::AbsentOrExpired { now_epoch_s };
        assert!(at(101).holds(Some(&record)));
        assert!(!at(100).holds(Some(&record)));
        assert!(at(0).holds(None));
        assert!(!Condition::Absent.holds(Some(&record)));
    }

    #[test]
    fn a_version_condition_needs_the_item_at_that_version() {
        let user = UserId::new("a").unwrap();
        let mut wallet = Wallet::empty(
            &user,
            &coins_rules::Zone::get("UTC").unwrap(),
            jiff::Timestamp::UNIX_EPOCH,
        );
        wallet.version = 7;
        let wallet = Record::Wallet(wallet);
        assert!(Condition::VersionIs(7).holds(Some(&wallet)));
        assert!(!Condition::VersionIs(6).holds(Some(&wallet)));
        assert!(!Condition::VersionIs(7).holds(None));
        assert!(!Condition::VersionIs(7).holds(Some(&idempotency_record(1))));
        assert_eq!(Condition::version(0), Condition::Absent);
    }

    #[test]
    fn a_transaction_may_not_write_one_item_twice() {
        let creator = UserId::new("a").unwrap();
        let mut tx = Transaction::new();
        tx.push(Write::Delete {
            key: keys::earnings(&creator),
            condition: Condition::Always,
        });
        assert!(tx.validated_keys().is_ok());
        tx.push(Write::Delete {
            key: keys::earnings(&creator),
            condition: Condition::Exists,
        });
        assert!(matches!(tx.validated_keys(), Err(StoreError::Fatal(_))));
        assert!(Transaction::new().validated_keys().is_err());
    }
}
