//! The operations of a step: what the simulated clients ask, what the provider's webhooks
//! deliver and what the stream's consumers do, each an async body over its own faulty ledger.
//!
//! The consumers mirror the functions (`earnings`, `refund-dispatch`, `payout-dispatch`,
//! `refund-expiry`) call for call, since the ledger crate cannot depend on them: claim, ask the
//! provider (an earlier refund or transfer found first), record the outcome, and report what
//! must be delivered again.

use std::sync::{Arc, Mutex};

use coins_ids::{EventId, IdempotencyKey, PaymentIntentId, ReversalRef, UserId};
use coins_ledger::store::Key;
use coins_ledger::table::{GiftRecord, PayoutStatus, RefundStatus};
use coins_ledger::{
    Claim, GiftReceipt, GiftRequest, Ledger, LedgerError, LotMarker, PaymentEvent, PaymentOutcome,
    PayoutClaim, PayoutView, PurchaseReceipt, RefundBy, RefundReceipt, ReversalEvent, Sent,
    StoreError, SweepReport, Transferred, by_creator,
};
use coins_rules::{GiftCatalog, GiftTarget, TargetKind, Zone};
use jiff::Timestamp;

use crate::faults::{FaultyStore, OpFaults};
use crate::provider::{Failed, Provider};
use crate::store_ops;

/// Provider calls of one delivery: the dispatchers' first try and their two backoff waits.
const SENDS_PER_DELIVERY: usize = 3;

/// What a client asks, once per idempotency key (retried and replayed with that key).
#[derive(Clone, Debug)]
pub struct Request {
    /// The simulator's name for it (`r17`).
    pub name: usize,
    /// Whose keys the key is among: the user, or the admin for an admin refund.
    pub caller: UserId,
    pub user: UserId,
    pub zone: Zone,
    pub key: IdempotencyKey,
    pub ask: Ask,
    /// When its client first sent it.
    pub since: Timestamp,
    /// A deliberate repeat of a request already answered.
    pub replay: bool,
}

#[derive(Clone, Debug)]
pub enum Ask {
    /// A quote, a purchase from it and its payment paired, as the purchase function does.
    Buy {
        quote: Box<coins_ledger::Quote>,
        payment: PaymentIntentId,
    },
    Gift {
        recipient: UserId,
        gift: &'static str,
        quantity: u32,
    },
    Refund {
        purchase: usize,
        purchase_id: coins_ids::PurchaseId,
        admin: bool,
    },
    Payout {
        diamonds: u64,
    },
    /// The app redeems a store transaction (`store_ops`).
    Redeem {
        txn: usize,
        purchase: Box<coins_ledger::StorePurchase>,
    },
}

impl Ask {
    /// The request as its idempotency key sees it: two asks with one key are the same request
    /// exactly when these are equal.
    pub fn body(&self) -> String {
        match self {
            Ask::Buy { quote, .. } => format!("buy {}", quote.quote_id),
            Ask::Gift {
                recipient,
                gift,
                quantity,
            } => gift_body(gift, *quantity, recipient),
            Ask::Refund { purchase, .. } => format!("refund p{purchase}"),
            Ask::Payout { diamonds } => format!("payout {diamonds}"),
            Ask::Redeem { txn, .. } => format!("redeem s{txn}"),
        }
    }

    /// The kind of request, as keys are counted.
    pub fn kind(&self) -> &'static str {
        match self {
            // A redemption's key may make a purchase too.
            Ask::Buy { .. } | Ask::Redeem { .. } => "buy",
            Ask::Gift { .. } => "gift",
            Ask::Refund { .. } => "refund",
            Ask::Payout { .. } => "payout",
        }
    }

    /// The request as the trace shows it (quote ids are random: the coins instead).
    pub fn describe(&self) -> String {
        match self {
            Ask::Buy { quote, .. } => format!("buys {} coins", quote.priced.total_coins()),
            Ask::Refund {
                purchase,
                admin: true,
                ..
            } => format!("refund p{purchase} by support"),
            other => other.body(),
        }
    }

    pub fn call(&self) -> &'static str {
        match self {
            Ask::Buy { .. } => "buy (save_quote, create_purchase, attach_payment)",
            Ask::Gift { .. } => "send_gift",
            Ask::Refund { admin: false, .. } => "refund_purchase (owner)",
            Ask::Refund { admin: true, .. } => "refund_purchase (admin)",
            Ask::Payout { .. } => "request_payout",
            Ask::Redeem { .. } => "credit_store_purchase",
        }
    }
}

/// A gift request's body: its gift entry names the same three things.
pub fn gift_body(gift: &str, quantity: u32, recipient: &UserId) -> String {
    format!("gift {gift}x{quantity} to {recipient}")
}

/// What a keyed request answered.
#[derive(Clone, PartialEq, Debug)]
pub enum Answer {
    Bought(PurchaseReceipt, PaymentIntentId),
    Gave(GiftReceipt),
    Refunded(RefundReceipt),
    PaidOut(PayoutView),
    Redeemed(coins_ledger::StoreCredit),
}

/// A provider event, as the `stripe-webhook` function hands it to the ledger.
#[derive(Clone, Debug)]
pub enum Webhook {
    Payment {
        event: PaymentEvent,
        purchase: usize,
        /// What the provider says happened (`succeeded`, `failed`), for the trace.
        said: &'static str,
    },
    Dispute {
        event_id: EventId,
        payment: PaymentIntentId,
        dispute: ReversalRef,
        /// Closed as won (undone) rather than opened.
        won: bool,
        purchase: usize,
    },
    /// A store's word on a transaction (`store_ops`).
    Store {
        word: coins_ledger::StoreWord,
        txn: usize,
    },
}

impl Webhook {
    pub fn event_id(&self) -> &EventId {
        match self {
            Webhook::Payment { event, .. } => &event.event_id,
            Webhook::Dispute { event_id, .. } => event_id,
            Webhook::Store { word, .. } => &word.event_id,
        }
    }
}

/// How an operation ended, for the simulator to check and carry forward.
pub enum Done {
    Asked(Box<Request>, Result<Answer, LedgerError>),
    Hooked(Webhook, Result<String, LedgerError>),
    /// A consumer's invocation: what it did, and what must be delivered again.
    Consumed {
        stream: Stream,
        summary: String,
        retry: Vec<Delivery>,
    },
    Swept(Result<SweepReport, LedgerError>),
    Admin(String, Result<(), LedgerError>),
    /// The operation saw the ledger break a rule.
    Broken(String),
}

/// The table's stream consumers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Stream {
    Earnings,
    RefundDispatch,
    PayoutDispatch,
    RefundExpiry,
}

/// One stream record a consumer acts on.
#[derive(Clone, Debug)]
pub enum Delivery {
    /// Boxed: an entry is several times the size of the other records.
    Gift(Box<GiftRecord>),
    Instruction(Key),
    Payout(Key),
    Marker(LotMarker),
}

/// What an operation runs with: its ledger over its own faulty store handle, the provider, the
/// step's instant.
pub struct Ctx {
    pub ledger: Ledger<FaultyStore>,
    pub op: Arc<OpFaults>,
    pub provider: Arc<Mutex<Provider>>,
    pub now: Timestamp,
}

impl Ctx {
    /// Counts one ledger call.
    pub fn call(&self, name: &str) {
        self.op.stats().ops.add(name, 1);
    }

    pub fn outcome(&self, call: &str, outcome: &str) {
        self.op
            .stats()
            .outcomes
            .add(format!("{call}: {outcome}"), 1);
    }

    fn provider(&self) -> std::sync::MutexGuard<'_, Provider> {
        self.provider.lock().expect("one thread per seed")
    }
}

/// The name of a ledger error in the summary.
pub fn error_name(error: &LedgerError) -> &'static str {
    match error {
        LedgerError::NotFound => "not_found",
        LedgerError::QuoteExpired { .. } => "quote_expired",
        LedgerError::InsufficientCoins { .. } => "insufficient_coins",
        LedgerError::SelfGift => "self_gift",
        LedgerError::RecipientNotCreator => "recipient_not_creator",
        LedgerError::CoinDebt { .. } => "coin_debt",
        LedgerError::AccountRestricted => "account_restricted",
        LedgerError::SpendingLimitReached(_) => "spending_limit_reached",
        LedgerError::AlreadyRefunded => "already_refunded",
        LedgerError::CoinsAlreadySpent => "coins_already_spent",
        LedgerError::RefundWindowClosed { .. } => "refund_window_closed",
        LedgerError::RefundViaStore => "refund_via_store",
        LedgerError::InsufficientDiamonds { .. } => "insufficient_diamonds",
        LedgerError::PayoutBelowMinimum { .. } => "payout_below_minimum",
        LedgerError::PayoutLimitReached => "payout_limit_reached",
        LedgerError::PayoutAccountMissing => "payout_account_missing",
        LedgerError::AlreadyCredited => "already_credited",
        LedgerError::PurchaseRevoked => "purchase_revoked",
        LedgerError::PurchaseNotCredited => "purchase_not_credited",
        LedgerError::IdempotencyKeyReused => "idempotency_key_reused",
        LedgerError::InvalidRequest(_) => "invalid_request",
        LedgerError::Contention => "contention (retryable)",
        LedgerError::Store(StoreError::Transient(_)) => "store refused (retryable)",
        LedgerError::Store(StoreError::Ambiguous(_)) => "store outcome unknown (retryable)",
        LedgerError::Store(_) => "store failure",
        LedgerError::Corrupt(_) => "corrupt",
        LedgerError::Overflow => "overflow",
    }
}

/// A client request, retried once at once on a retryable failure as a client library would
/// (a crash ends it: the caller saw a timeout, and may come back later with the same key).
pub async fn ask(ctx: Ctx, request: Box<Request>) -> Done {
    let call = request.ask.call();
    let mut answer = attempt(&ctx, &request).await;
    if answer.as_ref().is_err_and(LedgerError::is_retryable) {
        answer = attempt(&ctx, &request).await;
    }
    let outcome = match &answer {
        Ok(_) if request.replay => "ok (replayed)",
        Ok(_) => "ok",
        Err(error) => error_name(error),
    };
    ctx.outcome(call, outcome);
    Done::Asked(request, answer)
}

async fn attempt(ctx: &Ctx, request: &Request) -> Result<Answer, LedgerError> {
    let (ledger, now, key) = (&ctx.ledger, ctx.now, &request.key);
    match &request.ask {
        Ask::Buy { quote, payment } => {
            ctx.call("save_quote");
            ledger.save_quote(quote).await?;
            ctx.call("create_purchase");
            let receipt = ledger
                .create_purchase(&request.user, &quote.quote_id, &request.zone, now, key)
                .await?;
            ctx.call("attach_payment");
            let paired = ledger.attach_payment(&receipt.purchase_id, payment).await?;
            Ok(Answer::Bought(receipt, paired))
        }
        Ask::Gift {
            recipient,
            gift,
            quantity,
        } => {
            let order = GiftCatalog::embedded()
                .order(&gift.parse().expect("a catalog gift"), *quantity)
                .map_err(|error| LedgerError::InvalidRequest(error.to_string()))?;
            let gift = GiftRequest {
                sender: request.user.clone(),
                recipient: recipient.clone(),
                order,
                target: GiftTarget::new(TargetKind::Live, "live-1").expect("a target"),
                sender_zone: request.zone.clone(),
            };
            ctx.call("send_gift");
            ledger.send_gift(&gift, now, key).await.map(Answer::Gave)
        }
        Ask::Refund {
            purchase_id, admin, ..
        } => {
            let by = if *admin {
                RefundBy::Admin {
                    admin: request.caller.clone(),
                    reason: coins_rules::refund::AdminOverride::Defective,
                }
            } else {
                RefundBy::Owner(request.user.clone())
            };
            ctx.call("refund_purchase");
            ledger
                .refund_purchase(&by, purchase_id, now, Some(key))
                .await
                .map(Answer::Refunded)
        }
        Ask::Payout { diamonds } => {
            ctx.call("request_payout");
            ledger
                .request_payout(&request.user, *diamonds, now, key)
                .await
                .map(Answer::PaidOut)
        }
        Ask::Redeem { purchase, .. } => store_ops::redeem(ctx, request, purchase).await,
    }
}

/// A provider event, as `stripe-webhook` applies it (a dispute names only its payment).
pub async fn hook(ctx: Ctx, webhook: Webhook) -> Done {
    let outcome = match &webhook {
        Webhook::Payment { event, .. } => {
            ctx.call("apply_payment");
            let applied = ctx.ledger.apply_payment(event, ctx.now).await;
            applied.map(|outcome| match outcome {
                PaymentOutcome::Returned { reason, .. } => format!("returned ({})", reason.code()),
                other => other.name().to_owned(),
            })
        }
        Webhook::Dispute {
            event_id,
            payment,
            dispute,
            won,
            ..
        } => dispute_event(&ctx, event_id, payment, dispute, *won).await,
        Webhook::Store { word, .. } => store_ops::store_word(&ctx, word).await,
    };
    let call = match &webhook {
        Webhook::Payment { .. } => "apply_payment",
        Webhook::Dispute { won: false, .. } => "reverse_purchase",
        Webhook::Dispute { won: true, .. } => "undo_reversal",
        Webhook::Store { .. } => "record_store_word",
    };
    ctx.outcome(
        call,
        match &outcome {
            Ok(name) => name,
            Err(error) => error_name(error),
        },
    );
    Done::Hooked(webhook, outcome)
}

async fn dispute_event(
    ctx: &Ctx,
    event_id: &EventId,
    payment: &PaymentIntentId,
    dispute: &ReversalRef,
    won: bool,
) -> Result<String, LedgerError> {
    ctx.call("purchase_for_payment");
    let Some(purchase) = ctx.ledger.purchase_for_payment(payment).await? else {
        return Ok("no purchase has the payment".to_owned());
    };
    let event = ReversalEvent {
        event_id: event_id.clone(),
        kind: if won {
            "charge.dispute.closed"
        } else {
            "charge.dispute.created"
        }
        .into(),
        purchase_id: purchase.purchase_id,
        by: dispute.clone(),
        share: None,
    };
    let outcome = if won {
        ctx.call("undo_reversal");
        ctx.ledger.undo_reversal(&event, ctx.now).await?
    } else {
        ctx.call("reverse_purchase");
        ctx.ledger.reverse_purchase(&event, ctx.now).await?
    };
    Ok(outcome.name().to_owned())
}

/// One invocation of a stream consumer over a batch of records.
pub async fn consume(ctx: Ctx, stream: Stream, batch: Vec<Delivery>) -> Done {
    match stream {
        Stream::Earnings => count(ctx, batch).await,
        Stream::RefundDispatch | Stream::PayoutDispatch => dispatch(ctx, stream, batch).await,
        Stream::RefundExpiry => expire(ctx, batch).await,
    }
}

/// `earnings`: the batch's gift entries counted creator by creator; a creator whose count
/// failed has its records delivered again.
async fn count(ctx: Ctx, batch: Vec<Delivery>) -> Done {
    let gifts: Vec<GiftRecord> = batch
        .into_iter()
        .filter_map(|delivery| match delivery {
            Delivery::Gift(gift) => Some(*gift),
            _ => None,
        })
        .collect();
    let (mut counted, mut already, mut retry) = (0, 0, Vec::new());
    for (creator, group) in by_creator(&gifts, |gift| gift) {
        ctx.call("count_creator_gifts");
        match ctx
            .ledger
            .count_creator_gifts(creator, &group, ctx.now)
            .await
        {
            Ok(done) => {
                ctx.outcome("count_creator_gifts", "ok");
                counted += done.gifts;
                already += done.already;
            }
            Err(error) if error.is_retryable() => {
                ctx.outcome("count_creator_gifts", error_name(&error));
                let again = group.into_iter().cloned().map(Box::new);
                retry.extend(again.map(Delivery::Gift));
            }
            Err(error) => return Done::Broken(format!("counting gifts of {creator}: {error}")),
        }
    }
    Done::Consumed {
        stream: Stream::Earnings,
        summary: format!(
            "{} gift entries: {counted} counted, {already} already",
            gifts.len()
        ),
        retry,
    }
}

/// What became of one instruction or payout in a delivery, in words for the trace.
enum Dispatched {
    Finished(String),
    Retry(String),
}

/// `refund-dispatch` and `payout-dispatch`: claim, send, record the outcome. A send with no
/// answer (the provider down, or its answer lost) leaves the item pending, to be delivered
/// again: only the provider's word (done, or refused) finishes it.
async fn dispatch(ctx: Ctx, stream: Stream, batch: Vec<Delivery>) -> Done {
    let (mut said, mut retry) = (Vec::new(), Vec::new());
    for delivery in batch {
        let dispatched = match &delivery {
            Delivery::Instruction(key) => dispatch_refund(&ctx, key).await,
            Delivery::Payout(key) => dispatch_payout(&ctx, key).await,
            _ => continue,
        };
        match dispatched {
            Ok(Dispatched::Finished(what)) => said.push(what),
            Ok(Dispatched::Retry(what)) => {
                said.push(what);
                retry.push(delivery);
            }
            Err(broken) => return Done::Broken(broken),
        }
    }
    Done::Consumed {
        stream,
        summary: said.join(", "),
        retry,
    }
}

/// A retryable ledger failure is a redelivery; any other is a broken rule.
fn ledger_failure(call: &str, error: LedgerError) -> Result<Dispatched, String> {
    if error.is_retryable() {
        Ok(Dispatched::Retry(format!("{call}: the table was busy")))
    } else {
        Err(format!("{call}: {error}"))
    }
}

async fn dispatch_refund(ctx: &Ctx, key: &Key) -> Result<Dispatched, String> {
    ctx.call("claim_refund");
    let instruction = match ctx.ledger.claim_refund(key, ctx.now).await {
        Ok(Claim::Send(instruction)) => instruction,
        Ok(Claim::Finished(_)) => return Ok(Dispatched::Finished("finished before".into())),
        Ok(Claim::Held { .. }) => return Ok(Dispatched::Retry("held by another".into())),
        Err(error) => return ledger_failure("claim_refund", error),
    };
    let mut sent = Sent::Retry {
        error: String::new(),
    };
    for _ in 0..SENDS_PER_DELIVERY {
        let answer = ctx.provider().refund(&ctx.op, ctx.now, &instruction);
        sent = match answer {
            Ok(provider_refund_id) => Sent::Refunded { provider_refund_id },
            Err(Failed::Refused(error)) => Sent::Refused { error },
            Err(Failed::Retry(error)) => Sent::Retry { error },
        };
        if !matches!(sent, Sent::Retry { .. }) {
            break;
        }
        ctx.op.interleave().await;
    }
    ctx.call("finish_refund");
    // The payment names an instruction in the trace (refund ids are random).
    let payment = &instruction.payment_intent_id;
    match ctx.ledger.finish_refund(&instruction, &sent, ctx.now).await {
        Ok(finished) => Ok(match finished.status {
            RefundStatus::Pending => Dispatched::Retry(format!("refund of {payment} not sent yet")),
            RefundStatus::Succeeded => Dispatched::Finished(format!("{payment} refunded")),
            RefundStatus::Failed => Dispatched::Finished(format!("refund of {payment} failed")),
        }),
        Err(error) => ledger_failure("finish_refund", error),
    }
}

async fn dispatch_payout(ctx: &Ctx, key: &Key) -> Result<Dispatched, String> {
    ctx.call("claim_payout");
    let payout = match ctx.ledger.claim_payout(key, ctx.now).await {
        Ok(PayoutClaim::Send(payout)) => payout,
        Ok(PayoutClaim::Finished(_)) => return Ok(Dispatched::Finished("finished before".into())),
        Ok(PayoutClaim::Held { .. }) => return Ok(Dispatched::Retry("held by another".into())),
        Err(error) => return ledger_failure("claim_payout", error),
    };
    let mut sent = Transferred::Retry {
        error: String::new(),
    };
    for _ in 0..SENDS_PER_DELIVERY {
        let answer = ctx.provider().transfer(&ctx.op, ctx.now, &payout);
        sent = match answer {
            Ok(transfer_id) => Transferred::Paid { transfer_id },
            Err(Failed::Refused(error)) => Transferred::Refused { error },
            Err(Failed::Retry(error)) => Transferred::Retry { error },
        };
        if !matches!(sent, Transferred::Retry { .. }) {
            break;
        }
        ctx.op.interleave().await;
    }
    ctx.call("finish_payout");
    let what = format!(
        "payout of {} diamonds to {}",
        payout.diamonds, payout.creator_id
    );
    match ctx.ledger.finish_payout(&payout, &sent, ctx.now).await {
        Ok(finished) => Ok(match finished.status {
            PayoutStatus::Pending => Dispatched::Retry(format!("{what} not sent yet")),
            PayoutStatus::Paid => Dispatched::Finished(format!("{what} paid")),
            PayoutStatus::Failed => Dispatched::Finished(format!("{what} failed")),
        }),
        Err(error) => ledger_failure("finish_payout", error),
    }
}

/// `refund-expiry`: each removed marker's lot closed if due.
async fn expire(ctx: Ctx, batch: Vec<Delivery>) -> Done {
    let (mut closed, mut retry) = (Vec::new(), Vec::new());
    for delivery in batch {
        let Delivery::Marker(marker) = &delivery else {
            continue;
        };
        ctx.call("close_lot");
        match ctx
            .ledger
            .close_lot(&marker.user_id, &marker.purchase_id, ctx.now)
            .await
        {
            Ok(outcome) => {
                let name = match outcome {
                    coins_ledger::CloseOutcome::Closed { .. } => "closed",
                    coins_ledger::CloseOutcome::NotDue { .. } => "not_due",
                    coins_ledger::CloseOutcome::NothingOpen => "nothing_open",
                };
                ctx.outcome("close_lot", name);
                closed.push(name);
            }
            Err(error) if error.is_retryable() => {
                ctx.outcome("close_lot", error_name(&error));
                retry.push(delivery);
            }
            Err(error) => return Done::Broken(format!("close_lot: {error}")),
        }
    }
    Done::Consumed {
        stream: Stream::RefundExpiry,
        summary: closed.join(", "),
        retry,
    }
}

/// The scheduled sweep of lots whose window ended.
pub async fn sweep(ctx: Ctx) -> Done {
    ctx.call("close_due_lots");
    Done::Swept(ctx.ledger.close_due_lots(ctx.now, 100).await)
}

/// An admin lifts a user's restriction.
pub async fn lift(ctx: Ctx, user: UserId) -> Done {
    ctx.call("set_restriction");
    let lifted = ctx.ledger.set_restriction(&user, false, ctx.now).await;
    Done::Admin(
        format!("lift the restriction of {user}"),
        lifted.map(|_| ()),
    )
}

/// A user sets (or removes) their daily gifting limit.
pub async fn limit(ctx: Ctx, user: UserId, zone: Zone, coins: Option<u64>) -> Done {
    ctx.call("set_daily_limit");
    let set = ctx
        .ledger
        .set_daily_limit(&user, &zone, coins, ctx.now)
        .await;
    Done::Admin(
        format!("{user} sets a daily limit of {coins:?}"),
        set.map(|_| ()),
    )
}
