//! A Stripe client of our own for the few calls we make, over the functions' HTTPS client:
//! form-encoded requests with bracketed keys, a pinned API version, an `Idempotency-Key` on
//! every create, and answers sorted into what may be retried and what may not.
//!
//! The shapes below read only the fields we use and accept both forms Stripe may send of an
//! expandable field (an id, or the object), since a webhook's payload and a fetched object can
//! differ there.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use coins_runtime::https::{HttpClient, HttpError};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::ProviderError;

/// The production API.
pub const STRIPE_API_BASE: &str = "https://api.stripe.com";

/// A test card whose payment succeeds.
pub const TEST_CARD_SUCCEEDS: &str = "4242424242424242";

/// A test card that attaches, then is declined when the payment is confirmed.
pub const TEST_CARD_DECLINED: &str = "4000000000000341";

/// The payment method types a PaymentIntent of ours accepts: those whose payer country the
/// webhook can establish (a card's issuing country, [`crate::Provider::card_country`]).
pub const PAYMENT_METHOD_TYPES: [&str; 1] = ["card"];

/// The API version our shapes are written against (`latest_charge` on PaymentIntents).
pub const STRIPE_API_VERSION: &str = "2024-06-20";

/// How long one Stripe call may take before it counts as failed (and is retried by the caller
/// with the same idempotency key).
pub const STRIPE_TIMEOUT: Duration = Duration::from_secs(10);

/// A secret API key (`sk_…`); never printed.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: impl Into<String>) -> Self {
        SecretKey(key.into())
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// Stripe's API at `base` (production, or localstripe in tests).
#[derive(Clone, Debug)]
pub struct Stripe {
    base: String,
    key: SecretKey,
    http: HttpClient,
}

/// A field Stripe sends as an id, or as the object when expanded.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

impl<T> Expandable<T> {
    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(object) => Some(object),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    /// In the currency's minor units.
    pub amount: i64,
    /// As Stripe has it (lower case from Stripe itself).
    pub currency: String,
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub latest_charge: Option<Expandable<Charge>>,
    #[serde(default)]
    pub payment_method: Option<Expandable<PaymentMethod>>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Charge {
    pub id: String,
    /// In the currency's minor units (a `charge.refunded` event's object has it).
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub payment_method_details: Option<PaymentMethodDetails>,
}

/// A Radar early fraud warning: the card's issuer reported the charge as fraudulent (a
/// chargeback usually follows).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct EarlyFraudWarning {
    pub id: String,
    pub charge: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentMethodDetails {
    #[serde(default)]
    pub card: Option<Card>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Card {
    /// The issuing bank's country (ISO 3166-1 alpha-2).
    #[serde(default)]
    pub country: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    #[serde(default)]
    pub card: Option<Card>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub destination: String,
    #[serde(default)]
    pub transfer_group: Option<String>,
    #[serde(default)]
    pub metadata: HashMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Dispute {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<String>,
    pub status: String,
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

/// An event as Stripe sends it to a webhook (and lists it): the object is read by its type.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    pub data: EventData,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

impl Event {
    /// The event's object as `T`.
    pub fn object<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&self.data.object)
    }
}

/// The form keys of `metadata` (`metadata[purchase_id]`), kept alive for the form that borrows
/// them.
fn metadata_keys(metadata: &[(&str, &str)]) -> Vec<String> {
    metadata
        .iter()
        .map(|(key, _)| format!("metadata[{key}]"))
        .collect()
}

fn add_metadata<'a>(form: &mut Form<'a>, keys: &'a [String], metadata: &[(&str, &str)]) {
    for ((_, value), key) in metadata.iter().zip(keys) {
        form.push((key, (*value).to_owned()));
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    /// `invalid_request_error`, `card_error`, `api_error`, `idempotency_error`...
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Form fields, in order: `metadata[purchase_id]=…` style keys.
type Form<'a> = Vec<(&'a str, String)>;

impl Stripe {
    pub fn new(base: impl Into<String>, key: SecretKey) -> Self {
        Stripe::with_timeout(base, key, STRIPE_TIMEOUT)
    }

    /// A client whose calls give up after `timeout` (tests of a hanging Stripe).
    pub fn with_timeout(base: impl Into<String>, key: SecretKey, timeout: Duration) -> Self {
        Stripe {
            base: base.into().trim_end_matches('/').to_owned(),
            key,
            http: HttpClient::new(timeout),
        }
    }

    /// Creates a PaymentIntent for `amount_minor` of `currency`, once per `idempotency_key`.
    pub async fn create_payment_intent(
        &self,
        amount_minor: i64,
        currency: &str,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<PaymentIntent, ProviderError> {
        let keys = metadata_keys(metadata);
        let mut form: Form = vec![
            ("amount", amount_minor.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            // Only methods whose payer country the webhook can establish (a card's issuing
            // country): a method Stripe would add by default (a wallet, a bank debit) could pay
            // from anywhere, past the quote's country.
            ("payment_method_types[]", PAYMENT_METHOD_TYPES[0].to_owned()),
        ];
        add_metadata(&mut form, &keys, metadata);
        self.post("/v1/payment_intents", &form, Some(idempotency_key))
            .await
    }

    pub async fn payment_intent(&self, id: &str) -> Result<PaymentIntent, ProviderError> {
        self.get(&format!("/v1/payment_intents/{id}")).await
    }

    /// Cancels a PaymentIntent no purchase uses (a duplicate from a concurrent request).
    pub async fn cancel_payment_intent(&self, id: &str) -> Result<PaymentIntent, ProviderError> {
        self.post(&format!("/v1/payment_intents/{id}/cancel"), &[], None)
            .await
    }

    pub async fn charge(&self, id: &str) -> Result<Charge, ProviderError> {
        self.get(&format!("/v1/charges/{id}")).await
    }

    pub async fn payment_method(&self, id: &str) -> Result<PaymentMethod, ProviderError> {
        self.get(&format!("/v1/payment_methods/{id}")).await
    }

    /// Pays a PaymentIntent with a test card as Stripe.js would, for the local server's dev
    /// payments against a fake Stripe (localstripe; Stripe's own test mode takes no raw card
    /// numbers): a PaymentMethod from `card_number` ([`TEST_CARD_SUCCEEDS`],
    /// [`TEST_CARD_DECLINED`]), set on the intent, then a confirmation naming nothing
    /// (localstripe answers 500 to a confirm that names the method). A declined card answers
    /// 402 `card_error`.
    pub async fn confirm_with_test_card(
        &self,
        payment_intent: &str,
        card_number: &str,
    ) -> Result<PaymentIntent, ProviderError> {
        let card: Form = vec![
            ("type", "card".to_owned()),
            ("card[number]", card_number.to_owned()),
            ("card[exp_month]", "12".to_owned()),
            ("card[exp_year]", "2040".to_owned()),
            ("card[cvc]", "123".to_owned()),
        ];
        let method: PaymentMethod = self.post("/v1/payment_methods", &card, None).await?;
        let path = format!("/v1/payment_intents/{payment_intent}");
        let _: PaymentIntent = self
            .post(&path, &[("payment_method", method.id)], None)
            .await?;
        self.post(&format!("{path}/confirm"), &[], None).await
    }

    /// Every refund of a PaymentIntent (newest first).
    pub async fn refunds_of(&self, payment_intent: &str) -> Result<Vec<Refund>, ProviderError> {
        let list: List<Refund> = self
            .get(&format!(
                "/v1/refunds?payment_intent={payment_intent}&limit=100"
            ))
            .await?;
        Ok(list.data)
    }

    /// Refunds `amount_minor` of a PaymentIntent, once per `idempotency_key`.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount_minor: i64,
        metadata: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<Refund, ProviderError> {
        let keys = metadata_keys(metadata);
        let mut form: Form = vec![
            ("payment_intent", payment_intent.to_owned()),
            ("amount", amount_minor.to_string()),
        ];
        add_metadata(&mut form, &keys, metadata);
        self.post("/v1/refunds", &form, Some(idempotency_key)).await
    }

    /// Pays `amount_minor` of `currency` to a connected account, once per `idempotency_key`;
    /// `transfer_group` names what it pays for, so it can be found again.
    pub async fn create_transfer(
        &self,
        amount_minor: i64,
        currency: &str,
        destination: &str,
        transfer_group: &str,
        idempotency_key: &str,
    ) -> Result<Transfer, ProviderError> {
        let form: Form = vec![
            ("amount", amount_minor.to_string()),
            ("currency", currency.to_ascii_lowercase()),
            ("destination", destination.to_owned()),
            ("transfer_group", transfer_group.to_owned()),
        ];
        self.post("/v1/transfers", &form, Some(idempotency_key))
            .await
    }

    /// The transfers made for `transfer_group`.
    pub async fn transfers_in(&self, transfer_group: &str) -> Result<Vec<Transfer>, ProviderError> {
        let list: List<Transfer> = self
            .get(&format!(
                "/v1/transfers?transfer_group={transfer_group}&limit=100"
            ))
            .await?;
        Ok(list.data)
    }

    /// Events of `kind` created at or after `since` (unix seconds), a page after `after`.
    pub async fn events(
        &self,
        kind: &str,
        since: i64,
        after: Option<&str>,
    ) -> Result<List<Event>, ProviderError> {
        let mut path = format!("/v1/events?type={kind}&created[gte]={since}&limit=100");
        if let Some(after) = after {
            path.push_str("&starting_after=");
            path.push_str(after);
        }
        self.get(&path).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ProviderError> {
        let request = self
            .request(http::Method::GET, path)
            .body(Bytes::new())
            .expect("a valid request");
        self.call(request).await
    }

    async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, ProviderError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let mut request = self.request(http::Method::POST, path).header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        );
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let request = request.body(Bytes::from(body)).expect("a valid request");
        self.call(request).await
    }

    fn request(&self, method: http::Method, path: &str) -> http::request::Builder {
        http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.key.0),
            )
            .header("Stripe-Version", STRIPE_API_VERSION)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<T, ProviderError> {
        let what = format!("{} {}", request.method(), request.uri().path());
        let response = self.http.send(request).await.map_err(|error| match error {
            HttpError::Timeout(_) | HttpError::Failed(_) => {
                ProviderError::Unavailable(format!("{what}: {error}"))
            }
        })?;
        let status = response.status;
        if (200..300).contains(&status) {
            return serde_json::from_slice(&response.body)
                .map_err(|error| ProviderError::Unreadable(format!("{what}: {error}")));
        }
        // Stripe's errors are JSON; a proxy's or a fake's may not be.
        let (kind, code, message) = match serde_json::from_slice::<ErrorBody>(&response.body) {
            Ok(ErrorBody { error }) => (error.kind, error.code, error.message.unwrap_or_default()),
            Err(_) => (
                None,
                None,
                String::from_utf8_lossy(&response.body).into_owned(),
            ),
        };
        let detail = format!("{what}: {status} {}", message.trim());
        Err(match status {
            // Rate limited, an idempotent request still in flight, or Stripe's own failure:
            // the same request (same key) may succeed later.
            409 | 429 | 500..=599 => ProviderError::Unavailable(detail),
            // Any other refusal (a 401 after a key roll, a 404 from another account's key, a
            // proxy's 403) says nothing final about what we asked: the caller decides
            // (`ProviderError::declined_if`).
            _ => ProviderError::Refused {
                status,
                kind,
                code,
                message: detail,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expandable_field_reads_as_an_id_or_an_object() {
        let id: PaymentIntent = serde_json::from_str(
            r#"{"id":"pi_1","amount":1099,"currency":"eur","status":"succeeded","latest_charge":"ch_1"}"#,
        )
        .unwrap();
        assert_eq!(id.latest_charge, Some(Expandable::Id("ch_1".into())));
        let object: PaymentIntent = serde_json::from_str(
            r#"{"id":"pi_1","amount":1099,"currency":"eur","status":"succeeded",
                "latest_charge":{"id":"ch_1","payment_method_details":{"card":{"country":"FR"}}}}"#,
        )
        .unwrap();
        let charge = object.latest_charge.unwrap();
        let country = charge
            .object()
            .unwrap()
            .payment_method_details
            .as_ref()
            .unwrap();
        assert_eq!(
            country.card.as_ref().unwrap().country.as_deref(),
            Some("FR")
        );
    }

    #[test]
    fn the_key_never_prints() {
        assert_eq!(
            format!("{:?}", SecretKey::new("sk_live_x")),
            "SecretKey(<redacted>)"
        );
    }
}
