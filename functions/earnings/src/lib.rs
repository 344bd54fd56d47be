//! `earnings`: counts gifts into their creators' earnings and gifts received.
//!
//! The table's stream delivers every gift entry a sender's transaction writes ([`STREAM_FILTER`]:
//! a new entry, or a key reused once its old entry expired), and every one the sweeper re-drives
//! because it stayed uncounted (its first delivery went to the dead-letter queue). Once counted,
//! an entry is marked so (out of the outstanding index, expiring with its key's window). A batch is counted creator by
//! creator, concurrently (creators share no item): for each, one transaction writes pages of
//! gifts received with the creator's earnings, then the senders' history entries follow
//! ([`coins_ledger::Ledger::count_creator_gifts`]). Counting is idempotent, a gift counts once
//! whatever is redelivered, so whatever failed (contention with another shard's batch on a hot
//! creator, throttling, an unreadable item) is reported for a retry, and what still fails after
//! the mapping's retries lands in its dead-letter queue, which alarms; the sweeper re-drives it
//! later. Nothing is skipped: `coinctl audit` lists gift entries not counted yet, with their ages.

use aws_lambda_events::event::dynamodb::EventRecord;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use coins_ledger::table::{GiftRecord, Record};
use coins_ledger::{Counted, SWEEP_AFTER, Store, by_creator};
use coins_runtime::Deps;
use coins_streams::{BatchError, Failures, sweep};
use futures_util::future::join_all;
use lambda_runtime::LambdaEvent;
use serde_json::Value;

/// The event source mapping's filter: gift entries not counted yet (in the outstanding index:
/// as written, and as re-driven by the sweeper; the count's own mark takes them out, so it does
/// not come back here). The template's `FilterCriteria` must say the same; the local server
/// applies this one.
pub const STREAM_FILTER: &str = r#"{"dynamodb": {"NewImage": {"item_type": {"S": ["gift"]}, "gsi3pk": {"S": [{"exists": true}]}}}}"#;

/// Entry point: one stream batch, or the scheduled sweep of the gifts still uncounted.
pub async fn handle<S: Store>(
    deps: &Deps<S>,
    event: LambdaEvent<Value>,
) -> Result<DynamoDbEventResponse, BatchError> {
    if sweep::is_scheduled_event(&event.payload) {
        sweep_gifts(deps).await?;
        return Ok(DynamoDbEventResponse::default());
    }
    let batch = coins_streams::parse(event.payload)?;
    let mut failures = Failures::default();
    let mut gifts: Vec<(&EventRecord, GiftRecord)> = Vec::with_capacity(batch.records.len());
    for record in &batch.records {
        match coins_streams::new_record(record) {
            Some(Ok(Record::Gift(gift))) => gifts.push((record, gift)),
            Some(Ok(other)) => {
                tracing::debug!(event_id = %record.event_id, item_type = ?other.item_type(), "not a gift entry");
            }
            None => tracing::debug!(event_id = %record.event_id, "no new image"),
            Some(Err(error)) => {
                tracing::error!(event_id = %record.event_id, %error, "unreadable gift entry");
                failures.retry(record)?;
            }
        }
    }
    let now = deps.now();
    let groups = by_creator(&gifts, |(_, gift)| gift);
    let outcomes = join_all(
        groups
            .iter()
            .map(|(creator, group)| deps.ledger.count_creator_gifts(creator, group, now)),
    )
    .await;
    let mut counted = Counted::default();
    for ((creator, _), outcome) in groups.iter().zip(outcomes) {
        match outcome {
            Ok(done) => counted += done,
            Err(error) => {
                if error.is_retryable() {
                    tracing::warn!(creator_id = %creator, %error, "counting failed; will retry");
                } else {
                    tracing::error!(creator_id = %creator, %error, "counting failed");
                }
                for (record, gift) in &gifts {
                    if gift.details.recipient_id == **creator {
                        failures.retry(record)?;
                    }
                }
            }
        }
    }
    tracing::info!(
        records = batch.records.len(),
        creators = groups.len(),
        counted = counted.gifts,
        already = counted.already,
        pages = counted.pages,
        retry = failures.len(),
        "stream batch done"
    );
    Ok(failures.into_response())
}

/// The scheduled sweep: counts the gift entries still uncounted past
/// [`coins_ledger::SWEEP_AFTER`] (their stream records dead-lettered or trimmed), each once.
pub async fn sweep_gifts<S: Store>(deps: &Deps<S>) -> Result<Counted, BatchError> {
    let (found, counted) = deps
        .ledger
        .count_outstanding_gifts(deps.now(), SWEEP_AFTER)
        .await?;
    sweep::log_found(&found);
    tracing::info!(
        found = found.len(),
        counted = counted.gifts,
        already = counted.already,
        "gift sweep done"
    );
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use coins_ids::{IdempotencyKey, UserId};
    use coins_ledger::store::{Key, Query, StoreError, Transaction};
    use coins_ledger::table::keys;
    use coins_ledger::{GiftRequest, Ledger, LedgerConfig, MemoryStore};
    use coins_rules::{GiftTarget, TargetKind};
    use coins_runtime::TestClock;
    use coins_testkit::{T0, at, buy_package, enroll, zone};
    use jiff::SignedDuration;
    use lambda_runtime::{Context, Diagnostic};
    use serde_json::json;

    use super::*;

    /// A memory store (with its change feed) whose commits to one creator's earnings fail as
    /// DynamoDB throttling does.
    #[derive(Clone)]
    struct Throttled {
        inner: MemoryStore,
        creator: Option<UserId>,
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
            let blocked = self.creator.as_ref().map(keys::earnings);
            if transaction.writes.iter().any(|w| Some(w.key()) == blocked) {
                return Err(StoreError::Transient("ThrottlingException".into()));
            }
            self.inner.commit(transaction).await
        }
        async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
            self.inner.scan_all().await
        }
    }

    fn deps(store: Throttled) -> Deps<Throttled> {
        let config = LedgerConfig {
            max_attempts: 2,
            backoff_base: Duration::from_millis(1),
            backoff_cap: Duration::from_millis(2),
            ..LedgerConfig::default()
        };
        let clock = TestClock::new(at(T0)).unwrap();
        Deps::new(Ledger::with_config(store, config), Arc::new(clock))
    }

    /// bob's gifts: three to alice, one to carol. Returns the table's changes so far as one
    /// stream batch, every item's change included, as the unfiltered stream would carry them.
    async fn gifts_and_their_batch(store: &MemoryStore) -> Value {
        let clock = TestClock::new(at(T0)).unwrap();
        let setup = Deps::new(Ledger::new(store.clone()), Arc::new(clock));
        buy_package(&setup, "bob", "JP", "Asia/Tokyo", "coins_700").await;
        enroll(&setup, "alice").await;
        enroll(&setup, "carol").await;
        for (n, (creator, roses)) in [("alice", 10), ("alice", 20), ("carol", 5), ("alice", 30)]
            .into_iter()
            .enumerate()
        {
            let request = GiftRequest {
                sender: UserId::new("bob").unwrap(),
                recipient: UserId::new(creator).unwrap(),
                order: setup
                    .gifts()
                    .order(&"rose".parse().unwrap(), roses)
                    .unwrap(),
                target: GiftTarget::new(TargetKind::Live, "live-1").unwrap(),
                sender_zone: zone("Asia/Tokyo"),
            };
            let key = IdempotencyKey::new(format!("gift-{n}")).unwrap();
            setup
                .ledger
                .send_gift(&request, setup.now(), &key)
                .await
                .unwrap();
        }
        let records: Vec<Value> = store
            .changes_after(0)
            .iter()
            .map(|change| coins_streams::change_record(change).unwrap())
            .collect();
        json!({ "Records": records })
    }

    async fn diamonds<S: Store>(deps: &Deps<S>, creator: &str) -> u64 {
        let creator = UserId::new(creator).unwrap();
        deps.ledger
            .earnings(&creator, deps.now())
            .await
            .unwrap()
            .diamonds_earned
    }

    fn invoke(batch: &Value) -> LambdaEvent<Value> {
        LambdaEvent::new(batch.clone(), Context::default())
    }

    #[tokio::test]
    async fn a_batch_counts_each_creators_gifts_once_however_often_it_comes() {
        let store = MemoryStore::with_change_feed();
        let batch = gifts_and_their_batch(&store).await;
        let deps = deps(Throttled {
            inner: store,
            creator: None,
        });
        for _ in 0..2 {
            let answer = handle(&deps, invoke(&batch)).await.unwrap();
            assert!(answer.batch_item_failures.is_empty());
            assert_eq!(
                (
                    diamonds(&deps, "alice").await,
                    diamonds(&deps, "carol").await
                ),
                (60, 5)
            );
        }
        deps.ledger.conservation_check().await.unwrap();
    }

    #[tokio::test]
    async fn a_creator_whose_count_failed_has_their_gifts_reported_and_the_rest_counted() {
        let store = MemoryStore::with_change_feed();
        let batch = gifts_and_their_batch(&store).await;
        let throttled = deps(Throttled {
            inner: store.clone(),
            creator: Some(UserId::new("alice").unwrap()),
        });
        let answer = handle(&throttled, invoke(&batch)).await.unwrap();
        let gift_sequences: Vec<String> = batch["Records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["dynamodb"]["NewImage"]["item_type"]["S"] == "gift")
            .filter(|r| r["dynamodb"]["NewImage"]["details"]["M"]["recipient_id"]["S"] == "alice")
            .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap().to_owned())
            .collect();
        let reported: Vec<String> = answer
            .batch_item_failures
            .iter()
            .map(|failure| failure.item_identifier.clone().unwrap())
            .collect();
        assert_eq!((reported.len(), reported), (3, gift_sequences));
        assert_eq!(diamonds(&throttled, "carol").await, 5);
        // The retry, the throttling over, counts alice's.
        let deps = deps(Throttled {
            inner: store,
            creator: None,
        });
        let answer = handle(&deps, invoke(&batch)).await.unwrap();
        assert!(answer.batch_item_failures.is_empty());
        assert_eq!(
            (
                diamonds(&deps, "alice").await,
                diamonds(&deps, "carol").await
            ),
            (60, 5)
        );
    }

    /// The gift entries in the table.
    async fn gift_entries(store: &MemoryStore) -> Vec<GiftRecord> {
        let records = store.scan_all().await.unwrap();
        records
            .into_iter()
            .filter_map(|record| GiftRecord::try_from(record).ok())
            .collect()
    }

    #[tokio::test]
    async fn gifts_whose_records_were_lost_never_expire_and_the_sweep_counts_them_once() {
        let store = MemoryStore::with_change_feed();
        // The batch is never delivered: it went to the dead-letter queue, or aged out.
        let _lost = gifts_and_their_batch(&store).await;
        let uncounted = gift_entries(&store).await;
        assert_eq!(uncounted.len(), 4);
        assert!(uncounted.iter().all(|gift| gift.expires_at.is_none()));
        let deps = deps(Throttled {
            inner: store.clone(),
            creator: None,
        });
        // A sweep leaves what the stream may still be counting to the stream.
        handle(&deps, invoke(&sweep::scheduled_event()))
            .await
            .unwrap();
        assert_eq!(diamonds(&deps, "alice").await, 0);
        // Past the threshold, a day later even (the stream's records are gone by then).
        let clock = TestClock::new(at(T0) + SignedDuration::from_hours(25)).unwrap();
        let later = Deps::new(Ledger::new(store.clone()), Arc::new(clock));
        for _ in 0..2 {
            let answer = handle(&later, invoke(&sweep::scheduled_event()))
                .await
                .unwrap();
            assert!(answer.batch_item_failures.is_empty());
            assert_eq!(
                (
                    diamonds(&later, "alice").await,
                    diamonds(&later, "carol").await
                ),
                (60, 5)
            );
        }
        // Counted, they leave the outstanding index and expire a day after the gift.
        for gift in gift_entries(&store).await {
            assert_eq!(gift.counted_at, Some(later.now()));
            let window = gift.at + SignedDuration::from_hours(24);
            assert_eq!(gift.expires_at, Some(window.as_second()));
        }
        assert!(
            later
                .ledger
                .all_outstanding(later.now())
                .await
                .unwrap()
                .is_empty()
        );
        later.ledger.conservation_check().await.unwrap();
    }

    #[tokio::test]
    async fn the_streams_count_marks_its_gifts_counted() {
        let store = MemoryStore::with_change_feed();
        let batch = gifts_and_their_batch(&store).await;
        let deps = deps(Throttled {
            inner: store.clone(),
            creator: None,
        });
        assert_eq!(
            deps.ledger.all_outstanding(deps.now()).await.unwrap().len(),
            4
        );
        handle(&deps, invoke(&batch)).await.unwrap();
        assert!(
            gift_entries(&store)
                .await
                .iter()
                .all(|gift| gift.counted_at.is_some())
        );
        assert!(
            deps.ledger
                .all_outstanding(deps.now())
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_malformed_batch_fails_the_invocation_for_good() {
        let deps = deps(Throttled {
            inner: MemoryStore::new(),
            creator: None,
        });
        let error = handle(&deps, invoke(&json!({"Records": "nope"})))
            .await
            .unwrap_err();
        assert_eq!(
            Diagnostic::from(error).error_type,
            "NonRetryable.StreamBatch"
        );
    }
}
