//! The Google Play Developer API, as a server verifies an in-app purchase: read it
//! (`purchases.products.get`), then consume it (`purchases.products.consume`), authorized by an
//! OAuth 2.0 access token obtained with the service account's signed JWT (RFC 7523). The token
//! is kept until a minute before it expires.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coins_runtime::https::HttpClient;
use http::{Method, Request, header};
use jiff::{SignedDuration, Timestamp};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::StoreError;

/// The production API; tests point the client at a local fake.
pub const PLAY_API_BASE: &str = "https://androidpublisher.googleapis.com";
/// Google's OAuth 2.0 token endpoint.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// The scope of the Play Developer API.
const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A service account's JSON key, the fields we use.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PKCS#8 PEM.
    pub private_key: String,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// From the JSON key file Google issues.
    pub fn from_json(json: &str) -> Result<ServiceAccount, String> {
        serde_json::from_str(json).map_err(|error| format!("service account key: {error}"))
    }
}

/// `ProductPurchase`, the fields we use.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductPurchase {
    /// 0 purchased, 1 canceled, 2 pending.
    pub purchase_state: i32,
    /// 0 yet to be consumed, 1 consumed.
    #[serde(default)]
    pub consumption_state: i32,
    pub order_id: String,
    /// ISO 3166-1 alpha-2 of the buyer's billing address.
    #[serde(default)]
    pub region_code: Option<String>,
    #[serde(default)]
    pub product_id: Option<String>,
    /// Absent means 1.
    #[serde(default)]
    pub quantity: Option<u32>,
    /// What has not been refunded yet (absent: all of it).
    #[serde(default)]
    pub refundable_quantity: Option<u32>,
    /// Absent for a real purchase; 0 a test purchase (a license tester's), 1 a promo code,
    /// 2 rewarded.
    #[serde(default)]
    pub purchase_type: Option<i32>,
    /// The buyer's account as the app named it to Play Billing (see [`crate::binding`]).
    #[serde(default)]
    pub obfuscated_external_account_id: Option<String>,
}

impl ProductPurchase {
    pub fn quantity(&self) -> u32 {
        self.quantity.unwrap_or(1).max(1)
    }

    /// Units paid for and not refunded: what may be credited (`refundableQuantity` where Play
    /// gives it, else the whole quantity).
    pub fn units_paid(&self) -> u32 {
        self.refundable_quantity
            .unwrap_or(self.quantity())
            .min(self.quantity())
    }

    /// Units refunded so far.
    pub fn refunded_quantity(&self) -> u32 {
        self.quantity()
            .saturating_sub(self.refundable_quantity.unwrap_or(self.quantity()))
    }
}

/// The Play Developer API for one app.
#[derive(Clone, Debug)]
pub struct GooglePlay {
    http: HttpClient,
    api_base: String,
    token_url: String,
    package_name: String,
    account: Option<ServiceAccount>,
    token: Arc<Mutex<Option<(String, Timestamp)>>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: i64,
}

impl GooglePlay {
    /// The API at `api_base` (the part before `/androidpublisher/v3`) for `package_name`,
    /// authorized as `account` (none: every call is [`StoreError::NotConfigured`]).
    pub fn new(
        api_base: impl Into<String>,
        token_url: impl Into<String>,
        package_name: impl Into<String>,
        account: Option<ServiceAccount>,
    ) -> Self {
        GooglePlay {
            http: HttpClient::new(TIMEOUT),
            api_base: api_base.into().trim_end_matches('/').to_owned(),
            token_url: token_url.into(),
            package_name: package_name.into(),
            account,
            token: Arc::new(Mutex::new(None)),
        }
    }

    pub fn package_name(&self) -> &str {
        &self.package_name
    }

    fn purchase_url(&self, product_id: &str, token: &str) -> String {
        let segment =
            |text: &str| -> String { form_urlencoded::byte_serialize(text.as_bytes()).collect() };
        format!(
            "{}/androidpublisher/v3/applications/{}/purchases/products/{}/tokens/{}",
            self.api_base,
            segment(&self.package_name),
            segment(product_id),
            segment(token)
        )
    }

    /// `purchases.products.get`.
    pub async fn product_purchase(
        &self,
        product_id: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<ProductPurchase, StoreError> {
        let url = self.purchase_url(product_id, token);
        let body = self.call(Method::GET, url, now).await?;
        serde_json::from_slice(&body)
            .map_err(|error| StoreError::Unavailable(format!("unreadable purchase: {error}")))
    }

    /// `purchases.products.consume`: the app may sell the product again.
    pub async fn consume(
        &self,
        product_id: &str,
        token: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let url = format!("{}:consume", self.purchase_url(product_id, token));
        self.call(Method::POST, url, now).await.map(drop)
    }

    async fn call(&self, method: Method, url: String, now: Timestamp) -> Result<Bytes, StoreError> {
        let token = self.access_token(now).await?;
        let request = Request::builder()
            .method(method)
            .uri(url)
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_LENGTH, 0)
            .body(Bytes::new())
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        match response.status {
            200..=299 => Ok(response.body),
            // Google answers an unknown or foreign token 400 or 404 (and 410 once purged).
            400 | 404 | 410 => Err(StoreError::Unknown(format!(
                "Google Play answered {}",
                response.status
            ))),
            401 | 403 => {
                *self.token.lock().await = None;
                Err(StoreError::Unavailable(format!(
                    "Google Play refused our credentials ({})",
                    response.status
                )))
            }
            status => Err(StoreError::Unavailable(format!(
                "Google Play answered {status}"
            ))),
        }
    }

    /// A valid access token, from the cache or a new grant.
    async fn access_token(&self, now: Timestamp) -> Result<String, StoreError> {
        let account = self
            .account
            .as_ref()
            .ok_or(StoreError::NotConfigured("no Google service account"))?;
        let mut cached = self.token.lock().await;
        if let Some((token, until)) = cached.as_ref()
            && *until > now
        {
            return Ok(token.clone());
        }
        let claims = Assertion {
            iss: &account.client_email,
            scope: SCOPE,
            aud: &self.token_url,
            iat: now.as_second(),
            exp: now.as_second() + 3600,
        };
        let key = EncodingKey::from_rsa_pem(account.private_key.as_bytes()).map_err(|_| {
            StoreError::NotConfigured("the service account's private key is not an RSA PEM key")
        })?;
        let assertion = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
            .map_err(|error| StoreError::Unavailable(format!("signing the grant: {error}")))?;
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let request = Request::post(&self.token_url)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Bytes::from(form))
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let granted: TokenResponse =
            crate::fetch_json(&self.http, request, "token endpoint").await?;
        let until = now + SignedDuration::from_secs(granted.expires_in.saturating_sub(60).max(0));
        *cached = Some((granted.access_token.clone(), until));
        Ok(granted.access_token)
    }
}
