//! `/metrics` in the Prometheus text exposition format (0.0.4): the
//! aggregator's own health and the signals of the last five minutes (latency
//! quantiles as summaries, everything else as gauges).
//! Labels come only from series identity (tenant, cluster, model) and fixed
//! names, never from request attributes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::tenant::merge_groups;
use crate::api::{ApiError, ApiState, METRICS_WINDOW_SECS};
use crate::query::cost::{CostBreakdown, totals_by_sku};
use crate::query::readout;
use crate::query::readout::{REPORTED_QUANTILES, total_of};
use crate::signal::{
    DIM_CAUSE, DIM_PHASE, DIM_SKU, DIM_TIER, Field, FieldKey, SeriesKey, SignalKind,
};
use crate::sketch::SeriesSketch;
use crate::store::StoreQuery;

const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const DISTRIBUTIONS: [(Field, &str, &str); 4] = [
    (Field::TtftSeconds, "ttft_seconds", "Time to first token"),
    (Field::TpotSeconds, "tpot_seconds", "Time per output token"),
    (
        Field::E2eSeconds,
        "e2e_seconds",
        "End-to-end request latency",
    ),
    (
        Field::QueueSeconds,
        "queue_seconds",
        "Time requests waited in the queue",
    ),
];

pub async fn render(State(state): State<ApiState>) -> Response {
    let mut text = Text::default();
    self_metrics(&state, &mut text).await;
    unmapped_points(&state, &mut text);
    // A store outage must show as gauges (the store's own `*_up`), not as
    // a failed scrape: the signal gauges are left out and say so.
    let mut signals = Text::default();
    let readable = match signal_gauges(&state, &mut signals).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(error = %error.message, "/metrics: signal gauges left out, the store cannot answer");
            false
        }
    };
    text.family(
        "modelplane_aggregator_signals_readable",
        "gauge",
        "1 when the signal gauges below could be read from the store, 0 during a store outage.",
    );
    text.sample(
        "modelplane_aggregator_signals_readable",
        &[],
        if readable { 1.0 } else { 0.0 },
    );
    if readable {
        text.out.push_str(&signals.out);
    }
    text.out.push_str(&state.store.prometheus_text());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text.out).into_response()
}

async fn self_metrics(state: &ApiState, text: &mut Text) {
    let m = &state.metrics;
    text.family(
        "modelplane_aggregator_ingested_items_total",
        "counter",
        "Spans and datapoints accepted, by OTLP signal.",
    );
    for (signal, n) in m.ingested_snapshot() {
        text.sample(
            "modelplane_aggregator_ingested_items_total",
            &[("signal", signal)],
            n as f64,
        );
    }
    for (name, help, snapshot) in [
        (
            "modelplane_aggregator_rejected_items_total",
            "Items refused back to the sender, by OTLP signal and reason.",
            m.rejected_snapshot(),
        ),
        (
            "modelplane_aggregator_dropped_items_total",
            "Items accepted but not kept, by OTLP signal and reason.",
            m.dropped_snapshot(),
        ),
    ] {
        text.family(name, "counter", help);
        for ((signal, reason), n) in snapshot {
            text.sample(name, &[("signal", signal), ("reason", reason)], n as f64);
        }
    }
    let flush = "modelplane_aggregator_flush_duration_seconds";
    text.family(
        flush,
        "summary",
        "Time from decoded request to sketches merged into the store.",
    );
    text.sample(&format!("{flush}_sum"), &[], *m.flush_seconds_sum.lock());
    text.sample(
        &format!("{flush}_count"),
        &[],
        m.flushes.load(Ordering::Relaxed) as f64,
    );

    if let Some(known) = m.known_xrs() {
        text.family(
            "modelplane_aggregator_directory_synced",
            "gauge",
            "1 once the XR watch has listed both kinds (fleet answers and status depend on it).",
        );
        text.sample(
            "modelplane_aggregator_directory_synced",
            &[],
            if known.synced { 1.0 } else { 0.0 },
        );
        let xrs = "modelplane_aggregator_directory_xrs";
        text.family(
            xrs,
            "gauge",
            "XRs the aggregator knows from its watch, by kind.",
        );
        text.sample(
            xrs,
            &[("kind", "InferenceCluster")],
            known.inference_clusters as f64,
        );
        text.sample(
            xrs,
            &[("kind", "ModelService")],
            known.model_services as f64,
        );
    }

    let health = state.store.health().await;
    text.family(
        "modelplane_aggregator_store_ready",
        "gauge",
        "1 when the sketch store accepts writes.",
    );
    text.sample(
        "modelplane_aggregator_store_ready",
        &[],
        if health.ready { 1.0 } else { 0.0 },
    );
    if let Some(series) = health.series {
        text.family(
            "modelplane_aggregator_series",
            "gauge",
            "Series (tenant, cluster, model, kind) held by the store.",
        );
        text.sample("modelplane_aggregator_series", &[], series as f64);
    }
}

/// Each family twice: per series, and per cluster over fleet-visible series
/// (metric-name prefix, what the help text says the scope is).
const SCOPES: [(&str, &str); 2] = [
    ("modelplane_signal", "per tenant, cluster and model"),
    (
        "modelplane_fleet",
        "per cluster across fleet-visible series",
    ),
];

async fn signal_gauges(state: &ApiState, text: &mut Text) -> Result<(), ApiError> {
    let now = (state.clock)();
    let query = StoreQuery {
        tenant: None,
        kind: SignalKind::RequestLifecycle,
        cluster: None,
        model: None,
        from_unix_secs: now.saturating_sub(METRICS_WINDOW_SECS),
        to_unix_secs: now,
    };
    let series = state.store.query(&query).await?;
    let fleet = merge_groups(
        series
            .iter()
            .filter(|(key, _)| state.fleet.includes(key))
            .cloned()
            .collect(),
        |key| key.cluster.clone(),
    )?;
    let per_series: Vec<(Vec<(&str, &str)>, &SeriesSketch)> = series
        .iter()
        .map(|(key, sketch)| {
            let labels = vec![
                ("tenant", key.tenant.as_str()),
                ("cluster", key.cluster.as_str()),
                ("model", key.model.as_str()),
            ];
            (labels, sketch)
        })
        .collect();
    let per_cluster: Vec<(Vec<(&str, &str)>, &SeriesSketch)> = fleet
        .iter()
        .map(|(cluster, sketch)| (vec![("cluster", cluster.as_str())], sketch))
        .collect();
    for ((prefix, scope), rows) in SCOPES.into_iter().zip([&per_series, &per_cluster]) {
        for (field, suffix, what) in DISTRIBUTIONS {
            let name = format!("{prefix}_{suffix}");
            // `summary`: quantiles over a sliding window are what a summary's
            // quantile samples mean (and promtool refuses `quantile` on gauges).
            // No _sum/_count: those would have to be cumulative.
            text.family(
                &name,
                "summary",
                &format!("{what}, quantiles over the last 5 minutes, {scope}."),
            );
            for (labels, sketch) in rows {
                let Some(f) = sketch.field(&FieldKey::plain(field)) else {
                    continue;
                };
                for (_, q) in REPORTED_QUANTILES {
                    if let Some(v) = readout::quantile(f, q) {
                        let quantile = q.to_string();
                        let mut l = labels.clone();
                        l.push(("quantile", quantile.as_str()));
                        text.sample(&name, &l, v);
                    }
                }
            }
        }
        for (field, suffix, what) in [
            (Field::Requests, "requests", "Requests"),
            (Field::Errors, "errors", "Failed requests"),
            (Field::InputTokens, "input_tokens", "Input tokens"),
            (Field::OutputTokens, "output_tokens", "Output tokens"),
            (
                Field::PrefixCacheQueries,
                "prefix_cache_queries",
                "Prefix-cache queries (tokens)",
            ),
            (
                Field::PrefixCacheHits,
                "prefix_cache_hits",
                "Prefix-cache hits (tokens)",
            ),
        ] {
            let name = format!("{prefix}_{suffix}");
            text.family(
                &name,
                "gauge",
                &format!("{what} in the last 5 minutes, {scope}."),
            );
            for (labels, sketch) in rows {
                text.sample(&name, labels, total_of(sketch, field));
            }
        }
        let name = format!("{prefix}_prefix_cache_hit_ratio");
        text.family(
            &name,
            "gauge",
            &format!("Prefix-cache hits over queries, last 5 minutes, {scope}."),
        );
        for (labels, sketch) in rows {
            let queries = total_of(sketch, Field::PrefixCacheQueries);
            if queries > 0.0 {
                text.sample(
                    &name,
                    labels,
                    total_of(sketch, Field::PrefixCacheHits) / queries,
                );
            }
        }
        let name = format!("{prefix}_queue_depth");
        text.family(
            &name,
            "gauge",
            &format!("Last reported queue depth, {scope}."),
        );
        for (labels, sketch) in rows {
            if let Some(g) = sketch
                .field(&FieldKey::plain(Field::QueueDepth))
                .and_then(readout::gauge)
            {
                text.sample(&name, labels, g.last);
            }
        }
    }
    other_kinds(state, text, &series, now).await
}

/// One kind's rows: labels, the cluster (for prices) and the sketch.
type Rows<'a> = Vec<(Vec<(&'a str, &'a str)>, &'a str, &'a SeriesSketch)>;

/// Capacity, cold start, cost and reliability, per series and per cluster
/// (fleet-visible series only), and how many series of each kind every
/// cluster reported in the window (all series: an agent that went quiet
/// shows as its cluster missing).
async fn other_kinds(
    state: &ApiState,
    text: &mut Text,
    lifecycle: &[(SeriesKey, SeriesSketch)],
    now: u64,
) -> Result<(), ApiError> {
    let mut reporting: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    let mut count = |kind: SignalKind, series: &[(SeriesKey, SeriesSketch)]| {
        for (key, _) in series {
            *reporting
                .entry((key.cluster.clone(), kind.as_str()))
                .or_default() += 1;
        }
    };
    count(SignalKind::RequestLifecycle, lifecycle);
    for kind in [
        SignalKind::Capacity,
        SignalKind::ColdStart,
        SignalKind::Cost,
        SignalKind::Reliability,
    ] {
        let query = StoreQuery {
            tenant: None,
            kind,
            cluster: None,
            model: None,
            from_unix_secs: now.saturating_sub(METRICS_WINDOW_SECS),
            to_unix_secs: now,
        };
        let series = state.store.query(&query).await?;
        count(kind, &series);
        let fleet = merge_groups(
            series
                .iter()
                .filter(|(key, _)| state.fleet.includes(key))
                .cloned()
                .collect(),
            |key| key.cluster.clone(),
        )?;
        let per_series: Rows = series
            .iter()
            .map(|(key, sketch)| {
                let labels = vec![
                    ("tenant", key.tenant.as_str()),
                    ("cluster", key.cluster.as_str()),
                    ("model", key.model.as_str()),
                ];
                (labels, key.cluster.as_str(), sketch)
            })
            .collect();
        let per_cluster: Rows = fleet
            .iter()
            .map(|(cluster, sketch)| {
                (
                    vec![("cluster", cluster.as_str())],
                    cluster.as_str(),
                    sketch,
                )
            })
            .collect();
        for ((prefix, scope), rows) in SCOPES.into_iter().zip([&per_series, &per_cluster]) {
            match kind {
                SignalKind::Capacity => capacity(text, prefix, scope, rows),
                SignalKind::ColdStart => cold_start(text, prefix, scope, rows),
                SignalKind::Cost => cost(state, text, prefix, scope, rows),
                _ => failures(text, prefix, scope, rows),
            }
        }
    }
    let name = "modelplane_aggregator_reporting_series";
    text.family(
        name,
        "gauge",
        "Series with data in the last 5 minutes, by cluster and signal kind (PrefixHash not counted); a cluster whose agent stopped disappears.",
    );
    for ((cluster, kind), n) in reporting {
        text.sample(name, &[("cluster", &cluster), ("kind", kind)], n as f64);
    }
    Ok(())
}

/// Last reading of `field` under each value of `dim`, as label `label`.
fn gauge_by_dim(text: &mut Text, name: &str, help: &str, rows: &Rows, field: Field, dim: &str) {
    text.family(name, "gauge", help);
    for (labels, _, sketch) in rows {
        for (value, keys) in readout::by_dim(sketch, field, dim) {
            if let Some(g) = keys.first().and_then(|(_, f)| readout::gauge(f)) {
                let mut l = labels.clone();
                l.push((dim, value.as_str()));
                text.sample(name, &l, g.last);
            }
        }
    }
}

fn capacity(text: &mut Text, prefix: &str, scope: &str, rows: &Rows) {
    for (field, suffix, what) in [
        (Field::Gpus, "gpus", "GPUs by SKU"),
        (
            Field::GpusAllocated,
            "gpus_allocated",
            "Allocated GPUs by SKU",
        ),
        (
            Field::GpuUtilization,
            "gpu_utilization",
            "GPU utilization (0-1) by SKU",
        ),
    ] {
        gauge_by_dim(
            text,
            &format!("{prefix}_{suffix}"),
            &format!("{what}, last report in the last 5 minutes, {scope}."),
            rows,
            field,
            DIM_SKU,
        );
    }
    gauge_by_dim(
        text,
        &format!("{prefix}_kv_cache_utilization"),
        &format!("KV-cache utilization (0-1) by tier, last report in the last 5 minutes, {scope}."),
        rows,
        Field::KvCacheUtilization,
        DIM_TIER,
    );
    let name = format!("{prefix}_replicas");
    text.family(
        &name,
        "gauge",
        &format!("Replicas by state, last report in the last 5 minutes, {scope}."),
    );
    for (labels, _, sketch) in rows {
        for (field, state) in [
            (Field::ReplicasActive, "active"),
            (Field::ReplicasStarting, "starting"),
        ] {
            if let Some(g) = readout::plain(sketch, field).and_then(readout::gauge) {
                let mut l = labels.clone();
                l.push(("state", state));
                text.sample(&name, &l, g.last);
            }
        }
    }
}

fn cold_start(text: &mut Text, prefix: &str, scope: &str, rows: &Rows) {
    let name = format!("{prefix}_coldstart_phase_seconds");
    text.family(
        &name,
        "summary",
        &format!(
            "Cold-start phase durations by phase, quantiles over the last 5 minutes, {scope}."
        ),
    );
    for (labels, _, sketch) in rows {
        for (phase, keys) in readout::by_dim(sketch, Field::PhaseSeconds, DIM_PHASE) {
            let Some((_, f)) = keys.first() else {
                continue;
            };
            for (_, q) in REPORTED_QUANTILES {
                if let Some(v) = readout::quantile(f, q) {
                    let quantile = q.to_string();
                    let mut l = labels.clone();
                    l.push(("phase", phase.as_str()));
                    l.push(("quantile", quantile.as_str()));
                    text.sample(&name, &l, v);
                }
            }
        }
    }
}

fn cost(state: &ApiState, text: &mut Text, prefix: &str, scope: &str, rows: &Rows) {
    let costs: Vec<CostBreakdown> = rows
        .iter()
        .map(|(_, cluster, sketch)| CostBreakdown::of_cluster(cluster, sketch, &*state.prices))
        .collect();
    // Seconds, Prometheus's base unit (promtool's lint refuses `_hours`).
    let name = format!("{prefix}_gpu_seconds");
    text.family(
        &name,
        "gauge",
        &format!("GPU-seconds used in the last 5 minutes by SKU, {scope}."),
    );
    for (labels, _, sketch) in rows {
        for (sku, seconds) in totals_by_sku(sketch, Field::GpuSeconds) {
            let mut l = labels.clone();
            l.push(("sku", sku.as_str()));
            text.sample(&name, &l, seconds);
        }
    }
    let name = format!("{prefix}_cost_dollars");
    text.family(
        &name,
        "gauge",
        &format!("Dollars for the priced GPU-hours of the last 5 minutes (configured price, else reported), {scope}."),
    );
    for ((labels, _, _), breakdown) in rows.iter().zip(&costs) {
        if breakdown.is_priced() {
            text.sample(&name, labels, breakdown.dollars());
        }
    }
}

fn failures(text: &mut Text, prefix: &str, scope: &str, rows: &Rows) {
    let name = format!("{prefix}_failures");
    text.family(
        &name,
        "gauge",
        &format!("Failure events in the last 5 minutes by SKU and root cause, {scope}."),
    );
    for (labels, _, sketch) in rows {
        let mut pairs: BTreeMap<(&str, &str), f64> = BTreeMap::new();
        for (key, value) in sketch.fields_named(Field::Failures) {
            let sku = key.dims.get(DIM_SKU).map_or("", String::as_str);
            let cause = key.dims.get(DIM_CAUSE).map_or("", String::as_str);
            *pairs.entry((sku, cause)).or_default() += readout::total(value).unwrap_or(0.0);
        }
        for ((sku, cause), n) in pairs {
            let mut l = labels.clone();
            l.push(("sku", sku));
            l.push(("cause", cause));
            text.sample(&name, &l, n);
        }
    }
}

#[derive(Default)]
struct Text {
    out: String,
}

impl Text {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(
            self.out,
            "# HELP {name} {}",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{key}=\"{}\"", escape_label(value));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "+Inf".into()
    } else if value == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{value}")
    }
}

/// Accepted points that map to no signal, per tenant and metric name
/// (bounded in [`crate::telemetry::SelfMetrics::unmapped`]).
fn unmapped_points(state: &ApiState, text: &mut Text) {
    let name = "modelplane_aggregator_unmapped_points_total";
    text.family(
        name,
        "counter",
        "Data points accepted but mapped to no signal (unknown or misspelt metric name, or another instrument than its source emits), by tenant and metric name (at most 20 names per tenant, the rest as other).",
    );
    for (tenant, names) in state.metrics.unmapped_snapshot() {
        for (metric, n) in names {
            text.sample(name, &[("tenant", &tenant), ("metric", &metric)], n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{escape_label, format_value};

    #[test]
    fn escapes_label_values_and_special_floats() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(0.25), "0.25");
    }
}
