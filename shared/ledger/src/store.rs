//! The storage port: the few operations the ledger needs from a table, with DynamoDB's semantics.
//!
//! The domain computes; the store only reads items and commits a set of item writes atomically,
//! each write guarded by a [`Condition`] or applied as a commutative [`Write::Increment`]. Both
//! adapters ([`crate::memory::MemoryStore`], [`crate::dynamo::DynamoStore`]) implement exactly this,
//! so one contract suite proves they behave the same.

use std::future::Future;

use serde_dynamo::{AttributeValue, Item};

use crate::model::attr;

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

    /// The key of a stored item; `None` if the item lacks `pk` or `sk` as strings.
    pub fn of(item: &Item) -> Option<Key> {
        Some(Key {
            pk: string_attr(item, attr::PK)?.to_owned(),
            sk: string_attr(item, attr::SK)?.to_owned(),
        })
    }
}

/// A string attribute of an item.
pub fn string_attr<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value),
        _ => None,
    }
}

/// A number attribute of an item, as an integer (all our numbers are integers).
pub fn number_attr(item: &Item, name: &str) -> Option<i128> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().ok(),
        _ => None,
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
    /// The item exists and a string attribute has this value (e.g. `status = pending`).
    StringEquals { name: &'static str, value: String },
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
    pub fn holds(&self, current: Option<&Item>) -> bool {
        match (self, current) {
            (Condition::Always, _) => true,
            (Condition::Absent | Condition::AbsentOrExpired { .. }, None) => true,
            (Condition::Absent, Some(_)) => false,
            (Condition::AbsentOrExpired { now_epoch_s }, Some(item)) => {
                number_attr(item, attr::EXPIRES_AT)
                    .is_some_and(|expires_at| expires_at < i128::from(*now_epoch_s))
            }
            (Condition::Exists, current) => current.is_some(),
            (Condition::VersionIs(version), Some(item)) => {
                number_attr(item, attr::VERSION) == Some(i128::from(*version))
            }
            (Condition::StringEquals { name, value }, Some(item)) => {
                string_attr(item, name) == Some(value.as_str())
            }
            (Condition::VersionIs(_) | Condition::StringEquals { .. }, None) => false,
        }
    }
}

/// One item write inside a commit.
#[derive(Clone, PartialEq, Debug)]
pub enum Write {
    /// Replaces the whole item (it must hold `pk` and `sk`).
    Put { item: Item, condition: Condition },
    /// Deletes the item.
    Delete { key: Key, condition: Condition },
    /// Adds `by` to a number attribute, creating the item or attribute at 0 first (DynamoDB
    /// `ADD`). Commutative, so concurrent increments never conflict on a version.
    Increment {
        key: Key,
        attribute: &'static str,
        by: u64,
    },
}

impl Write {
    pub fn key(&self) -> Option<Key> {
        match self {
            Write::Put { item, .. } => Key::of(item),
            Write::Delete { key, .. } | Write::Increment { key, .. } => Some(key.clone()),
        }
    }
}

/// Writes applied all or nothing. One write is sent as a single conditional write (half the
/// write units of a transaction); several as one `TransactWriteItems`.
#[derive(Clone, PartialEq, Debug, Default)]
pub struct Transaction {
    pub writes: Vec<Write>,
    /// DynamoDB's `ClientRequestToken` (≤ 36 chars): the same token and content within 10
    /// minutes apply once, which makes the SDK's own retries of a lost response safe.
    pub client_token: Option<String>,
}

/// DynamoDB's limit on items in one `TransactWriteItems`.
pub const MAX_TRANSACTION_WRITES: usize = 100;

impl Transaction {
    pub fn new(client_token: Option<String>) -> Self {
        Transaction {
            writes: Vec::new(),
            client_token,
        }
    }

    pub fn push(&mut self, write: Write) -> usize {
        self.writes.push(write);
        self.writes.len() - 1
    }

    /// Checks what DynamoDB would refuse outright: no writes, too many, one item twice, an
    /// item without its key.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.writes.is_empty() || self.writes.len() > MAX_TRANSACTION_WRITES {
            return Err(StoreError::Fatal(format!(
                "a transaction holds 1 to {MAX_TRANSACTION_WRITES} writes, not {}",
                self.writes.len()
            )));
        }
        let mut keys = std::collections::HashSet::new();
        for write in &self.writes {
            let key = write
                .key()
                .ok_or_else(|| StoreError::Fatal("an item without pk/sk".into()))?;
            if !keys.insert(key.clone()) {
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
    fn get(&self, key: &Key) -> impl Future<Output = Result<Option<Item>, StoreError>> + Send;

    /// Reads items of one partition in sort-key order (reversed if `descending`).
    fn query(&self, query: &Query) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send;

    /// Applies all writes or none.
    fn commit(
        &self,
        transaction: &Transaction,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every item in the table (audits and tests only: a full scan).
    fn scan_all(&self) -> impl Future<Output = Result<Vec<Item>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        Item::from(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect::<HashMap<_, _>>(),
        )
    }

    #[test]
    fn an_expired_record_counts_as_absent() {
        let record = item(&[("expires_at", AttributeValue::N("100".into()))]);
        let at = |now_epoch_s| Condition::AbsentOrExpired { now_epoch_s };
        assert!(at(101).holds(Some(&record)));
        assert!(!at(100).holds(Some(&record)));
        assert!(at(0).holds(None));
        assert!(!Condition::Absent.holds(Some(&record)));
    }

    #[test]
    fn a_version_condition_needs_the_item_at_that_version() {
        let wallet = item(&[("version", AttributeValue::N("7".into()))]);
        assert!(Condition::VersionIs(7).holds(Some(&wallet)));
        assert!(!Condition::VersionIs(6).holds(Some(&wallet)));
        assert!(!Condition::VersionIs(7).holds(None));
        assert_eq!(Condition::version(0), Condition::Absent);
    }

    #[test]
    fn a_transaction_may_not_write_one_item_twice() {
        let key = Key::new("USER#a", "WALLET");
        let mut tx = Transaction::new(None);
        tx.push(Write::Delete {
            key: key.clone(),
            condition: Condition::Always,
        });
        assert!(tx.validate().is_ok());
        tx.push(Write::Increment {
            key,
            attribute: "n",
            by: 1,
        });
        assert!(matches!(tx.validate(), Err(StoreError::Fatal(_))));
        assert!(Transaction::new(None).validate().is_err());
    }
}
