//! Per-kind fields of one group of a signals query: which fields a kind shows
//! and how (distributions as `{count,p50,p90,p99}`, counters as totals over
//! the window, gauges as `{last,min,max,mean}`).

use std::collections::BTreeMap;

use super::model::{
    CapacityGroup, ColdStartGroup, CostGroup, Distribution, Gauge, GroupSignals, Launches,
    PrefixCount, PrefixHash, PrefixHashGroup, ReliabilityGroup, Replicas, RequestLifecycleGroup,
    SkuCauseCount, SkuGauges,
};
use crate::query::cost::{CostBreakdown, NoPrices};
use crate::query::readout::{self, by_dim, plain, total_all_dims, total_of, totals_by_dim};
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
) -> GroupSignals {
    match kind {
        SignalKind::RequestLifecycle => {
            GroupSignals::RequestLifecycle(request_lifecycle(sketch, window_secs))
        }
        SignalKind::PrefixHash => GroupSignals::PrefixHash(prefix_hash(sketch)),
        SignalKind::Capacity => GroupSignals::Capacity(capacity(sketch)),
        SignalKind::ColdStart => GroupSignals::ColdStart(cold_start(sketch)),
        SignalKind::Cost => GroupSignals::Cost(cost(sketch, companion)),
        SignalKind::Reliability => GroupSignals::Reliability(reliability(sketch)),
    }
}

pub fn distribution(field: Option<&FieldSketch>) -> Distribution {
    let [p50, p90, p99] = field.map_or([None; 3], readout::reported_quantiles);
    Distribution {
        count: field.and_then(readout::count).unwrap_or(0),
        p50,
        p90,
        p99,
    }
}

fn gauge_of(sketch: &SeriesSketch, key: &FieldKey) -> Option<Gauge> {
    sketch.field(key).and_then(readout::gauge)
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

fn request_lifecycle(sketch: &SeriesSketch, window_secs: u64) -> RequestLifecycleGroup {
    let requests = total_of(sketch, Field::Requests);
    let errors = total_of(sketch, Field::Errors);
    let queries = total_of(sketch, Field::PrefixCacheQueries);
    let hits = total_of(sketch, Field::PrefixCacheHits);
    let quantiles = |field| distribution(plain(sketch, field));
    RequestLifecycleGroup {
        requests,
        errors,
        error_rate: ratio(errors, requests),
        requests_per_second: ratio(requests, window_secs as f64),
        input_tokens: total_of(sketch, Field::InputTokens),
        output_tokens: total_of(sketch, Field::OutputTokens),
        ttft_seconds: quantiles(Field::TtftSeconds),
        tpot_seconds: quantiles(Field::TpotSeconds),
        e2e_seconds: quantiles(Field::E2eSeconds),
        queue_seconds: quantiles(Field::QueueSeconds),
        prefix_cache_hit_rate: ratio(hits, queries),
        prefix_cache_queries: queries,
        prefix_cache_hits: hits,
        queue_depth: gauge_of(sketch, &FieldKey::plain(Field::QueueDepth)),
        running_requests: gauge_of(sketch, &FieldKey::plain(Field::RunningRequests)),
        preemptions: total_of(sketch, Field::Preemptions),
    }
}

fn prefix_hash(sketch: &SeriesSketch) -> PrefixHashGroup {
    let field = plain(sketch, Field::PrefixHashes);
    PrefixHashGroup {
        distinct: field.and_then(readout::distinct).unwrap_or(0.0).round(),
        top: field
            .map(|f| readout::top(f, TOP_PREFIXES))
            .unwrap_or_default()
            .into_iter()
            .map(|(hash, count)| PrefixCount {
                hash: PrefixHash::of(hash),
                count,
            })
            .collect(),
    }
}

fn capacity(sketch: &SeriesSketch) -> CapacityGroup {
    let mut gpus_by_sku: BTreeMap<String, SkuGauges> = BTreeMap::new();
    let first_gauge =
        |keys: &[(&FieldKey, &FieldSketch)]| keys.first().and_then(|(_, f)| readout::gauge(f));
    for field in [
        Field::Gpus,
        Field::GpusAllocated,
        Field::GpuUtilization,
        Field::GpuMemoryUsedBytes,
        Field::GpuMemoryFreeBytes,
    ] {
        for (sku, keys) in by_dim(sketch, field, DIM_SKU) {
            let reading = Some(first_gauge(&keys));
            let slot = gpus_by_sku.entry(sku).or_default();
            match field {
                Field::Gpus => slot.gpus = reading,
                Field::GpusAllocated => slot.allocated = reading,
                Field::GpuMemoryUsedBytes => slot.memory_used_bytes = reading,
                Field::GpuMemoryFreeBytes => slot.memory_free_bytes = reading,
                _ => slot.utilization = reading,
            }
        }
    }
    CapacityGroup {
        gpus_by_sku,
        kv_cache_utilization_by_tier: by_dim(sketch, Field::KvCacheUtilization, DIM_TIER)
            .into_iter()
            .map(|(tier, keys)| (tier, first_gauge(&keys)))
            .collect(),
        replicas: Replicas {
            active: gauge_of(sketch, &FieldKey::plain(Field::ReplicasActive)),
            starting: gauge_of(sketch, &FieldKey::plain(Field::ReplicasStarting)),
        },
        cache_bytes_staged: gauge_of(sketch, &FieldKey::plain(Field::CacheBytesStaged)),
    }
}

fn cold_start(sketch: &SeriesSketch) -> ColdStartGroup {
    ColdStartGroup {
        phases: by_dim(sketch, Field::PhaseSeconds, DIM_PHASE)
            .into_iter()
            .map(|(phase, keys)| (phase, distribution(keys.first().map(|(_, f)| *f))))
            .collect(),
        launches: Launches {
            attempts: total_all_dims(sketch, Field::LaunchAttempts),
            successes: total_all_dims(sketch, Field::LaunchSuccesses),
            failures: total_all_dims(sketch, Field::LaunchFailures),
            failures_by_reason: totals_by_dim(sketch, Field::LaunchFailures, DIM_REASON),
        },
        unexpected_exits: total_all_dims(sketch, Field::UnexpectedExits),
        unloads: total_all_dims(sketch, Field::Unloads),
        launch_seconds: distribution(
            readout::distribution_all_dims(sketch, Field::LaunchSeconds).as_ref(),
        ),
        uptime_seconds: distribution(
            readout::distribution_all_dims(sketch, Field::UptimeSeconds).as_ref(),
        ),
        context_length: readout::gauge_all_dims(sketch, Field::ContextLength),
        context_length_distribution: distribution(
            readout::distribution_all_dims(sketch, Field::ContextLength).as_ref(),
        ),
        loaded_models: readout::gauge_all_dims(sketch, Field::LoadedModels),
    }
}

fn cost(sketch: &SeriesSketch, companion: Companion) -> CostGroup {
    let breakdown = companion
        .cost
        .unwrap_or_else(|| CostBreakdown::of_cluster("", sketch, &NoPrices));
    let tokens = companion.tokens;
    CostGroup {
        gpu_hours: breakdown.gpu_hours(),
        dollars: breakdown.dollars(),
        dollars_per_gpu_hour: breakdown.dollars_per_gpu_hour(),
        tokens,
        dollars_per_token: tokens.and_then(|t| breakdown.dollars_per_token(t)),
        by_sku: breakdown.by_sku,
    }
}

fn reliability(sketch: &SeriesSketch) -> ReliabilityGroup {
    let mut pairs: BTreeMap<(String, String), f64> = BTreeMap::new();
    for (key, value) in sketch.fields() {
        if key.field != Field::Failures {
            continue;
        }
        let sku = key.dims.get(DIM_SKU).cloned().unwrap_or_default();
        let cause = key.dims.get(DIM_CAUSE).cloned().unwrap_or_default();
        *pairs.entry((sku, cause)).or_default() += readout::total(value).unwrap_or(0.0);
    }
    ReliabilityGroup {
        failures: pairs.values().fold(0.0, |a, b| a + b),
        failures_by_sku: totals_by_dim(sketch, Field::Failures, DIM_SKU),
        failures_by_cause: totals_by_dim(sketch, Field::Failures, DIM_CAUSE),
        failures_by_sku_and_cause: pairs
            .into_iter()
            .map(|((sku, cause), count)| SkuCauseCount { sku, cause, count })
            .collect(),
    }
}
