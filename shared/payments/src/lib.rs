//! The payment provider: Stripe, spoken for real ([`stripe`]), or an in-process test-mode
//! provider with the same behaviour for the local server ([`test_mode`]).
//!
//! [`Provider`] is what the functions call: create a payment for a purchase, read it back, find
//! the card's country, refund a payment, pay a creator. Every call that creates something at the
//! provider carries our own id as the provider's idempotency key, and the calls that must happen
//! once (refunds, transfers) look for their earlier result first, so a retry, a redelivery or a
//! lost response never makes two, even where the idempotency key is not honoured.

pub mod stripe;
pub mod test_mode;

use std::future::Future;
use std::time::Duration;

use coins_ids::{ConnectedAccountId, PaymentIntentId, PayoutId, PurchaseId, RefundId, UserId};
use coins_rules::money::Money;
use coins_runtime::{SdkConfig, Secret, SecretError};

use crate::stripe::{Expandable, PaymentIntent, STRIPE_API_BASE, SecretKey, Stripe};
use crate::test_mode::TestMode;

/// Why a provider call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// Down, throttled, timed out, or its own failure: the same call may succeed later (it may
    /// also have taken effect: callers look before they create again).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// A 4xx that is not a final refusal of what we asked (a 401 after a key roll, a 403 from
    /// a proxy, a 404 from another account's key, a code outside the closed lists below):
    /// retrying the same call will not help, but nothing is known of the money either.
    #[error("payment provider refused: {message}")]
    Refused {
        status: u16,
        /// Stripe's error `type`, when its body was Stripe's.
        kind: Option<String>,
        code: Option<String>,
        message: String,
    },
    /// Stripe's explicit, final refusal of a refund or transfer: one of the codes of
    /// [`REFUND_REFUSALS`] or [`TRANSFER_REFUSALS`] on the call that creates it. Nothing was
    /// made, and the same call will never make it.
    #[error("payment provider declined: {message}")]
    Declined { code: String, message: String },
    /// An answer we cannot read (a 2xx whose body does not parse): a bug of ours, a changed
    /// API, or a proxy; what we asked may have been done.
    #[error("payment provider answer unreadable: {0}")]
    Unreadable(String),
}

/// The Stripe error codes that refuse a refund for good (HTTP 400 or 402, error `type`
/// `invalid_request_error` or `card_error`, on `POST /v1/refunds`), each because the payment
/// itself cannot give the money back, whatever we send:
/// - `charge_already_refunded`: wholly refunded already (by another refund, e.g. made in the
///   Dashboard); ours, found first by its metadata, is never the one that refunded it;
/// - `charge_disputed`: charged back; the dispute returns the money, a refund cannot;
/// - `charge_not_refundable`: the payment method cannot be refunded (too old, or never
///   refundable);
/// - `amount_too_large`: more than is left to refund on the payment.
///
/// Everything else is ambiguous (see [`ProviderError::is_final`]).
pub const REFUND_REFUSALS: &[&str] = &[
    "charge_already_refunded",
    "charge_disputed",
    "charge_not_refundable",
    "amount_too_large",
];

/// The Stripe error codes that refuse a transfer for good (HTTP 400 or 402, `type`
/// `invalid_request_error` or `card_error`, on `POST /v1/transfers`), each because no money
/// left the platform and the same transfer will not pass:
/// - `balance_insufficient`: the platform's available balance cannot cover it;
/// - `insufficient_funds`: the same, as some API versions name it;
/// - `account_invalid`: the destination account is not one we may pay (closed, rejected);
/// - `insufficient_capabilities_for_transfer`: the destination cannot receive transfers;
/// - `transfers_not_allowed`: Stripe does not allow this transfer.
///
/// The payout then fails and its diamonds come back to the creator, who may ask again.
pub const TRANSFER_REFUSALS: &[&str] = &[
    "balance_insufficient",
    "insufficient_funds",
    "account_invalid",
    "insufficient_capabilities_for_transfer",
    "transfers_not_allowed",
];

/// The error types Stripe uses for a request it understood and refused; `api_error`,
/// `idempotency_error` and the rest say nothing final.
const REFUSAL_TYPES: &[&str] = &["invalid_request_error", "card_error"];

impl ProviderError {
    /// Whether the same call may pass soon (worth retrying in the same request).
    pub fn is_retryable(&self) -> bool {
        matches!(self, ProviderError::Unavailable(_))
    }

    /// Whether this is Stripe's final refusal: only then may a refund or payout be failed.
    /// Everything else (unavailable, a 401/403, an unlisted code, an unreadable answer) leaves
    /// open that the money moved.
    pub fn is_final(&self) -> bool {
        matches!(self, ProviderError::Declined { .. })
    }

    /// This error as a final refusal when it is one of `codes` under the conditions of
    /// [`REFUND_REFUSALS`]; as it is otherwise.
    pub fn declined_if(self, codes: &[&str]) -> ProviderError {
        match self {
            ProviderError::Refused {
                status: 400 | 402,
                kind: Some(kind),
                code: Some(code),
                message,
            } if REFUSAL_TYPES.contains(&kind.as_str()) && codes.contains(&code.as_str()) => {
                ProviderError::Declined { code, message }
            }
            other => other,
        }
    }
}

/// A payment to create for a purchase.
#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    pub purchase_id: &'a PurchaseId,
    pub user_id: &'a UserId,
    pub amount: Money,
}

/// A payment the buyer completes in the app with the client secret.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProviderPayment {
    pub id: PaymentIntentId,
    pub client_secret: String,
}

/// A refund to make, named by our instruction id.
#[derive(Clone, Debug)]
pub struct RefundOrder<'a> {
    pub refund_id: &'a RefundId,
    pub payment: &'a PaymentIntentId,
    pub amount_minor: i64,
    pub purchase_id: Option<&'a PurchaseId>,
}

/// A payment to a creator's connected account, named by our payout id.
#[derive(Clone, Debug)]
pub struct TransferOrder<'a> {
    pub payout_id: &'a PayoutId,
    pub destination: &'a ConnectedAccountId,
    pub amount: Money,
}

/// How a call that must happen once ended, after its retries in one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempted {
    /// Done: the provider's id of what it made (now, or found made before).
    Done(String),
    /// Refused for good ([`ProviderError::is_final`]).
    Refused(String),
    /// Still failing in a way that may pass (down, throttled, timed out): try again in a later
    /// delivery.
    Retry(String),
    /// An answer that says neither done nor refused, and that waiting is unlikely to mend (a
    /// 401/403 after a key roll, an unlisted 4xx, a 2xx we cannot read): the money may have
    /// moved, so it stays pending like [`Attempted::Retry`], but a person must look now.
    Ambiguous(String),
}

/// The waits between a dispatcher's sends in one delivery: the provider's blips are short, and a
/// longer outage is left to the stream's redelivery.
pub const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

/// The log message of an ambiguous answer, at error level: the template's metric filter and
/// alarm count lines by it, so it never changes.
pub const AMBIGUOUS_ANSWER: &str = "payment provider answer ambiguous; left pending";

/// Makes `call` until it is done or finally refused, waiting each of `waits` in turn after any
/// other failure (a blip passes; a lost or unreadable answer is found by the next call's look
/// for an earlier result); `what` names it in the logs. Only a final refusal
/// ([`ProviderError::is_final`]) ends as refused.
pub async fn with_backoff<F, Fut>(waits: &[Duration], what: &str, mut call: F) -> Attempted
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, ProviderError>>,
{
    let mut waits = waits.iter();
    loop {
        let error = match call().await {
            Ok(id) => return Attempted::Done(id),
            Err(error) => error,
        };
        if error.is_final() {
            return Attempted::Refused(error.to_string());
        }
        let Some(wait) = waits.next() else {
            if error.is_retryable() {
                return Attempted::Retry(error.to_string());
            }
            tracing::error!(what, %error, "{AMBIGUOUS_ANSWER}");
            return Attempted::Ambiguous(error.to_string());
        };
        tracing::warn!(what, %error, "provider call failed; retrying");
        tokio::time::sleep(*wait).await;
    }
}

/// `amount` in minor units, as Stripe takes it (every currency we price in has them).
fn minor_units(amount: Money) -> Result<i64, ProviderError> {
    amount
        .minor_units()
        .ok_or_else(|| ProviderError::Unreadable(format!("{amount} has no minor-unit form")))
}

/// The provider the functions talk to.
#[derive(Clone, Debug)]
pub enum Provider {
    Stripe(Stripe),
    TestMode(TestMode),
}

impl Provider {
    /// Stripe as the environment configures it: `STRIPE_API_BASE` (default the production API)
    /// and the secret key, `STRIPE_SECRET_KEY_ARN` (Secrets Manager, on AWS) or
    /// `STRIPE_SECRET_KEY` (local runs). Read once per cold start.
    pub async fn from_env(aws: &SdkConfig) -> Result<Provider, SecretError> {
        let base = std::env::var("STRIPE_API_BASE")
            .ok()
            .filter(|base| !base.is_empty())
            .unwrap_or_else(|| STRIPE_API_BASE.to_owned());
        let key = Secret::from_env("STRIPE_SECRET_KEY")?.load(aws).await?;
        Ok(Provider::Stripe(Stripe::new(base, SecretKey::new(key))))
    }

    /// Creates the payment of a purchase (idempotent on the purchase id).
    pub async fn create_payment(
        &self,
        order: &NewPayment<'_>,
    ) -> Result<ProviderPayment, ProviderError> {
        match self {
            Provider::TestMode(test) => Ok(test.create_payment(order)),
            Provider::Stripe(stripe) => {
                let amount_minor = minor_units(order.amount)?;
                let intent = stripe
                    .create_payment_intent(
                        amount_minor,
                        order.amount.currency().code(),
                        &[
                            ("purchase_id", order.purchase_id.as_str()),
                            ("user_id", order.user_id.as_str()),
                        ],
                        order.purchase_id.as_str(),
                    )
                    .await?;
                payment_of(intent)
            }
        }
    }

    /// A payment and its client secret, read back (a retried purchase request).
    pub async fn payment(&self, id: &PaymentIntentId) -> Result<ProviderPayment, ProviderError> {
        match self {
            Provider::TestMode(test) => test.payment(id),
            Provider::Stripe(stripe) => payment_of(stripe.payment_intent(id.as_str()).await?),
        }
    }

    /// Cancels a payment no purchase uses (best effort: the caller only logs a failure).
    pub async fn cancel_payment(&self, id: &PaymentIntentId) -> Result<(), ProviderError> {
        match self {
            Provider::TestMode(test) => {
                test.cancel(id);
                Ok(())
            }
            Provider::Stripe(stripe) => stripe.cancel_payment_intent(id.as_str()).await.map(drop),
        }
    }

    /// The issuing country of the card of a payment, from its latest charge if the event
    /// carried it expanded, else from its PaymentMethod.
    pub async fn card_country(
        &self,
        intent: &PaymentIntent,
    ) -> Result<Option<String>, ProviderError> {
        let from_charge = intent
            .latest_charge
            .as_ref()
            .and_then(Expandable::object)
            .and_then(|charge| charge.payment_method_details.as_ref())
            .and_then(|details| details.card.as_ref())
            .and_then(|card| card.country.clone());
        if from_charge.is_some() {
            return Ok(from_charge);
        }
        let method = match &intent.payment_method {
            None => return Ok(None),
            Some(Expandable::Object(method)) => return Ok(card_country_of(method)),
            Some(Expandable::Id(id)) => id,
        };
        match self {
            Provider::TestMode(test) => Ok(test.card_country(method)),
            Provider::Stripe(stripe) => Ok(card_country_of(&stripe.payment_method(method).await?)),
        }
    }

    /// How much of a payment (minor units) was refunded by refunds that are not ours: made in
    /// the Dashboard or by another integration. Ours all carry our instruction id as
    /// `metadata[refund_id]`; failed and canceled refunds gave nothing back.
    pub async fn refunded_outside(&self, payment: &PaymentIntentId) -> Result<i64, ProviderError> {
        match self {
            Provider::TestMode(test) => Ok(test.refunded_outside(payment)),
            Provider::Stripe(stripe) => Ok(stripe
                .refunds_of(payment.as_str())
                .await?
                .iter()
                .filter(|refund| !refund.metadata.contains_key("refund_id"))
                .filter(|refund| !matches!(refund.status.as_str(), "failed" | "canceled"))
                .map(|refund| refund.amount)
                .sum()),
        }
    }

    /// The PaymentIntent a charge belongs to (an early fraud warning names the charge).
    pub async fn payment_of_charge(&self, charge: &str) -> Result<Option<String>, ProviderError> {
        match self {
            Provider::TestMode(_) => Ok(None),
            Provider::Stripe(stripe) => Ok(stripe.charge(charge).await?.payment_intent),
        }
    }

    /// Refunds a payment for an instruction, once: an earlier refund for the same instruction
    /// (found by its metadata) is returned instead of making another. Returns the provider's
    /// refund id.
    pub async fn refund(&self, order: &RefundOrder<'_>) -> Result<String, ProviderError> {
        match self {
            Provider::TestMode(test) => test.refund(order),
            Provider::Stripe(stripe) => {
                let payment = order.payment.as_str();
                let refund_id = order.refund_id.as_str();
                let earlier = stripe
                    .refunds_of(payment)
                    .await?
                    .into_iter()
                    .find(|refund| {
                        refund.metadata.get("refund_id").map(String::as_str) == Some(refund_id)
                    });
                if let Some(refund) = earlier {
                    return Ok(refund.id);
                }
                let mut metadata = vec![("refund_id", refund_id)];
                if let Some(purchase) = order.purchase_id {
                    metadata.push(("purchase_id", purchase.as_str()));
                }
                let refund = stripe
                    .create_refund(payment, order.amount_minor, &metadata, refund_id)
                    .await
                    .map_err(|error| error.declined_if(REFUND_REFUSALS))?;
                Ok(refund.id)
            }
        }
    }

    /// Pays a creator, once per payout: an earlier transfer for the same payout is returned
    /// instead of making another. Returns the provider's transfer id.
    pub async fn transfer(&self, order: &TransferOrder<'_>) -> Result<String, ProviderError> {
        match self {
            Provider::TestMode(test) => test.transfer(order),
            Provider::Stripe(stripe) => {
                let payout = order.payout_id.as_str();
                if let Some(earlier) = stripe.transfers_in(payout).await?.into_iter().next() {
                    return Ok(earlier.id);
                }
                let amount_minor = minor_units(order.amount)?;
                let transfer = stripe
                    .create_transfer(
                        amount_minor,
                        order.amount.currency().code(),
                        order.destination.as_str(),
                        payout,
                        payout,
                    )
                    .await
                    .map_err(|error| error.declined_if(TRANSFER_REFUSALS))?;
                Ok(transfer.id)
            }
        }
    }
}

fn card_country_of(method: &stripe::PaymentMethod) -> Option<String> {
    method.card.as_ref().and_then(|card| card.country.clone())
}

fn payment_of(intent: PaymentIntent) -> Result<ProviderPayment, ProviderError> {
    let unreadable = |what: &str| ProviderError::Unreadable(format!("payment intent {what}"));
    Ok(ProviderPayment {
        id: PaymentIntentId::new(intent.id).map_err(|_| unreadable("id"))?,
        client_secret: intent
            .client_secret
            .ok_or_else(|| unreadable("without a client secret"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(status: u16, kind: &str, code: &str) -> ProviderError {
        ProviderError::Refused {
            status,
            kind: Some(kind.into()),
            code: Some(code.into()),
            message: "no".into(),
        }
    }

    #[test]
    fn only_a_listed_code_of_a_refusal_type_on_400_or_402_is_final() {
        let declined = |error: ProviderError| error.declined_if(TRANSFER_REFUSALS).is_final();
        assert!(declined(refused(
            400,
            "invalid_request_error",
            "balance_insufficient"
        )));
        assert!(declined(refused(402, "card_error", "account_invalid")));
        // A key rolled, a proxy, another account's key, Stripe's own failure: not final.
        assert!(!declined(refused(
            401,
            "invalid_request_error",
            "account_invalid"
        )));
        assert!(!declined(refused(
            403,
            "invalid_request_error",
            "balance_insufficient"
        )));
        assert!(!declined(refused(400, "api_error", "balance_insufficient")));
        assert!(!declined(refused(
            404,
            "invalid_request_error",
            "resource_missing"
        )));
        assert!(!declined(refused(
            400,
            "invalid_request_error",
            "charge_already_refunded"
        )));
        assert!(!declined(ProviderError::Unreadable("<html>".into())));
        assert!(!declined(ProviderError::Unavailable("timed out".into())));
    }

    #[tokio::test]
    async fn an_ambiguous_answer_is_retried_then_left_pending_not_refused() {
        let mut calls = 0;
        let attempted = with_backoff(&[Duration::ZERO; 2], "payout", || {
            calls += 1;
            async { Err::<String, _>(refused(401, "invalid_request_error", "x")) }
        })
        .await;
        assert!(
            matches!(attempted, Attempted::Ambiguous(_)),
            "{attempted:?}"
        );
        assert_eq!(calls, 3);
    }

    /// A PaymentIntent names the payment method types whose payer country the webhook can
    /// establish (cards); left out, Stripe offers the account's defaults (wallets, bank debits)
    /// that carry no card country.
    #[tokio::test]
    async fn a_payment_intent_accepts_cards_only() {
        use std::sync::{Arc, Mutex};
        let forms: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = forms.clone();
        let base = coins_testkit::http::serve(move |_, body| {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&body).into_owned());
            async {
                coins_testkit::http::json_response(
                    200,
                    &serde_json::json!({"id": "pi_1", "object": "payment_intent", "amount": 1100,
                        "currency": "jpy", "status": "requires_payment_method",
                        "client_secret": "pi_1_secret_x"}),
                )
            }
        });
        let provider = Provider::Stripe(Stripe::new(base, SecretKey::new("sk_test_x")));
        let order = NewPayment {
            purchase_id: &PurchaseId::generate(),
            user_id: &UserId::new("fan").unwrap(),
            amount: Money::from_minor_units(1100, "JPY".parse().unwrap()),
        };
        provider.create_payment(&order).await.unwrap();
        let form = forms.lock().unwrap()[0].clone();
        let types: Vec<_> = form_urlencoded::parse(form.as_bytes())
            .filter(|(key, _)| key.starts_with("payment_method_types"))
            .map(|(_, value)| value.into_owned())
            .collect();
        assert_eq!(types, ["card"], "{form}");
    }
}
