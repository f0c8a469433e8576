//! Renders the per-cluster OpenTelemetry Collector agent from an
//! InferenceCluster's `spec.signals`. Each file renders one kind of resource;
//! this module decides what the agent needs ([`AgentPlan`]) and names things.

pub mod collector_config;
pub mod config_map;
pub mod deployment;
pub mod forwarder;
pub mod model_service;
pub mod object;
pub mod rbac;
pub mod service;
pub mod status;
pub mod token;
pub mod yaml;

use std::collections::BTreeMap;

use apis::{InferenceCluster, SecretKeySelector, SignalKind, SignalsSpec};
use serde_json::{Value, json};
use token::{IssuedSecret, TokenDelivery};

use crate::input::{
    DEFAULT_AGGREGATOR_ENDPOINT, DEFAULT_COLLECTOR_IMAGE, DEFAULT_SYSTEM_NAMESPACE, Input,
};

/// Name of the agent's ServiceAccount, Deployment and Service on the workload cluster.
pub const AGENT_NAME: &str = "signals-agent";
/// Name of the ConfigMap holding the collector config.
pub const CONFIG_MAP_NAME: &str = "signals-agent-config";
/// Key of the collector config in the ConfigMap, mounted at [`CONFIG_DIR`].
pub const CONFIG_KEY: &str = "collector.yaml";
pub const CONFIG_DIR: &str = "/conf";
/// Default Secret (in the agent namespace) with the cluster's ingest token.
pub const DEFAULT_TOKEN_SECRET: &str = "signals-agent-token";
pub const DEFAULT_TOKEN_KEY: &str = "token";
/// Env var the ingest token reaches the collector through (`secretKeyRef`).
pub const TOKEN_ENV: &str = "MODELPLANE_INGEST_TOKEN";
/// Label and annotation prefix of everything this function stamps.
pub const LABEL_PREFIX: &str = "signals.modelplane.ai";
pub const CLUSTER_LABEL: &str = "signals.modelplane.ai/inference-cluster";
pub const CHECKSUM_ANNOTATION: &str = "signals.modelplane.ai/config-checksum";

/// Composition resource names (the keys of desired resources). Stable:
/// renaming one deletes and recreates the resource.
pub mod keys {
    pub const SERVICE_ACCOUNT: &str = "signals-agent-serviceaccount";
    pub const CONFIG_MAP: &str = "signals-agent-config";
    pub const DEPLOYMENT: &str = "signals-agent-deployment";
    pub const SERVICE: &str = "signals-agent-service";
    /// MultiCluster: the Object copying the ingest token to the workload cluster.
    pub const TOKEN: &str = "signals-agent-token";
    pub const CLUSTER_ROLE: &str = "signals-agent-clusterrole";
    pub const CLUSTER_ROLE_BINDING: &str = "signals-agent-clusterrolebinding";

    pub fn role(namespace: &str) -> String {
        format!("signals-agent-role-{namespace}")
    }

    pub fn role_binding(namespace: &str) -> String {
        format!("signals-agent-rolebinding-{namespace}")
    }
}

/// Where a scraped metric comes from (the agent's scrape jobs).
pub use apis::wire::ScrapeJob as Source;

/// A group of span-derived kinds exported through one traces pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanPipeline {
    /// Pipeline and processor suffix, e.g. `request_lifecycle` or `spans`.
    pub suffix: String,
    /// Set as `modelplane.signal` when the pipeline carries exactly one kind.
    pub signal: Option<SignalKind>,
    pub sample_rate: f64,
}

/// Everything the renderers need, resolved once from the XR and the input.
#[derive(Debug, Clone)]
pub struct AgentPlan<'a> {
    /// The InferenceCluster's name: `modelplane.cluster` on every item.
    pub cluster: String,
    pub signals: &'a SignalsSpec,
    pub namespace: String,
    pub image: String,
    pub aggregator_endpoint: String,
    pub aggregator_insecure: bool,
    /// The control-plane Secret the aggregator issues the cluster's token into.
    pub issued_token: IssuedSecret,
    pub token_delivery: TokenDelivery,
    /// The Secret and key the agent reads its token from.
    pub token_secret: SecretKeySelector,
    /// Token generation stamped on the pod template, so a rotation restarts the agent.
    pub token_generation: Option<i64>,
    /// Namespaces scraped and enriched; empty means the whole cluster.
    pub scrape_namespaces: Vec<String>,
    pub kinds: Vec<SignalKind>,
    pub span_pipelines: Vec<SpanPipeline>,
}

impl<'a> AgentPlan<'a> {
    /// `copied_generation`: the token generation the workload cluster's copy
    /// was last seen holding (see [`token::rollout_generation`]).
    pub fn new(
        xr: &InferenceCluster,
        signals: &'a SignalsSpec,
        input: &Input,
        copied_generation: Option<i64>,
    ) -> AgentPlan<'a> {
        let agent = signals.agent.clone().unwrap_or_default();
        let aggregator = signals.aggregator.clone().unwrap_or_default();
        let mut scrape_namespaces = agent.scrape_namespaces.clone();
        scrape_namespaces.sort();
        scrape_namespaces.dedup();
        let cluster = xr.metadata.name.clone().unwrap_or_default();
        let namespace = agent
            .namespace
            .unwrap_or_else(|| DEFAULT_SYSTEM_NAMESPACE.to_string());
        let issued_token = IssuedSecret::for_cluster(&cluster, input.token_namespace());
        let token_delivery =
            TokenDelivery::new(signals, input.mode, &namespace, input.token_namespace());
        AgentPlan {
            cluster,
            signals,
            namespace,
            image: agent
                .image
                .or_else(|| input.collector_image.clone())
                .unwrap_or_else(|| DEFAULT_COLLECTOR_IMAGE.to_string()),
            aggregator_endpoint: aggregator
                .endpoint
                .or_else(|| input.aggregator_endpoint.clone())
                .unwrap_or_else(|| DEFAULT_AGGREGATOR_ENDPOINT.to_string()),
            aggregator_insecure: aggregator.insecure,
            token_secret: token_delivery.secret_key(signals, &issued_token),
            token_generation: token::rollout_generation(token_delivery, xr, copied_generation),
            issued_token,
            token_delivery,
            scrape_namespaces,
            kinds: enabled_kinds(signals),
            span_pipelines: span_pipelines(signals),
        }
    }

    pub fn is_enabled(&self, kind: SignalKind) -> bool {
        self.kinds.contains(&kind)
    }

    /// Whether the agent has span pipelines bound for the sketches.
    pub fn receives_spans(&self) -> bool {
        !self.span_pipelines.is_empty()
    }

    /// Namespaces whose spans also go raw on the trace path, sorted.
    pub fn forward_namespaces(&self) -> Vec<String> {
        let mut namespaces = self
            .signals
            .trace_forwarding
            .as_ref()
            .map(|f| f.namespaces.clone())
            .unwrap_or_default();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    }

    /// Whether the agent receives OTLP at all (its Service and receiver).
    pub fn receives_otlp(&self) -> bool {
        self.receives_spans() || !self.forward_namespaces().is_empty()
    }

    /// Which scrape jobs the enabled kinds need: those exposing a metric the
    /// aggregator maps to one of them.
    pub fn sources(&self) -> Vec<Source> {
        let mut sources: Vec<Source> = self
            .kinds
            .iter()
            .flat_map(|kind| apis::wire::scraped_for(*kind).map(|(family, _)| family.job))
            .collect();
        sources.sort();
        sources.dedup();
        sources
    }

    pub fn image_tag(&self) -> &str {
        image_tag(&self.image)
    }
}

/// The enabled kinds in the canonical order of [`SignalKind::ALL`], so that
/// reordering `spec.signals.kinds` changes nothing downstream.
pub fn enabled_kinds(signals: &SignalsSpec) -> Vec<SignalKind> {
    SignalKind::ALL
        .into_iter()
        .filter(|kind| signals.kinds.iter().any(|k| k.name == *kind))
        .collect()
}

/// Span kinds sharing one sample rate share one pipeline (and are exported
/// once, untagged); kinds with different rates get a pipeline each, tagged
/// with `modelplane.signal`, as CONTRACTS.md specifies.
fn span_pipelines(signals: &SignalsSpec) -> Vec<SpanPipeline> {
    let span_kinds: Vec<(SignalKind, f64)> = SignalKind::ALL
        .into_iter()
        .filter(|kind| kind.is_span_derived())
        .filter_map(|kind| {
            signals
                .kinds
                .iter()
                .find(|k| k.name == kind)
                .map(|k| (kind, k.sample_rate))
        })
        .collect();
    let all_same_rate = span_kinds.windows(2).all(|w| w[0].1 == w[1].1);
    if span_kinds.len() > 1 && all_same_rate {
        return vec![SpanPipeline {
            suffix: "spans".to_string(),
            signal: None,
            sample_rate: span_kinds[0].1,
        }];
    }
    span_kinds
        .into_iter()
        .map(|(kind, rate)| SpanPipeline {
            suffix: snake_case(kind.as_str()),
            signal: Some(kind),
            sample_rate: rate,
        })
        .collect()
}

pub fn snake_case(pascal: &str) -> String {
    let mut out = String::with_capacity(pascal.len() + 4);
    for (i, c) in pascal.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn image_tag(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last_segment = without_digest.rsplit('/').next().unwrap_or(without_digest);
    match last_segment.rsplit_once(':') {
        Some((_, tag)) => tag,
        None => "latest",
    }
}

/// Labels on every agent resource. The first three are the selector, which
/// must never change for the life of the Deployment.
pub fn selector_labels(plan: &AgentPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), AGENT_NAME.to_string()),
        (
            "app.kubernetes.io/instance".to_string(),
            plan.cluster.clone(),
        ),
        (
            "app.kubernetes.io/component".to_string(),
            "telemetry-agent".to_string(),
        ),
    ])
}

pub fn common_labels(plan: &AgentPlan) -> BTreeMap<String, String> {
    let mut labels = selector_labels(plan);
    labels.insert(
        "app.kubernetes.io/version".to_string(),
        label_value(plan.image_tag()),
    );
    labels.insert(
        "app.kubernetes.io/part-of".to_string(),
        "modelplane-signals".to_string(),
    );
    labels.insert(
        "app.kubernetes.io/managed-by".to_string(),
        "function-signals".to_string(),
    );
    labels.insert(CLUSTER_LABEL.to_string(), plan.cluster.clone());
    labels
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`.
fn label_value(raw: &str) -> String {
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(63)
        .collect();
    cleaned
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

pub fn metadata(plan: &AgentPlan, name: &str, namespace: Option<&str>) -> Value {
    let mut meta = json!({ "name": name, "labels": common_labels(plan) });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    meta
}

/// The plain Kubernetes manifests of the agent, keyed by composition resource name.
pub fn agent_manifests(plan: &AgentPlan) -> Result<BTreeMap<String, Value>, String> {
    let config_yaml = collector_config::render_yaml(plan);
    let mut manifests = BTreeMap::new();
    manifests.insert(
        keys::SERVICE_ACCOUNT.to_string(),
        rbac::service_account(plan),
    );
    for (key, manifest) in rbac::roles(plan) {
        manifests.insert(key, manifest);
    }
    manifests.insert(
        keys::CONFIG_MAP.to_string(),
        config_map::config_map(plan, &config_yaml),
    );
    manifests.insert(
        keys::DEPLOYMENT.to_string(),
        deployment::deployment(plan, &config_yaml)?,
    );
    if plan.receives_otlp() {
        manifests.insert(keys::SERVICE.to_string(), service::service(plan));
    }
    Ok(manifests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_tags() {
        assert_eq!(
            image_tag("otel/opentelemetry-collector-k8s:0.159.0"),
            "0.159.0"
        );
        assert_eq!(image_tag("registry:5000/otel/collector"), "latest");
        assert_eq!(
            image_tag("registry:5000/otel/collector:1.2@sha256:abc"),
            "1.2"
        );
    }

    #[test]
    fn snake_cases_kind_names() {
        assert_eq!(snake_case("RequestLifecycle"), "request_lifecycle");
        assert_eq!(snake_case("PrefixHash"), "prefix_hash");
    }
}
