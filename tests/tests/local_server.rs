//! The local server as a developer runs it: the main flow in process on its in-memory store
//! (its default) and as the `local-server` binary, in memory and on DynamoDB Local (with the
//! stream consumers reading DynamoDB's Streams API); and the binary refusing to start on a
//! DynamoDB without its table.

use e2e_tests::LocalServer;
use e2e_tests::scenarios::main_flow;

#[test]
fn the_main_flow_runs_on_the_in_memory_store() {
    main_flow(&LocalServer::in_memory());
}

#[test]
fn the_main_flow_runs_on_the_local_server_binary() {
    main_flow(&LocalServer::binary(&[]));
}

#[test]
fn the_test_clock_moves_only_forward() {
    let server = LocalServer::in_memory();
    let start = server.now();
    assert_eq!(start, e2e_tests::server::CLOCK_START.parse().unwrap());
    let later = server.advance_clock(3600);
    assert_eq!(later, start + jiff::SignedDuration::from_hours(1));
    for body in [
        serde_json::json!({ "now": start.to_string() }),
        serde_json::json!({ "advance_seconds": -1 }),
        serde_json::json!({ "now": later.to_string(), "advance_seconds": 1 }),
        serde_json::json!({}),
    ] {
        server
            .api()
            .post("/_dev/clock")
            .json(&body)
            .send()
            .expect_problem(400, "invalid_request");
    }
    assert_eq!(server.now(), later);
}

#[test]
fn the_binary_on_dynamodb_without_the_table_exits_saying_how_to_create_it() {
    let endpoint = e2e_tests::dynamodb::endpoint();
    let table = e2e_tests::dynamodb::fresh_table_name("binary-no-table");
    let output = std::process::Command::new(e2e_tests::binaries::binary("local-server"))
        .args([
            "--port",
            "0",
            "--dynamodb-endpoint",
            &endpoint,
            "--table-name",
            &table,
        ])
        .output()
        .expect("the local server runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start: {stderr}");
    assert!(
        stderr.contains(&format!("table {table} does not exist"))
            && stderr.contains("--create-table"),
        "{stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening on"),
        "no banner before the check"
    );
}

#[test]
fn the_main_flow_runs_on_the_binary_on_dynamodb_with_its_stream_consumers() {
    let endpoint = e2e_tests::dynamodb::endpoint();
    let table = e2e_tests::dynamodb::fresh_table_name("binary-dynamodb");
    main_flow(&LocalServer::binary(&[
        "--dynamodb-endpoint",
        &endpoint,
        "--create-table",
        "--table-name",
        &table,
    ]));
}
