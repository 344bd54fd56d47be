//! Test users and their bearer tokens: HS256 JWTs minted exactly as the local server verifies
//! them (its `DEV_JWT_SECRET`, issuer `coins-local`, audience `coins-api`), with the claims of
//! API.md. Minted here with `jsonwebtoken` rather than by the server's own code, so a change to
//! what the server accepts shows up as a failing test.

use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// The dev secret the tests give the local server (explicitly, never its default).
pub const DEV_JWT_SECRET: &str = "e2e-dev-jwt-secret-not-for-production";
/// What the local server checks in `iss` and `aud` (the identity provider and app client on AWS).
pub const DEV_ISSUER: &str = "coins-local";
pub const DEV_AUDIENCE: &str = "coins-api";
/// The admin scope of API.md.
pub const ADMIN_SCOPE: &str = "coins:admin";

/// Tokens are checked against the real clock (not the test clock), so an hour is plenty.
const TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(1);

/// A caller: the identity claims of API.md.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct User {
    pub sub: String,
    pub birthdate: String,
    pub billing_country: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billing_region: Option<String>,
    pub zoneinfo: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
}

/// The registered claims around a user's.
#[derive(Serialize)]
struct TokenClaims<'a> {
    #[serde(flatten)]
    user: &'a User,
    iss: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

impl User {
    /// An adult in Tokyo billed in Japan, with a unique id (`<label>-<random>`), so tests that
    /// share a table never share a wallet.
    pub fn new(label: &str) -> User {
        User {
            sub: format!("{label}-{:012x}", rand::random::<u64>() >> 16),
            birthdate: "1990-04-12".into(),
            billing_country: "JP".into(),
            billing_region: None,
            zoneinfo: "Asia/Tokyo".into(),
            scope: "openid".into(),
        }
    }

    /// Billed in `country`, living in `zoneinfo`.
    pub fn in_country(mut self, country: &str, zoneinfo: &str) -> User {
        country.clone_into(&mut self.billing_country);
        zoneinfo.clone_into(&mut self.zoneinfo);
        self.billing_region = None;
        self
    }

    /// With an ISO 3166-2 billing region (`US-AL`).
    pub fn in_region(mut self, region: &str) -> User {
        self.billing_region = Some(region.to_owned());
        self
    }

    /// Born on `birthdate` (`YYYY-MM-DD`).
    pub fn born(mut self, birthdate: &str) -> User {
        birthdate.clone_into(&mut self.birthdate);
        self
    }

    /// With the `coins:admin` scope.
    pub fn admin(mut self) -> User {
        self.scope = format!("openid {ADMIN_SCOPE}");
        self
    }

    /// A bearer token the local server accepts.
    pub fn token(&self) -> String {
        self.token_signed_with(DEV_JWT_SECRET)
    }

    /// A token signed with another secret (the server must refuse it).
    pub fn token_signed_with(&self, secret: &str) -> String {
        let now = Timestamp::now();
        self.mint(secret, now, now + TOKEN_LIFETIME)
    }

    /// A correctly signed token that expired ten minutes ago, well past the usual 60 s leeway
    /// of JWT validators (the server must refuse it).
    pub fn expired_token(&self) -> String {
        let now = Timestamp::now();
        self.mint(
            DEV_JWT_SECRET,
            now - SignedDuration::from_hours(2),
            now - SignedDuration::from_mins(10),
        )
    }

    /// A correctly signed, unexpired token whose claims are this user's with `claim` replaced
    /// by `value` (or removed with `None`): what a misconfigured identity provider would send.
    pub fn token_with_claim(&self, claim: &str, value: Option<&str>) -> String {
        let now = Timestamp::now();
        let mut claims = serde_json::to_value(TokenClaims {
            user: self,
            iss: DEV_ISSUER,
            aud: DEV_AUDIENCE,
            iat: now.as_second(),
            exp: (now + TOKEN_LIFETIME).as_second(),
        })
        .expect("claims serialize");
        let map = claims.as_object_mut().expect("claims are an object");
        match value {
            Some(value) => map.insert(claim.to_owned(), value.into()),
            None => map.remove(claim),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
        )
        .expect("HS256 signs any JSON claims")
    }

    fn mint(&self, secret: &str, issued_at: Timestamp, expires_at: Timestamp) -> String {
        let claims = TokenClaims {
            user: self,
            iss: DEV_ISSUER,
            aud: DEV_AUDIENCE,
            iat: issued_at.as_second(),
            exp: expires_at.as_second(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .expect("HS256 signs any serializable claims")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation};

    #[test]
    fn a_token_carries_the_claims_of_api_md_and_verifies_with_the_dev_secret() {
        let user = User::new("alice")
            .in_country("US", "America/Chicago")
            .in_region("US-AL")
            .admin();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[DEV_ISSUER]);
        validation.set_audience(&[DEV_AUDIENCE]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &user.token(),
            &DecodingKey::from_secret(DEV_JWT_SECRET.as_bytes()),
            &validation,
        )
        .unwrap();
        let claims = data.claims;
        assert_eq!(claims["sub"], user.sub.as_str());
        assert_eq!(claims["birthdate"], "1990-04-12");
        assert_eq!(claims["billing_country"], "US");
        assert_eq!(claims["billing_region"], "US-AL");
        assert_eq!(claims["zoneinfo"], "America/Chicago");
        assert_eq!(claims["scope"], "openid coins:admin");
    }

    #[test]
    fn users_are_unique_and_a_region_is_left_out_unless_given() {
        let a = User::new("bob");
        let b = User::new("bob");
        assert_ne!(a.sub, b.sub);
        let claims = serde_json::to_value(&a).unwrap();
        assert!(claims.get("billing_region").is_none());
    }

    #[test]
    fn a_claim_can_be_replaced_or_removed_in_a_signed_token() {
        let user = User::new("dave");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[DEV_AUDIENCE]);
        let key = DecodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
        let decode = |token: &str| {
            jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
                .unwrap()
                .claims
        };
        let without = decode(&user.token_with_claim("birthdate", None));
        assert!(without.get("birthdate").is_none());
        assert_eq!(without["sub"], user.sub.as_str());
        let replaced = decode(&user.token_with_claim("zoneinfo", Some("Mars/Olympus")));
        assert_eq!(replaced["zoneinfo"], "Mars/Olympus");
    }

    #[test]
    fn an_expired_or_foreign_token_does_not_verify() {
        let user = User::new("carol");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[DEV_AUDIENCE]);
        let key = DecodingKey::from_secret(DEV_JWT_SECRET.as_bytes());
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(&user.expired_token(), &key, &validation)
                .is_err()
        );
        assert!(
            jsonwebtoken::decode::<serde_json::Value>(
                &user.token_signed_with("another-secret"),
                &key,
                &validation
            )
            .is_err()
        );
    }
}
