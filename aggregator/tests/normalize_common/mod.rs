//! OTLP payloads built by hand in the shapes the real agent sends (see
//! agent_capture.rs, which replays a capture of otelcol-k8s 0.159.0: counter
//! names keep `_total`, explicit-bucket histograms, gauges, and no start time
//! on cumulative points), plus helpers to read a normalized batch.
#![allow(dead_code)]

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use signal_aggregator::signal::{
    Field, FieldKey, Point, SeriesKey, SignalBatch, SignalKind, Value,
};

pub const SEC: u64 = 1_000_000_000;
/// A process start time long before the scrapes (first sighting only primes).
pub const OLD_START: u64 = 1_700_000_000 * SEC;
pub const T0: u64 = 1_700_003_600 * SEC;
pub const T1: u64 = T0 + 15 * SEC;

pub fn s(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

pub fn i(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

pub fn f(key: &str, value: f64) -> KeyValue {
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::DoubleValue(value)),
        }),
    }
}

pub fn array(key: &str, values: Vec<any_value::Value>) -> KeyValue {
    let values = values
        .into_iter()
        .map(|v| AnyValue { value: Some(v) })
        .collect();
    KeyValue {
        key: key.into(),
        key_strindex: 0,
        value: Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values })),
        }),
    }
}

/// Resource attributes as the agent sets them for a scraped pod: the
/// receiver names the job and instance and copies the pod's discovery
/// labels; the agent adds the engine and the cluster.
pub fn agent_resource(tenant_ns: &str, cluster: &str, engine: &str, pod: &str) -> Vec<KeyValue> {
    let job = match engine {
        "epp" => "llm-d-epp",
        "dcgm" => "dcgm-exporter",
        _ => "engines",
    };
    vec![
        s("service.name", job),
        s("service.instance.id", "10.1.0.4:8000"),
        s("server.port", "8000"),
        s("url.scheme", "http"),
        s("k8s.namespace.name", tenant_ns),
        s("k8s.pod.name", pod),
        s("k8s.pod.uid", &format!("uid-{pod}")),
        s("k8s.node.name", "gpu-node-7"),
        s("modelplane.cluster", cluster),
        s("modelplane.engine", engine),
    ]
}

pub fn number(attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

pub fn hist(
    attributes: Vec<KeyValue>,
    start: u64,
    time: u64,
    bounds: &[f64],
    counts: &[u64],
    sum: f64,
) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn metric(name: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        data: Some(data),
        ..Default::default()
    }
}

pub fn gauge(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    metric(name, metric::Data::Gauge(Gauge { data_points }))
}

/// A cumulative monotonic sum (a Prometheus counter).
pub fn counter(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        }),
    )
}

pub fn delta_counter(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
            is_monotonic: true,
        }),
    )
}

pub fn histogram(name: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    metric(
        name,
        metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )
}

pub fn delta_histogram(name: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    metric(
        name,
        metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: AggregationTemporality::Delta as i32,
        }),
    )
}

pub fn metrics_request(
    resource: Vec<KeyValue>,
    metrics: Vec<Metric>,
) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn span(name: &str, attributes: Vec<KeyValue>, start: u64, end: u64) -> Span {
    Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: name.into(),
        kind: 3,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes,
        ..Default::default()
    }
}

pub fn error_status() -> Option<Status> {
    Some(Status {
        code: 2,
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

/// Every point of `field` (any dims) in series of `kind`, with its series key.
pub fn points(batch: &SignalBatch, kind: SignalKind, field: Field) -> Vec<(&SeriesKey, &Point)> {
    batch
        .series
        .iter()
        .filter(|s| s.key.kind == kind)
        .flat_map(|s| s.points.iter().map(move |p| (&s.key, p)))
        .filter(|(_, p)| p.field.field == field)
        .collect()
}

/// Sum of counter increments for an exact field key.
pub fn counter_total(batch: &SignalBatch, kind: SignalKind, key: &FieldKey) -> f64 {
    points(batch, kind, key.field)
        .into_iter()
        .filter(|(_, p)| &p.field == key)
        .map(|(_, p)| match p.value {
            Value::Counter(n) => n,
            ref other => panic!("expected a counter for {key:?}, got {other:?}"),
        })
        .sum()
}

pub fn plain_total(batch: &SignalBatch, kind: SignalKind, field: Field) -> f64 {
    counter_total(batch, kind, &FieldKey::plain(field))
}

/// The single gauge reading of an exact field key.
pub fn gauge_value(batch: &SignalBatch, kind: SignalKind, key: &FieldKey) -> f64 {
    let found: Vec<f64> = points(batch, kind, key.field)
        .into_iter()
        .filter(|(_, p)| &p.field == key)
        .map(|(_, p)| match p.value {
            Value::Gauge(v) => v,
            ref other => panic!("expected a gauge for {key:?}, got {other:?}"),
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one gauge point for {key:?}: {found:?}"
    );
    found[0]
}

pub fn samples(batch: &SignalBatch, kind: SignalKind, field: Field) -> Vec<f64> {
    points(batch, kind, field)
        .into_iter()
        .filter_map(|(_, p)| match p.value {
            Value::Sample(v) => Some(v),
            _ => None,
        })
        .collect()
}

pub fn histogram_of(
    batch: &SignalBatch,
    kind: SignalKind,
    field: Field,
) -> signal_aggregator::signal::HistogramDelta {
    let found: Vec<_> = points(batch, kind, field)
        .into_iter()
        .filter_map(|(_, p)| match &p.value {
            Value::Histogram(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one histogram for {field:?}");
    found.into_iter().next().unwrap()
}

pub fn models(batch: &SignalBatch, kind: SignalKind) -> Vec<String> {
    let mut models: Vec<String> = batch
        .series
        .iter()
        .filter(|s| s.key.kind == kind)
        .map(|s| s.key.model.clone())
        .collect();
    models.sort();
    models.dedup();
    models
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
