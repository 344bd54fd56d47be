//! Google Cloud Pub/Sub push authentication: each push carries `Authorization: Bearer <OIDC ID
//! token>` signed by Google (RS256). It is believed when its key is one of Google's published
//! keys (JWKS, fetched and kept; fetched again for a key id we have not seen, at most once a
//! [`REFETCH_INTERVAL`], so tokens with made-up key ids cannot make us hammer Google), its
//! issuer is Google's, its audience is ours, it has not expired on our clock, and it names the
//! push subscription's service account with a verified email. That account is required: the
//! audience is public, and any Google account can mint a token for it (#18).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coins_runtime::https::HttpClient;
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::StoreError;

/// Google's OAuth 2.0 signing keys.
pub const GOOGLE_JWKS_URL: &str = "https://www.googleapis.com/oauth2/v3/certs";
const ISSUERS: [&str; 2] = ["https://accounts.google.com", "accounts.google.com"];
/// Clock skew allowed on `exp` and `iat`.
const LEEWAY_SECONDS: i64 = 60;
const TIMEOUT: Duration = Duration::from_secs(10);
/// The least time between two fetches of Google's keys.
pub const REFETCH_INTERVAL: SignedDuration = SignedDuration::from_secs(60);

/// Verifies push tokens for one subscription.
#[derive(Clone, Debug)]
pub struct PushVerifier {
    http: HttpClient,
    jwks_url: String,
    audience: String,
    service_account: String,
    keys: Arc<Mutex<KeyCache>>,
}

/// Google's keys as last fetched, and when.
#[derive(Debug, Default)]
struct KeyCache {
    keys: Vec<Jwk>,
    fetched_at: Option<Timestamp>,
}

impl KeyCache {
    /// Whether an unknown key id may send us to Google now.
    fn may_fetch(&self, now: Timestamp) -> bool {
        self.fetched_at.is_none_or(|at| {
            let since = now.duration_since(at);
            since >= REFETCH_INTERVAL || since.is_negative()
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
struct Jwk {
    kid: String,
    #[serde(default)]
    kty: String,
    n: String,
    e: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

/// The claims of a push token we check.
#[derive(Clone, Debug, Deserialize)]
pub struct PushClaims {
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    pub exp: i64,
    pub iat: i64,
}

impl PushVerifier {
    /// Tokens for `audience`, from `service_account` (its email); an empty one is refused.
    pub fn new(
        jwks_url: impl Into<String>,
        audience: impl Into<String>,
        service_account: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let service_account = service_account.into();
        if service_account.trim().is_empty() {
            return Err(StoreError::NotConfigured(
                "no push service account: any Google account could sign pushes",
            ));
        }
        Ok(PushVerifier {
            http: HttpClient::new(TIMEOUT),
            jwks_url: jwks_url.into(),
            audience: audience.into(),
            service_account,
            keys: Arc::new(Mutex::new(KeyCache::default())),
        })
    }

    /// The claims of a verified `Authorization` header value.
    pub async fn verify(
        &self,
        authorization: Option<&str>,
        now: Timestamp,
    ) -> Result<PushClaims, StoreError> {
        let invalid = |why: String| StoreError::Invalid(why);
        let token = authorization
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| invalid("no bearer token".into()))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|error| invalid(format!("token header: {error}")))?;
        // The algorithm is ours to choose, never the token's: RS256 only.
        if header.alg != Algorithm::RS256 {
            return Err(invalid(format!("alg {:?}, not RS256", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| invalid("no key id".into()))?;
        let key = self.key(&kid, now).await?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&ISSUERS);
        // Time is checked below on our clock (the local server's test clock in tests).
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<PushClaims>(token, &key, &validation)
            .map_err(|error| invalid(format!("token: {error}")))?
            .claims;
        let now = now.as_second();
        if claims.exp + LEEWAY_SECONDS < now || claims.iat - LEEWAY_SECONDS > now {
            return Err(invalid("token expired or not yet valid".into()));
        }
        if claims.email.as_deref() != Some(self.service_account.as_str()) || !claims.email_verified
        {
            return Err(invalid(format!(
                "token of {:?}, not the push service account",
                claims.email
            )));
        }
        Ok(claims)
    }

    /// The key `kid`, fetching Google's keys again if it is new (they rotate), unless they were
    /// fetched less than [`REFETCH_INTERVAL`] ago.
    async fn key(&self, kid: &str, now: Timestamp) -> Result<DecodingKey, StoreError> {
        let mut cache = self.keys.lock().await;
        if !cache.keys.iter().any(|key| key.kid == kid) {
            if cache.may_fetch(now) {
                // A failed fetch counts too: an outage is not asked again at every push.
                cache.fetched_at = Some(now);
                cache.keys = self.fetch().await?;
            } else if cache.keys.is_empty() {
                return Err(StoreError::Unavailable(
                    "Google's keys could not be fetched a moment ago".into(),
                ));
            }
        }
        let jwk = cache
            .keys
            .iter()
            .find(|key| key.kid == kid && (key.kty.is_empty() || key.kty == "RSA"))
            .ok_or_else(|| StoreError::Invalid(format!("unknown key id {kid}")))?;
        DecodingKey::from_rsa_components(&jwk.n, &jwk.e)
            .map_err(|error| StoreError::Invalid(format!("key {kid}: {error}")))
    }

    async fn fetch(&self) -> Result<Vec<Jwk>, StoreError> {
        let request = http::Request::get(&self.jwks_url)
            .body(Bytes::new())
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let jwks: Jwks = crate::fetch_json(&self.http, request, "Google's keys").await?;
        Ok(jwks.keys)
    }
}
