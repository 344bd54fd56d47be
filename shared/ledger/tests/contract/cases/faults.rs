//! Faults: lost responses, failures before applying, conflicts and throttling. Whatever the
//! store does, a retry with the same key has exactly one effect.

use coins_ledger::store::Store;
use coins_ledger::table::keys;
use coins_ledger::{LedgerConfig, LedgerError, PaymentOutcome, RefundBy, StoreError};

use crate::harness::{Fault, FaultyStore, World, at, fresh_key, test_config, tokyo, user};

fn world_with_faults<S: Store>(
    store: S,
    max_attempts: u32,
) -> (World<FaultyStore<S>>, FaultyStore<S>) {
    let faulty = FaultyStore::new(store);
    let config = LedgerConfig {
        max_attempts,
        ..test_config()
    };
    (World::with_config(faulty.clone(), config), faulty)
}

pub async fn a_gift_whose_response_was_lost_is_applied_once<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;

    faulty.plan(&[Fault::LoseResponse]);
    let receipt = world
        .gift(&fan, &star, 30, now)
        .await
        .expect("the retry finds the effect");
    assert_eq!(receipt.balance, 70);
    assert_eq!(world.balance(&fan, now).await, 70);
    assert_eq!(faulty.faults_left(), 0);
    world.assert_conserved().await;
}

pub async fn a_client_retry_after_a_lost_response_has_one_effect<S: Store>(store: S) {
    // One attempt only: the ledger cannot retry by itself, so the client sees the failure.
    let (world, faulty) = world_with_faults(store, 1);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let key = fresh_key();
    let request = world.gift_request(&fan, &star, 30);

    faulty.plan(&[Fault::LoseResponse]);
    let failed = world.ledger.send_gift(&request, now, &key).await;
    assert!(
        matches!(failed, Err(LedgerError::Store(StoreError::Ambiguous(_)))),
        "{failed:?}"
    );
    assert!(failed.unwrap_err().is_retryable());
    // The client retries with the same key: the first effect, not a second one.
    let receipt = world.ledger.send_gift(&request, now, &key).await.unwrap();
    assert_eq!(receipt.balance, 70);
    assert_eq!(world.balance(&fan, now).await, 70);
    world.assert_conserved().await;
}

pub async fn a_commit_failing_before_it_applied_is_retried_once<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    faulty.plan(&[Fault::FailBeforeApply]);
    world.gift(&fan, &star, 30, now).await.unwrap();
    assert_eq!(world.balance(&fan, now).await, 70);
    world.assert_conserved().await;
}

pub async fn conflicts_and_throttling_are_retried_with_backoff<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let before = faulty.commits();
    faulty.plan(&[
        Fault::TransactionConflict,
        Fault::Throttle,
        Fault::TransactionConflict,
    ]);
    world.gift(&fan, &star, 30, now).await.unwrap();
    assert_eq!(
        faulty.commits() - before,
        4,
        "three refusals, then the commit"
    );
    assert_eq!(world.balance(&fan, now).await, 70);
    world.assert_conserved().await;
}

pub async fn retries_are_bounded_and_leave_nothing_behind<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let before = faulty.commits();
    faulty.plan(&[Fault::TransactionConflict; 6]);
    let result = world.gift(&fan, &star, 30, now).await;
    assert!(
        matches!(result, Err(LedgerError::Store(StoreError::Transient(_)))),
        "{result:?}"
    );
    assert_eq!(faulty.commits() - before, 5);
    assert_eq!(world.balance(&fan, now).await, 100);
    world.assert_conserved().await;
}

pub async fn a_refund_whose_response_was_lost_still_reports_the_refund<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    faulty.plan(&[Fault::LoseResponse]);
    let receipt = world
        .ledger
        .refund_purchase(&RefundBy::Owner(fan.clone()), &purchase, now, None)
        .await
        .expect("its own refund, not already_refunded");
    assert_eq!(receipt.coins_reversed, 700);
    assert_eq!(world.balance(&fan, now).await, 0);
    world.assert_conserved().await;
}

pub async fn a_payment_whose_response_was_lost_credits_once<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let event = world.paid(&purchase, 700);
    faulty.plan(&[Fault::LoseResponse]);
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (700, 1));
    world.assert_conserved().await;
}

pub async fn a_delivery_that_read_before_its_twin_committed_reports_a_replay<S: Store>(store: S) {
    let (world, faulty) = world_with_faults(store, 5);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let event = world.paid(&purchase, 700);
    world.ledger.apply_payment(&event, now).await.unwrap();
    // This delivery saw no event record, then found the purchase settled by that same event.
    faulty.hide_once(keys::payment_event(&event.event_id));
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    assert_eq!(world.balance(&fan, now).await, 700);
}
