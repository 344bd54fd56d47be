//! The AWS-roots SDK baseline without aws-config's loader: the DynamoDB client's configuration
//! is built directly from what Lambda puts in the environment (region, the role's credentials).
//! Measures what the loader's provider chains cost a cold start.

use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_sdk_dynamodb::config::Region;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::{Value, json};

/// The roots of Amazon Trust Services, which sign every AWS service endpoint's certificate.
const AWS_TRUST_ROOTS_PEM: &str = include_str!("../../aws-trust-roots.pem");

async fn hello(
    _client: &aws_sdk_dynamodb::Client,
    _event: LambdaEvent<Value>,
) -> Result<Value, Error> {
    Ok(json!({ "statusCode": 200, "body": "hello" }))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let trust_store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_TRUST_ROOTS_PEM.as_bytes());
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(
            TlsContext::builder()
                .with_trust_store(trust_store)
                .build()?,
        )
        .build_https();
    // Lambda always sets AWS_REGION and the execution role's credentials in the environment.
    let region = std::env::var("AWS_REGION")?;
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(EnvironmentVariableCredentialsProvider::new())
        .http_client(http_client)
        .build();
    let client = aws_sdk_dynamodb::Client::from_conf(config);
    let client = &client;
    lambda_runtime::run(service_fn(move |event| hello(client, event))).await
}
