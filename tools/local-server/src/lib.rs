//! The local server: every function's handler on the routes of API Gateway, on one port.
//!
//! It plays API Gateway's part (route matching, the JWT authorizer with HS256 dev tokens, the
//! payload 2.0 event) and then calls the very handler code the Lambda functions run, over the
//! in-memory store by default or DynamoDB by flag; it plays Lambda's part for the event-driven
//! functions, feeding them the table's stream ([`streams`]). Only here are there a test clock
//! (`/_dev/clock`: every handler reads it, and moving it runs the refund-window sweep) and a way
//! to pay a purchase without a card (`/_dev/payments/{purchase_id}`: a signed Stripe event
//! through the real webhook).

pub mod auth;
pub mod dev_clock;
pub mod dev_payments;
pub mod exposure;
pub mod filter;
pub mod gateway;
pub mod server;
pub mod streams;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use coins_http::routing::match_route;
use coins_http::{ApiError, Problem, Route};
use coins_ledger::{Ledger, Store};
use coins_runtime::{Clock, Deps, TestClock};
use lambda_http::http::{self, header};
use lambda_http::{Body, Response};
use stores::Stores;
use stripe_webhook::Webhook;

use crate::auth::DevAuth;
use crate::gateway::{Incoming, lambda_request, new_request_id};

/// `STRIPE_WEBHOOK_SECRET` when unset. Public on purpose: it only signs local test events.
pub const DEFAULT_WEBHOOK_SECRET: &str = "whsec_local_development";

/// `GOOGLE_PUSH_SERVICE_ACCOUNT` when unset: the stores function refuses to start without one
/// (#18), and local pushes (signed by a test key the `--google-jwks-url` publishes) name it.
pub const DEV_PUSH_SERVICE_ACCOUNT: &str = "pubsub-push@coins-local.iam.gserviceaccount.com";

/// The stores' settings the local server assumes when neither a flag nor the environment gives
/// them: Apple's sandbox, the dev push service account, and test purchases credited (license
/// testers are who buys in a local run; a deployment credits them only if told to).
pub fn default_store_setting(name: &str) -> Option<String> {
    match name {
        "APPLE_ENVIRONMENT" => Some("Sandbox".to_owned()),
        "GOOGLE_PUSH_SERVICE_ACCOUNT" => Some(DEV_PUSH_SERVICE_ACCOUNT.to_owned()),
        "GOOGLE_ALLOW_LICENSE_TESTERS" => Some("true".to_owned()),
        _ => None,
    }
}

/// The Lambda functions the server runs (the same split as the SAM template's; checked against
/// `functions/` by a test).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Catalog,
    Quote,
    Purchase,
    StripeWebhook,
    /// In-app purchases and the stores' notifications.
    Stores,
    Wallet,
    Creators,
    Gift,
    Refund,
    /// Event-driven: fed from the table's stream ([`streams`]).
    RefundDispatch,
    /// Event-driven: fed from the stream, and its sweep runs whenever the test clock moves.
    RefundExpiry,
    /// Event-driven: gifts into creators' earnings, from the stream.
    Earnings,
    /// Event-driven: payouts to Stripe Connect, from the stream.
    PayoutDispatch,
}

impl Function {
    pub const ALL: [Function; 13] = [
        Function::Catalog,
        Function::Quote,
        Function::Purchase,
        Function::StripeWebhook,
        Function::Stores,
        Function::Wallet,
        Function::Creators,
        Function::Gift,
        Function::Refund,
        Function::RefundDispatch,
        Function::RefundExpiry,
        Function::Earnings,
        Function::PayoutDispatch,
    ];

    /// The function's name: its crate under `functions/` and its binary.
    pub fn name(self) -> &'static str {
        match self {
            Function::Catalog => "catalog",
            Function::Quote => "quote",
            Function::Purchase => "purchase",
            Function::StripeWebhook => "stripe-webhook",
            Function::Stores => "stores",
            Function::Wallet => "wallet",
            Function::Creators => "creators",
            Function::Gift => "gift",
            Function::Refund => "refund",
            Function::RefundDispatch => "refund-dispatch",
            Function::RefundExpiry => "refund-expiry",
            Function::Earnings => "earnings",
            Function::PayoutDispatch => "payout-dispatch",
        }
    }

    /// The function's own route table (none for an event-driven one).
    pub fn routes(self) -> &'static [Route] {
        match self {
            Function::Catalog => catalog::ROUTES,
            Function::Quote => quote::ROUTES,
            Function::Purchase => purchase::ROUTES,
            Function::StripeWebhook => stripe_webhook::ROUTES,
            Function::Stores => stores::ROUTES,
            Function::Wallet => wallet::ROUTES,
            Function::Creators => creators::ROUTES,
            Function::Gift => gift::ROUTES,
            Function::Refund => refund::ROUTES,
            Function::RefundDispatch
            | Function::RefundExpiry
            | Function::Earnings
            | Function::PayoutDispatch => &[],
        }
    }
}

/// Behind the JWT authorizer? Every route but the webhooks (their signature is their auth).
pub fn authorized(route: &Route) -> bool {
    !route.path.starts_with("/v1/webhooks/")
}

/// Every API route and the function serving it.
pub fn mounts() -> Vec<(Route, Function)> {
    Function::ALL
        .iter()
        .flat_map(|&function| {
            function
                .routes()
                .iter()
                .map(move |&route| (route, function))
        })
        .collect()
}

/// Every route the local server answers: the API's plus its own (`/_dev/…`). The OpenAPI
/// document must list exactly these.
pub fn routes() -> Vec<Route> {
    mounts()
        .into_iter()
        .map(|(route, _)| route)
        .chain(dev_clock::ROUTES.iter().copied())
        .chain(dev_payments::ROUTES.iter().copied())
        .collect()
}

/// The running server's state.
pub struct App<S: Store> {
    pub deps: Deps<S>,
    pub clock: TestClock,
    pub auth: DevAuth,
    /// Stripe (or the test-mode provider) and the webhook's signing secret.
    pub payments: Webhook,
    /// The App Store and Google Play.
    pub stores: Stores,
    /// Whether `/_dev/…` is served (off: those paths are 404, as on AWS).
    pub dev_routes: bool,
}

impl<S: Store> App<S> {
    /// The server over `ledger`, every function reading `clock`.
    pub fn new(
        ledger: Ledger<S>,
        clock: TestClock,
        auth: DevAuth,
        payments: Webhook,
        stores: Stores,
    ) -> Self {
        App {
            deps: Deps::new(ledger, Arc::new(clock.clone())),
            clock,
            auth,
            payments,
            stores,
            dev_routes: true,
        }
    }

    /// The same server with the `/_dev/…` routes on or off (`--no-dev-routes`).
    pub fn with_dev_routes(self, dev_routes: bool) -> Self {
        App { dev_routes, ..self }
    }

    /// The test clock's time.
    pub fn clock_now(&self) -> jiff::Timestamp {
        self.clock.now()
    }

    /// Answers one HTTP request as API Gateway plus the function would.
    pub async fn handle(
        &self,
        req: http::Request<Bytes>,
        remote: Option<SocketAddr>,
    ) -> Response<Body> {
        let (parts, body) = req.into_parts();
        let all = if self.dev_routes {
            routes()
        } else {
            mounts().into_iter().map(|(route, _)| route).collect()
        };
        let matched = match match_route(&all, parts.method.as_str(), parts.uri.path()) {
            Ok(matched) => matched,
            Err(error) => return error.into_response(),
        };
        if dev_clock::ROUTES.contains(&matched.route) {
            return dev_clock::handle(self, &parts, &body).await;
        }
        if dev_payments::ROUTES.contains(&matched.route) {
            return dev_payments::handle(self, &parts, &body, matched.params).await;
        }
        let function = mounts()
            .into_iter()
            .find(|(route, _)| *route == matched.route)
            .map(|(_, function)| function)
            .expect("every matched API route is mounted");
        let claims = if authorized(&matched.route) {
            let authorization = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok());
            match self.auth.verify(authorization) {
                Ok(claims) => Some(claims),
                // API Gateway's authorizer answers 401 without calling the function.
                Err(error) => {
                    return ApiError::new(Problem::Unauthenticated, error).into_response();
                }
            }
        } else {
            None
        };
        let request = lambda_request(
            Incoming {
                parts: &parts,
                body: &body,
                remote,
            },
            &matched.route,
            matched.params,
            claims,
            new_request_id(),
        );
        let deps = &self.deps;
        let provider = &self.payments.provider;
        match function {
            Function::Catalog => catalog::handle(deps, request).await,
            Function::Quote => quote::handle(deps, request).await,
            Function::Purchase => purchase::handle(deps, provider, request).await,
            Function::StripeWebhook => stripe_webhook::handle(deps, &self.payments, request).await,
            Function::Stores => stores::handle(deps, &self.stores, request).await,
            Function::Wallet => wallet::handle(deps, request).await,
            Function::Creators => creators::handle(deps, request).await,
            Function::Gift => gift::handle(deps, request).await,
            Function::Refund => refund::handle(deps, request).await,
            Function::RefundDispatch
            | Function::RefundExpiry
            | Function::Earnings
            | Function::PayoutDispatch => {
                unreachable!("an event-driven function has no routes")
            }
        }
    }
}
