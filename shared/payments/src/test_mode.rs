//! The test-mode provider: what the local server uses without Stripe. It keeps payments,
//! refunds and transfers in memory with Stripe's ids and rules where they matter to us (one
//! refund per instruction, a transfer to an `acct_fail…` account refused), so the README's flow
//! shows money going out without a network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use coins_ids::PaymentIntentId;

use crate::{NewPayment, ProviderError, ProviderPayment, RefundOrder, TransferOrder};

/// Transfers to an account whose id starts with this are refused (a closed or restricted
/// connected account), to show a failed payout.
pub const FAILING_ACCOUNT_PREFIX: &str = "acct_fail";

/// The provider's books, shared by clones.
#[derive(Clone, Debug, Default)]
pub struct TestMode {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// By payment id: the secret and whether it was canceled.
    payments: HashMap<String, TestPayment>,
    refunds: Vec<TestRefund>,
    transfers: Vec<TestTransfer>,
}

#[derive(Debug, Clone)]
struct TestPayment {
    client_secret: String,
    purchase_id: String,
    canceled: bool,
}

/// A refund made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestRefund {
    pub id: String,
    pub payment: String,
    pub amount_minor: i64,
    /// Our instruction id (empty for a refund made outside the ledger).
    pub refund_id: String,
}

/// A transfer made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTransfer {
    pub id: String,
    pub payout_id: String,
    pub destination: String,
}

fn random(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

impl TestMode {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn create_payment(&self, order: &NewPayment<'_>) -> ProviderPayment {
        let mut state = self.state();
        // Idempotent on the purchase, as Stripe is on the key.
        if let Some((id, payment)) = state
            .payments
            .iter()
            .find(|(_, payment)| payment.purchase_id == order.purchase_id.as_str())
        {
            return ProviderPayment {
                id: PaymentIntentId::new(id.clone()).expect("our own id"),
                client_secret: payment.client_secret.clone(),
            };
        }
        let id = random("pi_test_");
        let client_secret = format!("{id}_secret_{:08x}", rand::random::<u32>());
        state.payments.insert(
            id.clone(),
            TestPayment {
                client_secret: client_secret.clone(),
                purchase_id: order.purchase_id.to_string(),
                canceled: false,
            },
        );
        ProviderPayment {
            id: PaymentIntentId::new(id).expect("our own id"),
            client_secret,
        }
    }

    pub(crate) fn payment(&self, id: &PaymentIntentId) -> Result<ProviderPayment, ProviderError> {
        let state = self.state();
        let payment = state
            .payments
            .get(id.as_str())
            .ok_or_else(|| ProviderError::Refused {
                status: 404,
                kind: Some("invalid_request_error".into()),
                code: Some("resource_missing".into()),
                message: format!("no payment {id}"),
            })?;
        Ok(ProviderPayment {
            id: id.clone(),
            client_secret: payment.client_secret.clone(),
        })
    }

    pub(crate) fn cancel(&self, id: &PaymentIntentId) {
        if let Some(payment) = self.state().payments.get_mut(id.as_str()) {
            payment.canceled = true;
        }
    }

    /// Test-mode cards carry no country of their own: the dev payment route puts it in the
    /// event's charge instead.
    pub(crate) fn card_country(&self, _payment_method: &str) -> Option<String> {
        None
    }

    pub(crate) fn refund(&self, order: &RefundOrder<'_>) -> Result<String, ProviderError> {
        let mut state = self.state();
        if let Some(earlier) = state
            .refunds
            .iter()
            .find(|refund| refund.refund_id == order.refund_id.as_str())
        {
            return Ok(earlier.id.clone());
        }
        let id = random("re_test_");
        state.refunds.push(TestRefund {
            id: id.clone(),
            payment: order.payment.to_string(),
            amount_minor: order.amount_minor,
            refund_id: order.refund_id.to_string(),
        });
        Ok(id)
    }

    pub(crate) fn transfer(&self, order: &TransferOrder<'_>) -> Result<String, ProviderError> {
        if order
            .destination
            .as_str()
            .starts_with(FAILING_ACCOUNT_PREFIX)
        {
            return Err(ProviderError::Declined {
                code: "account_invalid".into(),
                message: format!("transfers to {} are not possible", order.destination),
            });
        }
        let mut state = self.state();
        if let Some(earlier) = state
            .transfers
            .iter()
            .find(|transfer| transfer.payout_id == order.payout_id.as_str())
        {
            return Ok(earlier.id.clone());
        }
        let id = random("tr_test_");
        state.transfers.push(TestTransfer {
            id: id.clone(),
            payout_id: order.payout_id.to_string(),
            destination: order.destination.to_string(),
        });
        Ok(id)
    }

    /// A refund made outside the ledger (Stripe's Dashboard): no instruction id.
    pub fn refund_outside(&self, payment: &PaymentIntentId, amount_minor: i64) -> String {
        let id = random("re_test_");
        self.state().refunds.push(TestRefund {
            id: id.clone(),
            payment: payment.to_string(),
            amount_minor,
            refund_id: String::new(),
        });
        id
    }

    pub(crate) fn refunded_outside(&self, payment: &PaymentIntentId) -> i64 {
        self.state()
            .refunds
            .iter()
            .filter(|refund| refund.payment == payment.as_str() && refund.refund_id.is_empty())
            .map(|refund| refund.amount_minor)
            .sum()
    }

    /// The refunds made so far.
    pub fn refunds(&self) -> Vec<TestRefund> {
        self.state().refunds.clone()
    }

    /// The transfers made so far.
    pub fn transfers(&self) -> Vec<TestTransfer> {
        self.state().transfers.clone()
    }

    /// Whether the payment was canceled.
    pub fn is_canceled(&self, id: &PaymentIntentId) -> bool {
        self.state()
            .payments
            .get(id.as_str())
            .is_some_and(|payment| payment.canceled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coins_ids::{ConnectedAccountId, PayoutId, PurchaseId, RefundId, UserId};
    use coins_rules::money::Money;

    #[test]
    fn a_refund_instruction_makes_one_refund_however_often_it_is_sent() {
        let test = TestMode::default();
        let purchase = PurchaseId::generate();
        let payment = test.create_payment(&NewPayment {
            purchase_id: &purchase,
            user_id: &UserId::new("fan").unwrap(),
            amount: Money::from_minor_units(1100, "JPY".parse().unwrap()),
        });
        let refund_id = RefundId::generate();
        let order = RefundOrder {
            refund_id: &refund_id,
            payment: &payment.id,
            amount_minor: 1100,
            purchase_id: Some(&purchase),
        };
        let first = test.refund(&order).unwrap();
        assert_eq!(test.refund(&order).unwrap(), first);
        assert_eq!(test.refunds().len(), 1);
    }

    #[test]
    fn a_transfer_to_a_failing_account_is_refused() {
        let test = TestMode::default();
        let payout = PayoutId::generate();
        let (closed, open) = (
            ConnectedAccountId::new("acct_fail_closed").unwrap(),
            ConnectedAccountId::new("acct_1").unwrap(),
        );
        let order = TransferOrder {
            payout_id: &payout,
            destination: &closed,
            amount: Money::from_minor_units(5000, "USD".parse().unwrap()),
        };
        assert!(matches!(
            test.transfer(&order),
            Err(ProviderError::Declined { .. })
        ));
        let good = TransferOrder {
            destination: &open,
            ..order
        };
        let first = test.transfer(&good).unwrap();
        assert_eq!(test.transfer(&good).unwrap(), first);
    }
}
