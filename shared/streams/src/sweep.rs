//! The consumers' scheduled sweeps: besides its stream, each consumer that owes something
//! (earnings: gift entries to count; refund-dispatch and payout-dispatch: instructions to send)
//! is invoked on a schedule, finds in the outstanding index what it still owes past
//! [`coins_ledger::SWEEP_AFTER`] (a stream record dead-lettered, or older than the stream's
//! 24 hours), and acts on it again, idempotently as on the stream. What stays outstanding past
//! [`coins_ledger::STUCK_AFTER`] is logged at error level as [`STUCK`], which the template's
//! alarms count; `coinctl audit` lists it too.

use coins_ledger::OutstandingItem;
use serde_json::Value;

/// The message of the error line a stuck item logs: the alarms' metric filters match it.
pub const STUCK: &str = "outstanding item stuck";

/// Whether `payload` is an EventBridge scheduled event (a sweep) rather than a stream batch.
pub fn is_scheduled_event(payload: &Value) -> bool {
    payload.get("source").and_then(Value::as_str) == Some("aws.events")
        && payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// A scheduled event as EventBridge delivers it (the local server and tests invoke the sweeps
/// with it).
pub fn scheduled_event() -> Value {
    serde_json::json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})
}

/// Logs what a sweep found: each item at info level, or at error level once it is stuck.
pub fn log_found(items: &[OutstandingItem]) {
    for item in items {
        if item.is_stuck() {
            tracing::error!(kind = item.kind.as_str(), id = %item.id, since = %item.since,
                age_seconds = item.age_seconds, runbook = "coinctl audit", "{STUCK}");
        } else {
            tracing::info!(kind = item.kind.as_str(), id = %item.id, since = %item.since,
                age_seconds = item.age_seconds, "outstanding item swept");
        }
    }
}
