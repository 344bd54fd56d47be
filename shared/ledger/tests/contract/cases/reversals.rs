//! Provider reversals: coins taken back into debt, gifting blocked, debt repaid by the next
//! purchase, an undo applied once, and the restriction after two reversals.

use coins_ids::ReversalRef;
use coins_ledger::store::Store;
use coins_ledger::table::Record;
use coins_ledger::{
    CloseOutcome, LedgerError, PaymentOutcome, RefundBy, ReversalEvent, ReversalOutcome, TxnKind,
};
use coins_rules::refund::AdminOverride;
use jiff::SignedDuration;

use crate::harness::{World, at, event_id, tokyo, user};

fn dispute(purchase: &coins_ids::PurchaseId, id: &str, kind: &str) -> ReversalEvent {
    ReversalEvent {
        event_id: event_id(),
        kind: kind.into(),
        purchase_id: purchase.clone(),
        by: ReversalRef::new(id).unwrap(),
        share: None,
    }
}

pub async fn a_reversal_after_gifting_leaves_debt_that_blocks_gifts_until_repaid<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 100, now).await;
    world.gift(&fan, &star, 70, now).await.unwrap();

    let event = dispute(&purchase, "dp_1", "charge.dispute.created");
    assert_eq!(
        world.ledger.reverse_purchase(&event, now).await,
        Ok(ReversalOutcome::Reversed {
            coins: 100,
            debt: 70
        })
    );
    assert_eq!(
        world.ledger.reverse_purchase(&event, now).await,
        Ok(ReversalOutcome::Replayed)
    );
    let again = dispute(&purchase, "dp_1", "charge.dispute.created");
    assert_eq!(
        world.ledger.reverse_purchase(&again, now).await,
        Ok(ReversalOutcome::Ignored),
        "the same dispute reverses once"
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (0, 70));
    assert!(matches!(
        world.gift(&fan, &star, 1, now).await,
        Err(LedgerError::CoinDebt { debt: 70 })
    ));
    // The creator keeps what they earned.
    assert_eq!(world.diamonds(&star, now).await, 70);
    world.assert_conserved().await;

    // The next purchase repays the debt first.
    let next = world.pending_purchase(&fan, 100, now).await;
    assert!(matches!(
        world
            .ledger
            .apply_payment(&world.paid(&next, 100), now)
            .await,
        Ok(PaymentOutcome::Credited { balance: 30, .. })
    ));
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (30, 0));
    assert!(
        !wallet.lots[0].refundable,
        "a purchase that repaid debt is not refundable"
    );
    world.gift(&fan, &star, 1, now).await.unwrap();
    world.assert_conserved().await;
}

pub async fn a_dispute_won_gives_the_coins_back_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 100, now).await;
    world.gift(&fan, &star, 70, now).await.unwrap();
    let opened = dispute(&purchase, "dp_1", "charge.dispute.created");
    world.ledger.reverse_purchase(&opened, now).await.unwrap();

    let won = dispute(&purchase, "dp_1", "charge.dispute.closed");
    assert_eq!(
        world.ledger.undo_reversal(&won, now).await,
        Ok(ReversalOutcome::Undone { coins: 100 })
    );
    let won_again = dispute(&purchase, "dp_1", "charge.dispute.closed");
    assert_eq!(
        world.ledger.undo_reversal(&won_again, now).await,
        Ok(ReversalOutcome::Ignored)
    );
    // A closure of a dispute that never reversed this purchase changes nothing.
    let other = dispute(&purchase, "dp_other", "charge.dispute.closed");
    assert_eq!(
        world.ledger.undo_reversal(&other, now).await,
        Ok(ReversalOutcome::Ignored)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!(
        (wallet.balance, wallet.debt),
        (30, 0),
        "debt repaid, 30 back"
    );
    let history = world.ledger.transactions(&fan, 2, None).await.unwrap();
    assert_eq!(
        [history.items[0].kind, history.items[1].kind],
        [TxnKind::ReversalUndone, TxnKind::Reversal]
    );
    world.assert_conserved().await;
}

/// Found by the fault simulator: a lot spent to its last coin stays open until its window
/// ends, and a reversal then left it open beside its reversed purchase, which the audit
/// reports and the lot's closure refused as corrupt, for good.
pub async fn a_reversal_of_a_lot_spent_to_its_last_coin_takes_the_lot_too<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let spent = world.buy(&fan, 100, now).await;
    let younger = world.buy(&fan, 50, now).await;
    world.gift(&fan, &star, 100, now).await.unwrap();

    let event = dispute(&spent, "dp_1", "charge.dispute.created");
    assert_eq!(
        world.ledger.reverse_purchase(&event, now).await,
        Ok(ReversalOutcome::Reversed {
            coins: 100,
            debt: 50
        })
    );
    let lots: Vec<_> = world
        .ledger
        .store()
        .scan_all()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|record| match record {
            Record::Lot(lot) => Some(lot.purchase_id),
            _ => None,
        })
        .collect();
    assert_eq!(
        lots,
        std::slice::from_ref(&younger),
        "the reversed purchase's lot is gone"
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (0, 50));
    world.assert_conserved().await;

    let window_over = now + SignedDuration::from_hours(16 * 24);
    assert_eq!(
        world.ledger.close_lot(&fan, &spent, window_over).await,
        Ok(CloseOutcome::NothingOpen)
    );
    assert!(matches!(
        world.ledger.close_lot(&fan, &younger, window_over).await,
        Ok(CloseOutcome::Closed {
            non_refundable_coins: 0
        })
    ));
    world.assert_conserved().await;
}

/// Stripe's events out of order: the dispute before the payment's own `succeeded`.
pub async fn a_dispute_before_the_payment_credits_nothing_until_it_is_won<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 100, now).await;
    let opened = dispute(&purchase, "dp_early", "charge.dispute.created");
    assert_eq!(
        world.ledger.reverse_purchase(&opened, now).await,
        Ok(ReversalOutcome::Reversed { coins: 0, debt: 0 })
    );
    // The payment's event, late: nothing is credited, and nothing is returned (the dispute
    // took that money already).
    assert_eq!(
        world
            .ledger
            .apply_payment(&world.paid(&purchase, 100), now)
            .await,
        Ok(PaymentOutcome::Replayed)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (0, 0));
    world.assert_conserved().await;

    let won = dispute(&purchase, "dp_early", "charge.dispute.closed");
    assert_eq!(
        world.ledger.undo_reversal(&won, now).await,
        Ok(ReversalOutcome::Undone { coins: 100 })
    );
    assert_eq!(
        world.ledger.undo_reversal(&won, now).await,
        Ok(ReversalOutcome::Replayed)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (100, 0));
    assert!(
        wallet.lots.is_empty(),
        "credited after a dispute: not refundable"
    );
    let history = world.ledger.transactions(&fan, 10, None).await.unwrap();
    let kinds: Vec<TxnKind> = history.items.iter().map(|entry| entry.kind).collect();
    assert_eq!(kinds, [TxnKind::Purchase, TxnKind::Reversal]);
    world.assert_conserved().await;
}

/// Found by the fault simulator: a purchase first credited by its dispute being won had no
/// refund window, and a refund request failed as a corrupt item (a 500) instead of being
/// refused like the refund of any other purchase whose coins a dispute took and gave back.
pub async fn a_purchase_credited_by_a_won_dispute_is_refused_a_refund<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.pending_purchase(&fan, 100, now).await;
    let opened = dispute(&purchase, "dp_early", "charge.dispute.created");
    world.ledger.reverse_purchase(&opened, now).await.unwrap();
    let won = dispute(&purchase, "dp_early", "charge.dispute.closed");
    world.ledger.undo_reversal(&won, now).await.unwrap();

    let soon = now + SignedDuration::from_hours(1);
    let by_owner = RefundBy::Owner(fan.clone());
    let by_admin = RefundBy::Admin {
        admin: user("support-1"),
        reason: AdminOverride::Defective,
    };
    for by in [by_owner, by_admin] {
        assert_eq!(
            world
                .ledger
                .refund_purchase(&by, &purchase, soon, None)
                .await,
            Err(LedgerError::CoinsAlreadySpent),
            "{by:?}"
        );
    }
    let view = world
        .ledger
        .purchase_view(Some(&fan), &purchase, soon)
        .await
        .unwrap();
    assert_eq!(
        view.refundable_until,
        Some(now),
        "its window went with the dispute"
    );
    assert_eq!(world.balance(&fan, soon).await, 100);
    world.assert_conserved().await;
}

pub async fn two_reversals_in_90_days_restrict_the_account_until_an_admin_lifts_it<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    for id in ["dp_1", "dp_2"] {
        let purchase = world.buy(&fan, 100, now).await;
        let event = dispute(&purchase, id, "charge.dispute.created");
        world.ledger.reverse_purchase(&event, now).await.unwrap();
    }
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert!(wallet.restricted);
    let quote = world.quote(&fan, 100, now).await;
    assert_eq!(
        world
            .ledger
            .create_purchase(
                &fan,
                &quote.quote_id,
                &tokyo(),
                now,
                &crate::harness::fresh_key()
            )
            .await,
        Err(LedgerError::AccountRestricted)
    );
    world
        .ledger
        .set_restriction(&fan, false, now)
        .await
        .unwrap();
    world.pending_purchase(&fan, 100, now).await;
    assert_eq!(
        world
            .ledger
            .set_restriction(&user("nobody"), false, now)
            .await,
        Err(LedgerError::NotFound)
    );
    world.assert_conserved().await;
}

pub async fn the_daily_limit_counts_in_the_zone_the_wallet_was_opened_in<S: Store>(store: S) {
    let world = World::new(store);
    // 12:00 UTC: 02:00 next day in Kiritimati (UTC+14), 00:00 same day at GMT+12 (UTC-12).
    let now = at("2026-03-01T12:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    world
        .ledger
        .set_daily_limit(&fan, &tokyo(), Some(10), now)
        .await
        .unwrap();
    let mut sent = 0;
    for zone in ["Pacific/Kiritimati", "Etc/GMT+12"].repeat(5) {
        let mut request = world.gift_request(&fan, &star, 5);
        request.sender_zone = coins_rules::Zone::get(zone).unwrap();
        if world
            .ledger
            .send_gift(&request, now, &crate::harness::fresh_key())
            .await
            .is_ok()
        {
            sent += 5;
        }
    }
    assert_eq!(
        sent, 10,
        "another zone in the token does not start a new day"
    );
    world.assert_conserved().await;
}

/// Radar's early fraud warning on unspent coins: the purchase is refunded (outside the window
/// too), an instruction enters the outbox, and the account stays open; a second warning about
/// it changes nothing.
pub async fn a_fraud_warning_refunds_a_purchase_whose_coins_are_unspent<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 100, now).await;
    let late = now + SignedDuration::from_hours(24 * 30);
    let warning = dispute(&purchase, "issfr_1", "radar.early_fraud_warning.created");
    assert_eq!(
        world.ledger.fraud_warning(&warning, late).await,
        Ok(ReversalOutcome::Refunded { coins: 100 })
    );
    let record = world.ledger.get_purchase(&purchase).await.unwrap();
    assert_eq!(record.status, coins_ledger::PurchaseStatus::Refunded);
    let again = dispute(&purchase, "issfr_1", "radar.early_fraud_warning.created");
    assert_eq!(
        world.ledger.fraud_warning(&again, late).await,
        Ok(ReversalOutcome::Ignored)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), late).await.unwrap();
    assert_eq!(
        (wallet.balance, wallet.debt, wallet.restricted),
        (0, 0, false)
    );
    world.assert_conserved().await;
}

/// The warning after some coins were gifted: the account is restricted and the purchase
/// reversed into debt, in one transaction; replayed, nothing more.
pub async fn a_fraud_warning_on_spent_coins_restricts_the_account_and_reverses<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let purchase = world.buy(&fan, 100, now).await;
    world.gift(&fan, &star, 30, now).await.unwrap();
    let warning = dispute(&purchase, "issfr_2", "radar.early_fraud_warning.created");
    assert_eq!(
        world.ledger.fraud_warning(&warning, now).await,
        Ok(ReversalOutcome::Reversed {
            coins: 100,
            debt: 30
        })
    );
    assert_eq!(
        world.ledger.fraud_warning(&warning, now).await,
        Ok(ReversalOutcome::Ignored)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!(
        (wallet.balance, wallet.debt, wallet.restricted),
        (0, 30, true)
    );
    world.assert_conserved().await;
}
