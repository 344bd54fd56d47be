//! `stores`: coins bought in the apps, through the App Store and Google Play.
//!
//! A purchase is credited only once its store vouches for it: Apple's signature over the
//! StoreKit 2 transaction ([`apple`]), Google's Play Developer API ([`google`]). The product
//! must be one of our packages, the store's country the buyer's billing country; then the
//! ledger credits it once per store transaction, and only to the account the transaction names
//! (the app passes the caller's values from `GET /v1/purchases/store-accounts` to the store: see
//! [`coins_stores::binding`]). The stores' notifications (App Store Server Notifications,
//! Google Play pushes) are verified the same way and reverse refunded purchases, or, before the
//! redemption, refuse it.

pub mod apple;
pub mod google;

use coins_http::{ApiError, Claims, IdempotencyKey, Problem, Route, resolve, response, serve};
use coins_ids::PaymentIntentId;
use coins_ledger::{Store, StorePurchase};
use coins_rules::{BillingCountry, Channel, QuoteItem};
use coins_runtime::{Deps, SdkConfig, SecretError};
use coins_stores::StoreError;
use lambda_http::{Body, Request, Response};
use serde::Serialize;

/// `POST /v1/purchases/app-store`.
pub const APP_STORE_PURCHASE: Route = Route::post("/v1/purchases/app-store");
/// `POST /v1/webhooks/app-store` (no JWT: Apple's signature is the authentication).
pub const APP_STORE_WEBHOOK: Route = Route::post("/v1/webhooks/app-store");
/// `POST /v1/purchases/google-play`.
pub const GOOGLE_PLAY_PURCHASE: Route = Route::post("/v1/purchases/google-play");
/// `POST /v1/webhooks/google-play` (no JWT: Google's push token is the authentication).
pub const GOOGLE_PLAY_WEBHOOK: Route = Route::post("/v1/webhooks/google-play");
/// `GET /v1/purchases/store-accounts`: the caller's account as the apps name it to the stores.
pub const STORE_ACCOUNTS: Route = Route::get("/v1/purchases/store-accounts");
pub const ROUTES: &[Route] = &[
    STORE_ACCOUNTS,
    APP_STORE_PURCHASE,
    APP_STORE_WEBHOOK,
    GOOGLE_PLAY_PURCHASE,
    GOOGLE_PLAY_WEBHOOK,
];

/// What the function talks to besides the ledger.
#[derive(Clone, Debug)]
pub struct Stores {
    pub apple: apple::AppStore,
    pub google: google::GooglePlayStore,
}

/// Loaded once per cold start, from the environment (see each store's `configure`).
pub async fn load(aws: &SdkConfig) -> Result<Stores, SecretError> {
    load_with(aws, &|name| std::env::var(name).ok()).await
}

/// The same from any settings (the local server's flags before its environment).
pub async fn load_with(aws: &SdkConfig, settings: &Settings<'_>) -> Result<Stores, SecretError> {
    Ok(Stores {
        apple: apple::AppStore::configure(aws, settings).await?,
        google: google::GooglePlayStore::configure(aws, settings).await?,
    })
}

/// Where settings come from: a name in, its value (if set) out.
pub type Settings<'a> = dyn Fn(&str) -> Option<String> + Send + Sync + 'a;

/// A setting, or its default when unset or empty.
fn setting(settings: &Settings<'_>, name: &str, default: &str) -> String {
    settings(name)
        .filter(|value| !value.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// An optional secret: `<name>_ARN` (Secrets Manager) or `<name>`, if either is set.
async fn optional_secret(
    aws: &SdkConfig,
    settings: &Settings<'_>,
    name: &'static str,
) -> Result<Option<String>, SecretError> {
    match coins_runtime::Secret::from_lookup(name, settings) {
        Ok(secret) => secret.load(aws).await.map(Some),
        Err(coins_runtime::ConfigError::Missing(_)) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

fn invalid_setting(name: &'static str, reason: String) -> SecretError {
    SecretError::Config(coins_runtime::ConfigError::Invalid { name, reason })
}

pub async fn handle<S: Store>(deps: &Deps<S>, stores: &Stores, req: Request) -> Response<Body> {
    serve(req, |req| async move {
        let (route, req) = resolve(ROUTES, req)?;
        match route {
            APP_STORE_PURCHASE => apple::purchase(deps, &stores.apple, &req).await,
            APP_STORE_WEBHOOK => apple::notification(deps, &stores.apple, &req).await,
            GOOGLE_PLAY_PURCHASE => google::purchase(deps, &stores.google, &req).await,
            GOOGLE_PLAY_WEBHOOK => google::push(deps, &stores.google, &req).await,
            STORE_ACCOUNTS => store_accounts(&req),
            _ => Err(coins_http::unrouted(route)),
        }
    })
    .await
}

/// The caller's values for StoreKit's `appAccountToken` and Play Billing's
/// `setObfuscatedAccountId`, derived from the user id (nothing stored: the same on every call).
#[derive(Serialize)]
struct StoreAccounts {
    app_account_token: String,
    obfuscated_account_id: String,
}

fn store_accounts(req: &Request) -> Result<Response<Body>, ApiError> {
    let claims = Claims::from_request(req)?;
    let user = claims.user_id.as_str();
    response::ok(&StoreAccounts {
        app_account_token: coins_stores::binding::app_account_token(user),
        obfuscated_account_id: coins_stores::binding::obfuscated_account_id(user),
    })
}

/// The answer to a credited store purchase.
#[derive(Serialize)]
struct CreditBody<'a> {
    purchase_id: &'a str,
    status: &'static str,
    total_coins: u64,
    store: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<&'a str>,
}

/// What a store vouched for, checked against the caller.
struct Verified<'a> {
    channel: Channel,
    product_id: &'a str,
    /// The store's word on the buyer's country, `None` when the store does not say.
    country: Option<BillingCountry>,
    units: u32,
    /// The ledger's id of the store transaction.
    transaction: PaymentIntentId,
    /// The store's own id, as the answer shows it.
    store_id: &'a str,
    /// The buyer agreed that consumption data may be sent to the App Store.
    consumption_consent: bool,
}

/// Credits what a store vouched for to the caller: one of our packages, sold in the caller's
/// billing country, once per store transaction. 201 the first time, 200 after.
async fn credit<S: Store>(
    deps: &Deps<S>,
    claims: &Claims,
    req: &Request,
    verified: Verified<'_>,
) -> Result<Response<Body>, ApiError> {
    let book = deps.price_book();
    let package = our_package(book, verified.channel, verified.product_id)?;
    if verified.country != Some(claims.billing_country) {
        return Err(ApiError::new(
            Problem::RegionMismatch,
            format!(
                "bought in {}, your billing country is {}",
                verified
                    .country
                    .map_or_else(|| "an unknown country".to_owned(), |c| c.to_string()),
                claims.billing_country
            ),
        ));
    }
    let priced = book
        .quote(
            claims.location(),
            verified.channel,
            QuoteItem::Package(package.package_id),
        )?
        .times(verified.units)?;
    let key = IdempotencyKey::optional(req)?;
    let credit = deps
        .ledger
        .credit_store_purchase(
            &StorePurchase {
                user_id: claims.user_id.clone(),
                zone: claims.zone.clone(),
                priced,
                transaction: verified.transaction,
                consumption_consent: verified.consumption_consent,
            },
            deps.now(),
            key.as_ref(),
        )
        .await?;
    let apple = verified.channel == Channel::Ios;
    tracing::info!(purchase_id = %credit.purchase_id, store_id = verified.store_id, newly = credit.newly_credited, "store purchase credited");
    let body = CreditBody {
        purchase_id: credit.purchase_id.as_str(),
        status: "credited",
        total_coins: credit.total_coins,
        store: if apple { "app_store" } else { "google_play" },
        transaction_id: apple.then_some(verified.store_id),
        order_id: (!apple).then_some(verified.store_id),
    };
    if credit.newly_credited {
        response::created(&body)
    } else {
        response::ok(&body)
    }
}

/// The package a store sells as `product_id`, or 422 `store_product_unknown`.
fn our_package<'b>(
    book: &'b coins_rules::PriceBook,
    channel: Channel,
    product_id: &str,
) -> Result<&'b coins_rules::price_book::Package, ApiError> {
    book.package_for_store_product(channel, product_id)
        .ok_or_else(|| {
            ApiError::new(
                Problem::StoreProductUnknown,
                format!("{product_id} is not one of our products"),
            )
        })
}

/// A store's refusal, as the client sees it.
fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::Invalid(_) | StoreError::Unknown(_) => {
            ApiError::new(Problem::InvalidSignature, error)
        }
        StoreError::WrongApp(_) => ApiError::new(Problem::WrongApp, error),
        StoreError::Unavailable(_) | StoreError::NotConfigured(_) => ApiError::unavailable(error),
    }
}

/// The 200 acknowledgement of a notification.
#[derive(Serialize)]
struct Ack<'a> {
    received: bool,
    id: &'a str,
    outcome: &'a str,
}

fn ack(id: &str, outcome: &str) -> Result<Response<Body>, ApiError> {
    response::ok(&Ack {
        received: true,
        id,
        outcome,
    })
}
