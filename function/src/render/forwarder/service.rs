//! The Service the signal-aggregator sends this ModelService's spans to
//! (OTLP/gRPC only).

use serde_json::{Value, json};

use super::{ForwarderPlan, OTLP_GRPC_PORT};

pub fn service(plan: &ForwarderPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": plan.metadata(),
        "spec": {
            "type": "ClusterIP",
            "selector": plan.selector_labels(),
            "ports": [
                { "name": "otlp-grpc", "port": OTLP_GRPC_PORT, "targetPort": "otlp-grpc", "protocol": "TCP", "appProtocol": "grpc" },
            ],
        },
    })
}
