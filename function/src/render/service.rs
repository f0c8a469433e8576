//! The Service gateways and engines send OTLP spans to.

use serde_json::{Value, json};

use super::collector_config::{OTLP_GRPC_PORT, OTLP_HTTP_PORT};
use super::{AGENT_NAME, AgentPlan, metadata, selector_labels};

pub fn service(plan: &AgentPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(plan, AGENT_NAME, Some(&plan.namespace)),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(plan),
            "ports": [
                { "name": "otlp-grpc", "port": OTLP_GRPC_PORT, "targetPort": "otlp-grpc", "protocol": "TCP", "appProtocol": "grpc" },
                { "name": "otlp-http", "port": OTLP_HTTP_PORT, "targetPort": "otlp-http", "protocol": "TCP", "appProtocol": "http" },
            ],
        },
    })
}
