//! Races over real HTTP on DynamoDB: parallel gifts cannot overspend a wallet, duplicate
//! webhook deliveries credit once, a refund racing a gift leaves exactly one of them done; coins
//! are conserved after each.

use std::sync::Barrier;

use e2e_tests::flows::{self, balance, buy, enroll, send_gift, str_field};
use e2e_tests::scenarios::assert_history_adds_up;
use e2e_tests::{LocalServer, Reply, User};

/// Runs `count` copies of `request` at once (released together by a barrier).
fn race(count: usize, request: impl Fn(usize) -> Reply + Sync) -> Vec<Reply> {
    let barrier = Barrier::new(count);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..count)
            .map(|i| {
                let barrier = &barrier;
                let request = &request;
                scope.spawn(move || {
                    barrier.wait();
                    request(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a racing request panicked"))
            .collect()
    })
}

#[test]
fn parallel_gifts_never_spend_more_than_the_balance() {
    let server = LocalServer::new("race-gifts");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    buy(&server, &fan, "coins_70");
    // Ten gifts of 10 coins at once from 70 coins: seven succeed, three find too few coins.
    let replies = race(10, |_| {
        send_gift(&server, &fan, &creator, "finger_heart", 2)
    });
    let mut sent = 0;
    for reply in replies {
        match reply.status {
            201 => sent += 1,
            _ => {
                reply.expect_problem(409, "insufficient_coins");
            }
        }
    }
    assert_eq!(sent, 7);
    assert_eq!(balance(&server, &fan), 0);
    flows::earnings_reaching(&server, &creator, 70);
    assert_history_adds_up(&flows::all_transactions(&server, &fan, 100), 0);
}

#[test]
fn duplicate_webhook_deliveries_at_once_credit_once() {
    let server = LocalServer::new("race-webhooks");
    let fan = User::new("fan");
    let quote = flows::quote_package(&server, &fan, "coins_350");
    let purchase = flows::purchase(&server, &fan, str_field(&quote, "quote_id"));
    let event = flows::succeeded_event(&purchase, "JP");
    let replies = race(6, |_| server.deliver_webhook(&event));
    let credited = replies
        .into_iter()
        .map(|reply| reply.expect(200))
        .filter(|ack| ack["outcome"] == "credited")
        .count();
    assert_eq!(credited, 1);
    assert_eq!(balance(&server, &fan), 350);
    assert_eq!(flows::all_transactions(&server, &fan, 100).len(), 1);
}

#[test]
fn a_refund_racing_a_gift_from_the_same_coins_lets_exactly_one_through() {
    let server = LocalServer::new("race-refund");
    let fan = User::new("fan");
    let creator = User::new("creator");
    enroll(&server, &creator);
    let bought = buy(&server, &fan, "coins_70");
    let replies = race(2, |i| {
        if i == 0 {
            flows::refund(&server, &fan, &bought.purchase_id)
        } else {
            send_gift(&server, &fan, &creator, "rose", 1)
        }
    });
    let [refund, gift] = <[Reply; 2]>::try_from(replies).expect("two replies");
    match (refund.status, gift.status) {
        (200, _) => {
            gift.expect_problem(409, "insufficient_coins");
            assert_eq!(balance(&server, &fan), 0);
            assert_eq!(flows::earnings(&server, &creator)["diamonds_earned"], 0);
        }
        (_, 201) => {
            refund.expect_problem(409, "coins_already_spent");
            assert_eq!(balance(&server, &fan), 69);
            flows::earnings_reaching(&server, &creator, 1);
        }
        (refund_status, gift_status) => panic!(
            "neither won: refund {refund_status} {}, gift {gift_status} {}",
            refund.text(),
            gift.text()
        ),
    }
    let history = flows::all_transactions(&server, &fan, 100);
    assert_history_adds_up(&history, balance(&server, &fan));
    assert_eq!(
        history.len(),
        2,
        "a purchase and one of refund or gift: {history:?}"
    );
}
