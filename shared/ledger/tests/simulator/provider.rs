//! The payment provider's side (Stripe's part): what it charged, and every refund and transfer
//! it made, by instruction and payout, so the simulator can count them. It answers as
//! `coins-payments` does (an earlier refund or transfer of the same instruction or payout is
//! found first and returned), and fails as a provider does: unavailable (nothing done), a lost
//! response (done, but the caller hears an error), an ambiguous one (done, then a 2xx we cannot
//! read, or a lost answer and then 401 on the lookups after a key roll: the dispatchers leave
//! the item pending, as `coins_payments::with_backoff` does), and outages lasting hours.

use std::collections::BTreeMap;

use coins_ledger::table::{PayoutRecord, RefundRecord};
use jiff::Timestamp;

use crate::faults::OpFaults;

pub struct MadeRefund {
    pub payment: String,
    pub amount_minor: i64,
    /// The ledger's refund instruction (the metadata and idempotency key Stripe is sent).
    pub instruction: String,
}

pub struct MadeTransfer {
    pub payout: String,
    pub cents: i64,
}

/// Why a call to the provider failed.
#[derive(Debug)]
pub enum Failed {
    /// May pass later; what was asked may or may not have been done.
    Retry(String),
    /// Refused for good.
    Refused(String),
}

#[derive(Default)]
pub struct Provider {
    /// What each payment charged, in minor units.
    pub charged: BTreeMap<String, i64>,
    pub refunds: Vec<MadeRefund>,
    pub transfers: Vec<MadeTransfer>,
    /// Down for everything until then.
    pub outage_until: Option<Timestamp>,
    /// The next calls answered 401: the key was rolled while a call was in flight.
    pub unauthorized_calls: u32,
}

/// How many calls a rolled key refuses before the new one is deployed.
const KEY_ROLL_CALLS: u32 = 4;

/// Destinations Stripe refuses transfers to (a closed Connect account).
pub const CLOSED_ACCOUNT_PREFIX: &str = "acct_closed";

impl Provider {
    /// A refund for the instruction: the one made before, or a new one.
    pub fn refund(
        &mut self,
        op: &OpFaults,
        now: Timestamp,
        instruction: &RefundRecord,
    ) -> Result<String, Failed> {
        let name = instruction.refund_id.to_string();
        let found = self.call(op, now, |provider| {
            Ok(provider
                .refunds
                .iter()
                .position(|refund| refund.instruction == name))
        })?;
        if let Some(index) = found {
            return Ok(format!("re_{index}"));
        }
        let payment = instruction.payment_intent_id.to_string();
        let amount_minor = instruction.amount_minor;
        self.call(op, now, |provider| {
            let charged = provider.charged.get(&payment).copied().unwrap_or(0);
            let refunded: i64 = provider
                .refunds
                .iter()
                .filter(|refund| refund.payment == payment)
                .map(|refund| refund.amount_minor)
                .sum();
            if refunded + amount_minor > charged {
                return Err(Failed::Refused(format!(
                    "charge {payment} has {} left to refund, not {amount_minor}",
                    charged - refunded
                )));
            }
            provider.refunds.push(MadeRefund {
                payment: payment.clone(),
                amount_minor,
                instruction: name.clone(),
            });
            Ok(format!("re_{}", provider.refunds.len() - 1))
        })
    }

    /// A transfer for the payout: the one made before (its transfer group), or a new one.
    pub fn transfer(
        &mut self,
        op: &OpFaults,
        now: Timestamp,
        payout: &PayoutRecord,
    ) -> Result<String, Failed> {
        let name = payout.payout_id.to_string();
        let found = self.call(op, now, |provider| {
            Ok(provider
                .transfers
                .iter()
                .position(|transfer| transfer.payout == name))
        })?;
        if let Some(index) = found {
            return Ok(format!("tr_{index}"));
        }
        let cents = payout.amount.minor_units().unwrap_or(i64::MAX);
        let closed = payout
            .destination
            .as_str()
            .starts_with(CLOSED_ACCOUNT_PREFIX);
        self.call(op, now, |provider| {
            if closed {
                return Err(Failed::Refused("account_invalid".into()));
            }
            provider.transfers.push(MadeTransfer {
                payout: name.clone(),
                cents,
            });
            Ok(format!("tr_{}", provider.transfers.len() - 1))
        })
    }

    /// One API call: refused while down or unavailable; done but its answer lost, sometimes.
    fn call<T>(
        &mut self,
        op: &OpFaults,
        now: Timestamp,
        act: impl FnOnce(&mut Provider) -> Result<T, Failed>,
    ) -> Result<T, Failed> {
        if self.outage_until.is_some_and(|until| now < until) {
            op.inject("provider: call during an outage");
            return Err(Failed::Retry("503 during an outage".into()));
        }
        if op.draw(op.profile.provider_unavailable) {
            op.inject("provider: unavailable (nothing done)");
            return Err(Failed::Retry("503 unavailable".into()));
        }
        if self.unauthorized_calls > 0 {
            self.unauthorized_calls -= 1;
            op.inject("provider: 401 after a key roll");
            return Err(Failed::Retry("401 invalid API key".into()));
        }
        let answer = act(self)?;
        // Neither done nor refused, after it acted: only a later lookup may say it was done.
        if op.draw(op.profile.provider_ambiguous) {
            if op.draw(500) {
                op.inject("provider: acted, answered a 2xx that does not parse");
                return Err(Failed::Retry("200 with an unreadable body".into()));
            }
            op.inject("provider: acted, answer lost, then 401 on the lookups (key rolled)");
            self.unauthorized_calls = KEY_ROLL_CALLS;
            return Err(Failed::Retry("timed out".into()));
        }
        if op.draw(op.profile.provider_lost_response) {
            op.inject("provider: response lost after it acted");
            return Err(Failed::Retry("timed out".into()));
        }
        Ok(answer)
    }
}
