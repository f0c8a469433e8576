//! Payloads whose items normalize refuses or drops, each with a known count:
//! the ones that lose data (series budget, unsupported types, malformed
//! items) and the ones that are deduplication by design (a retried point, a
//! deprecated name next to its replacement, a lower-ranked vantage).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Metric, Summary, SummaryDataPoint, metric,
};
use opentelemetry_proto::tonic::trace::v1::Span;

use crate::{
    OLD_START, agent_resource, counter, delta_counter, double_kv, gauge, metrics_request, number,
    span, string_kv,
};

/// Resource attributes naming a tenant and a cluster (unauthenticated ingest
/// takes the cluster from here).
pub fn resource(tenant: &str, cluster: &str) -> Vec<KeyValue> {
    agent_resource(tenant, cluster, "vllm", "pod-0")
}

/// One `vllm:num_requests_waiting` reading per model: one RequestLifecycle
/// series per model, so `models` series against the tenant's budget.
pub fn queue_depth_per_model(
    resource: Vec<KeyValue>,
    models: std::ops::Range<usize>,
    time: u64,
) -> ExportMetricsServiceRequest {
    let points = models
        .map(|m| {
            number(
                vec![string_kv("model_name", format!("model-{m}"))],
                0,
                time,
                1.0,
            )
        })
        .collect();
    metrics_request(resource, vec![gauge("vllm:num_requests_waiting", points)])
}

/// `exponential` exponential-histogram points and `summaries` summary points
/// of a mapped metric name: accepted on the wire, dropped as unsupported.
pub fn unsupported_types(exponential: usize, summaries: usize, time: u64) -> Vec<Metric> {
    let exponential_point = ExponentialHistogramDataPoint {
        attributes: vec![string_kv("model_name", "model-0")],
        time_unix_nano: time,
        count: 4,
        sum: Some(1.0),
        ..Default::default()
    };
    let summary_point = SummaryDataPoint {
        attributes: vec![string_kv("model_name", "model-0")],
        time_unix_nano: time,
        count: 4,
        sum: 1.0,
        ..Default::default()
    };
    vec![
        Metric {
            name: "vllm:time_to_first_token_seconds".into(),
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![exponential_point; exponential],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
        Metric {
            name: "vllm:e2e_request_latency_seconds".into(),
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![summary_point; summaries],
            })),
            ..Default::default()
        },
    ]
}

/// Data points rejected as malformed inside a valid identity: a model that
/// is free text, and a gauge without a value.
pub fn malformed_points(time: u64) -> Vec<Metric> {
    let mut no_value = number(vec![string_kv("model_name", "model-0")], 0, time, 0.0);
    no_value.value = None;
    vec![gauge(
        "vllm:num_requests_running",
        vec![
            number(
                vec![string_kv(
                    "model_name",
                    "tell me a story about my bank account",
                )],
                0,
                time,
                1.0,
            ),
            no_value,
        ],
    )]
}

/// Spans rejected as malformed: an unknown `modelplane.signal`, a sample
/// rate out of range, a prefix hash that is text.
pub fn malformed_spans(start: u64, end: u64) -> Vec<Span> {
    vec![
        span(
            "chat",
            vec![
                string_kv("gen_ai.request.model", "model-0"),
                string_kv("modelplane.signal", "Everything"),
            ],
            start,
            end,
        ),
        span(
            "chat",
            vec![
                string_kv("gen_ai.request.model", "model-0"),
                double_kv("modelplane.sample_rate", 7.0),
            ],
            start,
            end,
        ),
        span(
            "chat",
            vec![
                string_kv("gen_ai.request.model", "model-0"),
                string_kv("modelplane.prefix.hash", "the system prompt"),
            ],
            start,
            end,
        ),
    ]
}

/// A valid request span of `model-0`.
pub fn request_span(start: u64, end: u64) -> Span {
    span(
        "chat",
        vec![string_kv("gen_ai.request.model", "model-0")],
        start,
        end,
    )
}

/// A cumulative engine counter of an old process: the first export primes
/// state, the same export again is `duplicate_point` (one data point).
pub fn retried_counter(resource: Vec<KeyValue>, time: u64) -> ExportMetricsServiceRequest {
    metrics_request(
        resource,
        vec![counter(
            "vllm:prompt_tokens_total",
            vec![number(
                vec![string_kv("model_name", "model-0")],
                OLD_START,
                time,
                5.0,
            )],
        )],
    )
}

/// vLLM's deprecated prefix-cache name next to its replacement: the old
/// name's one point is `superseded_metric_name`.
pub fn superseded_name(
    resource: Vec<KeyValue>,
    start: u64,
    time: u64,
) -> ExportMetricsServiceRequest {
    let point = || {
        vec![number(
            vec![string_kv("model_name", "model-0")],
            start,
            time,
            10.0,
        )]
    };
    metrics_request(
        resource,
        vec![
            delta_counter("vllm:prefix_cache_queries_total", point()),
            delta_counter("vllm:gpu_prefix_cache_queries_total", point()),
        ],
    )
}

/// The engine's request count, then the router's count of the same
/// requests: the router's one point is `outranked_source`.
pub fn engine_then_router(
    resource: Vec<KeyValue>,
    start: u64,
    time: u64,
) -> [ExportMetricsServiceRequest; 2] {
    let point = || {
        vec![number(
            vec![string_kv("model_name", "model-0")],
            start,
            time,
            3.0,
        )]
    };
    [
        metrics_request(
            resource.clone(),
            vec![delta_counter("vllm:request_success_total", point())],
        ),
        metrics_request(
            resource,
            vec![delta_counter("llm_d_epp_request_total", point())],
        ),
    ]
}
