//! The local server under test, started as a child process on 127.0.0.1 with the test's own
//! secrets and either DynamoDB Local (a fresh table per server) or its in-memory store.
//!
//! The server is the workspace's `local-server` binary (built by the test command before the
//! tests run), so the tests see exactly what a developer runs. Its test clock (`/_dev/clock`) is
//! the one clock everything reads, so webhooks are signed at the clock's time, not the machine's.

use std::process::Command;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::json;

use crate::binaries::binary;
use crate::client::{Api, Reply};
use crate::dynamodb;
use crate::identity::DEV_JWT_SECRET;
use crate::payments::{WEBHOOK_SECRET, signature_header};
use crate::process::{ChildGuard, free_port};

/// Starting takes well under a second in memory and a few seconds creating a DynamoDB table;
/// this only bounds a server that will never answer.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Another process may take the free port before the server binds it: try a few.
const START_ATTEMPTS: u32 = 3;

/// Where the server keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// The server's default in-memory store.
    InMemory,
    /// DynamoDB Local at `endpoint`, in `table` (created by the server).
    DynamoDb { endpoint: String, table: String },
}

/// A running local server, stopped when dropped.
#[derive(Debug)]
pub struct LocalServer {
    api: Api,
    storage: Storage,
    // Dropped last: the server outlives every use of `api`.
    _process: ChildGuard,
}

impl LocalServer {
    /// A server on DynamoDB Local (`DYNAMODB_ENDPOINT`, which must be set and reachable) with a
    /// fresh table named after `label`.
    #[track_caller]
    pub fn on_dynamodb(label: &str) -> LocalServer {
        LocalServer::start(Storage::DynamoDb {
            endpoint: dynamodb::endpoint(),
            table: dynamodb::fresh_table_name(label),
        })
    }

    /// A server on its in-memory store.
    #[track_caller]
    pub fn in_memory() -> LocalServer {
        LocalServer::start(Storage::InMemory)
    }

    #[track_caller]
    pub fn start(storage: Storage) -> LocalServer {
        let program = binary("local-server");
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let mut command = Command::new(&program);
            command
                .args(["--port", &port.to_string()])
                .env("DEV_JWT_SECRET", DEV_JWT_SECRET)
                .env("PAYMENT_WEBHOOK_SECRET", WEBHOOK_SECRET)
                .env("RUST_LOG", "warn")
                .env_remove("DYNAMODB_ENDPOINT")
                .env_remove("TABLE_NAME");
            if let Storage::DynamoDb { endpoint, table } = &storage {
                command.args([
                    "--dynamodb-endpoint",
                    endpoint,
                    "--table",
                    table,
                    "--create-table",
                ]);
            }
            let mut process = ChildGuard::spawn("local-server", &mut command);
            let api = Api::new(format!("http://127.0.0.1:{port}"));
            match wait_until_ready(&api, &mut process) {
                Ok(()) => {
                    return LocalServer {
                        api,
                        storage,
                        _process: process,
                    };
                }
                Err(failure) => last_failure = failure,
            }
        }
        panic!("the local server did not start ({START_ATTEMPTS} attempts): {last_failure}");
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

    /// Moves the test clock forward (running any refund-window closures now due).
    #[track_caller]
    pub fn advance_clock(&self, seconds: i64) -> Timestamp {
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

#[track_caller]
fn parse_clock(reply: Reply) -> Timestamp {
    let body = reply.expect(200);
    body["now"]
        .as_str()
        .and_then(|now| now.parse().ok())
        .unwrap_or_else(|| panic!("the test clock answered {body}, expected {{\"now\": RFC 3339}}"))
}

/// Polls `GET /_dev/clock` until the server answers, or fails with its log if it exits first.
fn wait_until_ready(api: &Api, process: &mut ChildGuard) -> Result<(), String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(2)))
        .build()
        .into();
    let url = format!("{}/_dev/clock", api.base_url());
    loop {
        if let Some(status) = process.exited() {
            return Err(format!(
                "it exited ({status}); its log:\n{}",
                process.log_tail()
            ));
        }
        if let Ok(response) = agent.get(&url).call() {
            if response.status() == 200 {
                return Ok(());
            }
            return Err(format!(
                "GET /_dev/clock answered {}; its log:\n{}",
                response.status(),
                process.log_tail()
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no answer on {url} within {READY_TIMEOUT:?}; its log:\n{}",
                process.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
