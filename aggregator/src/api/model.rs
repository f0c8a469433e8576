//! What the API answers, as types: each derives both its JSON and its JSON
//! Schema, and `/openapi.json` publishes those schemas, so the document and
//! the output cannot drift. Doc comments here become the schema's
//! descriptions.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::query::cost::PriceSource;
pub use crate::query::cost::SkuCost;
pub use crate::query::readout::GaugeReading as Gauge;

/// The time range an answer covers: `[from, to)`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Window {
    pub from: Timestamp,
    pub to: Timestamp,
    pub from_unix_secs: u64,
    pub to_unix_secs: u64,
    pub seconds: u64,
}

/// RFC 3339, UTC.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(extend("format" = "date-time"))]
pub struct Timestamp(pub String);

/// Quantiles of per-request values (seconds for latencies). Quantiles are
/// null when count is 0.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Distribution {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
}

/// `GET /v1/tenants/{tenant}/signals/{kind}`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SignalsResponse {
    pub kind: KindName,
    pub tenant: String,
    pub window: Window,
    #[serde(rename = "groupBy")]
    pub group_by: Vec<GroupDimension>,
    pub groups: Vec<Group>,
    /// Data points of this tenant that this aggregator process accepted
    /// since it started but that map to no signal (an unknown or misspelt
    /// metric name, or another instrument than its source emits), by metric
    /// name: at most 20 names, the rest under `other`. When a field you
    /// expected is null or 0, look here.
    pub unmapped_points: BTreeMap<String, u64>,
    /// Present when `groups` is empty although points of this tenant
    /// arrived that mapped to no signal: says so, rather than an empty answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A signal kind's name.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(extend("enum" = crate::signal::SignalKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>()))]
pub struct KindName(pub &'static str);

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupDimension {
    Cluster,
    Model,
}

/// One group of a signals answer: the grouping values, then the kind's fields.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Group {
    /// Present when grouped by cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub cluster: Option<String>,
    /// Present when grouped by model.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub model: Option<String>,
    #[serde(flatten)]
    pub signals: GroupSignals,
}

/// The fields of one kind.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum GroupSignals {
    RequestLifecycle(RequestLifecycleGroup),
    PrefixHash(PrefixHashGroup),
    Capacity(CapacityGroup),
    ColdStart(ColdStartGroup),
    Cost(CostGroup),
    Reliability(ReliabilityGroup),
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct RequestLifecycleGroup {
    pub requests: f64,
    pub errors: f64,
    pub error_rate: Option<f64>,
    pub requests_per_second: Option<f64>,
    pub input_tokens: f64,
    pub output_tokens: f64,
    pub ttft_seconds: Distribution,
    pub tpot_seconds: Distribution,
    pub e2e_seconds: Distribution,
    pub queue_seconds: Distribution,
    /// Prefix-cache hits / queries (tokens).
    pub prefix_cache_hit_rate: Option<f64>,
    /// Prompt tokens looked up in the prefix cache.
    pub prefix_cache_queries: f64,
    /// Prompt tokens found in the prefix cache.
    pub prefix_cache_hits: f64,
    pub queue_depth: Option<Gauge>,
    pub running_requests: Option<Gauge>,
    /// Requests the engine preempted (vLLM `num_preemptions`).
    pub preemptions: f64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrefixHashGroup {
    /// Estimated distinct prefix hashes (HyperLogLog).
    pub distinct: f64,
    pub top: Vec<PrefixCount>,
}

/// A prefix hash and how often it was seen (Count-Min estimate).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrefixCount {
    pub hash: PrefixHash,
    pub count: u64,
}

/// A prefix hash as 16 lowercase hex digits.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(extend("pattern" = "^[0-9a-f]{16}$"))]
pub struct PrefixHash(pub String);

impl PrefixHash {
    pub fn of(hash: u64) -> Self {
        PrefixHash(format!("{hash:016x}"))
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityGroup {
    pub gpus_by_sku: BTreeMap<String, SkuGauges>,
    pub kv_cache_utilization_by_tier: BTreeMap<String, Option<Gauge>>,
    pub replicas: Replicas,
    pub cache_bytes_staged: Option<Gauge>,
}

/// GPU gauges of one SKU; a gauge the cluster never reported is absent.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct SkuGauges {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Gauge>")]
    pub gpus: Option<Option<Gauge>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Gauge>")]
    pub allocated: Option<Option<Gauge>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Gauge>")]
    pub utilization: Option<Option<Gauge>>,
    /// Framebuffer memory in use, bytes (DCGM `DCGM_FI_DEV_FB_USED`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Gauge>")]
    pub memory_used_bytes: Option<Option<Gauge>>,
    /// Framebuffer memory free, bytes (DCGM `DCGM_FI_DEV_FB_FREE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Gauge>")]
    pub memory_free_bytes: Option<Option<Gauge>>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Replicas {
    pub active: Option<Gauge>,
    pub starting: Option<Gauge>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ColdStartGroup {
    /// Per phase (`gpu_procurement`, `image_load`, `model_load`,
    /// `engine_startup`, `cache_hydration`), seconds.
    pub phases: BTreeMap<String, Distribution>,
    pub launches: Launches,
    pub unexpected_exits: f64,
    pub unloads: f64,
    /// Launch durations, seconds (mesh-llm `mesh_llm_model_launch_duration_ms`).
    pub launch_seconds: Distribution,
    /// How long models stayed loaded, seconds (mesh-llm `mesh_llm_model_uptime_s`).
    pub uptime_seconds: Distribution,
    /// Context length of the loaded models, tokens (mesh-llm's gauge
    /// `mesh_llm_model_context_length`), over every SKU and context bucket.
    pub context_length: Option<Gauge>,
    /// Context lengths, tokens, when a sender records them as a histogram.
    pub context_length_distribution: Distribution,
    /// Models loaded (mesh-llm `mesh_llm_loaded_models`, `mesh_llm_model_loaded`),
    /// over every SKU and context bucket.
    pub loaded_models: Option<Gauge>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Launches {
    pub attempts: f64,
    pub successes: f64,
    pub failures: f64,
    pub failures_by_reason: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CostGroup {
    pub gpu_hours: f64,
    /// GPU-hours × price, over SKUs with a price.
    pub dollars: f64,
    pub dollars_per_gpu_hour: Option<f64>,
    /// Input + output tokens of the same group (RequestLifecycle).
    pub tokens: Option<f64>,
    pub dollars_per_token: Option<f64>,
    pub by_sku: BTreeMap<String, SkuCost>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReliabilityGroup {
    pub failures: f64,
    pub failures_by_sku: BTreeMap<String, f64>,
    pub failures_by_cause: BTreeMap<String, f64>,
    pub failures_by_sku_and_cause: Vec<SkuCauseCount>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkuCauseCount {
    pub sku: String,
    pub cause: String,
    pub count: f64,
}

/// `GET /v1/fleet/compare`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CompareResponse {
    pub kind: KindName,
    pub field: String,
    pub quantile: f64,
    pub window: Window,
    /// Median of the per-cluster values.
    pub fleet_median: Option<f64>,
    pub clusters: Vec<ClusterValue>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterValue {
    pub cluster: String,
    pub count: u64,
    pub value: Option<f64>,
    pub ratio_to_fleet_median: Option<f64>,
}

/// `GET /v1/scheduler/capacity`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CapacityResponse {
    pub window: Window,
    pub clusters: Vec<ClusterCapacity>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterCapacity {
    pub cluster: String,
    pub skus: Vec<SkuCapacity>,
    pub total: GpuTotals,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SkuCapacity {
    pub sku: String,
    pub gpus: f64,
    pub allocated: f64,
    /// gpus − allocated, at least 0.
    pub free: f64,
    /// GPU-weighted over the series reporting it.
    pub utilization: Option<f64>,
    pub price_per_gpu_hour: Option<f64>,
    pub price_source: Option<PriceSource>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GpuTotals {
    pub gpus: f64,
    pub allocated: f64,
    pub free: f64,
}

/// `GET /v1/scheduler/prefix-overlap`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrefixOverlapResponse {
    pub model: String,
    pub window: Window,
    pub fleet: PrefixTotals,
    pub clusters: Vec<ClusterPrefixes>,
    pub pairs: Vec<ClusterPair>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PrefixTotals {
    /// Estimated distinct prefix hashes (HyperLogLog).
    pub distinct: f64,
    pub occurrences: u64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterPrefixes {
    pub cluster: String,
    pub distinct: f64,
    pub occurrences: u64,
    pub top: Vec<PrefixCount>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterPair {
    pub clusters: [String; 2],
    pub distinct_union: f64,
    /// Inclusion–exclusion, clamped to [0, the smaller cluster's distinct].
    pub distinct_intersection: f64,
    pub jaccard: f64,
    pub shared_top: Vec<SharedPrefix>,
}

/// A hash in both clusters' top lists, with each cluster's count.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SharedPrefix {
    pub hash: PrefixHash,
    pub counts: BTreeMap<String, u64>,
}

/// `GET /v1/scheduler/overflow`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OverflowResponse {
    pub model: Option<String>,
    pub window: Window,
    pub clusters: Vec<ClusterOverflow>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ClusterOverflow {
    pub cluster: String,
    pub queue_depth: f64,
    pub running_requests: f64,
    pub requests_per_second: f64,
    pub ttft_p99_seconds: Option<f64>,
    pub free_gpus: f64,
    pub gpu_hours: f64,
    pub dollars: f64,
    pub dollars_per_gpu_hour: Option<f64>,
    pub tokens: f64,
    pub dollars_per_token: Option<f64>,
}

/// `GET /healthz`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Health {
    pub status: HealthStatus,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
}

/// `GET /readyz`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Readiness {
    pub status: ReadyStatus,
    pub store: StoreReadiness,
}

#[derive(Debug, Clone, Copy, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    Ready,
    NotReady,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoreReadiness {
    pub ready: bool,
    pub detail: String,
    /// Series held, when the store can count them cheaply.
    pub series: Option<u64>,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// Machine-readable reason: invalid_parameter, not_found,
    /// store_unavailable, store_corrupt, merge_failed, unauthenticated, forbidden.
    pub code: String,
    /// What to change, for a person.
    pub message: String,
}
