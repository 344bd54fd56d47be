//! `refund-expiry`: closes purchase lots whose refund window has ended, so their coins join the
//! non-refundable balance.
//!
//! Two triggers share this function. DynamoDB Streams deliver the TTL deletion of a lot's marker
//! item (only `REMOVE`s by the DynamoDB service itself count); each is closed and a failed record
//! is reported by its sequence number, so Lambda retries from it (partial batch failure). Because
//! TTL deletion can lag by days, an EventBridge schedule also sweeps every lot already due.
//!
//! Closing is idempotent and the rules decide refundability at request time anyway, so a late or
//! repeated closure is harmless. Failures are sorted: a retryable one (throttling, contention) is
//! reported so the runtime retries it; a non-retryable one (a corrupt item) is logged at error
//! level and left to the sweep, because retrying it would only hold up the stream shard.

use aws_lambda_events::event::dynamodb::{Event as DynamoDbEvent, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::{CloseOutcome, LedgerError, LotMarker, Store, SweepReport};
use coins_runtime::Deps;
use coins_streams::{Failures, UnreportableRecord};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde::Serialize;
use serde_json::Value;

/// The event source mapping's filter: TTL removals of lot markers only (the template's
/// `FilterCriteria` must say the same; the local server applies this one).
pub const STREAM_FILTER: &str = r#"{"eventName": ["REMOVE"], "userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}, "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "LOTEXP#"}]}}}}"#;

/// Lots one sweep closes at most; the function's 120 s timeout leaves room for this many.
pub const SWEEP_MAX_LOTS: u32 = 5_000;

/// The service principal that performs TTL deletions.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// Why an invocation failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ExpiryError {
    /// Neither a stream batch nor a scheduled event: a wiring mistake, retrying cannot help.
    #[error("unrecognized event: neither a DynamoDB stream batch nor a scheduled event")]
    UnrecognizedEvent,
    /// The stream batch did not parse.
    #[error("malformed DynamoDB stream batch: {0}")]
    MalformedBatch(#[from] serde_json::Error),
    #[error(transparent)]
    UnreportableRecord(#[from] UnreportableRecord),
    /// The sweep could not run (retryable or not, per the ledger error).
    #[error("sweep failed: {0}")]
    Sweep(#[source] LedgerError),
    /// Some due lots failed to close; the sweep is idempotent, so the scheduler's retry runs it
    /// again.
    #[error("{failed} due lots failed to close")]
    SweepIncomplete { failed: u32 },
}

impl ExpiryError {
    /// Will running the same invocation again help?
    pub fn is_retryable(&self) -> bool {
        match self {
            ExpiryError::UnrecognizedEvent | ExpiryError::MalformedBatch(_) => false,
            ExpiryError::UnreportableRecord(_) | ExpiryError::SweepIncomplete { .. } => true,
            ExpiryError::Sweep(error) => error.is_retryable(),
        }
    }
}

/// The runtime records the error type: retryable and non-retryable failures are told apart in
/// the logs and metrics by its prefix.
impl From<ExpiryError> for Diagnostic {
    fn from(error: ExpiryError) -> Diagnostic {
        coins_streams::diagnostic("RefundExpiry", error.is_retryable(), error.to_string())
    }
}

/// The sweep's answer (EventBridge ignores it; it is for the logs and `cargo lambda invoke`).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct SweepSummary {
    pub closed: u32,
    pub not_due: u32,
    pub nothing_open: u32,
    pub failed: u32,
}

impl From<SweepReport> for SweepSummary {
    fn from(report: SweepReport) -> Self {
        SweepSummary {
            closed: report.closed,
            not_due: report.not_due,
            nothing_open: report.nothing_open,
            failed: report.failed,
        }
    }
}

/// Entry point: dispatches on the shape of the event.
pub async fn handle<S: Store>(
    deps: &Deps<S>,
    event: LambdaEvent<Value>,
) -> Result<Value, ExpiryError> {
    let payload = event.payload;
    if payload.get("Records").is_some() {
        let batch = coins_streams::parse(payload)?;
        let response = process_stream(deps, batch).await?;
        Ok(serde_json::to_value(response)?)
    } else if coins_streams::sweep::is_scheduled_event(&payload) {
        let summary = sweep(deps).await?;
        Ok(serde_json::to_value(summary)?)
    } else {
        tracing::error!("unrecognized event");
        Err(ExpiryError::UnrecognizedEvent)
    }
}

/// What one stream record asks of us.
enum RecordAction {
    Close(LotMarker),
    /// Not a TTL deletion of a lot marker (the stream carries every change of the table).
    Ignore(&'static str),
}

fn classify(record: &EventRecord) -> RecordAction {
    if record.event_name != "REMOVE" {
        return RecordAction::Ignore("not a removal");
    }
    let by_ttl = record.user_identity.as_ref().is_some_and(|identity| {
        identity.type_ == "Service" && identity.principal_id == TTL_PRINCIPAL
    });
    if !by_ttl {
        // Only TTL deletions count: a delete by anyone else (an operator cleaning up) is not
        // the end of a window.
        return RecordAction::Ignore("removed by the application, not by TTL");
    }
    match coins_streams::key_of(record) {
        Some(key) => match LotMarker::from_keys(&key.pk, &key.sk) {
            Ok(marker) => RecordAction::Close(marker),
            Err(_) => RecordAction::Ignore("not a lot marker"),
        },
        None => RecordAction::Ignore("no string keys"),
    }
}

/// Closes the lot of every TTL-deleted marker; reports the records to retry.
///
/// The ledger never deletes a marker: the marker of a lot refunded, spent to zero or already
/// closed by the sweep stays until TTL removes it, and that removal arrives here as a no-op,
/// counted as `nothing_open` in the batch's summary line. That costs a share of one invocation
/// per batch instead of 2 more write units in every refund and closure transaction.
pub async fn process_stream<S: Store>(
    deps: &Deps<S>,
    batch: DynamoDbEvent,
) -> Result<DynamoDbEventResponse, ExpiryError> {
    let mut failures = Failures::default();
    let mut tally = SweepReport::default();
    for record in &batch.records {
        let marker = match classify(record) {
            RecordAction::Close(marker) => marker,
            RecordAction::Ignore(why) => {
                tracing::debug!(event_id = %record.event_id, why, "record ignored");
                continue;
            }
        };
        let outcome = deps
            .ledger
            .close_lot(&marker.user_id, &marker.purchase_id, deps.now())
            .await;
        match outcome {
            Ok(CloseOutcome::Closed {
                non_refundable_coins,
            }) => {
                tally.closed += 1;
                tracing::info!(purchase_id = %marker.purchase_id, non_refundable_coins, "lot closed");
            }
            Ok(CloseOutcome::NotDue { refundable_until }) => {
                // TTL fired before the deadline on our clock (skew): the sweep closes it later.
                tally.not_due += 1;
                tracing::warn!(purchase_id = %marker.purchase_id, %refundable_until, "lot not due yet");
            }
            Ok(CloseOutcome::NothingOpen) => {
                tally.nothing_open += 1;
                tracing::debug!(purchase_id = %marker.purchase_id, "no open lot (already closed, refunded or spent)");
            }
            Err(error) if error.is_retryable() => {
                tally.failed += 1;
                tracing::warn!(purchase_id = %marker.purchase_id, %error, "lot closure failed; will retry");
                failures.retry(record)?;
            }
            Err(error) => {
                tally.failed += 1;
                tracing::error!(
                    purchase_id = %marker.purchase_id,
                    %error,
                    "lot closure failed and cannot succeed on retry; left to the sweep"
                );
            }
        }
    }
    tracing::info!(
        records = batch.records.len(),
        closed = tally.closed,
        not_due = tally.not_due,
        nothing_open = tally.nothing_open,
        failed = tally.failed,
        "stream batch done"
    );
    Ok(failures.into_response())
}

/// Closes every lot whose deadline has passed (up to [`SWEEP_MAX_LOTS`]).
pub async fn sweep<S: Store>(deps: &Deps<S>) -> Result<SweepSummary, ExpiryError> {
    let report = deps
        .ledger
        .close_due_lots(deps.now(), SWEEP_MAX_LOTS)
        .await
        .map_err(ExpiryError::Sweep)?;
    tracing::info!(
        closed = report.closed,
        not_due = report.not_due,
        nothing_open = report.nothing_open,
        failed = report.failed,
        "sweep done"
    );
    if report.failed > 0 {
        return Err(ExpiryError::SweepIncomplete {
            failed: report.failed,
        });
    }
    Ok(report.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use coins_ids::{PurchaseId, UserId};
    use coins_ledger::store::{Key, Query, StoreError, Transaction};
    use coins_ledger::table::Record;
    use coins_ledger::{Ledger, LedgerConfig, MemoryStore};
    use coins_runtime::TestClock;
    use coins_testkit::{T0, at, buy_package, memory_deps, stream_event, zone};
    use lambda_runtime::Context;

    /// Just after alice's T0 purchase's window ended (start of 16 March, Tokyo).
    const AFTER_WINDOW: &str = "2026-03-15T15:00:00Z";

    fn fixture(name: &str, purchase: &PurchaseId) -> Value {
        let text = stream_event(name).to_string();
        serde_json::from_str(&text.replace("pur_0000000000000000000000000", purchase.as_str()))
            .unwrap()
    }

    fn invoke(payload: Value) -> LambdaEvent<Value> {
        LambdaEvent::new(payload, Context::default())
    }

    async fn lot_open(deps: &Deps<impl Store>) -> bool {
        let alice = UserId::new("alice").unwrap();
        !deps
            .ledger
            .wallet(&alice, &zone("Asia/Tokyo"), deps.now())
            .await
            .unwrap()
            .lots
            .is_empty()
    }

    #[tokio::test]
    async fn a_ttl_removal_of_a_marker_closes_its_lot() {
        let (deps, clock) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        clock.set(at(AFTER_WINDOW)).unwrap();
        let answer = handle(&deps, invoke(fixture("ttl-remove", &purchase)))
            .await
            .unwrap();
        assert_eq!(answer, serde_json::json!({"batchItemFailures": []}));
        assert!(!lot_open(&deps).await);
        // A redelivery finds nothing open and still succeeds.
        let again = handle(&deps, invoke(fixture("ttl-remove", &purchase)))
            .await
            .unwrap();
        assert_eq!(again["batchItemFailures"], serde_json::json!([]));
    }

    #[tokio::test]
    async fn removals_by_the_application_and_other_changes_are_ignored() {
        let (deps, clock) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        clock.set(at(AFTER_WINDOW)).unwrap();
        let answer = handle(&deps, invoke(fixture("user-remove-and-modify", &purchase)))
            .await
            .unwrap();
        assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
        assert!(lot_open(&deps).await, "only TTL deletions close lots");
    }

    #[tokio::test]
    async fn a_marker_deleted_before_the_deadline_leaves_the_lot_open() {
        let (deps, _) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        handle(&deps, invoke(fixture("ttl-remove", &purchase)))
            .await
            .unwrap();
        assert!(lot_open(&deps).await);
    }

    #[tokio::test]
    async fn the_scheduled_sweep_closes_every_due_lot() {
        let (deps, clock) = memory_deps(T0);
        let purchase = buy_package(&deps, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        buy_package(&deps, "bob", "US", "America/Chicago", "coins_70").await;
        clock.set(at("2026-03-20T00:00:00Z")).unwrap();
        let answer = handle(&deps, invoke(fixture("scheduled-sweep", &purchase)))
            .await
            .unwrap();
        assert_eq!(answer["closed"], 2, "{answer}");
        assert!(!lot_open(&deps).await);
        let again = handle(&deps, invoke(fixture("scheduled-sweep", &purchase)))
            .await
            .unwrap();
        assert_eq!(again["closed"], 0);
    }

    #[tokio::test]
    async fn an_unknown_event_is_a_non_retryable_failure() {
        let (deps, _) = memory_deps(T0);
        let error = handle(&deps, invoke(serde_json::json!({"hello": "world"})))
            .await
            .unwrap_err();
        assert!(!error.is_retryable());
        assert_eq!(
            Diagnostic::from(error).error_type,
            "NonRetryable.RefundExpiry"
        );
    }

    /// A memory store whose writes can be made to fail as DynamoDB throttling does.
    #[derive(Clone, Default)]
    struct Throttled {
        inner: MemoryStore,
        throttle: Arc<AtomicBool>,
    }

    impl Store for Throttled {
        async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
            self.inner.get(key).await
        }
        async fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
            self.inner.query(query).await
        }
        async fn query_keys(&self, query: &Query) -> Result<Vec<Key>, StoreError> {
            self.inner.query_keys(query).await
        }
        async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
            if self.throttle.load(Ordering::SeqCst) {
                return Err(StoreError::Transient(
                    "ProvisionedThroughputExceeded".into(),
                ));
            }
            self.inner.commit(transaction).await
        }
        async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
            self.inner.scan_all().await
        }
    }

    #[tokio::test]
    async fn a_throttled_closure_is_reported_by_sequence_number_for_retry() {
        let (memory, clock) = memory_deps(T0);
        let purchase = buy_package(&memory, "alice", "JP", "Asia/Tokyo", "coins_700").await;
        let store = Throttled {
            inner: memory.ledger.store().clone(),
            throttle: Arc::new(AtomicBool::new(true)),
        };
        let config = LedgerConfig {
            max_attempts: 2,
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(2),
            ..LedgerConfig::default()
        };
        let test_clock: TestClock = clock.clone();
        let deps = Deps::new(
            Ledger::with_config(store.clone(), config),
            Arc::new(test_clock),
        );
        clock.set(at(AFTER_WINDOW)).unwrap();
        let answer = handle(&deps, invoke(fixture("ttl-remove", &purchase)))
            .await
            .unwrap();
        assert_eq!(
            answer["batchItemFailures"],
            serde_json::json!([{"itemIdentifier": "4421584500000000017450439091"}])
        );
        assert!(lot_open(&deps).await);
        // The retry, once the throttling passes, closes it.
        store.throttle.store(false, Ordering::SeqCst);
        let answer = handle(&deps, invoke(fixture("ttl-remove", &purchase)))
            .await
            .unwrap();
        assert_eq!(answer["batchItemFailures"], serde_json::json!([]));
        assert!(!lot_open(&deps).await);
    }
}
