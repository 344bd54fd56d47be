//! The storage port itself: both adapters must agree on conditions, atomicity, increments,
//! ordering and the index.

use std::collections::HashMap;

use coins_ledger::store::{
    Condition, Index, Key, Query, SortKey, Store, StoreError, Transaction, Write, number_attr,
    string_attr,
};
use serde_dynamo::{AttributeValue, Item};

fn item(pk: &str, sk: &str, extra: &[(&str, AttributeValue)]) -> Item {
    let mut map = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk.into())),
        ("sk".to_owned(), AttributeValue::S(sk.into())),
    ]);
    for (name, value) in extra {
        map.insert((*name).to_owned(), value.clone());
    }
    Item::from(map)
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn put(item: Item, condition: Condition) -> Transaction {
    Transaction {
        writes: vec![Write::Put { item, condition }],
        client_token: None,
    }
}

pub async fn a_conditional_put_fails_once_the_item_exists<S: Store>(store: S) {
    let first = put(item("P#1", "S", &[]), Condition::Absent);
    store.commit(&first).await.expect("first put");
    assert_eq!(
        store.commit(&first).await,
        Err(StoreError::ConditionFailed { writes: vec![0] })
    );
}

pub async fn a_transaction_with_one_failing_condition_writes_nothing<S: Store>(store: S) {
    store
        .commit(&put(
            item("P#1", "A", &[("version", n(3))]),
            Condition::Absent,
        ))
        .await
        .unwrap();
    let transaction = Transaction {
        writes: vec![
            Write::Put {
                item: item("P#1", "B", &[]),
                condition: Condition::Absent,
            },
            Write::Put {
                item: item("P#1", "A", &[("version", n(4))]),
                condition: Condition::VersionIs(2),
            },
            Write::Increment {
                key: Key::new("P#1", "C"),
                attribute: "count",
                by: 1,
            },
        ],
        client_token: Some("t-1".into()),
    };
    assert_eq!(
        store.commit(&transaction).await,
        Err(StoreError::ConditionFailed { writes: vec![1] })
    );
    assert!(store.get(&Key::new("P#1", "B")).await.unwrap().is_none());
    assert!(store.get(&Key::new("P#1", "C")).await.unwrap().is_none());
    let a = store.get(&Key::new("P#1", "A")).await.unwrap().unwrap();
    assert_eq!(number_attr(&a, "version"), Some(3));
}

pub async fn increments_create_and_add<S: Store>(store: S) {
    let key = Key::new("C#1", "D#001");
    for by in [5, 7] {
        let transaction = Transaction {
            writes: vec![Write::Increment {
                key: key.clone(),
                attribute: "diamonds",
                by,
            }],
            client_token: None,
        };
        store.commit(&transaction).await.unwrap();
    }
    let shard = store.get(&key).await.unwrap().unwrap();
    assert_eq!(number_attr(&shard, "diamonds"), Some(12));
}

pub async fn an_expired_record_may_be_replaced_but_a_live_one_not<S: Store>(store: S) {
    store
        .commit(&put(
            item("I#1", "I", &[("expires_at", n(100))]),
            Condition::Absent,
        ))
        .await
        .unwrap();
    let replace = |now_epoch_s| {
        put(
            item("I#1", "I", &[("expires_at", n(500))]),
            Condition::AbsentOrExpired { now_epoch_s },
        )
    };
    assert!(matches!(
        store.commit(&replace(100)).await,
        Err(StoreError::ConditionFailed { .. })
    ));
    store
        .commit(&replace(101))
        .await
        .expect("expired record replaced");
}

pub async fn string_conditions_guard_status_changes<S: Store>(store: S) {
    let pending = item(
        "PUR#1",
        "PUR",
        &[("status", AttributeValue::S("pending".into()))],
    );
    store
        .commit(&put(pending, Condition::Absent))
        .await
        .unwrap();
    let credit = |status: &str| {
        put(
            item(
                "PUR#1",
                "PUR",
                &[("status", AttributeValue::S("credited".into()))],
            ),
            Condition::StringEquals {
                name: "status",
                value: status.into(),
            },
        )
    };
    store
        .commit(&credit("pending"))
        .await
        .expect("pending to credited");
    assert!(matches!(
        store.commit(&credit("pending")).await,
        Err(StoreError::ConditionFailed { .. })
    ));
}

pub async fn queries_order_limit_and_resume<S: Store>(store: S) {
    for i in 1..=5 {
        store
            .commit(&put(
                item("U#1", &format!("TXN#{i:03}"), &[]),
                Condition::Absent,
            ))
            .await
            .unwrap();
    }
    store
        .commit(&put(item("U#1", "WALLET", &[]), Condition::Absent))
        .await
        .unwrap();
    store
        .commit(&put(item("U#2", "TXN#001", &[]), Condition::Absent))
        .await
        .unwrap();
    let sks = |items: Vec<Item>| -> Vec<String> {
        items
            .iter()
            .map(|i| string_attr(i, "sk").unwrap().to_owned())
            .collect()
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
}

pub async fn the_index_finds_items_by_deadline<S: Store>(store: S) {
    let lot = |pk: &str, deadline: &str| {
        item(
            pk,
            "LOT",
            &[
                ("gsi1pk", AttributeValue::S("LOTDUE#0".into())),
                ("gsi1sk", AttributeValue::S(deadline.into())),
            ],
        )
    };
    for (pk, deadline) in [
        ("U#a", "000000000100#a"),
        ("U#b", "000000000300#b"),
        ("U#c", "000000000200#c"),
    ] {
        store
            .commit(&put(lot(pk, deadline), Condition::Absent))
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
        .query(&due)
        .await
        .unwrap()
        .iter()
        .map(|i| string_attr(i, "pk").unwrap().to_owned())
        .collect();
    assert_eq!(pks, ["U#a", "U#c"]);
}
