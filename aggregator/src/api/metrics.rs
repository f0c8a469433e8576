//! `/metrics` in the Prometheus text exposition format (0.0.4): the
//! aggregator's own health and the signals of the last five minutes (latency
//! quantiles as summaries, everything else as gauges).
//! Labels come only from series identity (tenant, cluster, model) and fixed
//! names, never from request attributes.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::api::tenant::merge_groups;
use crate::api::{ApiError, ApiState, METRICS_WINDOW_SECS};
use crate::query::readout;
use crate::query::readout::{REPORTED_QUANTILES, total_of};
use crate::signal::{Field, FieldKey, SignalKind};
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
    for (prefix, scope, rows) in [
        (
            "modelplane_signal",
            "per tenant, cluster and model",
            &per_series,
        ),
        (
            "modelplane_fleet",
            "per cluster across fleet-visible series",
            &per_cluster,
        ),
    ] {
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
    Ok(())
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
