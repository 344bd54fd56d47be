//! What a run did, for its closing summary: operations by kind, their outcomes, faults injected
//! by kind and invariants checked, summed over seeds.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Counts by name, printed in name order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, name: impl Into<String>, count: u64) {
        *self.0.entry(name.into()).or_default() += count;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    fn merge(&mut self, other: &Tally) {
        for (name, count) in &other.0 {
            self.add(name.clone(), *count);
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub seeds: u64,
    pub steps: u64,
    /// Ledger calls the simulated clients, webhooks and stream consumers made.
    pub ops: Tally,
    /// What those calls answered, as `call: outcome`.
    pub outcomes: Tally,
    pub faults: Tally,
    pub invariants: Tally,
}

impl Stats {
    pub fn merge(&mut self, other: &Stats) {
        self.seeds += other.seeds;
        self.steps += other.steps;
        self.ops.merge(&other.ops);
        self.outcomes.merge(&other.outcomes);
        self.faults.merge(&other.faults);
        self.invariants.merge(&other.invariants);
    }
}

/// The closing summary of a run.
pub struct Summary<'a> {
    pub stats: &'a Stats,
    pub seeds: &'a str,
    pub wall: Duration,
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn section(f: &mut fmt::Formatter<'_>, title: &str, tally: &Tally) -> fmt::Result {
    writeln!(f, "{title} ({} in all):", thousands(tally.total()))?;
    if tally.0.is_empty() {
        writeln!(f, "  none")?;
    }
    let width = tally.0.keys().map(String::len).max().unwrap_or(0);
    for (name, count) in &tally.0 {
        writeln!(f, "  {name:<width$} {:>10}", thousands(*count))?;
    }
    Ok(())
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats;
        writeln!(
            f,
            "ledger fault simulator: seeds {} ({} seeds), {} operations in {} steps, {:.1} s",
            self.seeds,
            stats.seeds,
            thousands(stats.ops.total()),
            thousands(stats.steps),
            self.wall.as_secs_f64()
        )?;
        section(f, "operations run, by ledger call", &stats.ops)?;
        section(f, "outcomes, by call", &stats.outcomes)?;
        section(f, "faults injected, by kind", &stats.faults)?;
        section(f, "invariants checked", &stats.invariants)
    }
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn large_counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
