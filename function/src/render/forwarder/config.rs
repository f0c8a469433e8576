//! The forwarder's collector config: OTLP/gRPC in from the aggregator, a
//! filter that keeps only this service's spans (the aggregator stamps
//! tenant and service; anything else is dropped, whatever it claims), the
//! sampler, the preset's resource attributes, and one exporter to the
//! tenant's backend. Printed by the agent's YAML printer, so the same spec
//! gives the same bytes. test/collector/test_forwarder_validate.py runs
//! every shape through the real otelcol-k8s `validate`.

use apis::TraceProtocol;
use serde_json::{Map, Value, json};

use super::{
    ForwarderPlan, HEALTH_PORT, HeaderSource, OTLP_GRPC_PORT, SERVICE_ATTRIBUTE, TELEMETRY_PORT,
    TENANT_ATTRIBUTE,
};

pub const CONFIG_KEY: &str = "collector.yaml";
pub const CONFIG_DIR: &str = "/conf";

pub fn render_yaml(plan: &ForwarderPlan) -> String {
    crate::render::yaml::to_yaml(&config(plan))
}

/// The exporter's component id for the plan's protocol.
pub fn exporter_id(plan: &ForwarderPlan) -> &'static str {
    match plan.protocol {
        TraceProtocol::Grpc => "otlp_grpc/backend",
        TraceProtocol::HttpProtobuf | TraceProtocol::HttpJson => "otlp_http/backend",
    }
}

/// An OTTL string literal.
fn ottl_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A literal the collector must not expand: `$` starts env substitution.
fn escape_dollars(s: &str) -> String {
    s.replace('$', "$$")
}

pub fn config(plan: &ForwarderPlan) -> Value {
    let mut processors = Map::new();
    processors.insert(
        "memory_limiter".into(),
        json!({ "check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25 }),
    );
    // A span is dropped when any condition is true.
    processors.insert(
        "filter/this_service".into(),
        json!({
            "error_mode": "ignore",
            "traces": { "span": [format!(
                "resource.attributes[{}] != {} or resource.attributes[{}] != {}",
                ottl_string(TENANT_ATTRIBUTE), ottl_string(&plan.namespace),
                ottl_string(SERVICE_ATTRIBUTE), ottl_string(&plan.service),
            )] },
        }),
    );
    let mut chain = vec!["memory_limiter", "filter/this_service"];
    if plan.sampling_ratio < 1.0 {
        processors.insert(
            "probabilistic_sampler".into(),
            json!({ "sampling_percentage": percentage(plan.sampling_ratio) }),
        );
        chain.push("probabilistic_sampler");
    }
    if !plan.resource_attributes.is_empty() {
        let attributes: Vec<Value> = plan
            .resource_attributes
            .iter()
            .map(|(key, value)| json!({ "key": key, "value": escape_dollars(value), "action": "upsert" }))
            .collect();
        processors.insert(
            "resource/backend".into(),
            json!({ "attributes": attributes }),
        );
        chain.push("resource/backend");
    }
    let exporter = exporter_id(plan);
    json!({
        "extensions": { "health_check": { "endpoint": format!("${{env:MY_POD_IP}}:{HEALTH_PORT}") } },
        "receivers": { "otlp": { "protocols": {
            "grpc": { "endpoint": format!("${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}") },
        } } },
        "processors": processors,
        "exporters": { exporter: exporter_config(plan) },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {
                "metrics": { "readers": [{ "pull": { "exporter": { "prometheus": {
                    "host": "${env:MY_POD_IP}", "port": TELEMETRY_PORT,
                } } } }] },
            },
            "pipelines": { "traces": {
                "receivers": ["otlp"], "processors": chain, "exporters": [exporter],
            } },
        },
    })
}

fn exporter_config(plan: &ForwarderPlan) -> Value {
    let headers: Map<String, Value> = plan
        .headers
        .iter()
        .map(|(name, source)| {
            let value = match source {
                HeaderSource::Literal(value) => escape_dollars(value),
                HeaderSource::Secret { prefix, var, .. } => format!("{prefix}${{env:{var}}}"),
            };
            (name.clone(), Value::String(value))
        })
        .collect();
    let mut exporter = json!({
        "compression": "gzip",
        "timeout": "10s",
        // Bounded: a backend that is down costs at most this many batches of
        // memory, then the oldest are refused (counted in otelcol_exporter_*).
        "sending_queue": { "enabled": true, "num_consumers": 2, "queue_size": 1000, "batch": {} },
        "retry_on_failure": {
            "enabled": true, "initial_interval": "5s", "max_interval": "30s", "max_elapsed_time": "300s",
        },
    });
    if !headers.is_empty() {
        exporter["headers"] = Value::Object(headers);
    }
    match plan.protocol {
        TraceProtocol::Grpc => {
            let (scheme, rest) = plan
                .endpoint
                .split_once("://")
                .unwrap_or(("https", &plan.endpoint));
            exporter["endpoint"] = json!(rest.trim_end_matches('/'));
            exporter["tls"] = json!({ "insecure": scheme == "http" });
        }
        TraceProtocol::HttpProtobuf | TraceProtocol::HttpJson => {
            // otlp_http appends /v1/traces to the endpoint.
            exporter["endpoint"] = json!(escape_dollars(plan.endpoint.trim_end_matches('/')));
            exporter["encoding"] = json!(if plan.protocol == TraceProtocol::HttpJson {
                "json"
            } else {
                "proto"
            });
        }
    }
    exporter
}

/// 0..1 as the sampler's 0..100, without float noise.
fn percentage(ratio: f64) -> f64 {
    (ratio * 100.0 * 1e6).round() / 1e6
}

/// The collector's command line.
pub fn collector_args() -> Vec<String> {
    vec![format!("--config={CONFIG_DIR}/{CONFIG_KEY}")]
}
