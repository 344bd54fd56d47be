//! The `refund` Lambda function: wiring only (see the library for the handler).

use coins_http::{Config, Deps};
use coins_ledger::dynamo::DynamoStore;
use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    coins_http::telemetry::init();
    let config = Config::from_env()?;
    let aws = aws_config::load_from_env().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
    let deps = Deps::for_lambda(store, &config);
    lambda_http::run(service_fn(|req| async {
        Ok::<_, Error>(refund::handle(&deps, req).await)
    }))
    .await
}
