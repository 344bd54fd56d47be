//! `load`: the load test of issue #14. Run it with `scripts/load-test`, which starts DynamoDB
//! Local and builds this and the local server in release; it is no part of `scripts/test`.
//!
//! It starts the `local-server` binary built beside it, on 127.0.0.1 over a fresh table on
//! DynamoDB Local (`DYNAMODB_ENDPOINT`), and then:
//!
//! 1. **setup**, not measured: a creator enrolls; each fan buys the coins for the gifts the
//!    schedule has them send, then one small purchase per refund the schedule has them ask for
//!    (coins are spent oldest lot first, so no gift touches those, and each refund finds its
//!    purchase untouched);
//! 2. **the timed phase**: operations (gifts of roses from many fans to the one creator,
//!    wallet reads, buys, refunds) arrive at a fixed rate for a fixed time, whatever the server
//!    answers (an open loop: a slow answer does not slow the arrivals), and each request's
//!    latency runs from when it was due, so waiting for a free worker counts too (no
//!    coordinated omission). At most `--workers` requests are in flight;
//! 3. **drain**: waits for the stream consumers to count every gift and send every refund;
//! 4. **audit**: the ledger's conservation audit over the whole table (coins, and the
//!    creator's diamonds), and its totals against what the API acknowledged.
//!
//! It prints a markdown table per request and overall (sent, answered per second, p50, p99 and
//! max latency, answers by status and problem code, errors), and exits 1 on any error (a 5xx, a
//! transport failure, an answer the workload never provokes), a backlog that does not drain, or
//! an audit that does not balance.

mod audit;
mod report;
mod workload;

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::error::DisplayErrorContext;
use clap::Parser;
use clap::builder::RangedU64ValueParser;
use coins_ledger::Ledger;
use coins_ledger::audit::AuditReport;
use coins_ledger::dynamo::{DynamoStore, local_config};
use e2e_tests::{LocalServer, User, dynamodb, flows};
use tokio::runtime::Runtime;

use crate::audit::Drained;
use crate::workload::{
    BUY_PACKAGE, Bought, Client, FUNDING_PACKAGE, GIVE_UP_AFTER, Mix, Op, OpKind, Outcome, Planned,
    ROSE_COINS, Recorder, Totals,
};

/// Buys in flight during the setup: enough to keep DynamoDB Local busy, few enough that none
/// waits long behind the others (64 at once made a purchase time out on a busy machine).
const SETUP_THREADS: usize = 8;

#[derive(Parser)]
#[command(
    name = "load",
    about = "A mixed workload at a fixed rate against the local server on DynamoDB Local, then the conservation audit"
)]
struct Cli {
    /// Operations started per second; a buy is three requests (quote, purchase, payment). The
    /// local server on DynamoDB Local kept up with the default on 2 cores, and fell behind from
    /// about 100.
    #[arg(long = "rate", default_value_t = 50.0, value_parser = positive_rate)]
    rate_per_s: f64,
    /// Length of the timed phase in seconds (the fans' tokens live an hour).
    #[arg(long = "duration", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=1800))]
    duration_s: u64,
    /// Fans, all gifting the one creator.
    #[arg(long, default_value_t = 200, value_parser = RangedU64ValueParser::<usize>::new().range(1..=100_000))]
    fans: usize,
    /// Shares of the operations, as weights.
    #[arg(long, default_value = "gift=50,wallet=25,buy=15,refund=10")]
    mix: Mix,
    /// Requests in flight at most, one connection each.
    #[arg(long, default_value_t = 64, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    workers: usize,
    /// Seed of the operations' order, fans and gift sizes: the same flags, the same workload.
    #[arg(long, default_value_t = 14)]
    seed: u64,
    /// How long the stream consumers may take to catch up after the timed phase, in seconds.
    #[arg(long = "drain-timeout", default_value_t = 120)]
    drain_timeout_s: u64,
}

fn positive_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate > 0.0 && rate <= 100_000.0 => Ok(rate),
        _ => Err("a number of operations per second, above 0 and at most 100,000".into()),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The whole run; whether it passed.
fn run(cli: &Cli) -> Result<bool, String> {
    let (fans, workers) = (cli.fans, cli.workers);
    let duration = Duration::from_secs(cli.duration_s);
    let endpoint = dynamodb::endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("a Tokio runtime: {error}"))?;
    let dynamo = aws_sdk_dynamodb::Client::new(&runtime.block_on(local_config(&endpoint)));
    warn_if_used(&runtime, &dynamo, &endpoint)?;
    let table = dynamodb::fresh_table_name("load");
    let server = LocalServer::binary(&[
        "--dynamodb-endpoint",
        &endpoint,
        "--create-table",
        "--table-name",
        &table,
    ]);
    let plan = workload::schedule(cli.rate_per_s, duration, &cli.mix, fans, cli.seed);
    let creator = User::new("creator");
    let tokens = (0..fans).map(|_| User::new("fan").token()).collect();
    let client = Client::new(server.api().base_url(), workers, tokens, &creator.sub);
    println!(
        "local server {} on DynamoDB Local {endpoint}, table {table}; {} CPUs",
        server.api().base_url(),
        thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let setup_start = Instant::now();
    flows::enroll(&server, &creator);
    let (refundable, mut acknowledged) = setup(&client, &plan, fans)?;
    println!(
        "setup (not measured): 1 creator, {fans} fans funded with {}, {} untouched {BUY_PACKAGE} \
         purchases to refund, in {:.1} s",
        FUNDING_PACKAGE.0,
        refundable.iter().map(VecDeque::len).sum::<usize>(),
        setup_start.elapsed().as_secs_f64()
    );

    println!(
        "timed phase: {} operations at {} per second for {} s ({}), {fans} fans gifting 1 \
         creator, at most {workers} requests in flight",
        plan.len(),
        cli.rate_per_s,
        cli.duration_s,
        cli.mix
    );
    let offered_per_s =
        plan.iter().map(|op| op.kind.requests()).sum::<usize>() as f64 / duration.as_secs_f64();
    let (recorded, elapsed) = drive(&client, operations(plan, refundable), workers);
    let sent = recorded
        .samples
        .iter()
        .filter(|sample| sample.outcome != Outcome::NotSent)
        .count();
    acknowledged.add(recorded.acknowledged);
    // Rates over the schedule's length at least: answers all in before its end took that long.
    let window = elapsed.max(duration);
    let (table_text, errors) = report::table(&recorded.samples, window);
    println!();
    print!("{table_text}");
    println!();
    // An open loop keeps the schedule whatever the answers: a server that cannot keep up shows
    // as a phase that ends late, not as a lower rate with flattering latencies.
    let late = elapsed.saturating_sub(duration);
    println!(
        "offered {:.1} requests per second; answered {:.1}; the last answer came {:.1} s after \
         the schedule ended{} (an operation still waiting for a worker {} s after it was due is \
         not sent, and counts as an error)",
        offered_per_s,
        sent as f64 / window.as_secs_f64(),
        late.as_secs_f64(),
        if late > Duration::from_secs(1) {
            ": the server fell behind"
        } else {
            ""
        },
        GIVE_UP_AFTER.as_secs()
    );
    for line in report::error_examples(&recorded.samples, 3) {
        println!("error: {line}");
    }

    let last_answer = Instant::now();
    let drain_timeout = Duration::from_secs(cli.drain_timeout_s);
    wait_for_earnings(
        &server,
        &creator,
        acknowledged.diamonds,
        last_answer + drain_timeout,
    );
    let (drained, audit) = settle(&runtime, &dynamo, &table, last_answer, drain_timeout)?;
    let settled = verdict(&drained, &audit, &acknowledged, &recorded.unknown);
    let passed = errors == 0 && settled;
    if !passed && let Some(log) = server.log_tail() {
        // Its JSON lines: the warnings and errors (the banner before them is no news).
        let lines: Vec<&str> = log.lines().filter(|line| line.starts_with('{')).collect();
        println!(
            "\nthe local server's last warnings and errors ({}):",
            lines.len()
        );
        for line in lines.iter().rev().take(10).rev() {
            println!("{line}");
        }
    }
    println!("result: {}", if passed { "PASS" } else { "FAIL" });
    Ok(passed)
}

/// Prints how the drain and the audit came out; whether both passed.
fn verdict(
    drained: &Drained,
    audit: &AuditReport,
    acknowledged: &Totals,
    unknown: &Totals,
) -> bool {
    let mut passed = true;
    match drained {
        Drained::CaughtUp(after) => println!(
            "drain: the stream consumers caught up {:.1} s after the last answer",
            after.as_secs_f64()
        ),
        Drained::TimedOut { waited, left } => {
            passed = false;
            println!(
                "drain: NOT caught up after {:.0} s: {left}",
                waited.as_secs_f64()
            );
        }
    }
    if audit.is_conserved() {
        println!("audit: balanced: {}", audit::summary(audit));
    } else {
        passed = false;
        println!("audit: NOT balanced: {}", audit::summary(audit));
        for violation in audit.violations.iter().take(20) {
            println!("  {violation}");
        }
    }
    match audit::reconcile(audit, acknowledged, unknown) {
        Ok(explained) if explained.is_empty() => {
            println!("acknowledged: the ledger's totals are exactly what the API acknowledged")
        }
        Ok(explained) => {
            println!(
                "acknowledged: the ledger's totals are what the API acknowledged and part of \
                 what failed requests may have done:"
            );
            explained.iter().for_each(|line| println!("  {line}"));
        }
        Err(unexplained) => {
            passed = false;
            println!("acknowledged: the ledger's totals do NOT follow from the API's answers:");
            unexplained.iter().for_each(|line| println!("  {line}"));
        }
    }
    passed
}

/// Funds every fan for the roses the plan has them send (700-coin lots; every fan has a
/// wallet), then buys each planned refund its purchase, after the funding so that no gift
/// spends it. Each fan's refundable purchases, and what the API acknowledged.
fn setup(
    client: &Client,
    plan: &[Planned],
    fans: usize,
) -> Result<(Vec<VecDeque<Bought>>, Totals), String> {
    let mut roses = vec![0u64; fans];
    let mut refunds = vec![0usize; fans];
    for planned in plan {
        match planned.kind {
            OpKind::Gift => roses[planned.fan] += planned.roses,
            OpKind::Refund => refunds[planned.fan] += 1,
            OpKind::Wallet | OpKind::Buy => {}
        }
    }
    let threads = SETUP_THREADS.min(fans);
    let (package, coins) = FUNDING_PACKAGE;
    let results: Vec<Result<SetupShare, String>> = thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let (roses, refunds) = (&roses, &refunds);
                scope.spawn(move || {
                    let mut recorder = Recorder::default();
                    let mut refundable = Vec::new();
                    for fan in (thread..fans).step_by(threads) {
                        for _ in 0..(roses[fan] * ROSE_COINS).div_ceil(coins).max(1) {
                            buy(client, fan, package, &mut recorder)?;
                        }
                        let purchases = (0..refunds[fan])
                            .map(|_| buy(client, fan, BUY_PACKAGE, &mut recorder))
                            .collect::<Result<_, _>>()?;
                        refundable.push((fan, purchases));
                    }
                    Ok(SetupShare {
                        refundable,
                        acknowledged: recorder.acknowledged,
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("a setup thread panicked"))
            .collect()
    });
    let mut refundable = vec![VecDeque::new(); fans];
    let mut acknowledged = Totals::default();
    for share in results {
        let share = share?;
        acknowledged.add(share.acknowledged);
        for (fan, purchases) in share.refundable {
            refundable[fan] = purchases;
        }
    }
    Ok((refundable, acknowledged))
}

/// What one setup thread bought: its fans' purchases to refund, and the coins credited.
struct SetupShare {
    refundable: Vec<(usize, VecDeque<Bought>)>,
    acknowledged: Totals,
}

/// A setup purchase, which must succeed: the workload depends on it.
fn buy(
    client: &Client,
    fan: usize,
    package: &str,
    recorder: &mut Recorder,
) -> Result<Bought, String> {
    client
        .buy(fan, package, Instant::now(), recorder)
        .ok_or_else(|| {
            let failed = recorder.samples.last().expect("the buy sent a request");
            format!(
                "setup: {} answered {:?}",
                failed.request.name(),
                failed.outcome
            )
        })
}

/// The plan with each refund given its own purchase.
fn operations(plan: Vec<Planned>, mut refundable: Vec<VecDeque<Bought>>) -> Vec<(Duration, Op)> {
    plan.into_iter()
        .map(|planned| {
            let fan = planned.fan;
            let op = match planned.kind {
                OpKind::Gift => Op::Gift {
                    fan,
                    roses: planned.roses,
                },
                OpKind::Wallet => Op::Wallet { fan },
                OpKind::Buy => Op::Buy { fan },
                OpKind::Refund => Op::Refund {
                    fan,
                    purchase: refundable[fan]
                        .pop_front()
                        .expect("the setup bought one purchase per planned refund"),
                },
            };
            (planned.at, op)
        })
        .collect()
}

/// The timed phase: hands each operation to the next free worker when it is due, and waits
/// for the last answer. Every worker's records, and how long it all took.
fn drive(client: &Client, ops: Vec<(Duration, Op)>, workers: usize) -> (Recorder, Duration) {
    let (due_ops, queue) = mpsc::channel::<(Instant, Op)>();
    let queue = Mutex::new(queue);
    thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut recorder = Recorder::default();
                    loop {
                        // The lock is held only while waiting: the next free worker takes the
                        // next operation that falls due.
                        let next = queue.lock().expect("no worker panics holding it").recv();
                        let Ok((due, op)) = next else { break };
                        client.run(&op, due, &mut recorder);
                    }
                    recorder
                })
            })
            .collect();
        let start = Instant::now();
        for (at, op) in ops {
            let due = start + at;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
            due_ops.send((due, op)).expect("the workers are waiting");
        }
        drop(due_ops);
        let mut all = Recorder::default();
        for handle in handles {
            let recorder = handle.join().expect("a worker panicked");
            all.samples.extend(recorder.samples);
            all.acknowledged.add(recorder.acknowledged);
            all.unknown.add(recorder.unknown);
        }
        (all, start.elapsed())
    })
}

/// Says so when DynamoDB Local has served before: it slows down as it fills (its stream reads,
/// which the local server makes every 50 ms, cost more with every record any of its tables
/// wrote; here a second run on one instance answered about ten times slower), so figures are
/// comparable only from a fresh one.
fn warn_if_used(
    runtime: &Runtime,
    dynamo: &aws_sdk_dynamodb::Client,
    endpoint: &str,
) -> Result<(), String> {
    let listed = runtime
        .block_on(dynamo.list_tables().send())
        .map_err(|error| {
            format!(
                "listing the tables at {endpoint}: {}",
                DisplayErrorContext(error)
            )
        })?;
    let tables = listed.table_names().len();
    if tables > 0 {
        println!(
            "warning: DynamoDB Local at {endpoint} already holds {tables} tables and answers \
             slower for them; for figures to compare, run on a fresh one (scripts/load-test \
             without DYNAMODB_ENDPOINT starts one)"
        );
    }
    Ok(())
}

/// Waits until the creator's earnings count at least the diamonds the API acknowledged, or
/// until `deadline`: one read at a time, where scanning the table would slow the consumer it
/// waits for (gifts are most of the stream's work).
fn wait_for_earnings(server: &LocalServer, creator: &User, diamonds: u128, deadline: Instant) {
    while Instant::now() < deadline {
        let earnings = flows::earnings(server, creator);
        if u128::from(earnings["diamonds_earned"].as_u64().unwrap_or(0)) >= diamonds {
            return;
        }
        thread::sleep(Duration::from_millis(250));
    }
}

/// Waits for the stream consumers (from `last_answer`, for at most `timeout`), then audits the
/// table.
fn settle(
    runtime: &Runtime,
    dynamo: &aws_sdk_dynamodb::Client,
    table: &str,
    last_answer: Instant,
    timeout: Duration,
) -> Result<(Drained, AuditReport), String> {
    let ledger = Ledger::new(DynamoStore::new(dynamo.clone(), table));
    runtime.block_on(async {
        let drained = audit::drain(&ledger, last_answer, timeout)
            .await
            .map_err(|error| format!("scanning {table}: {error}"))?;
        let report = ledger
            .audit()
            .await
            .map_err(|error| format!("auditing {table}: {error}"))?;
        Ok((drained, report))
    })
}
