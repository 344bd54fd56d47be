//! The SDK baseline with a trust store of only the roots AWS endpoints chain to (Amazon Root
//! CA 1-4 and Starfield Services Root G2, compiled in) instead of the platform's certificate
//! store: measures what reading and parsing every system root costs a cold start.

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
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let client = &client;
    lambda_runtime::run(service_fn(move |event| hello(client, event))).await
}
