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
