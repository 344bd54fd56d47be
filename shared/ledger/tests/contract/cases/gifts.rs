//! Gifts: FIFO debit, diamonds, limits and every rejection.

use coins_ledger::store::Store;
use coins_ledger::{LedgerError, TxnKind};
use jiff::SignedDuration;

use crate::harness::{World, at, fresh_key, tokyo, user};

pub async fn a_gift_debits_the_sender_and_credits_the_creators_diamonds<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 700, now).await;

    let receipt = world.gift(&fan, &star, 150, now).await.unwrap();
    assert_eq!(receipt.coins_spent, 150);
    assert_eq!(receipt.balance, 550);
    assert_eq!(receipt.diamonds, 150);
    assert!(receipt.gift_txn_id.as_str().starts_with("gft_"));
    assert_eq!(world.diamonds(&star, now).await, 150);
    let history = world.ledger.transactions(&fan, 10, None).await.unwrap();
    assert_eq!(history.items[0].kind, TxnKind::Gift);
    assert_eq!(history.items[0].coins, -150);
    assert_eq!(history.items[0].reference, receipt.gift_txn_id.to_string());
    world.assert_conserved().await;
}

pub async fn gifts_spend_non_refundable_coins_then_the_oldest_lot_first<S: Store>(store: S) {
    let world = World::new(store);
    let day1 = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", day1).await;
    // 100 coins become non-refundable after their window closes.
    let old = world.buy(&fan, 100, day1).await;
    let closed_at = at("2026-03-16T00:00:00Z");
    world.ledger.close_lot(&fan, &old, closed_at).await.unwrap();
    let older = world.buy(&fan, 200, closed_at).await;
    let newer = world
        .buy(&fan, 300, closed_at + SignedDuration::from_mins(1))
        .await;

    world
        .gift(&fan, &star, 150, closed_at + SignedDuration::from_mins(2))
        .await
        .unwrap();
    let wallet = world
        .ledger
        .wallet(&fan, &tokyo(), closed_at)
        .await
        .unwrap();
    let remaining: Vec<_> = wallet
        .lots
        .iter()
        .map(|lot| (lot.purchase_id.clone(), lot.remaining, lot.refundable))
        .collect();
    // 100 from the non-refundable balance, 50 from the older lot; the newer is untouched.
    assert_eq!(
        remaining,
        vec![(older.clone(), 150, false), (newer.clone(), 300, true)]
    );

    // Spending past the older lot deletes it and starts on the newer.
    world
        .gift(&fan, &star, 200, closed_at + SignedDuration::from_mins(3))
        .await
        .unwrap();
    let wallet = world
        .ledger
        .wallet(&fan, &tokyo(), closed_at)
        .await
        .unwrap();
    assert_eq!(wallet.lots.len(), 1);
    assert_eq!(
        (wallet.lots[0].purchase_id.clone(), wallet.lots[0].remaining),
        (newer, 250)
    );
    assert_eq!(wallet.balance, 250);
    world.assert_conserved().await;
}

pub async fn a_gift_above_the_balance_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    assert_eq!(
        world.gift(&fan, &star, 101, now).await,
        Err(LedgerError::InsufficientCoins {
            balance: 100,
            requested: 101
        })
    );
    assert_eq!(
        world.gift(&user("pauper"), &star, 1, now).await,
        Err(LedgerError::InsufficientCoins {
            balance: 0,
            requested: 1
        })
    );
    assert_eq!(world.balance(&fan, now).await, 100);
    world.assert_conserved().await;
}

pub async fn a_gift_to_oneself_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let star = world.creator("star", now).await;
    world.buy(&star, 100, now).await;
    assert_eq!(
        world.gift(&star, &star, 10, now).await,
        Err(LedgerError::SelfGift)
    );
}

pub async fn a_gift_to_someone_not_enrolled_is_rejected<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    world.buy(&fan, 100, now).await;
    assert_eq!(
        world.gift(&fan, &user("not-a-creator"), 10, now).await,
        Err(LedgerError::RecipientNotCreator)
    );
    assert_eq!(world.balance(&fan, now).await, 100);
}

pub async fn the_daily_limit_stops_gifts_until_the_next_local_day<S: Store>(store: S) {
    let world = World::new(store);
    // 20:00 in Tokyo on 1 March.
    let evening = at("2026-03-01T11:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", evening).await;
    world.buy(&fan, 1000, evening).await;
    world
        .ledger
        .set_daily_limit(&fan, &tokyo(), Some(100), evening)
        .await
        .unwrap();

    world.gift(&fan, &star, 80, evening).await.unwrap();
    let refused = world.gift(&fan, &star, 30, evening).await;
    assert!(
        matches!(refused, Err(LedgerError::SpendingLimitReached(ref r))
            if r.limit_coins == 100 && r.spent_today_coins == 80 && r.requested_coins == 30),
        "{refused:?}"
    );
    // 00:30 on 2 March in Tokyo (still 1 March in UTC): a new local day.
    let after_midnight = at("2026-03-01T15:30:00Z");
    world.gift(&fan, &star, 100, after_midnight).await.unwrap();
    let wallet = world
        .ledger
        .wallet(&fan, &tokyo(), after_midnight)
        .await
        .unwrap();
    let limit = wallet.daily_limit.unwrap();
    assert_eq!((limit.coins, limit.spent_today), (100, 100));
    world.assert_conserved().await;
}

pub async fn a_raised_limit_applies_only_after_24_hours<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 1000, now).await;
    world
        .ledger
        .set_daily_limit(&fan, &tokyo(), Some(50), now)
        .await
        .unwrap();
    let limit = world
        .ledger
        .set_daily_limit(&fan, &tokyo(), Some(500), now)
        .await
        .unwrap();
    assert_eq!(limit.in_force(now), Some(50));
    assert_eq!(
        limit.pending.map(|p| p.effective_at),
        Some(now + SignedDuration::from_hours(24))
    );
    assert!(matches!(
        world.gift(&fan, &star, 60, now).await,
        Err(LedgerError::SpendingLimitReached(_))
    ));
    let next_day = now + SignedDuration::from_hours(24);
    world.gift(&fan, &star, 400, next_day).await.unwrap();
}

pub async fn the_same_gift_key_returns_the_first_gift_and_debits_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let key = fresh_key();
    let request = world.gift_request(&fan, &star, 30);
    let first = world.ledger.send_gift(&request, now, &key).await.unwrap();
    let again = world.ledger.send_gift(&request, now, &key).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(world.balance(&fan, now).await, 70);
    let other = world.gift_request(&fan, &star, 31);
    assert_eq!(
        world.ledger.send_gift(&other, now, &key).await,
        Err(LedgerError::IdempotencyKeyReused)
    );
    world.assert_conserved().await;
}

pub async fn enrolling_twice_reports_already_enrolled<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let star = user("star");
    assert_eq!(
        world.ledger.enroll_creator(&star, now).await,
        Ok(coins_ledger::Enrollment::Created)
    );
    assert_eq!(
        world.ledger.enroll_creator(&star, now).await,
        Ok(coins_ledger::Enrollment::AlreadyEnrolled)
    );
    assert_eq!(world.diamonds(&star, now).await, 0);
    assert_eq!(
        world.ledger.earnings(&user("nobody"), now).await,
        Err(LedgerError::NotFound)
    );
}
