//! `coinctl economics`: whether every coin sold, in every country, channel and offer, nets at
//! least what its diamonds pay out plus the margin, at the floor exchange rates
//! ([`coins_rules::economics`] does the arithmetic). Prints the floor rates, then one row per
//! offer; exits 1 if any offer is short, so a price-book change can be checked before it ships
//! (`--price-book` and `--floor-rates` take candidate files).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use coins_rules::economics::{CoinNet, FloorRates, coin_economics};
use coins_rules::gifts::{DIAMOND_VALUE_USD, diamonds_for};
use coins_rules::price_book::PriceBook;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of the per-coin US dollar columns.
const USD_PER_COIN_DP: u32 = 6;

/// Extra decimal places of local amounts shown per coin (the `custom_any` row).
const PER_COIN_EXTRA_DP: u32 = 4;

#[derive(Args)]
pub struct EconomicsArgs {
    /// A candidate price book (JSON) instead of the one built in.
    #[arg(long)]
    price_book: Option<PathBuf>,
    /// Candidate floor rates (JSON) instead of the ones built in.
    #[arg(long)]
    floor_rates: Option<PathBuf>,
}

/// The table when every offer passes. On a shortfall the table is printed here, on stdout, and
/// the error is the one-line summary `main` prints on stderr before exiting 1.
pub fn run(args: EconomicsArgs) -> Result<String, String> {
    let (text, short) = table(&args)?;
    if short == 0 {
        return Ok(text);
    }
    println!("{text}");
    Err(format!(
        "{short} offers net less than the payout plus the margin at the floor rate"
    ))
}

fn read(path: &PathBuf) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|error| format!("reading {}: {error}", path.display()))
}

/// The whole text and the number of short offers.
fn table(args: &EconomicsArgs) -> Result<(String, usize), String> {
    let book = match &args.price_book {
        Some(path) => PriceBook::from_json(&read(path)?).map_err(|e| e.to_string())?,
        None => PriceBook::embedded().clone(),
    };
    let floors = match &args.floor_rates {
        Some(path) => FloorRates::from_json(&read(path)?).map_err(|e| e.to_string())?,
        None => FloorRates::embedded().clone(),
    };
    let rows = coin_economics(&book, &floors).map_err(|e| e.to_string())?;
    let short = rows.iter().filter(|row| row.is_short()).count();
    let mut out = format!(
        "price book {} · floor rates {} · payout USD {DIAMOND_VALUE_USD} a diamond, {} diamond a coin · margin {}% of the payout\n\n",
        book.version(),
        floors.version(),
        diamonds_for(1),
        (floors.margin_rate() * Decimal::ONE_HUNDRED).normalize(),
    );
    out.push_str(&aligned(&floor_rate_rows(&floors), 1));
    out.push('\n');
    out.push_str(&aligned(&offer_rows(&rows), 4));
    let verdict = if short == 0 {
        format!(
            "\nall {} offers net at least the payout plus the margin",
            rows.len()
        )
    } else {
        format!(
            "\nSHORT: {short} of {} offers net less than the payout plus the margin",
            rows.len()
        )
    };
    out.push_str(&verdict);
    Ok((out, short))
}

fn floor_rate_rows(floors: &FloorRates) -> Vec<Vec<String>> {
    let mut rows = vec![
        [
            "currency",
            "market/USD",
            "floor/USD",
            "bound",
            "as_of",
            "source",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for rate in floors.rates() {
        rows.push(vec![
            rate.currency.to_string(),
            rate.market.to_string(),
            rate.floor.to_string(),
            format!("{}%", (rate.bound() * Decimal::ONE_HUNDRED).normalize()),
            rate.as_of.to_string(),
            rate.source.clone(),
        ]);
    }
    rows
}

fn offer_rows(rows: &[CoinNet]) -> Vec<Vec<String>> {
    let header = [
        "country",
        "channel",
        "currency",
        "package",
        "coins",
        "price",
        "tax",
        "store_fee",
        "net_local",
        "floor",
        "net_usd/coin",
        "payout/coin",
        "margin/coin",
        "status",
    ];
    let mut out = vec![header.map(String::from).to_vec()];
    for row in rows {
        let local = |amount: Decimal| local_amount(row, amount);
        out.push(vec![
            row.country.to_string(),
            row.channel.to_string(),
            row.currency.to_string(),
            row.offer.to_string(),
            row.coins.to_string(),
            local(row.gross),
            local(row.tax),
            local(row.store_fee),
            local(row.net_local),
            row.floor_rate.to_string(),
            usd_per_coin(row.net_usd_per_coin, RoundingStrategy::ToZero),
            usd_per_coin(row.payout_per_coin, RoundingStrategy::AwayFromZero),
            usd_per_coin(row.margin_per_coin, RoundingStrategy::AwayFromZero),
            if row.is_short() { "SHORT" } else { "OK" }.to_owned(),
        ]);
    }
    out
}

/// A local amount at the currency's scale; per-coin bounds with a few more places.
fn local_amount(row: &CoinNet, amount: Decimal) -> String {
    let minor = row.currency.minor_units();
    if row.coins == 1 {
        let mut shown = amount.round_dp(minor + PER_COIN_EXTRA_DP);
        shown.rescale(minor + PER_COIN_EXTRA_DP);
        return shown.to_string();
    }
    amount.to_string()
}

/// US dollars per coin at six places, rounded so the shown net never flatters the check.
fn usd_per_coin(amount: Decimal, strategy: RoundingStrategy) -> String {
    let mut shown = amount.round_dp_with_strategy(USD_PER_COIN_DP, strategy);
    shown.rescale(USD_PER_COIN_DP);
    shown.to_string()
}

/// Rows as columns two spaces apart: the first `text_columns` left-aligned, the rest (amounts)
/// right-aligned so their digits line up; the last column is left as is.
fn aligned(rows: &[Vec<String>], text_columns: usize) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, (cell, width)) in row.iter().zip(&widths).enumerate() {
            let separator = if column == 0 { "" } else { "  " };
            // Writing to a String cannot fail.
            let _ = if column < text_columns || column + 1 == columns {
                write!(line, "{separator}{cell:<width$}")
            } else {
                write!(line, "{separator}{cell:>width$}")
            };
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
