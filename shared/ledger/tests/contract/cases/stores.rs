//! App-store purchases: credited once per store transaction, refused to another account,
//! refunded only by their store, and reversed by share when a store refunds part of an order; a
//! store's refund before the credit refuses it, the latest word of the store deciding (#18).

use coins_ids::{PaymentIntentId, ReversalRef};
use coins_ledger::store::Store;
use coins_ledger::{
    LedgerError, RefundBy, ReversalEvent, ReversalOutcome, Share, StorePurchase, StoreWord,
    StoreWordOutcome,
};
use coins_rules::{Channel, PriceBook, QuoteItem};

use crate::harness::{World, at, event_id, tokyo, user};

fn store_purchase(buyer: &coins_ids::UserId, transaction: &str, units: u32) -> StorePurchase {
    let one = PriceBook::embedded()
        .quote(
            "JP".parse().unwrap(),
            Channel::Ios,
            QuoteItem::Package("coins_700".parse().unwrap()),
        )
        .unwrap();
    StorePurchase {
        user_id: buyer.clone(),
        zone: tokyo(),
        priced: one.times(units).unwrap(),
        transaction: PaymentIntentId::new(transaction).unwrap(),
        consumption_consent: false,
    }
}

/// The store's word on `transaction`, signed at `stated_at`.
fn word(transaction: &str, revoked: bool, stated_at: &str) -> StoreWord {
    StoreWord {
        transaction: PaymentIntentId::new(transaction).unwrap(),
        event_id: event_id(),
        kind: if revoked { "REFUND" } else { "REFUND_REVERSED" }.into(),
        revoked,
        stated_at: at(stated_at),
    }
}

pub async fn a_store_refund_before_the_credit_refuses_it_until_the_store_reverses_it<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let transaction = "appstore-2000000900000001";
    let purchase = store_purchase(&fan, transaction, 1);
    let refund = word(transaction, true, "2026-03-01T02:00:00Z");
    assert_eq!(
        world.ledger.record_store_word(&refund, now).await,
        Ok(StoreWordOutcome::Recorded { revoked: true })
    );
    assert_eq!(
        world.ledger.record_store_word(&refund, now).await,
        Ok(StoreWordOutcome::Replayed)
    );
    assert_eq!(
        world
            .ledger
            .credit_store_purchase(&purchase, now, None)
            .await,
        Err(LedgerError::PurchaseRevoked)
    );
    // A reversal signed before the refund, delivered late, changes nothing.
    let stale = word(transaction, false, "2026-03-01T01:00:00Z");
    assert_eq!(
        world.ledger.record_store_word(&stale, now).await,
        Ok(StoreWordOutcome::Stale)
    );
    assert_eq!(
        world
            .ledger
            .credit_store_purchase(&purchase, now, None)
            .await,
        Err(LedgerError::PurchaseRevoked)
    );
    assert_eq!(
        world
            .ledger
            .wallet(&fan, &tokyo(), now)
            .await
            .unwrap()
            .balance,
        0
    );
    // The store reversed its refund: it has the money, so the redemption is credited.
    let reversed = word(transaction, false, "2026-03-01T02:30:00Z");
    assert_eq!(
        world.ledger.record_store_word(&reversed, now).await,
        Ok(StoreWordOutcome::Recorded { revoked: false })
    );
    let credit = world
        .ledger
        .credit_store_purchase(&purchase, now, None)
        .await
        .unwrap();
    assert_eq!((credit.newly_credited, credit.total_coins), (true, 700));
    // The row the credit wrote: one write unit (two in its transaction), as MODEL.md says.
    let row = world
        .ledger
        .store_transaction(&PaymentIntentId::new(transaction).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.purchase_id.as_ref(), Some(&credit.purchase_id));
    let size = coins_ledger::capacity::record_size_bytes(&row.into()).unwrap();
    println!("store transaction row: {size} B");
    assert!(size < 1024, "{size} B");
    // Credited, a later word is the purchase's to apply.
    assert_eq!(
        world
            .ledger
            .record_store_word(&word(transaction, true, "2026-03-01T02:45:00Z"), now)
            .await,
        Ok(StoreWordOutcome::Credited(credit.purchase_id.clone()))
    );
    world.assert_conserved().await;
}

pub async fn a_store_refund_racing_its_credit_either_refuses_it_or_finds_it_credited<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let mut races = tokio::task::JoinSet::new();
    for n in 0..8 {
        let transaction = format!("play-GPA.race-{n}");
        let (ledger, purchase) = (world.ledger.clone(), store_purchase(&fan, &transaction, 1));
        let refund = word(&transaction, true, "2026-03-01T02:00:00Z");
        races.spawn(async move {
            let (credited, recorded) = tokio::join!(
                ledger.credit_store_purchase(&purchase, now, None),
                ledger.record_store_word(&refund, now)
            );
            (credited, recorded.unwrap())
        });
    }
    let mut coins = 0;
    while let Some(race) = races.join_next().await {
        match race.unwrap() {
            (Ok(credit), StoreWordOutcome::Credited(id)) if id == credit.purchase_id => {
                coins += credit.total_coins;
            }
            (Err(LedgerError::PurchaseRevoked), StoreWordOutcome::Recorded { revoked: true }) => {}
            other => panic!("a refund and a credit crossed: {other:?}"),
        }
    }
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!(wallet.balance, coins);
    world.assert_conserved().await;
}

pub async fn a_store_transaction_is_credited_once_and_to_one_account<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (fan, thief) = (user("fan"), user("thief"));
    let purchase = store_purchase(&fan, "appstore-2000000812345678", 1);
    let first = world
        .ledger
        .credit_store_purchase(&purchase, now, None)
        .await
        .unwrap();
    assert!(first.newly_credited);
    assert_eq!(first.total_coins, 700);
    let again = world
        .ledger
        .credit_store_purchase(&purchase, now, None)
        .await
        .unwrap();
    assert_eq!(
        (again.purchase_id.clone(), again.newly_credited),
        (first.purchase_id.clone(), false)
    );
    let stolen = StorePurchase {
        user_id: thief.clone(),
        ..purchase.clone()
    };
    assert_eq!(
        world.ledger.credit_store_purchase(&stolen, now, None).await,
        Err(LedgerError::AlreadyCredited)
    );
    // Credited as a refundable lot, but the store refunds it, not us.
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.lots.len()), (700, 1));
    assert_eq!(
        world
            .ledger
            .refund_purchase(&RefundBy::Owner(fan.clone()), &first.purchase_id, now, None)
            .await
            .map(|_| ()),
        Err(LedgerError::RefundViaStore)
    );
    assert_eq!(
        world
            .ledger
            .wallet(&thief, &tokyo(), now)
            .await
            .unwrap()
            .balance,
        0
    );
    world.assert_conserved().await;
}

pub async fn concurrent_credits_of_one_store_transaction_credit_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = store_purchase(&fan, "play-GPA.3301-2211-0099-12345", 1);
    let mut credits = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let (ledger, purchase) = (world.ledger.clone(), purchase.clone());
        credits.spawn(async move {
            ledger
                .credit_store_purchase(&purchase, now, None)
                .await
                .unwrap()
        });
    }
    let mut newly = 0;
    while let Some(credit) = credits.join_next().await {
        newly += usize::from(credit.unwrap().newly_credited);
    }
    assert_eq!(newly, 1);
    assert_eq!(
        world
            .ledger
            .wallet(&fan, &tokyo(), now)
            .await
            .unwrap()
            .balance,
        700
    );
    world.assert_conserved().await;
}

pub async fn a_partial_store_refund_takes_back_its_share_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    let credit = world
        .ledger
        .credit_store_purchase(&store_purchase(&fan, "play-GPA.1-2-3", 3), now, None)
        .await
        .unwrap();
    assert_eq!(credit.total_coins, 2100);
    world.gift(&fan, &star, 2000, now).await.unwrap();
    let voided = |refunded: u32| ReversalEvent {
        event_id: event_id(),
        kind: "voidedPurchaseNotification".into(),
        purchase_id: credit.purchase_id.clone(),
        by: ReversalRef::new("play-GPA.1-2-3").unwrap(),
        share: Some(Share { refunded, of: 3 }),
    };
    // One of three units refunded: a third of the coins, 100 from the balance, 600 owed.
    assert_eq!(
        world.ledger.reverse_purchase(&voided(1), now).await,
        Ok(ReversalOutcome::Reversed {
            coins: 700,
            debt: 600
        })
    );
    // The same share again changes nothing; two of three takes back one more third.
    assert_eq!(
        world.ledger.reverse_purchase(&voided(1), now).await,
        Ok(ReversalOutcome::Ignored)
    );
    assert_eq!(
        world.ledger.reverse_purchase(&voided(2), now).await,
        Ok(ReversalOutcome::Reversed {
            coins: 700,
            debt: 700
        })
    );
    let wallet = world.ledger.wallet(&fan, &tokyo(), now).await.unwrap();
    assert_eq!((wallet.balance, wallet.debt), (0, 1300));
    // The creator keeps what the gifts earned.
    assert_eq!(world.diamonds(&star, now).await, 2000);
    world.assert_conserved().await;
}

/// The event a credited transaction's `word` applies to its purchase.
fn applied(word: &StoreWord, purchase: &coins_ids::PurchaseId) -> ReversalEvent {
    ReversalEvent {
        event_id: word.event_id.clone(),
        kind: word.kind.clone(),
        purchase_id: purchase.clone(),
        by: ReversalRef::new(word.transaction.as_str()).unwrap(),
        share: None,
    }
}

pub async fn after_the_credit_the_stores_latest_word_wins_whatever_order_they_arrive_in<
    S: Store,
>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let transaction = "appstore-2000000900000009";
    let credit = world
        .ledger
        .credit_store_purchase(&store_purchase(&fan, transaction, 1), now, None)
        .await
        .unwrap();
    let (refund, reversal, refund_again) = (
        word(transaction, true, "2026-03-02T01:00:00Z"),
        word(transaction, false, "2026-03-02T09:00:00Z"),
        word(transaction, true, "2026-03-02T17:00:00Z"),
    );
    let apply = |word: &StoreWord| {
        let (event, word) = (applied(word, &credit.purchase_id), word.clone());
        let ledger = &world.ledger;
        async move {
            ledger
                .apply_store_word(&word.transaction, &event, word.revoked, now)
                .await
        }
    };
    // Both kept before either is applied (two notifications at once): the older one's
    // application finds a later word kept and changes nothing.
    for word in [&refund, &reversal] {
        let kept = world.ledger.record_store_word(word, now).await.unwrap();
        assert_eq!(kept, StoreWordOutcome::Credited(credit.purchase_id.clone()));
    }
    assert_eq!(apply(&reversal).await, Ok(ReversalOutcome::Ignored));
    assert_eq!(apply(&refund).await, Ok(ReversalOutcome::Ignored));
    assert_eq!(world.balance(&fan, now).await, 700);
    // The latest refund arrives, then the older reversal: the refund stands.
    world
        .ledger
        .record_store_word(&refund_again, now)
        .await
        .unwrap();
    assert!(matches!(
        apply(&refund_again).await,
        Ok(ReversalOutcome::Reversed { .. })
    ));
    // The older reversal delivered again (its application changed nothing, so it was not
    // recorded), or a reversal signed between them: stale.
    assert_eq!(
        world.ledger.record_store_word(&reversal, now).await,
        Ok(StoreWordOutcome::Stale)
    );
    let late_reversal = word(transaction, false, "2026-03-02T12:00:00Z");
    assert_eq!(
        world.ledger.record_store_word(&late_reversal, now).await,
        Ok(StoreWordOutcome::Stale)
    );
    assert_eq!(world.balance(&fan, now).await, 0);
    world.assert_conserved().await;
}
