//! What the stream's consumers still owe: gift entries until counted (and never expiring
//! before), refunds and payouts while pending, listed by age from the outstanding index on both
//! adapters, and the earnings sweep that counts what its stream left behind.

use coins_ledger::store::Store;
use coins_ledger::table::{Outstanding, keys};
use coins_ledger::{Claim, RefundBy, SWEEP_AFTER, Sent};
use jiff::SignedDuration;

use crate::harness::{World, at, fresh_key, payment_of, user};

pub async fn what_the_consumers_owe_is_listed_by_age_until_it_is_done<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let (star, later) = world.creator_with_available("star", 10_000, now).await;
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, later).await;
    let refund = world
        .ledger
        .refund_purchase(&RefundBy::Owner(fan.clone()), &purchase, later, None)
        .await
        .unwrap();
    let payout = world
        .ledger
        .request_payout(&star, 10_000, later, &fresh_key())
        .await
        .unwrap();
    let gift_at = later + SignedDuration::from_secs(1);
    world.buy(&fan, 50, gift_at).await;
    world.gift(&fan, &star, 50, gift_at).await.unwrap();
    let look = gift_at + SignedDuration::from_mins(30);
    let owed = world.ledger.all_outstanding(look).await.unwrap();
    let kinds: Vec<Outstanding> = owed.iter().map(|item| item.kind).collect();
    assert_eq!(
        kinds,
        [Outstanding::Gift, Outstanding::Refund, Outstanding::Payout]
    );
    assert_eq!(owed[1].id, refund.refund_id.as_str());
    assert_eq!(owed[2].id, payout.payout_id.as_str());
    assert_eq!(owed[0].age_seconds, 30 * 60);
    assert!(!owed[0].is_stuck());
    // Younger than the threshold asked for: not listed.
    let recent = world
        .ledger
        .outstanding(Outstanding::Gift, look, SignedDuration::from_hours(1), None)
        .await
        .unwrap();
    assert!(recent.is_empty());
    // Done, each leaves the index.
    world.count_gifts(look).await;
    let key = keys::refund(Some(&purchase), &payment_of(&purchase), &refund.refund_id);
    let Claim::Send(claimed) = world.ledger.claim_refund(&key, look).await.unwrap() else {
        panic!("the instruction is ours to send");
    };
    let sent = Sent::Refunded {
        provider_refund_id: "re_1".into(),
    };
    world
        .ledger
        .finish_refund(&claimed, &sent, look)
        .await
        .unwrap();
    let owed = world.ledger.all_outstanding(look).await.unwrap();
    let kinds: Vec<Outstanding> = owed.iter().map(|item| item.kind).collect();
    assert_eq!(kinds, [Outstanding::Payout], "the payout is still pending");
    world.assert_conserved().await;
}

pub async fn a_gift_entry_never_expires_before_it_is_counted<S: Store>(store: S) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    let key = fresh_key();
    let request = world.gift_request(&fan, &star, 10);
    let first = world.ledger.send_gift(&request, now, &key).await.unwrap();
    let entry = &world.gift_entries().await[0];
    assert_eq!((entry.expires_at, entry.counted_at), (None, None));
    // Days later, the stream still stopped: the key still names the same gift, which still
    // waits for its creator's count (it did not expire, so nothing can replace it).
    let days_later = now + SignedDuration::from_hours(72);
    let again = world
        .ledger
        .send_gift(&request, days_later, &key)
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(world.balance(&fan, days_later).await, 90);
    // Counted, it expires with its key's window (a day after the gift).
    world.count_gifts(days_later).await;
    let entry = &world.gift_entries().await[0];
    assert_eq!(entry.counted_at, Some(days_later));
    let window = now + SignedDuration::from_hours(24);
    assert_eq!(entry.expires_at, Some(window.as_second()));
    assert_eq!(
        world
            .ledger
            .earnings(&star, days_later)
            .await
            .unwrap()
            .diamonds_earned,
        10
    );
    world.assert_conserved().await;
}

pub async fn the_earnings_sweep_counts_the_gifts_its_stream_left_past_the_threshold<S: Store>(
    store: S,
) {
    let world = World::new(store);
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let star = world.creator("star", now).await;
    world.buy(&fan, 100, now).await;
    for _ in 0..3 {
        world.gift(&fan, &star, 5, now).await.unwrap();
    }
    // Within the threshold the stream may still be counting them: left alone.
    let soon = now + SWEEP_AFTER - SignedDuration::from_secs(1);
    let (found, counted) = world
        .ledger
        .count_outstanding_gifts(soon, SWEEP_AFTER)
        .await
        .unwrap();
    assert_eq!((found.len(), counted.gifts), (0, 0));
    // Past it (the stream's records dead-lettered), counted once, whatever runs again.
    let late = now + SWEEP_AFTER;
    for expected in [3, 0] {
        let (_, counted) = world
            .ledger
            .count_outstanding_gifts(late, SWEEP_AFTER)
            .await
            .unwrap();
        assert_eq!(counted.gifts, expected);
    }
    assert_eq!(
        world
            .ledger
            .earnings(&star, late)
            .await
            .unwrap()
            .diamonds_earned,
        15
    );
    assert!(world.ledger.all_outstanding(late).await.unwrap().is_empty());
    world.assert_conserved().await;
}
