//! The local server under test, on 127.0.0.1, with the test's own secrets and either DynamoDB
//! Local (a fresh table per server) or the in-memory store.
//!
//! By default it runs in-process: the `local-server` library's [`App`] (API Gateway's part, then
//! the very handlers the Lambda functions run, and the stream consumers fed from the store's
//! changes) served on a port the OS picks, on a Tokio runtime owned by the [`LocalServer`] and
//! shut down when it is dropped. [`LocalServer::binary`] runs the `local-server` executable
//! instead, exactly as a developer starts it. Stripe is the built-in test-mode provider unless a
//! test points the server at localstripe.
//!
//! The test clock (`/_dev/clock`) is the one clock everything in the server reads, so it starts
//! at a fixed instant (deterministic local days) and webhooks are signed at its time.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coins_http::WebhookSecret;
use coins_ledger::audit::AuditReport;
use coins_ledger::dynamo::{DynamoStore, create_table, local_config};
use coins_ledger::{Ledger, MemoryStore, Store};
use coins_payments::Provider;
use coins_payments::stripe::{SecretKey, Stripe};
use coins_payments::test_mode::{TestMode, TestRefund};
use coins_runtime::TestClock;
use jiff::Timestamp;
use local_server::App;
use local_server::auth::DevAuth;
use local_server::streams::{self, DynamoFeed, Feed};
use serde_json::{Value, json};
use stripe_webhook::Webhook;
use tokio::net::TcpListener;

use crate::app_stores::store_fakes;
use crate::binaries::binary;
use crate::client::{Api, Reply};
use crate::dynamodb;
use crate::identity::{DEV_JWT_SECRET, User};
use crate::payments::{WEBHOOK_SECRET, signature_header};
use crate::process::ChildGuard;

/// Where every test clock starts: a Monday, noon in Tokyo, far from any local midnight in the
/// zones the tests use, so "today" never changes under a test by accident.
pub const CLOCK_START: &str = "2026-03-02T03:00:00Z";

/// Chooses the storage of [`LocalServer::new`]: `memory`, or `dynamodb` (the default).
pub const STORAGE_VAR: &str = "E2E_STORAGE";

/// A server that will never answer is given up on after this (it starts in well under a second
/// in memory, a few seconds when it creates a DynamoDB table).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a refund instruction may take to reach the provider (the dispatcher runs on the
/// stream, a moment after the refund; DynamoDB Local's stream is read every 50 ms).
const DISPATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the server keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The in-memory store (the local server's default).
    InMemory,
    /// DynamoDB Local at `endpoint`, in `table`, created for this server.
    DynamoDb { endpoint: String, table: String },
}

/// Who plays Stripe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payments {
    /// The built-in test-mode provider (the local server's default).
    TestMode,
    /// A Stripe API at this base URL (localstripe).
    Stripe { api_base: String },
}

/// What is keeping the server alive; dropping it stops the server.
#[derive(Debug)]
enum Running {
    InProcess { _runtime: tokio::runtime::Runtime },
    Binary { _process: ChildGuard },
}

/// A running local server, stopped when dropped.
#[derive(Debug)]
pub struct LocalServer {
    api: Api,
    storage: Storage,
    /// The test-mode provider's books (in-process servers without Stripe).
    test_mode: Option<TestMode>,
    /// The in-memory store of an in-process server (for the audit).
    memory: Option<MemoryStore>,
    _running: Running,
}

impl LocalServer {
    /// The server the API suite runs on: a fresh DynamoDB Local table named after `label`, or
    /// the in-memory store when `E2E_STORAGE=memory` (the test command runs the suite both ways).
    #[track_caller]
    pub fn new(label: &str) -> LocalServer {
        match std::env::var(STORAGE_VAR).as_deref() {
            Ok("memory") => LocalServer::in_memory(),
            Ok("dynamodb") | Err(_) => LocalServer::on_dynamodb(label),
            Ok(other) => panic!("{STORAGE_VAR}={other}: expected memory or dynamodb"),
        }
    }

    /// An in-process server on DynamoDB Local (`DYNAMODB_ENDPOINT`, which must be set and
    /// reachable) with a fresh table named after `label`.
    #[track_caller]
    pub fn on_dynamodb(label: &str) -> LocalServer {
        LocalServer::in_process(dynamodb_storage(label), Payments::TestMode)
    }

    /// An in-process server on the in-memory store.
    #[track_caller]
    pub fn in_memory() -> LocalServer {
        LocalServer::in_process(Storage::InMemory, Payments::TestMode)
    }

    /// The server with its stream consumers, in process, on a runtime it owns. On DynamoDB, the
    /// table is created unless it exists (a second server on one table is a second consumer of
    /// its stream).
    #[track_caller]
    pub fn in_process(storage: Storage, payments: Payments) -> LocalServer {
        // `RUST_LOG=info cargo test …` shows the servers' JSON logs (the first server sets it).
        if std::env::var_os("RUST_LOG").is_some() {
            coins_runtime::telemetry::init();
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the server");
        // localstripe signs its webhooks at its wall-clock time: against a Stripe, the test
        // clock starts now, or the signatures would be outside the tolerance.
        let (provider, test_mode, clock_start) = match payments {
            Payments::TestMode => {
                let books = TestMode::default();
                let start = CLOCK_START.parse().expect("CLOCK_START is RFC 3339");
                (Provider::TestMode(books.clone()), Some(books), start)
            }
            Payments::Stripe { api_base } => (
                Provider::Stripe(Stripe::new(api_base, SecretKey::new("sk_test_e2e"))),
                None,
                Timestamp::from_second(Timestamp::now().as_second()).expect("now is in range"),
            ),
        };
        let clock = TestClock::new(clock_start).expect("the clock starts in range");
        let memory = (storage == Storage::InMemory).then(MemoryStore::with_change_feed);
        let address = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free port on 127.0.0.1");
            let address = listener.local_addr().expect("a bound address");
            match &storage {
                Storage::InMemory => {
                    let store = memory.clone().expect("made above");
                    let feed = Feed::memory(&store);
                    spawn_app(store, feed, provider, clock, listener).await;
                }
                Storage::DynamoDb { endpoint, table } => {
                    let aws = local_config(endpoint).await;
                    let client = aws_sdk_dynamodb::Client::new(&aws);
                    let exists = client
                        .describe_table()
                        .table_name(table)
                        .send()
                        .await
                        .is_ok();
                    if !exists {
                        create_table(&client, table).await.unwrap_or_else(|error| {
                            panic!(
                                "creating table {table} on DynamoDB Local at {endpoint}: {error}"
                            )
                        });
                    }
                    let feed = DynamoFeed::open(&aws, table)
                        .await
                        .unwrap_or_else(|error| panic!("the stream of {table}: {error}"));
                    spawn_app(
                        DynamoStore::new(client, table),
                        Feed::Dynamo(feed),
                        provider,
                        clock,
                        listener,
                    )
                    .await;
                }
            }
            address
        });
        LocalServer {
            api: Api::new(format!("http://{address}")),
            storage,
            test_mode,
            memory,
            _running: Running::InProcess { _runtime: runtime },
        }
    }

    /// The `local-server` executable, on a port it picks itself (`--port 0`) and prints, with
    /// these extra arguments (none: the in-memory store and the test-mode provider).
    #[track_caller]
    pub fn binary(args: &[&str]) -> LocalServer {
        let mut command = Command::new(binary("local-server"));
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--clock", CLOCK_START])
            .args(args)
            .env("DEV_JWT_SECRET", DEV_JWT_SECRET)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "warn");
        store_fakes().configure(&mut command);
        let mut process = ChildGuard::spawn("local-server", &mut command);
        let base_url = wait_for_address(&mut process).unwrap_or_else(|failure| panic!("{failure}"));
        LocalServer {
            api: Api::new(base_url),
            storage: Storage::InMemory,
            test_mode: None,
            memory: None,
            _running: Running::Binary { _process: process },
        }
    }

    pub fn api(&self) -> &Api {
        &self.api
    }

    /// The last few KB of the binary's log (its warnings and errors); none in process.
    pub fn log_tail(&self) -> Option<String> {
        match &self._running {
            Running::Binary { _process: process } => Some(process.log_tail()),
            Running::InProcess { .. } => None,
        }
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The test clock's time.
    #[track_caller]
    pub fn now(&self) -> Timestamp {
        parse_clock(self.api.get("/_dev/clock").send())
    }

    /// Moves the test clock forward (running the refund-window closures now due).
    #[track_caller]
    pub fn advance_clock(&self, seconds: u64) -> Timestamp {
        parse_clock(
            self.api
                .post("/_dev/clock")
                .json(&json!({ "advance_seconds": seconds }))
                .send(),
        )
    }

    /// Sets the test clock to `at` (never backwards).
    #[track_caller]
    pub fn set_clock(&self, at: Timestamp) -> Timestamp {
        parse_clock(
            self.api
                .post("/_dev/clock")
                .json(&json!({ "now": at.to_string() }))
                .send(),
        )
    }

    /// Delivers `body` to the Stripe webhook exactly as Stripe would: signed with the shared
    /// secret at the wall clock's time (the tolerance is a transport check: the server's test
    /// clock plays no part in it).
    #[track_caller]
    pub fn deliver_webhook(&self, body: &str) -> Reply {
        let now = Timestamp::now().as_second();
        let signature = signature_header(WEBHOOK_SECRET, now, body.as_bytes());
        self.api
            .post("/v1/webhooks/stripe")
            .header("stripe-signature", &signature)
            .raw("application/json", body.as_bytes())
            .send()
    }

    /// The ledger's conservation audit over the server's whole table (in-process servers): no
    /// coin lost or made, debt and reversals included. Panics with every violation.
    #[track_caller]
    pub fn assert_conserved(&self) -> AuditReport {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a Tokio runtime");
        let report = runtime.block_on(async {
            match (&self.storage, &self.memory) {
                (Storage::InMemory, Some(store)) => Ledger::new(store.clone()).audit().await,
                (Storage::DynamoDb { endpoint, table }, _) => {
                    let aws = local_config(endpoint).await;
                    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
                    Ledger::new(store).audit().await
                }
                (Storage::InMemory, None) => panic!("the binary's store is not reachable"),
            }
        });
        let report = report.expect("the audit reads the table");
        assert!(
            report.is_conserved(),
            "conservation broken: {:#?}",
            report.violations
        );
        if let Storage::DynamoDb { endpoint, table } = &self.storage {
            self.assert_coinctl_audit_finds_no_violation(endpoint, table);
        }
        report
    }

    /// The operator's `coinctl audit` over the same table, run as a process: no violation
    /// (items a test left outstanding on purpose may be listed, even as stuck).
    #[track_caller]
    fn assert_coinctl_audit_finds_no_violation(&self, endpoint: &str, table: &str) {
        let output = Command::new(binary("coinctl"))
            .args(["audit", "--dynamodb-endpoint", endpoint])
            .args(["--table-name", table, "--at", &self.now().to_string()])
            .output()
            .expect("coinctl runs");
        let printed = [output.stdout, output.stderr].concat();
        let printed = String::from_utf8_lossy(&printed);
        let summary = printed.lines().last().unwrap_or_default();
        assert!(
            summary.starts_with("0 violations,"),
            "coinctl audit: {printed}"
        );
    }

    /// What the ledger owes at the server's clock, as JSON: `coinctl liabilities` over a table
    /// on DynamoDB Local (the operator's tool, run as a process), the same report in process for
    /// the in-memory store.
    #[track_caller]
    pub fn liabilities(&self) -> Value {
        let at = self.now().to_string();
        match (&self.storage, &self.memory) {
            (Storage::DynamoDb { endpoint, table }, _) => {
                let output = Command::new(binary("coinctl"))
                    .args(["liabilities", "--dynamodb-endpoint", endpoint])
                    .args(["--table-name", table, "--at", &at])
                    .output()
                    .expect("coinctl runs");
                assert!(
                    output.status.success(),
                    "coinctl liabilities: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
                serde_json::from_slice(&output.stdout).expect("coinctl prints JSON")
            }
            (Storage::InMemory, Some(store)) => {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a Tokio runtime");
                let owed = runtime
                    .block_on(Ledger::new(store.clone()).liabilities(self.now()))
                    .expect("the report reads the table");
                serde_json::to_value(owed).expect("JSON")
            }
            (Storage::InMemory, None) => panic!("the binary's store is not reachable"),
        }
    }

    /// The refunds the test-mode provider made (in-process servers without Stripe only).
    #[track_caller]
    pub fn provider_refunds(&self) -> Vec<TestRefund> {
        self.test_mode
            .as_ref()
            .expect("an in-process server on the test-mode provider")
            .refunds()
    }

    /// `GET /v1/purchases/{id}` by its buyer, read again until its refund instruction has left
    /// `pending` (the dispatcher runs on the stream); the purchase then.
    #[track_caller]
    pub fn settled_refund(&self, buyer: &User, purchase_id: &str) -> Value {
        let deadline = Instant::now() + DISPATCH_TIMEOUT;
        loop {
            let purchase = self
                .api
                .get(&format!("/v1/purchases/{purchase_id}"))
                .user(buyer)
                .send()
                .expect(200);
            let status = &purchase["refund"]["status"];
            assert!(!status.is_null(), "no refund on {purchase}");
            if status != "pending" {
                return purchase;
            }
            assert!(
                Instant::now() < deadline,
                "the refund was not dispatched within {DISPATCH_TIMEOUT:?}: {purchase}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A fresh table on DynamoDB Local (`DYNAMODB_ENDPOINT`) named after `label`.
#[track_caller]
pub fn dynamodb_storage(label: &str) -> Storage {
    Storage::DynamoDb {
        endpoint: dynamodb::endpoint(),
        table: dynamodb::fresh_table_name(label),
    }
}

/// Serves the local server's [`App`] over `store` on `listener` and feeds its stream consumers
/// from `feed`, on the current runtime.
async fn spawn_app<S: Store + 'static>(
    store: S,
    feed: Feed,
    provider: Provider,
    clock: TestClock,
    listener: TcpListener,
) {
    let no_aws = aws_config::SdkConfig::builder().build();
    let fakes = store_fakes();
    let stores = stores::load_with(&no_aws, &|name| fakes.setting(name))
        .await
        .expect("the stores, configured for the fakes");
    let app = Arc::new(App::new(
        Ledger::new(store),
        clock,
        DevAuth::new(DEV_JWT_SECRET),
        Webhook {
            provider,
            secret: WebhookSecret::new(WEBHOOK_SECRET).expect("a non-empty secret"),
        },
        stores,
    ));
    tokio::spawn(streams::run(app.clone(), feed));
    tokio::spawn(async move {
        if let Err(error) = local_server::server::serve(app, listener).await {
            // The test's next request fails with "no HTTP reply"; this says why.
            eprintln!("the in-process local server stopped: {error}");
        }
    });
}

#[track_caller]
fn parse_clock(reply: Reply) -> Timestamp {
    let body = reply.expect(200);
    body["now"]
        .as_str()
        .and_then(|now| now.parse().ok())
        .unwrap_or_else(|| panic!("the test clock answered {body}, expected {{\"now\": RFC 3339}}"))
}

/// Waits for the binary's `listening on http://<address>` line, then for `/_dev/clock` to
/// answer; fails with its log if it exits first or never answers.
fn wait_for_address(process: &mut ChildGuard) -> Result<String, String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = process.exited() {
            return Err(format!(
                "the local server exited ({status}); its log:\n{}",
                process.log_tail()
            ));
        }
        let log = process.log();
        let address = log
            .lines()
            .find_map(|line| line.trim().strip_prefix("listening on "))
            .map(str::to_owned);
        if let Some(base_url) = address {
            let api = Api::new(base_url.clone());
            let clock = api.get("/_dev/clock").send();
            return if clock.status == 200 {
                Ok(base_url)
            } else {
                Err(format!(
                    "GET /_dev/clock answered {}; its log:\n{}",
                    clock.status,
                    process.log_tail()
                ))
            };
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the local server printed no `listening on` line within {READY_TIMEOUT:?}; its log:\n{}",
                process.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
