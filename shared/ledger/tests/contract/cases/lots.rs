//! Refund-window closure: by marker event, by sweep, never early, idempotent.

use coins_ledger::store::{Key, Store};
use coins_ledger::table::{LotMarker, keys};
use coins_ledger::{CloseOutcome, TxnKind};
use jiff::SignedDuration;

use crate::harness::{World, at, tokyo, user};

pub async fn a_lot_is_never_closed_early_and_closes_exactly_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 700, now).await;
    world.gift(&fan, &star, 200, now).await.unwrap();
    let deadline = at("2026-03-15T15:00:00Z");

    assert_eq!(
        world
            .ledger
            .close_lot(&fan, &purchase, deadline - SignedDuration::from_secs(1))
            .await,
        Ok(CloseOutcome::NotDue {
            refundable_until: deadline
        })
    );
    assert_eq!(
        world.ledger.close_lot(&fan, &purchase, deadline).await,
        Ok(CloseOutcome::Closed {
            non_refundable_coins: 500
        })
    );
    assert_eq!(
        world.ledger.close_lot(&fan, &purchase, deadline).await,
        Ok(CloseOutcome::NothingOpen)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), deadline).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (500, 0));
    let newest = &world
        .ledger
        .transactions(&fan, 1, None)
        .await
        .unwrap()
        .items[0];
    assert_eq!(
        (newest.kind, newest.coins, newest.balance_after),
        (TxnKind::WindowClosed, 0, 500)
    );
    assert_eq!(newest.non_refundable_coins, Some(500));
    world.assert_conserved().await;
}

pub async fn the_marker_expires_at_the_deadline_and_names_its_lot<S: Store>(store: S) {
    let world = World::new(store.clone());
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let key = keys::marker(&fan, &purchase);
    let marker = store
        .get(&key)
        .await
        .unwrap()
        .expect("a marker per open lot");
    assert_eq!(
        marker.expires_at(),
        Some(at("2026-03-15T15:00:00Z").as_second())
    );
    // What the refund-expiry function does with the stream's REMOVE record.
    let parsed = LotMarker::from_keys(&key.pk, &key.sk).unwrap();
    assert_eq!(
        world
            .ledger
            .close_lot(
                &parsed.user_id,
                &parsed.purchase_id,
                at("2026-03-15T15:00:00Z")
            )
            .await,
        Ok(CloseOutcome::Closed {
            non_refundable_coins: 700
        })
    );
    assert!(LotMarker::from_keys(&Key::new("USER#fan", "WALLET").pk, "WALLET").is_err());
}

pub async fn the_sweep_closes_due_lots_of_every_user_and_leaves_the_rest<S: Store>(store: S) {
    let world = World::new(store);
    let day1 = at("2026-03-01T03:00:00Z");
    let day5 = at("2026-03-05T03:00:00Z");
    let mut due = Vec::new();
    for i in 0..12 {
        due.push(world.buy(&user(&format!("fan-{i}")), 10 + i, day1).await);
    }
    let young = user("young");
    world.buy(&young, 50, day5).await;

    let sweep_at = at("2026-03-16T00:00:00Z");
    let first = world.ledger.close_due_lots(sweep_at, 5).await.unwrap();
    assert_eq!(first.closed, 5);
    let rest = world.ledger.close_due_lots(sweep_at, 100).await.unwrap();
    assert_eq!((rest.closed, rest.failed), (7, 0));
    let again = world.ledger.close_due_lots(sweep_at, 100).await.unwrap();
    assert_eq!(again.closed, 0);
    let young_wallet = world
        .ledger
        .wallet(&young, &tokyo(), sweep_at)
        .await
        .unwrap();
    assert_eq!(young_wallet.lots.len(), 1);
    assert!(young_wallet.lots[0].refundable);
    world.assert_conserved().await;
}

pub async fn refundability_follows_the_rules_even_before_closure_runs<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    world.buy(&fan, 700, now).await;
    let wallet = world
        .ledger
        .wallet(&fan, &tokyo(), at("2026-03-15T15:00:00Z"))
        .await
        .unwrap();
    assert_eq!(wallet.lots.len(), 1, "closure has not run");
    assert!(!wallet.lots[0].refundable);
}
