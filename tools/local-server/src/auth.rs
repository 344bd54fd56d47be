//! Development authentication: HS256 bearer tokens whose claims mirror the JWT authorizer's.
//!
//! On AWS the HTTP API's JWT authorizer verifies the token (issuer, audience, expiry, signature)
//! and hands the function its claims as strings. Here the local server does the same with a
//! shared dev secret, so the functions cannot tell the difference. Token expiry is checked
//! against the real clock, not the test clock: moving the test clock two weeks ahead to close a
//! refund window must not log everyone out.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// `DEV_JWT_SECRET` when unset. Public on purpose: it signs only local development tokens.
pub const DEFAULT_DEV_JWT_SECRET: &str = "coins-local-dev-jwt-secret";
/// The issuer and audience of dev tokens (on AWS: the identity provider and the app client).
pub const DEV_ISSUER: &str = "coins-local";
pub const DEV_AUDIENCE: &str = "coins-api";
/// Dev tokens last a week of real time.
pub const DEV_TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(24 * 7);

/// The claims of a dev token: API.md's identity claims plus the registered ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevClaims {
    pub sub: String,
    pub birthdate: String,
    pub billing_country: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_region: Option<String>,
    pub zoneinfo: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

impl DevClaims {
    /// A Japanese adult in Tokyo: the example user printed at start.
    pub fn example(now: Timestamp) -> DevClaims {
        DevClaims::new("alice", "1990-01-01", "JP", None, "Asia/Tokyo", false, now)
    }

    pub fn new(
        sub: &str,
        birthdate: &str,
        billing_country: &str,
        billing_region: Option<&str>,
        zoneinfo: &str,
        admin: bool,
        now: Timestamp,
    ) -> DevClaims {
        DevClaims {
            sub: sub.to_owned(),
            birthdate: birthdate.to_owned(),
            billing_country: billing_country.to_owned(),
            billing_region: billing_region.map(str::to_owned),
            zoneinfo: zoneinfo.to_owned(),
            scope: if admin {
                "coins:admin".into()
            } else {
                String::new()
            },
            iss: DEV_ISSUER.into(),
            aud: DEV_AUDIENCE.into(),
            iat: now.as_second(),
            exp: (now + DEV_TOKEN_LIFETIME).as_second(),
        }
    }
}

/// The dev signing secret.
#[derive(Clone)]
pub struct DevAuth {
    secret: Vec<u8>,
}

/// Why a bearer token was refused (a 401, like the authorizer's).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing `Authorization: Bearer <token>` header")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(#[from] jsonwebtoken::errors::Error),
}

impl DevAuth {
    pub fn new(secret: impl Into<Vec<u8>>) -> DevAuth {
        DevAuth {
            secret: secret.into(),
        }
    }

    /// `DEV_JWT_SECRET`, or the documented development default.
    pub fn from_env() -> DevAuth {
        DevAuth::new(
            std::env::var("DEV_JWT_SECRET")
                .ok()
                .filter(|secret| !secret.is_empty())
                .unwrap_or_else(|| DEFAULT_DEV_JWT_SECRET.into()),
        )
    }

    pub fn mint(&self, claims: &DevClaims) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(&self.secret),
        )
        .expect("HS256 signs any serializable claims")
    }

    /// Verifies `Authorization: Bearer <token>` and returns the claims as the JWT authorizer
    /// passes them: every value a string (numbers and booleans printed, arrays as `[a b]`).
    pub fn verify(
        &self,
        authorization: Option<&str>,
    ) -> Result<HashMap<String, String>, AuthError> {
        let token = authorization
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AuthError::Missing)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[DEV_ISSUER]);
        validation.set_audience(&[DEV_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &DecodingKey::from_secret(&self.secret),
            &validation,
        )?;
        Ok(data
            .claims
            .into_iter()
            .map(|(name, value)| (name, authorizer_string(value)))
            .collect())
    }
}

/// How API Gateway's JWT authorizer flattens a claim into the string map.
fn authorizer_string(value: serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text,
        serde_json::Value::Array(items) => format!(
            "[{}]",
            items
                .into_iter()
                .map(authorizer_string)
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> DevAuth {
        DevAuth::new("test-secret")
    }

    #[test]
    fn a_minted_token_verifies_into_string_claims() {
        let token = auth().mint(&DevClaims::example(Timestamp::now()));
        let claims = auth().verify(Some(&format!("Bearer {token}"))).unwrap();
        assert_eq!(claims["sub"], "alice");
        assert_eq!(claims["billing_country"], "JP");
        assert_eq!(claims["zoneinfo"], "Asia/Tokyo");
        assert!(claims["exp"].parse::<i64>().is_ok());
        assert!(!claims.contains_key("scope"));
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = DevAuth::new("other").mint(&DevClaims::example(Timestamp::now()));
        assert!(matches!(
            auth().verify(Some(&format!("Bearer {token}"))),
            Err(AuthError::Invalid(_))
        ));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let long_ago = Timestamp::now() - SignedDuration::from_hours(24 * 30);
        let token = auth().mint(&DevClaims::example(long_ago));
        assert!(auth().verify(Some(&format!("Bearer {token}"))).is_err());
    }

    #[test]
    fn no_bearer_token_is_missing() {
        assert!(matches!(auth().verify(None), Err(AuthError::Missing)));
        assert!(matches!(
            auth().verify(Some("Basic abc")),
            Err(AuthError::Missing)
        ));
        assert!(matches!(
            auth().verify(Some("Bearer ")),
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn arrays_and_numbers_flatten_as_the_authorizer_does() {
        assert_eq!(authorizer_string(serde_json::json!(["a", "b"])), "[a b]");
        assert_eq!(authorizer_string(serde_json::json!(17)), "17");
        assert_eq!(authorizer_string(serde_json::json!(true)), "true");
    }
}
