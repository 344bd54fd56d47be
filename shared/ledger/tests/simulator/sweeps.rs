//! The consumers' scheduled sweeps, and the drain that ends a run with them.
//!
//! Besides its stream, each consumer that owes something is invoked on a schedule and acts
//! again on what the outstanding index (`gsi3`) says it still owes past `SWEEP_AFTER`: earnings
//! counts the gift entries not counted yet, refund-dispatch and payout-dispatch dispatch each
//! pending instruction or payout as a stream record would (claim, send, finish: the provider
//! model, its ambiguous answers and the store's faults all apply). A stream record that was
//! dead-lettered (`stream`) is finished only so. The simulated clock moves about three hours a
//! step, mostly by minutes, so items pass `SWEEP_AFTER` (10 minutes) within a step or two and
//! the sweeps use the ledger's own threshold; the drain moves 20 minutes a round.
//!
//! The ledger orders what it finds by age, then by its own (random) ids, and picks the oldest of
//! each index partition, hashed from those ids: a sweep under faults would draw its faults in an
//! order that differs run to run. So, under faults, the simulator finds the items as the sweep
//! does (`Ledger::outstanding`, all of each partition), puts them in an order of its own names,
//! and acts on them as the sweep does (`Ledger::count_gifts`, which `count_outstanding_gifts`
//! calls; the dispatchers' claim, send and finish). The look itself may be refused (throttled)
//! but does not yield to the step's other operations midway: which partitions it read before
//! another operation finished an item would again depend on those ids. In the drain, the
//! earnings sweep is `Ledger::count_outstanding_gifts` itself, without faults (so its order
//! does not matter).

use coins_ledger::store::Store;
use coins_ledger::table::{GiftRecord, Outstanding, Record};
use coins_ledger::{
    Counted, Ledger, LedgerError, MemoryStore, OutstandingItem, SWEEP_AFTER,
    SWEEP_GIFTS_PER_PARTITION,
};
use jiff::SignedDuration;

use crate::check::ensure;
use crate::faults::{FaultProfile, FaultyStore, OpFaults};
use crate::ops::{self, Ctx, Delivery, Done, Stream, error_name};
use crate::sim::{Action, Sim};

/// Drain rounds before faults stop, and in all.
const DRAIN_CALM_ROUND: u32 = 8;
const DRAIN_ROUNDS: u32 = 40;

/// The consumers that sweep what they owe, and what they owe.
pub const SWEEPERS: [(Stream, Outstanding); 3] = [
    (Stream::Earnings, Outstanding::Gift),
    (Stream::RefundDispatch, Outstanding::Refund),
    (Stream::PayoutDispatch, Outstanding::Payout),
];

/// How a sweep ended that found nothing it could act on.
fn swept(stream: Stream, summary: String) -> Done {
    Done::Consumed {
        stream,
        summary,
        retry: Vec::new(),
    }
}

/// What a gift sweep did, for the summary: whether it re-drove anything.
fn gift_outcome(found: usize, counted: &Counted) -> &'static str {
    match (found, counted.gifts) {
        (0, _) => "ok, found nothing",
        (_, 0) => "ok, found only gifts counted meanwhile",
        _ => "ok, counted gifts the stream had not",
    }
}

/// A sweep whose look at the index failed: retryable, it runs again at its next schedule.
fn look_failed(ctx: &Ctx, stream: Stream, call: &str, error: LedgerError) -> Done {
    if !error.is_retryable() {
        return Done::Broken(format!("{stream:?} sweep, {call}: {error}"));
    }
    ctx.outcome(call, error_name(&error));
    swept(stream, format!("sweep failed ({error}), runs again"))
}

/// The sweep's look at the outstanding index: refused now and then as any read, but without
/// yielding to the step's other operations (see the module's header).
async fn look(
    ctx: &Ctx,
    table: &MemoryStore,
    kind: Outstanding,
    per_partition: Option<u32>,
) -> Result<Vec<OutstandingItem>, LedgerError> {
    let profile = FaultProfile {
        interleave: 0,
        ..ctx.op.profile
    };
    let rng = ctx.op.rng().fork();
    let faults = OpFaults::new(rng, profile, ctx.op.stats_handle());
    // The simulator's own config: retries back off for no time, as everywhere here.
    let config = ctx.ledger.config().clone();
    let ledger = Ledger::with_config(FaultyStore::new(table.clone(), faults), config);
    ctx.call("outstanding");
    ledger
        .outstanding(kind, ctx.now, SWEEP_AFTER, per_partition)
        .await
}

/// One scheduled invocation of `stream`'s consumer (`exact`: the earnings sweep through
/// `count_outstanding_gifts` itself, which only a fault-free run keeps in a stable order).
/// `table` is the table itself, read only to order what the sweep found.
pub async fn sweep_owed(ctx: Ctx, stream: Stream, table: MemoryStore, exact: bool) -> Done {
    match (stream, exact) {
        (Stream::Earnings, true) => count_outstanding(ctx).await,
        (Stream::Earnings, false) => count_found(ctx, table).await,
        (Stream::RefundDispatch, _) => {
            dispatch_found(ctx, stream, Outstanding::Refund, table).await
        }
        (Stream::PayoutDispatch, _) => {
            dispatch_found(ctx, stream, Outstanding::Payout, table).await
        }
        (Stream::RefundExpiry, _) => swept(stream, "sweeps nothing".into()),
    }
}

/// `earnings`' sweep as the function runs it.
async fn count_outstanding(ctx: Ctx) -> Done {
    let call = "count_outstanding_gifts";
    ctx.call(call);
    match ctx
        .ledger
        .count_outstanding_gifts(ctx.now, SWEEP_AFTER)
        .await
    {
        Ok((found, counted)) => {
            ctx.outcome(call, gift_outcome(found.len(), &counted));
            swept(
                Stream::Earnings,
                format!(
                    "sweep found {} gift entries: {} counted, {} already",
                    found.len(),
                    counted.gifts,
                    counted.already
                ),
            )
        }
        Err(error) => look_failed(&ctx, Stream::Earnings, call, error),
    }
}

/// `earnings`' sweep in its two halves, the found entries in a stable order.
async fn count_found(ctx: Ctx, table: MemoryStore) -> Done {
    let limit = Some(SWEEP_GIFTS_PER_PARTITION);
    let found = match look(&ctx, &table, Outstanding::Gift, limit).await {
        Ok(found) => found,
        Err(error) => return look_failed(&ctx, Stream::Earnings, "outstanding", error),
    };
    let mut gifts: Vec<GiftRecord> = Vec::new();
    for item in &found {
        if let Ok(Some(Record::Gift(gift))) = table.get(&item.key).await {
            gifts.push(gift);
        }
    }
    gifts.sort_by(|a, b| (a.at, &a.sender_id, &a.key).cmp(&(b.at, &b.sender_id, &b.key)));
    ctx.call("count_gifts");
    match ctx.ledger.count_gifts(&gifts, ctx.now).await {
        Ok(counted) => {
            ctx.outcome("count_gifts", gift_outcome(gifts.len(), &counted));
            let summary = format!(
                "sweep found {} gift entries: {} counted, {} already",
                gifts.len(),
                counted.gifts,
                counted.already
            );
            swept(Stream::Earnings, summary)
        }
        Err(error) => look_failed(&ctx, Stream::Earnings, "count_gifts", error),
    }
}

/// A dispatcher's sweep: each pending item past the threshold dispatched as a stream record
/// would be; what is still pending waits for the next sweep (no record to deliver again).
/// All of each partition, not the function's two: which two depends on the ledger's ids.
async fn dispatch_found(ctx: Ctx, stream: Stream, kind: Outstanding, table: MemoryStore) -> Done {
    let found = match look(&ctx, &table, kind, None).await {
        Ok(found) => found,
        Err(error) => return look_failed(&ctx, stream, "outstanding", error),
    };
    let mut owed: Vec<(String, Delivery)> = Vec::new();
    for item in found {
        let order = match table.get(&item.key).await {
            Ok(Some(Record::Refund(refund))) => {
                format!("{} {}", refund.created_at, refund.payment_intent_id)
            }
            Ok(Some(Record::Payout(payout))) => format!(
                "{} {} {}",
                payout.created_at, payout.creator_id, payout.diamonds
            ),
            _ => continue,
        };
        owed.push(match kind {
            Outstanding::Refund => (order, Delivery::Instruction(item.key)),
            _ => (order, Delivery::Payout(item.key)),
        });
    }
    owed.sort_by(|a, b| a.0.cmp(&b.0));
    let sweep = format!("{stream:?} sweep");
    ctx.outcome(
        &sweep,
        if owed.is_empty() {
            "found nothing"
        } else {
            "dispatched what it found"
        },
    );
    let count = owed.len();
    let batch = owed.into_iter().map(|(_, delivery)| delivery).collect();
    match ops::consume(ctx, stream, batch).await {
        Done::Consumed { summary, retry, .. } => swept(
            stream,
            format!(
                "sweep found {count}: {summary}; {} still pending",
                retry.len()
            ),
        ),
        other => other,
    }
}

impl Sim {
    /// What the consumers still owe, by consumer, as the table says now.
    fn owed(&self) -> Result<Vec<Stream>, String> {
        let items = self
            .block_on(self.ledger().all_outstanding(self.now))
            .map_err(|error| format!("all_outstanding failed: {error}"))?;
        Ok(SWEEPERS
            .iter()
            .filter(|(_, kind)| items.iter().any(|item| item.kind == *kind))
            .map(|(stream, _)| *stream)
            .collect())
    }

    /// No new requests; every webhook and stream record delivered, and every consumer's sweep
    /// run while it owes something, until nothing is left, the last rounds without faults and
    /// with the provider back up, so it ends: a send with no answer leaves a refund or payout
    /// pending and its record is delivered again (or, dead-lettered, its sweep finds it), so
    /// only the provider's word finishes it. Then every lot past its window must be closed,
    /// every gift counted once, every refund and payout finished, nothing outstanding.
    pub fn drain(&mut self) -> Result<(), String> {
        self.trace("drain".to_owned());
        self.waiting.clear();
        self.answered.clear();
        for round in 0..DRAIN_ROUNDS {
            if round == DRAIN_CALM_ROUND {
                self.profile = FaultProfile::none();
                self.provider
                    .lock()
                    .expect("one thread per seed")
                    .outage_until = None;
                self.trace("drain: faults off".to_owned());
            }
            self.step += 1;
            // Past any claim's lease, any unconfirmed count's grace and `SWEEP_AFTER`.
            self.now += SignedDuration::from_mins(20);
            self.trace(format!("step {} at {}", self.step, self.now));
            self.remove_expired_markers(false);
            self.feed()?;
            // Calm, nothing is held back any more.
            let step = if round < DRAIN_CALM_ROUND {
                self.step
            } else {
                u64::MAX
            };
            let mut actions = self.due_deliveries(step);
            let owed = self.owed()?;
            actions.extend(owed.iter().map(|&stream| Action::Owed(stream, true)));
            if actions.is_empty() && self.drained() {
                return self.final_check();
            }
            self.run_step(actions)?;
            self.feed()?;
            self.check()?;
        }
        Err(format!(
            "{DRAIN_ROUNDS} drain rounds left deliveries pending (webhooks {}, streams {:?}) or \
             items outstanding ({:?})",
            !self.webhooks.is_empty(),
            self.streams
                .iter()
                .map(|s| !s.is_empty())
                .collect::<Vec<_>>(),
            self.owed()?,
        ))
    }

    /// Every webhook and stream record due at `step`, each stream's in batches of 20.
    fn due_deliveries(&mut self, step: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut stats = self.stats.lock().expect("one thread per seed");
        while self.webhooks.has_due(step) {
            let hooks = self
                .webhooks
                .take(step, 1, &mut self.rng, &mut stats.faults);
            actions.extend(hooks.into_iter().map(Action::Hook));
        }
        for stream in [
            Stream::Earnings,
            Stream::RefundDispatch,
            Stream::PayoutDispatch,
            Stream::RefundExpiry,
        ] {
            let queue = &mut self.streams[stream as usize];
            while queue.has_due(step) {
                let batch = queue.take(step, 20, &mut self.rng, &mut stats.faults);
                actions.push(Action::Consume(stream, batch));
            }
        }
        actions
    }

    fn drained(&self) -> bool {
        self.webhooks.is_empty()
            && self.streams.iter().all(crate::stream::Deliveries::is_empty)
            && self.store.changes_after(self.fed).is_empty()
    }

    /// At any instant: a gift entry expires (has a TTL) exactly when it was counted, so none
    /// can expire before its creator was credited.
    pub fn gifts_expire_once_counted(&self, records: &[Record]) -> Result<(), String> {
        self.checked("gift entries expire only once counted");
        for record in records {
            if let Record::Gift(gift) = record {
                ensure(
                    gift.counted_at.is_some() == gift.expires_at.is_some(),
                    || {
                        format!(
                            "the gift entry of {} under key {} is counted at {:?}, expires at {:?}",
                            gift.sender_id, gift.key, gift.counted_at, gift.expires_at
                        )
                    },
                )?;
            }
        }
        Ok(())
    }

    /// After the drain: nothing outstanding, and every gift entry counted and expiring.
    pub fn nothing_outstanding(&self, records: &[Record]) -> Result<(), String> {
        self.checked("nothing outstanding after the drain");
        let items = self
            .block_on(self.ledger().all_outstanding(self.now))
            .map_err(|error| format!("all_outstanding failed: {error}"))?;
        ensure(items.is_empty(), || {
            format!("after the drain, outstanding: {items:?}")
        })?;
        for record in records {
            if let Record::Gift(gift) = record {
                ensure(gift.counted_at.is_some(), || {
                    format!(
                        "after the drain, the gift entry of {} under key {} is not marked counted",
                        gift.sender_id, gift.key
                    )
                })?;
            }
        }
        self.gifts_expire_once_counted(records)
    }
}
