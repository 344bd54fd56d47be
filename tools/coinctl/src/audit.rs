//! `coinctl audit`: the conservation audit of the whole table (coins and diamonds, see
//! `coins_ledger::audit`), then what the stream's consumers still owe, with ages, from the
//! outstanding index. Exit 1 on any violation, or on any item outstanding past
//! [`coins_ledger::STUCK_AFTER`] (the alarms of the consumers' sweeps name this command).

use std::fmt::Write as _;

use coins_ledger::{AuditReport, Ledger, OutstandingItem};
use jiff::Timestamp;

use crate::{TableArgs, table};

pub fn run(args: TableArgs) -> Result<String, String> {
    let now = args.at.unwrap_or_else(Timestamp::now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let (report, outstanding) = runtime.block_on(async {
        let ledger = Ledger::new(table(args.dynamodb_endpoint.as_deref(), &args.table_name).await);
        let reading = |error| format!("reading {}: {error}", args.table_name);
        let report = ledger.audit().await.map_err(reading)?;
        let outstanding = ledger.all_outstanding(now).await.map_err(reading)?;
        Ok::<_, String>((report, outstanding))
    })?;
    let text = render(&report, &outstanding);
    if report.is_conserved() && !outstanding.iter().any(OutstandingItem::is_stuck) {
        Ok(text)
    } else {
        Err(text)
    }
}

/// The audit as an operator reads it: totals, each violation, each outstanding item.
fn render(report: &AuditReport, outstanding: &[OutstandingItem]) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "items {}, wallets {}, open lots {}",
        report.items, report.wallets, report.open_lots
    );
    let _ = writeln!(
        text,
        "coins: credited {} = balances {} - debt {} + gifted {} + refunded {} + reversed {}",
        report.credited_coins,
        report.balance_coins,
        report.debt_coins,
        report.gifted_coins,
        report.refunded_coins,
        report.reversed_coins
    );
    let _ = writeln!(
        text,
        "diamonds: earned {}, in payout {}, paid out {}; gifts not counted {}, unconfirmed {}",
        report.diamonds,
        report.diamonds_in_payout,
        report.diamonds_paid_out,
        report.gifts_pending,
        report.gifts_unconfirmed
    );
    for violation in &report.violations {
        let _ = writeln!(text, "VIOLATION {violation}");
    }
    for item in outstanding {
        let state = if item.is_stuck() {
            "STUCK"
        } else {
            "outstanding"
        };
        let _ = writeln!(
            text,
            "{state} {} {} since {} ({} s)",
            item.kind.as_str(),
            item.id,
            item.since,
            item.age_seconds
        );
    }
    let stuck = outstanding.iter().filter(|item| item.is_stuck()).count();
    let _ = write!(
        text,
        "{} violations, {} outstanding of which {stuck} stuck",
        report.violations.len(),
        outstanding.len()
    );
    text
}
