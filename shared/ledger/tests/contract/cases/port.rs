//! The storage port itself: both adapters must agree on conditions, atomicity, increments,
//! ordering and the index.

use coins_ids::{IdempotencyKey, PurchaseId, TxnId, UserId};
use coins_ledger::Quote;
use coins_ledger::domain::{Lot, Wallet};
use coins_ledger::store::{
    Condition, Index, Key, Query, SortKey, Store, StoreError, Transaction, Write,
};
use coins_ledger::table::{
    HistoryRecord, IdempotencyRecord, PurchaseRecord, PurchaseStatus, Record, TxnKind, keys,
    lot_index_shard,
};
use jiff::Timestamp;

use crate::harness::{priced, tokyo};

fn t0() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

/// A wallet of `owner` at `version`.
fn wallet(owner: &str, version: u64) -> Record {
    let mut wallet = Wallet::empty(&user(owner), &tokyo(), t0());
    wallet.version = version;
    Record::Wallet(wallet)
}

/// A history entry of `owner` at position `seq`: the row with the fewest rules.
fn entry(owner: &str, seq: u64) -> Record {
    let mut wallet = Wallet::empty(&user(owner), &tokyo(), t0());
    wallet.version = seq;
    Record::History(HistoryRecord::of(
        &wallet,
        TxnId::generate(),
        TxnKind::Purchase,
        1,
        "ref",
    ))
}

fn idempotency(key: &str, expires_at: i64) -> Record {
    Record::Idempotency(IdempotencyRecord {
        user_id: user("u"),
        key: IdempotencyKey::new(key).unwrap(),
        request_hash: "h".into(),
        response: "{}".into(),
        created_at: t0(),
        expires_at,
    })
}

fn purchase(purchase: &PurchaseId, status: PurchaseStatus) -> Record {
    let quote = Quote::new(priced(700), &user("u"), t0());
    let mut record = PurchaseRecord::pending(purchase.clone(), &quote, &tokyo(), t0());
    record.status = status;
    Record::Purchase(record)
}

fn put(record: Record, condition: Condition) -> Transaction {
    Transaction {
        writes: vec![Write::Put { record, condition }],
    }
}

pub async fn a_conditional_put_fails_once_the_item_exists<S: Store>(store: S) {
    let first = put(entry("p1", 1), Condition::Absent);
    store.commit(first.clone()).await.expect("first put");
    assert_eq!(
        store.commit(first).await,
        Err(StoreError::ConditionFailed { writes: vec![0] })
    );
}

pub async fn a_transaction_with_one_failing_condition_writes_nothing<S: Store>(store: S) {
    store
        .commit(put(wallet("p1", 3), Condition::Absent))
        .await
        .unwrap();
    let transaction = Transaction::of([
        Write::put(entry("p1", 4), Condition::Absent),
        Write::put(wallet("p1", 4), Condition::VersionIs(2)),
        Write::put(entry("p1", 5), Condition::Absent),
    ]);
    assert_eq!(
        store.commit(transaction).await,
        Err(StoreError::ConditionFailed { writes: vec![1] })
    );
    assert!(store.get(&entry("p1", 4).key()).await.unwrap().is_none());
    assert!(store.get(&entry("p1", 5).key()).await.unwrap().is_none());
    let a = store
        .get(&keys::wallet(&user("p1")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.version(), Some(3));
}

pub async fn an_expired_record_may_be_replaced_but_a_live_one_not<S: Store>(store: S) {
    store
        .commit(put(idempotency("i1", 100), Condition::Absent))
        .await
        .unwrap();
    let replace = |now_epoch_s| {
        put(
            idempotency("i1", 500),
            Condition::AbsentOrExpired { now_epoch_s },
        )
    };
    assert!(matches!(
        store.commit(replace(100)).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    store
        .commit(replace(101))
        .await
        .expect("expired record replaced");
}

pub async fn version_conditions_guard_purchase_changes<S: Store>(store: S) {
    let (first, second) = (PurchaseId::generate(), PurchaseId::generate());
    store
        .commit(put(
            purchase(&first, PurchaseStatus::Pending),
            Condition::Absent,
        ))
        .await
        .unwrap();
    // Read at version 1; whoever writes first wins, the other finds the version moved.
    let credit = || {
        let Record::Purchase(pending) = purchase(&first, PurchaseStatus::Pending) else {
            unreachable!()
        };
        put(
            pending
                .changed(|p| p.status = PurchaseStatus::Credited)
                .into(),
            Condition::VersionIs(1),
        )
    };
    store.commit(credit()).await.expect("pending to credited");
    assert!(matches!(
        store.commit(credit()).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    let on_missing = put(
        purchase(&second, PurchaseStatus::Credited),
        Condition::VersionIs(1),
    );
    assert!(matches!(
        store.commit(on_missing).await,
        Err(StoreError::ConditionFailed { .. })
    ));
}

pub async fn queries_order_limit_and_resume<S: Store>(store: S) {
    for seq in 1..=5 {
        store
            .commit(put(entry("u1", seq), Condition::Absent))
            .await
            .unwrap();
    }
    store
        .commit(put(wallet("u1", 5), Condition::Absent))
        .await
        .unwrap();
    store
        .commit(put(entry("u2", 1), Condition::Absent))
        .await
        .unwrap();
    let txn = |seq| keys::txn(&user("u1"), seq);
    let sks =
        |records: Vec<Record>| -> Vec<String> { records.iter().map(|r| r.key().sk).collect() };
    let partition = keys::user_pk(&user("u1"));
    let newest_two = Query {
        descending: true,
        limit: Some(2),
        ..Query::table(&*partition, SortKey::BeginsWith(keys::TXN_SK_PREFIX.into()))
    };
    assert_eq!(
        sks(store.query(&newest_two).await.unwrap()),
        [txn(5).sk, txn(4).sk]
    );
    let next = Query {
        start_after: Some(txn(4)),
        ..newest_two.clone()
    };
    assert_eq!(
        sks(store.query(&next).await.unwrap()),
        [txn(3).sk, txn(2).sk]
    );
    let all = Query::table(&*partition, SortKey::All);
    assert_eq!(store.query(&all).await.unwrap().len(), 6);
    let before = Query::table(&*partition, SortKey::Before(txn(3).sk));
    assert_eq!(
        sks(store.query(&before).await.unwrap()),
        [txn(1).sk, txn(2).sk]
    );
    let keys: Vec<Key> = store.query_keys(&before).await.unwrap();
    assert_eq!(keys, [txn(1), txn(2)]);
}

pub async fn the_index_finds_items_by_deadline<S: Store>(store: S) {
    // Purchases whose lots land in index partition 0.
    let in_partition_zero = || loop {
        let purchase = PurchaseId::generate();
        if lot_index_shard(&purchase) == 0 {
            return purchase;
        }
    };
    let lot = |owner: &str, deadline_s: i64| {
        let deadline = Timestamp::from_second(deadline_s).unwrap();
        Record::Lot(Lot::new(
            &user(owner),
            &in_partition_zero(),
            10,
            t0(),
            deadline,
        ))
    };
    for (owner, deadline_s) in [("a", 100), ("b", 300), ("c", 200)] {
        store
            .commit(put(lot(owner, deadline_s), Condition::Absent))
            .await
            .unwrap();
    }
    let due = Query {
        index: Index::OpenLotsByDeadline,
        partition: keys::lot_index_pk(0),
        sort: SortKey::Before(keys::lot_index_due_bound(
            Timestamp::from_second(200).unwrap(),
        )),
        descending: false,
        limit: None,
        start_after: None,
    };
    let pks: Vec<String> = store
        .query_keys(&due)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.pk)
        .collect();
    assert_eq!(pks, [keys::user_pk(&user("a")), keys::user_pk(&user("c"))]);
    assert!(
        store.query(&due).await.is_err(),
        "the index projects keys only, so records cannot be read from it"
    );
}
