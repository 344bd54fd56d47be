//! The DynamoDB adapter: translates the storage port into `GetItem`/`Query`/`TransactWriteItems`
//! and their batch forms.
//!
//! No domain logic lives here: a [`Write`] becomes a conditional `Put`/`Delete`, a cancelled transaction's `CancellationReasons` become
//! [`StoreError::ConditionFailed`] (which writes) or [`StoreError::Transient`] (conflicts,
//! throttling), and records convert to and from items with `serde_dynamo` ([`to_item`],
//! [`from_item`]). The table itself comes from
//! [`TABLE`], the one definition the SAM template mirrors ([`table_definition_json`]).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, Delete, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, Projection, ProjectionType, Put, ScalarAttributeType,
    StreamSpecification, StreamViewType, TimeToLiveSpecification, TransactWriteItem,
};
use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest, WriteRequest};
use serde_dynamo::Item;

use crate::store::{Condition, Index, Key, Query, SortKey, Store, StoreError, Transaction, Write};
use crate::table::{ItemType, Record, Row, RowReader, attr};

/// A key attribute: name and DynamoDB scalar type (`S` for all of ours).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub attribute_type: &'static str,
}

/// A global secondary index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexDefinition {
    pub index: Index,
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    /// `KEYS_ONLY`: a reader rereads what it acts on consistently, and an item's index entry
    /// is written only when its index keys change, not on every update of the item.
    pub projection: &'static str,
}

/// The table, defined once: `create_table` builds it and the SAM template must match it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDefinition {
    pub attributes: &'static [KeyAttribute],
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub indexes: &'static [IndexDefinition],
    pub ttl_attribute: &'static str,
    pub billing_mode: &'static str,
    pub stream_view_type: &'static str,
}

/// The one table of the coins backend.
pub const TABLE: TableDefinition = TableDefinition {
    attributes: &[
        KeyAttribute {
            name: attr::PK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::SK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI1PK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI1SK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI2PK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI2SK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI3PK,
            attribute_type: "S",
        },
        KeyAttribute {
            name: attr::GSI3SK,
            attribute_type: "S",
        },
    ],
    partition_key: attr::PK,
    sort_key: attr::SK,
    indexes: &[
        IndexDefinition {
            index: Index::OpenLotsByDeadline,
            name: "gsi1",
            partition_key: attr::GSI1PK,
            sort_key: attr::GSI1SK,
            projection: "KEYS_ONLY",
        },
        IndexDefinition {
            index: Index::PurchasesByUser,
            name: "gsi2",
            partition_key: attr::GSI2PK,
            sort_key: attr::GSI2SK,
            projection: "KEYS_ONLY",
        },
        IndexDefinition {
            index: Index::Outstanding,
            name: "gsi3",
            partition_key: attr::GSI3PK,
            sort_key: attr::GSI3SK,
            projection: "KEYS_ONLY",
        },
    ],
    ttl_attribute: attr::EXPIRES_AT,
    billing_mode: "PAY_PER_REQUEST",
    stream_view_type: "NEW_AND_OLD_IMAGES",
};

/// [`TABLE`] in the shape of CloudFormation's `AWS::DynamoDB::Table` properties, so a test can
/// compare the SAM template's table against it field by field.
pub fn table_definition_json() -> serde_json::Value {
    let t = TABLE;
    serde_json::json!({
        "AttributeDefinitions": t.attributes.iter().map(|a| serde_json::json!({
            "AttributeName": a.name, "AttributeType": a.attribute_type
        })).collect::<Vec<_>>(),
        "KeySchema": [
            {"AttributeName": t.partition_key, "KeyType": "HASH"},
            {"AttributeName": t.sort_key, "KeyType": "RANGE"}
        ],
        "GlobalSecondaryIndexes": t.indexes.iter().map(|index| serde_json::json!({
            "IndexName": index.name,
            "KeySchema": [
                {"AttributeName": index.partition_key, "KeyType": "HASH"},
                {"AttributeName": index.sort_key, "KeyType": "RANGE"}
            ],
            "Projection": {"ProjectionType": index.projection}
        })).collect::<Vec<_>>(),
        "TimeToLiveSpecification": {"AttributeName": t.ttl_attribute, "Enabled": true},
        "BillingMode": t.billing_mode,
        "StreamSpecification": {"StreamViewType": t.stream_view_type}
    })
}

/// The definition of `index` (not the table's own key).
fn index_definition(index: Index) -> Option<&'static IndexDefinition> {
    TABLE
        .indexes
        .iter()
        .find(|definition| definition.index == index)
}

/// A record in its stored form: its row's fields, plus the key attributes derived from it
/// (`pk`, `sk`, and its keys in the indexes it is in) and `item_type`.
pub fn to_item(record: &Record) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(record)
        .map_err(|error| StoreError::Fatal(format!("serialize: {error}")))?;
    let key = record.key();
    let text = serde_dynamo::AttributeValue::S;
    item.insert(attr::PK.to_owned(), text(key.pk));
    item.insert(attr::SK.to_owned(), text(key.sk));
    item.insert(
        attr::ITEM_TYPE.to_owned(),
        item_type_value(record.item_type()),
    );
    for index in TABLE.indexes {
        if let Some(key) = record.index_key(index.index) {
            item.insert(index.partition_key.to_owned(), text(key.pk));
            item.insert(index.sort_key.to_owned(), text(key.sk));
        }
    }
    Ok(item)
}

fn item_type_value(item_type: ItemType) -> serde_dynamo::AttributeValue {
    serde_dynamo::to_attribute_value(item_type).expect("a unit enum variant serializes")
}

/// A stored item as its record, told apart by its `item_type` (the key attributes are derived,
/// so reading ignores them).
pub fn from_item(item: Item) -> Result<Record, StoreError> {
    let item_type = item
        .get(attr::ITEM_TYPE)
        .cloned()
        .ok_or_else(|| StoreError::Fatal("unreadable item: no item_type".into()))?;
    let item_type: ItemType = serde_dynamo::from_attribute_value(item_type).map_err(unreadable)?;
    Record::read(item_type, StoredItem(item))
}

fn unreadable(error: serde_dynamo::Error) -> StoreError {
    StoreError::Fatal(format!("unreadable item: {error}"))
}

/// An item read back from the table.
struct StoredItem(Item);

impl RowReader for StoredItem {
    type Error = StoreError;
    fn read<R: Row>(self) -> Result<R, StoreError> {
        serde_dynamo::from_item(self.0).map_err(unreadable)
    }
}

/// A client for DynamoDB Local (or any endpoint) with dummy static credentials in `us-east-1`.
/// For the local server, end-to-end tests and this crate's contract suite; never for AWS.
pub async fn client_for_endpoint(endpoint_url: &str) -> Client {
    Client::new(&local_config(endpoint_url).await)
}

/// The SDK configuration for a local endpoint (DynamoDB Local takes any credentials), shared by
/// the DynamoDB and DynamoDB Streams clients.
pub async fn local_config(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "local",
            "local",
            None,
            None,
            "coins-ledger-local",
        ))
        .endpoint_url(endpoint_url)
        .load()
        .await
}

fn build_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Fatal(format!("building a request: {error}"))
}

/// Creates the table from [`TABLE`] (keys, open-lots index, on-demand billing, stream) and
/// enables TTL on `expires_at`.
pub async fn create_table(client: &Client, name: &str) -> Result<(), StoreError> {
    create(client, name, true).await
}

/// [`create_table`] without the stream, for tests that read none: DynamoDB Local keeps the
/// stream of every table it ever made (a deleted table's too, as DynamoDB does for 24 hours) and
/// looks them up on every write, so hundreds of throwaway tables with streams make each write
/// several times slower.
pub async fn create_table_without_stream(client: &Client, name: &str) -> Result<(), StoreError> {
    create(client, name, false).await
}

async fn create(client: &Client, name: &str, stream: bool) -> Result<(), StoreError> {
    let t = TABLE;
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
            .map_err(build_error)
    };
    let mut attributes = Vec::new();
    for attribute in t.attributes {
        attributes.push(
            AttributeDefinition::builder()
                .attribute_name(attribute.name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type))
                .build()
                .map_err(build_error)?,
        );
    }
    let mut indexes = Vec::new();
    for index in t.indexes {
        indexes.push(
            GlobalSecondaryIndex::builder()
                .index_name(index.name)
                .key_schema(key(index.partition_key, KeyType::Hash)?)
                .key_schema(key(index.sort_key, KeyType::Range)?)
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(index.projection))
                        .build(),
                )
                .build()
                .map_err(build_error)?,
        );
    }
    client
        .create_table()
        .table_name(name)
        .set_attribute_definitions(Some(attributes))
        .key_schema(key(t.partition_key, KeyType::Hash)?)
        .key_schema(key(t.sort_key, KeyType::Range)?)
        .set_global_secondary_indexes(Some(indexes))
        .billing_mode(BillingMode::from(t.billing_mode))
        .set_stream_specification(if stream {
            Some(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(t.stream_view_type))
                    .build()
                    .map_err(build_error)?,
            )
        } else {
            None
        })
        .send()
        .boxed()
        .await
        .map_err(classify)?;
    client
        .update_time_to_live()
        .table_name(name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(t.ttl_attribute)
                .enabled(true)
                .build()
                .map_err(build_error)?,
        )
        .send()
        .boxed()
        .await
        .map_err(classify)?;
    Ok(())
}

/// The ledger's table in DynamoDB.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: std::sync::Arc<str>,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into().into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table_name(&self) -> &str {
        &self.table
    }
}

/// Boxes an SDK call's future. The SDK's request futures are deeply nested types; boxed here,
/// every future above the store stays shallow (a stream function's handler hit the compiler's
/// layout depth limit), for one allocation beside a network round trip.
trait Boxed<'a>: Future + Send + Sized + 'a {
    fn boxed(self) -> Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>> {
        Box::pin(self)
    }
}

impl<'a, F: Future + Send + 'a> Boxed<'a> for F {}

/// Error codes that mean "refused before applying; try again".
const TRANSIENT_CODES: &[&str] = &[
    "TransactionConflictException",
    "TransactionConflict",
    "TransactionInProgressException",
    "ProvisionedThroughputExceededException",
    "ProvisionedThroughputExceeded",
    "ThrottlingException",
    "ThrottlingError",
    "RequestLimitExceeded",
];

/// Maps any SDK error to the port's error kinds.
fn classify<E, R>(error: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().map(str::to_owned);
    let text = DisplayErrorContext(&error).to_string();
    match (&error, code.as_deref()) {
        (_, Some("ConditionalCheckFailedException")) => {
            StoreError::ConditionFailed { writes: vec![0] }
        }
        (_, Some(code)) if TRANSIENT_CODES.contains(&code) => StoreError::Transient(text),
        // A 500 on a write may or may not have applied.
        (_, Some("InternalServerError" | "ServiceUnavailable")) => StoreError::Ambiguous(text),
        (
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_),
            _,
        ) => StoreError::Ambiguous(text),
        _ => StoreError::Fatal(text),
    }
}

/// A cancelled transaction: which writes failed their condition, or why it was refused.
fn classify_transaction<R: std::fmt::Debug>(
    error: SdkError<TransactWriteItemsError, R>,
) -> StoreError {
    if let SdkError::ServiceError(service) = &error
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let reasons = cancelled.cancellation_reasons();
        let failed: Vec<usize> = reasons
            .iter()
            .enumerate()
            .filter(|(_, reason)| reason.code() == Some("ConditionalCheckFailed"))
            .map(|(index, _)| index)
            .collect();
        if !failed.is_empty() {
            return StoreError::ConditionFailed { writes: failed };
        }
        let codes: Vec<&str> = reasons.iter().filter_map(|reason| reason.code()).collect();
        if codes.iter().any(|code| TRANSIENT_CODES.contains(code)) {
            return StoreError::Transient(format!("transaction cancelled: {codes:?}"));
        }
        return StoreError::Fatal(format!("transaction cancelled: {codes:?}"));
    }
    classify(error)
}

/// A condition as a DynamoDB expression with its placeholders.
#[derive(Default)]
struct Expression {
    text: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn condition_expression(condition: &Condition) -> Expression {
    let mut expression = Expression::default();
    let mut name = |placeholder: &str, attribute: &str| {
        expression
            .names
            .insert(placeholder.to_owned(), attribute.to_owned());
    };
    let text = match condition {
        Condition::Always => None,
        Condition::Absent => {
            name("#pk", attr::PK);
            Some("attribute_not_exists(#pk)".to_owned())
        }
        Condition::AbsentOrExpired { now_epoch_s } => {
            name("#pk", attr::PK);
            name("#expires", attr::EXPIRES_AT);
            expression
                .values
                .insert(":now".into(), AttributeValue::N(now_epoch_s.to_string()));
            Some("attribute_not_exists(#pk) OR #expires < :now".to_owned())
        }
        Condition::Exists => {
            name("#pk", attr::PK);
            Some("attribute_exists(#pk)".to_owned())
        }
        Condition::VersionIs(version) => {
            name("#version", attr::VERSION);
            expression
                .values
                .insert(":version".into(), AttributeValue::N(version.to_string()));
            Some("#version = :version".to_owned())
        }
    };
    expression.text = text;
    expression
}

fn none_if_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

fn key_map(key: &Key) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (attr::PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (attr::SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

fn sdk_item(record: &Record) -> Result<HashMap<String, AttributeValue>, StoreError> {
    Ok(to_item(record)?.into())
}

/// One write of a `TransactWriteItems`.
fn transact_item(table: &str, write: &Write) -> Result<TransactWriteItem, StoreError> {
    let item = match write {
        Write::Put { record, condition } => {
            let expression = condition_expression(condition);
            TransactWriteItem::builder().put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(sdk_item(record)?))
                    .set_condition_expression(expression.text)
                    .set_expression_attribute_names(none_if_empty(expression.names))
                    .set_expression_attribute_values(none_if_empty(expression.values))
                    .build()
                    .map_err(build_error)?,
            )
        }
        Write::Delete { key, condition } => {
            let expression = condition_expression(condition);
            TransactWriteItem::builder().delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(expression.text)
                    .set_expression_attribute_names(none_if_empty(expression.names))
                    .set_expression_attribute_values(none_if_empty(expression.values))
                    .build()
                    .map_err(build_error)?,
            )
        }
    };
    Ok(item.build())
}

/// DynamoDB's limits on one `BatchGetItem` and one `BatchWriteItem`.
const BATCH_GET_KEYS: usize = 100;
const BATCH_WRITE_ITEMS: usize = 25;

/// Waits between the rounds of a batch whose items DynamoDB left unprocessed (it does so when
/// throttled), exponentially, and gives up as a transient failure after a few.
#[derive(Default)]
struct BatchBackoff {
    rounds: u32,
}

impl BatchBackoff {
    const MAX_ROUNDS: u32 = 8;

    async fn wait(&mut self) -> Result<(), StoreError> {
        self.rounds += 1;
        if self.rounds > Self::MAX_ROUNDS {
            return Err(StoreError::Transient(
                "a batch stayed unprocessed (throttled)".into(),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(25 << self.rounds.min(6))).await;
        Ok(())
    }
}

impl DynamoStore {
    /// Every item a query selects, page by page up to its limit.
    async fn query_items(&self, query: &Query) -> Result<Vec<Item>, StoreError> {
        let (index_name, pk_name, sk_name, consistent) = match index_definition(query.index) {
            None => (None, attr::PK, attr::SK, true),
            // A GSI cannot be read consistently; callers reread what they act on.
            Some(index) => (Some(index.name), index.partition_key, index.sort_key, false),
        };
        let mut names = HashMap::from([("#pk".to_owned(), pk_name.to_owned())]);
        let mut values =
            HashMap::from([(":pk".to_owned(), AttributeValue::S(query.partition.clone()))]);
        let mut key_condition = "#pk = :pk".to_owned();
        match &query.sort {
            SortKey::All => {}
            SortKey::BeginsWith(prefix) => {
                names.insert("#sk".into(), sk_name.into());
                values.insert(":sk".into(), AttributeValue::S(prefix.clone()));
                key_condition.push_str(" AND begins_with(#sk, :sk)");
            }
            SortKey::Before(bound) => {
                names.insert("#sk".into(), sk_name.into());
                values.insert(":sk".into(), AttributeValue::S(bound.clone()));
                key_condition.push_str(" AND #sk < :sk");
            }
        }
        let mut start_key = match (&query.start_after, query.index) {
            (None, _) => None,
            (Some(key), Index::Table) => Some(key_map(key)),
            (Some(_), _) => {
                return Err(StoreError::Fatal("start_after on an index".into()));
            }
        };
        let mut items = Vec::new();
        loop {
            let wanted = match query.limit {
                Some(limit) => {
                    let left = (limit as usize).saturating_sub(items.len());
                    if left == 0 {
                        break;
                    }
                    Some(i32::try_from(left).unwrap_or(i32::MAX))
                }
                None => None,
            };
            let output = self
                .client
                .query()
                .table_name(&*self.table)
                .set_index_name(index_name.map(str::to_owned))
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(Some(names.clone()))
                .set_expression_attribute_values(Some(values.clone()))
                .scan_index_forward(!query.descending)
                .consistent_read(consistent)
                .set_limit(wanted)
                .set_exclusive_start_key(start_key.take())
                .send()
                .boxed()
                .await
                .map_err(classify)?;
            items.extend(output.items.unwrap_or_default().into_iter().map(Item::from));
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start_key = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }

    /// One write alone: a plain conditional write costs half a transactional one.
    async fn commit_single(&self, write: &Write) -> Result<(), StoreError> {
        match write {
            Write::Put { record, condition } => {
                let expression = condition_expression(condition);
                self.client
                    .put_item()
                    .table_name(&*self.table)
                    .set_item(Some(sdk_item(record)?))
                    .set_condition_expression(expression.text)
                    .set_expression_attribute_names(none_if_empty(expression.names))
                    .set_expression_attribute_values(none_if_empty(expression.values))
                    .send()
                    .boxed()
                    .await
                    .map_err(classify)?;
            }
            Write::Delete { key, condition } => {
                let expression = condition_expression(condition);
                self.client
                    .delete_item()
                    .table_name(&*self.table)
                    .set_key(Some(key_map(key)))
                    .set_condition_expression(expression.text)
                    .set_expression_attribute_names(none_if_empty(expression.names))
                    .set_expression_attribute_values(none_if_empty(expression.values))
                    .send()
                    .boxed()
                    .await
                    .map_err(classify)?;
            }
        }
        Ok(())
    }
}

impl Store for DynamoStore {
    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let output = self
            .client
            .get_item()
            .table_name(&*self.table)
            .set_key(Some(key_map(key)))
            .consistent_read(true)
            .send()
            .boxed()
            .await
            .map_err(classify)?;
        output
            .item
            .map(|item| from_item(Item::from(item)))
            .transpose()
    }

    async fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        if query.index != Index::Table {
            return Err(StoreError::Fatal(
                "the open-lots index holds keys only".into(),
            ));
        }
        self.query_items(query)
            .await?
            .into_iter()
            .map(from_item)
            .collect()
    }

    async fn query_keys(&self, query: &Query) -> Result<Vec<Key>, StoreError> {
        self.query_items(query)
            .await?
            .iter()
            .map(|item| match (item.get(attr::PK), item.get(attr::SK)) {
                (
                    Some(serde_dynamo::AttributeValue::S(pk)),
                    Some(serde_dynamo::AttributeValue::S(sk)),
                ) => Ok(Key::new(pk.as_str(), sk.as_str())),
                _ => Err(StoreError::Fatal("an item without pk/sk".into())),
            })
            .collect()
    }

    async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        transaction.validated_keys()?;
        if let [write] = transaction.writes.as_slice() {
            return self.commit_single(write).await;
        }
        let items = transaction
            .writes
            .iter()
            .map(|write| transact_item(&self.table, write))
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            // Random per call: the SDK's resend of this request (a lost response) reuses it and
            // applies once; the ledger's own retries re-read first and never need it.
            .client_request_token(format!("{:032x}", rand::random::<u128>()))
            .send()
            .boxed()
            .await
            .map_err(classify_transaction)?;
        Ok(())
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Record>>, StoreError> {
        let mut found: HashMap<Key, Record> = HashMap::with_capacity(keys.len());
        let mut wanted: Vec<&Key> = Vec::with_capacity(keys.len());
        for key in keys {
            // A request naming one key twice is refused.
            if !wanted.contains(&key) {
                wanted.push(key);
            }
        }
        for chunk in wanted.chunks(BATCH_GET_KEYS) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|key| key_map(key)).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(build_error)?,
            );
            let mut backoff = BatchBackoff::default();
            while let Some(keys) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&*self.table, keys)
                    .send()
                    .boxed()
                    .await
                    .map_err(classify)?;
                for item in output
                    .responses
                    .and_then(|mut tables| tables.remove(&*self.table))
                    .unwrap_or_default()
                {
                    let record = from_item(Item::from(item))?;
                    found.insert(record.key(), record);
                }
                request = output
                    .unprocessed_keys
                    .and_then(|mut tables| tables.remove(&*self.table))
                    .filter(|left| !left.keys().is_empty());
                if request.is_some() {
                    backoff.wait().await?;
                }
            }
        }
        Ok(keys.iter().map(|key| found.get(key).cloned()).collect())
    }

    async fn put_many(&self, records: Vec<Record>) -> Result<(), StoreError> {
        for chunk in records.chunks(BATCH_WRITE_ITEMS) {
            let mut requests = chunk
                .iter()
                .map(|record| {
                    Ok(WriteRequest::builder()
                        .put_request(
                            PutRequest::builder()
                                .set_item(Some(sdk_item(record)?))
                                .build()
                                .map_err(build_error)?,
                        )
                        .build())
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            let mut backoff = BatchBackoff::default();
            loop {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&*self.table, requests)
                    .send()
                    .boxed()
                    .await
                    .map_err(classify)?;
                requests = output
                    .unprocessed_items
                    .and_then(|mut tables| tables.remove(&*self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                backoff.wait().await?;
            }
        }
        Ok(())
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        let mut items = Vec::new();
        let mut start_key = None;
        loop {
            let output = self
                .client
                .scan()
                .table_name(&*self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start_key.take())
                .send()
                .boxed()
                .await
                .map_err(classify)?;
            for item in output.items.unwrap_or_default() {
                items.push(from_item(Item::from(item))?);
            }
            match output.last_evaluated_key {
                Some(last) if !last.is_empty() => start_key = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_definition_json_names_the_gsi_ttl_and_stream() {
        let json = table_definition_json();
        assert_eq!(json["GlobalSecondaryIndexes"][0]["IndexName"], "gsi1");
        assert_eq!(json["GlobalSecondaryIndexes"][1]["IndexName"], "gsi2");
        assert_eq!(
            json["TimeToLiveSpecification"]["AttributeName"],
            "expires_at"
        );
        assert_eq!(
            json["StreamSpecification"]["StreamViewType"],
            "NEW_AND_OLD_IMAGES"
        );
        assert_eq!(json["BillingMode"], "PAY_PER_REQUEST");
        assert_eq!(json["AttributeDefinitions"].as_array().unwrap().len(), 8);
    }

    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::{
        ProvisionedThroughputExceededException, TransactionCanceledException,
    };

    fn cancelled(codes: &[&str]) -> SdkError<TransactWriteItemsError, ()> {
        let mut exception = TransactionCanceledException::builder();
        for code in codes {
            exception =
                exception.cancellation_reasons(CancellationReason::builder().code(*code).build());
        }
        SdkError::service_error(
            TransactWriteItemsError::TransactionCanceledException(exception.build()),
            (),
        )
    }

    #[test]
    fn cancellation_reasons_name_the_writes_whose_condition_failed() {
        assert_eq!(
            classify_transaction(cancelled(&["None", "ConditionalCheckFailed", "None"])),
            StoreError::ConditionFailed { writes: vec![1] }
        );
    }

    #[test]
    fn a_transaction_conflict_or_throttled_item_is_transient() {
        assert!(matches!(
            classify_transaction(cancelled(&["None", "TransactionConflict"])),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            classify_transaction(cancelled(&["ThrottlingError", "None"])),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            classify_transaction(cancelled(&["ValidationError"])),
            StoreError::Fatal(_)
        ));
    }

    #[test]
    fn a_throttled_or_timed_out_single_write_is_retryable() {
        let throttled = PutItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .meta(
                    ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        );
        assert!(matches!(
            classify(SdkError::<PutItemError, ()>::service_error(throttled, ())),
            StoreError::Transient(_)
        ));
        assert!(matches!(
            classify(SdkError::<PutItemError, ()>::timeout_error("slow")),
            StoreError::Ambiguous(_)
        ));
    }

    #[test]
    fn conditions_become_expressions_with_placeholders() {
        let expression = condition_expression(&Condition::AbsentOrExpired { now_epoch_s: 42 });
        assert_eq!(
            expression.text.as_deref(),
            Some("attribute_not_exists(#pk) OR #expires < :now")
        );
        assert_eq!(expression.names["#expires"], "expires_at");
        assert_eq!(expression.values[":now"], AttributeValue::N("42".into()));
        assert!(condition_expression(&Condition::Always).text.is_none());
    }
}
