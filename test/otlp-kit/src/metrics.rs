//! Metrics and data points, one resource per request.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

pub fn number(attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// An explicit-bucket point whose count is the sum of its buckets.
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
    sum(name, data_points, AggregationTemporality::Cumulative)
}

pub fn delta_counter(name: &str, data_points: Vec<NumberDataPoint>) -> Metric {
    sum(name, data_points, AggregationTemporality::Delta)
}

fn sum(
    name: &str,
    data_points: Vec<NumberDataPoint>,
    temporality: AggregationTemporality,
) -> Metric {
    metric(
        name,
        metric::Data::Sum(Sum {
            data_points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        }),
    )
}

pub fn histogram(name: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    explicit_histogram(name, data_points, AggregationTemporality::Cumulative)
}

pub fn delta_histogram(name: &str, data_points: Vec<HistogramDataPoint>) -> Metric {
    explicit_histogram(name, data_points, AggregationTemporality::Delta)
}

fn explicit_histogram(
    name: &str,
    data_points: Vec<HistogramDataPoint>,
    temporality: AggregationTemporality,
) -> Metric {
    metric(
        name,
        metric::Data::Histogram(Histogram {
            data_points,
            aggregation_temporality: temporality as i32,
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
