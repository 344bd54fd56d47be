//! The baseline plus what every table-backed function pays before its first request: loading the
//! AWS configuration and building one DynamoDB client. It separates the SDK's share of a cold
//! start from the function's own.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

async fn hello(
    _client: &aws_sdk_dynamodb::Client,
    _event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    Ok(json!({ "statusCode": 200, "body": "hello" }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let client = &client;
    lambda_runtime::run(service_fn(move |event| hello(client, event))).await
}
