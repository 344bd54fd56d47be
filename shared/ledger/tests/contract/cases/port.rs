//! The storage port itself: both adapters must agree on conditions, atomicity, increments,
//! ordering and the index.

use coins_ledger::model::{
    DiamondsRecord, HistoryRecord, IdempotencyRecord, ItemType, LotRecord, PurchaseRecord,
    PurchaseStatus, Record, TxnKind, WalletRecord,
};
use coins_ledger::store::{
    Condition, Index, Key, Query, SortKey, Store, StoreError, Transaction, Write,
};
use coins_ledger::{PurchaseId, QuoteId, UserId};
use coins_rules::money::Money;
use jiff::Timestamp;

fn t0() -> Timestamp {
    Timestamp::UNIX_EPOCH
}

/// A plain item at any key: a history entry, the record with the fewest rules.
fn entry(pk: &str, sk: &str) -> Record {
    Record::History(HistoryRecord {
        pk: pk.into(),
        sk: sk.into(),
        item_type: ItemType::History,
        id: format!("{pk}/{sk}"),
        kind: TxnKind::Purchase,
        coins: 1,
        balance_after: 1,
        at: t0(),
        reference: "ref".into(),
        non_refundable_coins: None,
        gift: None,
    })
}

fn wallet(pk: &str, version: u64) -> Record {
    let mut wallet = WalletRecord::empty(&UserId::new("u").unwrap(), t0());
    wallet.pk = pk.into();
    wallet.version = version;
    Record::Wallet(wallet)
}

fn idempotency(pk: &str, expires_at: i64) -> Record {
    Record::Idempotency(IdempotencyRecord {
        pk: pk.into(),
        sk: "IDEM".into(),
        item_type: ItemType::Idempotency,
        user_id: UserId::new("u").unwrap(),
        request_hash: "h".into(),
        response: "{}".into(),
        created_at: t0(),
        expires_at,
    })
}

fn purchase(pk: &str, status: PurchaseStatus) -> Record {
    Record::Purchase(PurchaseRecord {
        pk: pk.into(),
        sk: "PURCHASE".into(),
        item_type: ItemType::Purchase,
        purchase_id: PurchaseId::generate(),
        user_id: UserId::new("u").unwrap(),
        quote_id: QuoteId::generate(),
        zone: "Asia/Tokyo".into(),
        country: "JP".into(),
        channel: "web".into(),
        coins: 700,
        bonus_coins: 0,
        total_coins: 700,
        amount: Money::from_minor_units(1100, "JPY".parse().unwrap()),
        price_book_version: "test".into(),
        status,
        created_at: t0(),
        credited_at: None,
        refundable_until: None,
        lot_sk: None,
        closed_remaining: None,
        settled_by_event: None,
        rejection: None,
        refunded_at: None,
        refund_reason: None,
        refund_nonce: None,
    })
}

fn put(record: Record, condition: Condition) -> Transaction {
    Transaction {
        writes: vec![Write::Put { record, condition }],
    }
}

pub async fn a_conditional_put_fails_once_the_item_exists<S: Store>(store: S) {
    let first = put(entry("P#1", "S"), Condition::Absent);
    store.commit(first.clone()).await.expect("first put");
    assert_eq!(
        store.commit(first).await,
        Err(StoreError::ConditionFailed { writes: vec![0] })
    );
}

pub async fn a_transaction_with_one_failing_condition_writes_nothing<S: Store>(store: S) {
    store
        .commit(put(wallet("P#1", 3), Condition::Absent))
        .await
        .unwrap();
    let transaction = Transaction {
        writes: vec![
            Write::Put {
                record: entry("P#1", "B"),
                condition: Condition::Absent,
            },
            Write::Put {
                record: wallet("P#1", 4),
                condition: Condition::VersionIs(2),
            },
            Write::AddDiamonds {
                shard: Key::new("P#1", "C"),
                diamonds: 1,
            },
        ],
    };
    assert_eq!(
        store.commit(transaction).await,
        Err(StoreError::ConditionFailed { writes: vec![1] })
    );
    assert!(store.get(&Key::new("P#1", "B")).await.unwrap().is_none());
    assert!(store.get(&Key::new("P#1", "C")).await.unwrap().is_none());
    let a = store
        .get(&Key::new("P#1", "WALLET"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.version(), Some(3));
}

pub async fn diamonds_are_added_to_a_shard_created_at_zero<S: Store>(store: S) {
    let shard = Key::new("C#1", "D#001");
    for diamonds in [5, 7] {
        let transaction = Transaction {
            writes: vec![Write::AddDiamonds {
                shard: shard.clone(),
                diamonds,
            }],
        };
        store.commit(transaction).await.unwrap();
    }
    let stored = store.get(&shard).await.unwrap().unwrap();
    assert_eq!(
        DiamondsRecord::try_from(stored).unwrap().diamonds,
        12,
        "created at 0, then 5 and 7 added"
    );
}

pub async fn an_expired_record_may_be_replaced_but_a_live_one_not<S: Store>(store: S) {
    store
        .commit(put(idempotency("I#1", 100), Condition::Absent))
        .await
        .unwrap();
    let replace = |now_epoch_s| {
        put(
            idempotency("I#1", 500),
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

pub async fn status_conditions_guard_purchase_changes<S: Store>(store: S) {
    store
        .commit(put(
            purchase("PUR#1", PurchaseStatus::Pending),
            Condition::Absent,
        ))
        .await
        .unwrap();
    let credit = || {
        put(
            purchase("PUR#1", PurchaseStatus::Credited),
            Condition::PurchaseStatusIs(PurchaseStatus::Pending),
        )
    };
    store.commit(credit()).await.expect("pending to credited");
    assert!(matches!(
        store.commit(credit()).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    let on_missing = put(
        purchase("PUR#2", PurchaseStatus::Credited),
        Condition::PurchaseStatusIs(PurchaseStatus::Pending),
    );
    assert!(matches!(
        store.commit(on_missing).await,
        Err(StoreError::ConditionFailed { .. })
    ));
}

pub async fn queries_order_limit_and_resume<S: Store>(store: S) {
    for i in 1..=5 {
        store
            .commit(put(entry("U#1", &format!("TXN#{i:03}")), Condition::Absent))
            .await
            .unwrap();
    }
    store
        .commit(put(entry("U#1", "WALLET"), Condition::Absent))
        .await
        .unwrap();
    store
        .commit(put(entry("U#2", "TXN#001"), Condition::Absent))
        .await
        .unwrap();
    let sks = |records: Vec<Record>| -> Vec<String> {
        records.iter().map(|r| r.sk().to_owned()).collect()
    };
    let newest_two = Query {
        descending: true,
        limit: Some(2),
        ..Query::table("U#1", SortKey::BeginsWith("TXN#".into()))
    };
    assert_eq!(
        sks(store.query(&newest_two).await.unwrap()),
        ["TXN#005", "TXN#004"]
    );
    let next = Query {
        start_after: Some(Key::new("U#1", "TXN#004")),
        ..newest_two.clone()
    };
    assert_eq!(
        sks(store.query(&next).await.unwrap()),
        ["TXN#003", "TXN#002"]
    );
    let all = Query::table("U#1", SortKey::All);
    assert_eq!(store.query(&all).await.unwrap().len(), 6);
    let before = Query::table("U#1", SortKey::Before("TXN#003".into()));
    assert_eq!(
        sks(store.query(&before).await.unwrap()),
        ["TXN#001", "TXN#002"]
    );
    let keys: Vec<Key> = store.query_keys(&before).await.unwrap();
    assert_eq!(
        keys,
        [Key::new("U#1", "TXN#001"), Key::new("U#1", "TXN#002")]
    );
}

pub async fn the_index_finds_items_by_deadline<S: Store>(store: S) {
    let lot = |pk: &str, deadline: &str| {
        let user = UserId::new("u").unwrap();
        let mut lot = LotRecord::new(&user, &PurchaseId::generate(), 10, t0(), t0());
        lot.pk = pk.into();
        lot.gsi1pk = "LOTDUE#0".into();
        lot.gsi1sk = deadline.into();
        Record::Lot(lot)
    };
    for (pk, deadline) in [
        ("U#a", "000000000100#a"),
        ("U#b", "000000000300#b"),
        ("U#c", "000000000200#c"),
    ] {
        store
            .commit(put(lot(pk, deadline), Condition::Absent))
            .await
            .unwrap();
    }
    let due = Query {
        index: Index::OpenLotsByDeadline,
        partition: "LOTDUE#0".into(),
        sort: SortKey::Before("000000000201".into()),
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
    assert_eq!(pks, ["U#a", "U#c"]);
    assert!(
        store.query(&due).await.is_err(),
        "the index projects keys only, so records cannot be read from it"
    );
}
