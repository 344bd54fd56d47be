//! HTTP glue shared by the functions: verified claims, problem+json errors, request parsing,
//! JSON responses, routes, logging, the clock and the payment webhook's signature.
//!
//! Everything here is pure and synchronous except [`telemetry::serve`], the frame each handler
//! runs in, so the same code serves API Gateway on Lambda and the local server.

pub mod body;
pub mod claims;
pub mod clock;
pub mod config;
pub mod convert;
pub mod deps;
pub mod error;
pub mod response;
pub mod routing;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod webhook;

pub use body::{IdempotencyKey, json_body, path_param, query_param};
pub use claims::Claims;
pub use clock::{Clock, SystemClock, TestClock};
pub use config::{Config, ConfigError, WebhookSecretSource};
pub use deps::Deps;
pub use error::ApiError;
pub use routing::{Route, resolve};
pub use telemetry::serve;
pub use webhook::{SignatureError, WebhookSecret};

/// The global allocator every function binary declares (`#[global_allocator]` in its
/// `main.rs`), named once here so all of them, and the handler benchmark, use the same one.
pub use mimalloc::MiMalloc as Allocator;
