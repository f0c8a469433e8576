//! The forwarder Deployment, hardened like the agent's (non-root, read-only
//! root filesystem, no capabilities, RuntimeDefault seccomp, probes on
//! health_check), with a checksum of the exact config bytes on the pod
//! template so a config change rolls the pods. Secret header values come in
//! through `secretKeyRef` env vars (`optional: false`, so a missing Secret or
//! key keeps the pod from starting, visibly); only the references are here.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::config::{CONFIG_DIR, CONFIG_KEY, collector_args};
use super::{ForwarderPlan, HEALTH_PORT, OTLP_GRPC_PORT, TELEMETRY_PORT};
use crate::render::CHECKSUM_ANNOTATION;
use crate::render::deployment::config_checksum;

const COLLECTOR_UID: i64 = 10001;

pub fn deployment(plan: &ForwarderPlan, config_yaml: &str) -> Value {
    let mut env = vec![
        json!({ "name": "MY_POD_IP", "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "status.podIP" } } }),
        // 80 % of the memory limit below.
        json!({ "name": "GOMEMLIMIT", "value": "204MiB" }),
    ];
    for (var, secret) in plan.secret_env() {
        env.push(json!({ "name": var, "valueFrom": { "secretKeyRef": {
            "name": secret.name, "key": secret.key, "optional": false,
        } } }));
    }
    let health = json!({ "httpGet": { "path": "/", "port": "health" } });
    let pod_annotations = BTreeMap::from([(
        CHECKSUM_ANNOTATION.to_string(),
        config_checksum(config_yaml),
    )]);
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": plan.metadata(),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": plan.selector_labels() },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
            "template": {
                "metadata": { "labels": plan.labels(), "annotations": pod_annotations },
                "spec": {
                    "serviceAccountName": plan.name,
                    "automountServiceAccountToken": false,
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
                        "args": collector_args(),
                        "env": env,
                        "ports": [
                            { "name": "otlp-grpc", "containerPort": OTLP_GRPC_PORT, "protocol": "TCP" },
                            { "name": "metrics", "containerPort": TELEMETRY_PORT, "protocol": "TCP" },
                            { "name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP" },
                        ],
                        "livenessProbe": health,
                        "readinessProbe": health,
                        "startupProbe": { "httpGet": { "path": "/", "port": "health" }, "periodSeconds": 2, "failureThreshold": 30 },
                        "resources": {
                            "requests": { "cpu": "50m", "memory": "128Mi" },
                            "limits": { "cpu": "1", "memory": "256Mi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "readOnlyRootFilesystem": true,
                            "capabilities": { "drop": ["ALL"] },
                        },
                        "volumeMounts": [{ "name": "config", "mountPath": CONFIG_DIR, "readOnly": true }],
                    }],
                    "volumes": [{
                        "name": "config",
                        "configMap": { "name": plan.name, "items": [{ "key": CONFIG_KEY, "path": CONFIG_KEY }] },
                    }],
                },
            },
        },
    })
}
