//! The local server under test, on 127.0.0.1, with the test's own secrets and either DynamoDB
//! Local (a fresh table per server) or the in-memory store.
//!
//! By default it runs in-process: the `local-server` library's [`App`] (API Gateway's part, then
//! the very handlers the Lambda functions run) served on a port the OS picks, on a Tokio runtime
//! owned by the [`LocalServer`] and shut down when it is dropped. [`LocalServer::binary`] runs
//! the `local-server` executable instead, exactly as a developer starts it.
//!
//! The test clock (`/_dev/clock`) is the one clock everything in the server reads, so it starts
//! at a fixed instant (deterministic local days) and webhooks are signed at its time.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coins_http::WebhookSecret;
use coins_ledger::dynamo::{DynamoStore, client_for_endpoint, create_table};
use coins_ledger::{Ledger, MemoryStore, Store};
use coins_runtime::{Deps, TestClock};
use jiff::Timestamp;
use local_server::App;
use local_server::auth::DevAuth;
use serde_json::json;
use tokio::net::TcpListener;

use crate::binaries::binary;
use crate::client::{Api, Reply};
use crate::dynamodb;
use crate::identity::DEV_JWT_SECRET;
use crate::payments::{WEBHOOK_SECRET, signature_header};
use crate::process::ChildGuard;

/// Where every test clock starts: a Monday, noon in Tokyo, far from any local midnight in the
/// zones the tests use, so "today" never changes under a test by accident.
pub const CLOCK_START: &str = "2026-03-02T03:00:00Z";

/// A server that will never answer is given up on after this (it starts in well under a second
/// in memory, a few seconds when it creates a DynamoDB table).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the server keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The in-memory store (the local server's default).
    InMemory,
    /// DynamoDB Local at `endpoint`, in `table`, created for this server.
    DynamoDb { endpoint: String, table: String },
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
    _running: Running,
}

impl LocalServer {
    /// An in-process server on DynamoDB Local (`DYNAMODB_ENDPOINT`, which must be set and
    /// reachable) with a fresh table named after `label`.
    #[track_caller]
    pub fn on_dynamodb(label: &str) -> LocalServer {
        LocalServer::in_process(Storage::DynamoDb {
            endpoint: dynamodb::endpoint(),
            table: dynamodb::fresh_table_name(label),
        })
    }

    /// An in-process server on the in-memory store.
    #[track_caller]
    pub fn in_memory() -> LocalServer {
        LocalServer::in_process(Storage::InMemory)
    }

    #[track_caller]
    pub fn in_process(storage: Storage) -> LocalServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the server");
        let address = runtime.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a free port on 127.0.0.1");
            let address = listener.local_addr().expect("a bound address");
            match &storage {
                Storage::InMemory => spawn_app(MemoryStore::new(), listener),
                Storage::DynamoDb { endpoint, table } => {
                    let client = client_for_endpoint(endpoint).await;
                    create_table(&client, table).await.unwrap_or_else(|error| {
                        panic!("creating table {table} on DynamoDB Local at {endpoint}: {error}")
                    });
                    spawn_app(DynamoStore::new(client, table), listener);
                }
            }
            address
        });
        LocalServer {
            api: Api::new(format!("http://{address}")),
            storage,
            _running: Running::InProcess { _runtime: runtime },
        }
    }

    /// The `local-server` executable with its default (in-memory) store, on a port it picks
    /// itself (`--port 0`) and prints.
    #[track_caller]
    pub fn binary() -> LocalServer {
        let mut command = Command::new(binary("local-server"));
        command
            .args(["--host", "127.0.0.1", "--port", "0", "--clock", CLOCK_START])
            .env("DEV_JWT_SECRET", DEV_JWT_SECRET)
            .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("RUST_LOG", "warn");
        let mut process = ChildGuard::spawn("local-server", &mut command);
        let base_url = wait_for_address(&mut process).unwrap_or_else(|failure| panic!("{failure}"));
        LocalServer {
            api: Api::new(base_url),
            storage: Storage::InMemory,
            _running: Running::Binary { _process: process },
        }
    }

    pub fn api(&self) -> &Api {
        &self.api
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

    /// Delivers `body` to the payment webhook exactly as the provider would: signed with the
    /// shared secret at the server's (test) clock time.
    #[track_caller]
    pub fn deliver_webhook(&self, body: &str) -> Reply {
        let signature = signature_header(WEBHOOK_SECRET, self.now().as_second(), body.as_bytes());
        self.api
            .post("/v1/webhooks/payments")
            .header("payment-signature", &signature)
            .raw("application/json", body.as_bytes())
            .send()
    }
}

/// Serves the local server's [`App`] over `store` on `listener`, on the current runtime.
fn spawn_app<S: Store + 'static>(store: S, listener: TcpListener) {
    let clock = TestClock::new(CLOCK_START.parse().expect("CLOCK_START is RFC 3339"));
    let app = Arc::new(App {
        deps: Deps::new(Ledger::new(store), Arc::new(clock.clone())),
        clock,
        auth: DevAuth::new(DEV_JWT_SECRET),
        webhook_secret: WebhookSecret::new(WEBHOOK_SECRET).expect("a non-empty secret"),
    });
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
