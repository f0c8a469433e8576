//! The same OTLP data twice: prost messages and hand-written OTLP/JSON.
//! The JSON deliberately mixes encodings the spec allows: 64-bit integers as
//! strings and as numbers, hex ids in upper and lower case, enums as numbers
//! (and one by name), snake_case keys next to lowerCamelCase, unknown fields.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::metrics::v1::{
    Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram,
    HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary,
    SummaryDataPoint, exemplar, exponential_histogram_data_point::Buckets, metric,
    number_data_point, summary_data_point::ValueAtQuantile,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};

use crate::{array_kv, double_kv, int_kv, kv, string_kv};

/// Attributes of every `AnyValue` kind.
fn every_value_kind() -> Vec<KeyValue> {
    use any_value::Value as V;
    vec![
        string_kv("modelplane.cluster", "eu-west-1"),
        kv("flag", V::BoolValue(true)),
        // Above 2^53: only exact if decoded from a string.
        int_kv("big", 9_007_199_254_740_993),
        int_kv("negative", -42),
        double_kv("ratio", 0.25),
        array_kv(
            "list",
            vec![
                V::StringValue("a".into()),
                V::IntValue(7),
                V::DoubleValue(1.5),
                V::BoolValue(false),
            ],
        ),
        kv(
            "map",
            V::KvlistValue(KeyValueList {
                values: vec![
                    string_kv("inner", "x"),
                    kv(
                        "nested",
                        V::KvlistValue(KeyValueList {
                            values: vec![kv("deep", V::IntValue(1))],
                        }),
                    ),
                ],
            }),
        ),
        kv("raw", V::BytesValue(vec![0, 1, 2, 0xfe, 0xff])),
        KeyValue {
            key: "empty".into(),
            value: Some(AnyValue { value: None }),
            key_strindex: 0,
        },
    ]
}

const EVERY_VALUE_KIND_JSON: &str = r#"[
  {"key": "modelplane.cluster", "value": {"stringValue": "eu-west-1"}},
  {"key": "flag", "value": {"boolValue": true}},
  {"key": "big", "value": {"intValue": "9007199254740993"}},
  {"key": "negative", "value": {"intValue": -42}},
  {"key": "ratio", "value": {"doubleValue": 0.25}},
  {"key": "list", "value": {"arrayValue": {"values": [
      {"stringValue": "a"}, {"intValue": "7"}, {"doubleValue": 1.5}, {"boolValue": false}]}}},
  {"key": "map", "value": {"kvlistValue": {"values": [
      {"key": "inner", "value": {"stringValue": "x"}},
      {"key": "nested", "value": {"kvlistValue": {"values": [
          {"key": "deep", "value": {"intValue": 1}}]}}}]}}},
  {"key": "raw", "value": {"bytesValue": "AAEC/v8="}},
  {"key": "empty", "value": {}}
]"#;

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "vllm".into(),
        version: "0.11.0".into(),
        attributes: vec![string_kv("scope.attr", "v")],
        dropped_attributes_count: 1,
    }
}

const SCOPE_JSON: &str = r#"{"name": "vllm", "version": "0.11.0",
  "attributes": [{"key": "scope.attr", "value": {"stringValue": "v"}}],
  "droppedAttributesCount": 1}"#;

const TRACE_ID: [u8; 16] = [
    0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c,
];
const SPAN_ID: [u8; 8] = [0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74];
const PARENT_ID: [u8; 8] = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08];

pub fn rich_metrics() -> ExportMetricsServiceRequest {
    let start = 1_544_712_660_000_000_000u64;
    let time = 1_544_712_661_000_000_000u64;
    let exemplar = |value| Exemplar {
        filtered_attributes: vec![string_kv("exemplar.attr", "e")],
        time_unix_nano: time,
        span_id: SPAN_ID.to_vec(),
        trace_id: TRACE_ID.to_vec(),
        value: Some(value),
    };
    let metrics = vec![
        Metric {
            name: "vllm:num_requests_waiting".into(),
            description: "queue".into(),
            unit: "1".into(),
            metadata: vec![string_kv("prometheus.type", "gauge")],
            data: Some(metric::Data::Gauge(Gauge {
                data_points: vec![
                    NumberDataPoint {
                        attributes: vec![string_kv("model_name", "llama")],
                        start_time_unix_nano: 0,
                        time_unix_nano: time,
                        exemplars: vec![exemplar(exemplar::Value::AsDouble(0.5))],
                        flags: 0,
                        value: Some(number_data_point::Value::AsDouble(3.5)),
                    },
                    NumberDataPoint {
                        attributes: vec![],
                        start_time_unix_nano: 0,
                        time_unix_nano: time,
                        exemplars: vec![],
                        flags: 1,
                        value: Some(number_data_point::Value::AsDouble(f64::INFINITY)),
                    },
                ],
            })),
        },
        Metric {
            name: "vllm:prompt_tokens_total".into(),
            description: String::new(),
            unit: "{token}".into(),
            metadata: vec![],
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    attributes: every_value_kind(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    exemplars: vec![exemplar(exemplar::Value::AsInt(-5))],
                    flags: 0,
                    value: Some(number_data_point::Value::AsInt(i64::MAX)),
                }],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
        },
        Metric {
            name: "vllm:time_to_first_token_seconds".into(),
            description: "ttft".into(),
            unit: "s".into(),
            metadata: vec![],
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    attributes: vec![string_kv("model_name", "llama")],
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: u64::MAX,
                    sum: Some(12.75),
                    bucket_counts: vec![1, 2, u64::MAX - 3],
                    explicit_bounds: vec![0.1, 0.5],
                    exemplars: vec![exemplar(exemplar::Value::AsDouble(f64::NEG_INFINITY))],
                    flags: 0,
                    min: Some(0.0),
                    max: Some(2.0),
                }],
                aggregation_temporality: 1,
            })),
        },
        Metric {
            name: "gen_ai.client.operation.duration".into(),
            description: String::new(),
            unit: "s".into(),
            metadata: vec![],
            data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![ExponentialHistogramDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 8,
                    sum: Some(4.5),
                    scale: -3,
                    zero_count: 1,
                    positive: Some(Buckets {
                        offset: -2,
                        bucket_counts: vec![1, 0, 4],
                    }),
                    negative: Some(Buckets {
                        offset: 1,
                        bucket_counts: vec![2],
                    }),
                    flags: 0,
                    exemplars: vec![],
                    min: Some(-1.0),
                    max: Some(3.0),
                    zero_threshold: 1e-9,
                }],
                aggregation_temporality: 2,
            })),
        },
        Metric {
            name: "rpc.latency".into(),
            description: String::new(),
            unit: "ms".into(),
            metadata: vec![],
            data: Some(metric::Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    attributes: vec![],
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    count: 10,
                    sum: 17.5,
                    quantile_values: vec![
                        ValueAtQuantile {
                            quantile: 0.5,
                            value: 1.0,
                        },
                        ValueAtQuantile {
                            quantile: 0.99,
                            value: 2.5,
                        },
                    ],
                    flags: 0,
                }],
            })),
        },
        Metric {
            name: "no.data.yet".into(),
            description: String::new(),
            unit: String::new(),
            metadata: vec![],
            data: None,
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("modelplane.cluster", "eu-west-1"),
                    string_kv("k8s.namespace.name", "team-a"),
                ],
                dropped_attributes_count: 2,
                entity_refs: vec![],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.30.0".into(),
        }],
    }
}

/// Data points in [`rich_metrics`].
pub const RICH_METRICS_POINTS: u64 = 6;

pub fn rich_metrics_json() -> String {
    format!(
        r#"{{
  "resourceMetrics": [{{
    "resource": {{
      "attributes": [
        {{"key": "modelplane.cluster", "value": {{"stringValue": "eu-west-1"}}}},
        {{"key": "k8s.namespace.name", "value": {{"stringValue": "team-a"}}}}],
      "droppedAttributesCount": 2,
      "someFutureField": {{"ignored": true}}
    }},
    "scopeMetrics": [{{
      "scope": {SCOPE_JSON},
      "schemaUrl": "https://opentelemetry.io/schemas/1.30.0",
      "metrics": [
        {{"name": "vllm:num_requests_waiting", "description": "queue", "unit": "1",
          "metadata": [{{"key": "prometheus.type", "value": {{"stringValue": "gauge"}}}}],
          "gauge": {{"dataPoints": [
            {{"attributes": [{{"key": "model_name", "value": {{"stringValue": "llama"}}}}],
              "timeUnixNano": "1544712661000000000", "asDouble": 3.5,
              "exemplars": [{{"filteredAttributes": [{{"key": "exemplar.attr", "value": {{"stringValue": "e"}}}}],
                "timeUnixNano": 1544712661000000000, "spanId": "EEE19B7EC3C1B174",
                "traceId": "5b8efff798038103d269b633813fc60c", "asDouble": 0.5}}]}},
            {{"timeUnixNano": "1544712661000000000", "asDouble": "Infinity", "flags": 1}}]}}}},
        {{"name": "vllm:prompt_tokens_total", "unit": "{{token}}",
          "sum": {{"aggregationTemporality": 2, "isMonotonic": true, "dataPoints": [
            {{"attributes": {EVERY_VALUE_KIND_JSON},
              "startTimeUnixNano": "1544712660000000000", "timeUnixNano": 1544712661000000000,
              "asInt": "9223372036854775807",
              "exemplars": [{{"filteredAttributes": [{{"key": "exemplar.attr", "value": {{"stringValue": "e"}}}}],
                "timeUnixNano": "1544712661000000000", "spanId": "eee19b7ec3c1b174",
                "traceId": "5B8EFFF798038103D269B633813FC60C", "asInt": "-5"}}]}}]}}}},
        {{"name": "vllm:time_to_first_token_seconds", "description": "ttft", "unit": "s",
          "histogram": {{"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA", "dataPoints": [
            {{"attributes": [{{"key": "model_name", "value": {{"stringValue": "llama"}}}}],
              "startTimeUnixNano": "1544712660000000000", "timeUnixNano": "1544712661000000000",
              "count": "18446744073709551615", "sum": 12.75,
              "bucketCounts": ["1", 2, "18446744073709551612"], "explicitBounds": [0.1, 0.5],
              "min": 0, "max": 2.0,
              "exemplars": [{{"filteredAttributes": [{{"key": "exemplar.attr", "value": {{"stringValue": "e"}}}}],
                "timeUnixNano": "1544712661000000000", "spanId": "eee19b7ec3c1b174",
                "traceId": "5b8efff798038103d269b633813fc60c", "asDouble": "-Infinity"}}]}}]}}}},
        {{"name": "gen_ai.client.operation.duration", "unit": "s",
          "exponentialHistogram": {{"aggregationTemporality": 2, "dataPoints": [
            {{"startTimeUnixNano": "1544712660000000000", "timeUnixNano": "1544712661000000000",
              "count": "8", "sum": 4.5, "scale": -3, "zeroCount": "1",
              "positive": {{"offset": -2, "bucketCounts": ["1", "0", "4"]}},
              "negative": {{"offset": 1, "bucketCounts": [2]}},
              "min": -1, "max": 3, "zeroThreshold": 1e-9}}]}}}},
        {{"name": "rpc.latency", "unit": "ms",
          "summary": {{"dataPoints": [
            {{"start_time_unix_nano": "1544712660000000000", "time_unix_nano": "1544712661000000000",
              "count": "10", "sum": 17.5,
              "quantile_values": [{{"quantile": 0.5, "value": 1}}, {{"quantile": 0.99, "value": 2.5}}]}}]}}}},
        {{"name": "no.data.yet"}}
      ]
    }}],
    "schemaUrl": "https://opentelemetry.io/schemas/1.30.0"
  }}]
}}"#
    )
}

pub fn rich_traces() -> ExportTraceServiceRequest {
    let server_span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: SPAN_ID.to_vec(),
        trace_state: "vendor=1".into(),
        parent_span_id: PARENT_ID.to_vec(),
        flags: 0x301,
        name: "llm_request".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_544_712_660_000_000_000,
        end_time_unix_nano: 1_544_712_661_000_000_000,
        attributes: every_value_kind(),
        dropped_attributes_count: 3,
        events: vec![span::Event {
            time_unix_nano: 1_544_712_660_500_000_000,
            name: "first_token".into(),
            attributes: vec![double_kv("gen_ai.latency.time_to_first_token", 0.042)],
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 1,
        links: vec![span::Link {
            trace_id: TRACE_ID.to_vec(),
            span_id: PARENT_ID.to_vec(),
            trace_state: String::new(),
            attributes: vec![string_kv("link.kind", "retry")],
            dropped_attributes_count: 0,
            flags: 1,
        }],
        dropped_links_count: 2,
        status: Some(Status {
            message: "upstream timeout".into(),
            code: 2,
        }),
    };
    let client_span = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: PARENT_ID.to_vec(),
        trace_state: String::new(),
        parent_span_id: Vec::new(),
        flags: 0,
        name: "chat llama".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_544_712_659_000_000_000,
        end_time_unix_nano: 1_544_712_662_000_000_000,
        attributes: vec![string_kv("gen_ai.request.model", "llama")],
        dropped_attributes_count: 0,
        events: vec![],
        dropped_events_count: 0,
        links: vec![],
        dropped_links_count: 0,
        status: None,
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![string_kv("service.name", "gateway")],
                    dropped_attributes_count: 0,
                    entity_refs: vec![],
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans: vec![server_span, client_span],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

/// Spans in [`rich_traces`].
pub const RICH_TRACES_SPANS: u64 = 2;

pub fn rich_traces_json() -> String {
    format!(
        r#"{{
  "resourceSpans": [
    {{
      "resource": {{"attributes": [{{"key": "service.name", "value": {{"stringValue": "gateway"}}}}]}},
      "scopeSpans": [{{
        "scope": {SCOPE_JSON},
        "spans": [
          {{"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eeE19b7eC3C1B174",
            "traceState": "vendor=1", "parentSpanId": "0102030405060708", "flags": 769,
            "name": "llm_request", "kind": 2,
            "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": 1544712661000000000,
            "attributes": {EVERY_VALUE_KIND_JSON},
            "droppedAttributesCount": 3,
            "events": [{{"timeUnixNano": 1544712660500000000, "name": "first_token",
              "attributes": [{{"key": "gen_ai.latency.time_to_first_token", "value": {{"doubleValue": 0.042}}}}]}}],
            "droppedEventsCount": 1,
            "links": [{{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0102030405060708",
              "attributes": [{{"key": "link.kind", "value": {{"stringValue": "retry"}}}}], "flags": 1}}],
            "droppedLinksCount": "2",
            "status": {{"message": "upstream timeout", "code": 2}}}},
          {{"trace_id": "5b8efff798038103d269b633813fc60c", "span_id": "0102030405060708",
            "parent_span_id": "", "name": "chat llama", "kind": "SPAN_KIND_CLIENT",
            "start_time_unix_nano": "1544712659000000000", "end_time_unix_nano": "1544712662000000000",
            "attributes": [{{"key": "gen_ai.request.model", "value": {{"stringValue": "llama"}}}}],
            "status": null, "unknownExtension": [1, 2, 3]}}
        ]
      }}]
    }},
    {{"scopeSpans": [{{"spans": []}}]}}
  ]
}}"#
    )
}
