//! `ModelService` (namespaced; the namespace is the tenant): the fields under
//! `spec.observability` and `status.observability`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::inference_cluster::{ObjectMeta, SecretKeySelector};
use crate::schema::{HTTP_URL_PATTERN, SIGNAL_NAME_PATTERN};

pub const MODEL_SERVICE_KIND: &str = "ModelService";

/// The parts of a ModelService XR this project reads. Unknown fields (the rest
/// of Modelplane's spec) are ignored, not rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "A ModelService is one model as a caller sees it. Its namespace is the tenant. This definition carries the observability policy (spec.observability: metric scope and sampling, trace forwarding to the tenant's own backend) and what the fleet signal bus reports back (status.observability)."
)]
pub struct ModelService {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state. Only spec.observability is defined here; the rest is
    /// Modelplane's and is preserved.
    #[serde(default)]
    pub spec: ModelServiceSpec,
    /// Observed state. status.observability.policy is written by
    /// function-signals; status.observability.metrics by the signal-aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ModelServiceStatus>,
}

/// The rest of Modelplane's spec is not this project's: it is preserved, not pruned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ModelServiceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilitySpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilitySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MetricsPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TracesSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum MetricsScope {
    /// This service's aggregates are visible to its tenant only.
    #[default]
    PerTenant,
    /// This service opts into cross-tenant fleet roll-ups.
    Fleet,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricsPolicy {
    #[serde(default)]
    pub scope: MetricsScope,
    /// Overrides the cluster's sample rate for this service's span-derived kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_rate: Option<f64>,
    /// Additive signal kinds this service asks for (e.g. `SpecDecAcceptance`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        length(max = 16),
        inner(pattern(SIGNAL_NAME_PATTERN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub extra_signals: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum TraceProtocol {
    /// OTLP/HTTP with protobuf bodies: what Langfuse, LangSmith and Phoenix accept.
    #[default]
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
    #[serde(rename = "http/json")]
    HttpJson,
    #[serde(rename = "grpc")]
    Grpc,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.enabled) || !self.enabled || has(self.endpoint)",
    "message": "endpoint is required when traces are enabled"
}]))]
pub struct TracesSpec {
    #[serde(default)]
    pub enabled: bool,
    /// The tenant's OTLP endpoint, e.g. `https://cloud.langfuse.com/api/public/otel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(HTTP_URL_PATTERN))]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub protocol: TraceProtocol,
    /// Header name to value, sent with every export to the endpoint.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 64,
        "x-kubernetes-validations" = [{
            "rule": "self.all(k, size(k) <= 128 && k.matches('^[A-Za-z0-9!#$%&*+.^_|~-]+$'))",
            "message": "header names must be HTTP tokens of at most 128 characters"
        }]
    ))]
    pub headers: BTreeMap<String, HeaderValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<TraceSampling>,
}

/// A header value: a literal or a reference to a key of a Secret in the
/// service's namespace. Exactly one of the two.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.value) != has(self.valueFrom)",
    "message": "set exactly one of value or valueFrom"
}]))]
pub struct HeaderValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<HeaderValueSource>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderValueSource {
    pub secret_key_ref: SecretKeySelector,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceSampling {
    #[serde(default = "crate::inference_cluster::default_sample_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct ModelServiceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observability: Option<ObservabilityStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObservabilityStatus {
    /// The policy in force after defaults, as the function resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<EffectiveObservabilityPolicy>,
    /// Aggregated signals, written by the signal-aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<ServiceMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EffectiveObservabilityPolicy {
    pub metrics_scope: MetricsScope,
    /// Sample rate override, when the service sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_signals: Vec<String>,
    pub traces_enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_protocol: Option<TraceProtocol>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_sampling_ratio: Option<f64>,
    /// Header names sent to the trace backend (values are never surfaced).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces_header_names: Vec<String>,
}

/// P50/P90/P99 of a latency, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LatencyQuantiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMetrics {
    /// The window the numbers cover, e.g. `5m`.
    pub window: String,
    /// RFC 3339 time of this update.
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_seconds: Option<LatencyQuantiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpot_seconds: Option<LatencyQuantiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e2e_seconds: Option<LatencyQuantiles>,
    /// Requests per second over the window.
    #[serde(default)]
    pub request_rate: f64,
    /// Failed requests per second over the window.
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_rate: Option<f64>,
    /// Prefix-cache hit rate across the fleet (opted-in services only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_prefix_cache_hit_rate: Option<f64>,
    /// Fraction of this service's distinct prefixes also seen on another cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_coverage: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_token: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterBreakdown>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterBreakdown {
    pub cluster: String,
    #[serde(default)]
    pub request_rate: f64,
    #[serde(default)]
    pub error_rate: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_seconds: Option<LatencyQuantiles>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_hit_rate: Option<f64>,
}
