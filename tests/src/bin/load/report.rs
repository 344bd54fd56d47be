//! The figures of the timed phase, per request and overall: how many were sent, the rate they
//! were answered at, latency percentiles, what they answered and how many failed, as a markdown
//! table that pastes into a note as it is.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::workload::{Outcome, Request, Sample};

/// One row of the table.
#[derive(Debug, PartialEq)]
struct Row {
    name: String,
    sent: usize,
    per_s: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// Answers by label (`201`, `409 insufficient_coins`, `transport`).
    answers: BTreeMap<String, usize>,
    errors: usize,
}

impl Row {
    fn of<'a>(name: &str, samples: impl Iterator<Item = &'a Sample>, elapsed: Duration) -> Row {
        let mut latencies = Vec::new();
        let mut answers = BTreeMap::new();
        let (mut sent, mut errors) = (0, 0);
        for sample in samples {
            // One never sent still has a latency: at least its wait.
            latencies.push(sample.latency);
            *answers.entry(sample.outcome.label()).or_insert(0) += 1;
            sent += usize::from(sample.outcome != Outcome::NotSent);
            errors += usize::from(sample.outcome.is_error());
        }
        latencies.sort_unstable();
        Row {
            name: name.to_owned(),
            sent,
            per_s: sent as f64 / elapsed.as_secs_f64().max(f64::EPSILON),
            p50: percentile(&latencies, 0.50),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or_default(),
            answers,
            errors,
        }
    }

    fn cells(&self) -> Vec<String> {
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(label, count)| format!("{label}: {count}"))
            .collect();
        vec![
            self.name.clone(),
            self.sent.to_string(),
            format!("{:.1}", self.per_s),
            millis(self.p50),
            millis(self.p99),
            millis(self.max),
            answers.join(", "),
            self.errors.to_string(),
        ]
    }
}

/// The table of `samples`, answered over `elapsed`: a row per kind of request, then all of
/// them. Its error count is the run's.
pub fn table(samples: &[Sample], elapsed: Duration) -> (String, usize) {
    let mut rows: Vec<Row> = Request::ALL
        .into_iter()
        .filter(|request| samples.iter().any(|sample| sample.request == *request))
        .map(|request| {
            let own = samples.iter().filter(|sample| sample.request == request);
            Row::of(request.name(), own, elapsed)
        })
        .collect();
    let all = Row::of("all", samples.iter(), elapsed);
    let errors = all.errors;
    rows.push(all);
    let header = [
        "request", "sent", "req/s", "p50 ms", "p99 ms", "max ms", "answers", "errors",
    ];
    let mut lines: Vec<Vec<String>> = vec![header.iter().map(|cell| cell.to_string()).collect()];
    lines.extend(rows.iter().map(Row::cells));
    (render(&lines), errors)
}

/// The first `limit` errors of each kind, one line each, for the note under the table.
pub fn error_examples(samples: &[Sample], limit: usize) -> Vec<String> {
    let mut shown: BTreeMap<(Request, String), usize> = BTreeMap::new();
    let mut lines = Vec::new();
    for sample in samples {
        if let Outcome::Error { label, detail } = &sample.outcome {
            let seen = shown.entry((sample.request, label.clone())).or_insert(0);
            *seen += 1;
            if *seen <= limit {
                lines.push(format!("{}: {label}: {detail}", sample.request.name()));
            }
        }
    }
    lines
}

/// Markdown with its columns padded to line up in a terminal too; numbers right-aligned.
fn render(lines: &[Vec<String>]) -> String {
    let columns = lines[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].chars().count())
                .max()
                .unwrap_or(0)
                .max(3)
        })
        .collect();
    let numeric = |column: usize| (1..=5).contains(&column) || column == 7;
    let row = |line: &Vec<String>| {
        let cells: Vec<String> = line
            .iter()
            .enumerate()
            .map(|(column, cell)| {
                if numeric(column) {
                    format!("{cell:>width$}", width = widths[column])
                } else {
                    format!("{cell:<width$}", width = widths[column])
                }
            })
            .collect();
        format!("| {} |", cells.join(" | "))
    };
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(column, width)| {
            let dashes = "-".repeat(*width - 1);
            if numeric(column) {
                format!("{dashes}:")
            } else {
                format!("{dashes}-")
            }
        })
        .collect();
    let mut text = row(&lines[0]);
    text.push('\n');
    text.push_str(&format!("| {} |\n", rule.join(" | ")));
    for line in &lines[1..] {
        text.push_str(&row(line));
        text.push('\n');
    }
    text
}

/// The nearest-rank percentile `q` of `sorted` (zero when empty).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn millis(duration: Duration) -> String {
    format!("{:.1}", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(request: Request, millis: u64, outcome: Outcome) -> Sample {
        Sample {
            request,
            latency: Duration::from_millis(millis),
            outcome,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let sorted: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&sorted, 0.50), Duration::from_millis(50));
        assert_eq!(percentile(&sorted, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&sorted[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn the_table_has_a_row_per_request_sent_and_counts_only_errors_as_errors() {
        let refused = Outcome::Refused {
            status: 409,
            code: "insufficient_coins".into(),
        };
        let failed = Outcome::Error {
            label: "500 internal".into(),
            detail: "{}".into(),
        };
        let samples = [
            sample(Request::Gift, 4, Outcome::Ok(201)),
            sample(Request::Gift, 8, refused),
            sample(Request::Wallet, 2, Outcome::Ok(200)),
            sample(Request::Wallet, 30, failed),
            sample(Request::Wallet, 31_000, Outcome::NotSent),
        ];
        let (text, errors) = table(&samples, Duration::from_secs(2));
        assert_eq!(errors, 2);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[1].starts_with("| ---"), "{text}");
        assert!(lines[2].contains("POST /v1/gifts"), "{text}");
        assert!(
            lines[2].contains("201: 1, 409 insufficient_coins: 1"),
            "{text}"
        );
        assert!(lines[2].ends_with(" 0 |"), "{text}");
        assert!(
            lines[3].contains("|    2 |")
                && lines[3].contains("200: 1, 500 internal: 1, not sent: 1"),
            "sent, then what came of them: {text}"
        );
        assert!(lines[4].starts_with("| all "), "{text}");
        assert!(
            lines[4].contains("|   2.0 |"),
            "4 requests sent in 2 s: {text}"
        );
        assert!(
            lines.iter().all(|line| line.len() == lines[0].len()),
            "{text}"
        );
    }
}
