//! App-store purchases (#18): a fan buys coins in the app, the store confirms the transaction,
//! and the app redeems it (`credit_store_purchase`), retried and replayed with its key, and
//! redeemed again under a new key (a reinstall, a restore). The store's word on a transaction
//! (a refund, its reversal, a refund again) is a notification signed at a moment of its own and
//! delivered like any webhook (late, twice, reordered, before or after the redemption), applied
//! as the `stores` function does: kept against a transaction not credited yet
//! (`record_store_word`), else reversing the purchase or undoing that.
//!
//! Invariants: a store transaction is credited at most once (one purchase, one `newly` answer);
//! never while the latest word recorded before it (by signing time) is a refund (the row's own
//! word, and the simulator's record of the words); a refund after the credit reverses it once
//! (net reversals 0 or 1, the purchase's reversed coins all or none); after the drain, a
//! credited transaction stands as the store's latest word says.

use std::collections::BTreeMap;

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, PurchaseId, ReversalRef};
use coins_ledger::StoreWordOutcome;
use coins_ledger::table::{PurchaseRecord, PurchaseStatus, Record, StoreTransactionRecord};
use coins_ledger::{LedgerError, ReversalEvent, StoreCredit, StorePurchase, StoreWord};
use coins_rules::{Channel, PriceBook, QuoteItem};
use jiff::{SignedDuration, Timestamp};

use crate::check::ensure;
use crate::ops::{Answer, Ask, Ctx, Request, Webhook};
use crate::sim::{Action, Sim};
use crate::world::PACKAGES;

/// What the store says of a transaction, and how often (per mille): the words in signing order.
const STORE_STORIES: [(&[bool], u32); 5] = [
    (&[], 700),
    (&[true], 150),
    (&[true, false], 90),
    (&[true, false, true], 40),
    // A reversal with no refund the app saw (the refund's notification lost for good).
    (&[false], 20),
];

/// One store transaction of the world.
pub struct StoreTxn {
    pub user: usize,
    pub purchase: StorePurchase,
    /// The store's words, in signing order.
    pub words: Vec<Word>,
    /// The purchase its credit made, as an answer told.
    pub credited: Option<PurchaseId>,
    /// The key whose answer said it credited the transaction.
    pub newly: Option<IdempotencyKey>,
}

/// One word of the store on a transaction.
pub struct Word {
    pub revoked: bool,
    pub stated_at: Timestamp,
    pub event: EventId,
    /// When (the step's instant) the ledger kept it as the transaction's word: before the credit
    /// (recorded, or stale), or after it (applied, or found nothing to change).
    pub kept_at: Option<Timestamp>,
}

impl Sim {
    /// A fan buys in the app; the store's words on it go out, each at a moment of its own;
    /// the app redeems it now or later (a retry's queue: or never, the app gone).
    pub fn store_buy(&mut self) -> Option<Action> {
        let user = self.rng.index(self.users.len());
        let ios = self.rng.chance(500);
        let (channel, units) = if ios {
            (Channel::Ios, 1)
        } else {
            (Channel::Android, self.rng.range(1..=3) as u32)
        };
        let weights: Vec<u32> = PACKAGES.iter().map(|(_, weight)| *weight).collect();
        let package = PACKAGES[self.rng.weighted(&weights)].0;
        let one = PriceBook::embedded()
            .quote(
                self.users[user].billing,
                channel,
                QuoteItem::Package(package.parse().expect("a package")),
            )
            .ok()?;
        let priced = one.times(units).ok()?;
        let txn = self.store_txns.len();
        let id = if ios {
            format!("appstore-{}", 2_000_000_000_000_000u64 + txn as u64)
        } else {
            format!("play-GPA.{txn}")
        };
        let transaction = PaymentIntentId::new(id).expect("a transaction id");
        self.store_txn_names.insert(transaction.to_string(), txn);
        let purchase = StorePurchase {
            user_id: self.users[user].id.clone(),
            zone: self.users[user].zone.clone(),
            priced,
            transaction,
            consumption_consent: self.rng.chance(500),
        };
        self.store_txns.push(StoreTxn {
            user,
            purchase,
            words: Vec::new(),
            credited: None,
            newly: None,
        });
        self.store_words(txn);
        let action = self.redeem_request(txn);
        if self.rng.chance(400) {
            // The app redeems it at its next launch.
            if let Action::Ask(request) = action {
                self.waiting.push(*request);
            }
            return None;
        }
        Some(action)
    }

    /// The store's words on a new transaction, signed minutes apart and each delivered some
    /// steps later (so in any order, and before or after the redemption).
    fn store_words(&mut self, txn: usize) {
        let weights: Vec<u32> = STORE_STORIES.iter().map(|(_, weight)| *weight).collect();
        let story = STORE_STORIES[self.rng.weighted(&weights)].0;
        let mut stated_at = self.now;
        for &revoked in story {
            stated_at += SignedDuration::from_mins(self.rng.range(1..=600) as i64);
            let word = StoreWord {
                transaction: self.store_txns[txn].purchase.transaction.clone(),
                event_id: self.event_id(),
                kind: if revoked { "REFUND" } else { "REFUND_REVERSED" }.into(),
                revoked,
                stated_at,
            };
            self.store_txns[txn].words.push(Word {
                revoked,
                stated_at,
                event: word.event_id.clone(),
                kept_at: None,
            });
            let webhook = Webhook::Store { word, txn };
            match self.rng.below(3) {
                0 => self.push_webhook(webhook),
                _ => {
                    let due = self.step + self.rng.range(0..=30);
                    self.webhooks.push_at(webhook, due);
                }
            }
        }
        let said: Vec<&str> = story
            .iter()
            .map(|&revoked| if revoked { "refund" } else { "reversal" })
            .collect();
        self.trace(format!("store: s{txn} bought, says {said:?}"));
    }

    fn redeem_request(&mut self, txn: usize) -> Action {
        let purchase = Box::new(self.store_txns[txn].purchase.clone());
        let user = self.store_txns[txn].user;
        self.request(user, None, Ask::Redeem { txn, purchase })
    }

    /// A transaction redeemed again under a new key (the app reinstalled, purchases restored).
    pub fn redeem_again(&mut self) -> Option<Action> {
        if self.store_txns.is_empty() {
            return None;
        }
        let txn = self.rng.index(self.store_txns.len());
        Some(self.redeem_request(txn))
    }

    /// A redemption refused as revoked: only once the store's refund was kept against it.
    pub fn revoked_refusal_allowed(&self, txn: usize) -> bool {
        let transaction = &self.store_txns[txn].purchase.transaction;
        let kept = matches!(
            self.peek(&coins_ledger::table::keys::store_transaction(transaction)),
            Some(Record::StoreTransaction(StoreTransactionRecord {
                revocation: Some(_),
                ..
            }))
        );
        kept && self.store_txns[txn].words.iter().any(|word| word.revoked)
    }

    /// A redemption's answer: one purchase per transaction, one key crediting it, and never
    /// while the latest word kept before the credit committed was a refund.
    pub fn redeemed(
        &mut self,
        request: &Request,
        txn: usize,
        credit: &StoreCredit,
    ) -> Result<String, String> {
        let expected = self.store_txns[txn].purchase.priced.total_coins();
        ensure(credit.total_coins == expected, || {
            format!("s{txn} credited {} coins of {expected}", credit.total_coins)
        })?;
        self.checked("a store transaction is credited at most once");
        if credit.newly_credited {
            self.checked("a store transaction is never credited after its refund was recorded");
        }
        // When the credit committed (its answer may come steps later, a lost one replayed).
        let credited_at = match self.peek(&coins_ledger::table::keys::purchase(&credit.purchase_id))
        {
            Some(Record::Purchase(purchase)) => purchase.credited_at,
            _ => None,
        };
        let entry = &mut self.store_txns[txn];
        if let Some(first) = &entry.credited {
            ensure(*first == credit.purchase_id, || {
                format!("s{txn} credited as {first}, then as {}", credit.purchase_id)
            })?;
        }
        entry.credited = Some(credit.purchase_id.clone());
        if credit.newly_credited {
            if let Some(first) = &entry.newly {
                ensure(*first == request.key, || {
                    format!("s{txn} newly credited under {first}, then {}", request.key)
                })?;
            }
            entry.newly = Some(request.key.clone());
            let latest = entry
                .words
                .iter()
                .filter(|word| word.kept_at.zip(credited_at).is_some_and(|(at, c)| at < c))
                .max_by_key(|word| word.stated_at);
            if let Some(word) = latest.filter(|word| word.revoked) {
                return Err(format!(
                    "s{txn} credited (r{}) after its refund {} (signed {}) was kept",
                    request.name, word.event, word.stated_at
                ));
            }
        }
        self.store_purchase_names
            .insert(credit.purchase_id.clone(), txn);
        let again = if credit.newly_credited { "" } else { " again" };
        Ok(format!("s{txn} credited{again}, {expected} coins"))
    }

    /// A store word's outcome: at most one effect per event; a kept word noted.
    pub fn store_hooked(
        &mut self,
        index: usize,
        word: &StoreWord,
        txn: usize,
        outcome: &str,
    ) -> Result<(), String> {
        let said = if word.revoked { "refund" } else { "reversal" };
        let event = word.event_id.clone();
        self.trace(format!(
            "  op{index} {event} store {said} of s{txn}: {outcome}"
        ));
        let now = self.now;
        // A replay: the first delivery was kept, its answer lost (a crash after the commit);
        // its record says so (noted now, later than it was: never a false alarm).
        let recorded = self.peek(&coins_ledger::table::keys::payment_event(&event));
        if outcome == "replayed" && !matches!(recorded, Some(Record::PaymentEvent(_))) {
            return Err(format!("{event} replayed, not recorded"));
        }
        let entry = &mut self.store_txns[txn];
        // Every outcome but an error keeps the word (stale ones only as seen): before the
        // credit recorded or stale, after it applied or found nothing to change.
        let word = entry.words.iter_mut().find(|kept| kept.event == event);
        word.expect("a word of the story")
            .kept_at
            .get_or_insert(now);
        let effect = !matches!(outcome, "replayed" | "ignored" | "stale");
        if effect {
            if let Some(first) = self.events.get(&event) {
                return Err(format!(
                    "event {event} had two effects: {first}, then {outcome}"
                ));
            }
            self.events.insert(event, outcome.to_owned());
        }
        Ok(())
    }
}

/// The app's redemption, as `POST /v1/purchases/app-store` (or Google Play) makes it once the
/// store verified the transaction.
pub async fn redeem(
    ctx: &Ctx,
    request: &Request,
    purchase: &StorePurchase,
) -> Result<Answer, LedgerError> {
    ctx.call("credit_store_purchase");
    ctx.ledger
        .credit_store_purchase(purchase, ctx.now, Some(&request.key))
        .await
        .map(Answer::Redeemed)
}

/// A store's refund or its reversal, as the `stores` function applies it: kept against a
/// transaction not credited, else applied to its purchase.
pub async fn store_word(ctx: &Ctx, word: &StoreWord) -> Result<String, LedgerError> {
    ctx.call("record_store_word");
    let purchase_id = match ctx.ledger.record_store_word(word, ctx.now).await? {
        StoreWordOutcome::Credited(purchase_id) => purchase_id,
        other => return Ok(other.name().to_owned()),
    };
    let event = ReversalEvent {
        event_id: word.event_id.clone(),
        kind: word.kind.clone(),
        purchase_id,
        by: ReversalRef::new(word.transaction.as_str()).expect("a reference"),
        share: None,
    };
    ctx.call(if word.revoked {
        "reverse_purchase"
    } else {
        "undo_reversal"
    });
    let outcome = ctx
        .ledger
        .apply_store_word(&word.transaction, &event, word.revoked, ctx.now)
        .await?;
    Ok(outcome.name().to_owned())
}

/// The store transactions' rows and purchases in the table.
struct StoreTable<'r> {
    rows: Vec<&'r StoreTransactionRecord>,
    /// Purchases by the transaction that paid them.
    purchases: BTreeMap<&'r str, Vec<&'r PurchaseRecord>>,
    /// Each applied event's outcome, as its record keeps it (written with its effect: a crash
    /// after the commit hides it from the answer, not from here).
    events: BTreeMap<&'r EventId, &'r str>,
}

impl<'r> StoreTable<'r> {
    fn of(sim: &Sim, records: &'r [Record]) -> StoreTable<'r> {
        let mut table = StoreTable {
            rows: Vec::new(),
            purchases: BTreeMap::new(),
            events: BTreeMap::new(),
        };
        for record in records {
            match record {
                Record::StoreTransaction(row) => table.rows.push(row),
                Record::PaymentEvent(event) => {
                    table.events.insert(&event.event_id, &event.outcome);
                }
                Record::Purchase(purchase) => {
                    let paid = purchase.payment_intent_id.as_ref().map(|id| id.as_str());
                    if let Some(paid) = paid.filter(|id| sim.store_txn_names.contains_key(*id)) {
                        table.purchases.entry(paid).or_default().push(purchase);
                    }
                }
                _ => {}
            }
        }
        table
    }
}

impl Sim {
    /// At any instant: one purchase per store transaction, the row naming it; no row both
    /// credited and refunded by the word it kept; a purchase reversed wholly or not at all.
    pub fn store_checks(&self, records: &[Record]) -> Result<(), String> {
        let table = StoreTable::of(self, records);
        self.checked("a store transaction has at most one purchase, its row naming it");
        self.checked("no store transaction credited over a kept refund");
        self.checked("a store purchase is reversed wholly or not at all");
        for (transaction, purchases) in &table.purchases {
            ensure(purchases.len() == 1, || {
                format!("{transaction} has {} purchases", purchases.len())
            })?;
            let purchase = purchases[0];
            ensure(
                purchase.reversed_coins == 0 || purchase.reversed_coins == purchase.total_coins,
                || {
                    format!(
                        "{transaction}'s purchase reversed {} of {} coins",
                        purchase.reversed_coins, purchase.total_coins
                    )
                },
            )?;
        }
        for row in &table.rows {
            let transaction = row.transaction.as_str();
            let purchase = table.purchases.get(transaction).map(|p| &p[0].purchase_id);
            ensure(row.purchase_id.as_ref() == purchase, || {
                format!(
                    "{transaction}'s row names {:?}, its purchase is {purchase:?}",
                    row.purchase_id
                )
            })?;
            // A refund kept on a credited row came after the credit: it is applied (the
            // purchase reversed) or still to be (its event not recorded: its redelivery
            // applies it). One recorded before the credit would have refused the credit.
            let refund = row.revocation.as_ref().filter(|word| word.revoked);
            if let (Some(_), Some(word), Some(purchases)) =
                (&row.purchase_id, refund, table.purchases.get(transaction))
            {
                let applied = purchases[0].status == PurchaseStatus::Reversed;
                let to_apply = !table.events.contains_key(&word.event_id);
                ensure(applied || to_apply, || {
                    format!("{transaction} credited over the refund it kept")
                })?;
            }
        }
        Ok(())
    }

    /// After the drain (every word delivered): a credited transaction's purchase reversed by
    /// its store's refunds once, net of their undoings, as its status says, and as the store's
    /// latest word (by signing time) says, whatever order the words arrived in.
    pub fn store_final(&mut self, records: &[Record]) -> Result<(), String> {
        let table = StoreTable::of(self, records);
        self.checked("a store refund after the credit reverses it once");
        let mut against = Vec::new();
        for (txn, entry) in self.store_txns.iter().enumerate() {
            let transaction = entry.purchase.transaction.as_str();
            let Some(purchase) = table.purchases.get(transaction).map(|p| p[0]) else {
                continue;
            };
            let outcomes: Vec<&str> = entry
                .words
                .iter()
                .filter_map(|word| table.events.get(&word.event).copied())
                .collect();
            let net = outcomes.iter().filter(|&&o| o == "reversed").count() as i64
                - outcomes.iter().filter(|&&o| o == "reversal_undone").count() as i64;
            let reversed = purchase.status == PurchaseStatus::Reversed;
            ensure(net == i64::from(reversed), || {
                format!(
                    "s{txn} ({transaction}) is {:?}, its words' outcomes {outcomes:?}",
                    purchase.status
                )
            })?;
            let latest = entry.words.iter().max_by_key(|word| word.stated_at);
            if reversed != latest.is_some_and(|word| word.revoked) {
                let words: Vec<String> = entry
                    .words
                    .iter()
                    .map(|word| {
                        let said = if word.revoked { "refund" } else { "reversal" };
                        format!("{} {said} signed {}", word.event, word.stated_at)
                    })
                    .collect();
                against.push(format!(
                    "s{txn} is {:?} against the store's latest word: {words:?}",
                    purchase.status
                ));
            }
        }
        self.checked("a credited store purchase stands as the store's latest word says");
        ensure(against.is_empty(), || against.join("; "))
    }

    /// A lot marker's purchase in the simulator's names: a web purchase's, or a store
    /// transaction's (its credit's answer may have been lost: found by its transaction).
    pub fn marker_name(&self, purchase: &PurchaseId) -> (usize, usize) {
        if let Some(&name) = self.purchase_names.get(purchase) {
            return (0, name);
        }
        if let Some(&txn) = self.store_purchase_names.get(purchase) {
            return (1, txn);
        }
        let Some(Record::Purchase(record)) =
            self.peek(&coins_ledger::table::keys::purchase(purchase))
        else {
            panic!("lot marker of {purchase}, which is no purchase");
        };
        let paid = record
            .payment_intent_id
            .expect("a credited purchase is paid");
        (1, self.store_txn_names[paid.as_str()])
    }
}
