//! What every Lambda function runs on, built once per cold start: typed configuration from the
//! environment, JSON logs, one SDK client, the ledger over DynamoDB, the clock, the allocator,
//! and the `main` of each kind of function ([`http_function!`], [`event_function!`]).
//!
//! Nothing here knows HTTP requests or stream records: handlers get a [`Deps`] and do their own
//! parsing (`coins-http` for API Gateway events).

pub mod clock;
pub mod config;
pub mod deps;
#[cfg(feature = "https")]
pub mod https;
pub mod telemetry;

pub use aws_config::SdkConfig;
pub use clock::{Clock, ClockRefused, SystemClock, TestClock};
pub use config::{Config, ConfigError, Secret, SecretError};
pub use deps::Deps;

/// The global allocator every function binary declares (through its `main` macro), named once
/// here so all of them, and the handler benchmark, use the same one.
pub use mimalloc::MiMalloc as Allocator;

#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "http")]
    pub use lambda_http;
    pub use lambda_runtime;
    pub use tokio;
}

/// The Tokio runtime of a function: single-threaded, since Lambda hands an environment one event
/// at a time, and a worker pool that would sit idle costs ~0.5 ms of init (infra/README.md,
/// "Cold starts").
pub fn function_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// The `main` of a function behind API Gateway: the allocator, a cold start, then every request
/// through `$handle(&deps, request)`; or, with `$load`, `$handle(&deps, &loaded, request)` where
/// `$load(&aws_config)` runs once at cold start (to fetch a secret, say).
#[cfg(feature = "http")]
#[macro_export]
macro_rules! http_function {
    ($handle:path) => {
        $crate::http_function!(@main deps, _aws, req, [] => $handle(&deps, req));
    };
    ($handle:path, $load:path) => {
        $crate::http_function!(@main deps, aws, req, [let loaded = $load(&aws).await?;]
            => $handle(&deps, &loaded, req));
    };
    (@main $deps:ident, $aws:ident, $req:ident, [$($load:tt)*] => $call:expr) => {
        #[global_allocator]
        static ALLOCATOR: $crate::Allocator = $crate::Allocator;

        fn main() -> Result<(), $crate::__private::lambda_http::Error> {
            use $crate::__private::lambda_http::{self, Error, service_fn};
            $crate::function_runtime()?.block_on(async {
                let ($deps, $aws) = $crate::Deps::cold_start().await?;
                $($load)*
                lambda_http::run(service_fn(|$req| async { Ok::<_, Error>($call.await) })).await
            })
        }
    };
}

/// The `main` of a function fed by events (a stream, a queue, a schedule): the allocator, a cold
/// start, then every event through `$handle(&deps, event)`; or, with `$load` (run once at cold
/// start with the AWS configuration), `$handle(&deps, &loaded, event)`.
#[macro_export]
macro_rules! event_function {
    ($handle:path) => {
        $crate::event_function!(@main deps, _aws, event, [] => $handle(&deps, event));
    };
    ($handle:path, $load:path) => {
        $crate::event_function!(@main deps, aws, event, [let loaded = $load(&aws).await?;]
            => $handle(&deps, &loaded, event));
    };
    (@main $deps:ident, $aws:ident, $event:ident, [$($load:tt)*] => $call:expr) => {
        #[global_allocator]
        static ALLOCATOR: $crate::Allocator = $crate::Allocator;

        fn main() -> Result<(), $crate::__private::lambda_runtime::Error> {
            $crate::function_runtime()?.block_on(run())
        }

        async fn run() -> Result<(), $crate::__private::lambda_runtime::Error> {
            use $crate::__private::lambda_runtime::{self, service_fn};
            let ($deps, $aws) = $crate::Deps::cold_start().await?;
            $($load)*
            lambda_runtime::run(service_fn(|$event| $call)).await
        }
    };
}
