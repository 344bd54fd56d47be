//! One cold start of one function binary: spawn it against a fresh runtime API, time spawn → first
//! `next` (init) and event handed out → reply posted (first invocation), read its peak resident
//! memory, then kill it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::process::Command;
use tokio::time::timeout;

use crate::runtime_api::{Reply, RuntimeApi, Signal};

/// A phase that takes longer than this has hung (real cold starts take milliseconds).
const PHASE_TIMEOUT: Duration = Duration::from_secs(20);

/// One measured cold start.
#[derive(Debug, Clone)]
pub struct Sample {
    pub init_us: u64,
    pub first_invoke_us: u64,
    pub peak_rss_kb: u64,
    pub reply: Reply,
}

/// Why a cold start could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("could not serve the runtime API: {0}")]
    RuntimeApi(std::io::Error),
    #[error("could not start {path}: {source}")]
    Spawn {
        path: String,
        source: std::io::Error,
    },
    #[error("the function reported an init error: {0}")]
    InitError(String),
    #[error("the function exited ({0}) before answering")]
    Exited(String),
    #[error("no {0} within {PHASE_TIMEOUT:?}")]
    TimedOut(&'static str),
    #[error("could not read the function's peak memory: {0}")]
    PeakMemory(String),
}

/// Runs `binary` once as Lambda would run a cold function and measures it.
pub async fn cold_start(
    binary: &Path,
    function_name: &str,
    event: Bytes,
    env: &BTreeMap<String, String>,
    show_output: bool,
) -> Result<Sample, MeasureError> {
    let (api, mut signals) = RuntimeApi::start(event, function_name)
        .await
        .map_err(MeasureError::RuntimeApi)?;
    let output = || {
        if show_output {
            Stdio::inherit()
        } else {
            Stdio::null()
        }
    };
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(env)
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
        .stdin(Stdio::null())
        .stdout(output())
        .stderr(output())
        .kill_on_drop(true);

    let spawned_at = std::time::Instant::now();
    let mut child = command.spawn().map_err(|source| MeasureError::Spawn {
        path: binary.display().to_string(),
        source,
    })?;
    let pid = child
        .id()
        .ok_or_else(|| MeasureError::Exited("at once".to_owned()))?;

    // Every wait below also watches the process, so a crash is reported as one, not as a timeout.
    let (arrived_at, handed_out_at) = loop {
        let signal = tokio::select! {
            signal = timeout(PHASE_TIMEOUT, signals.recv()) => signal.map_err(|_| MeasureError::TimedOut("first `next` request"))?,
            status = child.wait() => return Err(MeasureError::Exited(describe_exit(status))),
        };
        match signal {
            Some(Signal::FirstNext {
                arrived_at,
                handed_out_at,
            }) => break (arrived_at, handed_out_at),
            Some(Signal::InitError { body }) => return Err(MeasureError::InitError(body)),
            Some(Signal::Finished { .. }) | None => {}
        }
    };
    let (finished_at, reply) = loop {
        let signal = tokio::select! {
            signal = timeout(PHASE_TIMEOUT, signals.recv()) => signal.map_err(|_| MeasureError::TimedOut("reply to the first invocation"))?,
            status = child.wait() => return Err(MeasureError::Exited(describe_exit(status))),
        };
        if let Some(Signal::Finished { at, reply }) = signal {
            break (at, reply);
        }
    };

    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|error| MeasureError::PeakMemory(error.to_string()))?;
    let peak_rss_kb = crate::report::peak_rss_kb(&status).ok_or_else(|| {
        MeasureError::PeakMemory("no VmHWM line in /proc/<pid>/status".to_owned())
    })?;

    // The function is parked in its second `next`; a cold start is over, so is this process.
    let _ = child.start_kill();
    let _ = child.wait().await;
    drop(api);

    Ok(Sample {
        init_us: micros(arrived_at - spawned_at),
        first_invoke_us: micros(finished_at - handed_out_at),
        peak_rss_kb,
        reply,
    })
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn describe_exit(status: std::io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("wait failed: {error}"),
    }
}
