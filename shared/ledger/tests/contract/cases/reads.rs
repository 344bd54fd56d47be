//! Reads: the wallet view and history pages.

use coins_ledger::store::Store;
use coins_ledger::{LedgerError, TxnKind};
use jiff::SignedDuration;

use crate::harness::{World, at, tokyo, user};

pub async fn history_pages_run_newest_first_with_a_cursor<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    for minutes in 1..=4 {
        world
            .gift(&fan, &star, 10, now + SignedDuration::from_mins(minutes))
            .await
            .unwrap();
    }
    // A gift's history entry is written when the stream counts it.
    world.count_gifts(now).await;
    let first = world.ledger.transactions(&fan, 2, None).await.unwrap();
    assert_eq!(
        first
            .items
            .iter()
            .map(|e| e.balance_after)
            .collect::<Vec<_>>(),
        [60, 70]
    );
    let second = world
        .ledger
        .transactions(&fan, 2, first.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(
        second
            .items
            .iter()
            .map(|e| e.balance_after)
            .collect::<Vec<_>>(),
        [80, 90]
    );
    let last = world
        .ledger
        .transactions(&fan, 2, second.next_cursor.as_deref())
        .await
        .unwrap();
    assert_eq!(last.items.len(), 1);
    assert_eq!(
        (last.items[0].kind, last.items[0].coins),
        (TxnKind::Purchase, 100)
    );
    assert_eq!(last.next_cursor, None);
    assert!(matches!(
        world
            .ledger
            .transactions(&fan, 2, Some("not-a-cursor"))
            .await,
        Err(LedgerError::InvalidRequest(_))
    ));
}

pub async fn a_new_user_has_an_empty_wallet<S: Store>(store: S) {
    let world = World::new(store);
    let wallet = world
        .ledger
        .wallet(&user("newcomer"), &tokyo(), at("2026-03-01T03:00:00Z"))
        .await
        .unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (0, 0));
    assert_eq!(wallet.daily_limit, None);
    let history = world
        .ledger
        .transactions(&user("newcomer"), 10, None)
        .await
        .unwrap();
    assert!(history.items.is_empty());
}
