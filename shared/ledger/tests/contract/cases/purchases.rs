//! Quotes, purchases and payment events.

use coins_ids::{PaymentIntentId, PurchaseId, QuoteId, RefundId};
use coins_ledger::store::Store;
use coins_ledger::table::keys;
use coins_ledger::{
    LedgerError, Payment, PaymentOutcome, PurchaseStatus, RefundReason, RefundStatus,
};
use coins_rules::money::Money;
use jiff::SignedDuration;

use crate::harness::{World, at, event_id, fresh_key, payment_of, succeeded, tokyo, user, yen};

pub async fn a_paid_purchase_is_credited_as_one_lot_refundable_until_local_day_d_plus_15<
    S: Store,
>(
    store: S,
) {
    let world = World::new(store);
    let fan = user("fan");
    // 12:00 on 1 March in Tokyo: refundable until the start of 16 March, Tokyo time.
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.buy(&fan, 700, now).await;

    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!(wallet.balance, 700);
    assert_eq!(wallet.lots.len(), 1);
    let lot = &wallet.lots[0];
    assert_eq!(lot.purchase_id, purchase);
    assert_eq!((lot.coins, lot.remaining), (700, 700));
    assert_eq!(lot.refundable_until, at("2026-03-15T15:00:00Z"));
    assert!(lot.refundable);
    assert_eq!(
        world.ledger.get_purchase(&purchase).await.unwrap().status,
        PurchaseStatus::Credited
    );
    world.assert_conserved().await;
}

pub async fn a_purchase_honours_the_quoted_price<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let quote = world.quote(&fan, 350, now).await;
    let receipt = world
        .ledger
        .create_purchase(
            &fan,
            &quote.quote_id,
            &tokyo(),
            now + SignedDuration::from_mins(14),
            &fresh_key(),
        )
        .await
        .unwrap();
    assert_eq!(receipt.status, PurchaseStatus::Pending);
    assert_eq!(receipt.total_coins, 350);
    assert_eq!(receipt.amount, yen(350));
    assert_eq!(receipt.amount.to_string(), "700");
}

pub async fn a_purchase_from_an_expired_quote_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let quote = world.quote(&fan, 350, now).await;
    let result = world
        .ledger
        .create_purchase(
            &fan,
            &quote.quote_id,
            &tokyo(),
            quote.expires_at,
            &fresh_key(),
        )
        .await;
    assert_eq!(
        result,
        Err(LedgerError::QuoteExpired {
            expired_at: quote.expires_at
        })
    );
}

pub async fn another_users_quote_or_an_unknown_one_is_not_found<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let quote = world.quote(&user("owner"), 350, now).await;
    let thief = user("thief");
    for quote_id in [quote.quote_id, QuoteId::generate()] {
        let result = world
            .ledger
            .create_purchase(&thief, &quote_id, &tokyo(), now, &fresh_key())
            .await;
        assert_eq!(result, Err(LedgerError::NotFound));
    }
}

pub async fn the_same_purchase_key_returns_the_first_purchase<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let quote = world.quote(&fan, 350, now).await;
    let key = fresh_key();
    let first = world
        .ledger
        .create_purchase(&fan, &quote.quote_id, &tokyo(), now, &key)
        .await
        .unwrap();
    let again = world
        .ledger
        .create_purchase(
            &fan,
            &quote.quote_id,
            &tokyo(),
            now + SignedDuration::from_mins(1),
            &key,
        )
        .await
        .unwrap();
    assert_eq!(again, first);
}

pub async fn a_key_reused_for_another_request_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let first = world.quote(&fan, 350, now).await;
    let second = world.quote(&fan, 700, now).await;
    let key = fresh_key();
    world
        .ledger
        .create_purchase(&fan, &first.quote_id, &tokyo(), now, &key)
        .await
        .unwrap();
    let reused = world
        .ledger
        .create_purchase(&fan, &second.quote_id, &tokyo(), now, &key)
        .await;
    assert_eq!(reused, Err(LedgerError::IdempotencyKeyReused));
}

pub async fn a_key_is_free_again_once_its_record_expired<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let first = world.quote(&fan, 350, now).await;
    let key = fresh_key();
    world
        .ledger
        .create_purchase(&fan, &first.quote_id, &tokyo(), now, &key)
        .await
        .unwrap();
    // 24 h later the record is expired though (like DynamoDB TTL) still stored.
    let later = now + SignedDuration::from_hours(24) + SignedDuration::from_secs(1);
    let second = world.quote(&fan, 700, later).await;
    let receipt = world
        .ledger
        .create_purchase(&fan, &second.quote_id, &tokyo(), later, &key)
        .await
        .expect("an expired key is free");
    assert_eq!(receipt.total_coins, 700);
}

pub async fn a_payment_from_another_country_is_returned_and_credits_nothing<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let event = succeeded(&purchase, &payment_of(&purchase), yen(700), "TR");
    let refund_id = RefundId::for_return(&payment_of(&purchase));
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Returned {
            refund_id: refund_id.clone(),
            reason: RefundReason::RegionMismatch
        })
    );
    let view = world
        .ledger
        .purchase_view(Some(&fan), &purchase, now)
        .await
        .unwrap();
    assert_eq!(view.status, "refunded");
    let refund = view
        .refund
        .expect("the purchase shows its money going back");
    assert_eq!(
        (refund.refund_id, refund.reason, refund.status),
        (
            refund_id,
            RefundReason::RegionMismatch,
            RefundStatus::Pending
        )
    );
    assert_eq!(world.balance(&fan, now).await, 0);
    // The same payment told again under another event id: nothing more.
    let again = succeeded(&purchase, &payment_of(&purchase), yen(700), "TR");
    assert_eq!(
        world.ledger.apply_payment(&again, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    world.assert_conserved().await;
}

pub async fn a_payment_of_another_amount_or_currency_is_returned<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let cases = [
        ("1399", "JPY", RefundReason::AmountMismatch),
        ("1400", "USD", RefundReason::CurrencyMismatch),
    ];
    for (amount, currency, reason) in cases {
        let purchase = world.pending_purchase(&fan, 700, now).await;
        let paid = Money::parse(amount, currency.parse().unwrap()).unwrap();
        let event = succeeded(&purchase, &payment_of(&purchase), paid, "JP");
        assert!(matches!(
            world.ledger.apply_payment(&event, now).await,
            Ok(PaymentOutcome::Returned { reason: got, .. }) if got == reason
        ));
        let instruction = world
            .ledger
            .refund_instruction(&keys::refund(
                Some(&purchase),
                &payment_of(&purchase),
                &RefundId::for_return(&payment_of(&purchase)),
            ))
            .await
            .unwrap();
        assert_eq!(
            (instruction.amount_minor, instruction.currency.as_str()),
            (paid.minor_units().unwrap(), currency),
            "the whole payment goes back, as paid"
        );
    }
    assert_eq!(world.balance(&fan, now).await, 0);
    world.assert_conserved().await;
}

/// A declined card does not end a purchase: Stripe lets the buyer retry the same
/// PaymentIntent, and its success inside the payment window credits the purchase (it used to be
/// returned as `purchase_failed`).
pub async fn a_declined_payment_retried_on_the_same_intent_is_credited<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let mut failed = world.paid(&purchase, 700);
    failed.payment = Payment::Failed;
    assert_eq!(
        world.ledger.apply_payment(&failed, now).await,
        Ok(PaymentOutcome::Failed)
    );
    assert_eq!(
        world.ledger.get_purchase(&purchase).await.unwrap().status,
        PurchaseStatus::Failed
    );
    let retried = now + SignedDuration::from_mins(5);
    assert!(matches!(
        world
            .ledger
            .apply_payment(&world.paid(&purchase, 700), retried)
            .await,
        Ok(PaymentOutcome::Credited { coins: 700, .. })
    ));
    assert_eq!(
        world.ledger.get_purchase(&purchase).await.unwrap().status,
        PurchaseStatus::Credited
    );
    assert_eq!(world.balance(&fan, retried).await, 700);
    world.assert_conserved().await;
}

/// A success after a decline, but past the payment window, is returned as `purchase_failed`.
pub async fn a_success_after_a_decline_and_the_window_is_returned<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let mut failed = world.paid(&purchase, 700);
    failed.payment = Payment::Failed;
    world.ledger.apply_payment(&failed, now).await.unwrap();
    let late = now + SignedDuration::from_hours(24);
    assert!(matches!(
        world
            .ledger
            .apply_payment(&world.paid(&purchase, 700), late)
            .await,
        Ok(PaymentOutcome::Returned {
            reason: RefundReason::PurchaseFailed,
            ..
        })
    ));
    assert_eq!(world.balance(&fan, late).await, 0);
    world.assert_conserved().await;
}

pub async fn a_payment_after_the_purchase_expired_is_returned<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let late = now + SignedDuration::from_hours(24);
    let view = world
        .ledger
        .purchase_view(Some(&fan), &purchase, late)
        .await
        .unwrap();
    assert_eq!(view.status, "expired");
    assert!(matches!(
        world
            .ledger
            .apply_payment(&world.paid(&purchase, 700), late)
            .await,
        Ok(PaymentOutcome::Returned {
            reason: RefundReason::PurchaseExpired,
            ..
        })
    ));
    assert_eq!(world.balance(&fan, late).await, 0);
    world.assert_conserved().await;
}

pub async fn a_redelivered_event_or_a_second_event_credits_nothing_more<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let event = world.paid(&purchase, 700);
    assert!(matches!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Credited {
            coins: 700,
            balance: 700,
            ..
        })
    ));
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    let other_event = world.paid(&purchase, 700);
    assert_eq!(
        world.ledger.apply_payment(&other_event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (700, 1));
    world.assert_conserved().await;
}

pub async fn a_second_payment_for_a_paid_purchase_is_returned_and_the_purchase_kept<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.buy(&fan, 700, now).await;
    let second = PaymentIntentId::new("pi_second_payment").unwrap();
    let event = succeeded(&purchase, &second, yen(700), "JP");
    assert!(matches!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Returned {
            reason: RefundReason::AlreadyPaid,
            ..
        })
    ));
    let view = world
        .ledger
        .purchase_view(Some(&fan), &purchase, now)
        .await
        .unwrap();
    assert_eq!(
        (view.status.as_str(), view.refund.is_none()),
        ("credited", true)
    );
    assert_eq!(view.returned_payments[0].payment_intent_id, second);
    // Told again: one return per payment.
    let again = succeeded(&purchase, &second, yen(700), "JP");
    assert_eq!(
        world.ledger.apply_payment(&again, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    assert_eq!(world.balance(&fan, now).await, 700);
    world.assert_conserved().await;
}

pub async fn a_payment_for_an_unknown_purchase_is_returned<S: Store>(store: S) {
    let world = World::new(store);
    let stranger = PaymentIntentId::new("pi_nobody_knows").unwrap();
    let mut event = succeeded(&PurchaseId::generate(), &stranger, yen(700), "JP");
    let now = at("2026-03-01T03:00:00Z");
    assert!(matches!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Returned {
            reason: RefundReason::UnknownPurchase,
            ..
        })
    ));
    let key = keys::refund(None, &stranger, &RefundId::for_return(&stranger));
    let instruction = world.ledger.refund_instruction(&key).await.unwrap();
    assert_eq!(
        (instruction.purchase_id, instruction.amount_minor),
        (None, 1400)
    );
    // Naming no purchase at all is the same.
    event.event_id = event_id();
    event.purchase_id = None;
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Replayed)
    );
    world.assert_conserved().await;
}

pub async fn a_purchase_is_paired_with_one_payment<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let quote = world.quote(&fan, 700, now).await;
    let purchase = world
        .ledger
        .create_purchase(&fan, &quote.quote_id, &tokyo(), now, &fresh_key())
        .await
        .unwrap()
        .purchase_id;
    let first = PaymentIntentId::new("pi_first").unwrap();
    let second = PaymentIntentId::new("pi_second").unwrap();
    assert_eq!(
        world.ledger.attach_payment(&purchase, &first).await,
        Ok(first.clone())
    );
    assert_eq!(
        world.ledger.attach_payment(&purchase, &second).await,
        Ok(first.clone()),
        "a concurrent request's payment loses to the one paired first"
    );
    // A dispute names only the payment: it finds the purchase.
    let view = world
        .ledger
        .purchase_view(None, &purchase, now)
        .await
        .unwrap();
    assert_eq!(view.payment_intent_id, Some(first));
}

pub async fn a_users_purchases_are_listed_newest_first_by_page<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let mut made = Vec::new();
    for minute in 0..5 {
        made.push(
            world
                .pending_purchase(&fan, 100, now + SignedDuration::from_mins(minute))
                .await,
        );
    }
    world.pending_purchase(&user("other"), 100, now).await;
    made.reverse();
    let first = world.ledger.purchases(&fan, 3, None, now).await.unwrap();
    let second = world
        .ledger
        .purchases(&fan, 3, first.next_cursor.as_deref(), now)
        .await
        .unwrap();
    let listed: Vec<PurchaseId> = first
        .items
        .iter()
        .chain(&second.items)
        .map(|view| view.purchase_id.clone())
        .collect();
    assert_eq!(listed, made);
    assert_eq!(second.next_cursor, None);
    assert!(
        world
            .ledger
            .purchases(&fan, 3, Some("zz"), now)
            .await
            .is_err()
    );
    // Another user's purchase is not found.
    assert_eq!(
        world
            .ledger
            .purchase_view(Some(&user("other")), &made[0], now)
            .await,
        Err(LedgerError::NotFound)
    );
}
