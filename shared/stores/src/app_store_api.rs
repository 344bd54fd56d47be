//! The App Store Server API's one call we make: sending a transaction's consumption information
//! when Apple asks for it (a `CONSUMPTION_REQUEST` notification, before deciding a refund),
//! authorized by an ES256 JWT signed with the app's In-App Purchase key.

use std::time::Duration;

use bytes::Bytes;
use coins_runtime::https::HttpClient;
use http::header;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::StoreError;
use crate::apple::AppleEnvironment;

pub const PRODUCTION_BASE: &str = "https://api.storekit.itunes.apple.com";
pub const SANDBOX_BASE: &str = "https://api.storekit-sandbox.itunes.apple.com";
const TIMEOUT: Duration = Duration::from_secs(10);

/// The In-App Purchase key from App Store Connect.
#[derive(Clone)]
pub struct ApiKey {
    pub key_id: String,
    pub issuer_id: String,
    /// The `.p8` file: PKCS#8 PEM of a P-256 key.
    pub private_key: String,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key_id", &self.key_id)
            .field("issuer_id", &self.issuer_id)
            .finish_non_exhaustive()
    }
}

/// `ConsumptionRequest` (App Store Server API v1). Sent only for a buyer who consented: Apple's
/// `customerConsented` documentation says to set it `true` when the customer consented to send
/// the consumption data, "If not, don't respond to the `CONSUMPTION_REQUEST` notification", and
/// its server rejects any other value (`InvalidCustomerConsentedError`)
/// (<https://developer.apple.com/documentation/appstoreserverapi/customerconsented>).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumptionRequest {
    pub customer_consented: bool,
    /// 0 undeclared, 1 not consumed, 2 partially consumed, 3 fully consumed.
    pub consumption_status: u8,
    /// 1 Apple platform.
    pub platform: u8,
    pub sample_content_provided: bool,
    /// 0 delivered and working.
    pub delivery_status: u8,
    /// The buyer's `appAccountToken` (see [`crate::binding`]).
    pub app_account_token: String,
    /// 0 undeclared (the fields below are ranges we do not track).
    pub account_tenure: u8,
    pub play_time: u8,
    pub lifetime_dollars_refunded: u8,
    pub lifetime_dollars_purchased: u8,
    pub user_status: u8,
    /// 0 undeclared: Apple decides.
    pub refund_preference: u8,
}

impl ConsumptionRequest {
    /// What we tell Apple, with the buyer's consent, of a transaction whose coins are
    /// `remaining` of `total` unspent, bought by the account of `app_account_token`.
    pub fn for_coins(remaining: u64, total: u64, app_account_token: String) -> Self {
        let consumption_status = match (remaining, total) {
            (_, 0) => 0,
            (r, t) if r >= t => 1,
            (0, _) => 3,
            _ => 2,
        };
        ConsumptionRequest {
            customer_consented: true,
            consumption_status,
            platform: 1,
            sample_content_provided: false,
            delivery_status: 0,
            app_account_token,
            account_tenure: 0,
            play_time: 0,
            lifetime_dollars_refunded: 0,
            lifetime_dollars_purchased: 0,
            user_status: 0,
            refund_preference: 0,
        }
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'a str,
    bid: &'a str,
}

/// The App Store Server API for one app.
#[derive(Clone, Debug)]
pub struct AppStoreApi {
    http: HttpClient,
    base: String,
    bundle_id: String,
    key: Option<ApiKey>,
}

impl AppStoreApi {
    /// The API at `base`, or Apple's for `environment` when `None`.
    pub fn new(
        base: Option<String>,
        environment: AppleEnvironment,
        bundle_id: impl Into<String>,
        key: Option<ApiKey>,
    ) -> Self {
        let base = base.unwrap_or_else(|| {
            match environment {
                AppleEnvironment::Production => PRODUCTION_BASE,
                _ => SANDBOX_BASE,
            }
            .to_owned()
        });
        AppStoreApi {
            http: HttpClient::new(TIMEOUT),
            base: base.trim_end_matches('/').to_owned(),
            bundle_id: bundle_id.into(),
            key,
        }
    }

    /// The bearer token Apple takes: ES256, our key id, five minutes.
    pub fn token(&self, now: Timestamp) -> Result<String, StoreError> {
        let key = self.key.as_ref().ok_or(StoreError::NotConfigured(
            "no App Store In-App Purchase key",
        ))?;
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(key.key_id.clone());
        header.typ = Some("JWT".into());
        let claims = Claims {
            iss: &key.issuer_id,
            iat: now.as_second(),
            exp: now.as_second() + 300,
            aud: "appstoreconnect-v1",
            bid: &self.bundle_id,
        };
        let signing = EncodingKey::from_ec_pem(key.private_key.as_bytes()).map_err(|_| {
            StoreError::NotConfigured("the In-App Purchase key is not a P-256 PEM key")
        })?;
        jsonwebtoken::encode(&header, &claims, &signing)
            .map_err(|error| StoreError::Unavailable(format!("signing: {error}")))
    }

    /// `PUT /inApps/v1/transactions/consumption/{transactionId}`.
    pub async fn send_consumption(
        &self,
        transaction_id: &str,
        request: &ConsumptionRequest,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let body = serde_json::to_vec(request).expect("the request serializes");
        let url = format!(
            "{}/inApps/v1/transactions/consumption/{}",
            self.base,
            form_urlencoded::byte_serialize(transaction_id.as_bytes()).collect::<String>()
        );
        let request = http::Request::put(url)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.token(now)?),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Bytes::from(body))
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let response = self
            .http
            .send(request)
            .await
            .map_err(|error| StoreError::Unavailable(error.to_string()))?;
        match response.status {
            200..=299 => Ok(()),
            404 => Err(StoreError::Unknown(format!("transaction {transaction_id}"))),
            status => Err(StoreError::Unavailable(format!(
                "App Store Server API answered {status}"
            ))),
        }
    }
}
