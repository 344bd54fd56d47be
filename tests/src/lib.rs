//! The end-to-end harness: starts the local server (or the Lambda emulator) on 127.0.0.1, mints
//! the callers' tokens, signs payment webhooks and speaks HTTP to them. The tests themselves are
//! in `tests/tests/`, the handler benchmark in `tests/benches/`.

pub mod app_stores;
pub mod binaries;
pub mod client;
pub mod conformance;
pub mod dynamodb;
pub mod events;
pub mod flows;
pub mod identity;
pub mod lambda;
pub mod localstripe;
pub mod payments;
pub mod process;
pub mod scenarios;
pub mod server;

pub use client::{Api, Reply};
pub use identity::User;
pub use server::LocalServer;
