//! `signal-aggregator`: OTLP in on 4317/4318, query API on 8080. Parses the
//! flags, sets up logging and runs [`app`](signal_aggregator::app).

use std::process::ExitCode;

use clap::Parser as _;

use signal_aggregator::app::{self, Config, LogFormat};

fn main() -> ExitCode {
    let config = Config::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("signal-aggregator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The aggregator's own spans over OTLP, only when OTEL_EXPORTER_OTLP_*ENDPOINT is set.
    let self_tracing = {
        let _entered = runtime.enter();
        match selftrace::from_env("signal-aggregator", env!("CARGO_PKG_VERSION")) {
            Ok(self_tracing) => self_tracing,
            Err(error) => {
                eprintln!(
                    "signal-aggregator: cannot export spans as OTEL_EXPORTER_OTLP_* asks: {error}"
                );
                return ExitCode::from(2);
            }
        }
    };
    init_logging(config.log_format, self_tracing.as_ref());
    if self_tracing.is_some() {
        tracing::info!("exporting the aggregator's own spans over OTLP");
    }
    let result = runtime.block_on(app::run(config));
    // Off the runtime's threads: the last batch is exported on them.
    if let Some(self_tracing) = self_tracing
        && let Err(error) = self_tracing.shutdown()
    {
        tracing::warn!(%error, "the last spans could not be exported");
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "signal-aggregator stopped");
            eprintln!("signal-aggregator: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr under `RUST_LOG` (default `info`); with span export on,
/// the aggregator's own spans (never its log events) also go to OTLP,
/// whatever `RUST_LOG` says.
fn init_logging(format: LogFormat, self_tracing: Option<&selftrace::SelfTracing>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let spans = self_tracing.map(|self_tracing| {
        tracing_opentelemetry::layer()
            .with_tracer(self_tracing.tracer("signal-aggregator"))
            .with_location(false)
            .with_target(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
                meta.is_span()
                    && meta.target().starts_with("signal_aggregator")
                    && *meta.level() <= tracing::Level::INFO
            }))
    });
    // Logs stay events only, as before spans existed: with span export off
    // no span is enabled, so `ingest` costs nothing (not even its sizes).
    let events_only = tracing_subscriber::filter::filter_fn(|meta| meta.is_event());
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter.and(events_only)))
        .with(spans)
        .init();
}
