//! Races: double spends, duplicate webhooks, a refund against gifts, one key used at once.
//! Each ends with the conservation audit.

use coins_ledger::store::Store;
use coins_ledger::{LedgerError, PaymentOutcome, RefundBy};
use tokio::task::JoinSet;

use crate::harness::{World, at, fresh_key, tokyo, user};

pub async fn fifty_concurrent_gifts_succeed_exactly_as_far_as_the_balance_goes<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 600, now).await;
    world.buy(&fan, 400, now).await;

    // 50 × 30 = 1,500 coins asked of 1,000: exactly 33 are affordable.
    let mut gifts = JoinSet::new();
    for _ in 0..50 {
        let ledger = world.ledger.clone();
        let request = world.gift_request(&fan, &star, 30);
        gifts.spawn(async move { ledger.send_gift(&request, now, &fresh_key()).await });
    }
    let (mut sent, mut refused) = (0, 0);
    for result in gifts.join_all().await {
        match result {
            Ok(_) => sent += 1,
            Err(LedgerError::InsufficientCoins { .. }) => refused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((sent, refused), (33, 17));
    assert_eq!(world.balance(&fan, now).await, 10);
    assert_eq!(world.diamonds(&star, now).await, 990);
    world.assert_conserved().await;
}

pub async fn one_payment_event_delivered_twenty_times_at_once_credits_one_lot<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let event = world.paid(&purchase, 700);

    let mut deliveries = JoinSet::new();
    for _ in 0..20 {
        let ledger = world.ledger.clone();
        let event = event.clone();
        deliveries.spawn(async move { ledger.apply_payment(&event, now).await });
    }
    let outcomes = deliveries.join_all().await;
    let credited = outcomes
        .iter()
        .filter(|o| matches!(o, Ok(PaymentOutcome::Credited { .. })))
        .count();
    assert_eq!(credited, 1, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            Ok(PaymentOutcome::Credited { .. } | PaymentOutcome::Replayed)
        )),
        "{outcomes:?}"
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (700, 1));
    world.assert_conserved().await;
}

pub async fn a_refund_racing_gifts_from_the_same_lot_has_exactly_one_winning_side<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 100, now).await;

    let mut gifts = JoinSet::new();
    for _ in 0..5 {
        let ledger = world.ledger.clone();
        let request = world.gift_request(&fan, &star, 10);
        gifts.spawn(async move { ledger.send_gift(&request, now, &fresh_key()).await });
    }
    let refund = {
        let ledger = world.ledger.clone();
        let by = RefundBy::Owner(fan.clone());
        let purchase = purchase.clone();
        tokio::spawn(async move { ledger.refund_purchase(&by, &purchase, now, None).await })
    };
    let gift_results = gifts.join_all().await;
    let refund_result = refund.await.expect("refund task");
    let gifts_sent = gift_results.iter().filter(|r| r.is_ok()).count();

    match refund_result {
        Ok(receipt) => {
            assert_eq!(receipt.coins_reversed, 100);
            assert_eq!(gifts_sent, 0, "{gift_results:?}");
            assert!(
                gift_results
                    .iter()
                    .all(|r| matches!(r, Err(LedgerError::InsufficientCoins { .. })))
            );
        }
        Err(LedgerError::CoinsAlreadySpent) => assert!(gifts_sent >= 1),
        Err(other) => panic!("unexpected refund result {other:?}"),
    }
    let balance = world.balance(&fan, now).await;
    assert!(balance == 0 || balance == 100 - 10 * gifts_sent as u64);
    world.assert_conserved().await;
}

pub async fn one_idempotency_key_used_concurrently_has_one_effect<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let key = fresh_key();
    let request = world.gift_request(&fan, &star, 10);

    let mut sends = JoinSet::new();
    for _ in 0..10 {
        let ledger = world.ledger.clone();
        let (request, key) = (request.clone(), key.clone());
        sends.spawn(async move { ledger.send_gift(&request, now, &key).await });
    }
    let receipts: Vec<_> = sends
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every caller gets the one result"))
        .collect();
    assert!(receipts.iter().all(|r| *r == receipts[0]));
    assert_eq!(world.balance(&fan, now).await, 90);
    assert_eq!(world.diamonds(&star, now).await, 10);
    world.assert_conserved().await;
}

pub async fn one_purchase_key_used_concurrently_creates_one_purchase<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let quote = world.quote(&fan, 700, now).await;
    let key = fresh_key();
    let mut creates = JoinSet::new();
    for _ in 0..10 {
        let ledger = world.ledger.clone();
        let (fan, quote_id, key) = (fan.clone(), quote.quote_id.clone(), key.clone());
        creates.spawn(async move {
            ledger
                .create_purchase(&fan, &quote_id, &tokyo(), now, &key)
                .await
        });
    }
    let receipts: Vec<_> = creates
        .join_all()
        .await
        .into_iter()
        .map(|r| r.expect("every caller gets the one purchase"))
        .collect();
    assert!(
        receipts
            .iter()
            .all(|r| r.purchase_id == receipts[0].purchase_id)
    );
}
