//! Logging: tracing to stderr, filtered by `RUST_LOG` or the `log` setting,
//! as text or as JSON lines (`log_format`).

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line: timestamp, level, target, fields, and the
    /// current span's fields (a request's id, method and path).
    Json,
}

pub fn init(default_filter: &str, format: LogFormat) {
    let _ = install(default_filter, format, std::io::stderr);
}

/// Installs the global subscriber writing to `writer`; an error if one is
/// already installed.
pub fn install<W>(
    default_filter: &str,
    format: LogFormat,
    writer: W,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    }
}
