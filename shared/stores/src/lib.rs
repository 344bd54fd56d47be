//! The app stores, spoken for real: Apple's signed transactions and notifications ([`apple`]),
//! the App Store Server API's consumption answer ([`app_store_api`]), the Google Play Developer
//! API ([`google_play`]) and Google's signed Pub/Sub pushes ([`push`]), and the buyer's account
//! as the apps name it to the stores ([`binding`]). Every verification is done here, before the
//! ledger is asked anything.

use bytes::Bytes;
use coins_runtime::https::HttpClient;
use serde::de::DeserializeOwned;

pub mod app_store_api;
pub mod apple;
pub mod binding;
pub mod google_play;
pub mod push;

/// Why a store's word was not taken.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A signature, certificate chain or token that does not verify, or data that is not what
    /// the store signs: nothing it says is believed.
    #[error("not verified: {0}")]
    Invalid(String),
    /// Genuine, but for another app (bundle id, package name) or environment.
    #[error("for another app: {0}")]
    WrongApp(String),
    /// The store's API answered that it does not know the purchase.
    #[error("the store does not know it: {0}")]
    Unknown(String),
    /// The store could not be asked (down, throttled, timed out): try again.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// This deployment has no credentials for the store.
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
}

/// Sends `request` and reads the JSON of a 200 answer. Anything else (no answer, another status,
/// another body) means that `what` cannot be asked now.
async fn fetch_json<T: DeserializeOwned>(
    http: &HttpClient,
    request: http::Request<Bytes>,
    what: &str,
) -> Result<T, StoreError> {
    let unavailable = |why: String| StoreError::Unavailable(format!("{what}: {why}"));
    let response = http
        .send(request)
        .await
        .map_err(|error| unavailable(error.to_string()))?;
    if response.status != 200 {
        return Err(unavailable(format!("HTTP {}", response.status)));
    }
    serde_json::from_slice(&response.body).map_err(|error| unavailable(error.to_string()))
}
