//! Structured JSON logs on stdout (CloudWatch on Lambda), filtered by `RUST_LOG` (default
//! `info`). Request and record spans are opened by the edges (`coins-http`'s `serve`, the
//! stream consumers), so every line carries its request id.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The functions' subscriber: one flat JSON object a line, with the current span's fields (the
/// request id), written to `writer`.
pub fn json_logs<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .finish()
}

/// Installs [`json_logs`] on stdout. Safe to call twice (the second call does nothing), so tests
/// and tools may call it freely.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing::subscriber::set_global_default(json_logs(filter, std::io::stdout));
}
