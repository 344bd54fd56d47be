//! What the simulated world does: which operation comes next, and the requests of fans and
//! creators (bought, gifted, refunded, paid out, retried, replayed, a key reused) and the
//! provider's events (payments that succeed, fail, come from elsewhere, twice or late; disputes
//! opened and won), each drawn from the seed; app-store purchases and their store's words are
//! `store_ops`'.

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, ReversalRef, UserId};
use coins_ledger::domain::Wallet;
use coins_ledger::table::{EarningsRecord, Record, keys};
use coins_ledger::{Paid, Payment, PaymentEvent, Quote};
use coins_rules::payouts::MIN_PAYOUT_DIAMONDS;
use coins_rules::{Channel, PriceBook, QuoteItem};
use jiff::SignedDuration;

use crate::ops::{Ask, Request, Stream, Webhook};
use crate::sim::{Action, Sim};

/// Where users live and are billed (a few travel: a zone of one country, a card of another).
pub const PLACES: [(&str, &str); 10] = [
    ("Asia/Tokyo", "JP"),
    ("America/Los_Angeles", "US-CA"),
    ("America/Chicago", "US-AL"),
    ("Europe/Berlin", "DE"),
    ("Europe/London", "GB"),
    ("Asia/Kuwait", "KW"),
    ("Asia/Seoul", "KR"),
    ("Australia/Sydney", "AU"),
    ("America/Sao_Paulo", "BR"),
    ("Pacific/Kiritimati", "JP"),
];

/// Web packages, and how often each is bought: big ones too, so creators reach a payout.
pub const PACKAGES: [(&str, u32); 7] = [
    ("coins_70", 1),
    ("coins_350", 2),
    ("coins_700", 3),
    ("coins_1400", 3),
    ("coins_3500", 3),
    ("coins_7000", 2),
    ("coins_17500", 2),
];

/// The catalog's gifts and their coins.
pub const GIFTS: [(&str, u64); 10] = [
    ("rose", 1),
    ("finger_heart", 5),
    ("perfume", 20),
    ("doughnut", 30),
    ("hand_hearts", 100),
    ("corgi", 299),
    ("money_gun", 500),
    ("galaxy", 1000),
    ("lion", 29999),
    ("universe", 44999),
];

/// How payments go, and how often (per mille).
pub const PAYMENT_STORIES: [(&str, u32); 8] = [
    ("succeeded", 680),
    ("failed, then succeeded", 60),
    ("failed", 40),
    ("paid from another country", 50),
    ("paid another amount", 30),
    ("paid after the purchase expired", 40),
    ("paid twice", 60),
    ("never paid", 40),
];

/// A client retries a request for at most this long: less than the idempotency records' 24
/// hours, after which a key is free again and a retry would be a new request.
pub const CLIENT_PATIENCE: SignedDuration = SignedDuration::from_hours(20);

/// A kind of operation, as `Sim::choose` draws it.
#[derive(Clone, Copy)]
enum Choice {
    Buy,
    Gift,
    Refund,
    Payout,
    /// A request that failed, again with its key.
    Retry,
    /// A request answered before, again with its key.
    Replay,
    /// A key answered before, with another request.
    ReuseKey,
    /// The provider opens a dispute.
    Dispute,
    Webhook,
    /// A batch of at most this many records to a stream consumer.
    Deliver(Stream, u64),
    Sweep,
    /// A consumer's scheduled sweep of what it still owes.
    Owed(Stream),
    Lift,
    Limit,
    /// A purchase in the app, its store's words, its redemption (`store_ops`).
    StoreBuy,
    /// A store transaction redeemed again under a new key.
    Redeem,
}

impl Sim {
    /// The next operation, or none if the one drawn has nothing to act on.
    pub fn choose(&mut self) -> Option<Action> {
        let step = self.step;
        let due = |stream: Stream| self.streams[stream as usize].has_due(step);
        let some = |present: bool, weight: u32| if present { weight } else { 0 };
        // How often each kind of operation comes, out of those that can happen now.
        let choices = [
            (14, Choice::Buy),
            (30, Choice::Gift),
            (6, Choice::Refund),
            (4, Choice::Payout),
            (some(!self.waiting.is_empty(), 10), Choice::Retry),
            (some(!self.answered.is_empty(), 4), Choice::Replay),
            (some(!self.answered.is_empty(), 1), Choice::ReuseKey),
            (1, Choice::Dispute),
            (some(self.webhooks.has_due(step), 40), Choice::Webhook),
            (
                some(due(Stream::Earnings), 12),
                Choice::Deliver(Stream::Earnings, 20),
            ),
            (
                some(due(Stream::RefundDispatch), 6),
                Choice::Deliver(Stream::RefundDispatch, 4),
            ),
            (
                some(due(Stream::PayoutDispatch), 6),
                Choice::Deliver(Stream::PayoutDispatch, 4),
            ),
            (
                some(due(Stream::RefundExpiry), 5),
                Choice::Deliver(Stream::RefundExpiry, 6),
            ),
            (1, Choice::Sweep),
            (2, Choice::Owed(Stream::Earnings)),
            (1, Choice::Owed(Stream::RefundDispatch)),
            (1, Choice::Owed(Stream::PayoutDispatch)),
            (2, Choice::Lift),
            (1, Choice::Limit),
            (6, Choice::StoreBuy),
            (some(!self.store_txns.is_empty(), 2), Choice::Redeem),
        ];
        let weights: Vec<u32> = choices.iter().map(|(weight, _)| *weight).collect();
        match choices[self.rng.weighted(&weights)].1 {
            Choice::Buy => Some(self.buy()),
            Choice::Gift => self.gift(),
            Choice::Refund => self.refund(),
            Choice::Payout => self.payout(),
            Choice::Retry => self.retry(),
            Choice::Replay => self.replay(false),
            Choice::ReuseKey => self.replay(true),
            Choice::Dispute => {
                self.dispute();
                None
            }
            Choice::Webhook => {
                let mut stats = self.stats.lock().expect("one thread per seed");
                let hook = self
                    .webhooks
                    .take(step, 1, &mut self.rng, &mut stats.faults);
                hook.into_iter().next().map(Action::Hook)
            }
            Choice::Deliver(stream, max) => self.deliver(stream, max),
            Choice::Sweep => Some(Action::Sweep),
            Choice::Owed(stream) => Some(Action::Owed(stream, false)),
            Choice::Lift => self.lift(),
            Choice::Limit => {
                let user = self.rng.index(self.users.len());
                let coins = self.rng.chance(700).then(|| self.rng.range(100..=50_000));
                Some(Action::Limit(user, coins))
            }
            Choice::StoreBuy => self.store_buy(),
            Choice::Redeem => self.redeem_again(),
        }
    }

    fn deliver(&mut self, stream: Stream, max: u64) -> Option<Action> {
        let size = self.rng.range(1..=max) as usize;
        let mut stats = self.stats.lock().expect("one thread per seed");
        let batch =
            self.streams[stream as usize].take(self.step, size, &mut self.rng, &mut stats.faults);
        (!batch.is_empty()).then_some(Action::Consume(stream, batch))
    }

    pub fn request(&mut self, user: usize, caller: Option<UserId>, ask: Ask) -> Action {
        let name = self.next_request;
        self.next_request += 1;
        let user = &self.users[user];
        Action::Ask(Box::new(Request {
            name,
            caller: caller.unwrap_or_else(|| user.id.clone()),
            user: user.id.clone(),
            zone: user.zone.clone(),
            key: IdempotencyKey::new(format!("key-{name}")).expect("a key"),
            ask,
            since: self.now,
            replay: false,
        }))
    }

    fn buy(&mut self) -> Action {
        let user = self.rng.index(self.users.len());
        let weights: Vec<u32> = PACKAGES.iter().map(|(_, weight)| *weight).collect();
        let package = PACKAGES[self.rng.weighted(&weights)].0;
        let priced = PriceBook::embedded()
            .quote(
                self.users[user].billing,
                Channel::Web,
                QuoteItem::Package(package.parse().expect("a package")),
            )
            .expect("every place prices every package");
        let quote = Quote::new(priced, &self.users[user].id, self.now);
        let payment = PaymentIntentId::new(format!("pi_{}", self.next_request)).expect("an id");
        let ask = Ask::Buy {
            quote: Box::new(quote),
            payment,
        };
        self.request(user, None, ask)
    }

    fn wallet(&self, user: &UserId) -> Option<Wallet> {
        match self.peek(&keys::wallet(user)) {
            Some(Record::Wallet(wallet)) => Some(wallet),
            _ => None,
        }
    }

    /// A gift the sender can mostly afford (the app shows the balance): a share of it, in the
    /// biggest gift that fits; now and then a little more than the balance.
    fn gift(&mut self) -> Option<Action> {
        let sender = self.rng.index(self.users.len());
        let creators: Vec<usize> = (0..self.users.len())
            .filter(|&index| self.users[index].creator && index != sender)
            .collect();
        if creators.is_empty() {
            return None;
        }
        let recipient = self.users[*self.rng.pick(&creators)].id.clone();
        let balance = self
            .wallet(&self.users[sender].id)
            .map_or(0, |wallet| wallet.balance);
        // A fan with nothing to spend mostly buys first.
        if balance == 0 && !self.rng.chance(100) {
            return None;
        }
        let target = if balance == 0 || self.rng.chance(50) {
            balance + self.rng.range(1..=100)
        } else if self.rng.chance(300) {
            self.rng.range(1..=balance.min(50))
        } else {
            self.rng.range(1..=balance)
        };
        let (gift, coins) = GIFTS
            .iter()
            .rev()
            .find(|(_, coins)| *coins <= target)
            .copied()
            .unwrap_or(GIFTS[0]);
        let quantity = (target / coins).clamp(1, 9_999) as u32;
        let ask = Ask::Gift {
            recipient,
            gift,
            quantity,
        };
        Some(self.request(sender, None, ask))
    }

    /// A refund of one of the user's purchases (mostly a recent one), by the user or support.
    fn refund(&mut self) -> Option<Action> {
        if self.purchases.is_empty() {
            return None;
        }
        let recent: Vec<usize> = (0..self.purchases.len())
            .filter(|&index| {
                self.now.duration_since(self.purchases[index].bought_at)
                    < SignedDuration::from_hours(16 * 24)
            })
            .collect();
        let purchase = if !recent.is_empty() && self.rng.chance(800) {
            *self.rng.pick(&recent)
        } else {
            self.rng.index(self.purchases.len())
        };
        let admin = self.rng.chance(150);
        let caller = admin.then(|| self.admin.clone());
        let ask = Ask::Refund {
            purchase,
            purchase_id: self.purchases[purchase].id.clone(),
            admin,
        };
        let user = self.purchases[purchase].user;
        Some(self.request(user, caller, ask))
    }

    /// A payout of the creator's available diamonds (what the earnings page shows), now and
    /// then more than that or less than the minimum.
    fn payout(&mut self) -> Option<Action> {
        let creators: Vec<usize> = (0..self.users.len())
            .filter(|&index| self.users[index].creator)
            .collect();
        let creator = *self.rng.pick(&creators);
        let available = match self.peek(&keys::earnings(&self.users[creator].id)) {
            Some(Record::Earnings(earnings)) => EarningsRecord::available(&earnings, self.now),
            _ => 0,
        };
        let diamonds = if available >= MIN_PAYOUT_DIAMONDS && self.rng.chance(900) {
            self.rng.range(MIN_PAYOUT_DIAMONDS..=available)
        } else if self.rng.chance(200) {
            self.rng.range(1..=MIN_PAYOUT_DIAMONDS * 2)
        } else {
            return None;
        };
        Some(self.request(creator, None, Ask::Payout { diamonds }))
    }

    /// A request that failed or timed out, sent again with its key: by a client still
    /// patient (past a day the key would be free again, and the retry a new request).
    fn retry(&mut self) -> Option<Action> {
        let now = self.now;
        self.waiting
            .retain(|request| now.duration_since(request.since) < CLIENT_PATIENCE);
        if self.waiting.is_empty() {
            return None;
        }
        let index = self.rng.index(self.waiting.len());
        Some(Action::Ask(Box::new(self.waiting.swap_remove(index))))
    }

    /// A request answered before, sent again with its key: as it was (a replay), or with
    /// another body (a key reused by mistake).
    fn replay(&mut self, changed: bool) -> Option<Action> {
        let now = self.now;
        self.answered
            .retain(|request| now.duration_since(request.since) < CLIENT_PATIENCE);
        if self.answered.is_empty() {
            return None;
        }
        let index = self.rng.index(self.answered.len());
        let mut request = self.answered[index].clone();
        request.replay = true;
        if changed {
            match &mut request.ask {
                Ask::Gift { quantity, .. } => *quantity = *quantity % 9_999 + 1,
                Ask::Payout { diamonds } => *diamonds += 1,
                Ask::Buy { .. } | Ask::Refund { .. } | Ask::Redeem { .. } => return None,
            }
        }
        Some(Action::Ask(Box::new(request)))
    }

    /// The provider opens a dispute on a charged payment; it may be won days later.
    fn dispute(&mut self) {
        let charged: Vec<usize> = {
            let provider = self.provider.lock().expect("one thread per seed");
            (0..self.purchases.len())
                .filter(|&index| {
                    let purchase = &self.purchases[index];
                    !purchase.disputed && provider.charged.contains_key(purchase.payment.as_str())
                })
                .collect()
        };
        if charged.is_empty() {
            return;
        }
        let purchase = *self.rng.pick(&charged);
        self.purchases[purchase].disputed = true;
        let payment = self.purchases[purchase].payment.clone();
        let dispute = ReversalRef::new(format!("dp_{purchase}")).expect("a dispute id");
        let opened = Webhook::Dispute {
            event_id: self.event_id(),
            payment: payment.clone(),
            dispute: dispute.clone(),
            won: false,
            purchase,
        };
        self.trace(format!("provider: dispute of p{purchase} opened"));
        self.push_webhook(opened);
        if self.rng.chance(500) {
            let won = Webhook::Dispute {
                event_id: self.event_id(),
                payment,
                dispute,
                won: true,
                purchase,
            };
            let due = self.step + self.rng.range(3..=40);
            self.webhooks.push_at(won, due);
        }
    }

    fn lift(&mut self) -> Option<Action> {
        let restricted: Vec<usize> = (0..self.users.len())
            .filter(|&index| {
                self.wallet(&self.users[index].id)
                    .is_some_and(|wallet| wallet.restricted)
            })
            .collect();
        if restricted.is_empty() {
            return None;
        }
        Some(Action::Lift(*self.rng.pick(&restricted)))
    }

    pub fn event_id(&mut self) -> EventId {
        self.next_event += 1;
        EventId::new(format!("evt_{}", self.next_event)).expect("an event id")
    }

    pub fn push_webhook(&mut self, webhook: Webhook) {
        let mut stats = self.stats.lock().expect("one thread per seed");
        self.webhooks.push(
            webhook,
            self.step,
            &mut self.rng,
            &self.profile,
            &mut stats.faults,
        );
    }

    /// A new purchase's payment, told by the provider's webhooks: mostly paid as quoted,
    /// sometimes failed, from elsewhere, of another amount, late, twice, or never.
    pub fn pay(&mut self, purchase: usize) {
        let weights: Vec<u32> = PAYMENT_STORIES.iter().map(|(_, weight)| *weight).collect();
        let story = PAYMENT_STORIES[self.rng.weighted(&weights)].0;
        let (payment, amount) = {
            let purchase = &self.purchases[purchase];
            (purchase.payment.clone(), purchase.amount_minor)
        };
        let user = self.purchases[purchase].user;
        let home = self.users[user].billing.country();
        let elsewhere = if home.as_str() == "JP" { "DE" } else { "JP" };
        match story {
            "succeeded" => self.charge(purchase, &payment, amount, home.as_str(), None),
            "failed, then succeeded" => {
                self.fail(purchase, &payment);
                let later = self.step + self.rng.range(1..=4);
                self.charge(purchase, &payment, amount, home.as_str(), Some(later));
            }
            "failed" => self.fail(purchase, &payment),
            "paid from another country" => {
                self.charge(purchase, &payment, amount, elsewhere, None);
            }
            "paid another amount" => {
                self.charge(purchase, &payment, amount + 1, home.as_str(), None);
            }
            "paid after the purchase expired" => {
                let late = self.step + self.rng.range(8..=30);
                self.charge(purchase, &payment, amount, home.as_str(), Some(late));
            }
            "paid twice" => {
                self.charge(purchase, &payment, amount, home.as_str(), None);
                self.purchases[purchase].pays_twice = true;
            }
            _ => {}
        }
        self.trace(format!("provider: p{purchase} {story}"));
    }

    /// The provider charges `payment` and says so, now or at step `at`.
    pub fn charge(
        &mut self,
        purchase: usize,
        payment: &PaymentIntentId,
        amount_minor: i64,
        country: &str,
        at: Option<u64>,
    ) {
        self.provider
            .lock()
            .expect("one thread per seed")
            .charged
            .insert(payment.to_string(), amount_minor);
        let event = PaymentEvent {
            event_id: self.event_id(),
            kind: "payment_intent.succeeded".into(),
            payment_intent_id: payment.clone(),
            purchase_id: Some(self.purchases[purchase].id.clone()),
            payment: Payment::Succeeded {
                paid: Paid::new(amount_minor, &self.purchases[purchase].currency),
                country: Some(country.parse().expect("a country")),
            },
        };
        let webhook = Webhook::Payment {
            event,
            purchase,
            said: "succeeded",
        };
        match at {
            Some(step) => self.webhooks.push_at(webhook, step),
            None => self.push_webhook(webhook),
        }
    }

    fn fail(&mut self, purchase: usize, payment: &PaymentIntentId) {
        let event = PaymentEvent {
            event_id: self.event_id(),
            kind: "payment_intent.payment_failed".into(),
            payment_intent_id: payment.clone(),
            purchase_id: Some(self.purchases[purchase].id.clone()),
            payment: Payment::Failed,
        };
        self.push_webhook(Webhook::Payment {
            event,
            purchase,
            said: "failed",
        });
    }
}
