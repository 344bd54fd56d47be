//! Typed configuration from the environment, read once per cold start.

/// The environment every function reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME`: the DynamoDB table.
    pub table_name: String,
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
        Ok(Config { table_name })
    }
}

/// A secret a function needs (a webhook signing secret, an API key), and where it comes from.
#[derive(Clone)]
pub enum Secret {
    /// `<NAME>_ARN`: fetched from AWS Secrets Manager at cold start (on AWS).
    SecretsManager { arn: String },
    /// `<NAME>`: given in plain text (local runs and benchmarks only).
    Plain(String),
}

/// Why a secret could not be loaded at cold start.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("reading the secret {arn} from Secrets Manager failed: {reason}")]
    SecretsManager { arn: String, reason: String },
    #[error("the secret {arn} has no string value")]
    NoString { arn: String },
    #[error("the secret {name} is empty")]
    Empty { name: String },
}

impl Secret {
    /// The secret `name` from the environment: `<name>_ARN`, else `<name>`.
    pub fn from_env(name: &'static str) -> Result<Secret, ConfigError> {
        Secret::from_lookup(name, |var| std::env::var(var).ok())
    }

    /// The ARN wins when both are set: on AWS the plain variable should never be used.
    pub fn from_lookup(
        name: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Secret, ConfigError> {
        let arn_var = format!("{name}_ARN");
        if let Some(arn) = lookup(&arn_var).filter(|v| !v.is_empty()) {
            if !arn.starts_with("arn:") {
                return Err(ConfigError::Invalid {
                    name,
                    reason: format!("{arn_var} is not a Secrets Manager ARN"),
                });
            }
            return Ok(Secret::SecretsManager { arn });
        }
        match lookup(name).filter(|v| !v.is_empty()) {
            Some(secret) => Ok(Secret::Plain(secret)),
            None => Err(ConfigError::Missing(name)),
        }
    }

    /// The secret's value: from Secrets Manager by ARN (once per cold start), or as given.
    #[cfg(feature = "secrets")]
    pub async fn load(self, aws: &aws_config::SdkConfig) -> Result<String, SecretError> {
        let (name, value) = match self {
            Secret::Plain(value) => ("(plain)".to_owned(), value),
            Secret::SecretsManager { arn } => {
                let output = aws_sdk_secretsmanager::Client::new(aws)
                    .get_secret_value()
                    .secret_id(&arn)
                    .send()
                    .await
                    .map_err(|error| SecretError::SecretsManager {
                        arn: arn.clone(),
                        reason: error.to_string(),
                    })?;
                let value = output
                    .secret_string()
                    .ok_or_else(|| SecretError::NoString { arn: arn.clone() })?;
                (arn, value.trim().to_owned())
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty { name });
        }
        Ok(value)
    }
}

/// Never prints the value.
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::SecretsManager { arn } => write!(f, "Secret::SecretsManager({arn})"),
            Secret::Plain(_) => f.write_str("Secret::Plain(<redacted>)"),
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
    fn the_table_is_read_from_the_environment() {
        let config = Config::from_lookup(env(&[("TABLE_NAME", "coins")])).unwrap();
        assert_eq!(config.table_name, "coins");
    }

    #[test]
    fn a_missing_or_impossible_table_name_refuses_to_start() {
        assert_eq!(
            Config::from_lookup(env(&[])),
            Err(ConfigError::Missing("TABLE_NAME"))
        );
        assert!(Config::from_lookup(env(&[("TABLE_NAME", "ab")])).is_err());
    }

    #[test]
    fn a_secret_comes_from_the_arn_or_plain_text() {
        let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:webhook";
        let name = "STRIPE_WEBHOOK_SECRET";
        assert!(matches!(
            Secret::from_lookup(
                name,
                env(&[
                    ("STRIPE_WEBHOOK_SECRET_ARN", arn),
                    ("STRIPE_WEBHOOK_SECRET", "plain")
                ])
            ),
            Ok(Secret::SecretsManager { .. })
        ));
        let plain = Secret::from_lookup(name, env(&[("STRIPE_WEBHOOK_SECRET", "plain")]));
        assert!(matches!(plain, Ok(Secret::Plain(_))));
        assert_eq!(format!("{:?}", plain.unwrap()), "Secret::Plain(<redacted>)");
        assert!(Secret::from_lookup(name, env(&[])).is_err());
        assert!(
            Secret::from_lookup(name, env(&[("STRIPE_WEBHOOK_SECRET_ARN", "webhook")])).is_err()
        );
    }
}
