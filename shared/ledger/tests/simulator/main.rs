//! A deterministic fault simulator for the ledger, in the spirit of TigerBeetle's VOPR.
//!
//! From a seed, a small world of fans and creators buys coins (payments that succeed, fail,
//! come from elsewhere, twice, late, replayed or out of order), sends gifts, asks for refunds,
//! has payments disputed (and some disputes won), buys in the app and redeems its store
//! transactions, which the store may refund (and reverse the refund) before or after the
//! redemption (`store_ops`), and requests payouts, while the clock runs
//! (refund windows close, diamonds leave their hold) and the table's stream feeds the consumers
//! (earnings, refund and payout dispatch to a simulated provider, lot closure; a record that
//! keeps failing is dead-lettered, and the consumers' scheduled sweeps re-drive what they still
//! owe from the outstanding index). The in-memory store behind a fault-injecting wrapper
//! refuses, conflicts, throttles, loses responses and crashes operations between read and
//! commit; stream records and webhooks arrive late, twice and reordered; clients retry with the
//! same idempotency keys. Every invariant is checked after every step (`check`); a failure
//! prints its seed, step and the command replaying it.
//!
//! ```sh
//! cargo test -p coins-ledger --test simulator -- --nocapture      # the CI run, with its summary
//! SIM_SEED=42 SIM_TRACE=1 cargo test -p coins-ledger --test simulator -- --nocapture  # replay
//! SIM_OPS=10000000 cargo test -p coins-ledger --test simulator -- --nocapture  # a long run
//! ```
//!
//! - `SIM_OPS`: operations (ledger calls) in all, default 100,000: seeds 1, 2, … of
//!   `SIM_SEED_OPS` (default 1,000) each; `SIM_FIRST_SEED` starts elsewhere.
//! - `SIM_SEED`: one seed only; `SIM_TRACE=1` prints its trace as it runs.
//!
//! Seeds run in parallel, one thread per core; each seed is a single-threaded world on its own
//! paused tokio clock, so the same seed gives the same trace (`a_seed_replays_its_trace`).

mod answers;
mod check;
mod exec;
mod faults;
mod ops;
mod provider;
mod rng;
mod sim;
mod stats;
mod store_ops;
mod stream;
mod sweeps;
mod world;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::sim::{Failure, Outcome, Sim};
use crate::stats::{Stats, Summary};

/// Which seeds to run, and how long each.
struct Plan {
    first_seed: u64,
    seeds: u64,
    ops_per_seed: u64,
    echo: bool,
}

fn env(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

impl Plan {
    fn from_env() -> Plan {
        let ops_per_seed = env("SIM_SEED_OPS").unwrap_or(1_000).max(1);
        let echo = env("SIM_TRACE") == Some(1);
        if let Some(seed) = env("SIM_SEED") {
            return Plan {
                first_seed: seed,
                seeds: 1,
                ops_per_seed,
                echo,
            };
        }
        let ops = env("SIM_OPS").unwrap_or(100_000);
        Plan {
            first_seed: env("SIM_FIRST_SEED").unwrap_or(1),
            seeds: ops.div_ceil(ops_per_seed),
            ops_per_seed,
            echo,
        }
    }

    fn seeds(&self) -> String {
        match self.seeds {
            1 => self.first_seed.to_string(),
            n => format!("{}..={}", self.first_seed, self.first_seed + n - 1),
        }
    }
}

/// One seed, its panics turned into a failure that names the seed.
fn run_seed(plan: &Plan, seed: u64, ops: u64) -> Result<Outcome, Box<Failure>> {
    let sim = || Sim::new(seed, plan.echo).run(ops);
    match catch_unwind(AssertUnwindSafe(sim)) {
        Ok(outcome) => outcome,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            Err(Box::new(Failure {
                seed,
                step: 0,
                ops: 0,
                message: format!("panicked: {message}"),
                tail: Vec::new(),
            }))
        }
    }
}

fn report(failure: &Failure, plan: &Plan) -> String {
    let mut text = format!(
        "seed {} broke an invariant at step {} ({} operations):\n  {}\nlast lines of its trace:\n",
        failure.seed, failure.step, failure.ops, failure.message
    );
    for line in &failure.tail {
        text.push_str(&format!("  {line}\n"));
    }
    text.push_str(&format!(
        "replay it: SIM_SEED={} SIM_SEED_OPS={} SIM_TRACE=1 cargo test -p coins-ledger --test \
         simulator -- --nocapture",
        failure.seed, plan.ops_per_seed,
    ));
    text
}

#[test]
fn the_ledger_keeps_every_invariant_under_faults() {
    let plan = Plan::from_env();
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let total = Mutex::new(Stats::default());
    let failures = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(plan.seeds as usize);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= plan.seeds {
                        break;
                    }
                    match run_seed(&plan, plan.first_seed + index, plan.ops_per_seed) {
                        Ok(outcome) => total.lock().unwrap().merge(&outcome.stats),
                        Err(failure) => {
                            stop.store(true, Ordering::Relaxed);
                            failures.lock().unwrap().push(failure);
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    if let Some(failure) = failures.iter().min_by_key(|failure| failure.seed) {
        panic!("{}", report(failure, &plan));
    }
    let stats = total.into_inner().unwrap();
    let summary = Summary {
        stats: &stats,
        seeds: &plan.seeds(),
        wall: started.elapsed(),
    };
    println!("{summary}");
}

#[test]
fn a_seed_replays_its_trace() {
    let plan = Plan {
        echo: false,
        ..Plan::from_env()
    };
    for seed in [7, 8, 9] {
        let run =
            || run_seed(&plan, seed, 300).unwrap_or_else(|failure| panic!("{}", failure.message));
        let (first, again) = (run(), run());
        assert_eq!(first.digest, again.digest, "seed {seed} ran two ways");
        assert_eq!(first.stats, again.stats, "seed {seed} ran two ways");
    }
}
