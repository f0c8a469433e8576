//! Spans, one resource per request.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

/// A client span (a gateway's call to a model) with fixed trace and span ids.
pub fn span(name: &str, attributes: Vec<KeyValue>, start: u64, end: u64) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

/// One `chat` span per model `model-<m>` for `m` in `models`: a series each.
pub fn chat_spans_per_model(models: std::ops::Range<u32>, start: u64, end: u64) -> Vec<Span> {
    models
        .map(|m| {
            span(
                "chat",
                vec![crate::string_kv(
                    "gen_ai.request.model",
                    format!("model-{m}"),
                )],
                start,
                end,
            )
        })
        .collect()
}

pub fn error_status() -> Option<Status> {
    Some(Status {
        code: status::StatusCode::Error as i32,
        message: "upstream failed".into(),
    })
}

pub fn traces_request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
