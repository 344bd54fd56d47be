//! The real Lambda runtime interface, locally: `cargo lambda watch --only-lambda-apis` emulates
//! the Runtime API and the Invoke API; the function binary is started by us with
//! `AWS_LAMBDA_RUNTIME_API` pointing at it (as Lambda execs `bootstrap`), and `cargo lambda
//! invoke --data-file` sends it an API Gateway event. One emulator per function: with
//! `--only-lambda-apis` every function polls the same default queue (`_`).
//!
//! cargo-lambda comes from PyPI (the test command installs it in `.cache/venv`); if it cannot
//! be found the test fails saying how to install it.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binaries::{binary, workspace_root};
use crate::process::{ChildGuard, free_port};

/// The emulator starts in about a second (it runs `cargo metadata` first).
const EMULATOR_TIMEOUT: Duration = Duration::from_secs(60);
/// A debug-built function's cold start plus a DynamoDB Local round trip or two.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The pinned cargo-lambda (scripts/test installs this version).
pub const CARGO_LAMBDA_VERSION: &str = "1.9.2";

/// The `cargo-lambda` executable: on `PATH`, else in the repo's `.cache/venv`.
#[track_caller]
pub fn cargo_lambda() -> PathBuf {
    let venv = workspace_root().join(".cache/venv/bin/cargo-lambda");
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("cargo-lambda"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| venv.is_file().then_some(venv))
        .unwrap_or_else(|| {
            panic!(
                "cargo-lambda is not installed: the Lambda runtime tests need it. Install it with \
                 `python3 -m venv .cache/venv && .cache/venv/bin/pip install \
                 cargo-lambda=={CARGO_LAMBDA_VERSION}` (scripts/test does)"
            )
        })
}

/// One function binary running against its own Runtime API emulator.
#[derive(Debug)]
pub struct LambdaFunction {
    name: String,
    port: u16,
    // Dropped in this order: the function first, then its emulator.
    function: ChildGuard,
    _emulator: ChildGuard,
}

impl LambdaFunction {
    /// Starts the emulator and then the function binary `name` with `env` (plus the variables
    /// Lambda sets). Returns once the emulator answers; the function may still be initializing,
    /// which an invocation simply waits for, as on Lambda.
    #[track_caller]
    pub fn start(name: &str, env: &[(&str, &str)]) -> LambdaFunction {
        let program = cargo_lambda();
        let function_binary = binary(name);
        let port = free_port();
        let mut emulator = ChildGuard::spawn(
            &format!("cargo-lambda-watch-{name}"),
            Command::new(&program)
                .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
                .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
                .arg(port.to_string())
                .current_dir(workspace_root()),
        );
        wait_for_port(&mut emulator, port);
        let mut command = Command::new(&function_binary);
        command
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("RUST_LOG", "info")
            // Nothing from the developer's AWS setup may leak into a local function.
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (key, value) in env {
            command.env(key, value);
        }
        let function = ChildGuard::spawn(name, &mut command);
        LambdaFunction {
            name: name.to_owned(),
            port,
            function,
            _emulator: emulator,
        }
    }

    /// `cargo lambda invoke --data-file <event>`: the function's response payload (for an HTTP
    /// API event, `{"statusCode", "headers", "body"}`).
    #[track_caller]
    pub fn invoke(&mut self, event: &Value) -> Value {
        let event_file = std::env::temp_dir().join(format!(
            "e2e-event-{}-{}-{:08x}.json",
            self.name,
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::write(&event_file, event.to_string()).expect("writing the event file");
        let mut invoke = ChildGuard::spawn(
            &format!("cargo-lambda-invoke-{}", self.name),
            Command::new(cargo_lambda())
                .args([
                    "lambda",
                    "invoke",
                    "--invoke-address",
                    "127.0.0.1",
                    "--invoke-port",
                ])
                .arg(self.port.to_string())
                .args(["--output-format", "json", "--data-file"])
                .arg(&event_file)
                .current_dir(workspace_root())
                .stdin(Stdio::null()),
        );
        let deadline = Instant::now() + INVOKE_TIMEOUT;
        let status = loop {
            if let Some(status) = invoke.exited() {
                break status;
            }
            if let Some(status) = self.function.exited() {
                panic!(
                    "the {} function exited ({status}) during the invocation; its log:\n{}",
                    self.name,
                    self.function.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "no answer from {} within {INVOKE_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.function.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&event_file);
        let output = invoke.log();
        assert!(
            status.success(),
            "cargo lambda invoke {} failed ({status}): {output}\nthe function's log:\n{}",
            self.name,
            self.function.log_tail()
        );
        // The payload is printed last (pretty JSON); cargo-lambda may log lines before it.
        let start = output
            .find("\n{")
            .map(|newline| newline + 1)
            .or_else(|| output.starts_with('{').then_some(0))
            .unwrap_or_else(|| panic!("cargo lambda invoke printed no JSON: {output}"));
        let payload = &output[start..];
        serde_json::from_str(payload)
            .unwrap_or_else(|error| panic!("the payload is not JSON ({error}): {payload}"))
    }

    /// The function's log so far (its JSON log lines).
    pub fn log(&self) -> String {
        self.function.log()
    }
}

/// An API Gateway v2 response payload: its status and its body parsed as JSON.
#[track_caller]
pub fn http_response(payload: &Value) -> (u16, Value) {
    let status = payload["statusCode"]
        .as_u64()
        .and_then(|status| u16::try_from(status).ok())
        .unwrap_or_else(|| panic!("no statusCode in {payload}"));
    let body = payload["body"]
        .as_str()
        .unwrap_or_else(|| panic!("no text body in {payload}"));
    let body = serde_json::from_str(body)
        .unwrap_or_else(|error| panic!("the body is not JSON ({error}): {body}"));
    (status, body)
}

/// Waits until the emulator accepts connections on `port`.
#[track_caller]
fn wait_for_port(emulator: &mut ChildGuard, port: u16) {
    let deadline = Instant::now() + EMULATOR_TIMEOUT;
    loop {
        if let Some(status) = emulator.exited() {
            panic!(
                "{} exited ({status}) before serving; its log:\n{}",
                emulator.name(),
                emulator.log_tail()
            );
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "{} did not listen on 127.0.0.1:{port} within {EMULATOR_TIMEOUT:?}; its log:\n{}",
                emulator.name(),
                emulator.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_http_payload_is_read_as_status_and_json_body() {
        let payload = json!({"statusCode": 201, "headers": {}, "body": "{\"coins\":700}"});
        assert_eq!(http_response(&payload), (201, json!({"coins": 700})));
    }

    #[test]
    #[should_panic(expected = "no statusCode")]
    fn a_payload_without_a_status_is_not_an_http_response() {
        http_response(&json!({"errorType": "Panic"}));
    }
}
