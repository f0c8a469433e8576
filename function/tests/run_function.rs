//! Table tests on the handler: a request in, the response out, one named case
//! per behaviour, all run by one loop and compared by one diff
//! (tests/support). Cases pin the whole response where it is small and the
//! parts that matter where it renders an agent.

mod support;

use std::time::Duration;

use function_signals::{Config, run_function};
use serde_json::{Value, json};
use support::{Case, Want, case, patched};

fn cluster(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "modelplane.ai/v1alpha1",
        "kind": "InferenceCluster",
        "metadata": { "name": "us-east-1" },
        "spec": spec,
        "status": status,
    })
}

fn capacity_cluster() -> Value {
    cluster(
        json!({ "signals": { "kinds": [{ "name": "Capacity" }] } }),
        json!({ "providerConfigRef": { "name": "us-east-1" } }),
    )
}

fn model_service(spec: Value) -> Value {
    json!({ "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
        "metadata": { "name": "chat", "namespace": "team-a" }, "spec": spec })
}

fn request(xr: Value) -> Value {
    json!({ "meta": { "tag": "t1" }, "observed": { "composite": { "resource": xr } } })
}

/// The step input with these fields.
fn input(fields: Value) -> Value {
    patched(
        json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input" }),
        fields,
    )
}

fn with_input(req: Value, fields: Value) -> Value {
    patched(req, json!({ "input": input(fields) }))
}

fn single_cluster(xr: Value) -> Value {
    with_input(request(xr), json!({ "mode": "SingleCluster" }))
}

fn fatal(message: &str) -> Value {
    json!({
        "meta": { "tag": "t1", "ttl": "60s" },
        "results": [{ "severity": "SEVERITY_FATAL", "message": message, "reason": "InvalidInput", "target": "TARGET_COMPOSITE" }],
    })
}

/// What MultiCluster mode renders for one cluster, each in an Object.
const AGENT_OBJECTS: [&str; 6] = [
    "signals-agent-clusterrole",
    "signals-agent-clusterrolebinding",
    "signals-agent-config",
    "signals-agent-deployment",
    "signals-agent-serviceaccount",
    "signals-agent-token",
];

fn each_agent_object(value: Value) -> Value {
    AGENT_OBJECTS
        .iter()
        .map(|key| (key.to_string(), value.clone()))
        .collect()
}

fn observed_object(ready: &str) -> Value {
    json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
        "status": { "conditions": [{ "type": "Ready", "status": ready }, { "type": "Synced", "status": "True" }] } } })
}

fn observed_plain_deployment(generation: i64, observed: i64, available: i64) -> Value {
    json!({ "signals-agent-deployment": { "resource": { "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "generation": generation }, "spec": { "replicas": 2 },
        "status": { "observedGeneration": observed, "availableReplicas": available } } } })
}

fn agent_ready(status: &str, reason: &str, message: &str) -> Value {
    json!([{ "type": "AgentReady", "status": status, "reason": reason, "message": message }])
}

/// The kinds SingleCluster mode renders for an agent that receives spans,
/// with a Role and RoleBinding in each namespace scraping is limited to.
fn plain_kinds(scrape_namespaces: &[&str]) -> Value {
    let mut kinds = json!({
        "signals-agent-clusterrole": "ClusterRole",
        "signals-agent-clusterrolebinding": "ClusterRoleBinding",
        "signals-agent-config": "ConfigMap",
        "signals-agent-deployment": "Deployment",
        "signals-agent-service": "Service",
        "signals-agent-serviceaccount": "ServiceAccount",
    });
    for namespace in scrape_namespaces {
        kinds[format!("signals-agent-role-{namespace}")] = json!("Role");
        kinds[format!("signals-agent-rolebinding-{namespace}")] = json!("RoleBinding");
    }
    kinds
}

// --- The ingest token: copy to the workload cluster, rotation rollout. ---

fn issued_token_status(namespace: &str, generation: i64) -> Value {
    json!({ "signals": { "ingestToken": {
        "secretName": "signals-ingest-us-east-1", "secretNamespace": namespace,
        "generation": generation, "issuedAt": "2026-11-20T09:00:00Z",
    } } })
}

/// The observed copy Object, as provider-kubernetes leaves it: the token
/// persisted in its spec, the workload Secret (data redacted) in its status.
fn observed_copy(generation: &str, ready: &str) -> Value {
    let secret = |data: Value| {
        json!({ "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "signals-agent-token", "namespace": "modelplane-system",
                "annotations": { "signals.modelplane.ai/token-generation": generation } },
            "type": "Opaque", "data": data })
    };
    json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
        "spec": { "forProvider": { "manifest": secret(json!({ "token": "b2JzZXJ2ZWQtdG9rZW4tdmFsdWU=" })) } },
        "status": { "atProvider": { "manifest": secret(json!({ "redacted": null })) },
            "conditions": [{ "type": "Ready", "status": ready }] } } })
}

/// The agent's MODELPLANE_INGEST_TOKEN, as the `agent env` document shows it.
fn token_from(secret: &str, key: &str) -> Value {
    json!({ "valueFrom": { "secretKeyRef": { "name": secret, "key": key, "optional": false } } })
}

/// The pod template's annotations: the config checksum always, the token
/// generation when one is known.
fn pod_annotations(token_generation: Option<&str>) -> Value {
    let mut annotations =
        json!({ "signals.modelplane.ai/config-checksum": "<checksum of collector.yaml>" });
    if let Some(generation) = token_generation {
        annotations["signals.modelplane.ai/ingest-token-generation"] = json!(generation);
    }
    annotations
}

/// The Deployment's token generation from what the issuer recorded in the
/// XR's status and what the copy on the workload cluster carries.
struct TokenGeneration {
    name: &'static str,
    /// spec.signals.aggregator
    aggregator: Value,
    /// The generation in status.signals.ingestToken.
    issued: Option<i64>,
    /// The generation annotation on the observed copy.
    copied: Option<&'static str>,
    /// The step input's mode; no step input when unset.
    mode: Option<&'static str>,
    /// The pod template's token generation annotation.
    want: Option<&'static str>,
}

impl TokenGeneration {
    fn case(self) -> Case {
        let mut xr = patched(
            capacity_cluster(),
            json!({ "spec": { "signals": { "aggregator": self.aggregator } } }),
        );
        if let Some(generation) = self.issued {
            xr = patched(
                xr,
                json!({ "status": issued_token_status("modelplane-system", generation) }),
            );
        }
        let mut req = match self.mode {
            Some(mode) => with_input(request(xr), json!({ "mode": mode })),
            None => request(xr),
        };
        if let Some(generation) = self.copied {
            req["observed"]["resources"] =
                json!({ "signals-agent-token": observed_copy(generation, "True") });
        }
        let want = json!({ "pod annotations#": pod_annotations(self.want) });
        case(self.name, req, Want::Parts(want))
    }
}

fn cases() -> Vec<Case> {
    let bucket = json!({ "resource": { "apiVersion": "s3.aws.m.upbound.io/v1beta1", "kind": "Bucket", "spec": { "forProvider": { "region": "us-east-1", "size": 3.0 } } }, "ready": "READY_TRUE" });
    let environment =
        json!({ "apiextensions.crossplane.io/environment": { "region": "us-east-1" } });
    let thirty_seconds = Config {
        ttl: Duration::from_secs(30),
    };
    let token_labels = json!({
        "app.kubernetes.io/component": "telemetry-agent",
        "app.kubernetes.io/instance": "us-east-1",
        "app.kubernetes.io/managed-by": "function-signals",
        "app.kubernetes.io/name": "signals-agent",
        "app.kubernetes.io/part-of": "modelplane-signals",
        "app.kubernetes.io/version": "0.159.0",
        "signals.modelplane.ai/inference-cluster": "us-east-1",
    });
    let copied_from = |namespace: &str, path: &str| {
        json!({
            "patchesFrom": { "apiVersion": "v1", "kind": "Secret", "name": "signals-ingest-us-east-1",
                "namespace": namespace, "fieldPath": path },
            "toFieldPath": path,
        })
    };
    let copied_from_both = |namespace: &str| {
        json!([
            copied_from(namespace, "data.token"),
            copied_from(
                namespace,
                "metadata.annotations[signals.modelplane.ai/token-generation]"
            ),
        ])
    };
    let all_agent_objects_ready = each_agent_object(
        json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
            "status": { "conditions": [{ "type": "Ready", "status": "True" }] } } }),
    );
    let sampled_spans = |kinds: Value| {
        request(cluster(
            json!({ "signals": { "kinds": kinds } }),
            json!({ "providerConfigRef": { "name": "us-east-1" } }),
        ))
    };
    let earlier_step = json!({ "resources": { "earlier": { "resource": { "kind": "Kept" } } } });
    // A Fatal result keeps what earlier steps desired, and nothing of this one.
    let bad_input = |name: &'static str, fields: Value, message: &str| {
        let mut req = patched(request(capacity_cluster()), json!({ "input": fields }));
        req["desired"] = earlier_step.clone();
        let want = patched(fatal(message), json!({ "desired": earlier_step }));
        case(name, req, Want::Response(want))
    };
    let bad_spec = |name: &'static str, spec: Value, message: &str| {
        let xr = cluster(spec, json!({ "providerConfigRef": { "name": "c" } }));
        case(name, request(xr), Want::Response(fatal(message)))
    };
    let bad_observability = |name: &'static str, observability: Value, message: &str| {
        let xr = model_service(json!({ "observability": observability }));
        case(name, request(xr), Want::Response(fatal(message)))
    };
    let token_elsewhere = patched(
        capacity_cluster(),
        json!({ "status": issued_token_status("signals-system", 1) }),
    );
    let agent_in = |namespace: &str| {
        patched(
            capacity_cluster(),
            json!({ "spec": { "signals": { "agent": { "namespace": namespace } } } }),
        )
    };

    vec![
        case(
            "copies the tag",
            patched(
                request(capacity_cluster()),
                json!({ "meta": { "tag": "opaque-tag-0123" } }),
            ),
            Want::Parts(json!({ "/meta/tag": "opaque-tag-0123" })),
        ),
        case(
            "the TTL defaults to 60s",
            request(capacity_cluster()),
            Want::Parts(json!({ "/meta/ttl": "60s" })),
        ),
        case(
            "sets the configured TTL",
            request(capacity_cluster()),
            Want::Parts(json!({ "/meta/ttl": "30s" })),
        )
        .with_config(thirty_seconds.clone()),
        case(
            "the input's TTL wins over the configured one",
            with_input(request(capacity_cluster()), json!({ "ttl": "2m" })),
            Want::Parts(json!({ "/meta/ttl": "120s" })),
        )
        .with_config(thirty_seconds),
        case(
            "passes through desired state and context of earlier steps",
            patched(
                request(capacity_cluster()),
                json!({
                    "desired": {
                        "composite": { "resource": { "status": { "providerConfigRef": { "name": "us-east-1" }, "gateway": { "address": "10.0.0.1" } } } },
                        "resources": { "bucket": bucket },
                    },
                    "context": environment,
                }),
            ),
            Want::Parts(json!({
                "/desired/resources/bucket": bucket,
                "/context": environment,
                // The earlier step's XR status survives; this step adds only its own field.
                "/desired/composite/resource": { "status": {
                    "providerConfigRef": { "name": "us-east-1" },
                    "gateway": { "address": "10.0.0.1" },
                    "signals": { "enabledKinds": ["Capacity"] },
                } },
            })),
        ),
        case(
            "waits for the provider config",
            request(cluster(
                json!({ "signals": { "kinds": [{ "name": "Capacity" }] } }),
                json!({}),
            )),
            Want::Response(json!({
                "meta": { "tag": "t1", "ttl": "60s" },
                "desired": { "composite": { "resource": { "status": { "signals": { "enabledKinds": ["Capacity"] } } } } },
                "conditions": agent_ready("STATUS_CONDITION_FALSE", "WaitingForProviderConfig",
                    "waiting for status.providerConfigRef.name, the ProviderConfig of the workload cluster; no agent is rendered until it is set"),
            })),
        ),
        case(
            "takes the provider config from the desired composite",
            patched(
                request(cluster(
                    json!({ "signals": { "kinds": [{ "name": "Capacity" }] } }),
                    json!({}),
                )),
                json!({ "desired": { "composite": { "resource": { "status": { "providerConfigRef": { "name": "resolved-by-step-1", "kind": "ProviderConfig" } } } } } }),
            ),
            Want::Parts(json!({
                "/desired/resources/signals-agent-deployment/resource/kind": "Object",
                "/desired/resources/signals-agent-deployment/resource/apiVersion": "kubernetes.m.crossplane.io/v1alpha1",
                "/desired/resources/signals-agent-deployment/resource/spec/providerConfigRef": { "kind": "ProviderConfig", "name": "resolved-by-step-1" },
                "/desired/resources/signals-agent-deployment/resource/metadata/namespace": "modelplane-system",
                "/desired/resources/signals-agent-deployment/resource/spec/forProvider/manifest/kind": "Deployment",
            })),
        ),
        case(
            "multi-cluster wraps every resource in an Object",
            request(capacity_cluster()),
            Want::Parts(json!({
                "/desired/resources/*/resource/kind": each_agent_object(json!("Object")),
                "/desired/resources/*/resource/spec/providerConfigRef":
                    each_agent_object(json!({ "kind": "ClusterProviderConfig", "name": "us-east-1" })),
                // Crossplane names composed resources.
                "/desired/resources/*/resource/metadata/name": {},
            })),
        ),
        case(
            "single cluster renders plain resources, pods only through Roles when scraping is limited to namespaces",
            single_cluster(cluster(
                json!({ "signals": { "kinds": [{ "name": "RequestLifecycle" }], "agent": { "scrapeNamespaces": ["team-b", "team-a"] } } }),
                json!({}),
            )),
            Want::Parts(json!({
                "/desired/resources/*/resource/kind": plain_kinds(&["team-a", "team-b"]),
                // The ClusterRole keeps /metrics for the EPP.
                "/desired/resources/signals-agent-clusterrole/resource/rules":
                    [{ "nonResourceURLs": ["/metrics"], "verbs": ["get"] }],
                "/desired/resources/signals-agent-role-team-a/resource/metadata/namespace": "team-a",
                "/desired/resources/signals-agent-role-team-a/resource/rules":
                    [{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }],
            })),
        ),
        case(
            "readiness comes from observed state; what is not observed yet is not ready",
            patched(
                request(capacity_cluster()),
                json!({ "observed": { "resources": {
                    "signals-agent-deployment": observed_object("True"),
                    "signals-agent-config": observed_object("False"),
                    "signals-agent-serviceaccount": observed_object("True"),
                    "signals-agent-clusterrole": observed_object("True"),
                    "signals-agent-token": observed_object("True"),
                } } }),
            ),
            Want::Parts(json!({
                "/desired/resources/signals-agent-deployment/ready": "READY_TRUE",
                "/desired/resources/signals-agent-serviceaccount/ready": "READY_TRUE",
                "/desired/resources/signals-agent-config/ready": "READY_FALSE",
                "/desired/resources/signals-agent-clusterrolebinding/ready": "READY_FALSE",
                "/conditions": agent_ready("STATUS_CONDITION_FALSE", "Creating",
                    "waiting for signals-agent-clusterrolebinding, signals-agent-config to become ready in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1"),
            })),
        ),
        case(
            "a plain Deployment is ready when all replicas of its generation are available",
            patched(
                single_cluster(capacity_cluster()),
                json!({ "observed": { "resources": observed_plain_deployment(2, 2, 2) } }),
            ),
            Want::Parts(
                json!({ "/desired/resources/signals-agent-deployment/ready": "READY_TRUE" }),
            ),
        ),
        case(
            "a plain Deployment with a replica unavailable is not ready",
            patched(
                single_cluster(capacity_cluster()),
                json!({ "observed": { "resources": observed_plain_deployment(2, 2, 1) } }),
            ),
            Want::Parts(
                json!({ "/desired/resources/signals-agent-deployment/ready": "READY_FALSE" }),
            ),
        ),
        case(
            "a plain Deployment whose new generation is not observed yet is not ready",
            patched(
                single_cluster(capacity_cluster()),
                json!({ "observed": { "resources": observed_plain_deployment(3, 2, 2) } }),
            ),
            Want::Parts(
                json!({ "/desired/resources/signals-agent-deployment/ready": "READY_FALSE" }),
            ),
        ),
        case(
            "all ready sets AgentReady true",
            patched(
                request(capacity_cluster()),
                json!({ "observed": { "resources": all_agent_objects_ready } }),
            ),
            Want::Parts(json!({
                "/conditions": agent_ready("STATUS_CONDITION_TRUE", "Available",
                    "the signals agent runs in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1"),
            })),
        ),
        case(
            "no signals spec renders nothing and says so",
            request(cluster(
                json!({}),
                json!({ "providerConfigRef": { "name": "us-east-1" } }),
            )),
            Want::Response(json!({
                "meta": { "tag": "t1", "ttl": "60s" },
                "desired": { "composite": { "resource": { "status": { "signals": { "enabledKinds": [] } } } } },
                "conditions": agent_ready("STATUS_CONDITION_FALSE", "SignalsDisabled",
                    "spec.signals is not set, so no signals agent is rendered"),
            })),
        ),
        case(
            "empty kinds render nothing and say so",
            request(cluster(
                json!({ "signals": { "kinds": [] } }),
                json!({ "providerConfigRef": { "name": "us-east-1" } }),
            )),
            Want::Parts(json!({
                "/desired/resources": null,
                "/conditions/0/reason": "NoSignalKinds",
            })),
        ),
        case(
            "the desired XR carries only status",
            request(capacity_cluster()),
            Want::Parts(json!({
                "/desired/composite/resource": { "status": { "signals": { "enabledKinds": ["Capacity"] } } },
            })),
        ),
        case(
            "a ModelService surfaces the effective policy without header values",
            request(model_service(json!({ "observability": {
                "metrics": { "scope": "Fleet" },
                "traces": { "enabled": true, "endpoint": "https://cloud.langfuse.com/api/public/otel",
                    "headers": { "x-api-key": { "value": "lsv2_pt_literal" }, "Authorization": { "valueFrom": { "secretKeyRef": { "name": "creds", "key": "auth" } } } } },
            } }))),
            Want::Parts(json!({
                "/desired/composite/resource/status/observability/policy": {
                    "metricsScope": "Fleet",
                    "tracesEnabled": true,
                    "tracesEndpoint": "https://cloud.langfuse.com/api/public/otel",
                    "tracesProtocol": "http/protobuf",
                    "tracesSamplingRatio": 1.0,
                    "tracesHeaderNames": ["Authorization", "x-api-key"],
                },
                "/conditions/0": { "type": "ObservabilityPolicy", "status": "STATUS_CONDITION_TRUE", "reason": "Resolved",
                    "message": "the effective policy is in status.observability.policy" },
                "/conditions/1/reason": "Creating",
            })),
        ),
        case(
            "a ModelService without observability gets the default policy and no TraceForwarding condition",
            request(model_service(json!({}))),
            Want::Parts(json!({
                "/desired/composite/resource/status/observability/policy": { "metricsScope": "PerTenant", "tracesEnabled": false },
                "/conditions": [{ "type": "ObservabilityPolicy", "status": "STATUS_CONDITION_TRUE", "reason": "Resolved",
                    "message": "the effective policy is in status.observability.policy" }],
            })),
        ),
        case(
            "sampled span kinds get a sampler and tags",
            sampled_spans(
                json!([{ "name": "RequestLifecycle", "sampleRate": 0.1 }, { "name": "PrefixHash", "sampleRate": 0.5 }]),
            ),
            Want::Parts(json!({
                "collector.yaml#/processors/probabilistic_sampler~1request_lifecycle": { "sampling_percentage": 10.0 },
                "collector.yaml#/processors/probabilistic_sampler~1prefix_hash": { "sampling_percentage": 50.0 },
                "collector.yaml#/processors/transform~1tag_request_lifecycle/trace_statements": [{ "context": "span", "statements": [
                    r#"set(span.attributes["modelplane.signal"], "RequestLifecycle")"#,
                    r#"set(span.attributes["modelplane.sample_rate"], 0.1)"#,
                ] }],
            })),
        ),
        case(
            "span kinds at one rate share a pipeline and carry no kind tag",
            sampled_spans(json!([{ "name": "RequestLifecycle" }, { "name": "PrefixHash" }])),
            Want::Parts(json!({
                "collector.yaml#/service/pipelines/*/exporters": {
                    "metrics": ["otlp_grpc/aggregator"],
                    "traces/spans": ["otlp_grpc/aggregator"],
                },
                "collector.yaml#/processors/transform~1tag_spans/trace_statements": [{ "context": "span", "statements": [
                    r#"set(span.attributes["modelplane.sample_rate"], 1.0)"#,
                ] }],
            })),
        ),
        // ---- Fatal paths: one Fatal result naming the field, desired state untouched ----
        case(
            "fatal without an observed composite",
            json!({ "meta": { "tag": "t1" } }),
            Want::Response(fatal("the request has no observed composite resource")),
        ),
        case(
            "fatal for a kind this function does not compose",
            request(
                json!({ "apiVersion": "example.org/v1", "kind": "Bucket", "metadata": { "name": "b" } }),
            ),
            Want::Response(fatal(
                r#"function-signals composes modelplane.ai/v1alpha1 InferenceCluster and ModelService, not "example.org/v1" "Bucket""#,
            )),
        ),
        bad_input(
            "fatal for an unknown input mode",
            input(json!({ "mode": "Everywhere" })),
            "input.mode: unknown variant `Everywhere`, expected `MultiCluster` or `SingleCluster`",
        ),
        bad_input(
            "fatal for an input ttl that is not a duration",
            input(json!({ "ttl": "soon" })),
            r#"input.ttl: "soon" is not a duration such as 60s, 5m or 1m30s"#,
        ),
        bad_input(
            "fatal for an unknown input field",
            input(json!({ "agregatorEndpoint": "x:1" })),
            "input.agregatorEndpoint: unknown field `agregatorEndpoint`, expected one of `apiVersion`, `kind`, `metadata`, `mode`, `ttl`, `aggregatorEndpoint`, `collectorImage`, `objectNamespace`, `providerConfigKind`, `tokenNamespace`",
        ),
        bad_input(
            "fatal for another function's input",
            json!({ "apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources" }),
            "input: want apiVersion signals.fn.modelplane.ai/v1beta1 and kind Input, got pt.fn.crossplane.io/v1beta1 Resources",
        ),
        bad_input(
            "fatal for an input aggregator endpoint with user-info",
            input(json!({ "aggregatorEndpoint": "user:pw@agg:4317" })),
            r#"input.aggregatorEndpoint: "user:pw@agg:4317" is not host:port"#,
        ),
        bad_input(
            "fatal for an input token namespace that is not a namespace name",
            input(json!({ "tokenNamespace": "ns/../kube-system" })),
            r#"input.tokenNamespace: "ns/../kube-system" is not a valid namespace name"#,
        ),
        bad_spec(
            "fatal for an unknown signal kind",
            json!({ "signals": { "kinds": [{ "name": "Latency" }] } }),
            "spec.signals.kinds[0].name: unknown variant `Latency`, expected one of `RequestLifecycle`, `PrefixHash`, `Capacity`, `ColdStart`, `Cost`, `Reliability`",
        ),
        bad_spec(
            "fatal for a GPU price that is not a number",
            json!({ "signals": { "kinds": [{ "name": "Cost" }], "cost": { "pricing": [{ "gpu": "L4", "pricePerGpuHour": "cheap" }] } } }),
            "spec.signals.cost.pricing[0].pricePerGpuHour: invalid type: string \"cheap\", expected f64",
        ),
        bad_spec(
            "fatal for a retention in weeks",
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "retention": { "sketches": "1w" } } }),
            "spec.signals.retention.sketches: invalid duration \"1w\": want a positive whole number followed by one of s, m, h, d (for example 30d)",
        ),
        bad_spec(
            "fatal for a sample rate above 1",
            json!({ "signals": { "kinds": [{ "name": "RequestLifecycle", "sampleRate": 1.5 }] } }),
            "spec.signals.kinds[0].sampleRate: must be between 0 and 1, got 1.5",
        ),
        bad_spec(
            "fatal for a kind listed twice",
            json!({ "signals": { "kinds": [{ "name": "Cost" }, { "name": "Cost" }] } }),
            "spec.signals.kinds[1].name: Cost is listed more than once",
        ),
        bad_spec(
            "fatal for a sampled metrics kind",
            json!({ "signals": { "kinds": [{ "name": "Capacity", "sampleRate": 0.5 }] } }),
            "spec.signals.kinds[0].sampleRate: Capacity comes from scraped metrics, which cannot be sampled; remove sampleRate or set it to 1",
        ),
        bad_spec(
            "fatal for a memory limit that is not a quantity",
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "agent": { "resources": { "limits": { "memory": "lots" } } } } }),
            r#"spec.signals.agent.resources.limits.memory: "lots" is not a Kubernetes quantity such as 500m, 2 or 1Gi"#,
        ),
        bad_spec(
            "fatal for an aggregator endpoint with a scheme",
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "aggregator": { "endpoint": "https://agg:4317" } } }),
            r#"spec.signals.aggregator.endpoint: "https://agg:4317" is not host:port"#,
        ),
        bad_spec(
            "fatal for an aggregator endpoint with user-info, without echoing it",
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "aggregator": { "endpoint": "tok3n@agg:4317" } } }),
            r#"spec.signals.aggregator.endpoint: "agg:4317" carries user-info; the ingest token belongs in the Secret named by tokenSecretRef"#,
        ),
        bad_observability(
            "fatal for traces without an endpoint",
            json!({ "traces": { "enabled": true } }),
            "spec.observability.traces.endpoint: is required when traces.enabled is true (a Langfuse, LangSmith or Datadog preset has a default)",
        ),
        bad_observability(
            "fatal for a header with both value and valueFrom",
            json!({ "traces": { "enabled": true, "endpoint": "https://x", "headers": { "Authorization": { "value": "v", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } } } } }),
            "spec.observability.traces.headers[Authorization]: set exactly one of value or valueFrom",
        ),
        bad_observability(
            "fatal for an unknown metrics scope",
            json!({ "metrics": { "scope": "Global" } }),
            "spec.observability.metrics.scope: unknown variant `Global`, expected `PerTenant` or `Fleet`",
        ),
        bad_observability(
            "fatal for a negative trace sampling ratio",
            json!({ "traces": { "enabled": true, "endpoint": "https://x", "sampling": { "ratio": -0.1 } } }),
            "spec.observability.traces.sampling.ratio: must be between 0 and 1, got -0.1",
        ),
        // ---- The ingest token: copied to the workload cluster, rolled out on rotation ----
        case(
            "multi-cluster copies the issued token to the workload cluster",
            request(capacity_cluster()),
            Want::Parts(json!({
                "/desired/resources/signals-agent-token": {
                    "resource": {
                        "apiVersion": "kubernetes.m.crossplane.io/v1alpha1",
                        "kind": "Object",
                        "metadata": { "namespace": "modelplane-system", "labels": token_labels },
                        "spec": {
                            "providerConfigRef": { "kind": "ClusterProviderConfig", "name": "us-east-1" },
                            "readiness": { "policy": "SuccessfulCreate" },
                            "forProvider": { "manifest": {
                                "apiVersion": "v1",
                                "kind": "Secret",
                                "metadata": { "name": "signals-agent-token", "namespace": "modelplane-system", "labels": token_labels },
                                "type": "Opaque",
                            } },
                            "references": copied_from_both("modelplane-system"),
                        },
                    },
                    "ready": "READY_FALSE",
                },
                "agent env#/MODELPLANE_INGEST_TOKEN": token_from("signals-agent-token", "token"),
                // No generation is known yet.
                "pod annotations#": pod_annotations(None),
                "/results": null,
            })),
        ),
        case(
            "the token copy follows the step input and the agent namespace",
            with_input(
                request(agent_in("signals")),
                json!({ "tokenNamespace": "signal-tokens", "objectNamespace": "infra" }),
            ),
            Want::Parts(json!({
                "/desired/resources/signals-agent-token/resource/metadata/namespace": "infra",
                "/desired/resources/signals-agent-token/resource/spec/forProvider/manifest/metadata/name": "signals-agent-token",
                "/desired/resources/signals-agent-token/resource/spec/forProvider/manifest/metadata/namespace": "signals",
                "/desired/resources/signals-agent-token/resource/spec/references": copied_from_both("signal-tokens"),
            })),
        ),
        case(
            "a tokenSecretRef is the user's Secret and nothing is copied",
            request(patched(
                capacity_cluster(),
                json!({ "spec": { "signals": { "aggregator": { "tokenSecretRef": { "name": "my-ingest", "key": "bearer" } } } } }),
            )),
            Want::Parts(json!({
                "/desired/resources/signals-agent-token": null,
                "agent env#/MODELPLANE_INGEST_TOKEN": token_from("my-ingest", "bearer"),
            })),
        ),
        TokenGeneration {
            name: "token generation: nothing known",
            aggregator: json!({}),
            issued: None,
            copied: None,
            mode: None,
            want: None,
        }
        .case(),
        TokenGeneration {
            name: "token generation: issued, not copied yet",
            aggregator: json!({}),
            issued: Some(4),
            copied: None,
            mode: None,
            want: Some("4"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: the copy lags the issuer",
            aggregator: json!({}),
            issued: Some(4),
            copied: Some("3"),
            mode: None,
            want: Some("3"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: the copy caught up",
            aggregator: json!({}),
            issued: Some(4),
            copied: Some("4"),
            mode: None,
            want: Some("4"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: the copy is ahead of the status",
            aggregator: json!({}),
            issued: Some(4),
            copied: Some("5"),
            mode: None,
            want: Some("5"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: an unreadable copy generation",
            aggregator: json!({}),
            issued: Some(4),
            copied: Some("v5"),
            mode: None,
            want: Some("4"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: the user's Secret takes the issuer's",
            aggregator: json!({ "tokenSecretRef": { "name": "my-ingest", "key": "token" } }),
            issued: Some(4),
            copied: Some("3"),
            mode: None,
            want: Some("4"),
        }
        .case(),
        TokenGeneration {
            name: "token generation: single cluster",
            aggregator: json!({}),
            issued: Some(7),
            copied: None,
            mode: Some("SingleCluster"),
            want: Some("7"),
        }
        .case(),
        case(
            "the agent waits for the token copy and says where it comes from",
            patched(
                request(capacity_cluster()),
                json!({ "observed": { "resources": patched(
                    all_agent_objects_ready.clone(),
                    json!({ "signals-agent-token": observed_copy("1", "False") }),
                ) } }),
            ),
            Want::Parts(json!({
                "/desired/resources/signals-agent-token/ready": "READY_FALSE",
                "/conditions": agent_ready("STATUS_CONDITION_FALSE", "Creating",
                    "waiting for signals-agent-token to become ready in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1; signals-agent-token is copied from Secret modelplane-system/signals-ingest-us-east-1 on the control plane, which signal-aggregator issues"),
            })),
        ),
        case(
            "warns when the status names another token Secret, and still copies one",
            request(token_elsewhere.clone()),
            Want::Parts(json!({
                "/results": [{ "severity": "SEVERITY_WARNING", "target": "TARGET_COMPOSITE", "reason": "IngestTokenElsewhere",
                    "message": "status.signals.ingestToken names Secret signals-system/signals-ingest-us-east-1, but the token is copied from modelplane-system/signals-ingest-us-east-1: set the step input's tokenNamespace to the aggregator's --token-namespace" }],
                "/desired/resources/signals-agent-token/resource/kind": "Object",
            })),
        ),
        case(
            "no warning when the status and the step input name the same token namespace",
            with_input(
                request(token_elsewhere),
                json!({ "tokenNamespace": "signals-system" }),
            ),
            Want::Parts(json!({ "/results": null })),
        ),
        // One cluster: the agent reads the issued Secret itself when it runs beside it.
        case(
            "single cluster, default namespaces: the agent reads the issued Secret and nothing is copied",
            single_cluster(patched(
                capacity_cluster(),
                json!({ "spec": { "signals": { "agent": {} } } }),
            )),
            Want::Parts(json!({
                "agent env#/MODELPLANE_INGEST_TOKEN": token_from("signals-ingest-us-east-1", "token"),
                "/results": null,
                "/desired/resources/signals-agent-token": null,
            })),
        ),
        case(
            "single cluster, agent in the token namespace: the agent reads the issued Secret",
            with_input(
                request(agent_in("signals")),
                json!({ "mode": "SingleCluster", "tokenNamespace": "signals" }),
            ),
            Want::Parts(json!({
                "agent env#/MODELPLANE_INGEST_TOKEN": token_from("signals-ingest-us-east-1", "token"),
            })),
        ),
        case(
            "single cluster, agent elsewhere: the default Secret name, a warning saying what to do, and no Secret rendered",
            single_cluster(agent_in("signals")),
            Want::Parts(json!({
                "agent env#/MODELPLANE_INGEST_TOKEN": token_from("signals-agent-token", "token"),
                "/results": [{ "severity": "SEVERITY_WARNING", "target": "TARGET_COMPOSITE", "reason": "IngestTokenUnreachable",
                    "message": "the agent runs in namespace signals but its ingest token is issued into Secret modelplane-system/signals-ingest-us-east-1, which a Pod cannot read across namespaces: set spec.signals.aggregator.tokenSecretRef to a Secret in signals that holds the token, or run the agent in modelplane-system (the step input's tokenNamespace)" }],
                // Capacity alone receives no spans, so there is no Service either.
                "/desired/resources/*/resource/kind":
                    patched(plain_kinds(&[]), json!({ "signals-agent-service": null })),
            })),
        ),
    ]
}

#[test]
fn run_function_cases() {
    support::run(cases());
}

// Relations between the responses to several requests, which no single
// case's want can state.

fn respond(req: Value) -> Value {
    let rsp = run_function(
        &serde_json::from_value(req).expect("a valid protojson RunFunctionRequest"),
        &Config::default(),
    );
    serde_json::to_value(&rsp).expect("responses serialize")
}

#[test]
fn same_request_same_response_and_kind_order_does_not_matter() {
    let kinds = |kinds: Value| {
        request(cluster(
            json!({ "signals": { "kinds": kinds } }),
            json!({ "providerConfigRef": { "name": "us-east-1" } }),
        ))
    };
    let a = kinds(
        json!([{ "name": "Cost" }, { "name": "RequestLifecycle", "sampleRate": 0.3 }, { "name": "Capacity" }]),
    );
    let b = kinds(
        json!([{ "name": "Capacity" }, { "name": "RequestLifecycle", "sampleRate": 0.3 }, { "name": "Cost" }]),
    );
    let first = respond(a.clone());
    assert_eq!(first, respond(a));
    assert_eq!(first, respond(b));
    // protobuf maps in the SDK's types are HashMaps, so the wire bytes of two
    // equal responses may order map entries differently; the rendered
    // manifests and the config bytes inside them do not vary.
}

/// The cases pin the annotation as the checksum of collector.yaml; this
/// checks that it changes exactly when the config does.
#[test]
fn a_config_change_changes_the_checksum() {
    let checksum = |rate: f64| {
        let rsp = respond(request(cluster(
            json!({ "signals": { "kinds": [{ "name": "RequestLifecycle", "sampleRate": rate }] } }),
            json!({ "providerConfigRef": { "name": "us-east-1" } }),
        )));
        assert_eq!(
            support::document(&rsp, "pod annotations"),
            pod_annotations(None)
        );
        support::part(
            &rsp,
            "agent#/spec/template/metadata/annotations/signals.modelplane.ai~1config-checksum",
        )
    };
    assert_eq!(checksum(0.5), checksum(0.5));
    assert_ne!(checksum(0.5), checksum(0.25));
}

#[test]
fn a_wrong_want_fails_naming_the_case_with_a_diff() {
    let wrong = vec![
        case(
            "a wrong part",
            request(capacity_cluster()),
            Want::Parts(json!({ "/meta/tag": "other", "/meta/ttl": "60s" })),
        ),
        case(
            "a response missing a field",
            request(cluster(json!({}), json!({}))),
            Want::Response(json!({ "meta": { "tag": "t1", "ttl": "60s" } })),
        ),
    ];
    let failure = std::panic::catch_unwind(|| support::run(wrong)).expect_err("both cases fail");
    let message = failure
        .downcast_ref::<String>()
        .expect("a formatted message");
    assert!(message.starts_with("2 of 2 cases failed\n"), "{message}");
    assert!(
        message.contains("--- a wrong part\nrun_function(...): -want +got\n/meta/tag:\n  -\"other\"\n  +\"t1\"\n\n"),
        "{message}"
    );
    assert!(
        message.contains("--- a response missing a field\nrun_function(...): -want +got\n/conditions:\n  -(absent)\n  +["),
        "{message}"
    );
}
