//! Logs (stderr, `pretty` or `json`) and, when `otlp_endpoint` is set,
//! OpenTelemetry traces of the gateway's spans over OTLP/HTTP (protobuf),
//! batched, with `service.name = warden`. The spans themselves are made in
//! `warden_gateway::telemetry`; see ARCHITECTURE.md, "Tracing".

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::error::WardenError;

/// The installed exporter, if any; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// The OTLP/HTTP traces URL of a collector base URL.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_owned()
    } else {
        format!("{base}/v1/traces")
    }
}

fn provider(endpoint: &str) -> Result<SdkTracerProvider, WardenError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(endpoint))
        .build()
        .map_err(|e| WardenError::Config(format!("otlp_endpoint: {e}")))?;
    let resource = Resource::builder()
        .with_service_name("warden")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Installs the log subscriber and, with an endpoint, the trace exporter.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> Result<Telemetry, WardenError> {
    let provider = otlp_endpoint.map(provider).transpose()?;
    let mut filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The trace spans are for the exporter only: log lines stay as they were.
    if let Ok(directive) = format!("{}=off", warden_gateway::telemetry::TARGET).parse() {
        filter = filter.add_directive(directive);
    }
    let logs = tracing_subscriber::fmt::layer()
        .with_ansi(log_colours())
        .with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.json().boxed(),
        LogFormat::Pretty => logs.boxed(),
    }
    .with_filter(filter);
    // Only the gateway's spans are exported: no log events (whose text may
    // carry upstream detail) become span events.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("warden"))
            .with_filter(
                Targets::new().with_target(warden_gateway::telemetry::TARGET, LevelFilter::INFO),
            )
    });
    // A second init (tests in one process) is harmless: keep the first.
    let installed = tracing_subscriber::registry()
        .with(logs)
        .with(traces)
        .try_init()
        .is_ok();
    if installed && provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        warden_gateway::telemetry::enable();
        tracing::info!("traces exported over OTLP/HTTP (service.name = warden)");
    }
    Ok(Telemetry { provider })
}

/// Colour codes only for a person at a terminal: not in a log file or a
/// pipe, and not with `NO_COLOR` set (<https://no-color.org>).
fn log_colours() -> bool {
    use std::io::IsTerminal;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

impl Telemetry {
    /// Exports the spans still batched (graceful shutdown).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let done = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "trace exporter shutdown"),
            Err(e) => tracing::warn!(error = %e, "trace exporter shutdown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::traces_url;

    #[test]
    fn traces_url_appends_the_signal_path_once() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
