//! Logging: tracing to stderr, filtered by `RUST_LOG` or the `log` setting,
//! as text or as JSON lines (`log_format`).
//!
//! actix-http logs every connection it gives up on (a malformed request
//! head, a bad chunked body, a client that hung up mid-request) at ERROR,
//! from its dispatcher. Those are the client's mistakes, and a client can
//! make them as fast as it can send: [`ClientErrors`] writes each as a WARN
//! line `client error` (target `surge::client_error`, with `kind`, the
//! dispatcher's own text as `detail`, and how many such lines were
//! `suppressed` before it), at most `log_client_errors_per_s` a second
//! ([`crate::log_limit`]). Nothing else is changed.

use crate::log_limit::{self, Kind};
use std::fmt;
use tracing::field::{Field, FieldSet, Visit};
use tracing::metadata::Kind as CallsiteKind;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::callsite::DefaultCallsite;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Layered, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

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

/// Log targets whose ERROR lines are about one client's connection.
pub const CLIENT_ERROR_TARGETS: &[&str] =
    &["actix_http::h1::dispatcher", "actix_http::h1::decoder"];

/// The target of the lines that replace them.
pub const CLIENT_ERROR_TARGET: &str = "surge::client_error";

pub fn init(default_filter: &str, format: LogFormat, client_errors_per_s: u32) {
    log_limit::init(client_errors_per_s);
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
    subscriber(default_filter, format, writer).try_init()?;
    Ok(())
}

type Filtered = Layered<EnvFilter, Registry>;

/// The subscriber [`install`] installs (tests use it scoped).
pub fn subscriber<W>(
    default_filter: &str,
    format: LogFormat,
    writer: W,
) -> impl Subscriber + Send + Sync + for<'a> LookupSpan<'a>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let lines: Box<dyn Layer<Filtered> + Send + Sync> = match format {
        LogFormat::Text => Box::new(tracing_subscriber::fmt::layer().with_writer(writer)),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(writer),
        ),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(ClientErrors { inner: lines })
}

/// Whether an event is a client's mistake logged at ERROR by actix-http.
pub fn is_client_error(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && CLIENT_ERROR_TARGETS.contains(&meta.target())
}

/// Wraps the layer that writes lines: actix-http's client errors become
/// rate-limited WARN lines; every other event and span passes unchanged.
pub struct ClientErrors<L> {
    inner: L,
}

static CLIENT_ERROR_FIELDS: &[&str] = &["message", "kind", "detail", "suppressed"];
static CLIENT_ERROR_META: Metadata<'static> = Metadata::new(
    "client error",
    CLIENT_ERROR_TARGET,
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(
        CLIENT_ERROR_FIELDS,
        tracing_core::identify_callsite!(&CLIENT_ERROR_CALLSITE),
    ),
    CallsiteKind::EVENT,
);
static CLIENT_ERROR_CALLSITE: DefaultCallsite = DefaultCallsite::new(&CLIENT_ERROR_META);

/// Collects an event's fields as text.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

impl<L> ClientErrors<L> {
    fn client_error<S>(&self, event: &Event<'_>, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
        L: Layer<S>,
    {
        if !ctx.enabled(&CLIENT_ERROR_META) {
            return;
        }
        let Some(suppressed) = log_limit::admit(Kind::Malformed) else {
            return;
        };
        let mut detail = Text::default();
        event.record(&mut detail);
        let fields = CLIENT_ERROR_META.fields();
        let message = format_args!("client error");
        let kind = Kind::Malformed.as_str();
        let detail = detail.0.as_str();
        let values: [Option<&dyn tracing::Value>; 4] = [
            Some(&message),
            Some(&kind),
            Some(&detail),
            Some(&suppressed),
        ];
        let values = fields.value_set_all(&values);
        self.inner
            .on_event(&Event::new(&CLIENT_ERROR_META, &values), ctx);
    }
}

impl<S, L> Layer<S> for ClientErrors<L>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        metadata: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.inner.register_callsite(metadata)
    }

    fn enabled(&self, metadata: &Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.enabled(metadata, ctx)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    fn on_record(
        &self,
        span: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_record(span, values, ctx);
    }

    fn on_follows_from(
        &self,
        span: &tracing::span::Id,
        follows: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        self.inner.on_follows_from(span, follows, ctx);
    }

    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        self.inner.event_enabled(event, ctx)
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if is_client_error(event.metadata()) {
            self.client_error(event, ctx);
        } else {
            self.inner.on_event(event, ctx);
        }
    }

    fn on_enter(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &tracing::span::Id, new: &tracing::span::Id, ctx: Context<'_, S>) {
        self.inner.on_id_change(old, new, ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Buf {
        type Writer = Buf;
        fn make_writer(&'a self) -> Buf {
            self.clone()
        }
    }

    fn lines(format: LogFormat, filter: &str, f: impl FnOnce()) -> Vec<String> {
        let buf = Buf::default();
        tracing::subscriber::with_default(subscriber(filter, format, buf.clone()), f);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(String::from).collect()
    }

    /// actix-http's dispatcher errors are written at WARN as `client
    /// error`, at most the limit of them (the process-wide limit is 10 a
    /// second unless set); other errors are untouched.
    #[test]
    fn actix_client_errors_are_warnings_and_rate_limited() {
        let out = lines(LogFormat::Json, "info", || {
            tracing::error!(target: "surge::other", "a real error");
            for i in 0..200 {
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error: parse error {i}");
            }
        });
        let values: Vec<serde_json::Value> = out
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let real: Vec<_> = values
            .iter()
            .filter(|v| v["target"] == "surge::other")
            .collect();
        assert_eq!(real.len(), 1);
        assert_eq!(real[0]["level"], "ERROR");
        let client: Vec<_> = values
            .iter()
            .filter(|v| v["target"] == CLIENT_ERROR_TARGET)
            .collect();
        assert!(!client.is_empty() && client.len() <= 20, "{out:?}");
        assert!(values
            .iter()
            .all(|v| v["target"] == "surge::other" || v["level"] == "WARN"));
        assert!(values
            .iter()
            .all(|v| !v["target"].as_str().unwrap().starts_with("actix_http")));
        assert_eq!(client[0]["fields"]["message"], "client error");
        assert_eq!(client[0]["fields"]["kind"], "malformed");
        assert!(client[0]["fields"]["detail"]
            .as_str()
            .unwrap()
            .starts_with("stream error: parse error"));
    }

    /// With the level set above WARN they are not written at all.
    #[test]
    fn client_errors_follow_the_filter() {
        let out = lines(LogFormat::Text, "error", || {
            tracing::error!(target: "actix_http::h1::dispatcher", "stream error: x");
            tracing::error!(target: "surge::other", "kept");
        });
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].contains("ERROR") && out[0].contains("kept"),
            "{out:?}"
        );
    }
}
