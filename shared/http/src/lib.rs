//! The HTTP edge shared by the functions behind API Gateway: verified claims, problem+json
//! errors, request parsing, JSON responses, routes and webhook signatures.
//!
//! Everything here is pure and synchronous except [`telemetry::serve`], the frame each handler
//! runs in, so the same code serves API Gateway on Lambda and the local server. What a handler
//! runs on (the ledger, the clock, configuration) is `coins-runtime`'s.

pub mod body;
pub mod claims;
pub mod error;
pub mod origin;
pub mod response;
pub mod routing;
pub mod telemetry;
pub mod webhook;

pub use body::{IdempotencyKey, json_body, page, path_param, query_param};
pub use claims::Claims;
pub use error::{ApiError, Problem};
pub use routing::{Route, resolve, unrouted};
pub use telemetry::{serve, serve_checked};
pub use webhook::{SignatureError, WebhookSecret};
