//! The in-memory adapter: DynamoDB's semantics (conditions, all-or-nothing commits, `ADD`
//! increments, the open-lots index, TTL-as-condition) over a `BTreeMap` behind one mutex.
//!
//! It is the local server's default store and the fast half of the contract suite, so it is
//! complete rather than a mock. Like DynamoDB with lagging TTL deletion, it never deletes
//! expired items by itself: the conditions treat them as gone.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_dynamo::{AttributeValue, Item};

use crate::model::attr;
use crate::store::{
    Condition, Index, Key, Query, SortKey, Store, StoreError, Transaction, Write, number_attr,
    string_attr,
};

type Table = BTreeMap<Key, Item>;

/// A table in memory. Clones share the same table.
#[derive(Clone, Default, Debug)]
pub struct MemoryStore {
    table: Arc<Mutex<Table>>,
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

    /// How many items the table holds (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

fn sort_matches(sort: &SortKey, value: &str) -> bool {
    match sort {
        SortKey::All => true,
        SortKey::BeginsWith(prefix) => value.starts_with(prefix.as_str()),
        SortKey::Before(bound) => value < bound.as_str(),
    }
}

fn increment(item: Option<&Item>, key: &Key, attribute: &str, by: u64) -> Result<Item, StoreError> {
    let mut next = item.cloned().unwrap_or_else(|| {
        let mut fresh = Item::default();
        fresh.insert(attr::PK.to_owned(), AttributeValue::S(key.pk.clone()));
        fresh.insert(attr::SK.to_owned(), AttributeValue::S(key.sk.clone()));
        fresh
    });
    let current = match next.get(attribute) {
        None => 0,
        Some(AttributeValue::N(_)) => number_attr(&next, attribute)
            .ok_or_else(|| StoreError::Fatal(format!("{attribute} is not an integer")))?,
        // DynamoDB refuses ADD on a non-number attribute.
        Some(_) => return Err(StoreError::Fatal(format!("ADD on non-number {attribute}"))),
    };
    let sum = current
        .checked_add(i128::from(by))
        .ok_or_else(|| StoreError::Fatal("ADD overflow".into()))?;
    next.insert(attribute.to_owned(), AttributeValue::N(sum.to_string()));
    Ok(next)
}

impl Store for MemoryStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn query(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        let table = self.lock();
        let mut selected: Vec<(String, Key, &Item)> = match query.index {
            Index::Table => table
                .range(Key::new(query.partition.clone(), "")..)
                .take_while(|(key, _)| key.pk == query.partition)
                .filter(|(key, _)| sort_matches(&query.sort, &key.sk))
                .map(|(key, item)| (key.sk.clone(), key.clone(), item))
                .collect(),
            Index::OpenLotsByDeadline => table
                .iter()
                .filter(|(_, item)| string_attr(item, attr::GSI1PK) == Some(&query.partition))
                .filter_map(|(key, item)| {
                    let index_sk = string_attr(item, attr::GSI1SK)?;
                    sort_matches(&query.sort, index_sk)
                        .then(|| (index_sk.to_owned(), key.clone(), item))
                })
                .collect(),
        };
        selected.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        if query.descending {
            selected.reverse();
        }
        if let Some(start) = &query.start_after {
            if query.index != Index::Table {
                return Err(StoreError::Fatal("start_after on the index".into()));
            }
            let position = selected.iter().position(|(_, key, _)| {
                if query.descending {
                    key.sk < start.sk
                } else {
                    key.sk > start.sk
                }
            });
            selected.drain(..position.unwrap_or(selected.len()));
        }
        let limit = query.limit.map_or(usize::MAX, |limit| limit as usize);
        Ok(selected
            .into_iter()
            .take(limit)
            .map(|(_, _, item)| item.clone())
            .collect())
    }

    async fn commit(&self, transaction: &Transaction) -> Result<(), StoreError> {
        transaction.validate()?;
        let mut table = self.lock();
        // Evaluate every condition against the state before any write, as DynamoDB does, and
        // report every failing one (DynamoDB's CancellationReasons list them all).
        let failed: Vec<usize> = transaction
            .writes
            .iter()
            .enumerate()
            .filter(|(_, write)| {
                let condition = match write {
                    Write::Put { condition, .. } | Write::Delete { condition, .. } => condition,
                    Write::Increment { .. } => &Condition::Always,
                };
                let key = write.key().expect("validated");
                !condition.holds(table.get(&key))
            })
            .map(|(index, _)| index)
            .collect();
        if !failed.is_empty() {
            return Err(StoreError::ConditionFailed { writes: failed });
        }
        // Compute every new state first so a failing increment leaves nothing half-applied.
        let mut staged: Vec<(Key, Option<Item>)> = Vec::with_capacity(transaction.writes.len());
        for write in &transaction.writes {
            let key = write.key().expect("validated");
            let next = match write {
                Write::Put { item, .. } => Some(item.clone()),
                Write::Delete { .. } => None,
                Write::Increment { attribute, by, .. } => {
                    Some(increment(table.get(&key), &key, attribute, *by)?)
                }
            };
            staged.push((key, next));
        }
        for (key, next) in staged {
            match next {
                Some(item) => table.insert(key, item),
                None => table.remove(&key),
            };
        }
        Ok(())
    }

    async fn scan_all(&self) -> Result<Vec<Item>, StoreError> {
        Ok(self.lock().values().cloned().collect())
    }
}
