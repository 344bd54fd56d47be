//! `refund-dispatch`: sends the outbox's refund instructions to Stripe.
//!
//! The table's stream delivers each instruction's insert (the filter is [`STREAM_FILTER`]). For
//! each, the dispatcher claims the instruction (a conditional write: two dispatchers never send
//! one at once), asks Stripe for a refund it may already have made for it (found by the
//! instruction id in its metadata: a lost response or a crashed dispatcher), else creates one
//! with the instruction id as Stripe's `Idempotency-Key`, and records the outcome: `succeeded`
//! with Stripe's refund id, or `failed` only when Stripe refuses it explicitly and for good (a
//! code of [`coins_payments::REFUND_REFUSALS`]). Any other answer never fails it: Stripe down or
//! timing out, a 401/403 (a rolled key), an unlisted 4xx or a 2xx we cannot read may all hide a
//! refund Stripe made, so it stays `pending` until Stripe says; the ones waiting will not mend
//! are logged at error level ([`coins_payments::AMBIGUOUS_ANSWER`]) for an alarm. Within one delivery a failed send is retried
//! with backoff ([`coins_payments::BACKOFF`]); a record still pending after that is reported as
//! a partial batch failure, so Lambda redelivers it, and after the mapping's own retries it goes
//! to the dead-letter queue, whose alarm calls an operator.

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::store::Key;
use coins_ledger::table::Outstanding;
use coins_ledger::{Claim, RefundRecord, RefundStatus, Sent, Store};
use coins_payments::{Attempted, BACKOFF, Provider, RefundOrder, with_backoff};
use coins_runtime::Deps;
use coins_streams::BatchError;
use coins_streams::dispatch::{ledger_error, stream_or_sweep};
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// The event source mapping's filter: inserts of refund instructions only (the template's
/// `FilterCriteria` must say the same; the local server applies this one).
pub const STREAM_FILTER: &str =
    r#"{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"item_type": {"S": ["refund"]}}}}"#;

/// What became of one instruction in this delivery.
pub type Dispatched = coins_streams::dispatch::Dispatched<RefundStatus>;

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
        Outstanding::Refund,
        now,
        |key| async move { dispatch(deps, provider, &key).await },
    )
    .await
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
        Err(error) => return ledger_error("refund", key, &error),
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
        Err(error) => ledger_error("refund", key, &error),
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
        // Logged at error level by `with_backoff` for the alarm; pending all the same.
        Attempted::Retry(error) | Attempted::Ambiguous(error) => Sent::Retry { error },
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
