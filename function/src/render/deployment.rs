//! The collector Deployment: pinned image, config from the ConfigMap, every
//! listener on the pod IP, probes on health_check, non-root with a read-only
//! root filesystem, and a checksum of the exact config bytes on the pod
//! template so a config change rolls the pods (and the ingest token's
//! generation, so a token rotation does too).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::collector_config::{
    HEALTH_PORT, OTLP_GRPC_PORT, OTLP_HTTP_PORT, TELEMETRY_PORT, collector_args,
};
use super::token::POD_GENERATION_ANNOTATION;
use super::{
    AGENT_NAME, AgentPlan, CHECKSUM_ANNOTATION, CONFIG_DIR, CONFIG_KEY, CONFIG_MAP_NAME, TOKEN_ENV,
    common_labels, metadata, selector_labels,
};

/// The image's user (`USER 10001:10001` in the collector Dockerfile).
const COLLECTOR_UID: i64 = 10001;
const DEFAULT_REQUESTS: [(&str, &str); 2] = [("cpu", "100m"), ("memory", "256Mi")];
const DEFAULT_LIMITS: [(&str, &str); 2] = [("cpu", "1"), ("memory", "1Gi")];
/// GOMEMLIMIT as a share of the memory limit, leaving headroom for non-heap
/// memory (the memory_limiter README's recommendation).
const GOMEMLIMIT_PERCENT: u128 = 80;

pub fn config_checksum(config_yaml: &str) -> String {
    let digest = Sha256::digest(config_yaml.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn deployment(plan: &AgentPlan, config_yaml: &str) -> Result<Value, String> {
    let (requests, limits) = resources(plan)?;
    let memory_limit = parse_quantity(&limits["memory"]).ok_or_else(|| {
        format!(
            "spec.signals.agent.resources.limits.memory: {:?} is not a quantity",
            limits["memory"]
        )
    })?;
    let gomemlimit_mib = (memory_limit * GOMEMLIMIT_PERCENT / 100) >> 20;
    let replicas = plan
        .signals
        .agent
        .as_ref()
        .and_then(|a| a.replicas)
        .unwrap_or(1);
    let mut pod_labels = common_labels(plan);
    pod_labels.extend(selector_labels(plan));
    let health = json!({ "httpGet": { "path": "/", "port": "health" } });
    let mut pod_annotations = BTreeMap::from([(
        CHECKSUM_ANNOTATION.to_string(),
        config_checksum(config_yaml),
    )]);
    if let Some(generation) = plan.token_generation {
        pod_annotations.insert(
            POD_GENERATION_ANNOTATION.to_string(),
            generation.to_string(),
        );
    }

    Ok(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(plan, AGENT_NAME, Some(&plan.namespace)),
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": selector_labels(plan) },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": pod_annotations,
                },
                "spec": {
                    "serviceAccountName": AGENT_NAME,
                    "automountServiceAccountToken": true,
                    "securityContext": {
                        "runAsNonRoot": true,
                        "runAsUser": COLLECTOR_UID,
                        "runAsGroup": COLLECTOR_UID,
                        "fsGroup": COLLECTOR_UID,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    "containers": [{
                        "name": "otel-collector",
                        "image": plan.image,
                        "imagePullPolicy": "IfNotPresent",
                        "args": collector_args(plan),
                        "env": [
                            { "name": "MY_POD_IP", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "status.podIP" } } },
                            { "name": "GOMEMLIMIT", "value": format!("{gomemlimit_mib}MiB") },
                            { "name": TOKEN_ENV, "valueFrom": { "secretKeyRef": {
                                "name": plan.token_secret.name, "key": plan.token_secret.key, "optional": false,
                            } } },
                        ],
                        "ports": [
                            { "name": "otlp-grpc", "containerPort": OTLP_GRPC_PORT, "protocol": "TCP" },
                            { "name": "otlp-http", "containerPort": OTLP_HTTP_PORT, "protocol": "TCP" },
                            { "name": "metrics", "containerPort": TELEMETRY_PORT, "protocol": "TCP" },
                            { "name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP" },
                        ],
                        "livenessProbe": health,
                        "readinessProbe": health,
                        "startupProbe": { "httpGet": { "path": "/", "port": "health" }, "periodSeconds": 2, "failureThreshold": 30 },
                        "resources": { "requests": requests, "limits": limits },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [{ "name": "config", "mountPath": CONFIG_DIR, "readOnly": true }],
                    }],
                    "volumes": [{
                        "name": "config",
                        "configMap": { "name": CONFIG_MAP_NAME, "items": [{ "key": CONFIG_KEY, "path": CONFIG_KEY }] },
                    }],
                },
            },
        },
    }))
}

type Quantities = BTreeMap<String, String>;

/// Defaults overlaid with `spec.signals.agent.resources`, each value checked.
fn resources(plan: &AgentPlan) -> Result<(Quantities, Quantities), String> {
    let overrides = plan
        .signals
        .agent
        .as_ref()
        .and_then(|a| a.resources.clone())
        .unwrap_or_default();
    let merge = |defaults: &[(&str, &str)],
                 given: &Quantities,
                 field: &str|
     -> Result<Quantities, String> {
        let mut out: Quantities = defaults
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (name, value) in given {
            if parse_quantity(value).is_none() {
                return Err(format!(
                    "spec.signals.agent.resources.{field}.{name}: {value:?} is not a Kubernetes quantity such as 500m, 2 or 1Gi"
                ));
            }
            out.insert(name.clone(), value.clone());
        }
        Ok(out)
    };
    Ok((
        merge(&DEFAULT_REQUESTS, &overrides.requests, "requests")?,
        merge(&DEFAULT_LIMITS, &overrides.limits, "limits")?,
    ))
}

/// A Kubernetes quantity in base units (bytes for memory; for CPU the value
/// is only checked, so millicores round down). None when it is not one.
pub fn parse_quantity(raw: &str) -> Option<u128> {
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, suffix) = raw.split_at(split);
    if number.is_empty()
        || number.starts_with('.')
        || number.ends_with('.')
        || number.matches('.').count() > 1
    {
        return None;
    }
    let multiplier: u128 = match suffix {
        "" => 1,
        "m" => return number.parse::<f64>().ok().map(|n| (n / 1000.0) as u128),
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => return None,
    };
    let value: f64 = number.parse().ok()?;
    Some((value * multiplier as f64) as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_quantities() {
        assert_eq!(parse_quantity("1Gi"), Some(1 << 30));
        assert_eq!(parse_quantity("512Mi"), Some(512 << 20));
        assert_eq!(parse_quantity("1.5G"), Some(1_500_000_000));
        assert_eq!(parse_quantity("2"), Some(2));
        assert_eq!(parse_quantity("500m"), Some(0));
        for bad in ["", "Gi", "1GB", "-1Gi", "1..5Gi", ".5Gi", "1 Gi"] {
            assert_eq!(parse_quantity(bad), None, "{bad:?}");
        }
    }
}
