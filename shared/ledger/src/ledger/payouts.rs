//! Payouts: available diamonds move into a payout record (the outbox) in one conditional write
//! with the creator's earnings; a dispatcher claims the payout, sends it to Stripe Connect and
//! records how it ended: paid, or failed with its diamonds back in `available`, once.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use coins_ids::{ConnectedAccountId, IdempotencyKey, PayoutId, UserId};
use coins_rules::gifts::payout_value;
use coins_rules::payouts::{DAILY_PAYOUT_MAX_USD_CENTS, MIN_PAYOUT_DIAMONDS, payout_day};

use super::accounts::{Amount, MAX_PAGE, decode_cursor, encode_cursor};
use super::dispatch::CLAIM_LEASE;
use super::{Attempt, Ledger};
use crate::error::LedgerError;
use crate::idempotency::{prior_response, record_write, request_hash};
use crate::store::{Condition, Key, Query, SortKey, Store, Transaction, Write};
use crate::table::{
    CreatorRecord, EarningsRecord, PayoutAccountChangeRecord, PayoutRecord, PayoutStatus, Row, keys,
};

/// `POST /v1/creators/me/payouts` (201) and each item of the payouts list.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayoutView {
    pub payout_id: PayoutId,
    pub status: PayoutStatus,
    pub diamonds: u64,
    pub amount: Amount,
    pub created_at: Timestamp,
}

impl From<&PayoutRecord> for PayoutView {
    fn from(payout: &PayoutRecord) -> Self {
        PayoutView {
            payout_id: payout.payout_id.clone(),
            status: payout.status,
            diamonds: payout.diamonds,
            amount: payout.amount.into(),
            created_at: payout.created_at,
        }
    }
}

/// One page of payouts, newest first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PayoutPage {
    pub items: Vec<PayoutView>,
    pub next_cursor: Option<String>,
}

/// What a payout dispatcher may do with a payout now.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum PayoutClaim {
    /// Send it: the payout as claimed.
    Send(Box<PayoutRecord>),
    /// Paid or failed already.
    Finished(PayoutStatus),
    /// Another dispatcher holds it until then.
    Held { until: Timestamp },
}

/// What Stripe answered for a transfer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Transferred {
    /// The transfer exists (made now, or found made before).
    Paid { transfer_id: String },
    /// No answer to act on (perhaps not made, perhaps made with the answer lost); trying
    /// again may work.
    Retry { error: String },
    /// Refused for good (the account cannot receive it).
    Refused { error: String },
}

#[derive(Serialize)]
struct PayoutCanonical {
    op: &'static str,
    diamonds: u64,
}

impl<S: Store> Ledger<S> {
    /// An admin sets the Stripe Connect account a creator is paid to, and the change is
    /// recorded in the same transaction (who, the old and the new account, when: a
    /// [`PayoutAccountChangeRecord`]). Setting the account it already has changes nothing.
    pub async fn set_payout_account_by(
        &self,
        creator: &UserId,
        account: &ConnectedAccountId,
        admin: Option<&UserId>,
        now: Timestamp,
    ) -> Result<CreatorRecord, LedgerError> {
        self.transact(|| async move {
            let profile = self
                .creator_profile(creator)
                .await?
                .ok_or(LedgerError::NotFound)?;
            if profile.payout_account.as_ref() == Some(account) {
                return Ok(Attempt::Done(profile));
            }
            let number = profile
                .payout_account_changes
                .checked_add(1)
                .ok_or(LedgerError::Overflow)?;
            let change = PayoutAccountChangeRecord {
                creator_id: creator.clone(),
                number,
                changed_by: admin.cloned(),
                old_account: profile.payout_account.clone(),
                new_account: account.clone(),
                at: now,
            };
            let mut updated = profile;
            updated.payout_account = Some(account.clone());
            updated.payout_account_changes = number;
            // A change number is taken once: of two concurrent changes one commits, the other
            // retries from the profile it left, so every record's `old_account` is what it
            // replaced.
            let transaction = Transaction::of([
                Write::put(updated.clone(), Condition::Exists),
                Write::put(change, Condition::Absent),
            ]);
            Ok(Attempt::Commit(transaction, updated))
        })
        .await
    }

    /// Every change of the creator's payout account, oldest first.
    pub async fn payout_account_changes(
        &self,
        creator: &UserId,
    ) -> Result<Vec<PayoutAccountChangeRecord>, LedgerError> {
        let query = Query::table(
            keys::creator_pk(creator),
            SortKey::BeginsWith(keys::PAYOUT_ACCOUNT_SK_PREFIX.to_owned()),
        );
        self.store
            .query(&query)
            .await?
            .into_iter()
            .map(PayoutAccountChangeRecord::try_from)
            .collect()
    }

    /// Moves `diamonds` from the creator's available diamonds into a new payout, once per
    /// idempotency key, within the minimum and the daily maximum.
    pub async fn request_payout(
        &self,
        creator: &UserId,
        diamonds: u64,
        now: Timestamp,
        key: &IdempotencyKey,
    ) -> Result<PayoutView, LedgerError> {
        let hash = &request_hash(&PayoutCanonical {
            op: "payout",
            diamonds,
        })?;
        let payout_id = &PayoutId::generate();
        self.transact(|| async move {
            if let Some(prior) = prior_response(&self.store, creator, key, hash, now).await? {
                return Ok(Attempt::Done(prior));
            }
            let profile = self
                .creator_profile(creator)
                .await?
                .ok_or(LedgerError::NotFound)?;
            let destination = profile
                .payout_account
                .ok_or(LedgerError::PayoutAccountMissing)?;
            if diamonds < MIN_PAYOUT_DIAMONDS {
                return Err(LedgerError::PayoutBelowMinimum {
                    minimum: MIN_PAYOUT_DIAMONDS,
                });
            }
            let current = self.earnings_record(creator, now).await?;
            let available = current.available(now);
            if diamonds > available {
                return Err(LedgerError::InsufficientDiamonds {
                    available,
                    requested: diamonds,
                });
            }
            let amount = payout_value(diamonds);
            let cents = amount.minor_units().ok_or(LedgerError::Overflow)?;
            let day = payout_day(now);
            let today = if current.payout_day == Some(day) {
                current.payout_cents_today
            } else {
                0
            };
            if today + cents > DAILY_PAYOUT_MAX_USD_CENTS {
                return Err(LedgerError::PayoutLimitReached);
            }
            let mut earnings = current.next(now)?;
            earnings.in_payout = add(earnings.in_payout, diamonds)?;
            earnings.payout_day = Some(day);
            earnings.payout_cents_today = today + cents;
            let payout = PayoutRecord {
                payout_id: payout_id.clone(),
                creator_id: creator.clone(),
                diamonds,
                amount,
                destination,
                status: PayoutStatus::Pending,
                version: 1,
                attempts: 0,
                claimed_until: None,
                transfer_id: None,
                last_error: None,
                created_at: now,
                updated_at: now,
            };
            let view = PayoutView::from(&payout);
            let ttl = self.config.idempotency_ttl;
            let transaction = Transaction::of([
                Write::put(earnings, Condition::version(current.version)),
                Write::put(payout, Condition::Absent),
                record_write(creator, key, hash, &view, now, ttl)?,
            ]);
            Ok(Attempt::Commit(transaction, view))
        })
        .await
    }

    /// A creator's payouts, newest first.
    pub async fn payouts(
        &self,
        creator: &UserId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<PayoutPage, LedgerError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let is_payout = |sk: &str| sk.starts_with(keys::PAYOUT_SK_PREFIX);
        let start_after = cursor
            .map(|cursor| decode_cursor(cursor, is_payout))
            .transpose()?
            .map(|sk| Key::new(keys::creator_pk(creator), sk));
        let query = Query {
            descending: true,
            limit: Some(limit + 1),
            start_after,
            ..Query::table(
                keys::creator_pk(creator),
                SortKey::BeginsWith(keys::PAYOUT_SK_PREFIX.to_owned()),
            )
        };
        let mut payouts = self
            .store
            .query(&query)
            .await?
            .into_iter()
            .map(PayoutRecord::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        let more = payouts.len() > limit as usize;
        payouts.truncate(limit as usize);
        let next_cursor = more
            .then(|| payouts.last().map(|last| encode_cursor(&last.key().sk)))
            .flatten();
        Ok(PayoutPage {
            items: payouts.iter().map(PayoutView::from).collect(),
            next_cursor,
        })
    }

    /// A payout by key.
    pub async fn payout(&self, key: &Key) -> Result<PayoutRecord, LedgerError> {
        let record = self.store.get(key).await?.ok_or(LedgerError::NotFound)?;
        PayoutRecord::try_from(record)
    }

    /// Claims the payout at `key` for sending, unless it is finished or held.
    pub async fn claim_payout(
        &self,
        key: &Key,
        now: Timestamp,
    ) -> Result<PayoutClaim, LedgerError> {
        self.transact(|| async move {
            let payout = self.payout(key).await?;
            if payout.status != PayoutStatus::Pending {
                return Ok(Attempt::Done(PayoutClaim::Finished(payout.status)));
            }
            if let Some(until) = payout.claimed_until.filter(|&until| until > now) {
                return Ok(Attempt::Done(PayoutClaim::Held { until }));
            }
            let mut claimed = payout.clone();
            claimed.version += 1;
            claimed.attempts += 1;
            claimed.claimed_until = Some(now.saturating_add(CLAIM_LEASE).unwrap_or(Timestamp::MAX));
            claimed.updated_at = now;
            let write = Write::put(claimed.clone(), Condition::VersionIs(payout.version));
            Ok(Attempt::Commit(
                Transaction::of([write]),
                PayoutClaim::Send(Box::new(claimed)),
            ))
        })
        .await
    }

    /// Records what Stripe answered for a claimed payout: paid (the diamonds leave for good),
    /// or failed when Stripe refused it, with the diamonds back in `available` — each in one
    /// write with the creator's earnings, so it happens once. A send that asked to retry leaves
    /// it pending, its diamonds in payout, however often it happens: Stripe may have made a
    /// transfer whose answer was lost, and returning the diamonds then would pay them twice.
    pub async fn finish_payout(
        &self,
        claimed: &PayoutRecord,
        sent: &Transferred,
        now: Timestamp,
    ) -> Result<PayoutRecord, LedgerError> {
        let key = &claimed.key();
        self.transact(|| async move {
            // The earnings first: a payout still unfinished when read after them means they
            // were read before any finish of it, so the commit's conditions catch a race.
            let earnings = self.earnings_record(&claimed.creator_id, now).await?;
            let current = self.payout(key).await?;
            if current.version != claimed.version {
                return Ok(Attempt::Done(current));
            }
            let mut finished = current.clone();
            finished.version += 1;
            finished.claimed_until = None;
            finished.updated_at = now;
            match sent {
                Transferred::Paid { transfer_id } => {
                    finished.status = PayoutStatus::Paid;
                    finished.transfer_id = Some(transfer_id.clone());
                    finished.last_error = None;
                }
                Transferred::Retry { error } => finished.last_error = Some(error.clone()),
                Transferred::Refused { error } => {
                    finished.status = PayoutStatus::Failed;
                    finished.last_error = Some(error.clone());
                }
            }
            let mut writes = vec![Write::put(
                finished.clone(),
                Condition::VersionIs(current.version),
            )];
            if finished.status != PayoutStatus::Pending {
                writes.push(Write::put(
                    settled(&earnings, &finished, now)?,
                    Condition::version(earnings.version),
                ));
            }
            Ok(Attempt::Commit(Transaction::of(writes), finished))
        })
        .await
    }
}

/// The earnings once `payout` ended: out of `in_payout`, into `paid_out` or back to available
/// (and, failed on the day it was asked, out of that day's total again).
fn settled(
    earnings: &EarningsRecord,
    payout: &PayoutRecord,
    now: Timestamp,
) -> Result<EarningsRecord, LedgerError> {
    let mut next = earnings.next(now)?;
    next.in_payout = next.in_payout.checked_sub(payout.diamonds).ok_or_else(|| {
        LedgerError::Corrupt(format!("payout {} not in payout", payout.payout_id))
    })?;
    match payout.status {
        PayoutStatus::Paid => next.paid_out = add(next.paid_out, payout.diamonds)?,
        PayoutStatus::Failed => {
            if next.payout_day == Some(payout_day(payout.created_at)) {
                let cents = payout.amount.minor_units().unwrap_or(0);
                next.payout_cents_today = (next.payout_cents_today - cents).max(0);
            }
        }
        PayoutStatus::Pending => {}
    }
    Ok(next)
}

fn add(a: u64, b: u64) -> Result<u64, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}
