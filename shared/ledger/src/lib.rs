//! Wallets and the ledger of coins: balances that never lose or duplicate a coin under
//! concurrency, retries and faults.
//!
//! - [`Ledger`] holds the operations the functions call (quotes, purchases, payment events,
//!   gifts, refunds, lot closure, limits, creators, reads, the audit).
//! - [`domain`] is the pure core: FIFO allocation and wallet transitions.
//! - [`store`] is the small storage port; [`memory`] and [`dynamo`] implement it with the same
//!   semantics, proven by one contract suite (`tests/contract`).
//! - [`model`] is the single-table layout (see also `MODEL.md`); [`capacity`] prices writes.
//!
//! Tests: `DYNAMODB_ENDPOINT=http://127.0.0.1:8000 cargo test -p coins-ledger` runs the unit
//! tests and the contract suite against both adapters; without a reachable DynamoDB Local the
//! DynamoDB half fails with "DynamoDB Local is not running: run scripts/test, which starts it".

pub mod audit;
pub mod capacity;
pub mod domain;
pub mod dynamo;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod ledger;
pub mod memory;
pub mod model;
pub mod store;

pub use audit::AuditReport;
pub use error::LedgerError;
pub use ids::{EventId, GiftTxnId, IdempotencyKey, InvalidId, PurchaseId, QuoteId, TxnId, UserId};
pub use ledger::{
    CloseOutcome, DailyLimitView, Earnings, Enrollment, GiftReceipt, GiftRequest, Ledger,
    LedgerConfig, LotView, PaymentEvent, PaymentOutcome, PurchaseReceipt, RefundBy, RefundReceipt,
    SweepReport, TxnPage, TxnView, WalletView,
};
pub use memory::MemoryStore;
pub use model::{
    GiftTarget, LotMarker, NotALotMarker, PaymentKind, PaymentRejection, PurchaseStatus, Quote,
    QuotePrice, RefundReason, TxnKind,
};
pub use store::{Store, StoreError};
