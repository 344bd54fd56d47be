//! The App Store: a StoreKit 2 signed transaction credits its purchase, if it names the
//! caller's `appAccountToken` and Apple has not revoked it; App Store Server Notifications V2
//! reverse it (`REFUND`), undo that (`REFUND_REVERSED`), or ask how much of it was used before
//! Apple decides a refund (`CONSUMPTION_REQUEST`, answered through the App Store Server API
//! only for a buyer who consented). A refund, or its reversal, that comes before the app redeems
//! the transaction is kept by the ledger, so the redemption follows the latest word (#18). Each
//! notification is applied once per `notificationUUID`, recorded as `appstore-<uuid>` as
//! Google's pushes are as `gpubsub-<messageId>`.

use coins_http::{ApiError, Claims, Problem, json_body};
use coins_ids::{EventId, PaymentIntentId, PurchaseId, ReversalRef};
use coins_ledger::{ReversalEvent, Store, StoreWord, StoreWordOutcome};
use coins_rules::Channel;
use coins_runtime::{Deps, SdkConfig, SecretError};
use coins_stores::app_store_api::{ApiKey, AppStoreApi, ConsumptionRequest};
use coins_stores::apple::{AppleEnvironment, AppleVerifier, Transaction};
use coins_stores::binding;
use jiff::Timestamp;
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
    /// The buyer agreed, in the app, that consumption data may be sent to Apple if they ask
    /// for a refund.
    #[serde(default)]
    consumption_consent: bool,
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
    // Only the account the app named to StoreKit may redeem it: whoever else holds the JWS
    // (a shared device, a leaked receipt) gets nothing.
    if !binding::is_app_account_token_of(
        transaction.app_account_token.as_deref(),
        claims.user_id.as_str(),
    ) {
        return Err(ApiError::new(
            Problem::PurchaseNotBound,
            "the transaction's appAccountToken is not yours (GET /v1/purchases/store-accounts)",
        ));
    }
    if transaction.revocation_date.is_some() {
        return Err(ApiError::new(
            Problem::PurchaseRevoked,
            "Apple refunded this transaction",
        ));
    }
    let verified = Verified {
        channel: Channel::Ios,
        product_id: &transaction.product_id,
        country: deps
            .price_book()
            .country_of_storefront(&transaction.storefront),
        units: transaction.quantity.max(1),
        transaction: transaction_ref(&transaction.transaction_id)?,
        store_id: &transaction.transaction_id,
        consumption_consent: request.consumption_consent,
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
    let event_id = EventId::new(format!("appstore-{uuid}")).map_err(|error| {
        ApiError::new(
            Problem::InvalidSignature,
            format!("notificationUUID: {error}"),
        )
    })?;
    if deps.ledger.event_seen(&event_id).await? || seen_before_namespacing(deps, uuid).await? {
        return ack(uuid, "replayed");
    }
    let kind = notification.notification_type.as_str();
    let stated_at = notification
        .signed_date
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(now);
    let outcome = match (kind, &transaction) {
        ("REFUND" | "REFUND_REVERSED", Some(transaction)) => {
            let word = StoreWord {
                transaction: transaction_ref(&transaction.transaction_id)?,
                event_id: event_id.clone(),
                kind: kind.to_owned(),
                revoked: kind == "REFUND",
                stated_at,
            };
            refund(deps, &word).await?
        }
        ("CONSUMPTION_REQUEST", Some(transaction)) => {
            consumption(deps, store, &event_id, transaction).await?
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

/// Whether the notification was recorded under its bare UUID, as before ids were namespaced:
/// a redelivery from then is still a replay.
async fn seen_before_namespacing<S: Store>(deps: &Deps<S>, uuid: &str) -> Result<bool, ApiError> {
    match EventId::new(uuid) {
        Ok(legacy) => Ok(deps.ledger.event_seen(&legacy).await?),
        Err(_) => Ok(false),
    }
}

/// A refund (or its reversal): kept if the transaction is not credited yet, so its redemption
/// is refused (or allowed again); otherwise applied to the purchase.
async fn refund<S: Store>(deps: &Deps<S>, word: &StoreWord) -> Result<&'static str, ApiError> {
    let now = deps.now();
    let purchase_id = match deps.ledger.record_store_word(word, now).await? {
        StoreWordOutcome::Credited(purchase_id) => purchase_id,
        other => return Ok(other.name()),
    };
    let event = reversal_event(word, purchase_id)?;
    // Applied only while it is still the transaction's latest word (by Apple's signing date).
    let outcome = deps
        .ledger
        .apply_store_word(&word.transaction, &event, word.revoked, now)
        .await?;
    Ok(outcome.name())
}

fn reversal_event(word: &StoreWord, purchase_id: PurchaseId) -> Result<ReversalEvent, ApiError> {
    Ok(ReversalEvent {
        event_id: word.event_id.clone(),
        kind: word.kind.clone(),
        purchase_id,
        by: ReversalRef::new(word.transaction.as_str())
            .map_err(|error| ApiError::invalid(error.to_string()))?,
        share: None,
    })
}

/// Apple asks how much of a purchase was used before deciding its refund. Answered only when
/// the buyer consented; otherwise not at all, as Apple's `customerConsented` documentation says
/// ("If not, don't respond to the `CONSUMPTION_REQUEST` notification").
async fn consumption<S: Store>(
    deps: &Deps<S>,
    store: &AppStore,
    event_id: &EventId,
    transaction: &Transaction,
) -> Result<&'static str, ApiError> {
    const KIND: &str = "CONSUMPTION_REQUEST";
    let now = deps.now();
    let reference = transaction_ref(&transaction.transaction_id)?;
    let outcome = match deps.ledger.purchase_for_payment(&reference).await? {
        None => "ignored",
        Some(purchase) => {
            let consented = deps
                .ledger
                .store_transaction(&reference)
                .await?
                .is_some_and(|row| row.consumption_consent);
            if consented {
                let remaining = deps
                    .ledger
                    .wallet(&purchase.user_id, &purchase.zone, now)
                    .await?
                    .lots
                    .iter()
                    .find(|lot| lot.purchase_id == purchase.purchase_id)
                    .map_or(0, |lot| lot.remaining);
                let token = binding::app_account_token(purchase.user_id.as_str());
                let info = ConsumptionRequest::for_coins(remaining, purchase.total_coins, token);
                store
                    .api
                    .send_consumption(&transaction.transaction_id, &info, now)
                    .await
                    .map_err(ApiError::unavailable)?;
                "consumption_sent"
            } else {
                "no_consent"
            }
        }
    };
    deps.ledger
        .record_event(event_id, KIND, outcome, now)
        .await?;
    Ok(outcome)
}
