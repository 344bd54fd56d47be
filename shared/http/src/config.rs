//! Typed configuration from the environment, read once per cold start.

use crate::webhook::WebhookSecret;

/// Creator credit is spread over this many counter shards unless `CREATOR_SHARDS` says otherwise.
pub const DEFAULT_CREATOR_SHARDS: u16 = 10;

/// The environment every function reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
    /// `CREATOR_SHARDS`: shards of each creator's diamond counter.
    pub creator_shards: u16,
}

/// A missing or invalid setting: the function refuses to start rather than run misconfigured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads from any lookup (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let table_name = lookup("TABLE_NAME")
            .filter(|name| !name.is_empty())
            .ok_or(ConfigError::Missing("TABLE_NAME"))?;
        if !(3..=255).contains(&table_name.len()) {
            return Err(ConfigError::Invalid {
                name: "TABLE_NAME",
                reason: "DynamoDB table names are 3 to 255 characters".into(),
            });
        }
        let creator_shards = match lookup("CREATOR_SHARDS").filter(|v| !v.is_empty()) {
            None => DEFAULT_CREATOR_SHARDS,
            Some(value) => value
                .parse::<u16>()
                .ok()
                .filter(|shards| (1..=1000).contains(shards))
                .ok_or_else(|| ConfigError::Invalid {
                    name: "CREATOR_SHARDS",
                    reason: format!("{value:?} is not a whole number from 1 to 1000"),
                })?,
        };
        Ok(Config {
            table_name,
            creator_shards,
        })
    }
}

/// Where the payment webhook's secret comes from.
#[derive(Clone, Debug)]
pub enum WebhookSecretSource {
    /// `PAYMENT_WEBHOOK_SECRET_ARN`: fetched from AWS Secrets Manager at cold start (on AWS).
    SecretsManager { arn: String },
    /// `PAYMENT_WEBHOOK_SECRET`: given in plain text (local runs and benchmarks only).
    Plain(WebhookSecret),
}

impl WebhookSecretSource {
    pub fn from_env() -> Result<WebhookSecretSource, ConfigError> {
        WebhookSecretSource::from_lookup(|name| std::env::var(name).ok())
    }

    /// The ARN wins when both are set: on AWS the plain variable should never be used.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<WebhookSecretSource, ConfigError> {
        if let Some(arn) = lookup("PAYMENT_WEBHOOK_SECRET_ARN").filter(|v| !v.is_empty()) {
            if !arn.starts_with("arn:") {
                return Err(ConfigError::Invalid {
                    name: "PAYMENT_WEBHOOK_SECRET_ARN",
                    reason: "expected a Secrets Manager ARN".into(),
                });
            }
            return Ok(WebhookSecretSource::SecretsManager { arn });
        }
        match lookup("PAYMENT_WEBHOOK_SECRET").filter(|v| !v.is_empty()) {
            Some(secret) => Ok(WebhookSecretSource::Plain(
                WebhookSecret::new(secret).expect("filtered non-empty above"),
            )),
            None => Err(ConfigError::Missing(
                "PAYMENT_WEBHOOK_SECRET_ARN (or PAYMENT_WEBHOOK_SECRET for local runs)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn shards_default_to_ten() {
        let config = Config::from_lookup(env(&[("TABLE_NAME", "coins")])).unwrap();
        assert_eq!(config.creator_shards, 10);
        assert_eq!(config.table_name, "coins");
    }

    #[test]
    fn a_missing_table_or_bad_shard_count_refuses_to_start() {
        assert_eq!(
            Config::from_lookup(env(&[])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        for bad in ["0", "-1", "ten", "1001"] {
            assert!(
                Config::from_lookup(env(&[("TABLE_NAME", "coins"), ("CREATOR_SHARDS", bad)]))
                    .is_err(),
                "{bad}"
            );
        }
        assert!(Config::from_lookup(env(&[("TABLE_NAME", "ab")])).is_err());
    }

    #[test]
    fn the_webhook_secret_comes_from_the_arn_or_plain_text() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:webhook";
        assert!(matches!(
            WebhookSecretSource::from_lookup(env(&[
                ("PAYMENT_WEBHOOK_SECRET_ARN", arn),
                ("PAYMENT_WEBHOOK_SECRET", "plain")
            ])),
            Ok(WebhookSecretSource::SecretsManager { .. })
        ));
        assert!(matches!(
            WebhookSecretSource::from_lookup(env(&[("PAYMENT_WEBHOOK_SECRET", "plain")])),
            Ok(WebhookSecretSource::Plain(_))
        ));
        assert!(WebhookSecretSource::from_lookup(env(&[])).is_err());
        assert!(
            WebhookSecretSource::from_lookup(env(&[("PAYMENT_WEBHOOK_SECRET_ARN", "webhook")]))
                .is_err()
        );
    }
}
