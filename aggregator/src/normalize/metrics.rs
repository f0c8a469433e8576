//! OTLP metric data points → typed signal points.

use std::collections::BTreeMap;

// The scraped process's start (prometheus_client, client_golang and the
// collector's own process collector all expose it); the agent keeps it from
// every scrape job.
use apis::wire::PROCESS_START_TIME;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, HistogramDataPoint, Metric, NumberDataPoint, metric, number_data_point,
};

use super::attrs::{attribute_set_hash, f64_attr, mix, str_attr, xxh3};
use super::bounded::{self, COLDSTART_PHASES, CONTEXT_BUCKETS, KV_TIERS, MESH_FAILURE_REASONS};
use super::builder::{BatchBuilder, Pushed, SeriesCtx};
use super::cumulative::Delta;
use super::identity::{ResourceIdentity, resource_identity};
use super::losses::DropReason;
use super::precedence::Vantage;
use super::sources::{Present, Route, Source, classify, route};
use super::tally::Tally;
use super::{NO_MODEL, Normalized, Normalizer};
use crate::signal::{
    DIM_CAUSE, DIM_CONTEXT, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field, FieldKey,
    HistogramDelta, Origin, SignalKind, Value,
};

const GENAI_TOKEN_USAGE: &str = "gen_ai.client.token.usage";

/// Prometheus staleness markers arrive with this flag and no value.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

const INVALID_MODEL: &str = "model attribute (model_name, target_model_name, gen_ai.*.model, mesh_llm.model) must be 1-200 chars of [A-Za-z0-9._/:@+-]";
const MISSING_VALUE: &str = "number data point without a finite value";
const BAD_HISTOGRAM: &str =
    "histogram bucket_counts must have len(explicit_bounds)+1 entries and ascending finite bounds";
const BAD_PHASE: &str = "modelplane.coldstart.phase must be one of gpu_procurement, image_load, model_load, engine_startup, cache_hydration";
const BAD_TIER: &str = "modelplane.kv.tier must be one of hbm, cpu, ssd, network";
const BAD_REPLICA_STATE: &str = "modelplane.replica.state must be active or starting";
const BAD_CAUSE: &str = "modelplane.failure.cause must be 1-48 chars of [a-z0-9_.-]";

/// A data point's value after temporality is resolved.
enum Measure {
    Counter(f64),
    Gauge(f64),
    Histogram(HistogramDelta),
}

/// The allowlisted data point attributes; everything else is never read.
#[derive(Default)]
struct PointAttrs<'a> {
    model: Option<&'a str>,
    model_rank: u8,
    gpu_name: Option<&'a str>,
    finished_reason: Option<&'a str>,
    token_type: Option<&'a str>,
    error_type: Option<&'a str>,
    phase: Option<&'a str>,
    tier: Option<&'a str>,
    replica_state: Option<&'a str>,
    failure_cause: Option<&'a str>,
    mesh_failure_reason: Option<&'a str>,
    context_bucket: Option<&'a str>,
    xid: Option<f64>,
}

impl<'a> PointAttrs<'a> {
    fn read(attributes: &'a [KeyValue]) -> Self {
        let mut attrs = PointAttrs::default();
        for kv in attributes {
            let key = kv.key.as_str();
            let model_rank = match key {
                "target_model_name" => 5,
                "model_name" => 4,
                "gen_ai.response.model" => 3,
                "gen_ai.request.model" => 2,
                "mesh_llm.model" => 1,
                _ => 0,
            };
            if model_rank > 0 {
                if let Some(model) = str_attr(kv).filter(|m| !m.is_empty())
                    && model_rank > attrs.model_rank
                {
                    attrs.model = Some(model);
                    attrs.model_rank = model_rank;
                }
                continue;
            }
            match key {
                "modelName" | "mesh_llm.gpu_name" | "modelplane.gpu.sku" => {
                    attrs.gpu_name = str_attr(kv)
                }
                "finished_reason" => attrs.finished_reason = str_attr(kv),
                "gen_ai.token.type" => attrs.token_type = str_attr(kv),
                "error.type" => attrs.error_type = str_attr(kv),
                "modelplane.coldstart.phase" => attrs.phase = str_attr(kv),
                "modelplane.kv.tier" => attrs.tier = str_attr(kv),
                "modelplane.replica.state" => attrs.replica_state = str_attr(kv),
                "modelplane.failure.cause" => attrs.failure_cause = str_attr(kv),
                "mesh_llm.failure_reason" => attrs.mesh_failure_reason = str_attr(kv),
                "mesh_llm.context_bucket" => attrs.context_bucket = str_attr(kv),
                "xid" => attrs.xid = f64_attr(kv),
                _ => {}
            }
        }
        attrs
    }
}

struct Pass<'n> {
    normalizer: &'n Normalizer,
    builder: BatchBuilder<'n>,
    tally: Tally,
    now_secs: u64,
    now_nanos: u64,
    /// What the current resource's metrics say about all of them.
    target: Target,
}

pub(crate) fn normalize(
    normalizer: &Normalizer,
    origin: &Origin,
    request: &ExportMetricsServiceRequest,
    now_secs: u64,
    now_nanos: u64,
) -> Normalized {
    let mut pass = Pass {
        normalizer,
        builder: BatchBuilder::new(&normalizer.limiter, &normalizer.precedence, now_secs),
        tally: Tally::default(),
        now_secs,
        now_nanos,
        target: Target::default(),
    };
    for resource_metrics in &request.resource_metrics {
        let metrics = || {
            resource_metrics
                .scope_metrics
                .iter()
                .flat_map(|s| s.metrics.iter())
        };
        let mark = pass.tally.loss_mark();
        let identity = match resource_identity(origin, resource_metrics.resource.as_ref()) {
            Ok(identity) => identity,
            Err(refused) => {
                pass.tally.reject(
                    metrics().map(data_point_count).sum(),
                    refused.error.message(),
                );
                if let Some(cluster) = refused.cluster {
                    pass.tally.attribute_losses(cluster, mark);
                }
                continue;
            }
        };
        let mut target = Target::default();
        for metric in metrics() {
            target.present.note(&metric.name);
            if let Some(start) = process_start(metric) {
                target.process_start = start;
            }
        }
        pass.target = target;
        for metric in metrics() {
            pass.metric(&identity, metric);
        }
        pass.tally.attribute_losses(identity.cluster, mark);
    }
    let Pass { builder, tally, .. } = pass;
    tally.finish(builder.finish(), "data points")
}

/// What one resource's metrics say about all of them.
#[derive(Clone, Copy, Default)]
struct Target {
    present: Present,
    /// Start of the process serving the metrics (unix nanos, 0 = unknown).
    /// The collector's Prometheus receiver (0.159) sends cumulative points
    /// without a start time, so this is what tells a freshly started
    /// process, and a restart, from a long-running one.
    process_start: u64,
}

fn process_start(metric: &Metric) -> Option<u64> {
    if metric.name != PROCESS_START_TIME {
        return None;
    }
    let Some(metric::Data::Gauge(gauge)) = &metric.data else {
        return None;
    };
    let seconds = match gauge.data_points.first()?.value? {
        number_data_point::Value::AsDouble(d) => d,
        number_data_point::Value::AsInt(i) => i as f64,
    };
    (seconds.is_finite() && seconds > 0.0).then_some((seconds * 1e9) as u64)
}

/// A cumulative point's start: its own when it has one, else its process's.
fn series_start(point_start: u64, process_start: u64) -> u64 {
    if point_start != 0 {
        point_start
    } else {
        process_start
    }
}

fn data_point_count(metric: &Metric) -> u64 {
    let n = match &metric.data {
        Some(metric::Data::Gauge(g)) => g.data_points.len(),
        Some(metric::Data::Sum(s)) => s.data_points.len(),
        Some(metric::Data::Histogram(h)) => h.data_points.len(),
        Some(metric::Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(metric::Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    n as u64
}

impl Pass<'_> {
    fn metric(&mut self, identity: &ResourceIdentity<'_>, metric: &Metric) {
        let count = data_point_count(metric);
        let classified = classify(&metric.name);
        if let Some((source, _)) = classified {
            self.builder.vantage = vantage(source);
        }
        let mut route = classified.and_then(|(source, name)| route(source, name));
        if let Some(Route::Superseded { by, route: inner }) = route {
            if self.target.present.has(by) {
                self.tally.accepted += count;
                self.tally.drop(DropReason::SupersededMetricName, count);
                return;
            }
            route = Some(*inner);
        }
        let instrument = route.as_ref().map(super::mapping::instrument_of);
        let fits = match (&metric.data, instrument) {
            (_, None) => false,
            (Some(metric::Data::Gauge(_)), Some(i)) => i.accepts_gauge(),
            (Some(metric::Data::Sum(sum)), Some(i)) => {
                if sum.is_monotonic {
                    i.accepts_counter()
                } else {
                    i.accepts_gauge()
                }
            }
            (Some(metric::Data::Histogram(_)), Some(i)) => i.accepts_histogram(),
            // Counted below as unsupported.
            (Some(metric::Data::ExponentialHistogram(_) | metric::Data::Summary(_)), _) => true,
            (None, _) => true,
        };
        let route = match route {
            Some(route) if fits => route,
            _ => {
                // Valid, but maps to no signal: an unknown name, or a known
                // one of another instrument than its source emits.
                self.tally.accepted += count;
                if metric.name != PROCESS_START_TIME {
                    self.tally.unmapped(identity.tenant, &metric.name, count);
                }
                return;
            }
        };
        let series_prefix = mix(identity.hash, xxh3(metric.name.as_bytes()));
        match &metric.data {
            Some(metric::Data::Gauge(gauge)) => {
                for dp in &gauge.data_points {
                    self.number(identity, route, series_prefix, dp, None);
                }
            }
            Some(metric::Data::Sum(sum)) => {
                let temporality = if sum.is_monotonic {
                    Some(sum.aggregation_temporality)
                } else {
                    None
                };
                for dp in &sum.data_points {
                    self.number(identity, route, series_prefix, dp, temporality);
                }
            }
            Some(metric::Data::Histogram(histogram)) => {
                for dp in &histogram.data_points {
                    self.histogram(
                        identity,
                        route,
                        series_prefix,
                        dp,
                        histogram.aggregation_temporality,
                    );
                }
            }
            Some(metric::Data::ExponentialHistogram(_)) | Some(metric::Data::Summary(_)) => {
                self.tally.accepted += count;
                self.tally.drop(DropReason::UnsupportedMetricType, count);
            }
            None => {}
        }
    }

    /// `monotonic_temporality` is `Some` for monotonic sums (counters).
    fn number(
        &mut self,
        identity: &ResourceIdentity<'_>,
        route: Route,
        series_prefix: u64,
        dp: &NumberDataPoint,
        monotonic_temporality: Option<i32>,
    ) {
        if dp.flags & FLAG_NO_RECORDED_VALUE != 0 {
            self.tally.accepted += 1;
            return;
        }
        let value = match dp.value {
            Some(number_data_point::Value::AsDouble(d)) if d.is_finite() => d,
            Some(number_data_point::Value::AsInt(i)) => i as f64,
            _ => return self.tally.reject(1, MISSING_VALUE),
        };
        let attrs = PointAttrs::read(&dp.attributes);
        let Some(model) = self.model(identity, &attrs) else {
            return;
        };
        let state_key = || mix(series_prefix, attribute_set_hash(&dp.attributes));
        let time = self.time(dp.time_unix_nano);
        let measure = if matches!(route, Route::XidGauge) {
            match self
                .normalizer
                .cumulative
                .gauge_change(state_key(), time, value, self.now_secs)
            {
                Delta::Value(Some(code)) if code != 0.0 => Measure::Gauge(code),
                other => return self.settle(other.map_none()),
            }
        } else {
            match monotonic_temporality {
                Some(t) if t == AggregationTemporality::Cumulative as i32 => {
                    match self.normalizer.cumulative.sum(
                        state_key(),
                        series_start(dp.start_time_unix_nano, self.target.process_start),
                        time,
                        value,
                        self.now_secs,
                    ) {
                        Delta::Value(delta) => Measure::Counter(delta),
                        other => return self.settle(other.map_none()),
                    }
                }
                Some(_) => Measure::Counter(value),
                None => Measure::Gauge(value),
            }
        };
        self.emit(identity, route, &attrs, model, time, measure);
    }

    fn histogram(
        &mut self,
        identity: &ResourceIdentity<'_>,
        route: Route,
        series_prefix: u64,
        dp: &HistogramDataPoint,
        temporality: i32,
    ) {
        if dp.flags & FLAG_NO_RECORDED_VALUE != 0 {
            self.tally.accepted += 1;
            return;
        }
        let bounds_ok = dp.explicit_bounds.iter().all(|b| b.is_finite())
            && dp.explicit_bounds.windows(2).all(|w| w[0] < w[1]);
        if dp.bucket_counts.len() != dp.explicit_bounds.len() + 1 || !bounds_ok {
            return self.tally.reject(1, BAD_HISTOGRAM);
        }
        let attrs = PointAttrs::read(&dp.attributes);
        let Some(model) = self.model(identity, &attrs) else {
            return;
        };
        let time = self.time(dp.time_unix_nano);
        let sum = dp.sum.filter(|s| s.is_finite()).unwrap_or(0.0);
        let delta = if temporality == AggregationTemporality::Cumulative as i32 {
            let key = mix(series_prefix, attribute_set_hash(&dp.attributes));
            match self.normalizer.cumulative.histogram(
                key,
                series_start(dp.start_time_unix_nano, self.target.process_start),
                time,
                &dp.explicit_bounds,
                &dp.bucket_counts,
                dp.count,
                sum,
                self.now_secs,
            ) {
                Delta::Value(delta) => delta,
                other => return self.settle(other.map_none()),
            }
        } else {
            HistogramDelta {
                bounds: dp.explicit_bounds.clone(),
                counts: dp.bucket_counts.clone(),
                sum,
                count: dp.count,
            }
        };
        self.emit(
            identity,
            route,
            &attrs,
            model,
            time,
            Measure::Histogram(delta),
        );
    }

    /// Accounts for a data point that produced no delta.
    fn settle(&mut self, outcome: Delta<()>) {
        self.tally.accepted += 1;
        match outcome {
            Delta::Duplicate => self.tally.drop(DropReason::DuplicatePoint, 1),
            Delta::StateFull => self.tally.drop(DropReason::CumulativeStateFull, 1),
            Delta::Primed | Delta::Value(()) => {}
        }
    }

    fn model<'a>(
        &mut self,
        identity: &ResourceIdentity<'a>,
        attrs: &PointAttrs<'a>,
    ) -> Option<&'a str> {
        let model = attrs.model.or(identity.model).unwrap_or(NO_MODEL);
        if model != NO_MODEL && !bounded::valid_model(model) {
            self.tally.reject(1, INVALID_MODEL);
            return None;
        }
        Some(model)
    }

    fn time(&self, time_unix_nano: u64) -> u64 {
        if time_unix_nano == 0 {
            self.now_nanos
        } else {
            time_unix_nano
        }
    }

    fn emit(
        &mut self,
        identity: &ResourceIdentity<'_>,
        route: Route,
        attrs: &PointAttrs<'_>,
        model: &str,
        time: u64,
        measure: Measure,
    ) {
        let ctx = SeriesCtx::new(identity.tenant, identity.cluster, model);
        let sku = || attrs.gpu_name.or(identity.gpu_name).and_then(bounded::sku);
        let mut out = Emitter {
            builder: &mut self.builder,
            ctx,
            time,
            series: None,
            outranked: false,
        };
        match route {
            Route::Field {
                kind,
                field,
                scale,
                tier,
            } => {
                let key = match tier {
                    Some(tier) => FieldKey::with_dim(field, DIM_TIER, tier),
                    None => FieldKey::plain(field),
                };
                out.measure(kind, key, measure, scale);
            }
            Route::TokenHistogram(field) => out.total(
                SignalKind::RequestLifecycle,
                FieldKey::plain(field),
                &measure,
            ),
            Route::RequestOutcome => {
                let n = counter_of(&measure);
                out.counter(
                    SignalKind::RequestLifecycle,
                    FieldKey::plain(Field::Requests),
                    n,
                );
                if attrs.finished_reason == Some("error") {
                    out.counter(
                        SignalKind::RequestLifecycle,
                        FieldKey::plain(Field::Errors),
                        n,
                    );
                }
            }
            Route::RequestDuration => {
                if let Measure::Histogram(h) = measure {
                    let n = h.count as f64;
                    out.counter(
                        SignalKind::RequestLifecycle,
                        FieldKey::plain(Field::Requests),
                        n,
                    );
                    if attrs.error_type.is_some() {
                        out.counter(
                            SignalKind::RequestLifecycle,
                            FieldKey::plain(Field::Errors),
                            n,
                        );
                    }
                    out.measure(
                        SignalKind::RequestLifecycle,
                        FieldKey::plain(Field::E2eSeconds),
                        Measure::Histogram(h),
                        1.0,
                    );
                }
            }
            Route::GenAiTokenUsage => {
                let field = match attrs.token_type {
                    Some("input") => Field::InputTokens,
                    Some("output") => Field::OutputTokens,
                    _ => {
                        self.tally.unmapped(identity.tenant, GENAI_TOKEN_USAGE, 1);
                        return self.tally.accepted += 1;
                    }
                };
                out.total(
                    SignalKind::RequestLifecycle,
                    FieldKey::plain(field),
                    &measure,
                );
            }
            Route::ColdStartPhase { phase, scale } => {
                let Some(phase) = phase.or_else(|| {
                    attrs
                        .phase
                        .and_then(|p| bounded::one_of(p, COLDSTART_PHASES))
                }) else {
                    return self.tally.reject(1, BAD_PHASE);
                };
                let key = FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, phase);
                // A controller reporting one duration per launch as a gauge: each reading is a sample.
                let measure = match measure {
                    Measure::Gauge(seconds) => {
                        out.push(SignalKind::ColdStart, key, Value::Sample(seconds * scale));
                        let outcome = out.outcome();
                        return finish(self, outcome);
                    }
                    other => other,
                };
                out.measure(SignalKind::ColdStart, key, measure, scale);
            }
            Route::Gpu { kind, field, scale } => {
                let key = match sku() {
                    Some(sku) => FieldKey::with_dim(field, DIM_SKU, sku),
                    None => FieldKey::plain(field),
                };
                out.measure(kind, key, measure, scale);
            }
            Route::XidGauge | Route::XidCounter => {
                let (code, n) = match (route, &measure) {
                    (Route::XidGauge, Measure::Gauge(code)) => (Some(*code), 1.0),
                    (_, Measure::Counter(n)) => (attrs.xid, *n),
                    _ => (None, 0.0),
                };
                let Some(code) = code.filter(|c| c.fract() == 0.0 && *c > 0.0 && *c < 100_000.0)
                else {
                    return self.tally.accepted += 1;
                };
                let mut key =
                    FieldKey::with_dim(Field::Failures, DIM_CAUSE, format!("xid_{}", code as u32));
                if let Some(sku) = sku() {
                    key.dims.insert(DIM_SKU.to_string(), sku);
                }
                out.counter(SignalKind::Reliability, key, n);
            }
            Route::MeshLaunch(field) => {
                let key = mesh_key(field, sku(), attrs.context_bucket, None);
                out.measure(SignalKind::ColdStart, key, measure, 1.0);
            }
            Route::MeshLaunchFailure => {
                let reason = attrs
                    .mesh_failure_reason
                    .and_then(|r| bounded::one_of(r, MESH_FAILURE_REASONS))
                    .unwrap_or("other");
                let n = counter_of(&measure);
                out.counter(
                    SignalKind::ColdStart,
                    mesh_key(
                        Field::LaunchFailures,
                        sku(),
                        attrs.context_bucket,
                        Some(reason),
                    ),
                    n,
                );
                out.counter(SignalKind::Reliability, failure_key(reason, sku()), n);
            }
            Route::MeshUnexpectedExit => {
                let n = counter_of(&measure);
                out.counter(
                    SignalKind::ColdStart,
                    mesh_key(Field::UnexpectedExits, sku(), None, None),
                    n,
                );
                out.counter(
                    SignalKind::Reliability,
                    failure_key("unexpected_exit", sku()),
                    n,
                );
            }
            Route::KvTier => {
                let Some(tier) = attrs.tier.and_then(|t| bounded::one_of(t, KV_TIERS)) else {
                    return self.tally.reject(1, BAD_TIER);
                };
                out.measure(
                    SignalKind::Capacity,
                    FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, tier),
                    measure,
                    1.0,
                );
            }
            Route::Replicas => {
                let field = match attrs.replica_state {
                    Some("active") => Field::ReplicasActive,
                    Some("starting") => Field::ReplicasStarting,
                    _ => return self.tally.reject(1, BAD_REPLICA_STATE),
                };
                out.measure(SignalKind::Capacity, FieldKey::plain(field), measure, 1.0);
            }
            Route::Failures => {
                let Some(cause) = attrs.failure_cause.and_then(bounded::token) else {
                    return self.tally.reject(1, BAD_CAUSE);
                };
                let n = counter_of(&measure);
                out.counter(SignalKind::Reliability, failure_key(cause, sku()), n);
            }
            Route::Superseded { .. } => {}
        }
        let outcome = out.outcome();
        finish(self, outcome);
    }
}

/// Counts one data point: accepted, and why some of its points were not kept.
fn finish(pass: &mut Pass<'_>, (series, outranked): (Option<DropReason>, bool)) {
    pass.tally.accepted += 1;
    if let Some(reason) = series {
        pass.tally.drop(reason, 1);
    }
    pass.tally
        .drop(DropReason::OutrankedSource, u64::from(outranked));
}

fn vantage(source: Source) -> Vantage {
    match source {
        Source::Epp { .. } => Vantage::RouterMetrics,
        Source::GenAi => Vantage::GenAiMetrics,
        _ => Vantage::EngineMetrics,
    }
}

fn counter_of(measure: &Measure) -> f64 {
    match measure {
        Measure::Counter(n) => *n,
        Measure::Histogram(h) => h.count as f64,
        Measure::Gauge(_) => 0.0,
    }
}

fn mesh_key(
    field: Field,
    sku: Option<String>,
    context: Option<&str>,
    reason: Option<&'static str>,
) -> FieldKey {
    let mut dims = BTreeMap::new();
    if let Some(sku) = sku {
        dims.insert(DIM_SKU.to_string(), sku);
    }
    if let Some(bucket) = context.and_then(|c| bounded::one_of(c, CONTEXT_BUCKETS)) {
        dims.insert(DIM_CONTEXT.to_string(), bucket.to_string());
    }
    if let Some(reason) = reason {
        dims.insert(DIM_REASON.to_string(), reason.to_string());
    }
    FieldKey { field, dims }
}

fn failure_key(cause: &str, sku: Option<String>) -> FieldKey {
    let mut key = FieldKey::with_dim(Field::Failures, DIM_CAUSE, cause);
    if let Some(sku) = sku {
        key.dims.insert(DIM_SKU.to_string(), sku);
    }
    key
}

/// Pushes points for one data point, remembering whether any was refused by
/// the series budget.
struct Emitter<'b, 'n, 'c> {
    builder: &'b mut BatchBuilder<'n>,
    ctx: SeriesCtx<'c>,
    time: u64,
    /// What the series budget did to this data point's points.
    series: Option<DropReason>,
    outranked: bool,
}

impl Emitter<'_, '_, '_> {
    fn push(&mut self, kind: SignalKind, key: FieldKey, value: Value) {
        match self.builder.push(&self.ctx, kind, key, self.time, value) {
            Pushed::Outranked => self.outranked = true,
            other => other.note_series(&mut self.series),
        }
    }

    fn counter(&mut self, kind: SignalKind, key: FieldKey, n: f64) {
        if n > 0.0 {
            self.push(kind, key, Value::Counter(n));
        }
    }

    fn outcome(&self) -> (Option<DropReason>, bool) {
        (self.series, self.outranked)
    }

    /// A histogram's sum (or a counter) as a total.
    fn total(&mut self, kind: SignalKind, key: FieldKey, measure: &Measure) {
        match measure {
            Measure::Histogram(h) => self.counter(kind, key, h.sum),
            Measure::Counter(n) => self.counter(kind, key, *n),
            Measure::Gauge(_) => {}
        }
    }

    fn measure(&mut self, kind: SignalKind, key: FieldKey, measure: Measure, scale: f64) {
        match measure {
            Measure::Counter(n) => self.counter(kind, key, n * scale),
            Measure::Gauge(v) => self.push(kind, key, Value::Gauge(v * scale)),
            Measure::Histogram(mut h) => {
                if h.count == 0 {
                    return;
                }
                if scale != 1.0 {
                    h.bounds.iter_mut().for_each(|b| *b *= scale);
                    h.sum *= scale;
                }
                self.push(kind, key, Value::Histogram(h));
            }
        }
    }
}

impl<T> Delta<T> {
    fn map_none(self) -> Delta<()> {
        match self {
            Delta::Value(_) => Delta::Value(()),
            Delta::Primed => Delta::Primed,
            Delta::Duplicate => Delta::Duplicate,
            Delta::StateFull => Delta::StateFull,
        }
    }
}
