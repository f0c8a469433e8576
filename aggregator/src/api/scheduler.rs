//! Scheduler-facing answers (operator token; fleet-visible series only):
//! free GPUs by SKU per cluster for the federation matcher, cross-cluster
//! prefix overlap per model for routing affinity, and queue depth with cost
//! per cluster for overflow.

use std::collections::{BTreeMap, HashMap};

use crate::api::Answer;
use axum::extract::{Query, State};

use crate::api::model::{
    CapacityResponse, ClusterCapacity, ClusterOverflow, ClusterPair, ClusterPrefixes, GpuTotals,
    OverflowResponse, PrefixCount, PrefixHash, PrefixOverlapResponse, PrefixTotals, SharedPrefix,
    SkuCapacity as SkuCapacityAnswer,
};
use crate::api::params::{Params, TimeRange};
use crate::api::tenant::merge_groups;
use crate::api::{ApiError, ApiState, window};
use crate::query::cost::{CostBreakdown, price_of, reported_prices};
use crate::query::readout;
use crate::query::readout::total_of;
use crate::signal::{DIM_SKU, Field, FieldKey, SeriesKey, SignalKind};
use crate::sketch::SeriesSketch;
use crate::store::StoreQuery;

/// Largest `top` accepted by prefix-overlap.
const MAX_TOP: usize = 100;

/// Fleet-visible series of one kind in the range, optionally one model/cluster.
async fn fleet_series(
    state: &ApiState,
    kind: SignalKind,
    range: TimeRange,
    model: Option<String>,
    cluster: Option<String>,
) -> Result<Vec<(SeriesKey, SeriesSketch)>, ApiError> {
    let query = StoreQuery {
        tenant: None,
        kind,
        cluster,
        model,
        from_unix_secs: range.from_unix_secs,
        to_unix_secs: range.to_unix_secs,
    };
    Ok(state
        .store
        .query(&query)
        .await?
        .into_iter()
        .filter(|(key, _)| state.fleet.includes(key))
        .collect())
}

/// Latest reading of a gauge in one series.
fn last(sketch: &SeriesSketch, key: &FieldKey) -> Option<f64> {
    sketch.field(key).and_then(readout::gauge).map(|g| g.last)
}

#[derive(Default)]
struct SkuCapacity {
    gpus: f64,
    allocated: f64,
    /// Σ utilization × gpus over series reporting both, and that Σ gpus.
    weighted_utilization: f64,
    utilization_gpus: f64,
}

/// GPUs per SKU per cluster: each series' latest reading, summed over the
/// cluster's series (each series' GPUs are its own).
fn capacity_by_cluster(
    series: &[(SeriesKey, SeriesSketch)],
) -> BTreeMap<String, BTreeMap<String, SkuCapacity>> {
    let mut out: BTreeMap<String, BTreeMap<String, SkuCapacity>> = BTreeMap::new();
    for (key, sketch) in series {
        for (field_key, _) in sketch.fields().filter(|(k, _)| k.field == Field::Gpus) {
            let Some(sku) = field_key.dims.get(DIM_SKU) else {
                continue;
            };
            let slot = out
                .entry(key.cluster.clone())
                .or_default()
                .entry(sku.clone())
                .or_default();
            let gpus = last(sketch, field_key).unwrap_or(0.0);
            slot.gpus += gpus;
            let with_sku = |field| FieldKey::with_dim(field, DIM_SKU, sku);
            slot.allocated += last(sketch, &with_sku(Field::GpusAllocated)).unwrap_or(0.0);
            if let Some(utilization) = last(sketch, &with_sku(Field::GpuUtilization)) {
                slot.weighted_utilization += utilization * gpus;
                slot.utilization_gpus += gpus;
            }
        }
    }
    out
}

/// Reported prices per cluster (fallback when no pricing is configured).
fn reported_by_cluster(
    cost_series: Vec<(SeriesKey, SeriesSketch)>,
) -> Result<BTreeMap<String, BTreeMap<String, f64>>, ApiError> {
    Ok(merge_groups(cost_series, |k| k.cluster.clone())?
        .into_iter()
        .map(|(cluster, sketch)| (cluster, reported_prices(&sketch)))
        .collect())
}

fn cluster_capacity(
    state: &ApiState,
    cluster: &str,
    skus: &BTreeMap<String, SkuCapacity>,
    reported: &BTreeMap<String, f64>,
) -> ClusterCapacity {
    let (mut gpus, mut allocated) = (0.0, 0.0);
    let rows = skus
        .iter()
        .map(|(sku, c)| {
            gpus += c.gpus;
            allocated += c.allocated;
            let price = price_of(state.prices.as_ref(), cluster, sku, reported);
            SkuCapacityAnswer {
                sku: sku.clone(),
                gpus: c.gpus,
                allocated: c.allocated,
                free: (c.gpus - c.allocated).max(0.0),
                utilization: (c.utilization_gpus > 0.0)
                    .then(|| c.weighted_utilization / c.utilization_gpus),
                price_per_gpu_hour: price.map(|p| p.0),
                price_source: price.map(|p| p.1),
            }
        })
        .collect();
    ClusterCapacity {
        cluster: cluster.to_string(),
        skus: rows,
        total: GpuTotals {
            gpus,
            allocated,
            free: (gpus - allocated).max(0.0),
        },
    }
}

/// `GET /v1/scheduler/capacity`
pub async fn capacity(
    State(state): State<ApiState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Answer<CapacityResponse>, ApiError> {
    let params = Params::new(raw, &["window", "to", "cluster", "sku"])?;
    let range = params.time_range((state.clock)(), state.store.retention_secs())?;
    let cluster = params.identity("cluster")?;
    let sku = params.identity("sku")?;
    let series = fleet_series(&state, SignalKind::Capacity, range, None, cluster.clone()).await?;
    let reported =
        reported_by_cluster(fleet_series(&state, SignalKind::Cost, range, None, cluster).await?)?;
    let empty = BTreeMap::new();
    let clusters = capacity_by_cluster(&series)
        .into_iter()
        .map(|(cluster, mut skus)| {
            if let Some(only) = &sku {
                skus.retain(|s, _| s == only);
            }
            (cluster, skus)
        })
        .filter(|(_, skus)| !skus.is_empty())
        .map(|(cluster, skus)| {
            cluster_capacity(
                &state,
                &cluster,
                &skus,
                reported.get(&cluster).unwrap_or(&empty),
            )
        })
        .collect();
    Ok(Answer(CapacityResponse {
        window: window(range),
        clusters,
    }))
}

/// `GET /v1/scheduler/prefix-overlap`
pub async fn prefix_overlap(
    State(state): State<ApiState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Answer<PrefixOverlapResponse>, ApiError> {
    let params = Params::new(raw, &["model", "window", "to", "top"])?;
    let model = params.required("model")?;
    crate::api::params::validate_identity("model", model)?;
    let top = match params.get("top") {
        None | Some("") => 10,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_TOP).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(
                    "top",
                    format!("{raw:?} is not a whole number in 1..={MAX_TOP}"),
                )
            })?,
    };
    let range = params.time_range((state.clock)(), state.store.retention_secs())?;
    let series = fleet_series(
        &state,
        SignalKind::PrefixHash,
        range,
        Some(model.to_string()),
        None,
    )
    .await?;
    let per_cluster = merge_groups(series, |k| k.cluster.clone())?;
    let key = FieldKey::plain(Field::PrefixHashes);
    let sketches: Vec<(&String, &crate::sketch::PrefixSketch)> = per_cluster
        .iter()
        .filter_map(|(cluster, s)| Some((cluster, s.field(&key)?.as_prefix()?)))
        .collect();
    let mut fleet = crate::sketch::PrefixSketch::default();
    let clusters = sketches
        .iter()
        .map(|(cluster, sketch)| {
            fleet.merge(sketch);
            ClusterPrefixes {
                cluster: cluster.to_string(),
                distinct: sketch.distinct().round(),
                occurrences: sketch.total(),
                top: sketch
                    .top(top)
                    .into_iter()
                    .map(|h| PrefixCount {
                        hash: PrefixHash::of(h.hash),
                        count: h.count,
                    })
                    .collect(),
            }
        })
        .collect();
    let mut pairs = Vec::new();
    for (i, (a, sketch_a)) in sketches.iter().enumerate() {
        for (b, sketch_b) in &sketches[i + 1..] {
            let overlap = sketch_a.overlap(sketch_b, top);
            pairs.push(ClusterPair {
                clusters: [a.to_string(), b.to_string()],
                distinct_union: overlap.distinct_union.round(),
                distinct_intersection: overlap.distinct_intersection.round(),
                jaccard: overlap.jaccard,
                shared_top: overlap
                    .shared_top
                    .iter()
                    .map(|h| SharedPrefix {
                        hash: PrefixHash::of(h.hash),
                        counts: BTreeMap::from([
                            (a.to_string(), h.count_self),
                            (b.to_string(), h.count_other),
                        ]),
                    })
                    .collect(),
            });
        }
    }
    Ok(Answer(PrefixOverlapResponse {
        model: model.to_string(),
        window: window(range),
        fleet: PrefixTotals {
            distinct: fleet.distinct().round(),
            occurrences: fleet.total(),
        },
        clusters,
        pairs,
    }))
}

/// `GET /v1/scheduler/overflow`
pub async fn overflow(
    State(state): State<ApiState>,
    Query(raw): Query<HashMap<String, String>>,
) -> Result<Answer<OverflowResponse>, ApiError> {
    let params = Params::new(raw, &["model", "window", "to"])?;
    let model = params.identity("model")?;
    let range = params.time_range((state.clock)(), state.store.retention_secs())?;
    let window_secs = (range.to_unix_secs - range.from_unix_secs).max(1) as f64;
    let lifecycle = fleet_series(
        &state,
        SignalKind::RequestLifecycle,
        range,
        model.clone(),
        None,
    )
    .await?;
    // Queue depth per cluster: each series' latest reading, summed.
    let mut queued: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (key, sketch) in &lifecycle {
        let slot = queued.entry(key.cluster.clone()).or_default();
        slot.0 += last(sketch, &FieldKey::plain(Field::QueueDepth)).unwrap_or(0.0);
        slot.1 += last(sketch, &FieldKey::plain(Field::RunningRequests)).unwrap_or(0.0);
    }
    let lifecycle = merge_groups(lifecycle, |k| k.cluster.clone())?;
    let costs = merge_groups(
        fleet_series(&state, SignalKind::Cost, range, model.clone(), None).await?,
        |k| k.cluster.clone(),
    )?;
    let capacity =
        capacity_by_cluster(&fleet_series(&state, SignalKind::Capacity, range, None, None).await?);
    let mut names: Vec<&String> = lifecycle.keys().chain(costs.keys()).collect();
    names.sort();
    names.dedup();
    let clusters = names
        .into_iter()
        .map(|cluster| {
            let sketch = lifecycle.get(cluster);
            let total = |field| sketch.map_or(0.0, |s| total_of(s, field));
            let tokens = total(Field::InputTokens) + total(Field::OutputTokens);
            let cost = costs
                .get(cluster)
                .map(|s| CostBreakdown::of_cluster(cluster, s, state.prices.as_ref()))
                .unwrap_or_default();
            let (queue_depth, running) = queued.get(cluster).copied().unwrap_or_default();
            let free: f64 = capacity
                .get(cluster)
                .map(|skus| skus.values().map(|c| (c.gpus - c.allocated).max(0.0)).sum())
                .unwrap_or(0.0);
            let ttft_p99 = sketch
                .and_then(|s| s.field(&FieldKey::plain(Field::TtftSeconds)))
                .and_then(|f| readout::quantile(f, 0.99));
            ClusterOverflow {
                cluster: cluster.clone(),
                queue_depth,
                running_requests: running,
                requests_per_second: total(Field::Requests) / window_secs,
                ttft_p99_seconds: ttft_p99,
                free_gpus: free,
                gpu_hours: cost.gpu_hours(),
                dollars: cost.dollars(),
                dollars_per_gpu_hour: cost.dollars_per_gpu_hour(),
                tokens,
                dollars_per_token: cost.dollars_per_token(tokens),
            }
        })
        .collect();
    Ok(Answer(OverflowResponse {
        model,
        window: window(range),
        clusters,
    }))
}
