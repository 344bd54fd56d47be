//! Google Play: a purchase token is verified with the Play Developer API (purchased, one of our
//! products, bought in the caller's billing country, by the caller's obfuscated account id),
//! credited once per order for the units not refunded (`refundableQuantity`), then consumed so
//! the app can sell the product again. Test purchases (license testers) are credited only
//! where the deployment allows them; promo-code purchases never (see [`paid_for`]).
//! Real-time developer notifications arrive as Pub/Sub pushes signed by Google as the push
//! service account (required); a voided purchase reverses its order (a refund of some units of
//! a multi-unit order, that share), and one voided before it was redeemed is kept so its
//! redemption is refused (#18). Each push is applied once per `messageId`.

use base64::Engine;
use coins_http::{ApiError, Claims, Problem, json_body};
use coins_ids::{EventId, PaymentIntentId, ReversalRef};
use coins_ledger::{ReversalEvent, Share, Store, StoreWord, StoreWordOutcome};
use coins_rules::Channel;
use coins_runtime::{Deps, SdkConfig, SecretError};
use coins_stores::google_play::{
    GOOGLE_TOKEN_URL, GooglePlay, PLAY_API_BASE, ProductPurchase, ServiceAccount,
};
use coins_stores::push::{GOOGLE_JWKS_URL, PushVerifier};
use coins_stores::{StoreError, binding};
use jiff::Timestamp;
use lambda_http::http::header;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;

use crate::{
    Settings, Verified, ack, credit, invalid_setting, optional_secret, our_package, setting,
    store_error,
};

/// Google Play for our app: its API, and the push subscription's authentication.
#[derive(Clone, Debug)]
pub struct GooglePlayStore {
    pub play: GooglePlay,
    pub push: PushVerifier,
    /// Credit test purchases (`purchaseType` 0, made by license testers, paid by nobody).
    pub allow_license_testers: bool,
}

impl GooglePlayStore {
    /// `GOOGLE_PLAY_PACKAGE_NAME` (default `com.example.coins`), `GOOGLE_PLAY_API_BASE`,
    /// `GOOGLE_OAUTH_TOKEN_URL`, `GOOGLE_JWKS_URL` (default Google's), the service account's
    /// JSON key `GOOGLE_SERVICE_ACCOUNT[_ARN]` (without it, Google Play purchases are 503),
    /// `GOOGLE_PUSH_AUDIENCE` (default `coins-google-play`), `GOOGLE_PUSH_SERVICE_ACCOUNT` (the
    /// email the push token must carry: required, since the audience is public and any Google
    /// account can mint a token for it), and `GOOGLE_ALLOW_LICENSE_TESTERS` (`true` credits test
    /// purchases; default `false`).
    pub async fn configure(
        aws: &SdkConfig,
        settings: &Settings<'_>,
    ) -> Result<GooglePlayStore, SecretError> {
        let account = match optional_secret(aws, settings, "GOOGLE_SERVICE_ACCOUNT").await? {
            Some(json) => Some(
                ServiceAccount::from_json(&json)
                    .map_err(|reason| invalid_setting("GOOGLE_SERVICE_ACCOUNT", reason))?,
            ),
            None => None,
        };
        let push_account = settings("GOOGLE_PUSH_SERVICE_ACCOUNT")
            .filter(|email| !email.trim().is_empty())
            .ok_or(SecretError::Config(coins_runtime::ConfigError::Missing(
                "GOOGLE_PUSH_SERVICE_ACCOUNT",
            )))?;
        let allow_license_testers =
            match setting(settings, "GOOGLE_ALLOW_LICENSE_TESTERS", "false").as_str() {
                "true" => true,
                "false" => false,
                other => {
                    return Err(invalid_setting(
                        "GOOGLE_ALLOW_LICENSE_TESTERS",
                        format!("{other:?} is neither true nor false"),
                    ));
                }
            };
        let push = PushVerifier::new(
            setting(settings, "GOOGLE_JWKS_URL", GOOGLE_JWKS_URL),
            setting(settings, "GOOGLE_PUSH_AUDIENCE", "coins-google-play"),
            push_account,
        )
        .map_err(|error| invalid_setting("GOOGLE_PUSH_SERVICE_ACCOUNT", error.to_string()))?;
        Ok(GooglePlayStore {
            play: GooglePlay::new(
                setting(settings, "GOOGLE_PLAY_API_BASE", PLAY_API_BASE),
                setting(settings, "GOOGLE_OAUTH_TOKEN_URL", GOOGLE_TOKEN_URL),
                setting(settings, "GOOGLE_PLAY_PACKAGE_NAME", "com.example.coins"),
                account,
            ),
            push,
            allow_license_testers,
        })
    }
}

/// The ledger's id of a Google Play order.
fn order_ref(order_id: &str) -> Result<PaymentIntentId, ApiError> {
    PaymentIntentId::new(format!("play-{order_id}"))
        .map_err(|error| ApiError::new(Problem::InvalidSignature, format!("orderId: {error}")))
}

#[derive(Deserialize)]
struct PurchaseRequest {
    product_id: String,
    purchase_token: String,
}

/// `POST /v1/purchases/google-play`.
pub async fn purchase<S: Store>(
    deps: &Deps<S>,
    store: &GooglePlayStore,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    claims.check_age(deps.now())?;
    let request: PurchaseRequest = json_body(req)?;
    // Only products we sell are worth asking Google about.
    our_package(deps.price_book(), Channel::Android, &request.product_id)?;
    let purchase: ProductPurchase = store
        .play
        .product_purchase(&request.product_id, &request.purchase_token, deps.now())
        .await
        .map_err(store_error)?;
    paid_for(store, &purchase)?;
    if !binding::is_obfuscated_account_id_of(
        purchase.obfuscated_external_account_id.as_deref(),
        claims.user_id.as_str(),
    ) {
        return Err(ApiError::new(
            Problem::PurchaseNotBound,
            "the purchase's obfuscated account id is not yours (GET /v1/purchases/store-accounts)",
        ));
    }
    let units = purchase.units_paid();
    if units == 0 {
        return Err(ApiError::new(
            Problem::PurchaseRevoked,
            "Google Play refunded every unit of this order",
        ));
    }
    let verified = Verified {
        channel: Channel::Android,
        product_id: &request.product_id,
        country: purchase
            .region_code
            .as_deref()
            .and_then(|code| code.parse().ok()),
        units,
        transaction: order_ref(&purchase.order_id)?,
        store_id: &purchase.order_id,
        consumption_consent: false,
    };
    let answer = credit(deps, &claims, req, verified).await?;
    // Credited: now let the app sell the product again. A failure is retried by the client with
    // the same request, which finds the purchase credited and consumes again.
    if purchase.consumption_state == 0 {
        store
            .play
            .consume(&request.product_id, &request.purchase_token, deps.now())
            .await
            .map_err(ApiError::unavailable)?;
    }
    Ok(answer)
}

/// Whether Google was paid for the purchase: completed (not pending or canceled), and neither
/// a test purchase (unless this deployment allows license testers) nor a promo code or a
/// rewarded product. Promo-code coins are refused, not credited as promotional: they would be
/// coins nobody paid for, and once gifted a creator is paid real money for them; the wallet's
/// non-refundable balance holds coins that were paid for (a closed window, a reversal undone),
/// and the audit counts every coin against a purchase's money.
fn paid_for(store: &GooglePlayStore, purchase: &ProductPurchase) -> Result<(), ApiError> {
    let refused = |why: &str| Err(ApiError::new(Problem::PurchaseNotCredited, why.to_owned()));
    if purchase.purchase_state != 0 {
        return refused("Google Play has not completed this purchase (pending or canceled)");
    }
    match purchase.purchase_type {
        None => Ok(()),
        Some(0) if store.allow_license_testers => Ok(()),
        Some(0) => refused("a test purchase (license tester): not credited by this deployment"),
        Some(1) => refused("a promo-code purchase: promo codes are not sold as coins"),
        Some(_) => refused("a rewarded purchase: not sold as coins"),
    }
}

/// A Pub/Sub push.
#[derive(Deserialize)]
struct PushBody {
    message: PushMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushMessage {
    data: String,
    message_id: String,
}

/// Google Play's `DeveloperNotification`, the parts we act on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeveloperNotification {
    package_name: String,
    /// When the event happened (milliseconds, as a string).
    #[serde(default)]
    event_time_millis: Option<String>,
    #[serde(default)]
    voided_purchase_notification: Option<VoidedPurchase>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VoidedPurchase {
    purchase_token: String,
    order_id: String,
    /// 1 a full refund, 2 a refund of some units of a multi-unit order.
    #[serde(default)]
    refund_type: Option<i32>,
}

/// `POST /v1/webhooks/google-play`: 200 acknowledges the push; anything else makes Pub/Sub
/// deliver it again.
pub async fn push<S: Store>(
    deps: &Deps<S>,
    store: &GooglePlayStore,
    req: &Request,
) -> Result<Response<Body>, ApiError> {
    let now = deps.now();
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    store
        .push
        .verify(authorization, now)
        .await
        .map_err(|error| match error {
            StoreError::Unavailable(_) => ApiError::unavailable(error),
            _ => ApiError::new(Problem::InvalidSignature, error),
        })?;
    let body: PushBody = json_body(req)?;
    let message_id = &body.message.message_id;
    let event_id = EventId::new(format!("gpubsub-{message_id}"))
        .map_err(|error| ApiError::invalid(format!("messageId: {error}")))?;
    if deps.ledger.event_seen(&event_id).await? {
        return ack(message_id, "replayed");
    }
    let data = base64::engine::general_purpose::STANDARD
        .decode(&body.message.data)
        .map_err(|_| ApiError::invalid("message.data is not base64"))?;
    let notification: DeveloperNotification = serde_json::from_slice(&data)
        .map_err(|error| ApiError::invalid(format!("DeveloperNotification: {error}")))?;
    if notification.package_name != store.play.package_name() {
        tracing::warn!(package = %notification.package_name, "push for another package ignored");
        deps.ledger
            .record_event(&event_id, "other_package", "ignored", now)
            .await?;
        return ack(message_id, "ignored");
    }
    let stated_at = notification
        .event_time_millis
        .as_deref()
        .and_then(|ms| ms.parse::<i64>().ok())
        .and_then(|ms| Timestamp::from_millisecond(ms).ok())
        .unwrap_or(now);
    let outcome = match &notification.voided_purchase_notification {
        Some(voided) => void(deps, store, &event_id, voided, stated_at).await?,
        None => {
            deps.ledger
                .record_event(&event_id, "notification", "ignored", now)
                .await?;
            "ignored"
        }
    };
    tracing::info!(%message_id, outcome, "google play notification");
    ack(message_id, outcome)
}

/// A voided purchase takes its coins back: all of them, or the share of the units refunded.
/// One voided before it was redeemed is kept, so the redemption is refused; a partial refund
/// then refuses the whole order too (which units are left cannot be told without asking Play
/// about a product the push does not name, and crediting refunded units is the worse mistake).
async fn void<S: Store>(
    deps: &Deps<S>,
    store: &GooglePlayStore,
    event_id: &EventId,
    voided: &VoidedPurchase,
    stated_at: Timestamp,
) -> Result<&'static str, ApiError> {
    let now = deps.now();
    let reference = order_ref(&voided.order_id)?;
    let word = StoreWord {
        transaction: reference.clone(),
        event_id: event_id.clone(),
        kind: "voided_purchase".into(),
        revoked: true,
        stated_at,
    };
    let purchase_id = match deps.ledger.record_store_word(&word, now).await? {
        StoreWordOutcome::Credited(purchase_id) => purchase_id,
        other => {
            tracing::warn!(order_id = %voided.order_id, outcome = other.name(), "voided purchase of an order not credited");
            return Ok(other.name());
        }
    };
    let purchase = deps.ledger.get_purchase(&purchase_id).await?;
    // A partial refund: how many units Google refunded so far, from the purchase itself.
    let share = if voided.refund_type == Some(2) {
        let product = purchase
            .package_id
            .and_then(|id| {
                deps.price_book()
                    .packages()
                    .iter()
                    .find(|package| package.package_id == id)
            })
            .and_then(|package| package.store_product_id(Channel::Android))
            .ok_or_else(|| {
                ApiError::internal(format!("{} has no Play product", purchase.purchase_id))
            })?;
        let state = store
            .play
            .product_purchase(product, &voided.purchase_token, now)
            .await
            .map_err(ApiError::unavailable)?;
        Some(Share {
            refunded: state.refunded_quantity(),
            of: state.quantity(),
        })
    } else {
        None
    };
    let event = ReversalEvent {
        event_id: event_id.clone(),
        kind: "voided_purchase".into(),
        purchase_id: purchase.purchase_id,
        by: ReversalRef::new(reference.as_str())
            .map_err(|error| ApiError::invalid(error.to_string()))?,
        share,
    };
    let outcome = deps
        .ledger
        .apply_store_word(&word.transaction, &event, true, now)
        .await?;
    Ok(outcome.name())
}
