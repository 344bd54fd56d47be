//! The table's stream inside the local server: the event-driven functions run in process, fed
//! from the in-memory store's change feed or from DynamoDB Local's Streams API, each record in
//! the JSON Lambda would send, filtered by the function's own filter, delivered in batches, and
//! redelivered with backoff when the function reports it as a partial batch failure (after
//! [`MAX_DELIVERIES`] a record is dropped with an error, where Lambda would send it to the
//! dead-letter queue).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{Record as StreamRecord, ShardIteratorType};
use coins_ledger::{MemoryStore, Store};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::{App, Function};

/// Deliveries of one record before it is given up on (Lambda's `MaximumRetryAttempts` + 1).
pub const MAX_DELIVERIES: u32 = 6;

/// How often an idle feed is read again.
const POLL: Duration = Duration::from_millis(50);

/// Where the stream's records come from.
pub enum Feed {
    /// The in-memory store's change feed, from this sequence number on.
    Memory { store: MemoryStore, after: u64 },
    /// DynamoDB Local's (or DynamoDB's) stream of the table.
    Dynamo(DynamoFeed),
}

impl Feed {
    /// Every change of the in-memory store not yet read (`store` must keep a change feed).
    pub fn memory(store: &MemoryStore) -> Feed {
        Feed::Memory {
            store: store.clone(),
            after: 0,
        }
    }

    /// The next records, in Lambda's JSON form (empty when there are none yet).
    pub async fn next(&mut self) -> Result<Vec<Value>, String> {
        match self {
            Feed::Memory { store, after } => {
                let changes = store.changes_after(*after);
                if let Some(last) = changes.last() {
                    *after = last.sequence;
                    store.acknowledge(last.sequence);
                }
                changes.iter().map(coins_streams::change_record).collect()
            }
            Feed::Dynamo(feed) => feed.next().await,
        }
    }
}

/// A DynamoDB stream read with the Streams API, shard by shard, as Lambda's poller reads it: an
/// iterator that lapses or falls behind the shard's trim point is taken again after the last
/// record read (a record may then come twice; every consumer is idempotent).
pub struct DynamoFeed {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    /// Each open shard's next iterator.
    iterators: HashMap<String, String>,
    /// Each shard's last sequence number read.
    read_up_to: HashMap<String, String>,
    /// Shards read to their end.
    closed: Vec<String>,
    /// Whether shards seen from now on are read from their start (true once started: a shard
    /// that appears later holds only new records).
    from_start: bool,
}

impl DynamoFeed {
    /// The stream of `table`, from its latest records on.
    pub async fn open(aws: &SdkConfig, table: &str) -> Result<DynamoFeed, String> {
        let description = aws_sdk_dynamodb::Client::new(aws)
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|error| format!("describe {table}: {error}"))?;
        let stream_arn = description
            .table()
            .and_then(|table| table.latest_stream_arn())
            .ok_or_else(|| format!("table {table} has no stream"))?
            .to_owned();
        let mut feed = DynamoFeed {
            client: aws_sdk_dynamodbstreams::Client::new(aws),
            stream_arn,
            iterators: HashMap::new(),
            read_up_to: HashMap::new(),
            closed: Vec::new(),
            from_start: false,
        };
        feed.discover().await?;
        feed.from_start = true;
        Ok(feed)
    }

    /// Opens an iterator on every shard not read yet.
    async fn discover(&mut self) -> Result<(), String> {
        let stream = self
            .client
            .describe_stream()
            .stream_arn(&self.stream_arn)
            .send()
            .await
            .map_err(|error| format!("describe stream: {}", DisplayErrorContext(error)))?;
        let shards = stream
            .stream_description()
            .map(|description| description.shards().to_vec())
            .unwrap_or_default();
        for shard in shards {
            let Some(id) = shard.shard_id() else { continue };
            if self.iterators.contains_key(id) || self.closed.iter().any(|c| c == id) {
                continue;
            }
            self.open_shard(id).await?;
        }
        Ok(())
    }

    /// Takes an iterator on `shard`: after its last record read, else from its start (or from
    /// its end, for the shards open when the feed is).
    async fn open_shard(&mut self, shard: &str) -> Result<(), String> {
        let request = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(shard);
        let request = match self.read_up_to.get(shard) {
            Some(sequence) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(sequence),
            None if self.from_start => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
            None => request.shard_iterator_type(ShardIteratorType::Latest),
        };
        let iterator = request
            .send()
            .await
            .map_err(|error| format!("shard iterator: {}", DisplayErrorContext(error)))?;
        if let Some(iterator) = iterator.shard_iterator() {
            self.iterators.insert(shard.to_owned(), iterator.to_owned());
        }
        Ok(())
    }

    async fn next(&mut self) -> Result<Vec<Value>, String> {
        self.discover().await?;
        let mut records = Vec::new();
        for (shard, iterator) in self.iterators.clone() {
            let output = match self
                .client
                .get_records()
                .shard_iterator(iterator)
                .send()
                .await
            {
                Ok(output) => output,
                Err(error) => {
                    let lapsed = error.as_service_error().is_some_and(|error| {
                        error.is_expired_iterator_exception()
                            || error.is_trimmed_data_access_exception()
                    });
                    if !lapsed {
                        return Err(format!("get records: {}", DisplayErrorContext(error)));
                    }
                    self.iterators.remove(&shard);
                    self.open_shard(&shard).await?;
                    continue;
                }
            };
            for record in output.records() {
                records.push(stream_record(record)?);
                if let Some(sequence) = record
                    .dynamodb()
                    .and_then(|change| change.sequence_number())
                {
                    self.read_up_to.insert(shard.clone(), sequence.to_owned());
                }
            }
            match output.next_shard_iterator() {
                Some(next) => {
                    self.iterators.insert(shard, next.to_owned());
                }
                None => {
                    self.iterators.remove(&shard);
                    self.closed.push(shard);
                }
            }
        }
        Ok(records)
    }
}

/// A Streams API record in Lambda's JSON form.
fn stream_record(record: &StreamRecord) -> Result<Value, String> {
    let change = record.dynamodb().ok_or("a record without its change")?;
    let image =
        |attributes: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            attributes.map(|attributes| {
                let item: serde_dynamo::Item = attributes.clone().into();
                serde_json::to_value(item).expect("an item serializes")
            })
        };
    let mut dynamodb = json!({
        "SequenceNumber": change.sequence_number(),
        "SizeBytes": change.size_bytes(),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    });
    for (field, value) in [
        ("Keys", image(change.keys.as_ref())),
        ("NewImage", image(change.new_image.as_ref())),
        ("OldImage", image(change.old_image.as_ref())),
    ] {
        if let Some(value) = value {
            dynamodb[field] = value;
        }
    }
    let name = record
        .event_name()
        .map(|name| name.as_str().to_owned())
        .unwrap_or_default();
    let principal = record
        .user_identity()
        .and_then(|identity| identity.principal_id());
    Ok(coins_streams::lambda_record(
        record.event_id().unwrap_or_default().to_owned(),
        &name,
        dynamodb,
        principal,
    ))
}

/// The event-driven functions fed from the stream, with the filter each is deployed with.
pub fn consumers() -> Vec<(Function, Value)> {
    let parse = |pattern: &str| serde_json::from_str(pattern).expect("a JSON filter");
    vec![
        (
            Function::RefundDispatch,
            parse(refund_dispatch::STREAM_FILTER),
        ),
        (Function::RefundExpiry, parse(refund_expiry::STREAM_FILTER)),
        (Function::Earnings, parse(earnings::STREAM_FILTER)),
        (
            Function::PayoutDispatch,
            parse(payout_dispatch::STREAM_FILTER),
        ),
    ]
}

/// Feeds the event-driven functions until the task is dropped.
pub async fn run<S: Store>(app: Arc<App<S>>, mut feed: Feed) {
    let consumers = consumers();
    loop {
        let records = match feed.next().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "reading the table's stream failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if records.is_empty() {
            tokio::time::sleep(POLL).await;
            continue;
        }
        for (function, filter) in &consumers {
            let batch: Vec<Value> = records
                .iter()
                .filter(|record| crate::filter::matches(filter, record))
                .cloned()
                .collect();
            if !batch.is_empty() {
                deliver(&app, *function, batch).await;
            }
        }
    }
}

/// Delivers a batch, redelivering what the function reports failed, as Lambda would.
async fn deliver<S: Store>(app: &App<S>, function: Function, mut batch: Vec<Value>) {
    let mut wait = Duration::from_millis(100);
    for delivery in 1..=MAX_DELIVERIES {
        let failed = app.invoke(function, json!({"Records": batch})).await;
        batch.retain(|record| {
            let sequence = &record["dynamodb"]["SequenceNumber"];
            failed.iter().any(|failed| failed == sequence)
        });
        if batch.is_empty() {
            return;
        }
        tracing::info!(
            function = function.name(),
            delivery,
            left = batch.len(),
            "redelivering"
        );
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
    tracing::error!(
        function = function.name(),
        records = batch.len(),
        "records failed every delivery: dropped (a dead-letter queue on AWS)"
    );
}

impl<S: Store> App<S> {
    /// Invokes an event-driven function with `payload`; the sequence numbers it reports failed
    /// (all of the batch if the invocation failed as a whole).
    pub async fn invoke(&self, function: Function, payload: Value) -> Vec<Value> {
        let all = || {
            payload["Records"]
                .as_array()
                .map(|records| {
                    records
                        .iter()
                        .map(|record| record["dynamodb"]["SequenceNumber"].clone())
                        .collect()
                })
                .unwrap_or_default()
        };
        let event = LambdaEvent::new(payload.clone(), Context::default());
        let answer = match function {
            Function::RefundDispatch => {
                refund_dispatch::handle(&self.deps, &self.payments.provider, event)
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|response| serde_json::to_value(response).map_err(|e| e.to_string()))
            }
            Function::RefundExpiry => refund_expiry::handle(&self.deps, event)
                .await
                .map_err(|error| error.to_string()),
            Function::Earnings => earnings::handle(&self.deps, event)
                .await
                .map_err(|error| error.to_string())
                .and_then(|response| serde_json::to_value(response).map_err(|e| e.to_string())),
            Function::PayoutDispatch => {
                payout_dispatch::handle(&self.deps, &self.payments.provider, event)
                    .await
                    .map_err(|error| error.to_string())
                    .and_then(|response| serde_json::to_value(response).map_err(|e| e.to_string()))
            }
            other => return vec![json!(format!("{} is not event-driven", other.name()))],
        };
        match answer {
            Ok(response) => response["batchItemFailures"]
                .as_array()
                .map(|failures| {
                    failures
                        .iter()
                        .map(|failure| failure["itemIdentifier"].clone())
                        .collect()
                })
                .unwrap_or_default(),
            Err(error) => {
                tracing::warn!(function = function.name(), %error, "invocation failed");
                all()
            }
        }
    }
}
