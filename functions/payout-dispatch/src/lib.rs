//! `payout-dispatch`: sends creators' payouts from the outbox to Stripe Connect.
//!
//! The table's stream delivers each payout's insert ([`STREAM_FILTER`]). For each, the
//! dispatcher claims the payout (a conditional write: two dispatchers never send one at once),
//! asks Stripe for a transfer it may already have made for it (found by its `transfer_group`,
//! the payout id: a lost response or a crashed dispatcher), else creates one with the payout id
//! as Stripe's `Idempotency-Key`, and records the outcome with the creator's earnings: `paid`
//! with Stripe's transfer id, or `failed` with the diamonds back in `available`, when Stripe
//! refuses it explicitly and for good (a code of [`coins_payments::TRANSFER_REFUSALS`], e.g. a
//! closed account). Any other answer never fails it (Stripe down or timing out, a 401/403 after
//! a key roll, an unlisted 4xx, a 2xx we cannot read; the last three logged at error level as
//! [`coins_payments::AMBIGUOUS_ANSWER`] for an alarm): Stripe may have made the transfer and
//! lost the answer, and returning the diamonds then would pay them twice, so the payout stays
//! `pending`, its diamonds in payout, until Stripe says. A payout still pending after a delivery's retries is reported as a partial
//! batch failure, so Lambda redelivers it; after the mapping's retries it goes to the
//! dead-letter queue, whose alarm calls an operator.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::store::Key;
use coins_ledger::table::Outstanding;
use coins_ledger::table::{PayoutRecord, PayoutStatus};
use coins_ledger::{PayoutClaim, Store, Transferred};
use coins_payments::{Attempted, BACKOFF, Provider, TransferOrder, with_backoff};
use coins_runtime::Deps;
use coins_streams::BatchError;
use coins_streams::dispatch::{ledger_error, stream_or_sweep};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// The event source mapping's filter: inserts of payouts only (the template's `FilterCriteria`
/// must say the same; the local server applies this one).
pub const STREAM_FILTER: &str =
    r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["payout"]}}}}"#;

/// What became of one payout in this delivery.
pub type Dispatched = coins_streams::dispatch::Dispatched<PayoutStatus>;

/// Entry point: one stream batch, or the scheduled sweep of what is still pending.
pub async fn handle<S: Store>(
    deps: &Deps<S>,
    provider: &Provider,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, BatchError> {
    let now = deps.now();
    stream_or_sweep(
        event.payload,
        &deps.ledger,
        Outstanding::Payout,
        now,
        |key| async move { dispatch(deps, provider, &key).await },
    )
    .await
}

/// Sends the payout at `key`, if it is ours to send now.
pub async fn dispatch<S: Store>(deps: &Deps<S>, provider: &Provider, key: &Key) -> Dispatched {
    let payout = match deps.ledger.claim_payout(key, deps.now()).await {
        Ok(PayoutClaim::Send(payout)) => payout,
        Ok(PayoutClaim::Finished(status)) => return Dispatched::Finished(status),
        Ok(PayoutClaim::Held { until }) => {
            tracing::info!(?key, %until, "payout held by another dispatcher");
            return Dispatched::Retry;
        }
        Err(error) => return ledger_error("payout", key, &error),
    };
    let order = TransferOrder {
        payout_id: &payout.payout_id,
        destination: &payout.destination,
        amount: payout.amount,
    };
    let sent = match with_backoff(&BACKOFF, payout.payout_id.as_str(), || {
        provider.transfer(&order)
    })
    .await
    {
        Attempted::Done(transfer_id) => Transferred::Paid { transfer_id },
        Attempted::Refused(error) => Transferred::Refused { error },
        // Logged at error level by `with_backoff` for the alarm; pending all the same.
        Attempted::Retry(error) | Attempted::Ambiguous(error) => Transferred::Retry { error },
    };
    match deps.ledger.finish_payout(&payout, &sent, deps.now()).await {
        Ok(finished) => {
            log(&finished);
            match finished.status {
                PayoutStatus::Pending => Dispatched::Retry,
                status => Dispatched::Finished(status),
            }
        }
        // Stripe has the transfer; the retry finds it by its transfer group.
        Err(error) => ledger_error("payout", key, &error),
    }
}

fn log(payout: &PayoutRecord) {
    let payout_id = payout.payout_id.as_str();
    let (attempts, diamonds) = (payout.attempts, payout.diamonds);
    match payout.status {
        PayoutStatus::Paid => tracing::info!(
            payout_id,
            attempts,
            diamonds,
            transfer_id = payout.transfer_id.as_deref(),
            "payout paid"
        ),
        // The template's metric filter counts these lines by their message: keep the two alike.
        PayoutStatus::Failed => tracing::error!(
            payout_id,
            attempts,
            diamonds,
            error = payout.last_error.as_deref(),
            "payout failed; diamonds returned"
        ),
        PayoutStatus::Pending => tracing::warn!(
            payout_id,
            attempts,
            error = payout.last_error.as_deref(),
            "payout not sent yet; will retry"
        ),
    }
}
