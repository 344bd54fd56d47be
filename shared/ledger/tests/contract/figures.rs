//! Capacity figures from real items: write units per operation (1 per started KB per item,
//! doubled in transactions) and the size of every item type, hot ones under 1 KB.
//! `cargo test -p coins-ledger --test contract figures -- --nocapture` prints the table.

use std::collections::BTreeMap;

use coins_ids::ReversalRef;
use coins_ledger::capacity::record_size_bytes;
use coins_ledger::store::Store;
use coins_ledger::table::keys;
use coins_ledger::{Claim, MemoryStore, RefundBy, ReversalEvent, Sent};

use crate::harness::{
    MeteredStore, MeteredWrite, World, at, event_id, payment_of, succeeded, user, yen,
};

fn units(commit: &[MeteredWrite]) -> u64 {
    commit.iter().map(|w| w.units).sum()
}

#[tokio::test]
async fn write_units_per_operation_and_hot_item_sizes() {
    let metered = MeteredStore::new(MemoryStore::new());
    let world = World::new(metered.clone());
    let now = at("2026-03-01T03:00:00Z");
    let fan = user("7f1c0e2a-95b4-4a6e-9d1e-2b8f0c6d3a11");
    let star = world
        .creator("0b7e9a64-1c2d-4e5f-8a9b-0c1d2e3f4a5b", now)
        .await;

    let mut figures: Vec<(String, usize, u64, String)> = Vec::new();
    let mut record = |name: &str, commits: Vec<Vec<MeteredWrite>>| {
        let last = commits.last().expect("a commit").clone();
        let breakdown = last
            .iter()
            .map(|w| {
                // The item kind: the upper-case leading parts of its sort key (`WALLET#LOT`).
                let kind: Vec<&str> =
                    w.sk.split('#')
                        .take_while(|part| part.chars().all(|c| c.is_ascii_uppercase()))
                        .collect();
                format!("{} {}B", kind.join("#"), w.bytes)
            })
            .collect::<Vec<_>>()
            .join(", ");
        figures.push((name.to_owned(), last.len(), units(&last), breakdown));
        last
    };

    metered.reset();
    let purchase = world.pending_purchase(&fan, 700, now).await;
    // Three commits: the quote, the purchase, its PaymentIntent paired.
    let commits = metered.commits();
    assert_eq!(commits.len(), 3);
    record("create purchase", vec![commits[1].clone()]);
    record("pair its PaymentIntent", vec![commits[2].clone()]);
    metered.reset();
    world
        .ledger
        .apply_payment(&world.paid(&purchase, 700), now)
        .await
        .unwrap();
    let credit = record("payment credit (one lot)", metered.commits());
    assert_eq!(
        units(&credit),
        2 * credit.len() as u64,
        "every credited item under 1 KB"
    );

    metered.reset();
    world.gift(&fan, &star, 10, now).await.unwrap();
    let gift = record("gift (1 lot touched)", metered.commits());
    assert_eq!(gift.len(), 5);
    assert_eq!(units(&gift), 10);

    // Scaling: a gift that spends k lots writes k lot items (k - 1 deleted, 1 updated).
    for k in [2u64, 5, 20, 90] {
        let buyer = user(&format!("scaling-{k}"));
        for i in 0..k {
            world
                .buy(&buyer, 10, now + jiff::SignedDuration::from_secs(i as i64))
                .await;
        }
        metered.reset();
        world.gift(&buyer, &star, 10 * k - 5, now).await.unwrap();
        let commit = record(&format!("gift ({k} lots touched)"), metered.commits());
        assert_eq!(commit.len() as u64, 4 + k);
        assert_eq!(units(&commit), 2 * (4 + k));
    }

    let refunded = world.buy(&fan, 350, now).await;
    metered.reset();
    let receipt = world
        .ledger
        .refund_purchase(&RefundBy::Owner(fan.clone()), &refunded, now, None)
        .await
        .unwrap();
    record("refund (with its instruction)", metered.commits());
    let instruction = keys::refund(Some(&refunded), &payment_of(&refunded), &receipt.refund_id);
    metered.reset();
    let Claim::Send(claimed) = world.ledger.claim_refund(&instruction, now).await.unwrap() else {
        panic!("a pending instruction is claimed");
    };
    record("dispatch: claim the instruction", metered.commits());
    metered.reset();
    let sent = Sent::Refunded {
        provider_refund_id: "re_3MtwBwLkdIwHu7ix28a3tqPa".into(),
    };
    world
        .ledger
        .finish_refund(&claimed, &sent, 8, now)
        .await
        .unwrap();
    record("dispatch: record Stripe's refund", metered.commits());

    let mismatched = world.pending_purchase(&fan, 70, now).await;
    metered.reset();
    let paid_from_abroad = succeeded(&mismatched, &payment_of(&mismatched), yen(70), "US");
    world
        .ledger
        .apply_payment(&paid_from_abroad, now)
        .await
        .unwrap();
    record("payment returned (wrong country)", metered.commits());

    let disputed = world.buy(&fan, 140, now).await;
    let dispute = |kind: &str| ReversalEvent {
        event_id: event_id(),
        kind: kind.into(),
        purchase_id: disputed.clone(),
        by: ReversalRef::new("dp_1MzLb2LkdIwHu7ix0TzTvbE1").unwrap(),
        share: None,
    };
    metered.reset();
    world
        .ledger
        .reverse_purchase(&dispute("charge.dispute.created"), now)
        .await
        .unwrap();
    record("dispute: reversal (own lot)", metered.commits());
    metered.reset();
    world
        .ledger
        .undo_reversal(&dispute("charge.dispute.closed"), now)
        .await
        .unwrap();
    record("dispute won: reversal undone", metered.commits());

    metered.reset();
    world
        .ledger
        .set_restriction(&fan, false, now)
        .await
        .unwrap();
    record("admin: lift a restriction", metered.commits());

    metered.reset();
    world
        .ledger
        .close_lot(&fan, &purchase, at("2026-03-16T00:00:00Z"))
        .await
        .unwrap();
    record("window closure", metered.commits());

    metered.reset();
    world
        .ledger
        .set_daily_limit(&fan, &crate::harness::tokyo(), Some(500), now)
        .await
        .unwrap();
    record("set daily limit", metered.commits());

    // The largest item of each type.
    let mut sizes: BTreeMap<String, usize> = BTreeMap::new();
    for record in metered.scan_all().await.unwrap() {
        let kind = format!("{:?}", record.item_type());
        let size = record_size_bytes(&record).unwrap();
        let largest = sizes.entry(kind).or_default();
        *largest = (*largest).max(size);
    }

    println!("\n| operation | items written | write units | items (sort-key prefix, size) |");
    println!("|---|---|---|---|");
    for (name, items, units, breakdown) in &figures {
        let breakdown = if *items > 8 {
            "…"
        } else {
            breakdown.as_str()
        };
        println!("| {name} | {items} | {units} | {breakdown} |");
    }
    println!("\n| item type | largest size (bytes) |\n|---|---|");
    for (kind, size) in &sizes {
        println!("| {kind} | {size} |");
    }
    for hot in [
        "Wallet",
        "Lot",
        "Diamonds",
        "LotMarker",
        "History",
        "Idempotency",
        "Purchase",
        "Refund",
        "PaymentEvent",
    ] {
        let size = sizes[hot];
        assert!(size < 1024, "{hot} is {size} bytes, over 1 KB");
    }
}
