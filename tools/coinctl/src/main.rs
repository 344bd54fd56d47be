//! `coinctl`: the operator's window on the rules — quotes, the price table, refund windows and the
//! age gate — computed by the same `coins-rules` code the functions run, printed as JSON;
//! `reconcile`, Stripe's money against the ledger's coins ([`reconcile`]); and `liabilities`,
//! what the ledger owes: coins held and diamonds not paid out, with their USD value; and
//! `economics`, whether every coin sold nets at least its payout plus a margin ([`economics`]).
//!
//! Every failure is one line on stderr and a non-zero exit: 2 for arguments the command line
//! cannot accept, 1 for a rule's refusal (a custom amount in an app, an unknown country), a
//! reconciliation that found mismatches, or an offer netting less than its payout.

mod audit;
mod economics;
mod reconcile;

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::{ArgGroup, Args, Parser, Subcommand};
use coins_ledger::Ledger;
use coins_ledger::dynamo::DynamoStore;
use coins_ledger::store::Store;
use coins_payments::stripe::{SecretKey, Stripe};
use coins_rules::age::{AgeBelowMinimum, check_age_on};
use coins_rules::country::{BillingCountry, BillingLocation, BillingRegion};
use coins_rules::price_book::{PriceBook, PriceBookVersion};
use coins_rules::pricing::{Channel, PackageId, PackageList, QuoteItem};
use coins_rules::refund::try_refund_deadline;
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;

/// Exit code for a rule's refusal; clap's usage errors exit with 2.
const EXIT_REFUSED: u8 = 1;
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "coinctl",
    version,
    about = "Query the coin rules: prices, refund windows, age gate",
    // A bare `coinctl` is a usage error (one line, exit 2), not a page of help on stderr.
    arg_required_else_help = false
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Price a package or a custom web amount for a billing country.
    Quote(QuoteArgs),
    /// Every country's price for every package on one channel.
    PriceTable(PriceTableArgs),
    /// When a purchase stops being refundable.
    RefundWindow(RefundWindowArgs),
    /// Whether a birthdate passes a jurisdiction's minimum age on a date.
    AgeCheck(AgeCheckArgs),
    /// Stripe's payments and refunds of a period against the ledger's purchases and refund
    /// instructions: every mismatch, one per line; exit 1 if there is any.
    Reconcile(ReconcileArgs),
    /// What the ledger owes now: coins outstanding, and diamonds pending, available and in
    /// payout with their USD value (a full scan of the table).
    Liabilities(TableArgs),
    /// Conservation of coins and diamonds (a full scan), then what the stream's consumers still
    /// owe (gifts not counted, refunds and payouts pending) with ages; exit 1 on any violation
    /// or on anything stuck for an hour.
    Audit(TableArgs),
    /// Every country, channel and offer: what a coin nets (after tax and store fee, at the
    /// floor exchange rate) against its payout plus the margin; exit 1 if any is short.
    Economics(economics::EconomicsArgs),
}

#[derive(Args)]
struct TableArgs {
    /// DynamoDB at this endpoint (DynamoDB Local); AWS's by default, with the usual credentials.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    #[arg(long)]
    table_name: String,
    /// The instant to value the holds at (RFC 3339); now by default.
    #[arg(long)]
    at: Option<Timestamp>,
}

#[derive(Args)]
struct ReconcileArgs {
    /// The Stripe API (STRIPE_SECRET_KEY holds the key).
    #[arg(long, default_value = coins_payments::stripe::STRIPE_API_BASE)]
    stripe_api_base: String,
    /// DynamoDB at this endpoint (DynamoDB Local); AWS's by default, with the usual credentials.
    #[arg(long)]
    dynamodb_endpoint: Option<String>,
    #[arg(long)]
    table_name: String,
    /// Start of the period (RFC 3339).
    #[arg(long)]
    since: Timestamp,
    /// End of the period, exclusive (RFC 3339); now by default.
    #[arg(long)]
    until: Option<Timestamp>,
    /// How long a refund instruction may stay pending before it counts as not sent.
    #[arg(long, default_value_t = 15)]
    grace_minutes: i64,
}

#[derive(Args)]
#[command(group(ArgGroup::new("item").required(true).multiple(false)))]
struct QuoteArgs {
    /// Billing country, ISO 3166-1 alpha-2 (e.g. JP).
    #[arg(long, value_parser = parse_country)]
    country: BillingCountry,
    /// Billing region, ISO 3166-2 (e.g. US-AL); must be in the country.
    #[arg(long, value_parser = parse_region)]
    region: Option<BillingRegion>,
    /// web, ios or android.
    #[arg(long, value_parser = parse_channel)]
    channel: Channel,
    /// A fixed package (e.g. coins_700).
    #[arg(long, group = "item", value_parser = parse_package)]
    package: Option<PackageId>,
    /// A custom number of coins (web only).
    #[arg(long, group = "item")]
    coins: Option<u64>,
}

#[derive(Args)]
struct PriceTableArgs {
    /// web, ios or android.
    #[arg(long, value_parser = parse_channel)]
    channel: Channel,
    /// Print JSON (every price's net, tax and gross) instead of a table of gross prices.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct RefundWindowArgs {
    /// The purchase instant, RFC 3339 with an offset (e.g. 2026-06-01T23:30:00-07:00).
    #[arg(long, value_parser = parse_timestamp)]
    purchased_at: Timestamp,
    /// The buyer's IANA time zone (e.g. America/Los_Angeles).
    #[arg(long, value_parser = parse_zone)]
    zone: TimeZone,
}

#[derive(Args)]
struct AgeCheckArgs {
    /// YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    birthdate: Date,
    /// Billing country, ISO 3166-1 alpha-2.
    #[arg(long, value_parser = parse_country)]
    country: BillingCountry,
    /// Billing region, ISO 3166-2 (e.g. US-MS); must be in the country.
    #[arg(long, value_parser = parse_region)]
    region: Option<BillingRegion>,
    /// The user's local date to check on, YYYY-MM-DD.
    #[arg(long, value_parser = parse_date)]
    on: Date,
}

fn parse_country(text: &str) -> Result<BillingCountry, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_region(text: &str) -> Result<BillingRegion, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_channel(text: &str) -> Result<Channel, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_package(text: &str) -> Result<PackageId, String> {
    text.parse().map_err(|e| format!("{e}"))
}

fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    text.parse()
        .map_err(|e| format!("not an RFC 3339 instant with an offset: {e}"))
}

fn parse_zone(text: &str) -> Result<TimeZone, String> {
    TimeZone::get(text).map_err(|_| format!("unknown IANA time zone {text:?}"))
}

fn parse_date(text: &str) -> Result<Date, String> {
    text.parse()
        .map_err(|e| format!("not a YYYY-MM-DD date: {e}"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) if !error.use_stderr() => {
            // --help and --version: print them as clap formats them.
            return match error.print() {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(EXIT_REFUSED),
            };
        }
        Err(error) => {
            eprintln!("coinctl: {}", one_line(&error.to_string()));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli.command) {
        Ok(output) => {
            println!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("coinctl: error: {message}");
            ExitCode::from(EXIT_REFUSED)
        }
    }
}

/// clap's message without the usage block, folded onto one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(command: Command) -> Result<String, String> {
    let book = PriceBook::embedded();
    match command {
        Command::Quote(args) => quote(book, args),
        Command::PriceTable(args) if args.json => price_table_json(book, args.channel),
        Command::PriceTable(args) => price_table_text(book, args.channel),
        Command::RefundWindow(args) => refund_window(args),
        Command::AgeCheck(args) => age_check(args),
        Command::Reconcile(args) => run_reconcile(args),
        Command::Liabilities(args) => liabilities(args),
        Command::Audit(args) => audit::run(args),
        Command::Economics(args) => economics::run(args),
    }
}

/// The table named on the command line, on DynamoDB Local or AWS.
async fn table(endpoint: Option<&str>, table_name: &str) -> DynamoStore {
    let aws = match endpoint {
        Some(endpoint) => coins_ledger::dynamo::local_config(endpoint).await,
        None => aws_config::load_from_env().await,
    };
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table_name)
}

fn liabilities(args: TableArgs) -> Result<String, String> {
    let at = args.at.unwrap_or_else(Timestamp::now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let owed = runtime.block_on(async {
        let store = table(args.dynamodb_endpoint.as_deref(), &args.table_name).await;
        Ledger::new(store)
            .liabilities(at)
            .await
            .map_err(|error| format!("reading {}: {error}", args.table_name))
    })?;
    to_json(&owed)
}

fn run_reconcile(args: ReconcileArgs) -> Result<String, String> {
    let key = std::env::var("STRIPE_SECRET_KEY")
        .ok()
        .filter(|key| !key.is_empty())
        .ok_or("STRIPE_SECRET_KEY is not set")?;
    let stripe = Stripe::new(args.stripe_api_base, SecretKey::new(key));
    let now = Timestamp::now();
    let until = args.until.unwrap_or(now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let (stripe_side, ledger_side) = runtime.block_on(async {
        let store = table(args.dynamodb_endpoint.as_deref(), &args.table_name).await;
        let records = store
            .scan_all()
            .await
            .map_err(|error| format!("reading {}: {error}", args.table_name))?;
        let stripe_side = reconcile::stripe_side(&stripe, args.since, until).await?;
        Ok::<_, String>((stripe_side, reconcile::ledger_side(records)))
    })?;
    let grace = jiff::SignedDuration::from_mins(args.grace_minutes);
    let mismatches = reconcile::compare(&stripe_side, &ledger_side, args.since, until, now, grace);
    let summary = format!(
        "{} Stripe payments, {} purchases, {} refund instructions from {} to {until}: {} mismatches",
        stripe_side.len(),
        ledger_side.purchases.len(),
        ledger_side.instructions.len(),
        args.since,
        mismatches.len()
    );
    if mismatches.is_empty() {
        return Ok(summary);
    }
    let lines: Vec<String> = mismatches.iter().map(ToString::to_string).collect();
    Err(format!("{}\n{summary}", lines.join("\n")))
}

fn to_json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string_pretty(value).map_err(|e| e.to_string())
}

fn quote(book: &PriceBook, args: QuoteArgs) -> Result<String, String> {
    // A region of another country is a contradiction worth refusing, as the functions do; a
    // region's own sales tax is in the quote.
    let location = BillingLocation::new(args.country, args.region).map_err(|e| e.to_string())?;
    let item = match (args.package, args.coins) {
        (Some(package_id), _) => QuoteItem::Package(package_id),
        (None, Some(coins)) => QuoteItem::Custom { coins },
        // clap's "item" group requires exactly one of the two.
        (None, None) => return Err("give --package or --coins".to_owned()),
    };
    let quote = book
        .quote(location, args.channel, item)
        .map_err(|e| e.to_string())?;
    to_json(&quote)
}

#[derive(Serialize)]
struct PriceTableOutput<'a> {
    price_book_version: &'a PriceBookVersion,
    channel: Channel,
    countries: Vec<PackageList>,
}

#[derive(Serialize)]
struct RefundWindowOutput {
    refundable_until: String,
    zone: String,
    purchase_local_date: Date,
}

#[derive(Serialize)]
struct AgeCheckOutput {
    allowed: bool,
    age: u32,
    minimum_age: u32,
}

fn price_lists(book: &PriceBook, channel: Channel) -> Result<Vec<PackageList>, String> {
    book.countries()
        .iter()
        .map(|pricing| book.package_list(pricing.country().into(), channel))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())
}

fn price_table_json(book: &PriceBook, channel: Channel) -> Result<String, String> {
    to_json(&PriceTableOutput {
        price_book_version: book.version(),
        channel,
        countries: price_lists(book, channel)?,
    })
}

/// Gross prices (what the buyer pays), one row per country, one column per package; text
/// left-aligned, amounts right-aligned so their digits line up.
fn price_table_text(book: &PriceBook, channel: Channel) -> Result<String, String> {
    let mut header: Vec<String> = vec!["country".into(), "currency".into(), "tax".into()];
    header.extend(book.packages().iter().map(|p| p.package_id.to_string()));
    let mut rows = vec![header];
    // In an app, the product id each package is sold under in that store.
    if channel != Channel::Web {
        let mut products: Vec<String> = vec!["product".into(), String::new(), String::new()];
        products.extend(
            book.packages()
                .iter()
                .map(|p| p.store_product_id(channel).unwrap_or_default().to_owned()),
        );
        rows.push(products);
    }
    for (pricing, list) in book.countries().iter().zip(price_lists(book, channel)?) {
        let mode = if pricing.tax_inclusive() {
            "incl"
        } else {
            "excl"
        };
        let mut row = vec![
            pricing.country().to_string(),
            pricing.currency().to_string(),
            format!("{mode} {}%", pricing.tax_percent()),
        ];
        row.extend(
            list.packages
                .iter()
                .map(|offer| offer.price.gross().to_string()),
        );
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "price book {} · channel {channel} · gross prices (what the buyer pays)\n",
        book.version()
    );
    for row in &rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let separator = if column == 0 { "" } else { "  " };
            // Writing to a String cannot fail.
            let _ = if column < 3 {
                write!(line, "{separator}{cell:<width$}")
            } else {
                write!(line, "{separator}{cell:>width$}")
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(out.trim_end().to_owned())
}

fn refund_window(args: RefundWindowArgs) -> Result<String, String> {
    let deadline = try_refund_deadline(args.purchased_at, &args.zone).map_err(|e| e.to_string())?;
    to_json(&RefundWindowOutput {
        // RFC 3339 with the buyer's offset, without jiff's `[zone]` suffix.
        refundable_until: deadline
            .timestamp()
            .display_with_offset(deadline.offset())
            .to_string(),
        zone: args.zone.iana_name().unwrap_or_default().to_owned(),
        purchase_local_date: args.zone.to_datetime(args.purchased_at).date(),
    })
}

fn age_check(args: AgeCheckArgs) -> Result<String, String> {
    let location = BillingLocation::new(args.country, args.region).map_err(|e| e.to_string())?;
    let (allowed, age, minimum_age) = match check_age_on(
        args.birthdate,
        location.country(),
        location.region(),
        args.on,
    ) {
        Ok(ok) => (true, ok.age, ok.minimum_age),
        Err(AgeBelowMinimum { age, minimum_age }) => (false, age, minimum_age),
    };
    to_json(&AgeCheckOutput {
        allowed,
        age,
        minimum_age,
    })
}
