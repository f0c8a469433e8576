//! Synthetic, realistic OTLP payloads for the load generator and benchmarks.
//!
//! Everything is derived from a seed, so two generators built with the same
//! seed and fleet shape produce byte-identical requests for the same clock
//! readings. The payloads look like what a signals agent forwards:
//!
//! - spans as vLLM's `llm_request` spans look once the gateway has stamped a
//!   prefix hash (`gen_ai.response.model`, request id and parameters, usage
//!   tokens with current and deprecated names, finish reasons,
//!   `gen_ai.latency.*`, `modelplane.prefix.hash`, `error.type` on failures);
//! - metrics as the Collector's Prometheus receiver forwards vLLM's and SGLang's
//!   `/metrics`: cumulative counters that keep growing from batch to batch,
//!   gauges, and explicit-bucket histograms with the engines' bucket bounds.
//!
//! Identities (tenant × cluster × model) are visited round-robin, so a run that
//! sends enough batches touches every series of the fleet shape.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    HistogramDataPoint, Metric, ResourceMetrics, ScopeMetrics,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use crate::{array_kv, counter, double_kv, gauge, hist, histogram, int_kv, number, string_kv};

/// vLLM's TTFT histogram bounds (`vllm/v1/metrics/buckets.py`).
pub const VLLM_TTFT_BOUNDS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's inter-token latency (TPOT) histogram bounds.
pub const VLLM_INTER_TOKEN_BOUNDS: &[f64] = &[
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
];
/// vLLM's request-latency histogram bounds (e2e, queue, prefill, decode).
pub const VLLM_REQUEST_LATENCY_BOUNDS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

const MODEL_FAMILIES: &[&str] = &[
    "meta-llama/Llama-3.1-8B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
    "google/gemma-2-27b-it",
    "microsoft/Phi-3-mini-4k-instruct",
];
const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-south-1", "us-west-2"];
const FINISH_REASONS: &[&str] = &["stop", "stop", "stop", "length"];
const ERROR_TYPES: &[&str] = &["timeout", "500", "rate_limited"];
/// Distinct prompt prefixes per tenant; frequencies are heavy-headed.
const PREFIXES_PER_TENANT: u64 = 4_096;

/// A small deterministic PRNG (SplitMix64): the payload generator must not
/// depend on a crate's stream staying stable across versions.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Log-normal with the given median and shape (sigma of the underlying normal).
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        // Box-Muller; 1 - unit() keeps the log argument in (0, 1].
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        let normal = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        median * (sigma * normal).exp()
    }

    fn bytes<const N: usize>(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(N);
        while out.len() < N {
            out.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        out.truncate(N);
        out
    }
}

/// The inference engine behind an identity; decides metric names and span shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Vllm,
    Sglang,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Vllm => "vllm",
            Engine::Sglang => "sglang",
        }
    }
}

/// How many tenants, clusters per tenant and models per cluster the synthetic
/// fleet has. Series = identities × signal kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetShape {
    pub tenants: usize,
    pub clusters: usize,
    pub models: usize,
}

impl Default for FleetShape {
    fn default() -> Self {
        FleetShape {
            tenants: 4,
            clusters: 3,
            models: 5,
        }
    }
}

/// One (tenant, cluster, model) of the synthetic fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub index: usize,
    pub tenant: String,
    pub cluster: String,
    pub model: String,
    pub engine: Engine,
}

impl FleetShape {
    pub fn identities(&self) -> usize {
        self.tenants.max(1) * self.clusters.max(1) * self.models.max(1)
    }

    /// Identity `index` (taken modulo [`FleetShape::identities`]); models vary
    /// fastest so consecutive identities share a tenant and cluster.
    pub fn identity(&self, index: usize) -> Identity {
        let index = index % self.identities();
        let models = self.models.max(1);
        let clusters = self.clusters.max(1);
        let model = index % models;
        let cluster = (index / models) % clusters;
        let tenant = index / (models * clusters);
        Identity {
            index,
            tenant: tenant_name(tenant),
            cluster: cluster_name(cluster),
            model: model_name(model),
            engine: if model.is_multiple_of(2) {
                Engine::Vllm
            } else {
                Engine::Sglang
            },
        }
    }
}

pub fn tenant_name(index: usize) -> String {
    format!("tenant-{index:04}")
}

pub fn cluster_name(index: usize) -> String {
    format!(
        "{}-{:03}",
        REGIONS[index % REGIONS.len()],
        index / REGIONS.len()
    )
}

pub fn model_name(index: usize) -> String {
    let family = MODEL_FAMILIES[index % MODEL_FAMILIES.len()];
    match index / MODEL_FAMILIES.len() {
        0 => family.to_string(),
        variant => format!("{family}-ft{variant:04}"),
    }
}

/// Walks the identities a generator owns: all of them, or every `stride`-th
/// starting at `offset` when several workers split a fleet without overlap
/// (cumulative series must come from one sender to stay monotonic).
#[derive(Clone, Debug)]
struct IdentityCursor {
    shape: FleetShape,
    offset: usize,
    stride: usize,
    step: usize,
}

impl IdentityCursor {
    fn next(&mut self) -> Identity {
        let owned = self.owned();
        let index = self.offset + (self.step % owned) * self.stride;
        self.step += 1;
        self.shape.identity(index)
    }

    fn owned(&self) -> usize {
        (self.shape.identities() - self.offset)
            .div_ceil(self.stride)
            .max(1)
    }
}

/// Resource attributes as the signals agent sets them for one pod.
fn resource(identity: &Identity, pod: u64) -> Resource {
    let engine = identity.engine.as_str();
    Resource {
        attributes: vec![
            string_kv("service.name", engine),
            string_kv("modelplane.tenant", identity.tenant.clone()),
            string_kv("k8s.namespace.name", identity.tenant.clone()),
            string_kv("modelplane.cluster", identity.cluster.clone()),
            string_kv("modelplane.engine", engine),
            string_kv("k8s.pod.name", format!("{engine}-{}-{pod}", identity.index)),
        ],
        ..Default::default()
    }
}

fn scope(name: &str) -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: name.to_string(),
        version: "0.1.0".to_string(),
        ..Default::default()
    })
}

/// What a span generator has emitted so far: the ground truth a test or a
/// load run compares the aggregator's answers with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanTotals {
    pub spans: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Builds batches of GenAI inference spans.
#[derive(Clone, Debug)]
pub struct SpanGenerator {
    rng: SplitMix64,
    cursor: IdentityCursor,
    spans_per_resource: usize,
    error_ratio: f64,
    totals: SpanTotals,
}

impl SpanGenerator {
    pub fn new(seed: u64, shape: FleetShape) -> Self {
        SpanGenerator {
            rng: SplitMix64::new(seed),
            cursor: IdentityCursor {
                shape,
                offset: 0,
                stride: 1,
                step: 0,
            },
            spans_per_resource: 100,
            error_ratio: 0.02,
            totals: SpanTotals::default(),
        }
    }

    /// Owns only identities `worker`, `worker + workers`, ... (no overlap with
    /// the other workers' generators).
    pub fn partition(mut self, worker: usize, workers: usize) -> Self {
        self.cursor.stride = workers.max(1);
        self.cursor.offset = worker % self.cursor.stride;
        self
    }

    /// Spans per (tenant, cluster, model) resource block within a batch.
    pub fn spans_per_resource(mut self, spans: usize) -> Self {
        self.spans_per_resource = spans.max(1);
        self
    }

    /// Fraction of spans that fail (status error plus `error.type`).
    pub fn error_ratio(mut self, ratio: f64) -> Self {
        self.error_ratio = ratio.clamp(0.0, 1.0);
        self
    }

    pub fn totals(&self) -> &SpanTotals {
        &self.totals
    }

    /// A request with exactly `spans` spans, all ending at or before `now_unix_nano`.
    pub fn batch(&mut self, spans: usize, now_unix_nano: u64) -> ExportTraceServiceRequest {
        let mut resource_spans = Vec::with_capacity(spans.div_ceil(self.spans_per_resource));
        let mut remaining = spans;
        while remaining > 0 {
            let block = remaining.min(self.spans_per_resource);
            remaining -= block;
            let identity = self.cursor.next();
            let pod = self.rng.below(4);
            let spans = (0..block)
                .map(|_| self.span(&identity, now_unix_nano))
                .collect();
            resource_spans.push(ResourceSpans {
                resource: Some(resource(&identity, pod)),
                scope_spans: vec![ScopeSpans {
                    scope: scope(identity.engine.as_str()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportTraceServiceRequest { resource_spans }
    }

    fn span(&mut self, identity: &Identity, now_unix_nano: u64) -> Span {
        let rng = &mut self.rng;
        let queue = rng.lognormal(0.02, 1.0);
        let ttft = queue + rng.lognormal(0.15, 0.6);
        let input_tokens = rng.lognormal(600.0, 0.9).clamp(1.0, 32_000.0) as i64;
        let output_tokens = rng.lognormal(180.0, 0.8).clamp(1.0, 8_000.0) as i64;
        let tpot = rng.lognormal(0.03, 0.4);
        let e2e = ttft + tpot * (output_tokens - 1) as f64;
        let failed = rng.unit() < self.error_ratio;
        let end = now_unix_nano.saturating_sub(rng.below(1_000_000_000));
        let start = end.saturating_sub((e2e * 1e9) as u64);
        let prefix = prefix_hash(&identity.tenant, rng);
        // A quarter of the spans use the deprecated usage names vLLM still emits.
        let (input_key, output_key) = if rng.below(4) == 0 {
            (
                "gen_ai.usage.prompt_tokens",
                "gen_ai.usage.completion_tokens",
            )
        } else {
            ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
        };
        let finish = if failed {
            "abort"
        } else {
            FINISH_REASONS[rng.below(FINISH_REASONS.len() as u64) as usize]
        };

        // vLLM's `llm_request` span: no provider or operation (those mark a
        // gateway's client span), a request id the aggregator must not keep.
        let mut attributes = vec![
            string_kv("gen_ai.response.model", identity.model.clone()),
            string_kv("gen_ai.request.id", format!("cmpl-{:016x}", rng.next_u64())),
            double_kv("gen_ai.request.temperature", 0.7),
            int_kv("gen_ai.request.max_tokens", 2048),
            int_kv(input_key, input_tokens),
            int_kv(output_key, output_tokens),
            array_kv(
                "gen_ai.response.finish_reasons",
                vec![any_value::Value::StringValue(finish.to_string())],
            ),
            double_kv("gen_ai.latency.time_in_queue", queue),
            double_kv("gen_ai.latency.time_to_first_token", ttft),
            double_kv("gen_ai.latency.e2e", e2e),
            double_kv("gen_ai.latency.time_in_model_decode", e2e - ttft),
            int_kv("modelplane.prefix.hash", prefix as i64),
        ];
        let mut status = None;
        if failed {
            let error = ERROR_TYPES[rng.below(ERROR_TYPES.len() as u64) as usize];
            attributes.push(string_kv("error.type", error));
            status = Some(Status {
                code: status::StatusCode::Error as i32,
                message: String::new(),
            });
            self.totals.errors += 1;
        }
        self.totals.spans += 1;
        self.totals.input_tokens += input_tokens as u64;
        self.totals.output_tokens += output_tokens as u64;

        Span {
            trace_id: rng.bytes::<16>(),
            span_id: rng.bytes::<8>(),
            name: "llm_request".to_string(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes,
            status,
            ..Default::default()
        }
    }
}

/// A gateway-computed prefix hash: a u64, drawn heavy-headed from a
/// per-tenant pool so the top prefixes stand out.
fn prefix_hash(tenant: &str, rng: &mut SplitMix64) -> u64 {
    let rank = ((PREFIXES_PER_TENANT as f64).powf(rng.unit()) as u64).saturating_sub(1);
    xxhash_rust::xxh3::xxh3_64_with_seed(tenant.as_bytes(), rank)
}

/// One simulated engine pod's cumulative counters and histograms.
#[derive(Clone, Debug)]
struct EngineState {
    start_unix_nano: u64,
    last_scrape_unix_nano: u64,
    prompt_tokens: u64,
    generation_tokens: u64,
    /// By finish reason: stop, length, abort.
    successes: [u64; 3],
    preemptions: u64,
    prefix_queries: u64,
    prefix_hits: u64,
    ttft: CumulativeHistogram,
    inter_token: CumulativeHistogram,
    e2e: CumulativeHistogram,
    queue: CumulativeHistogram,
}

#[derive(Clone, Debug)]
struct CumulativeHistogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
}

impl CumulativeHistogram {
    fn new(bounds: &'static [f64]) -> Self {
        CumulativeHistogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    fn observe(&mut self, value: f64) {
        // Prometheus buckets are upper-inclusive (le).
        let bucket = self.bounds.partition_point(|bound| *bound < value);
        self.counts[bucket] += 1;
        self.sum += value;
    }

    fn point(&self, attributes: Vec<KeyValue>, start: u64, now: u64) -> HistogramDataPoint {
        hist(attributes, start, now, self.bounds, &self.counts, self.sum)
    }
}

impl EngineState {
    fn new(start_unix_nano: u64) -> Self {
        EngineState {
            start_unix_nano,
            last_scrape_unix_nano: 0,
            prompt_tokens: 0,
            generation_tokens: 0,
            successes: [0; 3],
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            ttft: CumulativeHistogram::new(VLLM_TTFT_BOUNDS),
            inter_token: CumulativeHistogram::new(VLLM_INTER_TOKEN_BOUNDS),
            e2e: CumulativeHistogram::new(VLLM_REQUEST_LATENCY_BOUNDS),
            queue: CumulativeHistogram::new(VLLM_REQUEST_LATENCY_BOUNDS),
        }
    }

    /// The requests the pod finished since the previous scrape.
    fn advance(&mut self, rng: &mut SplitMix64) {
        let requests = 5 + rng.below(40);
        for _ in 0..requests {
            let prompt = rng.lognormal(600.0, 0.9).clamp(1.0, 32_000.0) as u64;
            let generated = rng.lognormal(180.0, 0.8).clamp(1.0, 8_000.0) as u64;
            let queue = rng.lognormal(0.02, 1.0);
            let ttft = queue + rng.lognormal(0.15, 0.6);
            let tpot = rng.lognormal(0.03, 0.4);
            self.prompt_tokens += prompt;
            self.generation_tokens += generated;
            self.prefix_queries += prompt;
            self.prefix_hits += (prompt as f64 * rng.unit() * 0.6) as u64;
            let reason = match rng.below(100) {
                0 => 2,
                1..=9 => 1,
                _ => 0,
            };
            self.successes[reason] += 1;
            self.queue.observe(queue);
            self.ttft.observe(ttft);
            self.inter_token.observe(tpot);
            self.e2e.observe(ttft + tpot * (generated - 1) as f64);
        }
        if rng.below(10) == 0 {
            self.preemptions += 1;
        }
    }
}

/// One datapoint of a scrape, before it is grouped into OTLP metrics.
enum Reading {
    Counter(f64),
    Gauge(f64),
    Histogram(HistogramDataPoint),
}

/// Builds batches of engine metric datapoints as the Prometheus receiver
/// forwards them: cumulative, growing from one batch to the next.
#[derive(Clone, Debug)]
pub struct MetricGenerator {
    rng: SplitMix64,
    cursor: IdentityCursor,
    engines: HashMap<usize, EngineState>,
    datapoints: u64,
}

impl MetricGenerator {
    pub fn new(seed: u64, shape: FleetShape) -> Self {
        MetricGenerator {
            rng: SplitMix64::new(seed),
            cursor: IdentityCursor {
                shape,
                offset: 0,
                stride: 1,
                step: 0,
            },
            engines: HashMap::new(),
            datapoints: 0,
        }
    }

    /// See [`SpanGenerator::partition`].
    pub fn partition(mut self, worker: usize, workers: usize) -> Self {
        self.cursor.stride = workers.max(1);
        self.cursor.offset = worker % self.cursor.stride;
        self
    }

    /// Datapoints emitted so far.
    pub fn datapoints(&self) -> u64 {
        self.datapoints
    }

    /// A request with exactly `datapoints` datapoints: one scrape after another
    /// of successive identities, the last one cut short when it does not fit.
    pub fn batch(&mut self, datapoints: usize, now_unix_nano: u64) -> ExportMetricsServiceRequest {
        let mut resource_metrics = Vec::new();
        let mut remaining = datapoints;
        while remaining > 0 {
            let identity = self.cursor.next();
            let mut scrape = self.scrape(&identity, now_unix_nano);
            scrape.truncate(remaining);
            remaining -= scrape.len();
            self.datapoints += scrape.len() as u64;
            resource_metrics.push(ResourceMetrics {
                resource: Some(resource(&identity, 0)),
                scope_metrics: vec![ScopeMetrics {
                    scope: scope("otelcol/prometheusreceiver"),
                    metrics: scrape,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        ExportMetricsServiceRequest { resource_metrics }
    }

    fn scrape(&mut self, identity: &Identity, now: u64) -> Vec<Metric> {
        let state = self
            .engines
            .entry(identity.index)
            .or_insert_with(|| EngineState::new(now.saturating_sub(3_600_000_000_000)));
        // A receiver drops a cumulative point that is not newer than the last
        // one; a fleet smaller than a batch scrapes the same pod more than once
        // per clock reading, so each scrape is at least a millisecond later.
        let now = now.max(state.last_scrape_unix_nano + 1_000_000);
        state.last_scrape_unix_nano = now;
        state.advance(&mut self.rng);
        let running = self.rng.below(64) as f64;
        let waiting = self.rng.below(8) as f64;
        let kv_usage = self.rng.unit();
        let engine = identity.engine;
        let prefix = engine.as_str();
        let model_label = || vec![string_kv("model_name", identity.model.clone())];
        let start = state.start_unix_nano;

        let mut readings: Vec<(String, &'static str, Vec<KeyValue>, Reading)> = vec![
            (
                format!("{prefix}:prompt_tokens_total"),
                "{token}",
                model_label(),
                Reading::Counter(state.prompt_tokens as f64),
            ),
            (
                format!("{prefix}:generation_tokens_total"),
                "{token}",
                model_label(),
                Reading::Counter(state.generation_tokens as f64),
            ),
        ];
        match engine {
            Engine::Vllm => {
                for (reason, count) in ["stop", "length", "abort"].iter().zip(state.successes) {
                    let mut labels = model_label();
                    labels.push(string_kv("finished_reason", *reason));
                    readings.push((
                        "vllm:request_success_total".into(),
                        "1",
                        labels,
                        Reading::Counter(count as f64),
                    ));
                }
                readings.extend([
                    (
                        "vllm:num_preemptions_total".into(),
                        "1",
                        model_label(),
                        Reading::Counter(state.preemptions as f64),
                    ),
                    (
                        "vllm:prefix_cache_queries_total".into(),
                        "{token}",
                        model_label(),
                        Reading::Counter(state.prefix_queries as f64),
                    ),
                    (
                        "vllm:prefix_cache_hits_total".into(),
                        "{token}",
                        model_label(),
                        Reading::Counter(state.prefix_hits as f64),
                    ),
                    (
                        "vllm:num_requests_running".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(running),
                    ),
                    (
                        "vllm:num_requests_waiting".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(waiting),
                    ),
                    (
                        "vllm:kv_cache_usage_perc".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(kv_usage),
                    ),
                    (
                        "vllm:inter_token_latency_seconds".into(),
                        "s",
                        model_label(),
                        Reading::Histogram(state.inter_token.point(model_label(), start, now)),
                    ),
                    (
                        "vllm:request_queue_time_seconds".into(),
                        "s",
                        model_label(),
                        Reading::Histogram(state.queue.point(model_label(), start, now)),
                    ),
                ]);
            }
            Engine::Sglang => {
                let successes: u64 = state.successes.iter().sum();
                let hit_rate = state.prefix_hits as f64 / state.prefix_queries.max(1) as f64;
                readings.extend([
                    (
                        "sglang:num_requests_total".into(),
                        "1",
                        model_label(),
                        Reading::Counter(successes as f64),
                    ),
                    (
                        "sglang:num_running_reqs".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(running),
                    ),
                    (
                        "sglang:num_queue_reqs".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(waiting),
                    ),
                    (
                        "sglang:token_usage".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(kv_usage),
                    ),
                    (
                        "sglang:cache_hit_rate".into(),
                        "1",
                        model_label(),
                        Reading::Gauge(hit_rate),
                    ),
                    (
                        "sglang:time_per_output_token_seconds".into(),
                        "s",
                        model_label(),
                        Reading::Histogram(state.inter_token.point(model_label(), start, now)),
                    ),
                ]);
            }
        }
        readings.extend([
            (
                format!("{prefix}:time_to_first_token_seconds"),
                "s",
                model_label(),
                Reading::Histogram(state.ttft.point(model_label(), start, now)),
            ),
            (
                format!("{prefix}:e2e_request_latency_seconds"),
                "s",
                model_label(),
                Reading::Histogram(state.e2e.point(model_label(), start, now)),
            ),
        ]);

        readings
            .into_iter()
            .map(|(name, unit, attributes, reading)| {
                let metric = match reading {
                    Reading::Counter(value) => {
                        counter(&name, vec![number(attributes, start, now, value)])
                    }
                    Reading::Gauge(value) => {
                        gauge(&name, vec![number(attributes, start, now, value)])
                    }
                    Reading::Histogram(point) => histogram(&name, vec![point]),
                };
                Metric {
                    unit: unit.to_string(),
                    ..metric
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
    use prost::Message;

    const NOW: u64 = 1_790_000_000_000_000_000;

    fn span_count(request: &ExportTraceServiceRequest) -> usize {
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum()
    }

    fn datapoints(request: &ExportMetricsServiceRequest) -> Vec<&Metric> {
        request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .collect()
    }

    fn counter(metric: &Metric) -> f64 {
        match &metric.data {
            Some(metric::Data::Sum(sum)) => match sum.data_points[0].value {
                Some(number_data_point::Value::AsDouble(v)) => v,
                ref other => panic!("unexpected value {other:?}"),
            },
            other => panic!("not a sum: {other:?}"),
        }
    }

    #[test]
    fn same_seed_same_bytes_different_seed_different_bytes() {
        let shape = FleetShape::default();
        let a = SpanGenerator::new(7, shape).batch(300, NOW).encode_to_vec();
        let b = SpanGenerator::new(7, shape).batch(300, NOW).encode_to_vec();
        let c = SpanGenerator::new(8, shape).batch(300, NOW).encode_to_vec();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let m1 = MetricGenerator::new(7, shape)
            .batch(500, NOW)
            .encode_to_vec();
        let m2 = MetricGenerator::new(7, shape)
            .batch(500, NOW)
            .encode_to_vec();
        assert_eq!(m1, m2);
    }

    #[test]
    fn span_batches_have_the_requested_size_and_realistic_attributes() {
        let mut spans = SpanGenerator::new(1, FleetShape::default());
        let request = spans.batch(1_000, NOW);
        assert_eq!(span_count(&request), 1_000);
        assert_eq!(request.resource_spans.len(), 10);
        let all: Vec<&Span> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .collect();
        let attrs: usize = all.iter().map(|s| s.attributes.len()).sum();
        let mean = attrs as f64 / all.len() as f64;
        assert!((12.0..13.0).contains(&mean), "mean attributes {mean}");
        for span in &all {
            assert!(span.end_time_unix_nano <= NOW);
            assert!(span.start_time_unix_nano < span.end_time_unix_nano);
            assert_eq!(span.trace_id.len(), 16);
            assert_eq!(span.span_id.len(), 8);
        }
        let errors = all.iter().filter(|s| s.status.is_some()).count() as u64;
        assert_eq!(errors, spans.totals().errors);
        assert!(errors > 0 && errors < 60, "errors {errors}");
        assert_eq!(spans.totals().spans, 1_000);
    }

    #[test]
    fn span_totals_match_the_token_attributes() {
        let mut spans = SpanGenerator::new(3, FleetShape::default());
        let request = spans.batch(250, NOW);
        let (mut input, mut output) = (0u64, 0u64);
        for span in request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
        {
            for attr in &span.attributes {
                let Some(any_value::Value::IntValue(v)) =
                    attr.value.as_ref().and_then(|v| v.value.clone())
                else {
                    continue;
                };
                match attr.key.as_str() {
                    "gen_ai.usage.input_tokens" | "gen_ai.usage.prompt_tokens" => input += v as u64,
                    "gen_ai.usage.output_tokens" | "gen_ai.usage.completion_tokens" => {
                        output += v as u64
                    }
                    _ => {}
                }
            }
        }
        assert_eq!(input, spans.totals().input_tokens);
        assert_eq!(output, spans.totals().output_tokens);
    }

    #[test]
    fn partitions_split_the_fleet_without_overlap() {
        let shape = FleetShape {
            tenants: 2,
            clusters: 3,
            models: 5,
        };
        let mut seen = std::collections::BTreeSet::new();
        for worker in 0..4 {
            let mut cursor = IdentityCursor {
                shape,
                offset: worker,
                stride: 4,
                step: 0,
            };
            let owned = cursor.owned();
            for _ in 0..owned {
                assert!(seen.insert(cursor.next().index));
            }
        }
        assert_eq!(seen.len(), shape.identities());
    }

    #[test]
    fn metric_batches_are_exact_and_cumulative_values_grow() {
        let shape = FleetShape {
            tenants: 1,
            clusters: 1,
            models: 1,
        };
        let mut metrics = MetricGenerator::new(5, shape);
        let first = metrics.batch(1_000, NOW);
        assert_eq!(datapoints(&first).len(), 1_000);
        let second = metrics.batch(1_000, NOW + 15_000_000_000);
        let prompt = |request: &ExportMetricsServiceRequest| -> Vec<f64> {
            datapoints(request)
                .into_iter()
                .filter(|m| m.name == "vllm:prompt_tokens_total")
                .map(counter)
                .collect()
        };
        let values: Vec<f64> = prompt(&first).into_iter().chain(prompt(&second)).collect();
        assert!(values.len() > 100);
        assert!(values.windows(2).all(|w| w[1] > w[0]), "not increasing");
        let times: Vec<u64> = datapoints(&first)
            .into_iter()
            .chain(datapoints(&second))
            .filter(|m| m.name == "vllm:prompt_tokens_total")
            .map(|m| match &m.data {
                Some(metric::Data::Sum(sum)) => sum.data_points[0].time_unix_nano,
                other => panic!("not a sum: {other:?}"),
            })
            .collect();
        assert!(times.windows(2).all(|w| w[1] > w[0]), "timestamps repeat");
        assert_eq!(metrics.datapoints(), 2_000);
    }

    #[test]
    fn histograms_are_consistent_and_use_vllm_buckets() {
        let mut metrics = MetricGenerator::new(9, FleetShape::default());
        let request = metrics.batch(2_000, NOW);
        let mut histograms = 0;
        for metric in datapoints(&request) {
            if let Some(metric::Data::Histogram(h)) = &metric.data {
                let point = &h.data_points[0];
                assert_eq!(point.bucket_counts.len(), point.explicit_bounds.len() + 1);
                assert_eq!(point.bucket_counts.iter().sum::<u64>(), point.count);
                if metric.name.ends_with("time_to_first_token_seconds") {
                    assert_eq!(point.explicit_bounds, VLLM_TTFT_BOUNDS);
                }
                histograms += 1;
            }
        }
        assert!(histograms > 300, "histograms {histograms}");
        let engines: std::collections::BTreeSet<&str> = datapoints(&request)
            .iter()
            .map(|m| m.name.split(':').next().unwrap())
            .collect();
        assert_eq!(
            engines,
            ["sglang", "vllm"]
                .into_iter()
                .collect::<std::collections::BTreeSet<_>>()
        );
    }

    #[test]
    fn fleet_shape_names_every_identity_once() {
        let shape = FleetShape {
            tenants: 3,
            clusters: 5,
            models: 8,
        };
        let names: std::collections::BTreeSet<(String, String, String)> = (0..shape.identities())
            .map(|i| {
                let id = shape.identity(i);
                (id.tenant, id.cluster, id.model)
            })
            .collect();
        assert_eq!(names.len(), 120);
    }
}
