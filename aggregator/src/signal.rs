//! Typed signals: what `normalize` produces and `sketch` consumes. Nothing in
//! here can hold free text from a request: every string is an identity
//! (tenant, cluster, model) or an allowlisted, bounded dimension value.

use std::collections::BTreeMap;

pub use apis::SignalKind;
use serde::{Deserialize, Serialize};

/// Longest identity (a DNS subdomain's limit).
pub const MAX_IDENTITY_LEN: usize = 253;

/// Whether `value` may name a tenant, cluster, model or dimension value in a
/// request or a token file; the error says what is allowed.
pub fn check_identity(value: &str) -> Result<&str, String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_IDENTITY_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b':'));
    if ok {
        Ok(value)
    } else {
        Err(format!(
            "must be 1-{MAX_IDENTITY_LEN} characters of letters, digits, '-', '_', '.', '/', ':'"
        ))
    }
}

/// The unit of tenancy and storage: one series per (tenant, cluster, model, kind).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesKey {
    pub tenant: String,
    pub cluster: String,
    pub model: String,
    pub kind: SignalKind,
}

/// A quantity within a signal. Which sketch holds it follows from the [`Value`]
/// it arrives as, not from the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    // RequestLifecycle
    Requests,
    Errors,
    InputTokens,
    OutputTokens,
    TtftSeconds,
    TpotSeconds,
    E2eSeconds,
    QueueSeconds,
    PrefixCacheQueries,
    PrefixCacheHits,
    QueueDepth,
    RunningRequests,
    Preemptions,
    // PrefixHash
    PrefixHashes,
    // Capacity (dims: sku, tier)
    Gpus,
    GpusAllocated,
    GpuUtilization,
    GpuMemoryUsedBytes,
    GpuMemoryFreeBytes,
    KvCacheUtilization,
    ReplicasActive,
    ReplicasStarting,
    CacheBytesStaged,
    // ColdStart (dims: phase, reason, sku, context)
    PhaseSeconds,
    LaunchSeconds,
    LaunchAttempts,
    LaunchSuccesses,
    LaunchFailures,
    UnexpectedExits,
    Unloads,
    UptimeSeconds,
    ContextLength,
    LoadedModels,
    // Cost (dims: sku)
    GpuSeconds,
    PricePerGpuHour,
    // Reliability (dims: sku, cause)
    Failures,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Requests => "requests",
            Field::Errors => "errors",
            Field::InputTokens => "input_tokens",
            Field::OutputTokens => "output_tokens",
            Field::TtftSeconds => "ttft_seconds",
            Field::TpotSeconds => "tpot_seconds",
            Field::E2eSeconds => "e2e_seconds",
            Field::QueueSeconds => "queue_seconds",
            Field::PrefixCacheQueries => "prefix_cache_queries",
            Field::PrefixCacheHits => "prefix_cache_hits",
            Field::QueueDepth => "queue_depth",
            Field::RunningRequests => "running_requests",
            Field::Preemptions => "preemptions",
            Field::PrefixHashes => "prefix_hashes",
            Field::Gpus => "gpus",
            Field::GpusAllocated => "gpus_allocated",
            Field::GpuUtilization => "gpu_utilization",
            Field::GpuMemoryUsedBytes => "gpu_memory_used_bytes",
            Field::GpuMemoryFreeBytes => "gpu_memory_free_bytes",
            Field::KvCacheUtilization => "kv_cache_utilization",
            Field::ReplicasActive => "replicas_active",
            Field::ReplicasStarting => "replicas_starting",
            Field::CacheBytesStaged => "cache_bytes_staged",
            Field::PhaseSeconds => "phase_seconds",
            Field::LaunchSeconds => "launch_seconds",
            Field::LaunchAttempts => "launch_attempts",
            Field::LaunchSuccesses => "launch_successes",
            Field::LaunchFailures => "launch_failures",
            Field::UnexpectedExits => "unexpected_exits",
            Field::Unloads => "unloads",
            Field::UptimeSeconds => "uptime_seconds",
            Field::ContextLength => "context_length",
            Field::LoadedModels => "loaded_models",
            Field::GpuSeconds => "gpu_seconds",
            Field::PricePerGpuHour => "price_per_gpu_hour",
            Field::Failures => "failures",
        }
    }
}

/// Allowlisted dimension keys a [`FieldKey`] may carry. Values are bounded by
/// `normalize` (enums or short identifiers), never free text.
pub const DIM_SKU: &str = "sku";
pub const DIM_TIER: &str = "tier";
pub const DIM_PHASE: &str = "phase";
pub const DIM_REASON: &str = "reason";
pub const DIM_CAUSE: &str = "cause";
/// Context-length bucket of a model launch (mesh-llm `context_bucket` values).
pub const DIM_CONTEXT: &str = "context";

/// A field plus its bounded dimensions (empty for most fields).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FieldKey {
    pub field: Field,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dims: BTreeMap<String, String>,
}

impl FieldKey {
    pub fn plain(field: Field) -> Self {
        FieldKey {
            field,
            dims: BTreeMap::new(),
        }
    }

    pub fn with_dim(field: Field, key: &str, value: impl Into<String>) -> Self {
        let mut dims = BTreeMap::new();
        dims.insert(key.to_string(), value.into());
        FieldKey { field, dims }
    }
}

/// Explicit-bucket histogram increment (already a delta). `bounds` are the
/// ascending upper bounds; `counts.len() == bounds.len() + 1` (last is +Inf).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramDelta {
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// One per-request measurement: feeds a quantile sketch.
    Sample(f64),
    /// Bucket counts from an explicit-bucket histogram, as a delta.
    Histogram(HistogramDelta),
    /// Increase since the previous report (cumulative series arrive here as deltas).
    Counter(f64),
    /// A point-in-time reading.
    Gauge(f64),
    /// A prefix hash: feeds distinct-count and frequency sketches. Hashed at the
    /// source; prompt text never reaches the aggregator's metrics path.
    PrefixHash(u64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub field: FieldKey,
    pub time_unix_nano: u64,
    pub value: Value,
}

/// The points of one series from one export request.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesPoints {
    pub key: SeriesKey,
    pub points: Vec<Point>,
}

/// Everything `normalize` extracted from one export request.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SignalBatch {
    pub series: Vec<SeriesPoints>,
}

impl SignalBatch {
    pub fn point_count(&self) -> usize {
        self.series.iter().map(|s| s.points.len()).sum()
    }
}

/// What the transport knows about the sender of an export request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// The cluster the sender's ingest token belongs to, when ingest auth is on.
    /// Data from this sender is attributed to this cluster whatever its
    /// resource attributes claim.
    pub authenticated_cluster: Option<String>,
}
