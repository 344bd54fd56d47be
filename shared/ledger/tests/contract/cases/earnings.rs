//! The creator's side: gifts counted from the stream exactly once (redelivered, reordered,
//! regrouped, stopped midway, concurrent), many senders into one creator without a conflict,
//! gifts received, and payouts that never overdraw and return failed diamonds once.

use std::collections::HashSet;

use coins_ids::{ConnectedAccountId, UserId};
use coins_ledger::store::Store;
use coins_ledger::table::PayoutStatus;
use coins_ledger::table::{EarningsRecord, GiftRecord, keys};
use coins_ledger::{CONFIRM_GRACE, LedgerError, PayoutClaim, Transferred};
use jiff::{SignedDuration, Timestamp};
use tokio::task::JoinSet;

use crate::harness::{Fault, FaultyStore, World, at, fresh_key, user};

pub async fn a_gift_writes_only_the_senders_side_and_the_stream_credits_the_creator_once<
    S: Store,
>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 1000, now).await;
    let mut total = 0;
    for coins in 1..=20 {
        world.gift(&fan, &star, coins, now).await.unwrap();
        total += coins;
    }
    // Before the stream: the sender paid, the creator has nothing yet, the audit balances.
    assert_eq!(world.balance(&fan, now).await, 1000 - total);
    let earnings = world.ledger.earnings(&star, now).await.unwrap();
    assert_eq!(earnings.diamonds_earned, 0);
    assert_eq!(world.assert_conserved().await.gifts_pending, 20);
    // The stream counts them once, however often it delivers them.
    let counted = world.count_gifts(now).await;
    assert_eq!((counted.gifts, counted.pages), (20, 1));
    let again = world.count_gifts(now).await;
    assert_eq!((again.gifts, again.already), (0, 20));
    let earnings = world.ledger.earnings(&star, now).await.unwrap();
    assert_eq!(earnings.diamonds_earned, total);
    assert_eq!((earnings.pending, earnings.available), (total, 0), "held");
    let history = world.ledger.transactions(&fan, 100, None).await.unwrap();
    assert_eq!(history.items.len(), 21, "20 gifts and the purchase");
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 0));
    // On the first UTC midnight a week after, the diamonds are available.
    let later = at("2026-03-09T00:00:00Z");
    let earnings = world.ledger.earnings(&star, later).await.unwrap();
    assert_eq!((earnings.pending, earnings.available), (0, total));
    assert_eq!(earnings.available_value.amount, "1.05");
}

pub async fn a_gift_entry_redelivered_reordered_or_regrouped_counts_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (ann, bob) = (user("ann"), user("bob"));
    let star = world.creator("star", now).await;
    world.buy(&ann, 100, now).await;
    world.buy(&bob, 100, now).await;
    for (sender, coins) in [(&ann, 1), (&bob, 2), (&ann, 3), (&bob, 4), (&ann, 5)] {
        world.gift(sender, &star, coins, now).await.unwrap();
    }
    let mut gifts = world.gift_entries().await;
    gifts.sort_by_key(|gift| gift.coins);
    let pick = |coins: &[u64]| -> Vec<GiftRecord> {
        coins
            .iter()
            .map(|c| gifts.iter().find(|g| g.coins == *c).unwrap().clone())
            .collect()
    };
    let count = |batch: Vec<GiftRecord>| {
        let ledger = world.ledger.clone();
        async move { ledger.count_gifts(&batch, now).await.unwrap() }
    };
    assert_eq!(count(pick(&[3])).await.gifts, 1);
    let regrouped = count(pick(&[5, 1, 3])).await;
    assert_eq!((regrouped.gifts, regrouped.already), (2, 1));
    // The same batch delivered three times at once.
    let mut deliveries = JoinSet::new();
    for _ in 0..3 {
        let ledger = world.ledger.clone();
        let batch = pick(&[4, 2, 5, 1]);
        deliveries.spawn(async move { ledger.count_gifts(&batch, now).await.unwrap() });
    }
    let counted: usize = deliveries.join_all().await.iter().map(|c| c.gifts).sum();
    assert_eq!(counted, 2, "gifts 2 and 4, once");
    assert_eq!(world.diamonds(&star, now).await, 15);
    let feed = world.ledger.gifts_received(&star, 50, None).await.unwrap();
    let ids: HashSet<_> = feed.items.iter().map(|g| g.gift_txn_id.clone()).collect();
    assert_eq!((feed.items.len(), ids.len()), (5, 5));
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 0));
}

/// Found by the fault simulator: a batch holding one entry twice (a redelivery merged into a
/// batch that holds it) counted that gift twice, both copies looking new.
pub async fn a_gift_entry_twice_in_one_batch_counts_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    world.gift(&fan, &star, 7, now).await.unwrap();
    let gift = world.gift_entries().await.remove(0);

    let counted = world
        .ledger
        .count_gifts(&[gift.clone(), gift], now)
        .await
        .unwrap();
    assert_eq!((counted.gifts, counted.pages), (1, 1));
    assert_eq!(world.diamonds(&star, now).await, 7);
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 0));
}

/// The earnings item, as stored.
async fn earnings_item<S: Store>(world: &World<S>, creator: &UserId) -> EarningsRecord {
    let record = world
        .ledger
        .store()
        .get(&keys::earnings(creator))
        .await
        .unwrap();
    EarningsRecord::try_from(record.expect("earnings")).unwrap()
}

pub async fn a_count_that_stopped_midway_is_finished_by_a_later_one<S: Store>(store: S) {
    let faulty = FaultyStore::new(store);
    let world = World::new(faulty.clone());
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    for coins in [1, 2, 3] {
        world.gift(&fan, &star, coins, now).await.unwrap();
    }
    let first = world.gift_entries().await;

    // Stopped right after the earnings and the page were written: no history entry yet.
    faulty.plan(&[Fault::Pass, Fault::Crash]);
    assert!(world.ledger.count_gifts(&first, now).await.is_err());
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 3));
    assert_eq!(
        world
            .ledger
            .earnings(&star, now)
            .await
            .unwrap()
            .diamonds_earned,
        6
    );
    // The redelivery finishes it and counts nothing twice.
    let redelivered = world.ledger.count_gifts(&first, now).await.unwrap();
    assert_eq!((redelivered.gifts, redelivered.already), (0, 3));
    assert_eq!(world.assert_conserved().await.gifts_unconfirmed, 0);
    assert!(earnings_item(&world, &star).await.unconfirmed.is_empty());

    // Stopped after the history entries, before the earnings were told: a count of other
    // gifts leaves that page to its writer, until the grace is over.
    world.gift(&fan, &star, 4, now).await.unwrap();
    let second: Vec<_> = world
        .gift_entries()
        .await
        .into_iter()
        .filter(|gift| gift.coins == 4)
        .collect();
    faulty.plan(&[Fault::Pass, Fault::Pass, Fault::Crash]);
    assert!(world.ledger.count_gifts(&second, now).await.is_err());
    world.gift(&fan, &star, 5, now).await.unwrap();
    let third: Vec<_> = world
        .gift_entries()
        .await
        .into_iter()
        .filter(|gift| gift.coins == 5)
        .collect();
    let soon = now + SignedDuration::from_mins(1);
    assert_eq!(
        world.ledger.count_gifts(&third, soon).await.unwrap().gifts,
        1
    );
    assert_eq!(earnings_item(&world, &star).await.unconfirmed.len(), 1);
    world.gift(&fan, &star, 6, soon).await.unwrap();
    let fourth: Vec<_> = world
        .gift_entries()
        .await
        .into_iter()
        .filter(|gift| gift.coins == 6)
        .collect();
    let after_grace = now + CONFIRM_GRACE;
    assert_eq!(
        world
            .ledger
            .count_gifts(&fourth, after_grace)
            .await
            .unwrap()
            .gifts,
        1
    );
    assert!(earnings_item(&world, &star).await.unconfirmed.is_empty());
    assert_eq!(world.diamonds(&star, after_grace).await, 21);
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 0));
}

pub async fn a_hundred_senders_gift_one_creator_at_once_without_a_conflict<S: Store>(store: S) {
    let faulty = FaultyStore::new(store);
    let world = World::new(faulty.clone());
    let now = at("2026-03-01T03:00:00Z");
    let star = world.creator("star", now).await;
    let senders: Vec<UserId> = (0..100).map(|n| user(&format!("fan-{n}"))).collect();
    for sender in &senders {
        world.buy(sender, 100, now).await;
    }
    let refused_before = faulty.refused();

    // 100 senders at once, 10 gifts each: 1,000 gifts, each sender's in order.
    let mut gifting = JoinSet::new();
    for sender in senders.clone() {
        let ledger = world.ledger.clone();
        let request = world.gift_request(&sender, &star, 7);
        gifting.spawn(async move {
            for _ in 0..10 {
                ledger.send_gift(&request, now, &fresh_key()).await?;
            }
            Ok::<(), LedgerError>(())
        });
    }
    for outcome in gifting.join_all().await {
        outcome.expect("every gift succeeds");
    }
    assert_eq!(faulty.refused() - refused_before, 0, "no write conflicted");

    // The stream counts them in ten concurrent batches, as ten shards would.
    let gifts = world.gift_entries().await;
    assert_eq!(gifts.len(), 1000);
    let mut counting = JoinSet::new();
    for batch in gifts.chunks(100) {
        let ledger = world.ledger.clone();
        let batch = batch.to_vec();
        counting.spawn(async move { ledger.count_gifts(&batch, now).await.unwrap() });
    }
    let counted: usize = counting.join_all().await.iter().map(|c| c.gifts).sum();
    assert_eq!(counted, 1000);
    assert_eq!(world.diamonds(&star, now).await, 7000);
    let report = world.assert_conserved().await;
    assert_eq!((report.gifts_pending, report.gifts_unconfirmed), (0, 0));
}

pub async fn gifts_received_run_newest_first_across_the_feed_partitions<S: Store>(store: S) {
    let world = World::new(store);
    let start = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", start).await;
    world.buy(&fan, 1000, start).await;
    // 250 gifts counted in three batches: pages in several partitions.
    let mut sent = Vec::new();
    for n in 0..250 {
        let now = start + SignedDuration::from_secs(n);
        sent.push(world.gift(&fan, &star, 1, now).await.unwrap().gift_txn_id);
        if n == 99 || n == 219 || n == 249 {
            world.count_gifts(now).await;
        }
    }
    let mut shown = Vec::new();
    let mut cursor = None;
    loop {
        let page = world
            .ledger
            .gifts_received(&star, 7, cursor.as_deref())
            .await
            .unwrap();
        shown.extend(
            page.items
                .iter()
                .map(|gift| (gift.at, gift.gift_txn_id.clone())),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    // Newest first: these batches do not overlap in time, so the order is exact.
    let mut expected: Vec<_> = shown.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(shown, expected);
    sent.reverse();
    assert_eq!(
        shown.into_iter().map(|(_, id)| id).collect::<Vec<_>>(),
        sent
    );
    assert!(matches!(
        world.ledger.gifts_received(&star, 7, Some("6e6f")).await,
        Err(LedgerError::InvalidRequest(_))
    ));
    assert_eq!(
        world.ledger.gifts_received(&fan, 7, None).await,
        Err(LedgerError::NotFound)
    );
}

pub async fn payouts_keep_to_the_minimum_the_daily_maximum_and_the_account<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (star, later) = world.creator_with_available("star", 250_000, now).await;
    let plain = world.creator("plain", now).await;
    assert_eq!(
        world
            .ledger
            .request_payout(&plain, 10_000, later, &fresh_key())
            .await,
        Err(LedgerError::PayoutAccountMissing)
    );
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 9_999, later, &fresh_key())
            .await,
        Err(LedgerError::PayoutBelowMinimum { minimum: 10_000 })
    );
    // USD 1,000 a UTC day: 200,001 diamonds are worth USD 1,000.00 (rounded down), 200,002
    // one cent more.
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 200_002, later, &fresh_key())
            .await,
        Err(LedgerError::PayoutLimitReached)
    );
    let key = fresh_key();
    let payout = world
        .ledger
        .request_payout(&star, 190_000, later, &key)
        .await
        .unwrap();
    assert_eq!(
        (payout.status, payout.amount.gross.as_str()),
        (PayoutStatus::Pending, "950.00")
    );
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 190_000, later, &key)
            .await
            .unwrap(),
        payout,
        "the same key returns the first payout"
    );
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 20_000, later, &key)
            .await,
        Err(LedgerError::IdempotencyKeyReused)
    );
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 20_000, later, &fresh_key())
            .await,
        Err(LedgerError::PayoutLimitReached)
    );
    let next_day = later + SignedDuration::from_hours(24);
    assert_eq!(
        world
            .ledger
            .request_payout(&star, 60_001, next_day, &fresh_key())
            .await,
        Err(LedgerError::InsufficientDiamonds {
            available: 60_000,
            requested: 60_001
        })
    );
    world
        .ledger
        .request_payout(&star, 60_000, next_day, &fresh_key())
        .await
        .unwrap();
    let earnings = world.ledger.earnings(&star, next_day).await.unwrap();
    assert_eq!((earnings.available, earnings.in_payout), (0, 250_000));
    let listed = world.ledger.payouts(&star, 10, None).await.unwrap();
    assert_eq!(
        listed.items.iter().map(|p| p.diamonds).collect::<Vec<_>>(),
        [60_000, 190_000],
        "newest first"
    );
    world.assert_conserved().await;
}

pub async fn payouts_racing_gifts_and_each_other_never_overdraw<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (star, later) = world.creator_with_available("star", 50_000, now).await;
    let fan = user("late-fan");
    world.buy(&fan, 500, later).await;

    // Eight payouts of 10,000 against 50,000 available, while new gifts are counted.
    let mut racing = JoinSet::new();
    for _ in 0..8 {
        let ledger = world.ledger.clone();
        let star = star.clone();
        racing.spawn(async move {
            ledger
                .request_payout(&star, 10_000, later, &fresh_key())
                .await
                .map(|_| ())
        });
    }
    for _ in 0..5 {
        world.gift(&fan, &star, 100, later).await.unwrap();
    }
    let gifts = world.gift_entries().await;
    let ledger = world.ledger.clone();
    racing.spawn(async move { ledger.count_gifts(&gifts, later).await.map(|_| ()) });
    let outcomes = racing.join_all().await;
    let paid = outcomes.iter().filter(|o| o.is_ok()).count();
    let short = outcomes
        .iter()
        .filter(|o| matches!(o, Err(LedgerError::InsufficientDiamonds { .. })))
        .count();
    assert_eq!(
        (paid, short),
        (6, 3),
        "five payouts and the count succeed: {outcomes:?}"
    );
    world.count_gifts(later).await;
    let earnings = world.ledger.earnings(&star, later).await.unwrap();
    assert_eq!(
        (
            earnings.diamonds_earned,
            earnings.in_payout,
            earnings.available,
            earnings.pending
        ),
        (50_500, 50_000, 0, 500)
    );
    world.assert_conserved().await;
}

pub async fn a_failed_payout_returns_its_diamonds_exactly_once<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (star, later) = world.creator_with_available("star", 30_000, now).await;
    let payout = world
        .ledger
        .request_payout(&star, 20_000, later, &fresh_key())
        .await
        .unwrap();
    let key = keys::payout(&star, payout.created_at, &payout.payout_id);
    let claim = |at: Timestamp| {
        let ledger = world.ledger.clone();
        let key = key.clone();
        async move { ledger.claim_payout(&key, at).await.unwrap() }
    };

    // A retryable failure keeps it pending, its diamonds in payout.
    let PayoutClaim::Send(claimed) = claim(later).await else {
        panic!("the first claim sends")
    };
    assert_eq!(
        claimed.destination,
        ConnectedAccountId::new("acct_1Creator").unwrap()
    );
    assert!(matches!(claim(later).await, PayoutClaim::Held { .. }));
    let retry = Transferred::Retry {
        error: "stripe 503".into(),
    };
    let kept = world
        .ledger
        .finish_payout(&claimed, &retry, later)
        .await
        .unwrap();
    assert_eq!(kept.status, PayoutStatus::Pending);
    assert_eq!(
        world.ledger.earnings(&star, later).await.unwrap().in_payout,
        20_000
    );

    // Refused for good: the diamonds come back, once, however often the outcome is recorded.
    let PayoutClaim::Send(claimed) = claim(later).await else {
        panic!("a pending payout is claimed again")
    };
    let refused = Transferred::Refused {
        error: "account closed".into(),
    };
    let mut finishing = JoinSet::new();
    for _ in 0..4 {
        let ledger = world.ledger.clone();
        let (claimed, refused) = (claimed.clone(), refused.clone());
        finishing.spawn(async move { ledger.finish_payout(&claimed, &refused, later).await });
    }
    for finished in finishing.join_all().await {
        assert_eq!(finished.unwrap().status, PayoutStatus::Failed);
    }
    assert_eq!(
        claim(later).await,
        PayoutClaim::Finished(PayoutStatus::Failed)
    );
    let earnings = world.ledger.earnings(&star, later).await.unwrap();
    assert_eq!(
        (earnings.available, earnings.in_payout, earnings.paid_out),
        (30_000, 0, 0)
    );
    // All 30,000 may leave again.
    let paid = world
        .ledger
        .request_payout(&star, 30_000, later, &fresh_key())
        .await
        .unwrap();
    let key = keys::payout(&star, paid.created_at, &paid.payout_id);
    let PayoutClaim::Send(claimed) = world.ledger.claim_payout(&key, later).await.unwrap() else {
        panic!("claim")
    };
    let transfer = Transferred::Paid {
        transfer_id: "tr_1".into(),
    };
    world
        .ledger
        .finish_payout(&claimed, &transfer, later)
        .await
        .unwrap();
    world
        .ledger
        .finish_payout(&claimed, &transfer, later)
        .await
        .unwrap();
    let earnings = world.ledger.earnings(&star, later).await.unwrap();
    assert_eq!(
        (earnings.available, earnings.in_payout, earnings.paid_out),
        (0, 0, 30_000)
    );
    world.assert_conserved().await;
}

pub async fn liabilities_are_what_the_ledger_owes_coins_and_diamonds<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (star, later) = world.creator_with_available("star", 30_000, now).await;
    world
        .ledger
        .request_payout(&star, 10_000, later, &fresh_key())
        .await
        .unwrap();
    let fan = user("fan");
    world.buy(&fan, 1_000, later).await;
    world.gift(&fan, &star, 300, later).await.unwrap();
    world.count_gifts(later).await;
    world.gift(&fan, &star, 200, later).await.unwrap();
    let owed = world.ledger.liabilities(later).await.unwrap();
    // The fan holds 500 coins of their open 1,000-coin lot; the first fan spent all theirs.
    assert_eq!(
        (
            owed.coins.outstanding,
            owed.coins.in_open_lots,
            owed.coins.debt
        ),
        (500, 500, 0)
    );
    let d = &owed.diamonds;
    assert_eq!(
        (
            d.pending.diamonds,
            d.available.diamonds,
            d.in_payout.diamonds
        ),
        (300, 20_000, 10_000)
    );
    assert_eq!(
        (d.available.usd.as_str(), d.in_payout.usd.as_str()),
        ("100.00", "50.00")
    );
    assert_eq!((d.gifts_not_yet_counted, d.total.diamonds), (1, 30_500));
    assert_eq!(d.total.usd, "152.50");
}
