//! The `wallet` Lambda function: wiring only (see the library for the handler).

use coins_http::Deps;
use lambda_http::{Error, service_fn};

#[global_allocator]
static ALLOCATOR: coins_http::Allocator = coins_http::Allocator;

// Lambda hands an environment one event at a time: a single-threaded runtime starts ~0.5 ms
// sooner than a worker pool that would sit idle (infra/README.md, "Cold starts").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let (deps, _) = Deps::cold_start().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(wallet::handle(&deps, req).await)
    }))
    .await
}
