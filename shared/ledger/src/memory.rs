//! The in-memory adapter: DynamoDB's semantics (conditions, all-or-nothing commits, `ADD`
//! increments, the open-lots index, TTL-as-condition) over a `BTreeMap` behind one mutex.
//!
//! It is the local server's default store and the fast half of the contract suite, so it is
//! complete rather than a mock. It keeps the records themselves (no attribute maps), so a
//! request costs what the ledger does, not conversions. Like DynamoDB with lagging TTL
//! deletion, it never deletes expired items by itself: the conditions treat them as gone.
//!
//! With [`MemoryStore::with_change_feed`] it also keeps the table's stream: every committed
//! write as an insert, modification or removal with its old and new row, in commit order, as
//! DynamoDB Streams (view `NEW_AND_OLD_IMAGES`) would deliver them. The local server feeds its
//! event-driven functions from it.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::store::{Index, Key, Query, SortKey, Store, StoreError, Transaction, Write};
use crate::table::Record;

type Table = BTreeMap<Key, Record>;

/// A table in memory. Clones share the same table (and change feed).
#[derive(Clone, Default, Debug)]
pub struct MemoryStore {
    table: Arc<Mutex<Table>>,
    changes: Option<Arc<Mutex<ChangeLog>>>,
}

/// What a committed write did to an item.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ChangeKind {
    Insert,
    Modify,
    Remove,
}

/// One entry of the change feed.
#[derive(Clone, PartialEq, Debug)]
pub struct Change {
    /// Increasing, from 1: the stream's sequence number.
    pub sequence: u64,
    pub kind: ChangeKind,
    pub key: Key,
    pub old: Option<Record>,
    pub new: Option<Record>,
}

#[derive(Debug, Default)]
struct ChangeLog {
    next: u64,
    /// Changes not yet acknowledged, oldest first.
    pending: std::collections::VecDeque<Change>,
}

impl MemoryStore {
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock cannot leave a half-applied commit (writes are applied
        // only after every condition passed, without panicking paths), so the data is usable.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A store that also records its changes for [`MemoryStore::changes_after`].
    pub fn with_change_feed() -> Self {
        MemoryStore {
            table: Arc::default(),
            changes: Some(Arc::default()),
        }
    }

    /// The changes after sequence number `after`, oldest first (none without a change feed).
    pub fn changes_after(&self, after: u64) -> Vec<Change> {
        let Some(log) = &self.changes else {
            return Vec::new();
        };
        let log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        log.pending
            .iter()
            .filter(|change| change.sequence > after)
            .cloned()
            .collect()
    }

    /// Forgets the changes up to `sequence`: every reader has them.
    pub fn acknowledge(&self, sequence: u64) {
        if let Some(log) = &self.changes {
            let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            while log.pending.front().is_some_and(|c| c.sequence <= sequence) {
                log.pending.pop_front();
            }
        }
    }

    /// How many items the table holds (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

/// The table keys a query can select, narrowed by its sort condition and resume point; `None`
/// when nothing can match (e.g. a resume point outside the selection).
fn table_range(query: &Query) -> Option<(Bound<Key>, Bound<Key>)> {
    let key = |sk: String| Key::new(query.partition.clone(), sk);
    // Every key of the partition sorts before ("<pk>\0", ""): the end when nothing narrower.
    let partition_end = Bound::Excluded(Key::new(format!("{}\0", query.partition), ""));
    let (mut lower, mut upper) = match &query.sort {
        SortKey::All => (Bound::Included(key(String::new())), partition_end),
        SortKey::BeginsWith(prefix) => (
            Bound::Included(key(prefix.clone())),
            prefix_end(prefix).map_or(partition_end, |end| Bound::Excluded(key(end))),
        ),
        SortKey::Before(bound) => (
            Bound::Included(key(String::new())),
            Bound::Excluded(key(bound.clone())),
        ),
    };
    if let Some(start) = &query.start_after {
        if query.descending {
            upper = Bound::Excluded(start.clone());
        } else {
            lower = Bound::Excluded(start.clone());
        }
    }
    let (Bound::Included(low) | Bound::Excluded(low)) = &lower else {
        unreachable!("the lower bound is always set")
    };
    let (Bound::Included(high) | Bound::Excluded(high)) = &upper else {
        unreachable!("the upper bound is always set")
    };
    // BTreeMap::range panics on an empty or inverted range.
    let non_empty = low < high
        || (low == high && matches!((&lower, &upper), (Bound::Included(_), Bound::Included(_))));
    non_empty.then_some((lower, upper))
}

/// The least string greater than every string starting with `prefix`, if there is one.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn sort_matches(sort: &SortKey, value: &str) -> bool {
    match sort {
        SortKey::All => true,
        SortKey::BeginsWith(prefix) => value.starts_with(prefix.as_str()),
        SortKey::Before(bound) => value < bound.as_str(),
    }
}

/// The records a query selects, in its order.
fn select<'t>(table: &'t Table, query: &Query) -> Result<Vec<&'t Record>, StoreError> {
    let limit = query.limit.map_or(usize::MAX, |limit| limit as usize);
    if query.index == Index::Table {
        // A key range, as DynamoDB reads it: the cost is the page, not the partition (a
        // wallet's partition holds its whole history).
        let Some(range) = table_range(query) else {
            return Ok(Vec::new());
        };
        let selected = |(key, _): &(&Key, &Record)| {
            key.pk == query.partition && sort_matches(&query.sort, &key.sk)
        };
        let rows = table.range(range);
        let page = if query.descending {
            rows.rev()
                .take_while(selected)
                .take(limit)
                .collect::<Vec<_>>()
        } else {
            rows.take_while(selected).take(limit).collect()
        };
        return Ok(page.into_iter().map(|(_, record)| record).collect());
    }
    if query.start_after.is_some() {
        return Err(StoreError::Fatal("start_after on the index".into()));
    }
    let mut selected: Vec<(String, &Key, &Record)> = table
        .iter()
        .filter_map(|(key, record)| {
            let index = record.index_key(query.index)?;
            (index.pk == query.partition && sort_matches(&query.sort, &index.sk))
                .then_some((index.sk, key, record))
        })
        .collect();
    selected.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    if query.descending {
        selected.reverse();
    }
    Ok(selected
        .into_iter()
        .take(limit)
        .map(|(_, _, record)| record)
        .collect())
}

impl Store for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        if query.index != Index::Table {
            return Err(StoreError::Fatal(
                "the open-lots index holds keys only".into(),
            ));
        }
        let table = self.lock();
        Ok(select(&table, query)?.into_iter().cloned().collect())
    }

    async fn query_keys(&self, query: &Query) -> Result<Vec<Key>, StoreError> {
        let table = self.lock();
        Ok(select(&table, query)?
            .into_iter()
            .map(Record::key)
            .collect())
    }

    async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        let keys = transaction.validated_keys()?;
        let mut table = self.lock();
        // Evaluate every condition against the state before any write, as DynamoDB does, and
        // report every failing one (DynamoDB's CancellationReasons list them all).
        let failed: Vec<usize> = transaction
            .writes
            .iter()
            .zip(&keys)
            .enumerate()
            .filter(|(_, (write, key))| !write.condition().holds(table.get(key)))
            .map(|(index, _)| index)
            .collect();
        if !failed.is_empty() {
            return Err(StoreError::ConditionFailed { writes: failed });
        }
        // Compute every new state first so a failing increment leaves nothing half-applied.
        let mut staged: Vec<(Key, Option<Record>)> = Vec::with_capacity(keys.len());
        for (write, key) in transaction.writes.into_iter().zip(keys) {
            let next = match write {
                Write::Put { record, .. } => Some(record),
                Write::Delete { .. } => None,
            };
            staged.push((key, next));
        }
        // The feed's lock is taken under the table's, so changes are logged in commit order.
        let mut log = self
            .changes
            .as_ref()
            .map(|log| log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for (key, next) in staged {
            let Some(log) = log.as_mut() else {
                match next {
                    Some(record) => table.insert(key, record),
                    None => table.remove(&key),
                };
                continue;
            };
            let old = match next.clone() {
                Some(record) => table.insert(key.clone(), record),
                None => table.remove(&key),
            };
            let kind = match (&old, &next) {
                // DynamoDB's stream has no record of deleting an absent item.
                (None, None) => continue,
                (None, Some(_)) => ChangeKind::Insert,
                (Some(_), Some(_)) => ChangeKind::Modify,
                (Some(_), None) => ChangeKind::Remove,
            };
            log.next += 1;
            let sequence = log.next;
            log.pending.push_back(Change {
                sequence,
                kind,
                key,
                old,
                new: next,
            });
        }
        Ok(())
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        Ok(self.lock().values().cloned().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(sort: SortKey, descending: bool, start_after: Option<Key>) -> Query {
        Query {
            descending,
            start_after,
            ..Query::table("USER#a", sort)
        }
    }

    #[test]
    fn a_query_reads_only_its_partition_and_prefix() {
        let q = query(SortKey::BeginsWith("TXN#".into()), false, None);
        let (lower, upper) = table_range(&q).unwrap();
        assert_eq!(lower, Bound::Included(Key::new("USER#a", "TXN#")));
        assert_eq!(upper, Bound::Excluded(Key::new("USER#a", "TXN$")));
        let all = table_range(&query(SortKey::All, true, None)).unwrap();
        assert_eq!(all.1, Bound::Excluded(Key::new("USER#a\0", "")));
    }

    #[test]
    fn a_resume_point_outside_the_selection_selects_nothing_instead_of_panicking() {
        let forged = Key::new("USER#a", "TXN#");
        let q = query(SortKey::Before("TXN#".into()), false, Some(forged.clone()));
        assert_eq!(table_range(&q), None);
        let q = query(SortKey::All, true, Some(Key::new("USER#a", "")));
        assert_eq!(table_range(&q), None);
    }
}
