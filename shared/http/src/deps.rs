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
        let aws = aws_config::load_from_env().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), &config.table_name);
        Ok((Deps::for_lambda(store, &config), aws))
    }
}

/// The ledger's tunables from the function's configuration (the rest keep production defaults).
pub fn ledger_config(config: &Config) -> LedgerConfig {
    LedgerConfig {
        creator_shards: config.creator_shards,
        ..LedgerConfig::default()
    }
}
