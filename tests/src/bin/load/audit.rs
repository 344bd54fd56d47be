//! After the timed phase: waiting for the table's stream consumers to catch up (they count the
//! gifts into the creator's earnings and send the refunds a moment after the API answered),
//! then the ledger's conservation audit over the whole table, and the ledger's totals held
//! against what the API acknowledged (a gift answered 201 but never written would pass an
//! audit of the table alone).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use coins_ledger::audit::AuditReport;
use coins_ledger::table::Record;
use coins_ledger::{Ledger, LedgerError, RefundStatus, Store};

use crate::workload::Totals;

/// How often the table is scanned again while the consumers catch up: a scan of a run's table
/// keeps DynamoDB Local busy for a while, slowing the consumers it waits for.
const POLL: Duration = Duration::from_secs(2);

/// What the stream consumers have yet to do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Gifts not yet counted into the creator's earnings.
    pub gifts_uncounted: usize,
    /// Counts whose senders' history entries may not all be written yet.
    pub counts_unconfirmed: usize,
    /// Refund instructions not yet answered by the provider.
    pub refunds_pending: usize,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        *self == Backlog::default()
    }
}

impl std::fmt::Display for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} gifts uncounted, {} counts unconfirmed, {} refunds pending",
            self.gifts_uncounted, self.counts_unconfirmed, self.refunds_pending
        )
    }
}

/// How the wait for the consumers ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drained {
    /// Nothing left, this long after the wait began.
    CaughtUp(Duration),
    /// What was still left when the wait gave up, after this long.
    TimedOut { waited: Duration, left: Backlog },
}

/// Scans until the backlog is empty, until `timeout` after `start` (the last answer).
pub async fn drain<S: Store>(
    ledger: &Ledger<S>,
    start: Instant,
    timeout: Duration,
) -> Result<Drained, LedgerError> {
    loop {
        let left = backlog(ledger).await?;
        if left.is_empty() {
            return Ok(Drained::CaughtUp(start.elapsed()));
        }
        if start.elapsed() > timeout {
            return Ok(Drained::TimedOut {
                waited: start.elapsed(),
                left,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn backlog<S: Store>(ledger: &Ledger<S>) -> Result<Backlog, LedgerError> {
    let mut backlog = Backlog::default();
    let mut sent = HashSet::new();
    let mut counted = HashSet::new();
    for record in ledger.store().scan_all().await? {
        match record {
            Record::Gift(gift) => {
                sent.insert(gift.details.gift_txn_id);
            }
            Record::GiftsPage(page) => {
                counted.extend(page.gifts.into_iter().map(|gift| gift.gift_txn_id));
            }
            Record::Earnings(earnings) => backlog.counts_unconfirmed += earnings.unconfirmed.len(),
            Record::Refund(refund) if refund.status == RefundStatus::Pending => {
                backlog.refunds_pending += 1
            }
            _ => {}
        }
    }
    backlog.gifts_uncounted = sent.difference(&counted).count();
    Ok(backlog)
}

/// The ledger's totals beside what the API acknowledged: `Ok` with the differences that
/// failed requests account for (a request that timed out may have been done; none when every
/// request was answered), or `Err` with every total they do not account for.
pub fn reconcile(
    report: &AuditReport,
    acknowledged: &Totals,
    unknown: &Totals,
) -> Result<Vec<String>, Vec<String>> {
    let totals = [
        (
            "coins credited",
            report.credited_coins,
            acknowledged.credited_coins,
            unknown.credited_coins,
        ),
        (
            "coins gifted",
            report.gifted_coins,
            acknowledged.gifted_coins,
            unknown.gifted_coins,
        ),
        (
            "coins refunded",
            report.refunded_coins,
            acknowledged.refunded_coins,
            unknown.refunded_coins,
        ),
        (
            "diamonds earned",
            report.diamonds,
            acknowledged.diamonds,
            unknown.diamonds,
        ),
    ];
    let (mut explained, mut unexplained) = (Vec::new(), Vec::new());
    for (what, ledger, api, failed) in totals {
        let line = format!(
            "{what}: the ledger has {ledger}, the API acknowledged {api}, failed requests \
             may have done up to {failed} more"
        );
        if ledger == api {
            continue;
        } else if api < ledger && ledger <= api + failed {
            explained.push(line);
        } else {
            unexplained.push(line);
        }
    }
    if unexplained.is_empty() {
        Ok(explained)
    } else {
        Err(unexplained)
    }
}

/// The audit's balance in one line.
pub fn summary(report: &AuditReport) -> String {
    format!(
        "{} items, {} wallets; coins credited {} = balances {} - debt {} + gifted {} + refunded {} \
         + reversed {}; diamonds earned {} (in payout {}, paid out {})",
        report.items,
        report.wallets,
        report.credited_coins,
        report.balance_coins,
        report.debt_coins,
        report.gifted_coins,
        report.refunded_coins,
        report.reversed_coins,
        report.diamonds,
        report.diamonds_in_payout,
        report.diamonds_paid_out,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_reconcile_exactly_or_within_what_failed_requests_may_have_done() {
        let report = AuditReport {
            credited_coins: 770,
            gifted_coins: 12,
            refunded_coins: 70,
            diamonds: 12,
            ..AuditReport::default()
        };
        let mut acknowledged = Totals {
            credited_coins: 770,
            gifted_coins: 12,
            diamonds: 12,
            refunded_coins: 70,
        };
        let mut unknown = Totals::default();
        assert_eq!(reconcile(&report, &acknowledged, &unknown), Ok(vec![]));
        // Two roses sent in a gift that timed out: the ledger may have one more gift than acked.
        acknowledged.gifted_coins = 10;
        acknowledged.diamonds = 10;
        unknown.gifted_coins = 2;
        unknown.diamonds = 2;
        assert_eq!(
            reconcile(&report, &acknowledged, &unknown).map(|lines| lines.len()),
            Ok(2)
        );
        // Fewer than acknowledged is never explained: an acknowledged gift was lost.
        acknowledged.diamonds = 13;
        assert_eq!(
            reconcile(&report, &acknowledged, &unknown),
            Err(vec![
                "diamonds earned: the ledger has 12, the API acknowledged 13, failed requests \
                 may have done up to 2 more"
                    .to_owned()
            ])
        );
    }
}
