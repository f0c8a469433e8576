//! What the status writer writes, computed from the directory, the cluster
//! activity and the store. Numbers are read with the query API's own readout
//! functions (`serve::readout`, `serve::signals`), so status and API agree.

use std::collections::BTreeMap;

use apis::{ClusterBreakdown, LatencyQuantiles, ServiceMetrics, SignalsStatus};

use crate::clock::rfc3339;
use crate::directory::{ClusterEntry, Directory, ServiceEntry};
use crate::pipeline::activity::ClusterActivity;
use crate::query::cost::cost_of_clusters;
use crate::query::readout;
use crate::query::readout::total_of;
use crate::signal::{Field, FieldKey, SeriesKey, SignalKind};
use crate::sketch::SeriesSketch;
use crate::store::{SketchStore, StoreError, StoreQuery};

/// Inputs that do not change between objects in one pass.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub window_secs: u64,
    /// The agent counts as reporting if it flushed within this long.
    pub agent_timeout_secs: u64,
    /// Timestamps are rounded down to this many seconds, so a write is due
    /// when one crosses a boundary, not on every flush.
    pub timestamp_resolution_secs: u64,
    /// Whether `enabledKinds` is written too. function-signals owns that
    /// field (it sets it from the spec through Crossplane), so by default
    /// the aggregator leaves it alone; turn on only without the function.
    pub write_enabled_kinds: bool,
}

impl Settings {
    fn timestamp(&self, unix_secs: u64) -> String {
        let resolution = self.timestamp_resolution_secs.max(1);
        rfc3339(unix_secs - unix_secs % resolution)
    }

    /// `300` → `5m`: the form `ServiceMetrics.window` documents.
    pub fn window_label(&self) -> String {
        let secs = self.window_secs;
        if secs > 0 && secs.is_multiple_of(86_400) {
            format!("{}d", secs / 86_400)
        } else if secs > 0 && secs.is_multiple_of(3_600) {
            format!("{}h", secs / 3_600)
        } else if secs > 0 && secs.is_multiple_of(60) {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    }
}

/// `status.signals` of one InferenceCluster. What this process has not seen
/// since it started (times, per-kind datapoints) is carried over from the
/// status already on the XR rather than erased.
///
/// `activity.dropped` is the whole count to report: the XR's count when
/// counting began plus what was counted since (every replica's, when shared).
pub fn cluster_status(
    entry: &ClusterEntry,
    activity: Option<&ClusterActivity>,
    cost: Option<apis::ClusterCostStatus>,
    now: u64,
    settings: &Settings,
) -> SignalsStatus {
    let observed = entry.observed_status.as_ref();
    let last_flush = activity
        .and_then(|a| a.last_flush)
        .map(|t| settings.timestamp(t))
        .or_else(|| observed.and_then(|o| o.last_flush.clone()));
    let mut last_datapoint = observed
        .map(|o| o.last_datapoint.clone())
        .unwrap_or_default();
    if let Some(activity) = activity {
        for (kind, t) in &activity.last_datapoint {
            last_datapoint.insert(*kind, settings.timestamp(*t));
        }
    }
    let reporting = activity
        .and_then(|a| a.last_flush)
        .is_some_and(|t| now.saturating_sub(t) <= settings.agent_timeout_secs);
    let mut enabled_kinds = if settings.write_enabled_kinds {
        entry.enabled_kinds.clone()
    } else {
        Vec::new()
    };
    // The function's order (SignalKind::ALL), so both writers agree exactly.
    enabled_kinds.sort();
    SignalsStatus {
        enabled_kinds,
        last_flush,
        dropped_events: Some(activity.map_or(0, |a| a.dropped)),
        last_datapoint,
        agent_reporting: entry.signals_configured.then_some(reporting),
        cost,
        // The token issuer applies this under its own field manager.
        ingest_token: None,
    }
}

/// Answers computed once per pass and shared by every service.
#[derive(Debug, Clone, Copy, Default)]
pub struct FleetFigures {
    /// Prefix-cache hit rate over the series the directory admits to the fleet.
    pub prefix_cache_hit_rate: Option<f64>,
}

fn range(now: u64, settings: &Settings) -> (u64, u64) {
    (now.saturating_sub(settings.window_secs), now)
}

pub async fn fleet_figures(
    store: &dyn SketchStore,
    directory: &Directory,
    now: u64,
    settings: &Settings,
) -> Result<FleetFigures, StoreError> {
    let (from, to) = range(now, settings);
    let series = store
        .query(&StoreQuery {
            tenant: None,
            kind: SignalKind::RequestLifecycle,
            cluster: None,
            model: None,
            from_unix_secs: from,
            to_unix_secs: to,
        })
        .await?;
    let (mut hits, mut queries) = (0.0, 0.0);
    for (key, sketch) in &series {
        if directory.fleet_includes(key) {
            hits += total_of(sketch, Field::PrefixCacheHits);
            queries += total_of(sketch, Field::PrefixCacheQueries);
        }
    }
    Ok(FleetFigures {
        prefix_cache_hit_rate: ratio(hits, queries),
    })
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

/// Every series of the service's models of one kind, in the window.
async fn service_series(
    store: &dyn SketchStore,
    service: &ServiceEntry,
    kind: SignalKind,
    now: u64,
    settings: &Settings,
) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
    let (from, to) = range(now, settings);
    let mut out = Vec::new();
    for model in &service.models {
        out.extend(
            store
                .query(&StoreQuery {
                    tenant: Some(service.tenant.clone()),
                    kind,
                    cluster: None,
                    model: Some(model.clone()),
                    from_unix_secs: from,
                    to_unix_secs: to,
                })
                .await?,
        );
    }
    Ok(out)
}

/// Merges series per cluster (sketch merges, so quantiles stay exact-to-sketch).
fn by_cluster(series: Vec<(SeriesKey, SeriesSketch)>) -> BTreeMap<String, SeriesSketch> {
    let mut clusters: BTreeMap<String, SeriesSketch> = BTreeMap::new();
    for (key, sketch) in series {
        let slot = clusters.entry(key.cluster.clone()).or_default();
        if let Err(error) = slot.merge(&sketch) {
            tracing::warn!(cluster = %key.cluster, %error, "skipping a series that does not merge");
        }
    }
    clusters
}

fn merged<'a>(sketches: impl Iterator<Item = &'a SeriesSketch>) -> SeriesSketch {
    let mut total = SeriesSketch::default();
    for sketch in sketches {
        // Per-cluster sketches already merged once; a second merge of the
        // same shapes cannot fail differently, so failures were logged there.
        let _ = total.merge(sketch);
    }
    total
}

fn latency(sketch: &SeriesSketch, field: Field) -> Option<LatencyQuantiles> {
    let field = sketch.field(&FieldKey::plain(field))?;
    let [p50, p90, p99] = readout::reported_quantiles(field);
    Some(LatencyQuantiles {
        p50: p50?,
        p90: p90?,
        p99: p99?,
    })
}

fn hit_rate(sketch: &SeriesSketch) -> Option<f64> {
    ratio(
        total_of(sketch, Field::PrefixCacheHits),
        total_of(sketch, Field::PrefixCacheQueries),
    )
}

/// `status.observability.metrics` of one ModelService.
pub async fn service_metrics(
    store: &dyn SketchStore,
    directory: &Directory,
    service: &ServiceEntry,
    fleet: FleetFigures,
    now: u64,
    settings: &Settings,
) -> Result<ServiceMetrics, StoreError> {
    let window = settings.window_secs.max(1) as f64;
    let lifecycle = by_cluster(
        service_series(store, service, SignalKind::RequestLifecycle, now, settings).await?,
    );
    let total = merged(lifecycle.values());
    let clusters = lifecycle
        .iter()
        .map(|(cluster, sketch)| ClusterBreakdown {
            cluster: cluster.clone(),
            request_rate: total_of(sketch, Field::Requests) / window,
            error_rate: total_of(sketch, Field::Errors) / window,
            ttft_seconds: latency(sketch, Field::TtftSeconds),
            prefix_cache_hit_rate: hit_rate(sketch),
        })
        .collect();
    let tokens = total_of(&total, Field::InputTokens) + total_of(&total, Field::OutputTokens);
    let prefixes =
        by_cluster(service_series(store, service, SignalKind::PrefixHash, now, settings).await?);
    let cost = by_cluster(service_series(store, service, SignalKind::Cost, now, settings).await?);
    Ok(ServiceMetrics {
        window: settings.window_label(),
        updated_at: rfc3339(now),
        ttft_seconds: latency(&total, Field::TtftSeconds),
        tpot_seconds: latency(&total, Field::TpotSeconds),
        e2e_seconds: latency(&total, Field::E2eSeconds),
        request_rate: total_of(&total, Field::Requests) / window,
        error_rate: total_of(&total, Field::Errors) / window,
        prefix_cache_hit_rate: hit_rate(&total),
        fleet_prefix_cache_hit_rate: if service.is_fleet_opted_in() {
            fleet.prefix_cache_hit_rate
        } else {
            None
        },
        prefix_coverage: prefix_coverage(&prefixes),
        cost_per_token: cost_of_clusters(cost.iter().map(|(c, s)| (c.as_str(), s)), directory)
            .dollars_per_token(tokens),
        clusters,
    })
}

/// Fraction of the service's distinct prefix hashes seen on two or more of
/// its clusters, from HyperLogLog unions: for each cluster, the prefixes only
/// it saw are |all| − |all others|. None with fewer than two clusters.
pub fn prefix_coverage(per_cluster: &BTreeMap<String, SeriesSketch>) -> Option<f64> {
    let key = FieldKey::plain(Field::PrefixHashes);
    let sketches: Vec<_> = per_cluster
        .values()
        .filter_map(|s| s.field(&key)?.as_prefix())
        .collect();
    if sketches.len() < 2 {
        return None;
    }
    let union_except = |skip: Option<usize>| {
        let mut union = crate::sketch::PrefixSketch::default();
        for (i, s) in sketches.iter().enumerate() {
            if Some(i) != skip {
                union.merge(s);
            }
        }
        union.distinct()
    };
    let all = union_except(None);
    if all <= 0.0 {
        return None;
    }
    let only_one: f64 = (0..sketches.len())
        .map(|i| (all - union_except(Some(i))).max(0.0))
        .sum();
    Some(((all - only_one) / all).clamp(0.0, 1.0))
}
