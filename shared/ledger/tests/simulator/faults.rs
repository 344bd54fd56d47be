//! The fault-injecting store: the in-memory table behind a wrapper that, call by call and chosen
//! by the seed, lets the step's other operations run first (the interleaving), refuses reads and
//! commits as DynamoDB does under conflicts and throttling, loses the response of a commit that
//! applied, or stops the operation for good before or after its commit (a Lambda that crashed
//! or timed out), as the contract harness's `FaultyStore` does for single cases.
//!
//! Each operation gets its own handle with its own generator, so one operation's draws never
//! shift another's, and a crash stops exactly that operation: `exec` drops its future.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use coins_ledger::MemoryStore;
use coins_ledger::store::{Condition, Key, Query, Store, StoreError, Transaction, Write};
use coins_ledger::table::Record;

use crate::rng::Rng;
use crate::stats::Stats;

/// How often each fault happens, per mille of the calls it can hit. Drawn per seed.
#[derive(Clone, Copy, Debug, Default)]
pub struct FaultProfile {
    /// Before a store call, let the step's other operations run first (not a fault: this is
    /// what makes reads and commits of concurrent operations interleave).
    pub interleave: u32,
    pub read_throttled: u32,
    pub conflict: u32,
    pub write_throttled: u32,
    pub lost_response: u32,
    pub crash_before_commit: u32,
    pub crash_after_commit: u32,
    pub provider_unavailable: u32,
    pub provider_lost_response: u32,
    /// The provider acts, then answers ambiguously: a 2xx we cannot read, or nothing and then
    /// 401 for the next calls (the key rolled meanwhile), lookups included.
    pub provider_ambiguous: u32,
    /// Per step: the provider goes down for hours.
    pub provider_outage: u32,
    /// A stream record or webhook held back for later steps.
    pub delay: u32,
    /// A stream record or webhook delivered twice.
    pub duplicate: u32,
    /// A stream record that failed is dead-lettered (the mapping gave up on it) instead of
    /// delivered again: only the consumer's sweep finds its item then.
    pub dead_letter: u32,
}

impl FaultProfile {
    /// Each seed its own mix (swarm testing): some kinds off, some rare, some frequent, so
    /// combinations a uniform mix would make rare get runs of their own.
    pub fn draw(rng: &mut Rng) -> FaultProfile {
        let mut level = |levels: [u32; 4]| *rng.pick(&levels);
        FaultProfile {
            interleave: level([0, 200, 500, 800]),
            read_throttled: level([0, 0, 5, 20]),
            conflict: level([0, 10, 40, 100]),
            write_throttled: level([0, 10, 30, 80]),
            lost_response: level([0, 10, 40, 100]),
            crash_before_commit: level([0, 5, 20, 50]),
            crash_after_commit: level([0, 5, 20, 50]),
            provider_unavailable: level([0, 50, 150, 300]),
            provider_lost_response: level([0, 20, 80, 150]),
            provider_ambiguous: level([0, 10, 40, 100]),
            provider_outage: level([0, 0, 5, 20]),
            delay: level([0, 100, 300, 600]),
            duplicate: level([0, 50, 150, 300]),
            dead_letter: level([0, 50, 200, 500]),
        }
    }

    /// No faults and no interleaving: the sweep, and the drain once calm (it must end).
    pub fn none() -> FaultProfile {
        FaultProfile::default()
    }
}

/// What one operation's store calls draw from, and whether it has crashed.
pub struct OpFaults {
    rng: Mutex<Rng>,
    pub profile: FaultProfile,
    crashed: AtomicBool,
    stats: Arc<Mutex<Stats>>,
}

impl OpFaults {
    pub fn new(rng: Rng, profile: FaultProfile, stats: Arc<Mutex<Stats>>) -> Arc<OpFaults> {
        Arc::new(OpFaults {
            rng: Mutex::new(rng),
            profile,
            crashed: AtomicBool::new(false),
            stats,
        })
    }

    /// The operation's own generator (for choices of its own, such as the provider's faults).
    pub fn rng(&self) -> MutexGuard<'_, Rng> {
        self.rng.lock().expect("one thread per seed")
    }

    pub fn draw(&self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng().chance(per_mille)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().expect("one thread per seed")
    }

    /// The run's counters, for another handle of the same operation.
    pub fn stats_handle(&self) -> Arc<Mutex<Stats>> {
        self.stats.clone()
    }

    pub fn inject(&self, fault: &str) {
        self.stats().faults.add(fault, 1);
    }

    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::Relaxed)
    }

    /// Marks the operation crashed and never returns: `exec` drops it at its next poll.
    pub async fn crash(&self) -> Infallible {
        self.crashed.store(true, Ordering::Relaxed);
        std::future::pending().await
    }

    /// Lets the step's other operations run before this one goes on, when the seed says so.
    pub async fn interleave(&self) {
        if self.draw(self.profile.interleave) {
            YieldNow(false).await;
        }
    }
}

/// Pending once, then ready: hands the thread to the other operations of the step.
struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[derive(Clone, Copy)]
enum WriteFault {
    Conflict,
    Throttled,
    LostResponse,
    CrashBeforeCommit,
    CrashAfterCommit,
}

/// The in-memory table as one operation sees it, faults included.
#[derive(Clone)]
pub struct FaultyStore {
    inner: MemoryStore,
    op: Arc<OpFaults>,
}

impl FaultyStore {
    pub fn new(inner: MemoryStore, op: Arc<OpFaults>) -> FaultyStore {
        FaultyStore { inner, op }
    }

    async fn before_read(&self) -> Result<(), StoreError> {
        self.op.interleave().await;
        if self.op.draw(self.op.profile.read_throttled) {
            self.op.inject("store: read throttled (refused)");
            return Err(StoreError::Transient(
                "injected: ProvisionedThroughputExceededException".into(),
            ));
        }
        Ok(())
    }

    /// One draw decides the fault of a write, if any.
    fn write_fault(&self) -> Option<WriteFault> {
        let profile = &self.op.profile;
        let mut draw = self.op.rng().below(1000) as u32;
        for (rate, fault) in [
            (profile.conflict, WriteFault::Conflict),
            (profile.write_throttled, WriteFault::Throttled),
            (profile.lost_response, WriteFault::LostResponse),
            (profile.crash_before_commit, WriteFault::CrashBeforeCommit),
            (profile.crash_after_commit, WriteFault::CrashAfterCommit),
        ] {
            if draw < rate {
                return Some(fault);
            }
            draw -= rate;
        }
        None
    }

    fn throttled(&self) -> StoreError {
        self.op.inject("store: write throttled (refused)");
        StoreError::Transient("injected: ThrottlingException".into())
    }

    fn lost(&self) -> StoreError {
        self.op
            .inject("store: response lost after the write applied");
        StoreError::Ambiguous("injected: the response was lost".into())
    }
}

impl Store for FaultyStore {
    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        self.before_read().await?;
        self.inner.get(key).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        self.before_read().await?;
        self.inner.query(query).await
    }

    async fn query_keys(&self, query: &Query) -> Result<Vec<Key>, StoreError> {
        self.before_read().await?;
        self.inner.query_keys(query).await
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Record>>, StoreError> {
        self.before_read().await?;
        self.inner.get_many(keys).await
    }

    async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        self.op.interleave().await;
        match self.write_fault() {
            None => self.inner.commit(transaction).await,
            Some(WriteFault::Conflict) => {
                self.op.inject("store: transaction conflict (refused)");
                Err(StoreError::Transient(
                    "injected: TransactionCanceledException [TransactionConflict]".into(),
                ))
            }
            Some(WriteFault::Throttled) => Err(self.throttled()),
            Some(WriteFault::LostResponse) => {
                self.inner.commit(transaction).await?;
                Err(self.lost())
            }
            Some(WriteFault::CrashBeforeCommit) => {
                self.op.inject("store: crash between read and commit");
                match self.op.crash().await {}
            }
            Some(WriteFault::CrashAfterCommit) => {
                // Whether or not its conditions held, the process is gone before it hears.
                let _applied = self.inner.commit(transaction).await;
                self.op.inject("store: crash after the commit applied");
                match self.op.crash().await {}
            }
        }
    }

    /// A batch write is not atomic: a crash leaves the first part of it written.
    async fn put_many(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.op.interleave().await;
        let fault = self.write_fault();
        if let Some(WriteFault::Conflict | WriteFault::Throttled) = fault {
            return Err(self.throttled());
        }
        let written = match fault {
            Some(WriteFault::CrashBeforeCommit) => self.op.rng().index(records.len() + 1),
            _ => records.len(),
        };
        for record in records.into_iter().take(written) {
            let put = Transaction::of([Write::put(record, Condition::Always)]);
            self.inner.commit(put).await?;
        }
        match fault {
            Some(WriteFault::LostResponse) => Err(self.lost()),
            Some(WriteFault::CrashBeforeCommit) => {
                self.op.inject("store: batch write cut short by a crash");
                match self.op.crash().await {}
            }
            Some(WriteFault::CrashAfterCommit) => {
                self.op.inject("store: crash after the commit applied");
                match self.op.crash().await {}
            }
            _ => Ok(()),
        }
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.scan_all().await
    }
}
