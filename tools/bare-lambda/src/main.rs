//! The cold-start baseline: the smallest function the Rust runtime can run, set up the way the
//! cargo-lambda template does (default tracing subscriber, `run(service_fn(..))`). Every real
//! function's init time is reported as a ratio to this one.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "statusCode": 200, "body": "hello" }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(hello)).await
}
