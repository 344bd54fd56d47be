//! `payout-dispatch`: sends creators' payouts from the outbox to Stripe Connect.
//!
//! The table's stream delivers each payout's insert ([`STREAM_FILTER`]). For each, the
//! dispatcher claims the payout (a conditional write: two dispatchers never send one at once),
//! asks Stripe for a transfer it may already have made for it (found by its `transfer_group`,
//! the payout id: a lost response or a crashed dispatcher), else creates one with the payout id
//! as Stripe's `Idempotency-Key`, and records the outcome with the creator's earnings: `paid`
//! with Stripe's transfer id, or `failed` with the diamonds back in `available`, when Stripe
//! refuses it (a closed account). A send with no answer to act on (Stripe down or timing out)
//! never fails it: Stripe may have made the transfer and lost the answer, and returning the
//! diamonds then would pay them twice, so the payout stays `pending`, its diamonds in payout,
//! until Stripe says. A payout still pending after a delivery's retries is reported as a partial
//! batch failure, so Lambda redelivers it; after the mapping's retries it goes to the
//! dead-letter queue, whose alarm calls an operator.

use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::store::Key;
use coins_ledger::table::{PayoutRecord, PayoutStatus};
use coins_ledger::{LedgerError, PayoutClaim, Store, Transferred};
use coins_payments::{Attempted, Provider, TransferOrder, with_backoff};
use coins_runtime::Deps;
use coins_streams::{Failures, UnreportableRecord};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The event source mapping's filter: inserts of payouts only (the template's `FilterCriteria`
/// must say the same; the local server applies this one).
pub const STREAM_FILTER: &str =
    r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["payout"]}}}}"#;

/// Waits between the sends of one delivery: Stripe's blips are short.
pub const BACKOFF: [Duration; 2] = [Duration::from_millis(200), Duration::from_millis(800)];

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("malformed DynamoDB stream batch: {0}")]
    MalformedBatch(#[from] serde_json::Error),
    #[error(transparent)]
    UnreportableRecord(#[from] UnreportableRecord),
}

impl From<DispatchError> for Diagnostic {
    fn from(error: DispatchError) -> Diagnostic {
        let retryable = matches!(error, DispatchError::UnreportableRecord(_));
        coins_streams::diagnostic("PayoutDispatch", retryable, error.to_string())
    }
}

/// What became of one payout in this delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// It ended: paid, or failed with its diamonds returned.
    Finished(PayoutStatus),
    /// Still pending (Stripe unavailable, another dispatcher holding it, the table busy): the
    /// delivery must be retried.
    Retry,
    /// Not a payout we can act on (logged at error level; retrying cannot help).
    Skipped,
}

/// Entry point: one stream batch.
pub async fn handle<S: Store>(
    deps: &Deps<S>,
    provider: &Provider,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, DispatchError> {
    let batch = coins_streams::parse(event.payload)?;
    let mut failures = Failures::default();
    for record in &batch.records {
        let Some(key) = coins_streams::key_of(record) else {
            tracing::error!(event_id = %record.event_id, "stream record without string keys");
            continue;
        };
        if dispatch(deps, provider, &key).await == Dispatched::Retry {
            failures.retry(record)?;
        }
    }
    Ok(failures.into_response())
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
        Err(error) => return failed(key, &error),
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
        Attempted::Retry(error) => Transferred::Retry { error },
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
        Err(error) => failed(key, &error),
    }
}

fn failed(key: &Key, error: &LedgerError) -> Dispatched {
    if error.is_retryable() {
        tracing::warn!(?key, %error, "payout dispatch: the table is busy; will retry");
        Dispatched::Retry
    } else {
        tracing::error!(?key, %error, "payout dispatch: cannot act on this payout");
        Dispatched::Skipped
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
