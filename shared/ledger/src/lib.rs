//! Wallets and the ledger of coins: balances that never lose or duplicate a coin under
//! concurrency, retries and faults.
//!
//! - [`Ledger`] holds the operations the functions call (quotes, purchases, payment events,
//!   gifts, refunds, lot closure, limits, creators, reads, the audit).
//! - [`domain`] is the pure core: wallets and lots as plain values, FIFO allocation and wallet
//!   transitions.
//! - [`table`] is the single-table layout: every row, its key and its constructor (see also
//!   `MODEL.md`); [`capacity`] prices writes.
//! - [`store`] is the small storage port; [`memory`] and [`dynamo`] implement it with the same
//!   semantics, proven by one contract suite (`tests/contract`).
//!
//! Tests: `DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo test -p coins-ledger` runs the unit
//! tests and the contract suite against both adapters; without a reachable DynamoDB Local the
//! DynamoDB half fails with "DynamoDB Local is not running: run scripts/test, which starts it".
//! `cargo test -p coins-ledger --test simulator -- --nocapture` runs the deterministic fault
//! simulator (`tests/simulator`, in memory): seeded worlds of fans and creators under
//! injected faults, every invariant checked after every step; `SIM_SEED` replays one seed.

pub mod audit;
pub mod capacity;
pub mod domain;
pub mod dynamo;
pub mod error;
pub mod idempotency;
pub mod ledger;
pub mod memory;
pub mod store;
pub mod table;

pub use audit::{AuditReport, Liabilities};
pub use error::LedgerError;
pub use ledger::{
    Amount, CLAIM_LEASE, CONFIRM_GRACE, Claim, CloseOutcome, Counted, DEFAULT_PAGE, DailyLimitView,
    Earnings, Enrollment, GIFTS_PER_PAGE, GiftReceipt, GiftRequest, Ledger, LedgerConfig, LotView,
    MAX_CURSOR_CHARS, MAX_PAGE, OutstandingItem, Paid, Payment, PaymentEvent, PaymentOutcome,
    PayoutClaim, PayoutPage, PayoutView, PurchasePage, PurchaseReceipt, PurchaseView,
    ReceivedGiftView, ReceivedPage, RefundBy, RefundReceipt, RefundView, ReversalEvent,
    ReversalOutcome, STUCK_AFTER, SWEEP_AFTER, SWEEP_GIFTS_PER_PARTITION,
    SWEEP_SENDS_PER_PARTITION, Sent, Share, StoreCredit, StorePurchase, StoreWord,
    StoreWordOutcome, SweepReport, Transferred, TxnPage, TxnView, ValueView, WalletView,
    by_creator,
};
pub use memory::{Change, ChangeKind, MemoryStore};
pub use store::{Store, StoreError};
pub use table::{
    LotMarker, NotALotMarker, Outstanding, PurchaseStatus, Quote, RefundReason, RefundRecord,
    RefundStatus, TxnKind,
};
