//! `InferenceCluster` (cluster-scoped): the fields under `spec.signals` and
//! `status.signals`, plus the few fields of Modelplane's kind the function reads.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::RetentionDuration;
use crate::schema::{
    CURRENCY_PATTERN, DNS_LABEL_PATTERN, DNS_SUBDOMAIN_PATTERN, HOST_PORT_PATTERN, IMAGE_PATTERN,
    NON_BLANK_PATTERN, SECRET_KEY_PATTERN,
};
use crate::signal_kind::SignalKind;

pub const INFERENCE_CLUSTER_KIND: &str = "InferenceCluster";

/// The parts of an InferenceCluster XR this project reads. Unknown fields (the
/// rest of Modelplane's spec) are ignored, not rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "An InferenceCluster is one Kubernetes cluster that serves models. This definition carries the fields of the fleet signal bus: which signals the cluster's collector agent captures and how they are handled (spec.signals), and whether they flow (status.signals)."
)]
pub struct InferenceCluster {
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// Desired state. Only spec.signals is defined here; the rest is
    /// Modelplane's and is preserved.
    #[serde(default)]
    pub spec: InferenceClusterSpec,
    /// Observed state. status.providerConfigRef is set by Modelplane's cluster
    /// function; status.signals by function-signals and the signal-aggregator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<InferenceClusterStatus>,
}

/// Minimal object metadata: what naming and ownership need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The rest of Modelplane's spec is not this project's: it is preserved, not pruned.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct InferenceClusterSpec {
    /// Which signals this cluster emits and how they are handled. Absent: no agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsSpec>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalsSpec {
    /// Signal kinds to capture, each at most once.
    #[serde(default)]
    #[schemars(length(max = 6), extend("x-kubernetes-validations" = [{
        "rule": "self.all(k, self.exists_one(o, o.name == k.name))",
        "message": "each signal kind may be listed only once"
    }]))]
    pub kinds: Vec<SignalKindPolicy>,
    #[serde(default)]
    pub privacy: PrivacyPolicy,
    #[serde(default)]
    pub retention: RetentionPolicy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostPolicy>,
    /// Overrides for the rendered collector agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<AgentOverrides>,
    /// Where the agent sends what it captures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregator: Option<AggregatorEndpoint>,
    /// The trace path: whose gateway spans also leave the cluster raw
    /// (prompts included) for their ModelServices' own trace backends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_forwarding: Option<TraceForwardingPolicy>,
}

/// Namespaces (tenants) whose spans the agent also sends unredacted, marked
/// for forwarding only: the signal-aggregator never sketches them, and
/// forwards them only for ModelServices with `spec.observability.traces`
/// enabled. Every other span is stripped to the allowlist as always.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TraceForwardingPolicy {
    #[serde(default)]
    #[schemars(
        length(max = 64),
        inner(length(max = 63), pattern(DNS_LABEL_PATTERN)),
        extend("x-kubernetes-list-type" = "set")
    )]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.name in ['RequestLifecycle', 'PrefixHash'] || !has(self.sampleRate) || self.sampleRate == 1.0",
    "message": "only span-derived kinds (RequestLifecycle, PrefixHash) can be sampled; kinds from scraped metrics need sampleRate 1"
}]))]
pub struct SignalKindPolicy {
    pub name: SignalKind,
    /// Fraction of events kept, 0..1. Only span-derived kinds can be thinned.
    #[serde(default = "default_sample_rate")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_rate: f64,
}

pub fn default_sample_rate() -> f64 {
    1.0
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum PrivacyScope {
    /// Aggregates stay within the tenant (namespace) that produced them.
    #[default]
    PerTenant,
    /// Aggregates may join cross-tenant fleet roll-ups.
    Fleet,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivacyPolicy {
    #[serde(default)]
    pub scope: PrivacyScope,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetentionPolicy {
    /// How long sketches are kept, e.g. `30d`.
    #[serde(default)]
    pub sketches: RetentionDuration,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostPolicy {
    #[serde(default)]
    #[schemars(length(max = 64), extend("x-kubernetes-validations" = [{
        "rule": "self.all(p, self.exists_one(o, o.gpu == p.gpu))",
        "message": "each gpu may be priced only once"
    }]))]
    pub pricing: Vec<GpuPrice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GpuPrice {
    /// GPU SKU as the DCGM exporter names it, e.g. `H100-SXM5-80GB`.
    #[schemars(length(min = 1, max = 128), pattern(NON_BLANK_PATTERN))]
    pub gpu: String,
    #[schemars(range(min = 0.0))]
    pub price_per_gpu_hour: f64,
    /// ISO 4217 currency code.
    #[serde(default = "default_currency")]
    #[schemars(pattern(CURRENCY_PATTERN))]
    pub currency: String,
}

pub fn default_currency() -> String {
    "USD".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentOverrides {
    /// Collector image; must be an opentelemetry-collector-k8s build that knows
    /// the component names the function emits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512), pattern(IMAGE_PATTERN))]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Namespace of the agent on the workload cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), pattern(DNS_LABEL_PATTERN))]
    pub namespace: Option<String>,
    /// Namespaces whose engines are scraped; empty means every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 63), pattern(DNS_LABEL_PATTERN)))]
    pub scrape_namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AggregatorEndpoint {
    /// OTLP/gRPC endpoint of the signal-aggregator, `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512), pattern(HOST_PORT_PATTERN))]
    pub endpoint: Option<String>,
    /// Secret (in the agent namespace) holding this cluster's ingest token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    /// Send without TLS (only for in-cluster tests).
    #[serde(default)]
    pub insecure: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeySelector {
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub name: String,
    #[schemars(length(min = 1, max = 253), pattern(SECRET_KEY_PATTERN))]
    pub key: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-preserve-unknown-fields" = true))]
pub struct InferenceClusterStatus {
    /// ProviderConfig that targets the workload cluster (set by Modelplane).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_config_ref: Option<ProviderConfigRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<SignalsStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProviderConfigRef {
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Absent: the kind the function's step input names (ClusterProviderConfig
    /// by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ProviderConfigRefKind>,
}

/// The two provider-kubernetes config kinds an Object can point at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ProviderConfigRefKind {
    /// Namespaced, in the Object's namespace.
    ProviderConfig,
    /// Cluster-scoped.
    ClusterProviderConfig,
}

/// What an operator needs to see that signals flow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignalsStatus {
    #[serde(default)]
    #[schemars(length(max = 6))]
    pub enabled_kinds: Vec<SignalKind>,
    /// RFC 3339 time the aggregator last stored data from this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_flush: Option<String>,
    /// Items the aggregator refused or dropped for this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_events: Option<u64>,
    /// RFC 3339 time of the newest datapoint per kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(k, k in ['RequestLifecycle', 'PrefixHash', 'Capacity', 'ColdStart', 'Cost', 'Reliability'])",
        "message": "keys must be signal kind names"
    }]))]
    pub last_datapoint: BTreeMap<SignalKind, String>,
    /// Whether the cluster's agent reported within the last few flush intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_reporting: Option<bool>,
    /// GPU cost over the aggregator's status window (with `spec.signals.cost.pricing`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<ClusterCostStatus>,
    /// The ingest token the aggregator issued for this cluster (never its value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingest_token: Option<IngestTokenStatus>,
}

/// Where the cluster's ingest token lives on the control plane, and which
/// generation of it is current: the function rolls the agent when it changes,
/// because the agent reads the token once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IngestTokenStatus {
    /// Control-plane Secret holding the token under key `token`.
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: String,
    #[schemars(length(min = 1, max = 63))]
    pub secret_namespace: String,
    /// Starts at 1; each rotation adds one.
    #[schemars(range(min = 1))]
    pub generation: i64,
    /// RFC 3339 time the current token was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
}

/// GPU-hours and their price over a window, from the Cost signal's GPU time
/// (or Capacity's GPU count when no GPU time is reported) and `cost.pricing`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCostStatus {
    /// The window the numbers cover, e.g. `5m`.
    pub window: String,
    /// GPU-hours used in the window, every SKU.
    pub gpu_hours: f64,
    /// GPU-hours of priced SKUs times their price.
    pub cost: f64,
    /// `cost` per priced GPU-hour; absent when no GPU-hour is priced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_gpu_hour: Option<f64>,
    /// ISO 4217 currency of `cost`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}
