//! The storage port: the few operations the ledger needs from a table, with DynamoDB's semantics.
//!
//! The domain computes; the store only reads items and commits a set of item writes atomically,
//! each write guarded by a [`Condition`] or applied as a commutative [`Write::AddDiamonds`]. Items
//! cross the port as typed [`Record`]s: each adapter owns its stored form. Both adapters
//! ([`crate::memory::MemoryStore`], [`crate::dynamo::DynamoStore`]) implement exactly this, so
//! one contract suite proves they behave the same.

use std::future::Future;

use crate::model::{PurchaseStatus, Record};

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
    /// Optimistic concurrency: the item exists with this `version`.
    VersionIs(u64),
    /// The item is a purchase in this status (`status = :status`).
    PurchaseStatusIs(PurchaseStatus),
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
            (Condition::PurchaseStatusIs(status), Some(record)) => {
                record.purchase_status() == Some(*status)
            }
            (Condition::VersionIs(_) | Condition::PurchaseStatusIs(_), None) => false,
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
    /// Adds to a creator's diamonds shard, creating it at 0 first (DynamoDB `ADD`).
    /// Commutative, so concurrent gifts never conflict on a version.
    AddDiamonds { shard: Key, diamonds: u64 },
}

impl Write {
    pub fn key(&self) -> Key {
        match self {
            Write::Put { record, .. } => record.key(),
            Write::Delete { key, .. } => key.clone(),
            Write::AddDiamonds { shard, .. } => shard.clone(),
        }
    }

    /// The key without copying it.
    fn key_parts(&self) -> (&str, &str) {
        match self {
            Write::Put { record, .. } => (record.pk(), record.sk()),
            Write::Delete { key, .. } | Write::AddDiamonds { shard: key, .. } => (&key.pk, &key.sk),
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

    /// Checks what DynamoDB would refuse outright: no writes, too many, one item twice.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.writes.is_empty() || self.writes.len() > MAX_TRANSACTION_WRITES {
            return Err(StoreError::Fatal(format!(
                "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
                self.writes.len()
            )));
        }
        // At most 100 writes: comparing pairs is cheaper than hashing every key.
        for (index, write) in self.writes.iter().enumerate() {
            let key = write.key_parts();
            if self.writes[..index]
                .iter()
                .any(|earlier| earlier.key_parts() == key)
            {
                return Err(StoreError::Fatal(format!(
                    "one transaction writes {key:?} twice"
                )));
            }
        }
        Ok(())
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

/// Which key a query reads: the table's (`pk`/`sk`, strongly consistent) or the open-lots index
/// (`gsi1pk`/`gsi1sk`, eventually consistent as every GSI is).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Index {
    Table,
    OpenLotsByDeadline,
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

    /// Every item in the table (audits and tests only: a full scan).
    fn scan_all(&self) -> impl Future<Output = Result<Vec<Record>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{IdempotencyKey, UserId};
    use crate::model::{IdempotencyRecord, ItemType, WalletRecord, keys};

    fn idempotency_record(expires_at: i64) -> Record {
        let user = UserId::new("a").unwrap();
        let key = keys::idempotency(&user, &IdempotencyKey::new("k").unwrap());
        Record::Idempotency(IdempotencyRecord {
            pk: key.pk,
            sk: key.sk,
            item_type: ItemType::Idempotency,
            user_id: user,
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
        let mut wallet = WalletRecord::empty(&user, jiff::Timestamp::UNIX_EPOCH);
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
        let key = Key::new("USER#a", "WALLET");
        let mut tx = Transaction::new();
        tx.push(Write::Delete {
            key: key.clone(),
            condition: Condition::Always,
        });
        assert!(tx.validate().is_ok());
        tx.push(Write::AddDiamonds {
            shard: key,
            diamonds: 1,
        });
        assert!(matches!(tx.validate(), Err(StoreError::Fatal(_))));
        assert!(Transaction::new().validate().is_err());
    }
}
