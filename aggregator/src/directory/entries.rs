//! One directory entry per XR, parsed from the object the API server returns.
//! Only the fields this project owns are parsed (never trace headers, whose
//! literal values may be credentials), so a parse error cannot echo a secret.

use std::collections::{BTreeMap, BTreeSet};

use apis::{
    GpuPrice, MetricsPolicy, MetricsScope, ObservabilitySpec, PrivacyScope, RetentionDuration,
    SecretKeySelector, ServiceMetrics, SignalKind, SignalsSpec, SignalsStatus,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Comma-separated model names a ModelService's series carry, when they differ
/// from the defaults (`status.model`, `<namespace>/<name>`, `<name>`).
pub const MODELS_ANNOTATION: &str = "signals.modelplane.ai/models";

/// What the directory knows about one InferenceCluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterEntry {
    pub name: String,
    /// `metadata.uid` (the API server always sets it): the token issuer's
    /// owner reference, so deleting the XR deletes its token Secret.
    pub uid: Option<String>,
    /// False when the XR has no `spec.signals` (no agent is rendered).
    pub signals_configured: bool,
    /// `spec.signals.kinds[].name`, in spec order.
    pub enabled_kinds: Vec<SignalKind>,
    pub sample_rates: BTreeMap<SignalKind, f64>,
    pub privacy: PrivacyScope,
    pub retention: RetentionDuration,
    /// `spec.signals.cost.pricing`, keyed by GPU SKU.
    pub pricing: BTreeMap<String, GpuPrice>,
    /// Secret (name and key only) holding the cluster's ingest token.
    pub token_secret_ref: Option<SecretKeySelector>,
    /// `spec.signals.traceForwarding.namespaces`: the tenants whose raw spans
    /// this cluster's agent sends on the trace path. The forward router
    /// routes raw spans from this cluster (as authenticated) only for these
    /// tenants, whatever tenant the spans claim.
    pub trace_forwarding_namespaces: BTreeSet<String>,
    /// `status.signals` as last observed on the XR (seeds the status writer
    /// after a restart so it neither rewrites nor forgets what is there).
    pub observed_status: Option<SignalsStatus>,
}

impl ClusterEntry {
    /// A cluster with default signal settings and nothing enabled.
    pub fn new(name: impl Into<String>) -> Self {
        ClusterEntry {
            name: name.into(),
            uid: None,
            signals_configured: false,
            enabled_kinds: Vec::new(),
            sample_rates: BTreeMap::new(),
            privacy: PrivacyScope::default(),
            retention: RetentionDuration::default(),
            pricing: BTreeMap::new(),
            token_secret_ref: None,
            trace_forwarding_namespaces: BTreeSet::new(),
            observed_status: None,
        }
    }

    /// Equal apart from the observed status (which the status writer's own
    /// writes change, and which must not wake it up again).
    pub fn same_spec(&self, other: &ClusterEntry) -> bool {
        let strip = |e: &ClusterEntry| ClusterEntry {
            observed_status: None,
            ..e.clone()
        };
        strip(self) == strip(other)
    }
}

/// What the directory knows about one ModelService.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceEntry {
    /// The namespace: the tenant whose series this service's are.
    pub tenant: String,
    pub name: String,
    /// Model names (series `model`) this service's data carries.
    pub models: Vec<String>,
    pub scope: MetricsScope,
    /// `status.observability.metrics` as last observed on the XR.
    pub observed_metrics: Option<ServiceMetrics>,
    /// With `spec.observability.traces.enabled`: the trace forwarder's
    /// `host:port` from `status.observability.traces.address` (written by
    /// function-signals), when it names a Service in the tenant's own
    /// namespace. Only these services' spans are forwarded.
    pub trace_forwarder: Option<String>,
}

impl ServiceEntry {
    pub fn is_fleet_opted_in(&self) -> bool {
        self.scope == MetricsScope::Fleet
    }

    pub fn serves(&self, model: &str) -> bool {
        self.models.iter().any(|m| m == model)
    }

    /// Equal apart from the observed metrics (see [`ClusterEntry::same_spec`]).
    pub fn same_spec(&self, other: &ServiceEntry) -> bool {
        let strip = |e: &ServiceEntry| ServiceEntry {
            observed_metrics: None,
            ..e.clone()
        };
        strip(self) == strip(other)
    }
}

/// Why an XR could not be read; names the object and the field, never values
/// of fields this project does not own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{object}: {message}")]
pub struct SpecError {
    pub object: String,
    pub message: String,
}

fn field<'a>(object: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(object, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

fn parse_at<T: DeserializeOwned>(
    object: &Value,
    path: &[&str],
    who: &str,
) -> Result<Option<T>, SpecError> {
    let Some(raw) = field(object, path) else {
        return Ok(None);
    };
    serde_path_to_error::deserialize(raw.clone())
        .map(Some)
        .map_err(|error| SpecError {
            object: who.to_string(),
            message: format!("{}.{}: {}", path.join("."), error.path(), error.inner()),
        })
}

fn name_of(object: &Value, kind: &str) -> Result<String, SpecError> {
    field(object, &["metadata", "name"])
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| SpecError {
            object: kind.to_string(),
            message: "metadata.name is missing".into(),
        })
}

/// Reads an InferenceCluster object (as JSON) into a [`ClusterEntry`].
pub fn cluster_from_object(object: &Value) -> Result<ClusterEntry, SpecError> {
    let name = name_of(object, "InferenceCluster")?;
    let who = format!("InferenceCluster {name}");
    let signals: Option<SignalsSpec> = parse_at(object, &["spec", "signals"], &who)?;
    if let Some(signals) = &signals {
        signals.validate().map_err(|errors| SpecError {
            object: who.clone(),
            message: errors.to_string(),
        })?;
    }
    // A malformed status is not the spec's fault: keep the entry, drop the seed.
    let observed_status = parse_at(object, &["status", "signals"], &who).unwrap_or_else(|error| {
        tracing::warn!(%error, "ignoring unreadable status.signals");
        None
    });
    let mut entry = ClusterEntry::new(name);
    entry.uid = field(object, &["metadata", "uid"])
        .and_then(Value::as_str)
        .map(str::to_string);
    entry.observed_status = observed_status;
    if let Some(signals) = signals {
        entry.signals_configured = true;
        entry.enabled_kinds = signals.kinds.iter().map(|k| k.name).collect();
        entry.sample_rates = signals
            .kinds
            .iter()
            .map(|k| (k.name, k.sample_rate))
            .collect();
        entry.privacy = signals.privacy.scope;
        entry.retention = signals.retention.sketches;
        entry.pricing = signals
            .cost
            .map(|c| c.pricing.into_iter().map(|p| (p.gpu.clone(), p)).collect())
            .unwrap_or_default();
        entry.token_secret_ref = signals.aggregator.and_then(|a| a.token_secret_ref);
        entry.trace_forwarding_namespaces = signals
            .trace_forwarding
            .map(|t| t.namespaces.into_iter().collect())
            .unwrap_or_default();
    }
    Ok(entry)
}

/// Reads a ModelService object (as JSON) into a [`ServiceEntry`].
pub fn service_from_object(object: &Value) -> Result<ServiceEntry, SpecError> {
    let name = name_of(object, "ModelService")?;
    let tenant = field(object, &["metadata", "namespace"])
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .ok_or_else(|| SpecError {
            object: format!("ModelService {name}"),
            message: "metadata.namespace is missing (ModelService is namespaced)".into(),
        })?;
    let who = format!("ModelService {tenant}/{name}");
    let metrics: Option<MetricsPolicy> =
        parse_at(object, &["spec", "observability", "metrics"], &who)?;
    if let Some(metrics) = &metrics {
        let observability = ObservabilitySpec {
            metrics: Some(metrics.clone()),
            traces: None,
        };
        observability.validate().map_err(|errors| SpecError {
            object: who.clone(),
            message: errors.to_string(),
        })?;
    }
    let observed_metrics = parse_at(object, &["status", "observability", "metrics"], &who)
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "ignoring unreadable status.observability.metrics");
            None
        });
    let models = models_of(object, &tenant, &name);
    let traces_on = field(object, &["spec", "observability", "traces", "enabled"])
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let trace_forwarder = field(object, &["status", "observability", "traces", "address"])
        .and_then(Value::as_str)
        .filter(|address| traces_on && is_forwarder_in(address, &tenant))
        .map(str::to_string);
    Ok(ServiceEntry {
        tenant,
        name,
        models,
        scope: metrics.map(|m| m.scope).unwrap_or_default(),
        observed_metrics,
        trace_forwarder,
    })
}

/// `<service>.<tenant>.svc[.<cluster domain>]:<port>`: a Service in the
/// tenant's namespace, so a status edit cannot send one tenant's spans
/// anywhere else.
pub fn is_forwarder_in(address: &str, tenant: &str) -> bool {
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let mut labels = host.split('.');
    let service = labels.next().unwrap_or_default();
    let dns_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    dns_label(service)
        && labels.next() == Some(tenant)
        && labels.next() == Some("svc")
        && labels.all(dns_label)
        && port.parse::<u16>().is_ok_and(|p| p > 0)
}

fn models_of(object: &Value, tenant: &str, name: &str) -> Vec<String> {
    let annotated: Vec<String> = field(object, &["metadata", "annotations", MODELS_ANNOTATION])
        .and_then(Value::as_str)
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if !annotated.is_empty() {
        return annotated;
    }
    let mut models = Vec::new();
    if let Some(model) = field(object, &["status", "model"]).and_then(Value::as_str) {
        models.push(model.to_string());
    }
    for default in [format!("{tenant}/{name}"), name.to_string()] {
        if !models.contains(&default) {
            models.push(default);
        }
    }
    models
}
