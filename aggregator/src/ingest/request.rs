//! What ingest needs to know about each OTLP export request type, so the
//! gRPC and HTTP receivers handle metrics and traces with one code path.

use std::future::Future;
use std::pin::Pin;

use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

use super::otlp_json::{self, JsonError};
use crate::pipeline::{ExportError, ExportOutcome, ExportSink};
use crate::signal::Origin;

type ExportFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ExportOutcome, ExportError>> + Send + 'a>>;

/// An OTLP `Export*ServiceRequest` this aggregator accepts.
pub trait OtlpRequest: prost::Message + Default + Sized + Send + 'static {
    /// `SelfMetrics` signal label.
    const SIGNAL: &'static str;
    const MESSAGE_NAME: &'static str;
    type Response: prost::Message + Default + Send + 'static;

    /// Spans or data points carried (what partial success counts).
    fn item_count(&self) -> u64;

    fn decode_json(body: &[u8]) -> Result<Self, JsonError>;

    fn send<'a>(self, sink: &'a dyn ExportSink, origin: &'a Origin) -> ExportFuture<'a>;

    /// The OTLP success response: `partial_success` unset on full success,
    /// set when items were rejected or the sink has a warning to pass on.
    fn response(outcome: &ExportOutcome) -> Self::Response;

    /// The same response in the OTLP/JSON mapping (int64 as a string).
    fn response_json(outcome: &ExportOutcome) -> serde_json::Value;
}

fn has_partial_success(outcome: &ExportOutcome) -> bool {
    outcome.rejected != 0 || !outcome.message.is_empty()
}

fn partial_success_json(outcome: &ExportOutcome, rejected_key: &str) -> serde_json::Value {
    if !has_partial_success(outcome) {
        return serde_json::json!({});
    }
    serde_json::json!({
        "partialSuccess": {
            rejected_key: outcome.rejected.to_string(),
            "errorMessage": outcome.message,
        }
    })
}

impl OtlpRequest for ExportMetricsServiceRequest {
    const SIGNAL: &'static str = "metrics";
    const MESSAGE_NAME: &'static str = "ExportMetricsServiceRequest";
    type Response = ExportMetricsServiceResponse;

    fn item_count(&self) -> u64 {
        let points = |data: &Data| match data {
            Data::Gauge(g) => g.data_points.len(),
            Data::Sum(s) => s.data_points.len(),
            Data::Histogram(h) => h.data_points.len(),
            Data::ExponentialHistogram(e) => e.data_points.len(),
            Data::Summary(s) => s.data_points.len(),
        };
        self.resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .filter_map(|m| m.data.as_ref())
            .map(|d| points(d) as u64)
            .sum()
    }

    fn decode_json(body: &[u8]) -> Result<Self, JsonError> {
        otlp_json::decode_metrics(body)
    }

    fn send<'a>(self, sink: &'a dyn ExportSink, origin: &'a Origin) -> ExportFuture<'a> {
        sink.export_metrics(origin, self)
    }

    fn response(outcome: &ExportOutcome) -> Self::Response {
        ExportMetricsServiceResponse {
            partial_success: has_partial_success(outcome).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: outcome.rejected,
                error_message: outcome.message.clone(),
            }),
        }
    }

    fn response_json(outcome: &ExportOutcome) -> serde_json::Value {
        partial_success_json(outcome, "rejectedDataPoints")
    }
}

impl OtlpRequest for ExportTraceServiceRequest {
    const SIGNAL: &'static str = "traces";
    const MESSAGE_NAME: &'static str = "ExportTraceServiceRequest";
    type Response = ExportTraceServiceResponse;

    fn item_count(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum()
    }

    fn decode_json(body: &[u8]) -> Result<Self, JsonError> {
        otlp_json::decode_traces(body)
    }

    fn send<'a>(self, sink: &'a dyn ExportSink, origin: &'a Origin) -> ExportFuture<'a> {
        sink.export_traces(origin, self)
    }

    fn response(outcome: &ExportOutcome) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: has_partial_success(outcome).then(|| ExportTracePartialSuccess {
                rejected_spans: outcome.rejected,
                error_message: outcome.message.clone(),
            }),
        }
    }

    fn response_json(outcome: &ExportOutcome) -> serde_json::Value {
        partial_success_json(outcome, "rejectedSpans")
    }
}
