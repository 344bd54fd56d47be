//! Quotes, purchases and payment events.

use coins_ids::QuoteId;
use coins_ledger::store::Store;
use coins_ledger::{LedgerError, Payment, PaymentOutcome, PaymentRejection, PurchaseStatus};
use coins_rules::money::Money;
use jiff::SignedDuration;

use crate::harness::{World, at, fresh_key, tokyo, user, yen};

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

pub async fn a_payment_from_another_country_is_a_region_mismatch_and_credits_nothing<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let mut event = world.paid(&purchase, 700);
    event.payment = Payment::Succeeded {
        paid: yen(700),
        country: "TR".parse().unwrap(),
    };
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Rejected {
            reason: PaymentRejection::RegionMismatch
        })
    );
    let stored = world.ledger.get_purchase(&purchase).await.unwrap();
    assert_eq!(stored.status, PurchaseStatus::Rejected);
    assert_eq!(stored.rejection, Some(PaymentRejection::RegionMismatch));
    assert_eq!(world.balance(&fan, now).await, 0);
    // A later, matching event cannot revive a rejected purchase.
    assert_eq!(
        world
            .ledger
            .apply_payment(&world.paid(&purchase, 700), now)
            .await,
        Ok(PaymentOutcome::AlreadySettled {
            status: PurchaseStatus::Rejected
        })
    );
    world.assert_conserved().await;
}

pub async fn a_payment_of_another_amount_or_currency_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let cases = [
        ("1399", "JPY", PaymentRejection::AmountMismatch),
        ("1400", "USD", PaymentRejection::CurrencyMismatch),
    ];
    for (amount, currency, reason) in cases {
        let purchase = world.pending_purchase(&fan, 700, now).await;
        let mut event = world.paid(&purchase, 700);
        event.payment = Payment::Succeeded {
            paid: Money::parse(amount, currency.parse().unwrap()).unwrap(),
            country: "JP".parse().unwrap(),
        };
        assert_eq!(
            world.ledger.apply_payment(&event, now).await,
            Ok(PaymentOutcome::Rejected { reason })
        );
    }
    assert_eq!(world.balance(&fan, now).await, 0);
    world.assert_conserved().await;
}

pub async fn a_failed_payment_credits_nothing<S: Store>(store: S) {
    let world = World::new(store);
    let fan = user("fan");
    let now = at("2026-03-01T03:00:00Z");
    let purchase = world.pending_purchase(&fan, 700, now).await;
    let mut event = world.paid(&purchase, 700);
    event.payment = Payment::Failed;
    assert_eq!(
        world.ledger.apply_payment(&event, now).await,
        Ok(PaymentOutcome::Failed)
    );
    assert_eq!(
        world.ledger.get_purchase(&purchase).await.unwrap().status,
        PurchaseStatus::Failed
    );
    assert_eq!(world.balance(&fan, now).await, 0);
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
        Ok(PaymentOutcome::AlreadySettled {
            status: PurchaseStatus::Credited
        })
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (700, 1));
    world.assert_conserved().await;
}

pub async fn a_payment_for_an_unknown_purchase_is_not_found<S: Store>(store: S) {
    let world = World::new(store);
    let event = world.paid(&coins_ids::PurchaseId::generate(), 700);
    assert_eq!(
        world
            .ledger
            .apply_payment(&event, at("2026-03-01T03:00:00Z"))
            .await,
        Err(LedgerError::NotFound)
    );
}
