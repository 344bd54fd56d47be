//! Gifts: one atomic write of the sender's side only — the wallet (its balance, the lots it
//! spends counted in it, the daily limit) and the gift entry, which is also the idempotency
//! record of the request's key (under its own key prefix, `GIFT#`, which only the gift
//! function may write). The creator's side (earnings, gifts received) and the sender's
//! history entry follow from the table's stream ([`super::earnings`]), so senders gifting one
//! creator never write the same item.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{GiftTxnId, IdempotencyKey, UserId};
use coins_rules::gifts::check_recipient;
use coins_rules::limits::local_day;
use coins_rules::{GiftId, GiftOrder, GiftTarget, Zone};

use super::{Attempt, Ledger};
use crate::domain;
use crate::error::LedgerError;
use crate::idempotency::request_hash;
use crate::store::{Condition, Store, Transaction, Write};
use crate::table::{GiftDetails, GiftRecord, Record, keys};

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
    /// What the creator is credited (within seconds, from the stream).
    pub diamonds: u64,
}

impl GiftReceipt {
    fn of(gift: &GiftRecord) -> GiftReceipt {
        GiftReceipt {
            gift_txn_id: gift.details.gift_txn_id.clone(),
            coins_spent: gift.coins,
            balance: gift.balance_after,
            diamonds: gift.diamonds,
        }
    }
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
    /// Sends a gift: debits the sender oldest coins first and records the gift, atomically,
    /// once per idempotency key.
    pub async fn send_gift(
        &self,
        request: &GiftRequest,
        now: Timestamp,
        key: &IdempotencyKey,
    ) -> Result<GiftReceipt, LedgerError> {
        check_recipient(&request.sender, &request.recipient)?;
        let order = &request.order;
        let hash = &request_hash(&GiftCanonical {
            op: "gift",
            recipient: &request.recipient,
            gift_id: order.gift_id(),
            quantity: order.quantity(),
            target: &request.target,
        })?;
        let gift_txn_id = &GiftTxnId::generate();
        // Enrollment is never revoked, so one read per call suffices and no condition check
        // (2 more write units) is needed in the transaction.
        if !self.is_creator(&request.recipient).await? {
            return Err(LedgerError::RecipientNotCreator);
        }
        self.transact(|| async move {
            match self
                .store
                .get(&keys::gift_entry(&request.sender, key))
                .await?
            {
                // Expired but not yet deleted (TTL lags): the key is free again.
                Some(record) if record.expires_at().is_some_and(|at| at < now.as_second()) => {}
                Some(Record::Gift(gift)) if gift.request_hash == *hash => {
                    return Ok(Attempt::Done(GiftReceipt::of(&gift)));
                }
                Some(_) => return Err(LedgerError::IdempotencyKeyReused),
                None => {}
            }
            let snapshot = self
                .snapshot(&request.sender, &request.sender_zone, now)
                .await?;
            // The limit counts on the wallet's own local day, in the zone it was opened in:
            // a token naming another zone does not start a new day early.
            let today = local_day(now, snapshot.wallet.zone.tz());
            let wallet =
                domain::debit_gift(&snapshot.wallet, &snapshot.lots, order.coins(), today, now)?;
            let gift = GiftRecord {
                sender_id: request.sender.clone(),
                key: key.clone(),
                request_hash: hash.clone(),
                details: GiftDetails::new(
                    gift_txn_id.clone(),
                    &request.recipient,
                    order,
                    &request.target,
                ),
                coins: order.coins(),
                diamonds: order.diamonds(),
                seq: wallet.version,
                balance_after: wallet.balance,
                at: now,
                // Outstanding until counted: it expires only then.
                counted_at: None,
                expires_at: None,
            };
            let receipt = GiftReceipt::of(&gift);
            let transaction = Transaction::of([
                Write::put(wallet, Condition::version(snapshot.wallet.version)),
                Write::put(
                    gift,
                    Condition::AbsentOrExpired {
                        now_epoch_s: now.as_second(),
                    },
                ),
            ]);
            Ok(Attempt::Commit(transaction, receipt))
        })
        .await
    }
}
