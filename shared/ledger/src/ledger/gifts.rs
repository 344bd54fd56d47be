//! Gifts: one atomic debit of the sender (FIFO, within the daily limit), the sender's history
//! entry (the gift record) and the creator's diamonds on one of their shards.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{GiftTxnId, IdempotencyKey, TxnId, UserId};
use coins_rules::gifts::check_recipient;
use coins_rules::limits::local_day;
use coins_rules::{GiftId, GiftOrder, GiftTarget, Zone};

use super::{Attempt, Ledger};
use crate::domain::{self, GiftDebit};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, MAX_TRANSACTION_WRITES, Store, Transaction, Write};
use crate::table::{GiftDetails, HistoryRecord, Row, TxnKind};

/// Lots one gift may touch: a transaction holds 100 writes, and a gift also writes the wallet,
/// its history entry, a diamond shard and its idempotency record.
pub const MAX_LOTS_PER_GIFT: usize = MAX_TRANSACTION_WRITES - 10;

/// A gift to send: the order priced by the catalog, the sender's age already checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GiftRequest {
    pub sender: UserId,
    pub recipient: UserId,
    pub order: GiftOrder,
    pub target: GiftTarget,
    /// The sender's zone (from the token): where a wallet not yet opened would be opened. The
    /// daily limit counts in the wallet's own zone.
    pub sender_zone: Zone,
}

/// What `POST /v1/gifts` answers (201).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GiftReceipt {
    pub gift_txn_id: GiftTxnId,
    pub coins_spent: u64,
    /// The sender's balance right after this gift.
    pub balance: u64,
    pub diamonds_credited: u64,
}

/// The request as the client sent it; the price is left out on purpose, so a retry after a
/// catalog change still returns the first result instead of "key reused".
#[derive(Serialize)]
struct GiftCanonical<'a> {
    op: &'static str,
    recipient: &'a UserId,
    gift_id: &'a GiftId,
    quantity: u32,
    target: &'a GiftTarget,
}

impl<S: Store> Ledger<S> {
    /// Sends a gift: debits the sender oldest coins first and credits the creator's diamonds,
    /// atomically, once per idempotency key.
    pub async fn send_gift(
        &self,
        request: &GiftRequest,
        now: Timestamp,
        key: &IdempotencyKey,
    ) -> Result<GiftReceipt, LedgerError> {
        check_recipient(&request.sender, &request.recipient)?;
        let order = &request.order;
        let coins_signed = i64::try_from(order.coins()).map_err(|_| LedgerError::Overflow)?;
        let hash = request_hash(&GiftCanonical {
            op: "gift",
            recipient: &request.recipient,
            gift_id: order.gift_id(),
            quantity: order.quantity(),
            target: &request.target,
        })?;
        let (gift_txn_id, entry_id, hash) = (&GiftTxnId::generate(), &TxnId::generate(), &hash);
        // Enrollment is never revoked, so one read per call suffices and no condition check
        // (2 more write units) is needed in the transaction.
        let profile = self
            .creator_profile(&request.recipient)
            .await?
            .ok_or(LedgerError::RecipientNotCreator)?;
        // Picked once per call: spread evenly, and the same shard on every retry.
        let shard = rand::random_range(0..profile.diamond_shards.max(1));
        self.transact(|| async move {
            if let Some(prior) =
                prior_response(&self.store, &request.sender, key, hash, now).await?
            {
                return Ok(Attempt::Done(prior));
            }
            let snapshot = self
                .snapshot(&request.sender, &request.sender_zone, now)
                .await?;
            // The limit counts on the wallet's own local day, in the zone it was opened in:
            // a token naming another zone does not start a new day early.
            let today = local_day(now, snapshot.wallet.zone.tz());
            let debit =
                domain::debit_gift(&snapshot.wallet, &snapshot.lots, order.coins(), today, now)?;
            let lots_touched = debit.lots_spent_from.len() + debit.lots_exhausted.len();
            if lots_touched > MAX_LOTS_PER_GIFT {
                return Err(LedgerError::GiftTooFragmented { lots: lots_touched });
            }
            let receipt = GiftReceipt {
                gift_txn_id: gift_txn_id.clone(),
                coins_spent: order.coins(),
                balance: debit.wallet.balance,
                diamonds_credited: order.diamonds(),
            };
            let mut history = HistoryRecord::of(
                &debit.wallet,
                entry_id.clone(),
                TxnKind::Gift,
                -coins_signed,
                gift_txn_id,
            );
            history.gift = Some(GiftDetails::new(
                gift_txn_id.clone(),
                &request.recipient,
                order,
                &request.target,
                shard,
            ));

            let diamonds = Write::AddDiamonds {
                creator: request.recipient.clone(),
                shard,
                diamonds: order.diamonds(),
            };
            let ttl = self.config.idempotency_ttl;
            let idempotency = record_write(&request.sender, key, hash, &receipt, now, ttl)?;
            let read_version = snapshot.wallet.version;
            let transaction = gift_transaction(read_version, debit, history, diamonds, idempotency);
            Ok(Attempt::Commit(transaction, receipt))
        })
        .await
    }
}

/// The sender's debit (the wallet read at `read_version`, the lots it spends), the gift entry,
/// the creator's diamonds and the idempotency record: all or nothing.
fn gift_transaction(
    read_version: u64,
    debit: GiftDebit,
    entry: HistoryRecord,
    diamonds: Write,
    idempotency: Write,
) -> Transaction {
    let mut transaction = Transaction::new();
    transaction.push(Write::put(debit.wallet, Condition::version(read_version)));
    for lot in debit.lots_spent_from {
        transaction.push(Write::put(lot, Condition::Exists));
    }
    for lot in debit.lots_exhausted {
        transaction.push(Write::Delete {
            key: lot.key(),
            condition: Condition::Exists,
        });
    }
    transaction.push(Write::put(entry, Condition::Absent));
    transaction.push(diamonds);
    transaction.push(idempotency);
    transaction
}
