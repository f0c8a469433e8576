//! What the agent puts on the wire and the aggregator reads from it: the one
//! list both sides derive from. function-signals renders the agent's scrape
//! filters and trace allowlist from it; the aggregator's tests check that its
//! routing table (`normalize/sources.rs`) and its attribute readers
//! (`normalize/spans.rs`, `normalize/identity.rs`) use exactly these names, so
//! a metric or attribute the aggregator starts to read cannot be dropped by
//! the agent unnoticed.

use crate::SignalKind;

/// The scrape job a metric family is read by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScrapeJob {
    /// vLLM, SGLang and llama.cpp pods.
    Engines,
    /// The llm-d endpoint picker.
    Epp,
    /// NVIDIA's DCGM exporter.
    Dcgm,
}

/// One source's scraped metrics.
#[derive(Debug, Clone, Copy)]
pub struct MetricFamily {
    pub job: ScrapeJob,
    /// Name prefixes as the source exposes them (vLLM's `vllm:` reaches the
    /// aggregator as `vllm_` on some scrape paths).
    pub prefixes: &'static [&'static str],
    /// Names after the prefix, without the `_total` counter suffix, each with
    /// the kinds whose answers read it.
    pub metrics: &'static [ScrapedMetric],
}

#[derive(Debug, Clone, Copy)]
pub struct ScrapedMetric {
    pub name: &'static str,
    pub kinds: &'static [SignalKind],
}

const fn m(name: &'static str, kinds: &'static [SignalKind]) -> ScrapedMetric {
    ScrapedMetric { name, kinds }
}

const RL: &[SignalKind] = &[SignalKind::RequestLifecycle];
/// Token counts are RequestLifecycle fields; Cost's $/token divides by them
/// at query time, so a Cost-only agent needs them too.
const TOKENS: &[SignalKind] = &[SignalKind::RequestLifecycle, SignalKind::Cost];
const CAP: &[SignalKind] = &[SignalKind::Capacity];
const CS: &[SignalKind] = &[SignalKind::ColdStart];
const REL: &[SignalKind] = &[SignalKind::Reliability];

const EPP_METRICS: &[ScrapedMetric] = &[
    m("request", RL),
    m("request_error", RL),
    m("request_duration_seconds", RL),
    m("input_tokens", TOKENS),
    m("request_input_tokens", TOKENS),
    m("output_tokens", TOKENS),
    m("request_output_tokens", TOKENS),
    m("running_requests", RL),
    m("request_running", RL),
    m("request_ttft_seconds", RL),
    m("request_tpot_seconds", RL),
    m("request_streaming_tpot_seconds", RL),
    m("per_pod_queue_size", RL),
    m("per_endpoint_queue_size", RL),
    m("average_kv_cache_utilization", CAP),
    m("ready_pods", CAP),
    m("ready_endpoints", CAP),
];

/// Every scraped metric the aggregator maps to a signal (docs/signals.md,
/// "Sources → signals").
pub const SCRAPED_METRICS: &[MetricFamily] = &[
    MetricFamily {
        job: ScrapeJob::Engines,
        prefixes: &["vllm:", "vllm_"],
        metrics: &[
            m("time_to_first_token_seconds", RL),
            m("inter_token_latency_seconds", RL),
            m("time_per_output_token_seconds", RL),
            m("e2e_request_latency_seconds", RL),
            m("request_queue_time_seconds", RL),
            m("prompt_tokens", TOKENS),
            m("generation_tokens", TOKENS),
            m("request_success", RL),
            m("num_requests_running", RL),
            m("num_requests_waiting", RL),
            m("num_preemptions", RL),
            m("prefix_cache_queries", RL),
            m("prefix_cache_hits", RL),
            m("gpu_prefix_cache_queries", RL),
            m("gpu_prefix_cache_hits", RL),
            m("kv_cache_usage_perc", CAP),
            m("gpu_cache_usage_perc", CAP),
            m("cpu_cache_usage_perc", CAP),
            m("model_load_duration_seconds", CS),
        ],
    },
    MetricFamily {
        job: ScrapeJob::Engines,
        prefixes: &["sglang:", "sglang_"],
        metrics: &[
            m("time_to_first_token_seconds", RL),
            m("inter_token_latency_seconds", RL),
            m("time_per_output_token_seconds", RL),
            m("e2e_request_latency_seconds", RL),
            m("queue_time_seconds", RL),
            m("prompt_tokens", TOKENS),
            m("generation_tokens", TOKENS),
            m("cached_tokens", RL),
            m("num_requests", RL),
            m("num_running_reqs", RL),
            m("num_queue_reqs", RL),
            m("token_usage", CAP),
        ],
    },
    MetricFamily {
        job: ScrapeJob::Engines,
        prefixes: &["llamacpp:", "llamacpp_"],
        metrics: &[
            m("prompt_tokens", TOKENS),
            m("tokens_predicted", TOKENS),
            m("requests_processing", RL),
            m("requests_deferred", RL),
            m("kv_cache_usage_ratio", CAP),
        ],
    },
    MetricFamily {
        job: ScrapeJob::Epp,
        prefixes: &["llm_d_epp_"],
        metrics: EPP_METRICS,
    },
    // The names before llm-d's `llm_d_epp_` rename, which current EPPs still
    // emit next to the new ones.
    MetricFamily {
        job: ScrapeJob::Epp,
        prefixes: &[
            "inference_objective_",
            "inference_model_",
            "inference_pool_",
        ],
        metrics: EPP_METRICS,
    },
    MetricFamily {
        job: ScrapeJob::Dcgm,
        prefixes: &["DCGM_"],
        metrics: &[
            m("FI_DEV_GPU_UTIL", CAP),
            m("FI_DEV_FB_USED", CAP),
            m("FI_DEV_FB_FREE", CAP),
            m("FI_DEV_XID_ERRORS", REL),
            m("EXP_XID_ERRORS_COUNT", REL),
        ],
    },
];

/// The scraped process's start time (prometheus_client, client_golang and
/// controller-runtime all expose it). The Prometheus receiver sends
/// cumulative points without a start time, so the aggregator takes this
/// one's for every cumulative series of the same target: kept from every
/// scrape job, whatever kinds are on.
pub const PROCESS_START_TIME: &str = "process_start_time_seconds";

/// The one span name the aggregator reads (vLLM's and SGLang's request span).
pub const LLM_REQUEST_SPAN: &str = "llm_request";

/// Span attributes the aggregator reads; the agent drops every other one.
pub const SPAN_ATTRIBUTES: &[&str] = &[
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.system",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.response.time_to_first_chunk",
    "gen_ai.latency.time_to_first_token",
    "gen_ai.latency.e2e",
    "gen_ai.latency.time_in_queue",
    "error.type",
    "modelplane.signal",
    "modelplane.sample_rate",
    "modelplane.prefix.hash",
    "modelplane.prefix.hashes",
];

/// Resource attributes the aggregator reads; on spans the agent drops every
/// other one.
pub const RESOURCE_ATTRIBUTES: &[&str] = &[
    "modelplane.tenant",
    "k8s.namespace.name",
    "modelplane.cluster",
    "k8s.cluster.name",
    "modelplane.model",
    "mesh_llm.model",
    "gen_ai.request.model",
    "mesh_llm.gpu_name",
];

/// Resource attribute the agent sets on spans it sends raw for forwarding
/// (`spec.signals.traceForwarding`), with value [`FORWARD_PATH`]. The
/// aggregator forwards such spans and never sketches them; the agent's
/// privacy allowlist drops the key from everything else, so no sender can
/// take its spans off the sketch path by claiming it.
pub const TRACE_PATH_ATTRIBUTE: &str = "modelplane.trace_path";
pub const FORWARD_PATH: &str = "forward";

/// The scraped metric names one kind reads, per job.
pub fn scraped_for(
    kind: SignalKind,
) -> impl Iterator<Item = (&'static MetricFamily, &'static ScrapedMetric)> {
    SCRAPED_METRICS.iter().flat_map(move |family| {
        family
            .metrics
            .iter()
            .filter(move |metric| metric.kinds.contains(&kind))
            .map(move |metric| (family, metric))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_no_regex_escaping() {
        // The agent builds Prometheus regexes from these names verbatim.
        let plain = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        };
        for family in SCRAPED_METRICS {
            assert!(family.prefixes.iter().all(|p| plain(p)), "{family:?}");
            assert!(
                family
                    .metrics
                    .iter()
                    .all(|m| plain(m.name) && !m.kinds.is_empty()),
                "{family:?}"
            );
        }
        assert!(plain(PROCESS_START_TIME));
    }

    #[test]
    fn no_name_is_listed_twice_in_a_family() {
        for family in SCRAPED_METRICS {
            let mut names: Vec<&str> = family.metrics.iter().map(|m| m.name).collect();
            names.sort();
            let before = names.len();
            names.dedup();
            assert_eq!(names.len(), before, "{:?}", family.prefixes);
        }
    }
}
