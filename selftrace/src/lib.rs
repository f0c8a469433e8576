//! The aggregator's and the function's own spans over OTLP.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither `OTEL_SDK_DISABLED=true`
//! nor `OTEL_TRACES_EXPORTER=none`). Everything else comes from the standard
//! variables, read by `opentelemetry-otlp`: `OTEL_EXPORTER_OTLP_PROTOCOL` /
//! `..._TRACES_PROTOCOL` (`http/protobuf`, the default, or `grpc`),
//! `..._HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES` and the batch processor's `OTEL_BSP_*`.
//!
//! The SDK's batch processor exports on a thread of its own; the OTLP
//! clients (tonic, hyper) need the tokio runtime, so every export is spawned
//! onto the runtime that was current when [`from_env`] ran.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter, Tracer};

pub use opentelemetry_otlp::ExporterBuildError;

/// The variables that turn export on; without one of them nothing is built.
pub const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

/// Whether the environment asks for span export.
pub fn requested() -> bool {
    requested_in(|name| std::env::var(name).ok())
}

fn requested_in(var: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| var(name).is_some_and(|v| !v.trim().is_empty());
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let none = var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    ENDPOINT_VARIABLES.iter().any(|name| set(name)) && !disabled && !none
}

/// A running span exporter: hand [`SelfTracing::tracer`] to whatever
/// creates spans, and call [`SelfTracing::shutdown`] before exiting so the
/// last batch leaves.
#[derive(Debug)]
pub struct SelfTracing {
    provider: SdkTracerProvider,
}

/// Builds the exporter the environment describes, or `None` when span export
/// is not requested. Call inside the tokio runtime that stays up while the
/// binary runs (its handle carries every export).
pub fn from_env(
    service_name: &'static str,
    service_version: &'static str,
) -> Result<Option<SelfTracing>, ExporterBuildError> {
    if !requested() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder().build()?;
    let handle = tokio::runtime::Handle::try_current().map_err(|e| {
        ExporterBuildError::InternalFailure(format!("span export needs a tokio runtime: {e}"))
    })?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service_name);
    }
    let resource = resource
        .with_attribute(KeyValue::new("service.version", service_version))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(OnRuntime {
            inner: Arc::new(exporter),
            handle,
        })
        .build();
    Ok(Some(SelfTracing { provider }))
}

impl SelfTracing {
    /// A tracer named after the instrumented component.
    pub fn tracer(&self, scope: &'static str) -> Tracer {
        self.provider.tracer(scope)
    }

    /// The provider, e.g. for `opentelemetry::global::set_tracer_provider`.
    pub fn provider(&self) -> &SdkTracerProvider {
        &self.provider
    }

    /// Exports what is queued and stops. Call from outside the runtime's
    /// worker threads (after `block_on` returned): the exports run on it.
    pub fn shutdown(self) -> OTelSdkResult {
        self.provider.shutdown()
    }
}

/// Runs the inner exporter's futures on the tokio runtime.
#[derive(Debug)]
struct OnRuntime<E> {
    inner: Arc<E>,
    handle: tokio::runtime::Handle,
}

impl<E: SpanExporter + 'static> SpanExporter for OnRuntime<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let inner = Arc::clone(&self.inner);
        match self
            .handle
            .spawn(async move { inner.export(batch).await })
            .await
        {
            Ok(result) => result,
            Err(e) => Err(OTelSdkError::InternalFailure(format!(
                "span export task failed: {e}"
            ))),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        // Called once while the provider is built, before any export holds a clone.
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.set_resource(resource);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn off_unless_an_endpoint_is_set() {
        assert!(!requested_in(env(&[])));
        assert!(!requested_in(env(&[(
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "grpc"
        )])));
        assert!(!requested_in(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])));
        assert!(requested_in(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://collector:4318"
        )])));
        assert!(requested_in(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://collector:4318/v1/traces"
        )])));
    }

    #[test]
    fn the_standard_switches_turn_it_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert!(!requested_in(env(&[
            endpoint,
            ("OTEL_SDK_DISABLED", "true")
        ])));
        assert!(!requested_in(env(&[
            endpoint,
            ("OTEL_TRACES_EXPORTER", "none")
        ])));
        assert!(requested_in(env(&[
            endpoint,
            ("OTEL_SDK_DISABLED", "false")
        ])));
        assert!(requested_in(env(&[
            endpoint,
            ("OTEL_TRACES_EXPORTER", "otlp")
        ])));
    }
}
