//! Turns samples into the printed table: medians per function, the init ratio to the bare
//! baseline, and what the first invocation answered (so a wrong fixture cannot hide).

use std::fmt::Write as _;

use crate::measure::Sample;
use crate::runtime_api::Reply;

/// Peak resident set size in KB: the `VmHWM` line of `/proc/<pid>/status`.
pub fn peak_rss_kb(proc_status: &str) -> Option<u64> {
    proc_status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|number| number.trim().parse().ok())
}

/// The median; of an even count, the mean of the two middle values (rounded down).
pub fn median(values: &[u64]) -> Option<u64> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let middle = sorted.len() / 2;
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[middle]),
        _ => Some(
            sorted[middle - 1] / 2
                + sorted[middle] / 2
                + (sorted[middle - 1] % 2 + sorted[middle] % 2) / 2,
        ),
    }
}

/// A short account of the reply: the HTTP status an API Gateway response carries, the failed
/// record count of a stream batch response, or the error type.
pub fn describe_reply(reply: &Reply) -> String {
    match reply {
        Reply::Response(body) => {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
                return "non-JSON response".to_owned();
            };
            if let Some(status) = value.get("statusCode").and_then(serde_json::Value::as_u64) {
                format!("HTTP {status}")
            } else if let Some(failures) = value
                .get("batchItemFailures")
                .and_then(serde_json::Value::as_array)
            {
                format!("{} failed records", failures.len())
            } else {
                "response".to_owned()
            }
        }
        Reply::Error(body) => {
            let error_type = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|value| {
                    value
                        .get("errorType")
                        .and_then(|t| t.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| "unknown".to_owned());
            format!("error {error_type}")
        }
    }
}

/// Medians of one function's samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub name: String,
    pub runs: usize,
    pub init_us: u64,
    pub init_min_us: u64,
    pub init_max_us: u64,
    pub first_invoke_us: u64,
    pub peak_rss_kb: u64,
    pub reply: String,
}

/// Summarises samples; `None` when there are none.
pub fn summarise(name: &str, samples: &[Sample]) -> Option<Summary> {
    let init: Vec<u64> = samples.iter().map(|s| s.init_us).collect();
    let invoke: Vec<u64> = samples.iter().map(|s| s.first_invoke_us).collect();
    let rss: Vec<u64> = samples.iter().map(|s| s.peak_rss_kb).collect();
    let mut replies: Vec<String> = samples.iter().map(|s| describe_reply(&s.reply)).collect();
    replies.sort();
    replies.dedup();
    Some(Summary {
        name: name.to_owned(),
        runs: samples.len(),
        init_us: median(&init)?,
        init_min_us: *init.iter().min()?,
        init_max_us: *init.iter().max()?,
        first_invoke_us: median(&invoke)?,
        peak_rss_kb: median(&rss)?,
        reply: replies.join(", "),
    })
}

/// Init time over the baseline's, to two decimals.
pub fn ratio(init_us: u64, baseline_init_us: u64) -> String {
    if baseline_init_us == 0 {
        return "n/a".to_owned();
    }
    // Integer hundredths keep the arithmetic exact; u128 cannot overflow here.
    let hundredths = (u128::from(init_us) * 100 + u128::from(baseline_init_us) / 2)
        / u128::from(baseline_init_us);
    format!("{}.{:02}x", hundredths / 100, hundredths % 100)
}

/// The table of medians, one row per function, the baseline first.
pub fn table(summaries: &[Summary], baseline_init_us: Option<u64>) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<26} {:>4} {:>10} {:>19} {:>16} {:>12} {:>9}  first reply",
        "function",
        "runs",
        "init µs",
        "init min..max µs",
        "first invoke µs",
        "peak RSS KB",
        "init/bare"
    );
    for s in summaries {
        let ratio = baseline_init_us.map_or_else(|| "n/a".to_owned(), |b| ratio(s.init_us, b));
        let _ = writeln!(
            out,
            "{:<26} {:>4} {:>10} {:>19} {:>16} {:>12} {:>9}  {}",
            s.name,
            s.runs,
            s.init_us,
            format!("{}..{}", s.init_min_us, s.init_max_us),
            s.first_invoke_us,
            s.peak_rss_kb,
            ratio,
            s.reply
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROC_STATUS: &str =
        "Name:\tcatalog\nVmPeak:\t  812340 kB\nVmHWM:\t    6148 kB\nVmRSS:\t    6020 kB\n";

    #[test]
    fn peak_rss_is_read_from_the_vmhwm_line() {
        assert_eq!(peak_rss_kb(PROC_STATUS), Some(6148));
    }

    #[test]
    fn a_status_without_vmhwm_has_no_peak_rss() {
        assert_eq!(peak_rss_kb("Name:\tcatalog\nVmRSS:\t 6020 kB\n"), None);
    }

    #[test]
    fn median_of_an_odd_count_is_the_middle_value() {
        assert_eq!(median(&[30, 10, 20]), Some(20));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&[40, 10, 30, 20]), Some(25));
        assert_eq!(median(&[u64::MAX, u64::MAX]), Some(u64::MAX));
    }

    #[test]
    fn median_of_nothing_is_none() {
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn ratio_is_rounded_to_hundredths() {
        assert_eq!(ratio(1500, 1000), "1.50x");
        assert_eq!(ratio(2, 3), "0.67x");
        assert_eq!(ratio(1, 0), "n/a");
    }

    #[test]
    fn an_api_gateway_reply_is_described_by_its_status() {
        let reply = Reply::Response(r#"{"statusCode":400,"body":"{}"}"#.to_owned());
        assert_eq!(describe_reply(&reply), "HTTP 400");
    }

    #[test]
    fn a_batch_reply_is_described_by_its_failed_records() {
        let reply = Reply::Response(r#"{"batchItemFailures":[]}"#.to_owned());
        assert_eq!(describe_reply(&reply), "0 failed records");
    }

    #[test]
    fn an_error_reply_is_described_by_its_type() {
        let reply =
            Reply::Error(r#"{"errorType":"MissingTableName","errorMessage":"x"}"#.to_owned());
        assert_eq!(describe_reply(&reply), "error MissingTableName");
    }
}
