//! Gifts: one atomic debit of the sender (FIFO, within the daily limit), the sender's history
//! entry (the gift record) and the creator's diamonds on one of their shards.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_rules::limits::local_day;

use super::{Ledger, zone};
use crate::domain;
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::ids::{GiftTxnId, IdempotencyKey, TxnId, UserId};
use crate::model::{GiftDetails, GiftTarget, HistoryRecord, ItemType, TxnKind, keys};
use crate::store::{Condition, MAX_TRANSACTION_WRITES, Store, Transaction, Write};

/// Lots one gift may touch: a transaction holds 100 writes, and a gift also writes the wallet,
/// its history entry, a diamond shard and its idempotency record.
pub const MAX_LOTS_PER_GIFT: usize = MAX_TRANSACTION_WRITES - 10;

/// A gift to send; the function layer has priced it (`coins`) and checked the sender's age.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct GiftRequest {
    pub sender: UserId,
    pub recipient: UserId,
    pub gift_id: String,
    pub quantity: u32,
    /// The price of `quantity` × the gift, from the catalog.
    pub coins: u64,
    pub target: GiftTarget,
    /// The sender's IANA zone: the daily limit counts on their local day.
    pub sender_zone: String,
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

/// The request as the client sent it; the price (`coins`) is left out on purpose, so a retry
/// after a catalog change still returns the first result instead of "key reused".
#[derive(Serialize)]
struct GiftCanonical<'a> {
    op: &'static str,
    recipient: &'a UserId,
    gift_id: &'a str,
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
        if request.sender == request.recipient {
            return Err(LedgerError::SelfGift);
        }
        if request.coins == 0 || request.quantity == 0 {
            return Err(LedgerError::InvalidRequest(
                "a gift costs at least one coin".into(),
            ));
        }
        let coins_signed = i64::try_from(request.coins).map_err(|_| LedgerError::Overflow)?;
        let sender_zone = zone(&request.sender_zone)?;
        let hash = request_hash(&GiftCanonical {
            op: "gift",
            recipient: &request.recipient,
            gift_id: &request.gift_id,
            quantity: request.quantity,
            target: &request.target,
        })?;
        let gift_txn_id = GiftTxnId::generate();
        let entry_id = TxnId::generate();
        let today = local_day(now, &sender_zone);
        // Enrollment is never revoked, so one read per call suffices and no condition check
        // (2 more write units) is needed in the transaction.
        let profile = self
            .creator_profile(&request.recipient)
            .await?
            .ok_or(LedgerError::RecipientNotCreator)?;
        // Picked once per call: spread evenly, and the same shard on every retry.
        let shard = rand::random_range(0..profile.diamond_shards.max(1));
        let mut retry = self.retry();
        loop {
            if let Some(prior) =
                prior_response(&self.store, &request.sender, key, &hash, now).await?
            {
                return Ok(prior);
            }
            let snapshot = self.snapshot(&request.sender, now).await?;
            let debit =
                domain::debit_gift(&snapshot.wallet, &snapshot.lots, request.coins, today, now)?;
            let lots_touched = debit.lots_spent_from.len() + debit.lots_exhausted.len();
            if lots_touched > MAX_LOTS_PER_GIFT {
                return Err(LedgerError::GiftTooFragmented { lots: lots_touched });
            }
            let receipt = GiftReceipt {
                gift_txn_id: gift_txn_id.clone(),
                coins_spent: request.coins,
                balance: debit.wallet.balance,
                diamonds_credited: request.coins,
            };
            let history_key = keys::txn(&request.sender, debit.wallet.version);
            let history = HistoryRecord {
                pk: history_key.pk,
                sk: history_key.sk,
                item_type: ItemType::History,
                id: entry_id.to_string(),
                kind: TxnKind::Gift,
                coins: -coins_signed,
                balance_after: debit.wallet.balance,
                at: now,
                reference: gift_txn_id.to_string(),
                non_refundable_coins: None,
                gift: Some(GiftDetails {
                    gift_txn_id: gift_txn_id.clone(),
                    recipient_id: request.recipient.clone(),
                    gift_id: request.gift_id.clone(),
                    quantity: request.quantity,
                    target: request.target.clone(),
                    diamonds_shard: shard,
                }),
            };

            let mut transaction = Transaction::new();
            transaction.push(Write::Put {
                record: debit.wallet.into(),
                condition: Condition::version(snapshot.wallet.version),
            });
            for lot in debit.lots_spent_from {
                transaction.push(Write::Put {
                    record: lot.into(),
                    condition: Condition::Exists,
                });
            }
            for lot in &debit.lots_exhausted {
                transaction.push(Write::Delete {
                    key: lot.key(),
                    condition: Condition::Exists,
                });
            }
            transaction.push(Write::Put {
                record: history.into(),
                condition: Condition::Absent,
            });
            transaction.push(Write::AddDiamonds {
                shard: keys::diamonds_shard(&request.recipient, shard),
                diamonds: request.coins,
            });
            transaction.push(record_write(
                &request.sender,
                key,
                &hash,
                &receipt,
                now,
                self.config.idempotency_ttl,
            )?);
            match self.store.commit(transaction).await {
                Ok(()) => return Ok(receipt),
                Err(error) => retry.after(error).await?,
            }
        }
    }
}
