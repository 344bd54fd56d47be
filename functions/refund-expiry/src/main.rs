//! The `refund-expiry` Lambda function: wiring only (see the library for the handler).

use coins_http::{Config, Deps};
use coins_ledger::dynamo::DynamoStore;
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    coins_http::telemetry::init();
    let config = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
    let deps = Deps::for_lambda(store, &config);
    lambda_runtime::run(service_fn(|event| refund_expiry::handle(&deps, event))).await
}
