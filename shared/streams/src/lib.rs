//! DynamoDB stream batches as the event functions see them: a record's item key and new image
//! read back as the ledger's types, the partial batch failure report, and records made from the
//! in-memory store's changes (for the local server, which plays Lambda, and for tests).
//!
//! A function that cannot finish a record *yet* reports it by its sequence number; Lambda then
//! retries the shard from the first reported record (the later ones come again too, so every
//! consumer is idempotent), and after the mapping's retries sends the batch to its dead-letter
//! queue. A record that can never succeed (a corrupt item) is logged, not reported: retrying it
//! would only hold the shard up.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use coins_ledger::dynamo::{from_item, to_item};
use coins_ledger::store::{Key, StoreError};
use coins_ledger::table::Record;
use coins_ledger::{Change, ChangeKind};
use lambda_runtime::Diagnostic;
use serde_json::{Value, json};

pub mod dispatch;
pub mod sweep;

/// One stream batch.
pub type Batch = Event;

/// Reads a stream batch from an invocation's payload.
pub fn parse(payload: Value) -> Result<Batch, serde_json::Error> {
    serde_json::from_value(payload)
}

/// The key of the item a record changed, if it has string `pk` and `sk`.
pub fn key_of(record: &EventRecord) -> Option<Key> {
    let key = |name: &str| match record.change.keys.get(name) {
        Some(serde_dynamo::AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    };
    Some(Key::new(key("pk")?, key("sk")?))
}

/// The item as the change left it (`None` for a removal).
pub fn new_record(record: &EventRecord) -> Option<Result<Record, StoreError>> {
    (!record.change.new_image.is_empty()).then(|| from_item(record.change.new_image.clone()))
}

/// Why a consumer's invocation failed as a whole (Lambda then retries the whole batch).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("malformed DynamoDB stream batch: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error(transparent)]
    Unreportable(#[from] UnreportableRecord),
    /// A scheduled sweep could not read what is outstanding: the scheduler retries it, then
    /// its dead-letter queue alarms.
    #[error("sweep failed: {0}")]
    Sweep(#[from] coins_ledger::LedgerError),
}

impl From<BatchError> for Diagnostic {
    fn from(error: BatchError) -> Diagnostic {
        let retryable = match &error {
            BatchError::Malformed(_) => false,
            BatchError::Unreportable(_) => true,
            BatchError::Sweep(error) => error.is_retryable(),
        };
        diagnostic("StreamBatch", retryable, error.to_string())
    }
}

/// A record to retry that carries no sequence number to report it by: the whole batch must fail
/// so that nothing is skipped.
#[derive(Debug, thiserror::Error)]
#[error("record {event_id} must be retried and has no sequence number to report")]
pub struct UnreportableRecord {
    pub event_id: String,
}

/// The records of a batch to retry.
#[derive(Default)]
pub struct Failures {
    response: DynamoDbEventResponse,
}

impl Failures {
    /// Reports `record` for a retry.
    pub fn retry(&mut self, record: &EventRecord) -> Result<(), UnreportableRecord> {
        let Some(sequence_number) = record.change.sequence_number.clone() else {
            return Err(UnreportableRecord {
                event_id: record.event_id.clone(),
            });
        };
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        self.response.batch_item_failures.push(failure);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.response.batch_item_failures.len()
    }

    pub fn is_empty(&self) -> bool {
        self.response.batch_item_failures.is_empty()
    }

    /// The function's answer to Lambda.
    pub fn into_response(self) -> DynamoDbEventResponse {
        self.response
    }
}

/// The runtime records an invocation error's type: `Retryable.<Function>` or
/// `NonRetryable.<Function>`, so logs and metrics tell them apart.
pub fn diagnostic(function: &str, retryable: bool, message: String) -> Diagnostic {
    let kind = if retryable {
        "Retryable"
    } else {
        "NonRetryable"
    };
    Diagnostic {
        error_type: format!("{kind}.{function}"),
        error_message: message,
    }
}

/// A change of the in-memory store as Lambda would deliver it.
pub fn change_record(change: &Change) -> Result<Value, String> {
    let image = |record: &Option<Record>| -> Result<Value, String> {
        match record {
            Some(record) => {
                let item = to_item(record).map_err(|error| error.to_string())?;
                serde_json::to_value(item).map_err(|error| error.to_string())
            }
            None => Ok(Value::Null),
        }
    };
    let name = match change.kind {
        ChangeKind::Insert => "INSERT",
        ChangeKind::Modify => "MODIFY",
        ChangeKind::Remove => "REMOVE",
    };
    let mut dynamodb = json!({
        "Keys": {"pk": {"S": change.key.pk}, "sk": {"S": change.key.sk}},
        "SequenceNumber": format!("{:021}", change.sequence),
        "SizeBytes": 1,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    for (field, record) in [("NewImage", &change.new), ("OldImage", &change.old)] {
        if record.is_some() {
            dynamodb[field] = image(record)?;
        }
    }
    Ok(lambda_record(
        change.sequence.to_string(),
        name,
        dynamodb,
        None,
    ))
}

/// A record in Lambda's JSON form; `principal` is the service that made the change (TTL).
pub fn lambda_record(
    event_id: String,
    name: &str,
    dynamodb: Value,
    principal: Option<&str>,
) -> Value {
    let mut record = json!({
        "eventID": event_id,
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "local",
        "eventSourceARN": "arn:aws:dynamodb:local:000000000000:table/local/stream/local",
        "dynamodb": dynamodb,
    });
    if let Some(principal) = principal {
        record["userIdentity"] = json!({"type": "Service", "principalId": principal});
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as Lambda delivers it, with this `dynamodb` part.
    fn record(dynamodb: Value) -> EventRecord {
        serde_json::from_value(serde_json::json!({
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1",
            "eventSource": "aws:dynamodb", "awsRegion": "local",
            "eventSourceARN": "arn:aws:dynamodb:local:000000000000:table/t/stream/s",
            "dynamodb": dynamodb,
        }))
        .unwrap()
    }

    #[test]
    fn a_record_names_its_key_and_a_failure_its_sequence_number() {
        let with_keys = record(serde_json::json!({
            "Keys": {"pk": {"S": "USER#a"}, "sk": {"S": "WALLET"}},
            "SequenceNumber": "42", "SizeBytes": 30, "StreamViewType": "NEW_AND_OLD_IMAGES"
        }));
        assert_eq!(key_of(&with_keys), Some(Key::new("USER#a", "WALLET")));
        assert!(new_record(&with_keys).is_none());
        let mut failures = Failures::default();
        failures.retry(&with_keys).unwrap();
        let response = serde_json::to_value(failures.into_response()).unwrap();
        assert_eq!(
            response,
            serde_json::json!({"batchItemFailures": [{"itemIdentifier": "42"}]})
        );
        let unnumbered = record(serde_json::json!({"SizeBytes": 1, "StreamViewType": "KEYS_ONLY"}));
        assert_eq!(key_of(&unnumbered), None);
        assert!(Failures::default().retry(&unnumbered).is_err());
    }
}
