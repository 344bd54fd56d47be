//! `refund-dispatch`: sends the outbox's refund instructions to Stripe.
//!
//! The table's stream delivers each instruction's insert (the filter is [`STREAM_FILTER`]). For
//! each, the dispatcher claims the instruction (a conditional write: two dispatchers never send
//! one at once), asks Stripe for a refund it may already have made for it (found by the
//! instruction id in its metadata: a lost response or a crashed dispatcher), else creates one
//! with the instruction id as Stripe's `Idempotency-Key`, and records the outcome: `succeeded`
//! with Stripe's refund id, or `failed` when Stripe refuses it. A send with no answer to act on
//! (Stripe down or timing out) never fails it: Stripe may have made the refund and lost the
//! answer, so it stays `pending` until Stripe says. Within one delivery a failed send is retried
//! with backoff ([`BACKOFF`]); a record still pending after that is reported as a partial batch
//! failure, so Lambda redelivers it, and after the mapping's own retries it goes to the
//! dead-letter queue, whose alarm calls an operator.

use std::time::Duration;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::store::Key;
use coins_ledger::{Claim, LedgerError, RefundRecord, RefundStatus, Sent, Store};
use coins_payments::{Attempted, Provider, RefundOrder, with_backoff};
use coins_runtime::Deps;
use coins_streams::{Failures, UnreportableRecord};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;

/// The event source mapping's filter: inserts of refund instructions only (the template's
/// `FilterCriteria` must say the same; the local server applies this one).
pub const STREAM_FILTER: &str =
    r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["refund"]}}}}"#;

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
        coins_streams::diagnostic("RefundDispatch", retryable, error.to_string())
    }
}

/// What became of one instruction in this delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// It ended: succeeded, or failed for good.
    Finished(RefundStatus),
    /// Still pending (Stripe unavailable, another dispatcher holding it, the table busy): the
    /// delivery must be retried.
    Retry,
    /// Not an instruction we can act on (logged at error level; retrying cannot help).
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

/// Sends the instruction at `key`, if it is ours to send now.
pub async fn dispatch<S: Store>(deps: &Deps<S>, provider: &Provider, key: &Key) -> Dispatched {
    let claim = deps.ledger.claim_refund(key, deps.now()).await;
    let instruction = match claim {
        Ok(Claim::Send(instruction)) => instruction,
        Ok(Claim::Finished(status)) => return Dispatched::Finished(status),
        Ok(Claim::Held { until }) => {
            tracing::info!(?key, %until, "refund held by another dispatcher");
            return Dispatched::Retry;
        }
        Err(error) => return failed(key, &error),
    };
    let sent = send(provider, &instruction).await;
    match deps
        .ledger
        .finish_refund(&instruction, &sent, deps.now())
        .await
    {
        Ok(finished) => {
            log(&finished);
            match finished.status {
                RefundStatus::Pending => Dispatched::Retry,
                status => Dispatched::Finished(status),
            }
        }
        // Stripe has the refund; the ledger will hear of it again on the retry, which finds it
        // by its metadata.
        Err(error) => failed(key, &error),
    }
}

/// Asks Stripe for the refund, retrying what may pass with backoff.
async fn send(provider: &Provider, instruction: &RefundRecord) -> Sent {
    let order = RefundOrder {
        refund_id: &instruction.refund_id,
        payment: &instruction.payment_intent_id,
        amount_minor: instruction.amount_minor,
        purchase_id: instruction.purchase_id.as_ref(),
    };
    match with_backoff(&BACKOFF, instruction.refund_id.as_str(), || {
        provider.refund(&order)
    })
    .await
    {
        Attempted::Done(provider_refund_id) => Sent::Refunded { provider_refund_id },
        Attempted::Refused(error) => Sent::Refused { error },
        Attempted::Retry(error) => Sent::Retry { error },
    }
}

fn failed(key: &Key, error: &LedgerError) -> Dispatched {
    if error.is_retryable() {
        tracing::warn!(?key, %error, "refund dispatch: the table is busy; will retry");
        Dispatched::Retry
    } else {
        tracing::error!(?key, %error, "refund dispatch: cannot act on this instruction");
        Dispatched::Skipped
    }
}

fn log(instruction: &RefundRecord) {
    let refund_id = instruction.refund_id.as_str();
    let attempts = instruction.attempts;
    match instruction.status {
        RefundStatus::Succeeded => tracing::info!(
            refund_id,
            attempts,
            provider_refund_id = instruction.provider_refund_id.as_deref(),
            "refund succeeded"
        ),
        // The template's metric filter counts these lines by their message: keep the two alike.
        RefundStatus::Failed => tracing::error!(
            refund_id,
            attempts,
            error = instruction.last_error.as_deref(),
            "refund failed"
        ),
        RefundStatus::Pending => tracing::warn!(
            refund_id,
            attempts,
            error = instruction.last_error.as_deref(),
            "refund not sent yet; will retry"
        ),
    }
}
