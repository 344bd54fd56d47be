//! What every handler runs on, built once per cold start (or once by the local server).

use std::sync::Arc;

use coins_ledger::dynamo::DynamoStore;
use coins_ledger::{Ledger, Store};
use coins_rules::{GiftCatalog, PriceBook};
use jiff::Timestamp;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};

/// The shared dependencies of the handlers, generic over the ledger's store so the same handler
/// runs on DynamoDB (Lambda, or the local server by flag) and in memory (local server, tests).
#[derive(Clone, Debug)]
pub struct Deps<S: Store> {
    pub ledger: Ledger<S>,
    pub clock: Arc<dyn Clock>,
}

impl<S: Store> Deps<S> {
    pub fn new(ledger: Ledger<S>, clock: Arc<dyn Clock>) -> Self {
        Deps { ledger, clock }
    }

    /// The price book compiled into the binary (its version travels with every quote), loaded
    /// on first use: only the functions that price or check ages pay its ~0.2 ms load, once per
    /// cold start.
    pub fn price_book(&self) -> &'static PriceBook {
        PriceBook::embedded()
    }

    /// The gift catalog compiled into the binary, loaded on first use.
    pub fn gifts(&self) -> &'static GiftCatalog {
        GiftCatalog::embedded()
    }

    /// What a Lambda function runs on: the store and the system clock.
    pub fn for_lambda(store: S) -> Self {
        Deps::new(Ledger::new(store), Arc::new(SystemClock))
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl Deps<DynamoStore> {
    /// A Lambda function's cold start, done once per execution environment: JSON logs, the
    /// configuration from the environment, and one DynamoDB client. The AWS configuration comes
    /// back too, for a function that needs another service (the payment webhook's secret).
    pub async fn cold_start() -> Result<(Self, aws_config::SdkConfig), ConfigError> {
        crate::telemetry::init();
        let config = Config::from_env()?;
        let aws = lambda_sdk_config()?;
        let mut dynamodb = aws_sdk_dynamodb::config::Builder::from(&aws);
        if let Some(endpoint) = env_var(DYNAMODB_ENDPOINT_VAR) {
            dynamodb = dynamodb.endpoint_url(endpoint);
        }
        let client = aws_sdk_dynamodb::Client::from_conf(dynamodb.build());
        let store = DynamoStore::new(client, &config.table_name);
        Ok((Deps::for_lambda(store), aws))
    }
}

/// The DynamoDB endpoint override (DynamoDB Local in tests), as the AWS SDKs name it.
const DYNAMODB_ENDPOINT_VAR: &str = "AWS_ENDPOINT_URL_DYNAMODB";

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

/// The roots of Amazon Trust Services, which sign every AWS endpoint's certificate (DynamoDB,
/// Secrets Manager, STS).
const AWS_TRUST_ROOTS_PEM: &str = include_str!("aws-trust-roots.pem");

/// The SDK configuration straight from what Lambda puts in every function's environment: the
/// region (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`, ...) and
/// optionally `AWS_ENDPOINT_URL`. aws-config's loader would search profile files, SSO, web
/// identity, containers and IMDS first, none of which exist on Lambda; skipping it saves ~0.6 ms
/// of init (`scripts/bench-cold-start`: `bare-lambda-sdk-aws-roots` against `-direct`).
///
/// The HTTPS client trusts only the AWS roots: the default one reads and parses the whole
/// system certificate store at start, which tripled a function's cold start, and trusting only
/// AWS's roots also narrows who can impersonate it.
fn lambda_sdk_config() -> Result<aws_config::SdkConfig, ConfigError> {
    use aws_config::environment::EnvironmentVariableCredentialsProvider;
    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_dynamodb::config::SharedCredentialsProvider;
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};

    let region = env_var("AWS_REGION").ok_or(ConfigError::Missing("AWS_REGION"))?;
    let trust_store = TrustStore::empty()
        .with_native_roots(false)
        .with_pem_certificate(AWS_TRUST_ROOTS_PEM.as_bytes());
    let tls_context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .expect("the compiled-in AWS roots are valid PEM");
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(tls_context)
        .build_https();
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region))
        .credentials_provider(SharedCredentialsProvider::new(
            EnvironmentVariableCredentialsProvider::new(),
        ))
        .http_client(https);
    if let Some(endpoint) = env_var("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(endpoint);
    }
    Ok(builder.build())
}
