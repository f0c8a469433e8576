//! `metrics.v1` messages: every data kind, exemplars included.

use serde_json::{Map, Value};

use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Exemplar, ExponentialHistogram, ExponentialHistogramDataPoint, Gauge,
    Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    Summary, SummaryDataPoint, exemplar, exponential_histogram_data_point, metric,
    number_data_point, summary_data_point,
};

use super::common::{attributes, key_value, resource, scope};
use super::{
    Ctx, Result, boolean, double, enumeration, field, int32, int64, object, one_of, optional,
    repeated, span_id, string, trace_id, uint32, uint64,
};

pub(super) fn resource_metrics(ctx: &mut Ctx, value: Value) -> Result<ResourceMetrics> {
    let mut m = object(ctx, value)?;
    Ok(ResourceMetrics {
        resource: optional(ctx, &mut m, "resource", "resource", resource)?,
        scope_metrics: repeated(ctx, &mut m, "scopeMetrics", "scope_metrics", scope_metrics)?,
        schema_url: field(ctx, &mut m, "schemaUrl", "schema_url", string)?,
    })
}

fn scope_metrics(ctx: &mut Ctx, value: Value) -> Result<ScopeMetrics> {
    let mut m = object(ctx, value)?;
    Ok(ScopeMetrics {
        scope: optional(ctx, &mut m, "scope", "scope", scope)?,
        metrics: repeated(ctx, &mut m, "metrics", "metrics", metric)?,
        schema_url: field(ctx, &mut m, "schemaUrl", "schema_url", string)?,
    })
}

fn metric(ctx: &mut Ctx, value: Value) -> Result<Metric> {
    use metric::Data;
    let mut m = object(ctx, value)?;
    Ok(Metric {
        name: field(ctx, &mut m, "name", "name", string)?,
        description: field(ctx, &mut m, "description", "description", string)?,
        unit: field(ctx, &mut m, "unit", "unit", string)?,
        metadata: repeated(ctx, &mut m, "metadata", "metadata", key_value)?,
        data: one_of(
            ctx,
            &mut m,
            &[
                ("gauge", "gauge", |c, v| gauge(c, v).map(Data::Gauge)),
                ("sum", "sum", |c, v| sum(c, v).map(Data::Sum)),
                ("histogram", "histogram", |c, v| {
                    histogram(c, v).map(Data::Histogram)
                }),
                ("exponentialHistogram", "exponential_histogram", |c, v| {
                    exponential_histogram(c, v).map(Data::ExponentialHistogram)
                }),
                ("summary", "summary", |c, v| {
                    summary(c, v).map(Data::Summary)
                }),
            ],
        )?,
    })
}

fn temporality(ctx: &mut Ctx, m: &mut Map<String, Value>) -> Result<i32> {
    field(
        ctx,
        m,
        "aggregationTemporality",
        "aggregation_temporality",
        |ctx, value| {
            enumeration(ctx, value, "AGGREGATION_TEMPORALITY_", |name| {
                AggregationTemporality::from_str_name(name).map(|t| t as i32)
            })
        },
    )
}

fn gauge(ctx: &mut Ctx, value: Value) -> Result<Gauge> {
    let mut m = object(ctx, value)?;
    Ok(Gauge {
        data_points: repeated(ctx, &mut m, "dataPoints", "data_points", number_point)?,
    })
}

fn sum(ctx: &mut Ctx, value: Value) -> Result<Sum> {
    let mut m = object(ctx, value)?;
    Ok(Sum {
        data_points: repeated(ctx, &mut m, "dataPoints", "data_points", number_point)?,
        aggregation_temporality: temporality(ctx, &mut m)?,
        is_monotonic: field(ctx, &mut m, "isMonotonic", "is_monotonic", boolean)?,
    })
}

fn histogram(ctx: &mut Ctx, value: Value) -> Result<Histogram> {
    let mut m = object(ctx, value)?;
    Ok(Histogram {
        data_points: repeated(ctx, &mut m, "dataPoints", "data_points", histogram_point)?,
        aggregation_temporality: temporality(ctx, &mut m)?,
    })
}

fn exponential_histogram(ctx: &mut Ctx, value: Value) -> Result<ExponentialHistogram> {
    let mut m = object(ctx, value)?;
    Ok(ExponentialHistogram {
        data_points: repeated(ctx, &mut m, "dataPoints", "data_points", exponential_point)?,
        aggregation_temporality: temporality(ctx, &mut m)?,
    })
}

fn summary(ctx: &mut Ctx, value: Value) -> Result<Summary> {
    let mut m = object(ctx, value)?;
    Ok(Summary {
        data_points: repeated(ctx, &mut m, "dataPoints", "data_points", summary_point)?,
    })
}

/// Fields every data point kind shares.
struct PointCommon {
    attributes: Vec<opentelemetry_proto::tonic::common::v1::KeyValue>,
    start_time_unix_nano: u64,
    time_unix_nano: u64,
    flags: u32,
}

fn point_common(ctx: &mut Ctx, m: &mut Map<String, Value>) -> Result<PointCommon> {
    Ok(PointCommon {
        attributes: attributes(ctx, m)?,
        start_time_unix_nano: field(ctx, m, "startTimeUnixNano", "start_time_unix_nano", uint64)?,
        time_unix_nano: field(ctx, m, "timeUnixNano", "time_unix_nano", uint64)?,
        flags: field(ctx, m, "flags", "flags", uint32)?,
    })
}

fn number_point(ctx: &mut Ctx, value: Value) -> Result<NumberDataPoint> {
    use number_data_point::Value as V;
    let mut m = object(ctx, value)?;
    let common = point_common(ctx, &mut m)?;
    Ok(NumberDataPoint {
        attributes: common.attributes,
        start_time_unix_nano: common.start_time_unix_nano,
        time_unix_nano: common.time_unix_nano,
        flags: common.flags,
        exemplars: exemplars(ctx, &mut m)?,
        value: one_of(
            ctx,
            &mut m,
            &[
                ("asDouble", "as_double", |c, v| {
                    double(c, v).map(V::AsDouble)
                }),
                ("asInt", "as_int", |c, v| int64(c, v).map(V::AsInt)),
            ],
        )?,
    })
}

fn histogram_point(ctx: &mut Ctx, value: Value) -> Result<HistogramDataPoint> {
    let mut m = object(ctx, value)?;
    let common = point_common(ctx, &mut m)?;
    Ok(HistogramDataPoint {
        attributes: common.attributes,
        start_time_unix_nano: common.start_time_unix_nano,
        time_unix_nano: common.time_unix_nano,
        flags: common.flags,
        count: field(ctx, &mut m, "count", "count", uint64)?,
        sum: optional(ctx, &mut m, "sum", "sum", double)?,
        bucket_counts: repeated(ctx, &mut m, "bucketCounts", "bucket_counts", uint64)?,
        explicit_bounds: repeated(ctx, &mut m, "explicitBounds", "explicit_bounds", double)?,
        exemplars: exemplars(ctx, &mut m)?,
        min: optional(ctx, &mut m, "min", "min", double)?,
        max: optional(ctx, &mut m, "max", "max", double)?,
    })
}

fn exponential_point(ctx: &mut Ctx, value: Value) -> Result<ExponentialHistogramDataPoint> {
    let mut m = object(ctx, value)?;
    let common = point_common(ctx, &mut m)?;
    Ok(ExponentialHistogramDataPoint {
        attributes: common.attributes,
        start_time_unix_nano: common.start_time_unix_nano,
        time_unix_nano: common.time_unix_nano,
        flags: common.flags,
        count: field(ctx, &mut m, "count", "count", uint64)?,
        sum: optional(ctx, &mut m, "sum", "sum", double)?,
        scale: field(ctx, &mut m, "scale", "scale", int32)?,
        zero_count: field(ctx, &mut m, "zeroCount", "zero_count", uint64)?,
        positive: optional(ctx, &mut m, "positive", "positive", buckets)?,
        negative: optional(ctx, &mut m, "negative", "negative", buckets)?,
        exemplars: exemplars(ctx, &mut m)?,
        min: optional(ctx, &mut m, "min", "min", double)?,
        max: optional(ctx, &mut m, "max", "max", double)?,
        zero_threshold: field(ctx, &mut m, "zeroThreshold", "zero_threshold", double)?,
    })
}

fn buckets(ctx: &mut Ctx, value: Value) -> Result<exponential_histogram_data_point::Buckets> {
    let mut m = object(ctx, value)?;
    Ok(exponential_histogram_data_point::Buckets {
        offset: field(ctx, &mut m, "offset", "offset", int32)?,
        bucket_counts: repeated(ctx, &mut m, "bucketCounts", "bucket_counts", uint64)?,
    })
}

fn summary_point(ctx: &mut Ctx, value: Value) -> Result<SummaryDataPoint> {
    let mut m = object(ctx, value)?;
    let common = point_common(ctx, &mut m)?;
    Ok(SummaryDataPoint {
        attributes: common.attributes,
        start_time_unix_nano: common.start_time_unix_nano,
        time_unix_nano: common.time_unix_nano,
        flags: common.flags,
        count: field(ctx, &mut m, "count", "count", uint64)?,
        sum: field(ctx, &mut m, "sum", "sum", double)?,
        quantile_values: repeated(
            ctx,
            &mut m,
            "quantileValues",
            "quantile_values",
            value_at_quantile,
        )?,
    })
}

fn value_at_quantile(ctx: &mut Ctx, value: Value) -> Result<summary_data_point::ValueAtQuantile> {
    let mut m = object(ctx, value)?;
    Ok(summary_data_point::ValueAtQuantile {
        quantile: field(ctx, &mut m, "quantile", "quantile", double)?,
        value: field(ctx, &mut m, "value", "value", double)?,
    })
}

fn exemplars(ctx: &mut Ctx, m: &mut Map<String, Value>) -> Result<Vec<Exemplar>> {
    repeated(ctx, m, "exemplars", "exemplars", exemplar)
}

fn exemplar(ctx: &mut Ctx, value: Value) -> Result<Exemplar> {
    use exemplar::Value as V;
    let mut m = object(ctx, value)?;
    Ok(Exemplar {
        filtered_attributes: repeated(
            ctx,
            &mut m,
            "filteredAttributes",
            "filtered_attributes",
            key_value,
        )?,
        time_unix_nano: field(ctx, &mut m, "timeUnixNano", "time_unix_nano", uint64)?,
        span_id: field(ctx, &mut m, "spanId", "span_id", span_id)?,
        trace_id: field(ctx, &mut m, "traceId", "trace_id", trace_id)?,
        value: one_of(
            ctx,
            &mut m,
            &[
                ("asDouble", "as_double", |c, v| {
                    double(c, v).map(V::AsDouble)
                }),
                ("asInt", "as_int", |c, v| int64(c, v).map(V::AsInt)),
            ],
        )?,
    })
}
