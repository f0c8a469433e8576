//! `ModelService` (namespaced; the namespace is the tenant): the fields under
//! `spec.observability` and `status.observability`.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::inference_cluster::{ObjectMeta, SecretKeySelector};
use crate::schema::{DNS_SUBDOMAIN_PATTERN, SIGNAL_NAME_PATTERN, TRACE_ENDPOINT_PATTERN};

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
    "rule": "!has(self.enabled) || !self.enabled || has(self.endpoint) || (has(self.preset) && !has(self.preset.phoenix))",
    "message": "endpoint is required when traces are enabled (a Langfuse, LangSmith or Datadog preset has a default)"
}]))]
pub struct TracesSpec {
    #[serde(default)]
    pub enabled: bool,
    /// The tenant's OTLP endpoint, e.g. `https://cloud.langfuse.com/api/public/otel`.
    /// For HTTP the exporter appends `/v1/traces`. No user-info or query
    /// string: credentials belong in `headers` (from a Secret), and the URL is
    /// written into the forwarder's ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048), pattern(TRACE_ENDPOINT_PATTERN))]
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
    /// A known backend: its endpoint default, protocol and auth headers.
    /// `headers` add to the preset's (a name both set is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<TracePreset>,
}

/// Exactly one known backend. Credentials only through Secrets in the
/// service's namespace; they reach the forwarder as env vars.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "[has(self.langfuse), has(self.langSmith), has(self.phoenix), has(self.datadog)].exists_one(x, x)",
    "message": "set exactly one of langfuse, langSmith, phoenix or datadog"
}]))]
pub struct TracePreset {
    /// Langfuse (`/api/public/otel`, default `https://cloud.langfuse.com/api/public/otel`):
    /// `Authorization: Basic` from the keys, `x-langfuse-ingestion-version: 4`; HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub langfuse: Option<LangfusePreset>,
    /// LangSmith (default `https://api.smith.langchain.com/otel`): `x-api-key`,
    /// optional `Langsmith-Project`; HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lang_smith: Option<LangSmithPreset>,
    /// Arize Phoenix (endpoint required, e.g. `http://phoenix:6006`):
    /// `Authorization: Bearer` when an API key is given, the project as resource
    /// attribute `openinference.project.name`; HTTP/protobuf only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phoenix: Option<PhoenixPreset>,
    /// Datadog's OTLP traces intake (default `https://otlp.<site>`): `dd-api-key`; HTTP only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datadog: Option<DatadogPreset>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LangfusePreset {
    /// A Secret key holding the Basic credential, base64 of
    /// `<public key>:<secret key>` (`pk-lf-...:sk-lf-...`), e.g. from
    /// `kubectl create secret generic langfuse --from-literal=auth=$(printf %s "$PK:$SK" | base64 -w0)`.
    pub basic_auth: SecretKeySelector,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LangSmithPreset {
    pub api_key: SecretKeySelector,
    /// Sent as `Langsmith-Project`; LangSmith's default project otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), pattern(crate::schema::NON_BLANK_PATTERN))]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhoenixPreset {
    /// Needed when Phoenix runs with authentication on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretKeySelector>,
    /// Set as resource attribute `openinference.project.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256), pattern(crate::schema::NON_BLANK_PATTERN))]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatadogPreset {
    pub api_key: SecretKeySelector,
    /// The Datadog site, e.g. `datadoghq.eu` (default `datadoghq.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), pattern(DNS_SUBDOMAIN_PATTERN))]
    pub site: Option<String>,
}

impl TraceProtocol {
    /// The name the spec uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            TraceProtocol::HttpProtobuf => "http/protobuf",
            TraceProtocol::HttpJson => "http/json",
            TraceProtocol::Grpc => "grpc",
        }
    }
}

impl TracePreset {
    /// The backend's name, as `status.observability.traces.backend` shows it.
    pub fn backend(&self) -> &'static str {
        if self.langfuse.is_some() {
            "Langfuse"
        } else if self.lang_smith.is_some() {
            "LangSmith"
        } else if self.phoenix.is_some() {
            "Phoenix"
        } else {
            "Datadog"
        }
    }
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
    /// The trace forwarder, written by function-signals when traces are enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces: Option<TracesStatus>,
}

/// Where this service's spans go on the control plane, and whether that is up.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracesStatus {
    /// The forwarder's OTLP/gRPC address in the service's namespace
    /// (`host:port`), where the signal-aggregator sends this service's spans.
    pub address: String,
    /// The forwarder Deployment's name.
    pub forwarder: String,
    /// True when the forwarder's Deployment is available.
    pub ready: bool,
    /// The backend the forwarder exports to: a preset name or `OTLP`.
    pub backend: String,
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
