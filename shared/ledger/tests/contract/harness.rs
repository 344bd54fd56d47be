//! Test harness: a fresh store per test (in memory, or a new DynamoDB Local table), a
//! fault-injecting store wrapper, a write-metering wrapper and a small world of fixtures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use coins_ids::{ConnectedAccountId, EventId, IdempotencyKey, PaymentIntentId, PurchaseId, UserId};
use coins_ledger::capacity::{record_size_bytes, write_units};
use coins_ledger::dynamo::{DynamoStore, client_for_endpoint, create_table_without_stream};
use coins_ledger::store::{Key, Query, Store, StoreError, Transaction, Write};
use coins_ledger::table::GiftRecord;
use coins_ledger::table::Record;
use coins_ledger::{
    AuditReport, GiftReceipt, GiftRequest, Ledger, LedgerConfig, LedgerError, MemoryStore, Paid,
    Payment, PaymentEvent, PaymentOutcome, Quote,
};
use coins_rules::money::Money;
use coins_rules::{GiftCatalog, GiftTarget, TargetKind, Zone};
use jiff::{SignedDuration, Timestamp};

/// The fans' zone.
pub fn tokyo() -> Zone {
    Zone::get("Asia/Tokyo").expect("a zone")
}

const NOT_RUNNING: &str = "DynamoDB Local is not running: run scripts/test, which starts it";

pub fn memory_store() -> MemoryStore {
    MemoryStore::new()
}

/// The DynamoDB Local endpoint; a missing variable fails the test (never a silent skip).
pub fn endpoint() -> String {
    std::env::var("DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!("{NOT_RUNNING} (DYNAMODB_ENDPOINT is not set, e.g. http://127.0.0.1:8000)")
    })
}

/// A fresh table with a random name, so tests run in parallel without seeing each other (no
/// stream: nothing here reads one).
pub async fn dynamo_store() -> DynamoStore {
    let endpoint = endpoint();
    let client = client_for_endpoint(&endpoint).await;
    let table = format!("ledger-{}", PurchaseId::generate().as_str());
    if let Err(error) = create_table_without_stream(&client, &table).await {
        panic!("{NOT_RUNNING} (creating a table at {endpoint} failed: {error})");
    }
    DynamoStore::new(client, table)
}

/// Deletes a test's table so a long-lived DynamoDB Local does not fill up.
pub async fn drop_table(store: &DynamoStore) {
    store
        .client()
        .delete_table()
        .table_name(store.table_name())
        .send()
        .await
        .expect("delete the test table");
}

pub fn at(text: &str) -> Timestamp {
    text.parse().expect("a test timestamp")
}

pub fn user(name: &str) -> UserId {
    UserId::new(name).expect("a test user id")
}

pub fn fresh_key() -> IdempotencyKey {
    IdempotencyKey::new(format!("key-{}", PurchaseId::generate())).expect("a key")
}

/// A fault to inject into the next commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Apply the commit, then lose the response (the caller sees an unknown outcome).
    LoseResponse,
    /// Fail with an unknown outcome without applying anything.
    FailBeforeApply,
    /// Refuse as DynamoDB does for a `TransactionConflict` cancellation.
    TransactionConflict,
    /// Refuse as throttled.
    Throttle,
    /// Let this commit through (to place a later fault).
    Pass,
    /// Fail for good, as a process that stopped would leave things.
    Crash,
}

/// A store that injects planned faults into commits, then behaves like the store it wraps.
#[derive(Clone)]
pub struct FaultyStore<S> {
    inner: S,
    plan: Arc<Mutex<VecDeque<Fault>>>,
    commits: Arc<Mutex<u32>>,
    refused: Arc<Mutex<u32>>,
    hidden: Arc<Mutex<Vec<Key>>>,
}

impl<S: Store> FaultyStore<S> {
    pub fn new(inner: S) -> Self {
        FaultyStore {
            inner,
            plan: Arc::default(),
            commits: Arc::default(),
            refused: Arc::default(),
            hidden: Arc::default(),
        }
    }

    /// The next read of `key` answers "absent", as a read made just before a concurrent
    /// writer committed would.
    pub fn hide_once(&self, key: Key) {
        self.hidden.lock().unwrap().push(key);
    }

    /// Faults for the next commits, in order; later commits pass through.
    pub fn plan(&self, faults: &[Fault]) {
        self.plan.lock().unwrap().extend(faults.iter().copied());
    }

    /// Commits attempted so far, faulty or not.
    pub fn commits(&self) -> u32 {
        *self.commits.lock().unwrap()
    }

    /// Commits the store itself refused (a failed condition, a conflict, throttling): each one
    /// a retry of the caller.
    pub fn refused(&self) -> u32 {
        *self.refused.lock().unwrap()
    }

    pub fn faults_left(&self) -> usize {
        self.plan.lock().unwrap().len()
    }
}

impl<S: Store> Store for FaultyStore<S> {
    async fn get(&self, key: &Key) -> Result<Option<Record>, StoreError> {
        let hidden = {
            let mut hidden = self.hidden.lock().unwrap();
            let position = hidden.iter().position(|k| k == key);
            position.map(|p| hidden.remove(p)).is_some()
        };
        if hidden {
            return Ok(None);
        }
        self.inner.get(key).await
    }

    async fn query(&self, query: &Query) -> Result<Vec<Record>, StoreError> {
        self.inner.query(query).await
    }

    async fn query_keys(&self, query: &Query) -> Result<Vec<Key>, StoreError> {
        self.inner.query_keys(query).await
    }

    async fn commit(&self, transaction: Transaction) -> Result<(), StoreError> {
        *self.commits.lock().unwrap() += 1;
        let fault = self.plan.lock().unwrap().pop_front();
        match fault {
            None | Some(Fault::Pass) => {
                let outcome = self.inner.commit(transaction).await;
                if outcome.is_err() {
                    *self.refused.lock().unwrap() += 1;
                }
                outcome
            }
            Some(Fault::LoseResponse) => {
                self.inner.commit(transaction).await?;
                Err(StoreError::Ambiguous("injected: response lost".into()))
            }
            Some(Fault::FailBeforeApply) => Err(StoreError::Ambiguous(
                "injected: failed before applying".into(),
            )),
            Some(Fault::TransactionConflict) => Err(StoreError::Transient(
                "injected: transaction cancelled [TransactionConflict]".into(),
            )),
            Some(Fault::Throttle) => Err(StoreError::Transient(
                "injected: ProvisionedThroughputExceededException".into(),
            )),
            Some(Fault::Crash) => Err(StoreError::Fatal("injected: the process stopped".into())),
        }
    }

    async fn get_many(&self, keys: &[Key]) -> Result<Vec<Option<Record>>, StoreError> {
        self.inner.get_many(keys).await
    }

    /// A batch of puts counts as one commit for the plan: a fault applies to all of it.
    async fn put_many(&self, records: Vec<Record>) -> Result<(), StoreError> {
        *self.commits.lock().unwrap() += 1;
        let fault = self.plan.lock().unwrap().pop_front();
        match fault {
            None | Some(Fault::Pass) => self.inner.put_many(records).await,
            Some(Fault::Crash) => Err(StoreError::Fatal("injected: the process stopped".into())),
            Some(other) => panic!("{other:?} is not planned for batch writes"),
        }
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.scan_all().await
    }
}

/// One committed write, measured: the item's size before and after, and its write units.
#[derive(Clone, Debug)]
pub struct MeteredWrite {
    /// The item's partition key and type (as `Debug` prints it).
    pub pk: String,
    pub kind: String,
    pub bytes: usize,
    pub units: u64,
}

/// A store that measures each commit's write units from the real items before and after.
#[derive(Clone)]
pub struct MeteredStore<S> {
    inner: S,
    log: Arc<Mutex<Vec<Vec<MeteredWrite>>>>,
}

impl<S: Store> MeteredStore<S> {
    pub fn new(inner: S) -> Self {
        MeteredStore {
            inner,
            log: Arc::default(),
        }
    }

    /// Forgets what was measured so far.
    pub fn reset(&self) {
        self.log.lock().unwrap().clear();
    }

    /// Every commit since the last reset.
    pub fn commits(&self) -> Vec<Vec<MeteredWrite>> {
        self.log.lock().unwrap().clone()
    }
}

impl<S: Store> Store for MeteredStore<S> {
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
        let keys: Vec<Key> = transaction.writes.iter().map(Write::key).collect();
        let mut before = Vec::new();
        for key in &keys {
            before.push(self.inner.get(key).await?);
        }
        let transactional = transaction.writes.len() > 1;
        self.inner.commit(transaction).await?;
        let mut measured = Vec::new();
        for (key, before) in keys.iter().zip(before) {
            let after = self.inner.get(key).await?;
            let kind = after
                .as_ref()
                .or(before.as_ref())
                .map_or_else(String::new, |record| format!("{:?}", record.item_type()));
            // AWS bills the larger of the item before and after the write.
            let size = |record: Option<Record>| record.map_or(Ok(0), |r| record_size_bytes(&r));
            let bytes = size(before)?.max(size(after)?);
            measured.push(MeteredWrite {
                pk: key.pk.clone(),
                kind,
                bytes,
                units: write_units(bytes, transactional),
            });
        }
        self.log.lock().unwrap().push(measured);
        Ok(())
    }

    async fn scan_all(&self) -> Result<Vec<Record>, StoreError> {
        self.inner.scan_all().await
    }
}

/// The ledger under test with fixtures for buying, enrolling and gifting.
pub struct World<S: Store> {
    pub ledger: Ledger<S>,
}

/// Retries enough for the concurrency tests: each failed attempt means another writer
/// committed in between, so 64 attempts cover 50 concurrent writers on one wallet. The backoff
/// is the production one: a shorter cap makes 50 contenders retry in lockstep and multiplies
/// the wasted attempts. Nothing asserts on time.
pub fn test_config() -> LedgerConfig {
    LedgerConfig {
        max_attempts: 64,
        ..LedgerConfig::default()
    }
}

/// The provider's payment paired with a test purchase: derived from it, so a test can name it.
pub fn payment_of(purchase: &PurchaseId) -> PaymentIntentId {
    let suffix = purchase.as_str().trim_start_matches("pur_");
    PaymentIntentId::new(format!("pi_{suffix}")).unwrap()
}

/// A new provider event id.
pub fn event_id() -> EventId {
    EventId::new(format!("evt_{}", PurchaseId::generate())).unwrap()
}

/// A succeeded event of `payment` naming `purchase`: `money` paid from `country`.
pub fn succeeded(
    purchase: &PurchaseId,
    payment: &PaymentIntentId,
    money: Money,
    country: &str,
) -> PaymentEvent {
    PaymentEvent {
        event_id: event_id(),
        kind: "payment_intent.succeeded".into(),
        payment_intent_id: payment.clone(),
        purchase_id: Some(purchase.clone()),
        payment: Payment::Succeeded {
            paid: Paid::new(money.minor_units().unwrap(), money.currency().code()),
            country: Some(country.parse().unwrap()),
        },
    }
}

/// Yen, 2 per coin: integers keep the fixtures readable.
pub fn yen(coins: u64) -> Money {
    Money::parse(&(coins * 2).to_string(), "JPY".parse().unwrap()).unwrap()
}

/// A JP web offer of `coins` at [`yen`] prices, tax included, as a quote reads back from
/// storage: any coin count, so the cases are not tied to the price book's packages and bounds.
pub fn priced(coins: u64) -> coins_rules::Quote {
    let gross = yen(coins).to_string();
    serde_json::from_value(serde_json::json!({
        "country": "JP", "channel": "web", "package_id": null, "currency": "JPY",
        "coins": coins, "bonus_coins": 0, "total_coins": coins,
        "price": {"currency": "JPY", "net": gross, "tax": "0", "gross": gross},
        "tax_inclusive": true, "price_book_version": "test-1",
    }))
    .expect("a consistent quote")
}

impl<S: Store> World<S> {
    pub fn new(store: S) -> Self {
        World {
            ledger: Ledger::with_config(store, test_config()),
        }
    }

    pub fn with_config(store: S, config: LedgerConfig) -> Self {
        World {
            ledger: Ledger::with_config(store, config),
        }
    }

    /// A saved JP web quote for `coins` at [`yen`] prices, valid 15 minutes from `now`.
    pub async fn quote(&self, buyer: &UserId, coins: u64, now: Timestamp) -> Quote {
        let quote = Quote::new(priced(coins), buyer, now);
        self.ledger.save_quote(&quote).await.expect("save quote");
        quote
    }

    /// A pending purchase of `coins` by a buyer in Tokyo, paired with its payment
    /// ([`payment_of`]).
    pub async fn pending_purchase(&self, buyer: &UserId, coins: u64, now: Timestamp) -> PurchaseId {
        let quote = self.quote(buyer, coins, now).await;
        let purchase = self
            .ledger
            .create_purchase(buyer, &quote.quote_id, &tokyo(), now, &fresh_key())
            .await
            .expect("create purchase")
            .purchase_id;
        self.ledger
            .attach_payment(&purchase, &payment_of(&purchase))
            .await
            .expect("attach the payment");
        purchase
    }

    /// The provider's succeeded event for a purchase's payment, paid as quoted from JP.
    pub fn paid(&self, purchase: &PurchaseId, coins: u64) -> PaymentEvent {
        succeeded(purchase, &payment_of(purchase), yen(coins), "JP")
    }

    /// Buys and pays `coins` at `now`: one credited lot.
    pub async fn buy(&self, buyer: &UserId, coins: u64, now: Timestamp) -> PurchaseId {
        let purchase = self.pending_purchase(buyer, coins, now).await;
        let outcome = self
            .ledger
            .apply_payment(&self.paid(&purchase, coins), now)
            .await
            .expect("apply payment");
        assert!(
            matches!(outcome, PaymentOutcome::Credited { .. }),
            "{outcome:?}"
        );
        purchase
    }

    pub async fn creator(&self, name: &str, now: Timestamp) -> UserId {
        let creator = user(name);
        self.ledger
            .enroll_creator(&creator, now)
            .await
            .expect("enroll");
        creator
    }

    /// `coins` roses (1 coin each) from `sender` to `recipient` during a live.
    pub fn gift_request(&self, sender: &UserId, recipient: &UserId, coins: u64) -> GiftRequest {
        let rose = "rose".parse().unwrap();
        let quantity = u32::try_from(coins).unwrap();
        GiftRequest {
            sender: sender.clone(),
            recipient: recipient.clone(),
            order: GiftCatalog::embedded().order(&rose, quantity).unwrap(),
            target: GiftTarget::new(TargetKind::Live, "live-1").unwrap(),
            sender_zone: tokyo(),
        }
    }

    pub async fn gift(
        &self,
        sender: &UserId,
        recipient: &UserId,
        coins: u64,
        now: Timestamp,
    ) -> Result<GiftReceipt, LedgerError> {
        self.ledger
            .send_gift(
                &self.gift_request(sender, recipient, coins),
                now,
                &fresh_key(),
            )
            .await
    }

    pub async fn balance(&self, owner: &UserId, now: Timestamp) -> u64 {
        self.ledger
            .wallet(owner, &tokyo(), now)
            .await
            .expect("wallet")
            .balance
    }

    /// Scans everything and fails the test on any broken invariant.
    pub async fn assert_conserved(&self) -> AuditReport {
        match self.ledger.conservation_check().await {
            Ok(report) => report,
            Err(error) => panic!("{error}"),
        }
    }

    /// What the stream consumer does: every gift entry in the table counted into its creator's
    /// earnings (counting is idempotent, so entries counted before are skipped).
    pub async fn count_gifts(&self, now: Timestamp) -> coins_ledger::Counted {
        let gifts = self.gift_entries().await;
        self.ledger
            .count_gifts(&gifts, now)
            .await
            .expect("count gifts")
    }

    /// Every gift entry in the table, as the stream delivers them.
    pub async fn gift_entries(&self) -> Vec<GiftRecord> {
        self.ledger
            .store()
            .scan_all()
            .await
            .expect("scan")
            .into_iter()
            .filter_map(|record| GiftRecord::try_from(record).ok())
            .collect()
    }

    /// Sets a payout account and makes `diamonds` available: gifts from a fresh fan, counted,
    /// and their hold over at the returned time.
    pub async fn creator_with_available(
        &self,
        name: &str,
        diamonds: u64,
        now: Timestamp,
    ) -> (UserId, Timestamp) {
        let creator = self.creator(name, now).await;
        self.ledger
            .set_payout_account_by(
                &creator,
                &ConnectedAccountId::new("acct_1Creator").unwrap(),
                None,
                now,
            )
            .await
            .expect("set the payout account");
        let fan = user(&format!("fan-of-{name}"));
        self.buy(&fan, diamonds, now).await;
        let mut left = diamonds;
        while left > 0 {
            // Roses, at most the catalog's 9,999 a gift.
            let roses = left.min(9_999);
            self.gift(&fan, &creator, roses, now).await.expect("gift");
            left -= roses;
        }
        self.count_gifts(now).await;
        (creator, now + SignedDuration::from_hours(24 * 8))
    }

    /// The creator's diamonds earned, once the stream has counted every gift.
    pub async fn diamonds(&self, creator: &UserId, now: Timestamp) -> u64 {
        self.count_gifts(now).await;
        self.ledger
            .earnings(creator, now)
            .await
            .expect("earnings")
            .diamonds_earned
    }
}
