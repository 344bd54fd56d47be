//! The binary refuses to expose its development conveniences: beyond loopback, or over a table
//! that is not local, it starts only with the dev routes off and secrets of the operator's own.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use local_server::exposure::Exposure;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The server binary with the development defaults (no secrets in its environment).
fn server(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_local-server"));
    command
        .args(args)
        .env_remove("DEV_JWT_SECRET")
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .stdin(Stdio::null());
    command
}

/// Runs a server that must refuse: it exits at once, non-zero, saying why.
fn refused(command: &mut Command) -> String {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    for _ in 0..200 {
        if child.try_wait().expect("waitable").is_some() {
            let Output { status, stderr, .. } = child.wait_with_output().expect("its output");
            assert!(!status.success(), "it exited with success");
            return String::from_utf8_lossy(&stderr).into_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().ok();
    panic!("the server started instead of refusing");
}

#[test]
fn the_server_refuses_a_host_beyond_loopback_with_the_dev_defaults() {
    let error = refused(&mut server(&["--host", "0.0.0.0", "--port", "0"]));
    assert!(error.contains("refusing to start"), "{error}");
    assert!(error.contains("--host 0.0.0.0 is not loopback"), "{error}");
    assert!(error.contains("the /_dev routes are on"), "{error}");
    assert!(
        error.contains("DEV_JWT_SECRET is the public default"),
        "{error}"
    );
}

#[test]
fn the_server_refuses_a_table_that_is_not_local_with_the_dev_defaults() {
    // Refused before any connection: nothing listens at this address.
    let error = refused(&mut server(&[
        "--port",
        "0",
        "--dynamodb-endpoint",
        "http://127.0.0.1.example.invalid:8000",
    ]));
    assert!(error.contains("is not local"), "{error}");
}

#[test]
fn turning_off_one_default_is_not_enough() {
    let error = refused(
        server(&["--host", "0.0.0.0", "--port", "0", "--no-dev-routes"])
            .env("DEV_JWT_SECRET", "an operator's own secret"),
    );
    assert!(
        error.contains("STRIPE_WEBHOOK_SECRET is the public default"),
        "{error}"
    );
    assert!(!error.contains("/_dev"), "{error}");
}

#[test]
fn loopback_over_a_local_table_keeps_every_convenience() {
    for endpoint in [
        None,
        Some("http://127.0.0.1:8000"),
        Some("http://[::1]:8000"),
    ] {
        let exposure = Exposure {
            host: "127.0.0.1",
            dynamodb_endpoint: endpoint,
            dev_routes: true,
            default_dev_jwt_secret: true,
            default_webhook_secret: true,
        };
        assert_eq!(exposure.check(), Ok(()), "{endpoint:?}");
    }
}

/// Beyond loopback with the dev routes off and its own secrets, the server starts, and `/_dev`
/// is not there (404, as on AWS) while the API is.
#[tokio::test]
async fn with_the_dev_routes_off_and_its_own_secrets_it_serves_beyond_loopback() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_local-server"))
        .args(["--host", "0.0.0.0", "--port", "0", "--no-dev-routes"])
        .env("DEV_JWT_SECRET", "an operator's own secret")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_an_operators_own")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the server binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let address = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.expect("stdout readable") {
            if let Some(address) = line.strip_prefix("listening on http://") {
                return address.to_owned();
            }
        }
        panic!("the server ended without listening");
    })
    .await
    .expect("the server listens within 20 s");
    let port = address.rsplit(':').next().expect("a port");
    let loopback = format!("127.0.0.1:{port}");
    assert_eq!(status(&loopback, "GET /_dev/clock").await, 404);
    assert_eq!(status(&loopback, "GET /v1/packages?country=JP").await, 401);
    child.kill().await.ok();
}

async fn status(address: &str, request_line: &str) -> u16 {
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream
        .write_all(
            format!("{request_line} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("sends");
    let mut response = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        stream.read_to_string(&mut response),
    )
    .await
    .expect("answers within 10 s")
    .expect("reads");
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response}"))
}
