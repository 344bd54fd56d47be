//! What the outbox dispatchers (`refund-dispatch`, `payout-dispatch`) share: each record of a
//! batch names an outbox item by its key; the dispatcher claims it, sends it, and records the
//! outcome. An item that is not finished yet (the provider down, another dispatcher holding it,
//! the table busy) is reported for a retry; one that can never be acted on is logged and passed.
//! On a schedule, each dispatcher also sweeps what it still owes ([`stream_or_sweep`]).

use std::future::Future;

use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::store::{Key, Store};
use coins_ledger::table::Outstanding;
use coins_ledger::{Ledger, LedgerError, SWEEP_AFTER, SWEEP_SENDS_PER_PARTITION};
use jiff::Timestamp;
use serde_json::Value;

use crate::{BatchError, Failures, sweep};

/// What became of one outbox item in this delivery; `S` is its final status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dispatched<S> {
    /// It ended (sent, or refused for good).
    Finished(S),
    /// Still pending: the delivery must be retried.
    Retry,
    /// Not an item we can act on (logged at error level; retrying cannot help).
    Skipped,
}

/// Dispatches the item of each record of the batch in `payload`, in order, and reports the
/// records whose items must be retried.
pub async fn each_record<S, F, Fut>(
    payload: Value,
    mut dispatch: F,
) -> Result<DynamoDbEventResponse, BatchError>
where
    F: FnMut(Key) -> Fut,
    Fut: Future<Output = Dispatched<S>>,
{
    let batch = crate::parse(payload)?;
    let mut failures = Failures::default();
    for record in &batch.records {
        let Some(key) = crate::key_of(record) else {
            tracing::error!(event_id = %record.event_id, "stream record without string keys");
            continue;
        };
        if matches!(dispatch(key).await, Dispatched::Retry) {
            failures.retry(record)?;
        }
    }
    Ok(failures.into_response())
}

/// A dispatcher's invocation: a stream batch ([`each_record`]), or its scheduled sweep, which
/// dispatches again every item of `kind` still outstanding past [`SWEEP_AFTER`], oldest first
/// (a claim decides, as on the stream, whether it is ours to send now).
pub async fn stream_or_sweep<S, St, F, Fut>(
    payload: Value,
    ledger: &Ledger<S>,
    kind: Outstanding,
    now: Timestamp,
    mut dispatch: F,
) -> Result<DynamoDbEventResponse, BatchError>
where
    S: Store,
    F: FnMut(Key) -> Fut,
    Fut: Future<Output = Dispatched<St>>,
{
    if !sweep::is_scheduled_event(&payload) {
        return each_record(payload, dispatch).await;
    }
    let found = ledger
        .outstanding(kind, now, SWEEP_AFTER, Some(SWEEP_SENDS_PER_PARTITION))
        .await?;
    sweep::log_found(&found);
    let mut still_pending = 0;
    for item in &found {
        if matches!(dispatch(item.key.clone()).await, Dispatched::Retry) {
            still_pending += 1;
        }
    }
    tracing::info!(
        kind = kind.as_str(),
        found = found.len(),
        still_pending,
        "sweep done"
    );
    Ok(DynamoDbEventResponse::default())
}

/// What a ledger error means to a dispatcher of `what` (e.g. "refund"): a busy table passes, so
/// the item is retried; anything else will not, so it is logged and skipped.
pub fn ledger_error<S>(what: &str, key: &Key, error: &LedgerError) -> Dispatched<S> {
    if error.is_retryable() {
        tracing::warn!(what, ?key, %error, "dispatch: the table is busy; will retry");
        Dispatched::Retry
    } else {
        tracing::error!(what, ?key, %error, "dispatch: cannot act on this item");
        Dispatched::Skipped
    }
}

#[cfg(test)]
mod tests {
    use lambda_runtime::Diagnostic;
    use serde_json::json;

    use super::*;
    use crate::lambda_record;

    fn insert(sequence: &str, keys: Value) -> Value {
        let dynamodb = json!({"Keys": keys, "SequenceNumber": sequence, "SizeBytes": 1,
            "StreamViewType": "NEW_AND_OLD_IMAGES"});
        lambda_record(sequence.to_owned(), "INSERT", dynamodb, None)
    }

    fn keys(pk: &str) -> Value {
        json!({"pk": {"S": pk}, "sk": {"S": "REFUND#r"}})
    }

    #[tokio::test]
    async fn each_item_is_dispatched_in_order_and_only_those_to_retry_are_reported() {
        let batch = json!({"Records": [
            insert("1", keys("PURCHASE#a")),
            insert("2", json!({"pk": {"N": "7"}})),
            insert("3", keys("PURCHASE#b")),
            insert("4", keys("PURCHASE#c")),
        ]});
        let mut seen = Vec::new();
        let response = each_record(batch, |key| {
            seen.push(key.pk.clone());
            let outcome = match key.pk.as_str() {
                "PURCHASE#b" => Dispatched::Retry,
                "PURCHASE#c" => Dispatched::Skipped,
                _ => Dispatched::Finished("succeeded"),
            };
            async move { outcome }
        })
        .await
        .unwrap();
        assert_eq!(seen, ["PURCHASE#a", "PURCHASE#b", "PURCHASE#c"]);
        let reported: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.as_deref())
            .collect();
        assert_eq!(reported, [Some("3")]);
    }

    #[tokio::test]
    async fn a_malformed_batch_fails_the_invocation_for_good() {
        let error = each_record(json!({"Records": "nope"}), |_| async {
            Dispatched::<()>::Retry
        })
        .await
        .unwrap_err();
        assert_eq!(
            Diagnostic::from(error).error_type,
            "NonRetryable.StreamBatch"
        );
    }

    #[test]
    fn a_busy_table_is_retried_and_anything_else_skipped() {
        let key = Key::new("PURCHASE#a", "REFUND#r");
        let busy: Dispatched<()> = ledger_error("refund", &key, &LedgerError::Contention);
        assert_eq!(busy, Dispatched::Retry);
        let gone: Dispatched<()> = ledger_error("refund", &key, &LedgerError::NotFound);
        assert_eq!(gone, Dispatched::Skipped);
    }
}
