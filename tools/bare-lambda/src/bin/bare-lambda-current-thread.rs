//! The bare baseline on a single-threaded tokio runtime, as the functions run: separates what
//! that runtime choice saves on its own from what the functions' own start costs. The reference
//! stays `bare-lambda`, the cargo-lambda template's `#[tokio::main]`.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(json!({ "statusCode": 200, "body": "hello" }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    lambda_runtime::run(service_fn(hello)).await
}
