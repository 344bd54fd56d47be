//! The `gift` Lambda function: wiring only (see the library for the handler).

use coins_http::Deps;
use lambda_http::{Error, service_fn};

#[global_allocator]
static ALLOCATOR: coins_http::Allocator = coins_http::Allocator;

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (deps, _) = Deps::cold_start().await?;
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(gift::handle(&deps, req).await)
    }))
    .await
}
