//! Refund dispatch through the outbox: one claim at a time, outcomes recorded once, a lapsed
//! claim taken over, retries bounded.

use coins_ledger::store::{Key, Store};
use coins_ledger::table::{RefundRecord, Row, keys};
use coins_ledger::{CLAIM_LEASE, Claim, RefundBy, RefundStatus, Sent};

use crate::harness::{World, at, payment_of, user};

/// A refunded purchase's instruction key.
async fn refunded<S: Store>(world: &World<S>) -> Key {
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("fan");
    let purchase = world.buy(&fan, 700, now).await;
    let receipt = world
        .ledger
        .refund_purchase(&RefundBy::Owner(fan), &purchase, now, None)
        .await
        .unwrap();
    keys::refund(Some(&purchase), &payment_of(&purchase), &receipt.refund_id)
}

fn claimed(claim: Claim) -> RefundRecord {
    match claim {
        Claim::Send(instruction) => *instruction,
        other => panic!("expected a claim, got {other:?}"),
    }
}

pub async fn one_dispatcher_at_a_time_sends_an_instruction<S: Store>(store: S) {
    let world = World::new(store);
    let key = refunded(&world).await;
    let now = at("2026-03-01T03:01:00Z");
    let mut claims = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let ledger = world.ledger.clone();
        let key = key.clone();
        claims.spawn(async move { ledger.claim_refund(&key, now).await.unwrap() });
    }
    let mut sending = Vec::new();
    while let Some(claim) = claims.join_next().await {
        if let Claim::Send(instruction) = claim.unwrap() {
            sending.push(instruction);
        }
    }
    assert_eq!(
        sending.len(),
        1,
        "exactly one concurrent dispatcher may send"
    );
    let sent = Sent::Refunded {
        provider_refund_id: "re_1".into(),
    };
    let done = world
        .ledger
        .finish_refund(&sending[0], &sent, now)
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.provider_refund_id.as_deref()),
        (RefundStatus::Succeeded, Some("re_1"))
    );
    assert_eq!(
        world.ledger.claim_refund(&key, now).await,
        Ok(Claim::Finished(RefundStatus::Succeeded)),
        "a redelivery finds it finished"
    );
}

pub async fn a_lapsed_claim_is_taken_over_and_its_late_outcome_ignored<S: Store>(store: S) {
    let world = World::new(store);
    let key = refunded(&world).await;
    let now = at("2026-03-01T03:01:00Z");
    let first = claimed(world.ledger.claim_refund(&key, now).await.unwrap());
    assert!(matches!(
        world.ledger.claim_refund(&key, now).await,
        Ok(Claim::Held { .. })
    ));
    let later = now + CLAIM_LEASE;
    let second = claimed(world.ledger.claim_refund(&key, later).await.unwrap());
    assert_eq!(second.attempts, 2);
    // The first dispatcher wakes up: its outcome no longer counts.
    let late = Sent::Refunded {
        provider_refund_id: "re_late".into(),
    };
    let current = world
        .ledger
        .finish_refund(&first, &late, later)
        .await
        .unwrap();
    assert_eq!(current.status, RefundStatus::Pending);
    let done = world
        .ledger
        .finish_refund(
            &second,
            &Sent::Refunded {
                provider_refund_id: "re_late".into(),
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(done.key(), key);
    assert_eq!(done.status, RefundStatus::Succeeded);
}

pub async fn an_unanswered_send_stays_pending_and_a_refusal_fails_at_once<S: Store>(store: S) {
    let world = World::new(store);
    let key = refunded(&world).await;
    let mut now = at("2026-03-01T03:01:00Z");
    let retry = Sent::Retry {
        error: "stripe: 503".into(),
    };
    // However many sends go unanswered, the refund may have been made: never failed for it.
    for attempt in 1..=12 {
        let instruction = claimed(world.ledger.claim_refund(&key, now).await.unwrap());
        let after = world
            .ledger
            .finish_refund(&instruction, &retry, now)
            .await
            .unwrap();
        assert_eq!(
            (after.status, after.attempts),
            (RefundStatus::Pending, attempt),
            "attempt {attempt}"
        );
        now += CLAIM_LEASE;
    }
    let other = refunded(&world).await;
    let instruction = claimed(world.ledger.claim_refund(&other, now).await.unwrap());
    let refused = Sent::Refused {
        error: "charge_already_refunded".into(),
    };
    let after = world
        .ledger
        .finish_refund(&instruction, &refused, now)
        .await
        .unwrap();
    assert_eq!(
        (after.status, after.last_error.as_deref()),
        (RefundStatus::Failed, Some("charge_already_refunded"))
    );
}
