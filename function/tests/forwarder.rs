//! A ModelService with traces on: the trace forwarder for each protocol,
//! header form and preset, its readiness in status and conditions, and what
//! is refused. One table; the examples' golden files pin whole renders.

use serde_json::{Value, json};
use support::{Case, Want, case};

mod support;

fn model_service(traces: Value) -> Value {
    json!({
        "meta": { "tag": "t" },
        "observed": { "composite": { "resource": {
            "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
            "metadata": { "name": "chat", "namespace": "team-a" },
            "spec": { "observability": { "traces": traces } },
        } } },
    })
}

fn secret_env(name: &str, key: &str) -> Value {
    json!({ "valueFrom": { "secretKeyRef": { "name": name, "key": key, "optional": false } } })
}

/// The exporter part of the forwarder config.
const HTTP: &str = "forwarder.yaml#/exporters/otlp_http~1backend";
const GRPC: &str = "forwarder.yaml#/exporters/otlp_grpc~1backend";
const CHAIN: &str = "forwarder.yaml#/service/pipelines/traces/processors";

fn observed_ready(mut req: Value) -> Value {
    let resource = |kind: &str, key: &str, extra: Value| {
        let mut r = json!({ "apiVersion": "v1", "kind": kind,
            "metadata": { "name": "traces-chat", "namespace": "team-a",
                "annotations": { "crossplane.io/composition-resource-name": key } } });
        r.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({ "resource": r })
    };
    req["observed"]["resources"] = json!({
        "signals-trace-forwarder-config": resource("ConfigMap", "signals-trace-forwarder-config", json!({})),
        "signals-trace-forwarder-service": resource("Service", "signals-trace-forwarder-service", json!({})),
        "signals-trace-forwarder-serviceaccount": resource("ServiceAccount", "signals-trace-forwarder-serviceaccount", json!({})),
        "signals-trace-forwarder-deployment": resource("Deployment", "signals-trace-forwarder-deployment", json!({
            "apiVersion": "apps/v1",
            "spec": { "replicas": 1 }, "status": { "availableReplicas": 1 },
        })),
    });
    req
}

/// An InferenceCluster in SingleCluster mode with these `spec.signals`.
fn cluster(signals: Value) -> Value {
    json!({
        "meta": { "tag": "t" },
        "input": { "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "SingleCluster" },
        "observed": { "composite": { "resource": {
            "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
            "metadata": { "name": "eu-1" },
            "spec": { "signals": signals },
        } } },
    })
}

fn cases() -> Vec<Case> {
    let plain_http = json!({ "enabled": true, "endpoint": "https://otel.example.com/base/" });
    vec![
        case(
            "plain OTLP over http/protobuf: the base URL, proto encoding, no headers, every span",
            model_service(plain_http.clone()),
            Want::Parts(json!({
                HTTP: {
                    "endpoint": "https://otel.example.com/base", "encoding": "proto", "compression": "gzip",
                    "timeout": "10s",
                    "sending_queue": { "enabled": true, "num_consumers": 2, "queue_size": 1000, "batch": {} },
                    "retry_on_failure": { "enabled": true, "initial_interval": "5s", "max_interval": "30s", "max_elapsed_time": "300s" },
                },
                CHAIN: ["memory_limiter", "filter/this_service"],
                "forwarder.yaml#/processors/filter~1this_service/traces/span": [
                    r#"resource.attributes["modelplane.tenant"] != "team-a" or resource.attributes["modelplane.service"] != "chat""#,
                ],
                "forwarder.yaml#/receivers": { "otlp": { "protocols": { "grpc": { "endpoint": "${env:MY_POD_IP}:4317" } } } },
                "forwarder env#": {
                    "MY_POD_IP": { "valueFrom": { "fieldRef": { "apiVersion": "v1", "fieldPath": "status.podIP" } } },
                    "GOMEMLIMIT": { "value": "204MiB" },
                },
                "forwarder annotations#": { "signals.modelplane.ai/config-checksum": "<checksum of forwarder.yaml>" },
                "/desired/composite/resource/status/observability/traces": {
                    "address": "traces-chat.team-a.svc:4317", "forwarder": "traces-chat", "ready": false, "backend": "OTLP",
                },
                "/conditions/1": { "type": "TraceForwarding", "status": "STATUS_CONDITION_FALSE", "reason": "Creating",
                    "message": "waiting for signals-trace-forwarder-config, signals-trace-forwarder-deployment, signals-trace-forwarder-service, signals-trace-forwarder-serviceaccount to become ready in namespace team-a; spans for OTLP at https://otel.example.com/base/ are not flowing yet" },
            })),
        ),
        case(
            "http/json: json encoding",
            model_service(
                json!({ "enabled": true, "endpoint": "http://otel:4318", "protocol": "http/json" }),
            ),
            Want::Parts(
                json!({ format!("{HTTP}/encoding"): "json", format!("{HTTP}/endpoint"): "http://otel:4318" }),
            ),
        ),
        case(
            "grpc over TLS: host and port, TLS on",
            model_service(
                json!({ "enabled": true, "endpoint": "https://otel.example.com:4317", "protocol": "grpc" }),
            ),
            Want::Parts(json!({
                format!("{GRPC}/endpoint"): "otel.example.com:4317",
                format!("{GRPC}/tls"): { "insecure": false },
                format!("{GRPC}/encoding"): null,
                HTTP: null,
                "forwarder.yaml#/service/pipelines/traces/exporters": ["otlp_grpc/backend"],
            })),
        ),
        case(
            "grpc over plaintext http://: TLS off",
            model_service(
                json!({ "enabled": true, "endpoint": "http://collector.obs:4317", "protocol": "grpc" }),
            ),
            Want::Parts(
                json!({ format!("{GRPC}/endpoint"): "collector.obs:4317", format!("{GRPC}/tls"): { "insecure": true } }),
            ),
        ),
        case(
            "a literal header is written as given, a $ escaped; a Secret header only as an env reference",
            model_service(
                json!({ "enabled": true, "endpoint": "https://otel.example.com",
                "headers": {
                    "x-team": { "value": "a$b" },
                    "Authorization": { "valueFrom": { "secretKeyRef": { "name": "creds", "key": "bearer" } } },
                } }),
            ),
            Want::Parts(json!({
                format!("{HTTP}/headers"): {
                    "x-team": "a$$b",
                    "Authorization": "${env:MODELPLANE_TRACE_SECRET_0_AUTHORIZATION}",
                },
                "forwarder env#/MODELPLANE_TRACE_SECRET_0_AUTHORIZATION": secret_env("creds", "bearer"),
                "/desired/composite/resource/status/observability/policy/tracesHeaderNames": ["Authorization", "x-team"],
            })),
        ),
        case(
            "sampling ratio: a probabilistic sampler after the filter",
            model_service(
                json!({ "enabled": true, "endpoint": "https://otel.example.com", "sampling": { "ratio": 0.1 } }),
            ),
            Want::Parts(json!({
                CHAIN: ["memory_limiter", "filter/this_service", "probabilistic_sampler"],
                "forwarder.yaml#/processors/probabilistic_sampler": { "sampling_percentage": 10.0 },
            })),
        ),
        case(
            "Langfuse preset: Cloud EU by default, Basic auth from the Secret, ingestion version 4",
            model_service(
                json!({ "enabled": true, "preset": { "langfuse": { "basicAuth": { "name": "langfuse", "key": "auth" } } } }),
            ),
            Want::Parts(json!({
                format!("{HTTP}/endpoint"): "https://cloud.langfuse.com/api/public/otel",
                format!("{HTTP}/headers"): {
                    "Authorization": "Basic ${env:MODELPLANE_TRACE_SECRET_0_AUTHORIZATION}",
                    "x-langfuse-ingestion-version": "4",
                },
                "forwarder env#/MODELPLANE_TRACE_SECRET_0_AUTHORIZATION": secret_env("langfuse", "auth"),
                "/desired/composite/resource/status/observability/traces/backend": "Langfuse",
            })),
        ),
        case(
            "Langfuse preset with a self-hosted endpoint",
            model_service(
                json!({ "enabled": true, "endpoint": "https://langfuse.internal/api/public/otel",
                "preset": { "langfuse": { "basicAuth": { "name": "langfuse", "key": "auth" } } } }),
            ),
            Want::Parts(
                json!({ format!("{HTTP}/endpoint"): "https://langfuse.internal/api/public/otel" }),
            ),
        ),
        case(
            "LangSmith preset: x-api-key from the Secret, the project header",
            model_service(
                json!({ "enabled": true, "preset": { "langSmith": { "apiKey": { "name": "ls", "key": "key" }, "project": "prod" } } }),
            ),
            Want::Parts(json!({
                format!("{HTTP}/endpoint"): "https://api.smith.langchain.com/otel",
                format!("{HTTP}/headers"): { "x-api-key": "${env:MODELPLANE_TRACE_SECRET_0_X_API_KEY}", "Langsmith-Project": "prod" },
                "forwarder env#/MODELPLANE_TRACE_SECRET_0_X_API_KEY": secret_env("ls", "key"),
            })),
        ),
        case(
            "Phoenix preset: Bearer key, the project as openinference.project.name",
            model_service(json!({ "enabled": true, "endpoint": "http://phoenix:6006",
                "preset": { "phoenix": { "apiKey": { "name": "px", "key": "key" }, "project": "rag" } } })),
            Want::Parts(json!({
                format!("{HTTP}/headers"): { "Authorization": "Bearer ${env:MODELPLANE_TRACE_SECRET_0_AUTHORIZATION}" },
                format!("{HTTP}/encoding"): "proto",
                CHAIN: ["memory_limiter", "filter/this_service", "resource/backend"],
                "forwarder.yaml#/processors/resource~1backend": { "attributes": [
                    { "key": "openinference.project.name", "value": "rag", "action": "upsert" },
                ] },
            })),
        ),
        case(
            "Phoenix preset without auth: no headers",
            model_service(
                json!({ "enabled": true, "endpoint": "http://phoenix:6006", "preset": { "phoenix": {} } }),
            ),
            Want::Parts(
                json!({ format!("{HTTP}/headers"): null, "forwarder env#/MODELPLANE_TRACE_SECRET_0_AUTHORIZATION": null }),
            ),
        ),
        case(
            "Datadog preset: the site's intake, dd-api-key from the Secret",
            model_service(
                json!({ "enabled": true, "preset": { "datadog": { "apiKey": { "name": "dd", "key": "api-key" }, "site": "datadoghq.eu" } } }),
            ),
            Want::Parts(json!({
                format!("{HTTP}/endpoint"): "https://otlp.datadoghq.eu",
                format!("{HTTP}/headers"): { "dd-api-key": "${env:MODELPLANE_TRACE_SECRET_0_DD_API_KEY}" },
                "/desired/composite/resource/status/observability/traces/backend": "Datadog",
            })),
        ),
        case(
            "every forwarder resource observed ready: TraceForwarding=True and ready in status",
            observed_ready(model_service(plain_http.clone())),
            Want::Parts(json!({
                "/desired/composite/resource/status/observability/traces/ready": true,
                "/desired/resources/signals-trace-forwarder-deployment/ready": "READY_TRUE",
                "/conditions/1": { "type": "TraceForwarding", "status": "STATUS_CONDITION_TRUE", "reason": "Available",
                    "message": "spans of this service go through trace forwarder traces-chat in namespace team-a to OTLP at https://otel.example.com/base/" },
            })),
        ),
        case(
            "the hardening of the agent: non-root, read-only root, no token, no capabilities",
            model_service(plain_http.clone()),
            Want::Parts(json!({
                "/desired/resources/signals-trace-forwarder-deployment/resource/spec/template/spec/automountServiceAccountToken": false,
                "/desired/resources/signals-trace-forwarder-deployment/resource/spec/template/spec/securityContext": {
                    "runAsNonRoot": true, "runAsUser": 10001.0, "runAsGroup": 10001.0, "fsGroup": 10001.0,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "/desired/resources/signals-trace-forwarder-deployment/resource/spec/template/spec/containers/0/securityContext": {
                    "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": { "drop": ["ALL"] },
                },
                "/desired/resources/signals-trace-forwarder-serviceaccount/resource/automountServiceAccountToken": false,
                "/desired/resources/signals-trace-forwarder-service/resource/spec/ports": [
                    { "name": "otlp-grpc", "port": 4317.0, "targetPort": "otlp-grpc", "protocol": "TCP", "appProtocol": "grpc" },
                ],
            })),
        ),
        case(
            "traces off: no forwarder, no TraceForwarding condition",
            model_service(json!({ "enabled": false, "endpoint": "https://otel.example.com" })),
            Want::Parts(json!({
                "/desired/resources": null,
                "/desired/composite/resource/status/observability/traces": null,
                "/conditions/1": null,
            })),
        ),
        case(
            "agent trace path: the listed namespaces' spans raw, marked forward-only, tenant from the pod's namespace",
            cluster(
                json!({ "kinds": [{ "name": "RequestLifecycle", "sampleRate": 0.5 }],
                "traceForwarding": { "namespaces": ["team-b", "team-a"] } }),
            ),
            Want::Parts(json!({
                "collector.yaml#/service/pipelines/traces~1forward": {
                    "receivers": ["otlp"],
                    "processors": ["memory_limiter", "k8s_attributes", "filter/trace_forwarding", "resource/cluster", "resource/trace_forwarding"],
                    "exporters": ["otlp_grpc/aggregator"],
                },
                "collector.yaml#/processors/filter~1trace_forwarding/traces/span": [
                    r#"resource.attributes["k8s.namespace.name"] == nil or not (resource.attributes["k8s.namespace.name"] == "team-a" or resource.attributes["k8s.namespace.name"] == "team-b")"#,
                ],
                "collector.yaml#/processors/resource~1trace_forwarding/attributes": [
                    { "key": "modelplane.tenant", "from_attribute": "k8s.namespace.name", "action": "upsert" },
                    { "key": "modelplane.trace_path", "value": "forward", "action": "upsert" },
                ],
                // The sketch path keeps its privacy transform and sampler.
                "collector.yaml#/service/pipelines/traces~1request_lifecycle/processors": [
                    "memory_limiter", "probabilistic_sampler/request_lifecycle", "k8s_attributes",
                    "resource/cluster", "transform/privacy", "transform/tag_request_lifecycle",
                ],
            })),
        ),
        case(
            "agent trace path with metric kinds only: the OTLP receiver and Service exist for it",
            cluster(
                json!({ "kinds": [{ "name": "Capacity" }], "traceForwarding": { "namespaces": ["team-a"] } }),
            ),
            Want::Parts(json!({
                "collector.yaml#/service/pipelines/traces~1forward/exporters": ["otlp_grpc/aggregator"],
                "collector.yaml#/processors/transform~1privacy": null,
                "/desired/resources/signals-agent-service/resource/kind": "Service",
            })),
        ),
        case(
            "no traceForwarding: no trace path",
            cluster(json!({ "kinds": [{ "name": "RequestLifecycle" }] })),
            Want::Parts(json!({ "collector.yaml#/service/pipelines/traces~1forward": null })),
        ),
        case(
            "Phoenix over grpc is refused",
            model_service(
                json!({ "enabled": true, "endpoint": "http://phoenix:4317", "protocol": "grpc", "preset": { "phoenix": {} } }),
            ),
            Want::Parts(
                json!({ "/results/0/message": "spec.observability.traces.protocol: Phoenix accepts http/protobuf only" }),
            ),
        ),
        case(
            "a header the preset sets is refused",
            model_service(
                json!({ "enabled": true, "preset": { "datadog": { "apiKey": { "name": "dd", "key": "k" } } },
                "headers": { "DD-API-KEY": { "value": "x" } } }),
            ),
            Want::Parts(
                json!({ "/results/0/message": "spec.observability.traces.headers[DD-API-KEY]: the Datadog preset sets this header itself" }),
            ),
        ),
        case(
            "a gRPC endpoint with a path is refused",
            model_service(
                json!({ "enabled": true, "endpoint": "https://otel.example.com/v1", "protocol": "grpc" }),
            ),
            Want::Parts(
                json!({ "/results/0/message": "spec.observability.traces.endpoint: an OTLP/gRPC endpoint is scheme, host and port, without a path" }),
            ),
        ),
    ]
}

#[test]
fn forwarder_cases() {
    support::run(cases());
}
