//! Per-kind JSON for one group of a signals query: which fields a kind shows
//! and how (distributions as `{count,p50,p90,p99}`, counters as totals over
//! the window, gauges as `{last,min,max}`).

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json, json};

use crate::query::cost::{CostBreakdown, NoPrices};
use crate::query::readout::{
    self, GaugeReading, REPORTED_QUANTILES, by_dim, plain, total_all_dims, total_of, totals_by_dim,
};
use crate::signal::{
    DIM_CAUSE, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field, FieldKey, SignalKind,
};
use crate::sketch::{FieldSketch, SeriesSketch};

/// How many prefix hashes `top` lists.
pub const TOP_PREFIXES: usize = 10;

/// Fields whose per-cluster quantiles `/v1/fleet/compare` can compare.
pub const COMPARABLE_FIELDS: &[(SignalKind, Field)] = &[
    (SignalKind::RequestLifecycle, Field::TtftSeconds),
    (SignalKind::RequestLifecycle, Field::TpotSeconds),
    (SignalKind::RequestLifecycle, Field::E2eSeconds),
    (SignalKind::RequestLifecycle, Field::QueueSeconds),
    (SignalKind::ColdStart, Field::PhaseSeconds),
];

/// Extra inputs some kinds need from another kind over the same range.
#[derive(Debug, Clone, Default)]
pub struct Companion {
    /// Input plus output tokens of the same group (for Cost's $/token).
    pub tokens: Option<f64>,
    /// The group's cost priced per cluster (for Cost); without it the
    /// group is priced with the price gauges it reported.
    pub cost: Option<CostBreakdown>,
}

pub fn render_group(
    kind: SignalKind,
    sketch: &SeriesSketch,
    window_secs: u64,
    companion: Companion,
) -> Map<String, Json> {
    match kind {
        SignalKind::RequestLifecycle => request_lifecycle(sketch, window_secs),
        SignalKind::PrefixHash => prefix_hash(sketch),
        SignalKind::Capacity => capacity(sketch),
        SignalKind::ColdStart => cold_start(sketch),
        SignalKind::Cost => cost(sketch, companion),
        SignalKind::Reliability => reliability(sketch),
    }
}

pub fn distribution(field: Option<&FieldSketch>) -> Json {
    let count = field.and_then(readout::count).unwrap_or(0);
    let mut out = Map::new();
    out.insert("count".into(), json!(count));
    for (name, q) in REPORTED_QUANTILES {
        let value = field.and_then(|f| readout::quantile(f, q));
        out.insert(name.into(), json!(value));
    }
    Json::Object(out)
}

fn gauge_json(reading: Option<GaugeReading>) -> Json {
    match reading {
        Some(g) => json!({ "last": g.last, "min": g.min, "max": g.max, "mean": g.mean }),
        None => Json::Null,
    }
}

fn gauge_of(sketch: &SeriesSketch, key: &FieldKey) -> Json {
    gauge_json(sketch.field(key).and_then(readout::gauge))
}

fn ratio(numerator: f64, denominator: f64) -> Json {
    if denominator > 0.0 {
        json!(numerator / denominator)
    } else {
        Json::Null
    }
}

fn request_lifecycle(sketch: &SeriesSketch, window_secs: u64) -> Map<String, Json> {
    let requests = total_of(sketch, Field::Requests);
    let errors = total_of(sketch, Field::Errors);
    let queries = total_of(sketch, Field::PrefixCacheQueries);
    let hits = total_of(sketch, Field::PrefixCacheHits);
    let mut out = Map::new();
    out.insert("requests".into(), json!(requests));
    out.insert("errors".into(), json!(errors));
    out.insert("error_rate".into(), ratio(errors, requests));
    out.insert(
        "requests_per_second".into(),
        ratio(requests, window_secs as f64),
    );
    out.insert(
        "input_tokens".into(),
        json!(total_of(sketch, Field::InputTokens)),
    );
    out.insert(
        "output_tokens".into(),
        json!(total_of(sketch, Field::OutputTokens)),
    );
    for field in [
        Field::TtftSeconds,
        Field::TpotSeconds,
        Field::E2eSeconds,
        Field::QueueSeconds,
    ] {
        out.insert(field.as_str().into(), distribution(plain(sketch, field)));
    }
    out.insert("prefix_cache_hit_rate".into(), ratio(hits, queries));
    out.insert(
        "queue_depth".into(),
        gauge_of(sketch, &FieldKey::plain(Field::QueueDepth)),
    );
    out.insert(
        "running_requests".into(),
        gauge_of(sketch, &FieldKey::plain(Field::RunningRequests)),
    );
    out
}

fn prefix_hash(sketch: &SeriesSketch) -> Map<String, Json> {
    let field = plain(sketch, Field::PrefixHashes);
    let distinct = field.and_then(readout::distinct).unwrap_or(0.0);
    let top: Vec<Json> = field
        .map(|f| readout::top(f, TOP_PREFIXES))
        .unwrap_or_default()
        .into_iter()
        .map(|(hash, count)| json!({ "hash": format!("{hash:016x}"), "count": count }))
        .collect();
    let mut out = Map::new();
    out.insert("distinct".into(), json!(distinct.round()));
    out.insert("top".into(), Json::Array(top));
    out
}

fn capacity(sketch: &SeriesSketch) -> Map<String, Json> {
    let mut skus: BTreeMap<String, Map<String, Json>> = BTreeMap::new();
    for (field, name) in [
        (Field::Gpus, "gpus"),
        (Field::GpusAllocated, "allocated"),
        (Field::GpuUtilization, "utilization"),
    ] {
        for (sku, keys) in by_dim(sketch, field, DIM_SKU) {
            let reading = keys.first().and_then(|(_, f)| readout::gauge(f));
            skus.entry(sku)
                .or_default()
                .insert(name.into(), gauge_json(reading));
        }
    }
    let tiers: Map<String, Json> = by_dim(sketch, Field::KvCacheUtilization, DIM_TIER)
        .into_iter()
        .map(|(tier, keys)| {
            let reading = keys.first().and_then(|(_, f)| readout::gauge(f));
            (tier, gauge_json(reading))
        })
        .collect();
    let mut out = Map::new();
    out.insert(
        "gpus_by_sku".into(),
        Json::Object(
            skus.into_iter()
                .map(|(k, v)| (k, Json::Object(v)))
                .collect(),
        ),
    );
    out.insert("kv_cache_utilization_by_tier".into(), Json::Object(tiers));
    out.insert(
        "replicas".into(),
        json!({
            "active": gauge_of(sketch, &FieldKey::plain(Field::ReplicasActive)),
            "starting": gauge_of(sketch, &FieldKey::plain(Field::ReplicasStarting)),
        }),
    );
    out.insert(
        "cache_bytes_staged".into(),
        gauge_of(sketch, &FieldKey::plain(Field::CacheBytesStaged)),
    );
    out
}

fn cold_start(sketch: &SeriesSketch) -> Map<String, Json> {
    let phases: Map<String, Json> = by_dim(sketch, Field::PhaseSeconds, DIM_PHASE)
        .into_iter()
        .map(|(phase, keys)| (phase, distribution(keys.first().map(|(_, f)| *f))))
        .collect();
    let failures_by_reason = totals_by_dim(sketch, Field::LaunchFailures, DIM_REASON);
    let mut out = Map::new();
    out.insert("phases".into(), Json::Object(phases));
    out.insert(
        "launches".into(),
        json!({
            "attempts": total_all_dims(sketch, Field::LaunchAttempts),
            "successes": total_all_dims(sketch, Field::LaunchSuccesses),
            "failures": total_all_dims(sketch, Field::LaunchFailures),
            "failures_by_reason": failures_by_reason,
        }),
    );
    out.insert(
        "unexpected_exits".into(),
        json!(total_all_dims(sketch, Field::UnexpectedExits)),
    );
    out.insert(
        "unloads".into(),
        json!(total_all_dims(sketch, Field::Unloads)),
    );
    out.insert(
        "uptime_seconds".into(),
        gauge_of(sketch, &FieldKey::plain(Field::UptimeSeconds)),
    );
    out.insert(
        "context_length".into(),
        distribution(plain(sketch, Field::ContextLength)),
    );
    out.insert(
        "loaded_models".into(),
        gauge_of(sketch, &FieldKey::plain(Field::LoadedModels)),
    );
    out
}

fn cost(sketch: &SeriesSketch, companion: Companion) -> Map<String, Json> {
    let breakdown = companion
        .cost
        .unwrap_or_else(|| CostBreakdown::of_cluster("", sketch, &NoPrices));
    breakdown.to_json(companion.tokens)
}

fn reliability(sketch: &SeriesSketch) -> Map<String, Json> {
    let mut pairs: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (key, value) in sketch.fields() {
        if key.field != Field::Failures {
            continue;
        }
        let sku = key.dims.get(DIM_SKU).cloned().unwrap_or_default();
        let cause = key.dims.get(DIM_CAUSE).cloned().unwrap_or_default();
        *pairs.entry((sku, cause)).or_default() += readout::total(value).unwrap_or(0.0);
    }
    let mut out = Map::new();
    out.insert("failures".into(), json!(pairs.values().sum::<f64>()));
    out.insert(
        "failures_by_sku".into(),
        json!(totals_by_dim(sketch, Field::Failures, DIM_SKU)),
    );
    out.insert(
        "failures_by_cause".into(),
        json!(totals_by_dim(sketch, Field::Failures, DIM_CAUSE)),
    );
    out.insert(
        "failures_by_sku_and_cause".into(),
        Json::Array(
            pairs
                .into_iter()
                .map(|((sku, cause), count)| json!({ "sku": sku, "cause": cause, "count": count }))
                .collect(),
        ),
    );
    out
}
