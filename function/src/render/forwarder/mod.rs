//! The per-ModelService trace forwarder: an OpenTelemetry Collector in the
//! service's namespace that receives the service's spans from the
//! signal-aggregator over OTLP/gRPC, keeps only this service's, samples them
//! and exports them to the tenant's backend. Each file renders one resource;
//! this module resolves what they need ([`ForwarderPlan`]) and names things.
//!
//! Header values from Secrets reach the collector only as env vars
//! (`secretKeyRef`), referenced in the config as `${env:VAR}`: never in the
//! ConfigMap, the checksum or anything else this function returns.

pub mod config;
pub mod config_map;
pub mod deployment;
pub mod service;
pub mod service_account;

use std::collections::BTreeMap;

use apis::{SecretKeySelector, TraceProtocol, TracesSpec};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::input::{DEFAULT_COLLECTOR_IMAGE, Input};

/// `app.kubernetes.io/name` of every forwarder resource.
pub const FORWARDER_APP: &str = "signals-trace-forwarder";
/// Label naming the ModelService a forwarder serves.
pub const MODEL_SERVICE_LABEL: &str = "signals.modelplane.ai/model-service";
/// Resource attributes the aggregator stamps on every span it forwards
/// (overwriting whatever the sender claimed); the forwarder keeps only spans
/// carrying its own service's values.
pub const TENANT_ATTRIBUTE: &str = "modelplane.tenant";
pub const SERVICE_ATTRIBUTE: &str = "modelplane.service";
/// The one port the forwarder listens on for spans (OTLP/gRPC).
pub const OTLP_GRPC_PORT: u16 = 4317;
pub const HEALTH_PORT: u16 = 13133;
pub const TELEMETRY_PORT: u16 = 8888;

/// Composition resource names. Stable: renaming one recreates the resource.
pub mod keys {
    pub const SERVICE_ACCOUNT: &str = "signals-trace-forwarder-serviceaccount";
    pub const CONFIG_MAP: &str = "signals-trace-forwarder-config";
    pub const DEPLOYMENT: &str = "signals-trace-forwarder-deployment";
    pub const SERVICE: &str = "signals-trace-forwarder-service";
    pub const ALL: [&str; 4] = [SERVICE_ACCOUNT, CONFIG_MAP, DEPLOYMENT, SERVICE];
}

/// One header the exporter sends.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderSource {
    /// Written into the config as given (`$` escaped).
    Literal(String),
    /// `prefix` + the value of env var `var`, which `secretKeyRef` fills.
    Secret {
        prefix: &'static str,
        var: String,
        secret: SecretKeySelector,
    },
}

/// Everything the forwarder's renderers need, resolved once from the XR.
#[derive(Debug, Clone)]
pub struct ForwarderPlan {
    /// The ModelService's name and namespace (the tenant).
    pub service: String,
    pub namespace: String,
    /// Name of the ServiceAccount, ConfigMap, Deployment and Service.
    pub name: String,
    pub image: String,
    /// The backend's URL as the spec (or the preset's default) gives it.
    pub endpoint: String,
    pub protocol: TraceProtocol,
    pub sampling_ratio: f64,
    /// `Langfuse`, `LangSmith`, `Phoenix`, `Datadog` or `OTLP`.
    pub backend: &'static str,
    /// By header name, sorted.
    pub headers: BTreeMap<String, HeaderSource>,
    /// Resource attributes set on every exported span (Phoenix's project).
    pub resource_attributes: BTreeMap<String, String>,
}

impl ForwarderPlan {
    /// `traces` must have passed `ObservabilitySpec::validate`.
    pub fn new(
        service: &str,
        namespace: &str,
        traces: &TracesSpec,
        input: &Input,
    ) -> ForwarderPlan {
        let mut headers = BTreeMap::new();
        let mut resource_attributes = BTreeMap::new();
        let mut default_endpoint = None;
        let mut backend = "OTLP";
        let mut secret_var = 0usize;
        let mut next_var = |name: &str| {
            let var = format!("MODELPLANE_TRACE_SECRET_{secret_var}_{}", env_suffix(name));
            secret_var += 1;
            var
        };
        if let Some(preset) = &traces.preset {
            backend = preset.backend();
            if let Some(langfuse) = &preset.langfuse {
                default_endpoint = Some("https://cloud.langfuse.com/api/public/otel".to_string());
                headers.insert(
                    "Authorization".to_string(),
                    HeaderSource::Secret {
                        prefix: "Basic ",
                        var: next_var("Authorization"),
                        secret: langfuse.basic_auth.clone(),
                    },
                );
                headers.insert(
                    "x-langfuse-ingestion-version".to_string(),
                    HeaderSource::Literal("4".to_string()),
                );
            }
            if let Some(smith) = &preset.lang_smith {
                default_endpoint = Some("https://api.smith.langchain.com/otel".to_string());
                headers.insert(
                    "x-api-key".to_string(),
                    HeaderSource::Secret {
                        prefix: "",
                        var: next_var("x-api-key"),
                        secret: smith.api_key.clone(),
                    },
                );
                if let Some(project) = &smith.project {
                    headers.insert(
                        "Langsmith-Project".to_string(),
                        HeaderSource::Literal(project.clone()),
                    );
                }
            }
            if let Some(phoenix) = &preset.phoenix {
                if let Some(key) = &phoenix.api_key {
                    headers.insert(
                        "Authorization".to_string(),
                        HeaderSource::Secret {
                            prefix: "Bearer ",
                            var: next_var("Authorization"),
                            secret: key.clone(),
                        },
                    );
                }
                if let Some(project) = &phoenix.project {
                    resource_attributes
                        .insert("openinference.project.name".to_string(), project.clone());
                }
            }
            if let Some(datadog) = &preset.datadog {
                let site = datadog.site.as_deref().unwrap_or("datadoghq.com");
                default_endpoint = Some(format!("https://otlp.{site}"));
                headers.insert(
                    "dd-api-key".to_string(),
                    HeaderSource::Secret {
                        prefix: "",
                        var: next_var("dd-api-key"),
                        secret: datadog.api_key.clone(),
                    },
                );
            }
        }
        for (name, value) in &traces.headers {
            let source = match (&value.value, &value.value_from) {
                (Some(literal), _) => HeaderSource::Literal(literal.clone()),
                (None, Some(from)) => HeaderSource::Secret {
                    prefix: "",
                    var: next_var(name),
                    secret: from.secret_key_ref.clone(),
                },
                (None, None) => continue,
            };
            headers.insert(name.clone(), source);
        }
        ForwarderPlan {
            service: service.to_string(),
            namespace: namespace.to_string(),
            name: forwarder_name(service),
            image: input
                .collector_image
                .clone()
                .unwrap_or_else(|| DEFAULT_COLLECTOR_IMAGE.to_string()),
            endpoint: traces
                .endpoint
                .clone()
                .or(default_endpoint)
                .unwrap_or_default(),
            protocol: traces.protocol,
            sampling_ratio: traces.sampling.as_ref().map_or(1.0, |s| s.ratio),
            backend,
            headers,
            resource_attributes,
        }
    }

    /// Where the aggregator sends this service's spans.
    pub fn address(&self) -> String {
        forwarder_address(&self.service, &self.namespace)
    }

    /// The env vars filled from Secrets, by var name.
    pub fn secret_env(&self) -> Vec<(&str, &SecretKeySelector)> {
        self.headers
            .values()
            .filter_map(|h| match h {
                HeaderSource::Secret { var, secret, .. } => Some((var.as_str(), secret)),
                HeaderSource::Literal(_) => None,
            })
            .collect()
    }

    pub fn selector_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "app.kubernetes.io/name".to_string(),
                FORWARDER_APP.to_string(),
            ),
            ("app.kubernetes.io/instance".to_string(), self.name.clone()),
            (
                "app.kubernetes.io/component".to_string(),
                "trace-forwarder".to_string(),
            ),
        ])
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels();
        labels.insert(
            "app.kubernetes.io/part-of".to_string(),
            "modelplane-signals".to_string(),
        );
        labels.insert(
            "app.kubernetes.io/managed-by".to_string(),
            "function-signals".to_string(),
        );
        labels.insert(
            "app.kubernetes.io/version".to_string(),
            super::label_value(super::image_tag(&self.image)),
        );
        labels.insert(MODEL_SERVICE_LABEL.to_string(), label_safe(&self.service));
        labels
    }

    pub fn metadata(&self) -> Value {
        json!({ "name": self.name, "namespace": self.namespace, "labels": self.labels() })
    }
}

/// The forwarder's resource name for a ModelService: `traces-<service>`, a
/// DNS-1035 label (Services need one); names that do not fit (dots, too
/// long) are shortened with a hash so two services never share one.
pub fn forwarder_name(service: &str) -> String {
    let plain = format!("traces-{service}");
    let fits = plain.len() <= 63
        && plain
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if fits {
        return plain;
    }
    let digest = Sha256::digest(service.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let cleaned: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(63 - "traces-".len() - 9)
        .collect();
    format!("traces-{}-{hash}", cleaned.trim_end_matches('-'))
}

/// `host:port` of a service's forwarder, as the aggregator dials it.
pub fn forwarder_address(service: &str, namespace: &str) -> String {
    format!(
        "{}.{namespace}.svc:{OTLP_GRPC_PORT}",
        forwarder_name(service)
    )
}

/// A label value from a name that may be longer than 63 characters.
fn label_safe(name: &str) -> String {
    if name.len() <= 63 {
        name.to_string()
    } else {
        forwarder_name(name)
    }
}

/// An env var name part: uppercase letters, digits and `_`.
fn env_suffix(header: &str) -> String {
    header
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The forwarder's resources, keyed by composition resource name.
pub fn manifests(plan: &ForwarderPlan) -> BTreeMap<String, Value> {
    let config_yaml = config::render_yaml(plan);
    BTreeMap::from([
        (
            keys::SERVICE_ACCOUNT.to_string(),
            service_account::service_account(plan),
        ),
        (
            keys::CONFIG_MAP.to_string(),
            config_map::config_map(plan, &config_yaml),
        ),
        (
            keys::DEPLOYMENT.to_string(),
            deployment::deployment(plan, &config_yaml),
        ),
        (keys::SERVICE.to_string(), service::service(plan)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        assert_eq!(forwarder_name("chat"), "traces-chat");
        let dotted = forwarder_name("chat.v2");
        assert!(dotted.starts_with("traces-chat-v2-"), "{dotted}");
        let long = forwarder_name(&"a".repeat(200));
        assert!(long.len() <= 63, "{long}");
        assert_ne!(
            forwarder_name(&"a".repeat(200)),
            forwarder_name(&"a".repeat(201))
        );
        assert_eq!(
            forwarder_address("chat", "team-a"),
            "traces-chat.team-a.svc:4317"
        );
    }
}
