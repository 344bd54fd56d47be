//! Refunds and every way one is refused.

use coins_ledger::store::Store;
use coins_ledger::table::{RefundReason, RefundStatus, keys};
use coins_ledger::{LedgerError, PurchaseStatus, RefundBy, TxnKind};
use coins_rules::refund::AdminOverride;
use jiff::SignedDuration;

use crate::harness::{World, at, fresh_key, payment_of, user, yen};

/// Support's refund, by the admin `support-1`.
fn admin(reason: AdminOverride) -> RefundBy {
    RefundBy::Admin {
        admin: user("support-1"),
        reason,
    }
}

pub async fn a_refund_inside_the_window_reverses_the_coins_and_queues_the_money<S: Store>(
    store: S,
) {
    let world = World::new(store.clone());
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let later = at("2026-03-15T14:59:59Z");

    let receipt = world
        .ledger
        .refund_purchase(&RefundBy::Owner(fan.clone()), &purchase, later, None)
        .await
        .unwrap();
    assert_eq!(receipt.status, PurchaseStatus::Refunded);
    assert_eq!(receipt.coins_reversed, 700);
    assert_eq!(receipt.amount, yen(700));
    assert_eq!(world.balance(&fan, later).await, 0);

    let key = keys::refund(Some(&purchase), &payment_of(&purchase), &receipt.refund_id);
    let instruction = world.ledger.refund_instruction(&key).await.unwrap();
    assert_eq!(
        (
            instruction.amount_minor,
            instruction.reason,
            instruction.status
        ),
        (
            yen(700).minor_units().unwrap(),
            RefundReason::Customer,
            RefundStatus::Pending
        )
    );
    assert_eq!(instruction.requested_by, None);
    let history = world.ledger.transactions(&fan, 1, None).await.unwrap();
    assert_eq!(
        (history.items[0].kind, history.items[0].coins),
        (TxnKind::Refund, -700)
    );
    world.assert_conserved().await;
}

pub async fn a_refund_after_the_window_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    // The start of 16 March in Tokyo: the window has just closed (closure has not run yet).
    let closed = at("2026-03-15T15:00:00Z");
    assert_eq!(
        world
            .ledger
            .refund_purchase(&RefundBy::Owner(fan.clone()), &purchase, closed, None)
            .await,
        Err(LedgerError::RefundWindowClosed {
            refundable_until: closed
        })
    );
    assert_eq!(world.balance(&fan, closed).await, 700);
}

pub async fn a_second_refund_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let by = RefundBy::Owner(fan.clone());
    world
        .ledger
        .refund_purchase(&by, &purchase, now, None)
        .await
        .unwrap();
    assert_eq!(
        world
            .ledger
            .refund_purchase(&by, &purchase, now, None)
            .await,
        Err(LedgerError::AlreadyRefunded)
    );
    world.assert_conserved().await;
}

pub async fn a_refund_after_spending_any_of_the_coins_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let partly = world.buy(&fan, 100, now).await;
    world.gift(&fan, &star, 1, now).await.unwrap();
    let by = RefundBy::Owner(fan.clone());
    assert_eq!(
        world.ledger.refund_purchase(&by, &partly, now, None).await,
        Err(LedgerError::CoinsAlreadySpent)
    );
    // Spent to zero (the lot is gone), even an admin cannot refund it.
    world.gift(&fan, &star, 99, now).await.unwrap();
    assert_eq!(
        world
            .ledger
            .refund_purchase(&admin(AdminOverride::Legal), &partly, now, None)
            .await,
        Err(LedgerError::CoinsAlreadySpent)
    );
    world.assert_conserved().await;
}

pub async fn another_users_purchase_is_not_found<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.buy(&user("owner"), 700, now).await;
    assert_eq!(
        world
            .ledger
            .refund_purchase(&RefundBy::Owner(user("thief")), &purchase, now, None)
            .await,
        Err(LedgerError::NotFound)
    );
    assert_eq!(
        world
            .ledger
            .refund_purchase(
                &RefundBy::Owner(user("owner")),
                &coins_ids::PurchaseId::generate(),
                now,
                None
            )
            .await,
        Err(LedgerError::NotFound)
    );
}

pub async fn an_unpaid_purchase_cannot_be_refunded<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    assert_eq!(
        world
            .ledger
            .refund_purchase(&RefundBy::Owner(fan), &purchase, now, None)
            .await,
        Err(LedgerError::PurchaseNotCredited)
    );
}

pub async fn an_admin_refunds_any_users_purchase_outside_the_window<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let late = at("2026-04-01T00:00:00Z");
    let receipt = world
        .ledger
        .refund_purchase(&admin(AdminOverride::Defective), &purchase, late, None)
        .await
        .unwrap();
    assert_eq!(receipt.coins_reversed, 700);
    assert_eq!(world.balance(&fan, late).await, 0);
    world.assert_conserved().await;
}

pub async fn an_admin_refunds_a_lot_that_closed_untouched<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let late = at("2026-04-01T00:00:00Z");
    world.ledger.close_lot(&fan, &purchase, late).await.unwrap();
    assert_eq!(
        world
            .ledger
            .refund_purchase(&RefundBy::Owner(fan.clone()), &purchase, late, None)
            .await,
        Err(LedgerError::RefundWindowClosed {
            refundable_until: at("2026-03-15T15:00:00Z")
        })
    );
    world
        .ledger
        .refund_purchase(&admin(AdminOverride::Legal), &purchase, late, None)
        .await
        .unwrap();
    assert_eq!(world.balance(&fan, late).await, 0);
    world.assert_conserved().await;
}

pub async fn an_admin_cannot_refund_a_closed_lot_whose_coins_were_spent_since<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 700, now).await;
    let late = at("2026-04-01T00:00:00Z");
    world.ledger.close_lot(&fan, &purchase, late).await.unwrap();
    world
        .gift(&fan, &star, 1, late + SignedDuration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        world
            .ledger
            .refund_purchase(&admin(AdminOverride::Legal), &purchase, late, None)
            .await,
        Err(LedgerError::CoinsAlreadySpent)
    );
    world.assert_conserved().await;
}

pub async fn an_admin_refund_records_the_admin<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let receipt = world
        .ledger
        .refund_purchase(&admin(AdminOverride::Defective), &purchase, now, None)
        .await
        .unwrap();
    let key = keys::refund(Some(&purchase), &payment_of(&purchase), &receipt.refund_id);
    let instruction = world.ledger.refund_instruction(&key).await.unwrap();
    assert_eq!(instruction.requested_by, Some(user("support-1")));
    assert_eq!(instruction.reason, RefundReason::Defective);
}

pub async fn a_refund_with_an_idempotency_key_happens_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let by = RefundBy::Owner(fan.clone());
    let key = fresh_key();
    let first = world
        .ledger
        .refund_purchase(&by, &purchase, now, Some(&key))
        .await
        .unwrap();
    let again = world
        .ledger
        .refund_purchase(&by, &purchase, now, Some(&key))
        .await
        .unwrap();
    assert_eq!(again, first);
    let other = world.buy(&fan, 700, now).await;
    assert_eq!(
        world
            .ledger
            .refund_purchase(&by, &other, now, Some(&key))
            .await,
        Err(LedgerError::IdempotencyKeyReused)
    );
    world.assert_conserved().await;
}
