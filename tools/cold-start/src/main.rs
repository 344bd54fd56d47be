//! Cold-start benchmark of the Lambda functions against a bare lambda_runtime baseline.
//!
//! Lambda starts a custom runtime by exec'ing `bootstrap` with `AWS_LAMBDA_RUNTIME_API` set; the
//! runtime's first `GET /invocation/next` marks the end of init. This harness plays Lambda's part
//! on loopback (see `runtime_api`), so init and first-invocation times here are the process's own
//! work, without Firecracker, the network or the download of the code. Compare them with each
//! other, not with AWS's billed durations. This is a benchmark, not a test: nothing asserts on time.

mod measure;
mod report;
mod runtime_api;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use bytes::Bytes;
use clap::Parser;
use coins_testkit::Event;
use serde_json::json;

use crate::measure::Sample;

/// The baseline on a single-threaded runtime, as the functions run: shows that choice's share.
const CURRENT_THREAD_BASELINE: &str = "bare-lambda-current-thread";

/// The baseline plus aws-config and one DynamoDB client: shows the SDK's share of init.
const SDK_BASELINE: &str = "bare-lambda-sdk";

/// The SDK baseline trusting only the AWS roots: shows the trust store's share of that.
const SDK_AWS_ROOTS_BASELINE: &str = "bare-lambda-sdk-aws-roots";

/// The AWS-roots baseline with its client configured from the environment, without aws-config's
/// loader: shows the loader's share.
const SDK_DIRECT_BASELINE: &str = "bare-lambda-sdk-direct";

#[derive(Debug, Parser)]
#[command(
    about = "Measures cold starts of the Lambda function binaries against a bare lambda_runtime baseline"
)]
struct Args {
    /// Directory holding the release binaries (e.g. target/release).
    #[arg(long)]
    bin_dir: PathBuf,
    /// Measured cold starts per binary (after one unmeasured warm-up of the page cache).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The baseline binary every init time is compared with.
    #[arg(long, default_value = "bare-lambda")]
    baseline: String,
    /// Binaries to measure besides the baseline (default: the other baselines and every function).
    #[arg(long, value_delimiter = ',')]
    functions: Vec<String>,
    /// Replace a binary's fixture event: NAME=PATH (repeatable).
    #[arg(long = "event", value_parser = parse_pair)]
    events: Vec<(String, String)>,
    /// Extra environment for every binary: KEY=VALUE (repeatable).
    #[arg(long = "env", value_parser = parse_pair)]
    extra_env: Vec<(String, String)>,
    /// Memory size the functions are told they have (AWS_LAMBDA_FUNCTION_MEMORY_SIZE).
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,
    /// Let the binaries' stdout and stderr through (for debugging a fixture).
    #[arg(long)]
    show_output: bool,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

/// The event each binary is handed, from the shared fixtures: requests that exercise the
/// handler's edge (claims, parsing, rules, problem+json) and stop before the table, so a run
/// needs no DynamoDB; catalog answers in full. The "first reply" column shows what each one
/// answered.
fn fixture(name: &str) -> Option<String> {
    let bad_body = |fixture: &str, body: &str| Event::load(fixture).raw_body(body);
    let event = match name {
        "catalog"
        | "bare-lambda"
        | CURRENT_THREAD_BASELINE
        | SDK_BASELINE
        | SDK_AWS_ROOTS_BASELINE
        | SDK_DIRECT_BASELINE => Event::load("get-gift-catalog"),
        "quote" => bad_body("post-quote", r#"{"channel": "web"}"#),
        "purchase" => bad_body("post-purchase", "{}"),
        // Unsigned: refused before anything is read.
        "stripe-webhook" => Event::load("post-stripe-webhook"),
        "wallet" => bad_body("put-limits", r#"{"daily_coins": "lots"}"#),
        // Under age: refused before the table.
        "creators" => Event::load("post-creator").claim("birthdate", Some("2015-06-01")),
        // To oneself: refused before the table.
        "gift" => {
            let event = Event::load("post-gift");
            let caller = event.0["requestContext"]["authorizer"]["jwt"]["claims"]["sub"].clone();
            let mut body: serde_json::Value =
                serde_json::from_str(event.0["body"].as_str().expect("the fixture has a body"))
                    .expect("a JSON body");
            body["recipient_id"] = caller;
            event.body(body)
        }
        "refund" => bad_body("post-admin-refund", r#"{"reason": "whim"}"#),
        // A transaction that does not verify: refused before the table or a store is asked.
        "stores" => Event::load("post-app-store-purchase"),
        // An empty batch: the runtime and the handler's dispatch, nothing to close or send.
        "refund-expiry" | "refund-dispatch" | "earnings" | "payout-dispatch" => {
            return Some(json!({"Records": []}).to_string());
        }
        _ => return None,
    };
    Some(event.to_json())
}

/// What Lambda puts in a function's environment, with dummy credentials (a cold start must not
/// need real ones) and the DynamoDB endpoint pointed at DynamoDB Local when DYNAMODB_ENDPOINT is
/// set, else at a closed loopback port so a stray table call fails at once instead of leaving.
fn lambda_env(args: &Args, bin_dir: &Path) -> BTreeMap<String, String> {
    let dynamodb_endpoint =
        std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| "http://127.0.0.1:9".to_owned());
    let mut env: BTreeMap<String, String> = [
        ("AWS_REGION", "us-east-1"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "AKIDCOLDSTARTBENCH00"),
        ("AWS_SECRET_ACCESS_KEY", "cold-start-bench-not-a-secret"),
        ("AWS_SESSION_TOKEN", "cold-start-bench"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
        ("AWS_LAMBDA_LOG_GROUP_NAME", "/coins/bench"),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench"),
        // The template sets LoggingConfig LogFormat JSON; Lambda then passes this on.
        ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ("_HANDLER", "bootstrap"),
        ("TZ", ":UTC"),
        ("TABLE_NAME", "coins-bench"),
        ("RUST_LOG", "info"),
        ("STRIPE_WEBHOOK_SECRET", "cold-start-bench-webhook-secret"),
        ("STRIPE_SECRET_KEY", "sk_test_cold_start_bench"),
        (
            "GOOGLE_PUSH_SERVICE_ACCOUNT",
            "push@cold-start.iam.gserviceaccount.com",
        ),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value.to_owned()))
    .collect();
    env.insert("AWS_ENDPOINT_URL_DYNAMODB".to_owned(), dynamodb_endpoint);
    env.insert(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE".to_owned(),
        args.memory_mb.to_string(),
    );
    env.insert("LAMBDA_TASK_ROOT".to_owned(), bin_dir.display().to_string());
    env.extend(args.extra_env.iter().cloned());
    env
}

struct Target {
    name: String,
    binary: PathBuf,
    event: Bytes,
    samples: Vec<Sample>,
    failures: Vec<String>,
}

fn targets(args: &Args) -> Result<Vec<Target>, String> {
    let mut names = vec![args.baseline.clone()];
    if args.functions.is_empty() {
        names.push(CURRENT_THREAD_BASELINE.to_owned());
        names.push(SDK_BASELINE.to_owned());
        names.push(SDK_AWS_ROOTS_BASELINE.to_owned());
        names.push(SDK_DIRECT_BASELINE.to_owned());
        names.extend(coins_testkit::function_names());
    } else {
        names.extend(
            args.functions
                .iter()
                .filter(|name| **name != args.baseline)
                .cloned(),
        );
    }
    let overrides: BTreeMap<&str, &str> = args
        .events
        .iter()
        .map(|(name, path)| (name.as_str(), path.as_str()))
        .collect();

    let mut problems = Vec::new();
    let mut targets = Vec::new();
    for name in names {
        let binary = args.bin_dir.join(&name);
        if !binary.is_file() {
            problems.push(format!("{name}: no binary at {}", binary.display()));
            continue;
        }
        let event = match overrides.get(name.as_str()) {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Bytes::from(bytes),
                Err(error) => {
                    problems.push(format!("{name}: cannot read event {path}: {error}"));
                    continue;
                }
            },
            None => match fixture(&name) {
                Some(json) => Bytes::from(json),
                None => {
                    problems.push(format!(
                        "{name}: no fixture event; pass --event {name}=PATH"
                    ));
                    continue;
                }
            },
        };
        targets.push(Target {
            name,
            binary,
            event,
            samples: Vec::new(),
            failures: Vec::new(),
        });
    }
    if problems.is_empty() {
        Ok(targets)
    } else {
        Err(problems.join("\n"))
    }
}

// One thread: the harness's own work must not compete with the function for the second core.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut targets = match targets(&args) {
        Ok(targets) => targets,
        Err(problems) => {
            eprintln!("cold-start: cannot run:\n{problems}");
            return ExitCode::FAILURE;
        }
    };
    let env = lambda_env(&args, &args.bin_dir);

    eprintln!(
        "cold-start: {} binaries from {}, 1 warm-up + {} measured runs each, interleaved",
        targets.len(),
        args.bin_dir.display(),
        args.runs
    );
    // Round 0 warms the page cache (Lambda's own code cache is warm for a popular function too);
    // rounds are interleaved so a noisy moment on the machine spreads over every binary.
    for round in 0..=args.runs {
        for target in &mut targets {
            let result = measure::cold_start(
                &target.binary,
                &target.name,
                target.event.clone(),
                &env,
                args.show_output,
            )
            .await;
            match result {
                Ok(sample) if round > 0 => target.samples.push(sample),
                Ok(_) => {}
                Err(error) => target.failures.push(format!("round {round}: {error}")),
            }
        }
    }

    let summaries: Vec<_> = targets
        .iter()
        .filter_map(|target| report::summarise(&target.name, &target.samples))
        .collect();
    let baseline_init_us = summaries
        .iter()
        .find(|s| s.name == args.baseline)
        .map(|s| s.init_us);
    println!("{}", report::table(&summaries, baseline_init_us));
    println!(
        "medians of {} runs; init = spawn to first `next`, first invoke = event handed out to reply posted",
        args.runs
    );

    let mut failed = false;
    for target in &targets {
        for failure in &target.failures {
            eprintln!("cold-start: {}: {failure}", target.name);
            failed = true;
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
