//! The mapping table: every source metric the aggregator reads, the OTLP
//! instrument it arrives as, the attributes it reads, and the signal fields
//! (with their dimensions) and answer fields it becomes. Built from the
//! routing tables in [`super::sources`], which are what normalize runs, so
//! this is the one description of the mapping: `docs/signals.md`'s
//! source → signal tables are [`signals_doc_tables`] (regenerate with
//! `cargo run -p signal-aggregator --example generate-docs`; a test fails
//! when the checked-in page is stale), and the end-to-end mapping test sends
//! one point of every row.

use std::fmt::Write as _;

use super::sources::{self, Route, Source};
use crate::signal::SignalKind;
use crate::signal::{DIM_CAUSE, DIM_CONTEXT, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field};

/// The OTLP instrument a source emits a metric as; points of another type
/// map to nothing and are counted as unmapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Instrument {
    /// A monotonic sum (cumulative → delta, or delta as is).
    Counter,
    /// A gauge, or a non-monotonic sum.
    Gauge,
    /// An explicit-bucket histogram (cumulative → delta, or delta as is).
    Histogram,
    /// Either: a histogram, or a gauge read as documented for the row.
    HistogramOrGauge,
}

impl Instrument {
    pub fn as_str(self) -> &'static str {
        match self {
            Instrument::Counter => "counter",
            Instrument::Gauge => "gauge",
            Instrument::Histogram => "histogram",
            Instrument::HistogramOrGauge => "histogram or gauge",
        }
    }

    pub fn accepts_counter(self) -> bool {
        self == Instrument::Counter
    }

    pub fn accepts_gauge(self) -> bool {
        matches!(self, Instrument::Gauge | Instrument::HistogramOrGauge)
    }

    pub fn accepts_histogram(self) -> bool {
        matches!(self, Instrument::Histogram | Instrument::HistogramOrGauge)
    }
}

/// A dimension of a target field: its key and, when the row fixes it, its value.
pub type Dim = (&'static str, Option<&'static str>);

/// One signal field a row feeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub kind: SignalKind,
    pub field: Field,
    pub dims: Vec<Dim>,
    /// How the value is derived, when not the plain value.
    pub how: &'static str,
}

/// One row: a source metric and what it becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct MappingRow {
    /// The source, as the docs name it.
    pub source: &'static str,
    /// The metric as documented (the source's first prefix).
    pub metric: String,
    /// The name within the source (without prefix and `_total`).
    pub name: &'static str,
    pub instrument: Instrument,
    /// Data point attributes read (beyond the model identity).
    pub attributes: Vec<&'static str>,
    pub targets: Vec<Target>,
    /// Skipped when this metric name is in the same resource.
    pub superseded_by: Option<&'static str>,
}

/// Sources in the order the docs list them.
pub(crate) const SOURCES: &[(Source, &str)] = &[
    (Source::Vllm, "vLLM"),
    (Source::Sglang, "SGLang"),
    (Source::LlamaCpp, "llama.cpp"),
    (Source::Epp { current: true }, "llm-d EPP"),
    (Source::Dcgm, "DCGM exporter"),
    (Source::GenAi, "GenAI semantic conventions"),
    (Source::MeshLlm, "mesh-llm"),
    (Source::Modelplane, "modelplane.*"),
    (Source::LlmKube, "llmkube"),
];

/// Every row of the mapping, source by source, in table order.
pub fn rows() -> Vec<MappingRow> {
    let mut rows = Vec::new();
    for (source, label) in SOURCES {
        let prefix = sources::prefixes(*source)
            .next()
            .expect("every source has a prefix");
        for (name, route) in sources::table(*source) {
            let (route, superseded_by) = match route {
                Route::Superseded { route, .. } => (**route, superseded_by(*source, name)),
                other => (*other, None),
            };
            // Prometheus counters, and mesh-llm's, end in `_total`; DCGM's
            // XID count and dotted OTLP names do not.
            let suffix = match instrument(&route) {
                Instrument::Counter
                    if !prefix.ends_with('.') && !matches!(source, Source::Dcgm) =>
                {
                    "_total"
                }
                _ => "",
            };
            rows.push(MappingRow {
                source: label,
                metric: format!("{prefix}{name}{suffix}"),
                name,
                instrument: instrument(&route),
                attributes: attributes(*source, &route),
                targets: targets(&route),
                superseded_by,
            });
        }
    }
    rows
}

/// The mapping row of a metric as it arrives (any accepted spelling).
pub(crate) fn instrument_of(route: &Route) -> Instrument {
    match route {
        Route::Superseded { route, .. } => instrument(route),
        other => instrument(other),
    }
}

fn superseded_by(source: Source, name: &str) -> Option<&'static str> {
    Some(match (source, name) {
        (Source::Vllm, "time_per_output_token_seconds") => "vllm:inter_token_latency_seconds",
        (Source::Vllm, "gpu_cache_usage_perc") => "vllm:kv_cache_usage_perc",
        (Source::Vllm, "gpu_prefix_cache_queries") => "vllm:prefix_cache_queries_total",
        (Source::Vllm, "gpu_prefix_cache_hits") => "vllm:prefix_cache_hits_total",
        (Source::Sglang, "time_per_output_token_seconds") => "sglang:inter_token_latency_seconds",
        _ => return None,
    })
}

fn field_instrument(field: Field) -> Instrument {
    use Field::*;
    match field {
        TtftSeconds | TpotSeconds | E2eSeconds | QueueSeconds | LaunchSeconds | UptimeSeconds
        | PhaseSeconds => Instrument::Histogram,
        Requests | Errors | InputTokens | OutputTokens | Preemptions | PrefixCacheQueries
        | PrefixCacheHits | LaunchAttempts | LaunchSuccesses | LaunchFailures | UnexpectedExits
        | Unloads | GpuSeconds | Failures => Instrument::Counter,
        QueueDepth | RunningRequests | Gpus | GpusAllocated | GpuUtilization
        | GpuMemoryUsedBytes | GpuMemoryFreeBytes | KvCacheUtilization | ReplicasActive
        | ReplicasStarting | CacheBytesStaged | LoadedModels | PricePerGpuHour => Instrument::Gauge,
        // mesh-llm exports a gauge; a histogram is read too.
        ContextLength => Instrument::HistogramOrGauge,
        PrefixHashes => Instrument::Counter,
    }
}

fn instrument(route: &Route) -> Instrument {
    match route {
        Route::Field { field, .. } | Route::Gpu { field, .. } | Route::MeshLaunch(field) => {
            field_instrument(*field)
        }
        Route::TokenHistogram(_) | Route::RequestDuration | Route::GenAiTokenUsage => {
            Instrument::Histogram
        }
        Route::ColdStartPhase { .. } => Instrument::HistogramOrGauge,
        Route::RequestOutcome
        | Route::XidCounter
        | Route::MeshLaunchFailure
        | Route::MeshUnexpectedExit
        | Route::Failures => Instrument::Counter,
        Route::XidGauge | Route::KvTier | Route::Replicas => Instrument::Gauge,
        Route::Superseded { route, .. } => instrument(route),
    }
}

/// The attribute a source names the GPU with.
fn sku_attribute(source: Source) -> &'static str {
    match source {
        Source::Dcgm => "modelName",
        Source::MeshLlm => "mesh_llm.gpu_name",
        _ => "modelplane.gpu.sku",
    }
}

fn attributes(source: Source, route: &Route) -> Vec<&'static str> {
    let sku = sku_attribute(source);
    match route {
        Route::RequestOutcome => vec!["finished_reason"],
        Route::RequestDuration => vec!["error.type"],
        Route::GenAiTokenUsage => vec!["gen_ai.token.type"],
        Route::ColdStartPhase { phase: None, .. } => vec!["modelplane.coldstart.phase"],
        Route::Gpu { .. } | Route::XidGauge => vec![sku],
        Route::XidCounter => vec!["xid", sku],
        Route::MeshLaunch(Field::LaunchAttempts | Field::LaunchSuccesses | Field::Unloads)
        | Route::MeshLaunch(Field::ContextLength | Field::LoadedModels) => {
            vec![sku, "mesh_llm.context_bucket"]
        }
        Route::MeshLaunchFailure => vec![sku, "mesh_llm.context_bucket", "mesh_llm.failure_reason"],
        Route::MeshUnexpectedExit => vec![sku],
        Route::KvTier => vec!["modelplane.kv.tier"],
        Route::Replicas => vec!["modelplane.replica.state"],
        Route::Failures => vec!["modelplane.failure.cause", sku],
        _ => vec![],
    }
}

fn target(kind: SignalKind, field: Field, dims: Vec<Dim>, how: &'static str) -> Target {
    Target {
        kind,
        field,
        dims,
        how,
    }
}

fn scale_note(scale: f64) -> &'static str {
    if scale == 0.001 {
        "÷ 1000 (ms → s; histogram bounds too)"
    } else if scale == 0.01 {
        "÷ 100 (percent → fraction)"
    } else if scale == 1_048_576.0 {
        "× 2²⁰ (MiB → bytes)"
    } else {
        ""
    }
}

fn targets(route: &Route) -> Vec<Target> {
    use SignalKind::*;
    const SKU: Dim = (DIM_SKU, None);
    const CONTEXT: Dim = (DIM_CONTEXT, None);
    match *route {
        Route::Field {
            kind,
            field,
            scale,
            tier,
        } => {
            let dims = tier.map(|t| vec![(DIM_TIER, Some(t))]).unwrap_or_default();
            vec![target(kind, field, dims, scale_note(scale))]
        }
        Route::TokenHistogram(field) => {
            vec![target(
                RequestLifecycle,
                field,
                vec![],
                "sum of the histogram",
            )]
        }
        Route::RequestOutcome => vec![
            target(
                RequestLifecycle,
                Field::Requests,
                vec![],
                "every finished_reason",
            ),
            target(
                RequestLifecycle,
                Field::Errors,
                vec![],
                "finished_reason = error",
            ),
        ],
        Route::RequestDuration => vec![
            target(RequestLifecycle, Field::Requests, vec![], "histogram count"),
            target(
                RequestLifecycle,
                Field::Errors,
                vec![],
                "histogram count, with error.type",
            ),
            target(RequestLifecycle, Field::E2eSeconds, vec![], ""),
        ],
        Route::GenAiTokenUsage => vec![
            target(
                RequestLifecycle,
                Field::InputTokens,
                vec![],
                "sum, gen_ai.token.type = input",
            ),
            target(
                RequestLifecycle,
                Field::OutputTokens,
                vec![],
                "sum, gen_ai.token.type = output",
            ),
        ],
        Route::ColdStartPhase { phase, .. } => vec![target(
            ColdStart,
            Field::PhaseSeconds,
            vec![(DIM_PHASE, phase)],
            "a gauge reading is one sample",
        )],
        Route::Gpu { kind, field, scale } => {
            vec![target(kind, field, vec![SKU], scale_note(scale))]
        }
        Route::XidGauge => vec![target(
            Reliability,
            Field::Failures,
            vec![SKU, (DIM_CAUSE, Some("xid_<code>"))],
            "each change to a non-zero code is one failure; the first reading only primes",
        )],
        Route::XidCounter => vec![target(
            Reliability,
            Field::Failures,
            vec![SKU, (DIM_CAUSE, Some("xid_<xid>"))],
            "",
        )],
        Route::MeshLaunch(field) => vec![target(ColdStart, field, vec![SKU, CONTEXT], "")],
        Route::MeshLaunchFailure => vec![
            target(
                ColdStart,
                Field::LaunchFailures,
                vec![SKU, CONTEXT, (DIM_REASON, None)],
                "reason: mesh-llm's enum, anything else `other`",
            ),
            target(
                Reliability,
                Field::Failures,
                vec![SKU, (DIM_CAUSE, Some("<reason>"))],
                "",
            ),
        ],
        Route::MeshUnexpectedExit => vec![
            target(ColdStart, Field::UnexpectedExits, vec![SKU], ""),
            target(
                Reliability,
                Field::Failures,
                vec![SKU, (DIM_CAUSE, Some("unexpected_exit"))],
                "",
            ),
        ],
        Route::KvTier => vec![target(
            Capacity,
            Field::KvCacheUtilization,
            vec![(DIM_TIER, None)],
            "",
        )],
        Route::Replicas => vec![
            target(Capacity, Field::ReplicasActive, vec![], "state = active"),
            target(
                Capacity,
                Field::ReplicasStarting,
                vec![],
                "state = starting",
            ),
        ],
        Route::Failures => vec![target(
            Reliability,
            Field::Failures,
            vec![SKU, (DIM_CAUSE, None)],
            "",
        )],
        Route::Superseded { route, .. } => targets(route),
    }
}

/// Where a signal field shows in the tenant's answer
/// (`GET /v1/tenants/{tenant}/signals/{kind}`), as a path into one group.
pub fn answer_field(kind: SignalKind, field: Field) -> &'static str {
    use Field::*;
    match (kind, field) {
        (SignalKind::RequestLifecycle, Requests) => "requests",
        (SignalKind::RequestLifecycle, Errors) => "errors",
        (SignalKind::RequestLifecycle, InputTokens) => "input_tokens",
        (SignalKind::RequestLifecycle, OutputTokens) => "output_tokens",
        (SignalKind::RequestLifecycle, TtftSeconds) => "ttft_seconds",
        (SignalKind::RequestLifecycle, TpotSeconds) => "tpot_seconds",
        (SignalKind::RequestLifecycle, E2eSeconds) => "e2e_seconds",
        (SignalKind::RequestLifecycle, QueueSeconds) => "queue_seconds",
        (SignalKind::RequestLifecycle, PrefixCacheQueries) => "prefix_cache_queries",
        (SignalKind::RequestLifecycle, PrefixCacheHits) => "prefix_cache_hits",
        (SignalKind::RequestLifecycle, QueueDepth) => "queue_depth",
        (SignalKind::RequestLifecycle, RunningRequests) => "running_requests",
        (SignalKind::RequestLifecycle, Preemptions) => "preemptions",
        (SignalKind::Capacity, Gpus) => "gpus_by_sku.<sku>.gpus",
        (SignalKind::Capacity, GpusAllocated) => "gpus_by_sku.<sku>.allocated",
        (SignalKind::Capacity, GpuUtilization) => "gpus_by_sku.<sku>.utilization",
        (SignalKind::Capacity, GpuMemoryUsedBytes) => "gpus_by_sku.<sku>.memory_used_bytes",
        (SignalKind::Capacity, GpuMemoryFreeBytes) => "gpus_by_sku.<sku>.memory_free_bytes",
        (SignalKind::Capacity, KvCacheUtilization) => "kv_cache_utilization_by_tier.<tier>",
        (SignalKind::Capacity, ReplicasActive) => "replicas.active",
        (SignalKind::Capacity, ReplicasStarting) => "replicas.starting",
        (SignalKind::Capacity, CacheBytesStaged) => "cache_bytes_staged",
        (SignalKind::ColdStart, PhaseSeconds) => "phases.<phase>",
        (SignalKind::ColdStart, LaunchAttempts) => "launches.attempts",
        (SignalKind::ColdStart, LaunchSuccesses) => "launches.successes",
        (SignalKind::ColdStart, LaunchFailures) => "launches.failures_by_reason.<reason>",
        (SignalKind::ColdStart, UnexpectedExits) => "unexpected_exits",
        (SignalKind::ColdStart, Unloads) => "unloads",
        (SignalKind::ColdStart, LaunchSeconds) => "launch_seconds",
        (SignalKind::ColdStart, UptimeSeconds) => "uptime_seconds",
        // A gauge (mesh-llm's); a histogram reads as `context_length_distribution`.
        (SignalKind::ColdStart, ContextLength) => "context_length",
        (SignalKind::ColdStart, LoadedModels) => "loaded_models",
        (SignalKind::Cost, GpuSeconds) => "by_sku.<sku>.gpu_hours",
        (SignalKind::Cost, PricePerGpuHour) => "by_sku.<sku>.price_per_gpu_hour",
        (SignalKind::Reliability, Failures) => "failures_by_sku_and_cause",
        _ => "",
    }
}

fn dims_text(dims: &[Dim]) -> String {
    if dims.is_empty() {
        return "–".into();
    }
    dims.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}=`{v}`"),
            None => k.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where the generated tables go in `docs/signals.md`.
pub const BEGIN_MARK: &str =
    "<!-- BEGIN GENERATED: source → signal tables (normalize::mapping) -->";
pub const END_MARK: &str = "<!-- END GENERATED -->";

/// The source → signal tables of `docs/signals.md`, one per source.
pub fn signals_doc_tables() -> String {
    let rows = rows();
    let mut out = String::new();
    for (source, label) in SOURCES {
        let spellings: Vec<String> = sources::prefixes(*source)
            .chain(match source {
                Source::Epp { .. } => sources::prefixes(Source::Epp { current: false }).collect(),
                _ => Vec::new(),
            })
            .map(|p| format!("`{p}`"))
            .collect();
        let _ = writeln!(out, "#### {label} ({})\n", spellings.join(", "));
        out.push_str("| metric | instrument | attributes read | → kind.field | dims | answer field | how |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for row in rows.iter().filter(|r| r.source == *label) {
            let attributes = if row.attributes.is_empty() {
                "–".to_string()
            } else {
                row.attributes
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            for (i, t) in row.targets.iter().enumerate() {
                let (metric, instrument, attrs) = if i == 0 {
                    let mut metric = format!("`{}`", row.metric);
                    if let Some(by) = row.superseded_by {
                        let _ = write!(metric, " (skipped next to `{by}`)");
                    }
                    (
                        metric,
                        row.instrument.as_str().to_string(),
                        attributes.clone(),
                    )
                } else {
                    ("〃".into(), "〃".into(), "〃".into())
                };
                let _ = writeln!(
                    out,
                    "| {metric} | {instrument} | {attrs} | {}.`{}` | {} | `{}` | {} |",
                    t.kind.as_str(),
                    t.field.as_str(),
                    dims_text(&t.dims),
                    answer_field(t.kind, t.field),
                    if t.how.is_empty() { "–" } else { t.how },
                );
            }
        }
        out.push('\n');
    }
    out
}

/// `page` with the text between [`BEGIN_MARK`] and [`END_MARK`] replaced by
/// [`signals_doc_tables`]; `None` when the markers are missing.
pub fn render_signals_doc(page: &str) -> Option<String> {
    let begin = page.find(BEGIN_MARK)? + BEGIN_MARK.len();
    let end = page[begin..].find(END_MARK)? + begin;
    Some(format!(
        "{}\n\n{}{}",
        &page[..begin],
        signals_doc_tables(),
        &page[end..]
    ))
}
