//! The main flow against the local server's in-memory store (its default): in-process, and as
//! the `local-server` binary a developer starts.

use e2e_tests::LocalServer;
use e2e_tests::scenarios::main_flow;

#[test]
fn the_main_flow_runs_on_the_in_memory_store() {
    main_flow(&LocalServer::in_memory());
}

#[test]
fn the_main_flow_runs_on_the_local_server_binary() {
    main_flow(&LocalServer::binary());
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
