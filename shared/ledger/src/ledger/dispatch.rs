//! The outbox's side of refund dispatch: a dispatcher claims an instruction before it talks to
//! the provider and records the outcome after, both as conditional writes on the instruction's
//! version. Two dispatchers (a redelivered stream record, a concurrent consumer) never send one
//! instruction at once; one whose claim lapsed (a crash, a timeout) is taken over by the next,
//! which first asks the provider whether the refund already exists.

use jiff::{SignedDuration, Timestamp};

use super::{Attempt, Ledger};
use crate::error::LedgerError;
use crate::store::{Condition, Key, Store, Transaction, Write};
use crate::table::{RefundRecord, RefundStatus};

/// How long a claim holds: longer than a dispatcher spends on one instruction.
pub const CLAIM_LEASE: SignedDuration = SignedDuration::from_secs(120);

/// What a dispatcher may do with an instruction now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Claim {
    /// Send it: the instruction as claimed (its version is the claim). Boxed: the record is
    /// large next to the other answers.
    Send(Box<RefundRecord>),
    /// Already finished (succeeded or failed): nothing to send.
    Finished(RefundStatus),
    /// Another dispatcher holds it until then.
    Held { until: Timestamp },
}

/// What the provider answered.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Sent {
    /// The refund exists (made now, or found made before).
    Refunded { provider_refund_id: String },
    /// No answer to act on, and trying again may work (provider down, throttled, timed out):
    /// perhaps not made, perhaps made with the answer lost.
    Retry { error: String },
    /// The provider refused it for good (the payment cannot be refunded).
    Refused { error: String },
}

impl<S: Store> Ledger<S> {
    /// A refund instruction by key.
    pub async fn refund_instruction(&self, key: &Key) -> Result<RefundRecord, LedgerError> {
        let record = self.store.get(key).await?.ok_or(LedgerError::NotFound)?;
        RefundRecord::try_from(record)
    }

    /// Claims the instruction at `key` for sending, unless it is finished or held.
    pub async fn claim_refund(&self, key: &Key, now: Timestamp) -> Result<Claim, LedgerError> {
        self.transact(|| async move {
            let instruction = self.refund_instruction(key).await?;
            if instruction.status != RefundStatus::Pending {
                return Ok(Attempt::Done(Claim::Finished(instruction.status)));
            }
            if let Some(until) = instruction.claimed_until.filter(|&until| until > now) {
                return Ok(Attempt::Done(Claim::Held { until }));
            }
            let claimed = instruction.changed(now, |r| {
                r.claimed_until = Some(now.saturating_add(CLAIM_LEASE).unwrap_or(Timestamp::MAX));
                r.attempts += 1;
            });
            let write = Write::put(claimed.clone(), Condition::VersionIs(instruction.version));
            Ok(Attempt::Commit(
                Transaction::of([write]),
                Claim::Send(Box::new(claimed)),
            ))
        })
        .await
    }

    /// Records what the provider answered for a claimed instruction: succeeded, or failed when
    /// the provider refused it. A send that asked to retry leaves it pending however often it
    /// happens: the provider may have acted on a send whose answer was lost, so only the
    /// provider's word ends it (the next claim finds that refund by the same idempotency key),
    /// and the dispatcher's retries, then its dead-letter queue and alarm, see to the rest. A
    /// claim taken over in the meantime leaves the instruction to its new holder.
    pub async fn finish_refund(
        &self,
        claimed: &RefundRecord,
        sent: &Sent,
        now: Timestamp,
    ) -> Result<RefundRecord, LedgerError> {
        let key = &crate::table::Row::key(claimed);
        self.transact(|| async move {
            let current = self.refund_instruction(key).await?;
            if current.version != claimed.version {
                return Ok(Attempt::Done(current));
            }
            let finished = current.changed(now, |r| {
                r.claimed_until = None;
                match sent {
                    Sent::Refunded { provider_refund_id } => {
                        r.status = RefundStatus::Succeeded;
                        r.provider_refund_id = Some(provider_refund_id.clone());
                        r.last_error = None;
                    }
                    Sent::Retry { error } => r.last_error = Some(error.clone()),
                    Sent::Refused { error } => {
                        r.status = RefundStatus::Failed;
                        r.last_error = Some(error.clone());
                    }
                }
            });
            let write = Write::put(finished.clone(), Condition::VersionIs(current.version));
            Ok(Attempt::Commit(Transaction::of([write]), finished))
        })
        .await
    }
}
