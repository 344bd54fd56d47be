//! What every handler runs on, built once per cold start (or once by the local server).

use std::sync::Arc;

use coins_ledger::dynamo::DynamoStore;
use coins_ledger::{Ledger, LedgerConfig, Store};
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
    /// The price book compiled into the binary (its version travels with every quote).
    pub price_book: &'static PriceBook,
    pub gifts: &'static GiftCatalog,
}

impl<S: Store> Deps<S> {
    pub fn new(ledger: Ledger<S>, clock: Arc<dyn Clock>) -> Self {
        Deps {
            ledger,
            clock,
            price_book: PriceBook::embedded(),
            gifts: GiftCatalog::embedded(),
        }
    }

    /// What a Lambda function runs on: the store, the system clock, the configured shards.
    pub fn for_lambda(store: S, config: &Config) -> Self {
        let ledger = Ledger::with_config(store, ledger_config(config));
        Deps::new(ledger, Arc::new(SystemClock))
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
        let aws = aws_config_trusting_only_aws().load().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
        Ok((Deps::for_lambda(store, &config), aws))
    }
}

/// The roots of Amazon Trust Services, which sign every AWS endpoint's certificate (DynamoDB,
/// Secrets Manager, STS).
const AWS_TRUST_ROOTS_PEM: &str = include_str!("aws-trust-roots.pem");

/// The SDK configuration with an HTTPS client that trusts only the AWS roots. The default client
/// reads and parses the whole system certificate store at start, which tripled a function's
/// cold start (`scripts/bench-cold-start`); trusting only AWS's roots also narrows who can
/// impersonate it. Endpoint overrides (`AWS_ENDPOINT_URL_DYNAMODB`) still apply.
fn aws_config_trusting_only_aws() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
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
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}

/// The ledger's tunables from the function's configuration (the rest keep production defaults).
pub fn ledger_config(config: &Config) -> LedgerConfig {
    LedgerConfig {
        creator_shards: config.creator_shards,
        ..LedgerConfig::default()
    }
}
