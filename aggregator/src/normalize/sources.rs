//! Metric name → typed signal routing, for every source the aggregator knows.
//! `docs/signals.md` is the human-readable form of this table; keep them in
//! step.
//!
//! Names are matched as the OpenTelemetry Collector's Prometheus receiver
//! forwards them: with or without the `_total` suffix, and with the engine
//! prefix spelt `vllm:` or `vllm_` (Prometheus 3 underscore escaping).

use crate::signal::{Field, SignalKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    Vllm,
    Sglang,
    LlamaCpp,
    /// llm-d endpoint picker; `current` is the `llm_d_epp_` generation, which
    /// still dual-emits the older `inference_*` names.
    Epp {
        current: bool,
    },
    Dcgm,
    GenAi,
    MeshLlm,
    Modelplane,
    LlmKube,
}

/// Names that, when present in the same resource, replace a deprecated one
/// that the same process may still emit (counting both would double count).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Present(u8);

impl Present {
    pub const VLLM_ITL: Present = Present(1);
    pub const VLLM_KV_USAGE: Present = Present(2);
    pub const VLLM_PREFIX: Present = Present(4);
    pub const SGLANG_ITL: Present = Present(8);
    pub const EPP_CURRENT: Present = Present(16);

    pub(crate) fn note(&mut self, name: &str) {
        let flag = match classify(name) {
            Some((Source::Vllm, "inter_token_latency_seconds")) => Present::VLLM_ITL,
            Some((Source::Vllm, "kv_cache_usage_perc")) => Present::VLLM_KV_USAGE,
            Some((Source::Vllm, "prefix_cache_queries" | "prefix_cache_hits")) => {
                Present::VLLM_PREFIX
            }
            Some((Source::Sglang, "inter_token_latency_seconds")) => Present::SGLANG_ITL,
            Some((Source::Epp { current: true }, _)) => Present::EPP_CURRENT,
            _ => return,
        };
        self.0 |= flag.0;
    }

    pub(crate) fn has(self, flag: Present) -> bool {
        self.0 & flag.0 != 0
    }
}

/// What a metric's data points become.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Route {
    /// One field; the OTLP type decides the value (monotonic sum → counter
    /// delta, gauge → gauge, histogram → histogram delta). `scale` converts
    /// units (ms → s, percent → fraction, MiB → bytes).
    Field {
        kind: SignalKind,
        field: Field,
        scale: f64,
        tier: Option<&'static str>,
    },
    /// A histogram of per-request token counts: its sum is a token counter.
    TokenHistogram(Field),
    /// vLLM `request_success{finished_reason}`: requests, and errors when the
    /// reason is `error`.
    RequestOutcome,
    /// A request-duration histogram that also counts requests and, when it
    /// carries `error.type`, errors (GenAI semconv duration metrics).
    RequestDuration,
    /// `gen_ai.client.token.usage{gen_ai.token.type}`.
    GenAiTokenUsage,
    /// Cold-start phase duration; the phase comes from `modelplane.coldstart.phase`
    /// unless fixed here.
    ColdStartPhase {
        phase: Option<&'static str>,
        scale: f64,
    },
    /// A per-GPU reading keyed by SKU.
    Gpu {
        kind: SignalKind,
        field: Field,
        scale: f64,
    },
    /// DCGM's last-XID gauge: a change to a non-zero code is a failure.
    XidGauge,
    /// A counter of XID errors labelled by code.
    XidCounter,
    /// mesh-llm launch counters and gauges (dims: sku, context, reason).
    MeshLaunch(Field),
    MeshLaunchFailure,
    MeshUnexpectedExit,
    /// `modelplane.kv_cache.utilization{modelplane.kv.tier}`.
    KvTier,
    /// `modelplane.replicas{modelplane.replica.state}`.
    Replicas,
    /// `modelplane.failures{modelplane.failure.cause}`.
    Failures,
    /// A metric some version of the source emits twice under two names; this
    /// one is skipped when its replacement is in the same resource.
    Superseded {
        by: Present,
        route: &'static Route,
    },
}

const fn field(kind: SignalKind, field: Field) -> Route {
    Route::Field {
        kind,
        field,
        scale: 1.0,
        tier: None,
    }
}

const RL: SignalKind = SignalKind::RequestLifecycle;
const CAP: SignalKind = SignalKind::Capacity;
const CS: SignalKind = SignalKind::ColdStart;
const COST: SignalKind = SignalKind::Cost;

const TTFT: Route = field(RL, Field::TtftSeconds);
const TPOT: Route = field(RL, Field::TpotSeconds);
const E2E: Route = field(RL, Field::E2eSeconds);
const QUEUE: Route = field(RL, Field::QueueSeconds);
const INPUT: Route = field(RL, Field::InputTokens);
const OUTPUT: Route = field(RL, Field::OutputTokens);
const REQUESTS: Route = field(RL, Field::Requests);
const ERRORS: Route = field(RL, Field::Errors);
const RUNNING: Route = field(RL, Field::RunningRequests);
const WAITING: Route = field(RL, Field::QueueDepth);
const PREFIX_QUERIES: Route = field(RL, Field::PrefixCacheQueries);
const PREFIX_HITS: Route = field(RL, Field::PrefixCacheHits);
const KV_HBM: Route = Route::Field {
    kind: CAP,
    field: Field::KvCacheUtilization,
    scale: 1.0,
    tier: Some("hbm"),
};
const KV_CPU: Route = Route::Field {
    kind: CAP,
    field: Field::KvCacheUtilization,
    scale: 1.0,
    tier: Some("cpu"),
};
const READY_REPLICAS: Route = field(CAP, Field::ReplicasActive);

/// Name prefixes and the source each one names.
const PREFIXES: &[(&str, Source)] = &[
    ("vllm:", Source::Vllm),
    ("vllm_", Source::Vllm),
    ("sglang:", Source::Sglang),
    ("sglang_", Source::Sglang),
    ("llamacpp:", Source::LlamaCpp),
    ("llamacpp_", Source::LlamaCpp),
    ("llm_d_epp_", Source::Epp { current: true }),
    ("inference_objective_", Source::Epp { current: false }),
    ("inference_model_", Source::Epp { current: false }),
    ("inference_pool_", Source::Epp { current: false }),
    ("DCGM_", Source::Dcgm),
    ("gen_ai.", Source::GenAi),
    ("mesh_llm_", Source::MeshLlm),
    ("modelplane.", Source::Modelplane),
    ("modelplane_", Source::Modelplane),
    ("llmkube_", Source::LlmKube),
];

/// Splits a metric name into its source and the name within that source
/// (without the `_total` counter suffix).
pub(crate) fn classify(name: &str) -> Option<(Source, &str)> {
    let (source, rest) = PREFIXES
        .iter()
        .find_map(|(prefix, source)| name.strip_prefix(prefix).map(|rest| (*source, rest)))?;
    Some((source, rest.strip_suffix("_total").unwrap_or(rest)))
}

pub(crate) fn route(source: Source, name: &str) -> Option<Route> {
    match source {
        Source::Epp { current } => epp(name, current),
        other => lookup(table(other), name),
    }
}

/// A source's routes by name. Tables rather than `match`es so the tests can
/// list every name the aggregator maps and hold it to the agent's list
/// (`apis::wire::SCRAPED_METRICS`), which decides what the agent scrapes.
type Table = &'static [(&'static str, Route)];

fn lookup(table: Table, name: &str) -> Option<Route> {
    table.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

const VLLM: Table = &[
    ("time_to_first_token_seconds", TTFT),
    ("inter_token_latency_seconds", TPOT),
    (
        "time_per_output_token_seconds",
        Route::Superseded {
            by: Present::VLLM_ITL,
            route: &TPOT,
        },
    ),
    ("e2e_request_latency_seconds", E2E),
    ("request_queue_time_seconds", QUEUE),
    ("prompt_tokens", INPUT),
    ("generation_tokens", OUTPUT),
    ("request_success", Route::RequestOutcome),
    ("num_requests_running", RUNNING),
    ("num_requests_waiting", WAITING),
    ("num_preemptions", field(RL, Field::Preemptions)),
    ("kv_cache_usage_perc", KV_HBM),
    (
        "gpu_cache_usage_perc",
        Route::Superseded {
            by: Present::VLLM_KV_USAGE,
            route: &KV_HBM,
        },
    ),
    ("cpu_cache_usage_perc", KV_CPU),
    ("prefix_cache_queries", PREFIX_QUERIES),
    ("prefix_cache_hits", PREFIX_HITS),
    (
        "gpu_prefix_cache_queries",
        Route::Superseded {
            by: Present::VLLM_PREFIX,
            route: &PREFIX_QUERIES,
        },
    ),
    (
        "gpu_prefix_cache_hits",
        Route::Superseded {
            by: Present::VLLM_PREFIX,
            route: &PREFIX_HITS,
        },
    ),
    (
        "model_load_duration_seconds",
        Route::ColdStartPhase {
            phase: Some("model_load"),
            scale: 1.0,
        },
    ),
];

const SGLANG: Table = &[
    ("time_to_first_token_seconds", TTFT),
    ("inter_token_latency_seconds", TPOT),
    (
        "time_per_output_token_seconds",
        Route::Superseded {
            by: Present::SGLANG_ITL,
            route: &TPOT,
        },
    ),
    ("e2e_request_latency_seconds", E2E),
    ("queue_time_seconds", QUEUE),
    ("prompt_tokens", INPUT),
    ("generation_tokens", OUTPUT),
    ("cached_tokens", PREFIX_HITS),
    ("num_requests", REQUESTS),
    ("num_running_reqs", RUNNING),
    ("num_queue_reqs", WAITING),
    ("token_usage", KV_HBM),
];

const LLAMACPP: Table = &[
    ("prompt_tokens", INPUT),
    ("tokens_predicted", OUTPUT),
    ("requests_processing", RUNNING),
    ("requests_deferred", WAITING),
    ("kv_cache_usage_ratio", KV_HBM),
];

/// The current (`llm_d_epp_`) routes; the older names route the same way
/// unless the current ones are in the same resource.
const EPP: Table = &[
    ("request", REQUESTS),
    ("request_error", ERRORS),
    ("request_duration_seconds", E2E),
    ("input_tokens", Route::TokenHistogram(Field::InputTokens)),
    (
        "request_input_tokens",
        Route::TokenHistogram(Field::InputTokens),
    ),
    ("output_tokens", Route::TokenHistogram(Field::OutputTokens)),
    (
        "request_output_tokens",
        Route::TokenHistogram(Field::OutputTokens),
    ),
    ("running_requests", RUNNING),
    ("request_running", RUNNING),
    ("request_ttft_seconds", TTFT),
    ("request_tpot_seconds", TPOT),
    ("request_streaming_tpot_seconds", TPOT),
    ("average_kv_cache_utilization", KV_HBM),
    ("per_pod_queue_size", WAITING),
    ("per_endpoint_queue_size", WAITING),
    ("ready_pods", READY_REPLICAS),
    ("ready_endpoints", READY_REPLICAS),
];

const DCGM: Table = &[
    (
        "FI_DEV_GPU_UTIL",
        Route::Gpu {
            kind: CAP,
            field: Field::GpuUtilization,
            scale: 0.01,
        },
    ),
    (
        "FI_DEV_FB_USED",
        Route::Gpu {
            kind: CAP,
            field: Field::GpuMemoryUsedBytes,
            scale: 1_048_576.0,
        },
    ),
    (
        "FI_DEV_FB_FREE",
        Route::Gpu {
            kind: CAP,
            field: Field::GpuMemoryFreeBytes,
            scale: 1_048_576.0,
        },
    ),
    ("FI_DEV_XID_ERRORS", Route::XidGauge),
    ("EXP_XID_ERRORS_COUNT", Route::XidCounter),
];

fn epp(name: &str, current: bool) -> Option<Route> {
    let route = lookup(EPP, name)?;
    Some(if current {
        route
    } else {
        superseded_by_current_epp(route)
    })
}

fn superseded_by_current_epp(route: Route) -> Route {
    // Map each legacy route to a static so `Superseded` can hold it.
    static LEGACY: &[Route] = &[
        REQUESTS,
        ERRORS,
        E2E,
        Route::TokenHistogram(Field::InputTokens),
        Route::TokenHistogram(Field::OutputTokens),
        RUNNING,
        TTFT,
        TPOT,
        KV_HBM,
        WAITING,
        READY_REPLICAS,
    ];
    let inner = LEGACY
        .iter()
        .find(|r| **r == route)
        .expect("every EPP route is listed in LEGACY");
    Route::Superseded {
        by: Present::EPP_CURRENT,
        route: inner,
    }
}

const GENAI: Table = &[
    ("client.operation.duration", Route::RequestDuration),
    ("server.request.duration", Route::RequestDuration),
    ("server.time_to_first_token", TTFT),
    ("client.operation.time_to_first_chunk", TTFT),
    ("server.time_per_output_token", TPOT),
    ("client.operation.time_per_output_chunk", TPOT),
    ("client.token.usage", Route::GenAiTokenUsage),
];

const MESH_LLM: Table = &[
    ("model_launch", Route::MeshLaunch(Field::LaunchAttempts)),
    (
        "model_launch_success",
        Route::MeshLaunch(Field::LaunchSuccesses),
    ),
    ("model_launch_failure", Route::MeshLaunchFailure),
    ("model_unload", Route::MeshLaunch(Field::Unloads)),
    ("model_exit_unexpected", Route::MeshUnexpectedExit),
    ("loaded_models", Route::MeshLaunch(Field::LoadedModels)),
    ("model_loaded", Route::MeshLaunch(Field::LoadedModels)),
    (
        "model_context_length",
        Route::MeshLaunch(Field::ContextLength),
    ),
    (
        "model_launch_duration_ms",
        Route::Field {
            kind: CS,
            field: Field::LaunchSeconds,
            scale: 0.001,
            tier: None,
        },
    ),
    ("model_uptime_s", field(CS, Field::UptimeSeconds)),
];

const COLDSTART_PHASE: Route = Route::ColdStartPhase {
    phase: None,
    scale: 1.0,
};
const PRICE: Route = Route::Gpu {
    kind: COST,
    field: Field::PricePerGpuHour,
    scale: 1.0,
};
const GPU_SECONDS: Route = Route::Gpu {
    kind: COST,
    field: Field::GpuSeconds,
    scale: 1.0,
};
const GPUS: Route = Route::Gpu {
    kind: CAP,
    field: Field::Gpus,
    scale: 1.0,
};
const GPUS_ALLOCATED: Route = Route::Gpu {
    kind: CAP,
    field: Field::GpusAllocated,
    scale: 1.0,
};
const STAGED: Route = field(CAP, Field::CacheBytesStaged);

/// Both the OTLP (dotted) and the Prometheus-scraped (underscored) spelling;
/// the dotted one first (the documented name).
const MODELPLANE: Table = &[
    ("coldstart.phase.duration", COLDSTART_PHASE),
    ("coldstart_phase_duration_seconds", COLDSTART_PHASE),
    ("coldstart_phase_duration", COLDSTART_PHASE),
    ("gpu.price_per_hour", PRICE),
    ("gpu_price_per_hour", PRICE),
    ("gpu.seconds", GPU_SECONDS),
    ("gpu_seconds", GPU_SECONDS),
    ("gpu.count", GPUS),
    ("gpu_count", GPUS),
    ("gpu.allocated", GPUS_ALLOCATED),
    ("gpu_allocated", GPUS_ALLOCATED),
    ("kv_cache.utilization", Route::KvTier),
    ("kv_cache_utilization", Route::KvTier),
    ("replicas", Route::Replicas),
    ("modelcache.bytes_staged", STAGED),
    ("modelcache_bytes_staged", STAGED),
    ("failures", Route::Failures),
];

const LLMKUBE: Table = &[
    // Weights download into the model cache before the engine starts.
    (
        "model_download_duration_seconds",
        Route::ColdStartPhase {
            phase: Some("cache_hydration"),
            scale: 1.0,
        },
    ),
];

/// Every source's table, in the order `docs/signals.md` lists them.
pub(crate) fn table(source: Source) -> Table {
    match source {
        Source::Vllm => VLLM,
        Source::Sglang => SGLANG,
        Source::LlamaCpp => LLAMACPP,
        Source::Epp { .. } => EPP,
        Source::Dcgm => DCGM,
        Source::GenAi => GENAI,
        Source::MeshLlm => MESH_LLM,
        Source::Modelplane => MODELPLANE,
        Source::LlmKube => LLMKUBE,
    }
}

/// The prefixes a source's names are spelt with (the first is the documented one).
pub(crate) fn prefixes(source: Source) -> impl Iterator<Item = &'static str> {
    PREFIXES
        .iter()
        .filter(move |(_, s)| *s == source)
        .map(|(p, _)| *p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_and_total_suffix() {
        assert_eq!(
            classify("vllm:prompt_tokens_total"),
            Some((Source::Vllm, "prompt_tokens"))
        );
        assert_eq!(
            classify("vllm_prompt_tokens_total"),
            Some((Source::Vllm, "prompt_tokens"))
        );
        assert_eq!(
            classify("vllm:prompt_tokens"),
            Some((Source::Vllm, "prompt_tokens"))
        );
        assert_eq!(
            classify("inference_model_request_total"),
            Some((Source::Epp { current: false }, "request"))
        );
        assert_eq!(
            classify("llm_d_epp_request_total"),
            Some((Source::Epp { current: true }, "request"))
        );
        assert_eq!(classify("http_requests_total"), None);
    }

    #[test]
    fn legacy_epp_names_yield_to_current_ones() {
        let legacy = route(Source::Epp { current: false }, "request").unwrap();
        assert_eq!(
            legacy,
            Route::Superseded {
                by: Present::EPP_CURRENT,
                route: &REQUESTS
            }
        );
        assert_eq!(
            route(Source::Epp { current: true }, "request"),
            Some(REQUESTS)
        );
    }

    #[test]
    fn every_legacy_epp_name_has_a_superseded_route() {
        let names = [
            "request",
            "request_error",
            "request_duration_seconds",
            "input_tokens",
            "output_tokens",
            "running_requests",
            "request_ttft_seconds",
            "request_tpot_seconds",
            "average_kv_cache_utilization",
            "per_pod_queue_size",
            "ready_pods",
        ];
        for name in names {
            assert!(
                matches!(
                    route(Source::Epp { current: false }, name),
                    Some(Route::Superseded { .. })
                ),
                "{name}"
            );
        }
    }

    use std::collections::BTreeSet;

    use apis::wire::{SCRAPED_METRICS, ScrapeJob};

    /// The agent's scrape job for a source; `None`: the agent scrapes none
    /// of it (OTLP sources, and llmkube's operator, which no job targets).
    fn job(source: Source) -> Option<ScrapeJob> {
        match source {
            Source::Vllm | Source::Sglang | Source::LlamaCpp => Some(ScrapeJob::Engines),
            Source::Epp { .. } => Some(ScrapeJob::Epp),
            Source::Dcgm => Some(ScrapeJob::Dcgm),
            Source::GenAi | Source::MeshLlm | Source::Modelplane | Source::LlmKube => None,
        }
    }

    /// The kinds whose answers read a route's points.
    fn kinds(route: &Route) -> BTreeSet<SignalKind> {
        use SignalKind::*;
        // Cost answers $/token with the same group's RequestLifecycle token
        // counts (serve::signals::Companion): an agent with Cost and without
        // RequestLifecycle must still send them.
        const TOKENS: [SignalKind; 2] = [RequestLifecycle, Cost];
        match route {
            Route::Field {
                kind,
                field: Field::InputTokens | Field::OutputTokens,
                ..
            } => [*kind, Cost].into(),
            Route::Field { kind, .. } | Route::Gpu { kind, .. } => [*kind].into(),
            Route::TokenHistogram(_) | Route::GenAiTokenUsage => TOKENS.into(),
            Route::RequestOutcome | Route::RequestDuration => [RequestLifecycle].into(),
            Route::ColdStartPhase { .. } | Route::MeshLaunch(_) => [ColdStart].into(),
            Route::MeshLaunchFailure | Route::MeshUnexpectedExit => [ColdStart, Reliability].into(),
            Route::XidGauge | Route::XidCounter | Route::Failures => [Reliability].into(),
            Route::KvTier | Route::Replicas => [Capacity].into(),
            Route::Superseded { route, .. } => kinds(route),
        }
    }

    /// The agent keeps a scraped metric only when apis::wire lists it, for
    /// the kinds listed there (function/tests/collector_config.rs checks the
    /// rendered filters keep every listed name). So every name the
    /// aggregator maps from a scraped source must be listed, under every
    /// prefix the aggregator accepts, with the kinds its route feeds.
    #[test]
    fn every_mapped_scraped_metric_is_on_the_agents_list() {
        let mut checked = 0;
        for (prefix, source) in PREFIXES {
            let Some(job) = job(*source) else { continue };
            let family = SCRAPED_METRICS
                .iter()
                .find(|f| f.prefixes.contains(prefix))
                .unwrap_or_else(|| panic!("apis::wire lists no family with prefix {prefix}"));
            assert_eq!(family.job, job, "{prefix}");
            for (name, _) in table(*source) {
                let routed = route(*source, name).unwrap();
                let listed = family
                    .metrics
                    .iter()
                    .find(|m| m.name == *name)
                    .unwrap_or_else(|| {
                        panic!("{prefix}{name} is mapped but apis::wire does not list it: the agent drops it")
                    });
                let listed: BTreeSet<SignalKind> = listed.kinds.iter().copied().collect();
                assert_eq!(listed, kinds(&routed), "{prefix}{name}");
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked}");
    }

    /// The other way round: the agent's list names nothing the aggregator
    /// would not map (or map to other kinds), in both counter spellings.
    #[test]
    fn the_agents_list_names_only_mapped_metrics() {
        for family in SCRAPED_METRICS {
            for prefix in family.prefixes {
                for metric in family.metrics {
                    for spelling in [
                        format!("{prefix}{}", metric.name),
                        format!("{prefix}{}_total", metric.name),
                    ] {
                        let (source, name) = classify(&spelling).unwrap();
                        assert_eq!((job(source), name), (Some(family.job), metric.name));
                        let routed = route(source, name)
                            .unwrap_or_else(|| panic!("{spelling} is listed but not mapped"));
                        let listed: BTreeSet<SignalKind> = metric.kinds.iter().copied().collect();
                        assert_eq!(listed, kinds(&routed), "{spelling}");
                    }
                }
            }
        }
    }
}
