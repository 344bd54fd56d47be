//! Capacity figures from real items: write units per operation (1 per started KB per item,
//! doubled in transactions) and the size of every item type, hot ones under 1 KB.
//! `cargo test -p coins-ledger --test contract figures -- --nocapture` prints the table.

use std::collections::BTreeMap;

use coins_ids::ReversalRef;
use coins_ledger::capacity::record_size_bytes;
use coins_ledger::store::Store;
use coins_ledger::table::GiftRecord;
use coins_ledger::table::{FEED_SHARDS, keys};
use coins_ledger::{
    Claim, GIFTS_PER_PAGE, MemoryStore, PayoutClaim, RefundBy, ReversalEvent, Sent, Transferred,
};

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
            .map(|w| format!("{} {}B", w.kind, w.bytes))
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
    assert_eq!(gift.len(), 2, "the wallet and the gift entry");
    assert_eq!(units(&gift), 4, "a gift's synchronous write");

    // The lots a gift spends are counted in the wallet, not written: the same two items
    // whatever it touches.
    for k in [2u64, 90] {
        let buyer = user(&format!("scaling-{k}"));
        for i in 0..k {
            world
                .buy(&buyer, 10, now + jiff::SignedDuration::from_secs(i as i64))
                .await;
        }
        metered.reset();
        world.gift(&buyer, &star, 10 * k - 5, now).await.unwrap();
        let commit = record(&format!("gift ({k} lots touched)"), metered.commits());
        assert_eq!((commit.len(), units(&commit)), (2, 4));
    }

    // The stream's share: one batch of 100 gifts into one creator, from 100 senders (a live).
    let mut gifts = Vec::new();
    for n in 0..GIFTS_PER_PAGE {
        let sender = user(&format!("{:08x}-95b4-4a6e-9d1e-2b8f0c6d3a11", n));
        world.buy(&sender, 100, now).await;
        gifts.push(
            world
                .gift(&sender, &star, 5, now)
                .await
                .unwrap()
                .gift_txn_id,
        );
    }
    let batch: Vec<GiftRecord> = world
        .gift_entries()
        .await
        .into_iter()
        .filter(|gift| gifts.contains(&gift.details.gift_txn_id))
        .collect();
    metered.reset();
    world.ledger.count_gifts(&batch, now).await.unwrap();
    let count = metered.commits();
    let stream_units: u64 = count.iter().map(|commit| units(commit)).sum();
    let stream_items: usize = count.iter().map(Vec::len).sum();
    assert_eq!(
        count.len(),
        2 + 2 * GIFTS_PER_PAGE,
        "earnings and page, entries, confirmation, the gift entries marked counted"
    );
    record(
        "stream: earnings and a page of 100 gifts",
        vec![count[0].clone()],
    );
    record("stream: a sender's history entry", vec![count[1].clone()]);
    record(
        "stream: confirm the page",
        vec![count[1 + GIFTS_PER_PAGE].clone()],
    );
    record(
        "stream: mark a gift entry counted (it may expire from then on)",
        vec![count[count.len() - 1].clone()],
    );
    let per_gift = stream_units as f64 / GIFTS_PER_PAGE as f64;
    let in_all = units(&gift) as f64 + per_gift;
    let summary = format!(
        "A gift in all: {} units synchronous + {per_gift:.2} units of the stream's writes \
         ({stream_units} units, {stream_items} items, for a batch of {GIFTS_PER_PAGE}) = \
         {in_all:.2} write units.",
        units(&gift)
    );
    // 6.45: the sender's side (4), the creator's side (1.45 a gift in pages of 100), and the
    // mark that lets a counted gift entry expire (1); the outstanding index adds 2 index
    // writes (in, then out), which DynamoDB bills like table writes.
    assert!(in_all <= 6.5, "a gift costs {in_all:.2} write units in all");

    // Payouts.
    let (earner, later) = world.creator_with_available("earner", 20_000, now).await;
    metered.reset();
    let payout = world
        .ledger
        .request_payout(&earner, 10_000, later, &crate::harness::fresh_key())
        .await
        .unwrap();
    record("payout request", metered.commits());
    let payout_key = keys::payout(&earner, payout.created_at, &payout.payout_id);
    metered.reset();
    let PayoutClaim::Send(claimed) = world.ledger.claim_payout(&payout_key, later).await.unwrap()
    else {
        panic!("a pending payout is claimed");
    };
    record("payout dispatch: claim", metered.commits());
    metered.reset();
    let paid = Transferred::Paid {
        transfer_id: "tr_1MiN3gLkdIwHu7ixNCZvFdgA".into(),
    };
    world
        .ledger
        .finish_payout(&claimed, &paid, later)
        .await
        .unwrap();
    record("payout dispatch: record the transfer", metered.commits());

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
        .finish_refund(&claimed, &sent, now)
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

    let warned = world.buy(&fan, 210, now).await;
    let warning = ReversalEvent {
        event_id: event_id(),
        kind: "radar.early_fraud_warning.created".into(),
        purchase_id: warned,
        by: ReversalRef::new("issfr_1NnrwHBw2dPENLoi9lnhV3RQ").unwrap(),
        share: None,
    };
    metered.reset();
    world.ledger.fraud_warning(&warning, now).await.unwrap();
    record("fraud warning, coins unspent: refund", metered.commits());

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
    println!("\n{summary}");
    println!("\n| item type | largest size (bytes) |\n|---|---|");
    for (kind, size) in &sizes {
        println!("| {kind} | {size} |");
    }
    for hot in [
        "Wallet",
        "Lot",
        "Gift",
        "Earnings",
        "Payout",
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

/// DynamoDB's write units a second per partition.
const PARTITION_WRITE_UNITS: f64 = 1_000.0;

/// The hot-creator model: the write units each partition takes from gifts into one creator,
/// measured on the items this code writes (a live: a thousand senders, one gift each, counted
/// from the stream in one batch of 1,000, the mapping's `BatchSize`), then scaled to a gift rate
/// and set against DynamoDB's 1,000 write units a second per partition.
/// `cargo test -p coins-ledger --test contract hot_creator -- --nocapture` prints it.
#[tokio::test]
async fn a_hot_creator_takes_10000_gifts_a_second_without_a_hot_partition() {
    const SENDERS: usize = 1_000;
    let metered = MeteredStore::new(MemoryStore::new());
    let world = World::new(metered.clone());
    let now = at("2026-03-01T03:00:00Z");
    let star = world
        .creator("0b7e9a64-1c2d-4e5f-8a9b-0c1d2e3f4a5b", now)
        .await;
    let senders: Vec<_> = (0..SENDERS)
        .map(|n| user(&format!("{n:08x}-95b4-4a6e-9d1e-2b8f0c6d3a11")))
        .collect();
    for sender in &senders {
        world.buy(sender, 100, now).await;
    }
    metered.reset();
    for sender in &senders {
        world.gift(sender, &star, 5, now).await.unwrap();
    }
    let gifts = world.gift_entries().await;
    world.ledger.count_gifts(&gifts, now).await.unwrap();

    // Write units by partition kind.
    let (mut sender, mut entry, mut earnings, mut feed) = (0u64, 0u64, 0u64, 0u64);
    for write in metered.commits().iter().flatten() {
        let units = write.units;
        match write.pk.split('#').next().unwrap_or_default() {
            "USER" => sender += units,
            "GIFT" => entry += units,
            "CREATOR" => earnings += units,
            "GIFTS" => feed += units,
            other => panic!("a gift wrote to a {other} partition"),
        }
    }
    let per_gift = |units: u64| units as f64 / SENDERS as f64;
    // Assumptions: a sender taps at most 10 gifts a second; the stream has 100 shards (a table
    // taking this load has tens of partitions), each invoking the consumer about once a second
    // or once per 1,000 gifts, whichever is more often; pages spread evenly over the feed's
    // partitions (a hash of their newest gift).
    let sender_rate = 10.0;
    let shards = 100.0;
    let batches_per_second = |rate: f64| f64::max(shards, rate / 1_000.0);
    let earnings_per_batch = earnings as f64;
    let feed_per_gift_per_partition = per_gift(feed) / f64::from(FEED_SHARDS);
    let load = |rate: f64| {
        [
            (
                "a sender's own (wallet, history)",
                per_gift(sender) * sender_rate,
            ),
            ("a gift entry's own (GIFT#…)", per_gift(entry)),
            (
                "the creator's earnings (CREATOR#…)",
                earnings_per_batch * batches_per_second(rate),
            ),
            (
                "one of 8 feed partitions (GIFTS#…#n)",
                feed_per_gift_per_partition * rate,
            ),
        ]
    };
    // The rate at which the feed, the one load that grows with it, fills its partitions (the
    // earnings item grows with batches, a thousand gifts each).
    let ceiling = f64::min(
        PARTITION_WRITE_UNITS / feed_per_gift_per_partition,
        PARTITION_WRITE_UNITS / earnings_per_batch * 1_000.0,
    );
    println!(
        "\nWrite units per gift: sender partition {:.2}, gift entry {:.2}, feed {:.2}; earnings {} per batch.",
        per_gift(sender),
        per_gift(entry),
        per_gift(feed),
        earnings
    );
    println!("\n| partition | write units/s at 10,000 gifts/s | of 1,000 |\n|---|---|---|");
    for (partition, units) in load(10_000.0) {
        println!("| {partition} | {units:.0} | {:.0} % |", units / 10.0);
        assert!(
            units < PARTITION_WRITE_UNITS,
            "{partition}: {units:.0} units/s"
        );
    }
    println!(
        "\nThe first partition to reach 1,000 units/s does so at {ceiling:.0} gifts/s into one creator; \
         the earnings item takes {:.0} transactional writes/s then (one conditional put and one \
         confirmation per batch).",
        2.0 * batches_per_second(ceiling)
    );
    assert!(ceiling >= 10_000.0, "{ceiling:.0} gifts/s");
    // The earnings item, written by transactions, stays under ~500 writes a second.
    assert!(2.0 * batches_per_second(10_000.0) <= 500.0);
}
