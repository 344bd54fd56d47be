//! One seeded run: a small world of fans and creators, a clock, the provider and the table's
//! streams, driven step by step. Each step advances the clock, lets TTL remove expired lot
//! markers (late), turns the change feed into stream records, chooses a few operations (client
//! requests, retries and replays, webhooks, stream deliveries, sweeps, admin calls), runs them
//! concurrently against the faulty store, checks what each answered, then checks every
//! invariant over the whole table (`check`). After the budget of operations, a drain delivers
//! everything still pending and runs the consumers' sweeps until nothing is outstanding (the
//! last rounds without faults, the provider back up; `sweeps`), and the final checks run.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, PurchaseId, RefundId, UserId};
use coins_ledger::store::{Condition, Key, Query, SortKey, Store, Transaction, Write};
use coins_ledger::table::{Record, keys};
use coins_ledger::{Change, ChangeKind, Ledger, LedgerConfig, LotMarker, MemoryStore};
use coins_rules::{BillingLocation, Zone};
use jiff::{SignedDuration, Timestamp};

use crate::check::ensure;
use crate::exec::{self, Op, Ran};
use crate::faults::{FaultProfile, FaultyStore, OpFaults};
use crate::ops::{self, Answer, Ctx, Delivery, Done, Request, Stream, Webhook};
use crate::provider::{CLOSED_ACCOUNT_PREFIX, Provider};
use crate::rng::Rng;
use crate::stats::Stats;
use crate::stream::Deliveries;
use crate::sweeps;
use crate::world::PLACES;

/// Why a run failed, and where.
pub struct Failure {
    pub seed: u64,
    pub step: u64,
    pub ops: u64,
    pub message: String,
    /// The trace's last lines.
    pub tail: Vec<String>,
}

/// What a run did: its counters and a digest of its whole trace.
pub struct Outcome {
    pub stats: Stats,
    pub digest: u64,
}

/// The run's trace: every step and operation in words. Only a digest and the last lines are
/// kept (all of it is printed as it goes with `echo`); ids the ledger mints are random, so
/// lines name things by the simulator's own names.
pub struct Trace {
    digest: u64,
    tail: VecDeque<String>,
    echo: bool,
}

const TRACE_TAIL: usize = 60;

impl Trace {
    fn line(&mut self, line: String) {
        // FNV-1a: a stable digest to compare two runs of one seed.
        for byte in line.bytes().chain([b'\n']) {
            self.digest = (self.digest ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
        }
        if self.echo {
            println!("{line}");
        }
        if self.tail.len() == TRACE_TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }
}

pub struct User {
    pub id: UserId,
    pub zone: Zone,
    pub billing: BillingLocation,
    pub creator: bool,
}

/// A purchase a client was told of (its purchase request answered), with its payment.
pub struct Purchase {
    pub id: PurchaseId,
    pub user: usize,
    pub payment: PaymentIntentId,
    pub amount_minor: i64,
    pub currency: String,
    pub total_coins: u64,
    pub bought_at: Timestamp,
    pub disputed: bool,
    /// The customer pays a second time once the first payment is credited.
    pub pays_twice: bool,
}

/// Every request sent under one idempotency key, and the first answer.
#[derive(Default)]
pub struct KeyUse {
    pub bodies: BTreeSet<String>,
    pub first: Option<(String, Answer)>,
}

/// Effects the clients were told of: each must stay in the table.
#[derive(Default)]
pub struct Told {
    /// Gift transaction id → sender and coins.
    pub gifts: BTreeMap<String, (UserId, u64)>,
    pub credited: BTreeSet<usize>,
    pub refunds: BTreeMap<usize, RefundId>,
    /// Payout id → creator and diamonds.
    pub payouts: BTreeMap<String, (UserId, u64)>,
}

/// What one operation of a step does.
#[derive(Clone)]
pub enum Action {
    Ask(Box<Request>),
    Hook(Webhook),
    Consume(Stream, Vec<Delivery>),
    Sweep,
    /// A consumer's scheduled sweep of what it still owes (`sweeps`); `true`: the earnings
    /// sweep as `count_outstanding_gifts` runs it, only without faults (the drain).
    Owed(Stream, bool),
    Lift(usize),
    Limit(usize, Option<u64>),
}

pub struct Sim {
    pub seed: u64,
    pub rng: Rng,
    pub profile: FaultProfile,
    pub store: MemoryStore,
    pub config: LedgerConfig,
    pub runtime: tokio::runtime::Runtime,
    pub stats: Arc<Mutex<Stats>>,
    pub trace: Trace,
    pub step: u64,
    pub now: Timestamp,
    /// The change feed is read up to this sequence number.
    pub fed: u64,
    pub max_ops_per_step: u64,
    pub users: Vec<User>,
    pub admin: UserId,
    pub purchases: Vec<Purchase>,
    pub purchase_names: HashMap<PurchaseId, usize>,
    pub keys: BTreeMap<(UserId, IdempotencyKey), KeyUse>,
    /// Keys used, and purchases and payouts made, by user and kind of request.
    pub keys_used: BTreeMap<(UserId, &'static str), u64>,
    pub made: BTreeMap<(UserId, &'static str), u64>,
    /// Requests whose client will try again.
    pub waiting: Vec<Request>,
    /// Answered requests, to replay.
    pub answered: VecDeque<Request>,
    pub next_request: usize,
    pub next_event: usize,
    pub provider: Arc<Mutex<Provider>>,
    pub webhooks: Deliveries<Webhook>,
    pub streams: [Deliveries<Delivery>; 4],
    pub told: Told,
    /// Each provider event's first effect.
    pub events: BTreeMap<EventId, String>,
    /// Store transactions (`store_ops`), by the simulator's name `s<n>`; their names by
    /// transaction id and by the purchase a credit answered.
    pub store_txns: Vec<crate::store_ops::StoreTxn>,
    pub store_txn_names: HashMap<String, usize>,
    pub store_purchase_names: HashMap<PurchaseId, usize>,
}

impl Sim {
    pub fn new(seed: u64, echo: bool) -> Sim {
        let mut rng = Rng::new(seed);
        let profile = FaultProfile::draw(&mut rng);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("a start");
        let now = start + SignedDuration::from_mins(rng.below(365 * 24 * 60) as i64);
        let creators = rng.range(1..=3) as usize;
        let fans = rng.range(3..=10) as usize;
        let users = (0..creators + fans)
            .map(|index| {
                let (zone, billing) = *rng.pick(&PLACES);
                let creator = index < creators;
                let name = if creator {
                    format!("creator-{index}")
                } else {
                    format!("fan-{index}")
                };
                User {
                    id: UserId::new(name).expect("a user id"),
                    zone: Zone::get(zone).expect("a zone"),
                    billing: billing.parse().expect("a billing location"),
                    creator,
                }
            })
            .collect();
        // Up to this many operations at once (one, now and then). Each step ends with a check
        // of the whole table, so steps of one operation would spend the run mostly checking.
        let max_ops_per_step = *rng.pick(&[4, 8, 16, 24]);
        Sim {
            seed,
            rng,
            profile,
            store: MemoryStore::with_change_feed(),
            // No backoff: on the paused clock a zero sleep still yields in a fixed order, and
            // a jittered one would order retries by an unseeded draw.
            config: LedgerConfig {
                backoff_base: Duration::ZERO,
                backoff_cap: Duration::ZERO,
                ..LedgerConfig::default()
            },
            runtime,
            stats: Arc::default(),
            trace: Trace {
                digest: 0xcbf2_9ce4_8422_2325,
                tail: VecDeque::new(),
                echo,
            },
            step: 0,
            now,
            fed: 0,
            max_ops_per_step,
            users,
            admin: UserId::new("support-1").expect("an admin id"),
            purchases: Vec::new(),
            purchase_names: HashMap::new(),
            keys: BTreeMap::new(),
            keys_used: BTreeMap::new(),
            made: BTreeMap::new(),
            waiting: Vec::new(),
            answered: VecDeque::new(),
            next_request: 0,
            next_event: 0,
            provider: Arc::default(),
            webhooks: Deliveries::new("Stripe webhooks"),
            streams: [
                Deliveries::dead_lettering("earnings stream"),
                Deliveries::dead_lettering("refund-dispatch stream"),
                Deliveries::dead_lettering("payout-dispatch stream"),
                Deliveries::new("refund-expiry stream"),
            ],
            told: Told::default(),
            events: BTreeMap::new(),
            store_txns: Vec::new(),
            store_txn_names: HashMap::new(),
            store_purchase_names: HashMap::new(),
        }
    }

    /// Runs the seed: setup, `ops` operations, the drain and the final checks.
    pub fn run(mut self, ops: u64) -> Result<Outcome, Box<Failure>> {
        let ran = self.setup().and_then(|()| {
            while self.ops() < ops {
                self.step()?;
            }
            self.drain()
        });
        match ran {
            Ok(()) => {
                let mut stats = self.stats.lock().expect("one thread per seed").clone();
                stats.seeds = 1;
                stats.steps = self.step;
                Ok(Outcome {
                    stats,
                    digest: self.trace.digest,
                })
            }
            Err(mut message) => {
                // The ledger's ids in the simulator's names too, to read it beside the trace.
                for (id, name) in &self.purchase_names {
                    message = message.replace(id.as_str(), &format!("p{name} ({id})"));
                }
                Err(Box::new(Failure {
                    seed: self.seed,
                    step: self.step,
                    ops: self.ops(),
                    message,
                    tail: self.trace.tail.into_iter().collect(),
                }))
            }
        }
    }

    pub fn ops(&self) -> u64 {
        self.stats.lock().expect("one thread per seed").ops.total()
    }

    pub fn trace(&mut self, line: String) {
        self.trace.line(line);
    }

    /// Counts one more check of an invariant.
    pub fn checked(&self, invariant: &str) {
        let mut stats = self.stats.lock().expect("one thread per seed");
        stats.invariants.add(invariant, 1);
    }

    /// The table as it is, read outside any operation (the simulator's own view).
    pub fn peek(&self, key: &Key) -> Option<Record> {
        self.runtime
            .block_on(self.store.get(key))
            .expect("memory reads do not fail")
    }

    /// A ledger over the table itself: no faults (audits, setup).
    pub fn ledger(&self) -> Ledger<MemoryStore> {
        Ledger::with_config(self.store.clone(), self.config.clone())
    }

    pub fn block_on<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// Creators enrolled, most with a payout account (one that Stripe refuses, now and then).
    fn setup(&mut self) -> Result<(), String> {
        let profile = self.profile;
        self.trace(format!(
            "seed {}: {} users, up to {} operations a step, {profile:?}, start {}",
            self.seed,
            self.users.len(),
            self.max_ops_per_step,
            self.now
        ));
        let ledger = self.ledger();
        for index in 0..self.users.len() {
            if !self.users[index].creator {
                continue;
            }
            let creator = self.users[index].id.clone();
            let account = match self.rng.below(6) {
                0 => None,
                1 => Some(format!("{CLOSED_ACCOUNT_PREFIX}_{index}")),
                _ => Some(format!("acct_{index}")),
            };
            self.count_op("enroll_creator");
            self.block_on(ledger.enroll_creator(&creator, self.now))
                .map_err(|error| format!("enrolling {creator}: {error}"))?;
            if let Some(account) = &account {
                let account =
                    coins_ids::ConnectedAccountId::new(account.clone()).expect("an account id");
                self.count_op("set_payout_account");
                self.block_on(ledger.set_payout_account_by(&creator, &account, None, self.now))
                    .map_err(|error| format!("setting {creator}'s account: {error}"))?;
            }
            self.trace(format!("{creator} enrolled, payout account {account:?}"));
        }
        Ok(())
    }

    fn count_op(&self, name: &str) {
        self.stats
            .lock()
            .expect("one thread per seed")
            .ops
            .add(name, 1);
    }

    fn fault(&self, name: &str) {
        self.stats
            .lock()
            .expect("one thread per seed")
            .faults
            .add(name, 1);
    }

    fn step(&mut self) -> Result<(), String> {
        self.step += 1;
        self.advance_clock();
        self.remove_expired_markers(true);
        self.feed()?;
        let wanted = 1 + self.rng.below(self.max_ops_per_step) as usize;
        let mut actions = Vec::new();
        // Some choices find nothing to do (no purchase to refund yet): draw again, a little.
        for _ in 0..wanted * 3 {
            if actions.len() == wanted {
                break;
            }
            if let Some(action) = self.choose() {
                actions.push(action);
            }
        }
        self.run_step(actions)?;
        self.feed()?;
        self.check()
    }

    /// Mostly minutes, sometimes hours, now and then days (about 3 hours a step): refund
    /// windows (15 days) and diamond holds (7 days) end within a run of 1,000 operations.
    fn advance_clock(&mut self) {
        let minutes = match self.rng.weighted(&[650, 280, 40, 30]) {
            0 => self.rng.range(0..=10),
            1 => self.rng.range(10..=180),
            2 => self.rng.range(180..=1440),
            _ => self.rng.range(1440..=7200),
        };
        let seconds = minutes * 60 + self.rng.below(60);
        self.now += SignedDuration::from_secs(seconds as i64);
        let down = self
            .provider
            .lock()
            .expect("one thread per seed")
            .outage_until
            .is_some_and(|until| self.now < until);
        if !down && self.rng.chance(self.profile.provider_outage) {
            let until = self.now + SignedDuration::from_hours(self.rng.range(1..=48) as i64);
            self.provider
                .lock()
                .expect("one thread per seed")
                .outage_until = Some(until);
            self.fault("provider: outage began");
            self.trace(format!("provider down until {until}"));
        }
        self.trace(format!("step {} at {}", self.step, self.now));
    }

    /// DynamoDB's TTL: expired lot markers are removed, each some steps late (`lagging`), or
    /// all at once. In the simulator's purchase order, so the stream's order is the seed's.
    pub fn remove_expired_markers(&mut self, lagging: bool) {
        let now_s = self.now.as_second();
        let mut expired: Vec<((usize, usize), Key)> = Vec::new();
        for user in &self.users {
            let query = Query::table(
                keys::user_pk(&user.id),
                SortKey::BeginsWith(keys::MARKER_SK_PREFIX.to_owned()),
            );
            let markers = self
                .runtime
                .block_on(self.store.query(&query))
                .expect("memory reads do not fail");
            for record in markers {
                if let Record::LotMarker(marker) = &record
                    && marker.expires_at < now_s
                {
                    // Only a payment or a store transaction the simulator made credits a lot.
                    let name = self.marker_name(&marker.purchase_id);
                    expired.push((name, record.key()));
                }
            }
        }
        expired.sort();
        for (_, key) in expired {
            if lagging && !self.rng.chance(400) {
                continue;
            }
            let delete = Transaction::of([Write::Delete {
                key,
                condition: Condition::Always,
            }]);
            self.block_on(self.store.commit(delete))
                .expect("a plain delete applies");
        }
    }

    /// The change feed since the last read, as the table's stream carries it: each new gift
    /// entry, purchase and payout checked against the keys that asked for it, and what the
    /// consumers' filters pass queued for them.
    pub fn feed(&mut self) -> Result<(), String> {
        let changes = self.store.changes_after(self.fed);
        let Some(last) = changes.last().map(|change| change.sequence) else {
            return Ok(());
        };
        self.store.acknowledge(last);
        self.fed = last;
        self.checked("one effect per idempotency key");
        let mut deliveries = Vec::new();
        for change in changes {
            self.one_effect_per_key(&change)?;
            deliveries.push(match (change.kind, change.new, change.old) {
                // The earnings filter: entries not counted yet (its own mark does not return).
                (_, Some(Record::Gift(gift)), _) if gift.counted_at.is_none() => {
                    (Stream::Earnings, Delivery::Gift(Box::new(gift)))
                }
                (ChangeKind::Insert, Some(Record::Refund(_)), _) => {
                    (Stream::RefundDispatch, Delivery::Instruction(change.key))
                }
                (ChangeKind::Insert, Some(Record::Payout(_)), _) => {
                    (Stream::PayoutDispatch, Delivery::Payout(change.key))
                }
                (ChangeKind::Remove, None, Some(Record::LotMarker(marker))) => (
                    Stream::RefundExpiry,
                    Delivery::Marker(LotMarker {
                        user_id: marker.user_id,
                        purchase_id: marker.purchase_id,
                    }),
                ),
                _ => continue,
            });
        }
        let mut stats = self.stats.lock().expect("one thread per seed");
        for (stream, delivery) in deliveries {
            self.streams[stream as usize].push(
                delivery,
                self.step,
                &mut self.rng,
                &self.profile,
                &mut stats.faults,
            );
        }
        Ok(())
    }

    /// A key has one effect: a gift entry is what a request with its key asked, and is never
    /// replaced (no client here reuses a key once its record expired); a user has no more
    /// purchases or payouts than keys that asked for one.
    fn one_effect_per_key(&mut self, change: &Change) -> Result<(), String> {
        let (user, kind) = match (change.kind, &change.new) {
            (ChangeKind::Insert, Some(Record::Gift(gift))) => {
                let details = &gift.details;
                let asked = ops::gift_body(
                    details.gift_id.as_str(),
                    details.quantity,
                    &details.recipient_id,
                );
                let key = (gift.sender_id.clone(), gift.key.clone());
                let sent = self
                    .keys
                    .get(&key)
                    .is_some_and(|key_use| key_use.bodies.contains(&asked));
                return ensure(sent, || {
                    format!(
                        "gift entry of {} under key {} is `{asked}`, which no request with it asked",
                        gift.sender_id, gift.key
                    )
                });
            }
            (ChangeKind::Modify, Some(Record::Gift(gift))) => {
                // Only the count's mark rewrites an entry: the same gift, now counted.
                let unmarked = |entry: &coins_ledger::table::GiftRecord| {
                    let mut entry = entry.clone();
                    (entry.counted_at, entry.expires_at) = (None, None);
                    entry
                };
                let marked = match &change.old {
                    Some(Record::Gift(old)) => {
                        gift.counted_at.is_some() && unmarked(old) == unmarked(gift)
                    }
                    _ => false,
                };
                return ensure(marked, || {
                    format!(
                        "the gift entry of {} under key {} was replaced",
                        gift.sender_id, gift.key
                    )
                });
            }
            (ChangeKind::Insert, Some(Record::Purchase(purchase))) => (&purchase.user_id, "buy"),
            (ChangeKind::Insert, Some(Record::Payout(payout))) => (&payout.creator_id, "payout"),
            _ => return Ok(()),
        };
        let made = self.made.entry((user.clone(), kind)).or_default();
        *made += 1;
        let keys = self
            .keys_used
            .get(&(user.clone(), kind))
            .copied()
            .unwrap_or(0);
        let made = *made;
        ensure(made <= keys, || {
            format!("{user} has {made} {kind} records from {keys} keys")
        })
    }

    fn ctx(&mut self, profile: FaultProfile) -> Ctx {
        let op = OpFaults::new(self.rng.fork(), profile, self.stats.clone());
        let store = FaultyStore::new(self.store.clone(), op.clone());
        Ctx {
            ledger: Ledger::with_config(store, self.config.clone()),
            op,
            provider: self.provider.clone(),
            now: self.now,
        }
    }

    fn launch(&mut self, action: Action) -> Op<Done> {
        // The sweep visits lots in the index's order, which hashes the ledger's random
        // purchase ids: run without faults or yields, its outcome is the same in any order.
        let profile = match action {
            Action::Sweep | Action::Owed(Stream::Earnings, true) => FaultProfile::none(),
            _ => self.profile,
        };
        let ctx = self.ctx(profile);
        let faults = ctx.op.clone();
        let future: std::pin::Pin<Box<dyn std::future::Future<Output = Done>>> = match action {
            Action::Ask(request) => {
                let key = (request.caller.clone(), request.key.clone());
                let key_use = self.keys.entry(key).or_insert_with(|| {
                    let kind = (request.caller.clone(), request.ask.kind());
                    *self.keys_used.entry(kind).or_default() += 1;
                    KeyUse::default()
                });
                key_use.bodies.insert(request.ask.body());
                Box::pin(ops::ask(ctx, request))
            }
            Action::Hook(webhook) => Box::pin(ops::hook(ctx, webhook)),
            Action::Consume(stream, batch) => Box::pin(ops::consume(ctx, stream, batch)),
            Action::Sweep => Box::pin(ops::sweep(ctx)),
            Action::Owed(stream, exact) => {
                Box::pin(sweeps::sweep_owed(ctx, stream, self.store.clone(), exact))
            }
            Action::Lift(user) => Box::pin(ops::lift(ctx, self.users[user].id.clone())),
            Action::Limit(user, coins) => {
                let user = &self.users[user];
                Box::pin(ops::limit(ctx, user.id.clone(), user.zone.clone(), coins))
            }
        };
        Op { faults, future }
    }

    pub fn run_step(&mut self, actions: Vec<Action>) -> Result<(), String> {
        let ops: Vec<Op<Done>> = actions
            .iter()
            .map(|action| self.launch(action.clone()))
            .collect();
        let results = exec::run(&self.runtime, ops);
        for (index, (action, ran)) in actions.into_iter().zip(results).enumerate() {
            match ran {
                Ran::Done(done) => self.apply(index, done)?,
                Ran::Crashed => self.crashed(index, action),
            }
        }
        Ok(())
    }

    /// A crashed operation: its client sees a timeout and tries again later; the stream and
    /// the webhooks deliver its records again.
    fn crashed(&mut self, index: usize, action: Action) {
        let mut stats = self.stats.lock().expect("one thread per seed");
        let (step, profile) = (self.step, self.profile);
        let what = match action {
            Action::Ask(request) => {
                let what = format!("r{} {}", request.name, request.ask.call());
                self.waiting.push(*request);
                what
            }
            Action::Hook(webhook) => {
                let what = format!("webhook {}", webhook.event_id());
                let redo = vec![webhook];
                self.webhooks
                    .redeliver(redo, step, &mut self.rng, &profile, &mut stats.faults);
                what
            }
            Action::Consume(stream, batch) => {
                let what = format!("{stream:?} of {} records", batch.len());
                self.streams[stream as usize].redeliver(
                    batch,
                    step,
                    &mut self.rng,
                    &profile,
                    &mut stats.faults,
                );
                what
            }
            Action::Sweep => "sweep".to_owned(),
            // Its schedule invokes it again.
            Action::Owed(stream, _) => format!("{stream:?} sweep"),
            Action::Lift(user) | Action::Limit(user, _) => {
                format!("admin call for {}", self.users[user].id)
            }
        };
        drop(stats);
        self.trace(format!("  op{index} {what}: crashed"));
    }

    /// Runs the scheduled sweep once, without faults (the drain's end).
    pub fn sweep_now(&mut self) -> Result<(), String> {
        self.run_step(vec![Action::Sweep])?;
        self.feed()
    }
}
