//! The App Store: a StoreKit 2 signed transaction credits its purchase; App Store Server
//! Notifications V2 reverse it (`REFUND`), undo that (`REFUND_REVERSED`), or ask how much of
//! it was used before Apple decides a refund (`CONSUMPTION_REQUEST`, answered through the App
//! Store Server API). Each notification is applied once per `notificationUUID`.

use coins_http::{ApiError, Claims, Problem, json_body};
use coins_ids::{EventId, PaymentIntentId, ReversalRef};
use coins_ledger::{ReversalEvent, Store};
use coins_rules::Channel;
use coins_runtime::{Deps, SdkConfig, SecretError};
use coins_stores::app_store_api::{ApiKey, AppStoreApi, ConsumptionRequest};
use coins_stores::apple::{AppleEnvironment, AppleVerifier, Transaction};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use crate::{
    Settings, Verified, ack, credit, invalid_setting, optional_secret, setting, store_error,
};

/// The App Store for our app: who signs its data, and its server API.
#[derive(Clone, Debug)]
pub struct AppStore {
    pub verifier: AppleVerifier,
    pub api: AppStoreApi,
}

impl AppStore {
    /// `APPLE_BUNDLE_ID` (default `com.example.coins`), `APPLE_ENVIRONMENT` (default
    /// `Production`), `APPLE_ROOT_CA_FILE` (a PEM to trust instead of Apple Root CA - G3: local
    /// runs and tests only), `APP_STORE_API_BASE` (default Apple's for the environment), and
    /// the In-App Purchase key: `APPLE_KEY_ID`, `APPLE_ISSUER_ID`, `APPLE_PRIVATE_KEY[_ARN]`
    /// (without it, consumption requests cannot be answered: 503, and Apple retries).
    pub async fn configure(
        aws: &SdkConfig,
        settings: &Settings<'_>,
    ) -> Result<AppStore, SecretError> {
        let bundle_id = setting(settings, "APPLE_BUNDLE_ID", "com.example.coins");
        let environment: AppleEnvironment = setting(settings, "APPLE_ENVIRONMENT", "Production")
            .parse()
            .map_err(|reason| invalid_setting("APPLE_ENVIRONMENT", reason))?;
        let mut verifier = AppleVerifier::new(&bundle_id, environment);
        if let Some(path) = settings("APPLE_ROOT_CA_FILE").filter(|path| !path.is_empty()) {
            verifier = verifier.with_root(root_from_pem_file(&path)?);
        }
        let key = optional_secret(aws, settings, "APPLE_PRIVATE_KEY")
            .await?
            .map(|private_key| ApiKey {
                key_id: setting(settings, "APPLE_KEY_ID", ""),
                issuer_id: setting(settings, "APPLE_ISSUER_ID", ""),
                private_key,
            });
        let base = settings("APP_STORE_API_BASE").filter(|base| !base.is_empty());
        Ok(AppStore {
            verifier,
            api: AppStoreApi::new(base, environment, bundle_id, key),
        })
    }
}

/// The first certificate of a PEM file, as DER.
fn root_from_pem_file(path: &str) -> Result<Vec<u8>, SecretError> {
    use base64::Engine;
    let text = std::fs::read_to_string(path)
        .map_err(|error| invalid_setting("APPLE_ROOT_CA_FILE", format!("{path}: {error}")))?;
    let body: String = text
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .map_err(|_| {
            invalid_setting(
                "APPLE_ROOT_CA_FILE",
                format!("{path} holds no PEM certificate"),
            )
        })
}

/// The ledger's id of an App Store transaction.
fn transaction_ref(transaction_id: &str) -> Result<PaymentIntentId, ApiError> {
    PaymentIntentId::new(format!("appstore-{transaction_id}")).map_err(|error| {
        ApiError::new(Problem::InvalidSignature, format!("transactionId: {error}"))
    })
}

#[derive(Deserialize)]
struct PurchaseRequest {
    signed_transaction: String,
}

/// `POST /v1/purchases/app-store`.
pub async fn purchase<S: Store>(
    deps: &Deps<S>,
    store: &AppStore,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    claims.check_age(deps.now())?;
    let request: PurchaseRequest = json_body(req)?;
    let transaction: Transaction = store
        .verifier
        .transaction(&request.signed_transaction, deps.now())
        .map_err(store_error)?;
    let verified = Verified {
        channel: Channel::Ios,
        product_id: &transaction.product_id,
        country: deps
            .price_book()
            .country_of_storefront(&transaction.storefront),
        units: transaction.quantity.max(1),
        transaction: transaction_ref(&transaction.transaction_id)?,
        store_id: &transaction.transaction_id,
    };
    credit(deps, &claims, req, verified).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NotificationBody {
    signed_payload: String,
}

/// `POST /v1/webhooks/app-store`.
pub async fn notification<S: Store>(
    deps: &Deps<S>,
    store: &AppStore,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: NotificationBody = json_body(req)?;
    let now = deps.now();
    // Not ours or not Apple's: nothing in it is believed.
    let (notification, transaction) = store
        .verifier
        .notification(&body.signed_payload, now)
        .map_err(|error| ApiError::new(Problem::InvalidSignature, error))?;
    let uuid = &notification.notification_uuid;
    let event_id = EventId::new(uuid).map_err(|error| {
        ApiError::new(
            Problem::InvalidSignature,
            format!("notificationUUID: {error}"),
        )
    })?;
    if deps.ledger.event_seen(&event_id).await? {
        return ack(uuid, "replayed");
    }
    let kind = notification.notification_type.as_str();
    let purchase = match &transaction {
        Some(transaction) => {
            let reference = transaction_ref(&transaction.transaction_id)?;
            deps.ledger
                .purchase_for_payment(&reference)
                .await?
                .map(|purchase| (purchase, reference))
        }
        None => None,
    };
    let outcome = match (kind, purchase) {
        ("REFUND" | "REFUND_REVERSED", Some((purchase, reference))) => {
            let event = ReversalEvent {
                event_id: event_id.clone(),
                kind: kind.to_owned(),
                purchase_id: purchase.purchase_id,
                by: ReversalRef::new(reference.as_str())
                    .map_err(|error| ApiError::invalid(error.to_string()))?,
                share: None,
            };
            let outcome = if kind == "REFUND" {
                deps.ledger.reverse_purchase(&event, now).await?
            } else {
                deps.ledger.undo_reversal(&event, now).await?
            };
            outcome.name()
        }
        ("CONSUMPTION_REQUEST", Some((purchase, _))) => {
            let remaining = deps
                .ledger
                .wallet(&purchase.user_id, &purchase.zone, now)
                .await?
                .lots
                .iter()
                .find(|lot| lot.purchase_id == purchase.purchase_id)
                .map_or(0, |lot| lot.remaining);
            let transaction_id = transaction
                .as_ref()
                .map(|t| t.transaction_id.as_str())
                .unwrap_or_default();
            let info = ConsumptionRequest::for_coins(remaining, purchase.total_coins);
            store
                .api
                .send_consumption(transaction_id, &info, now)
                .await
                .map_err(ApiError::unavailable)?;
            deps.ledger
                .record_event(&event_id, kind, "consumption_sent", now)
                .await?;
            "consumption_sent"
        }
        _ => {
            tracing::info!(notification_type = kind, "app store notification ignored");
            deps.ledger
                .record_event(&event_id, kind, "ignored", now)
                .await?;
            "ignored"
        }
    };
    tracing::info!(notification_type = kind, %uuid, outcome, "app store notification");
    ack(uuid, outcome)
}
