//! Table tests on the handler: a request in, the response out, one named case
//! per behaviour. Responses are compared as protojson, exactly where the
//! response is small and on the parts that matter where it renders an agent
//! (the examples' golden files pin those in full).

use std::time::Duration;

use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use function_signals::{Config, run_function};
use serde_json::{Value, json};

fn request(value: Value) -> RunFunctionRequest {
    serde_json::from_value(value).expect("a valid protojson RunFunctionRequest")
}

fn respond(req: Value) -> Value {
    respond_with(req, &Config::default())
}

fn respond_with(req: Value, config: &Config) -> Value {
    let rsp: RunFunctionResponse = run_function(&request(req), config);
    serde_json::to_value(&rsp).expect("responses serialize")
}

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

fn req_for(xr: Value) -> Value {
    json!({ "meta": { "tag": "t1" }, "observed": { "composite": { "resource": xr } } })
}

fn fatal(message: &str) -> Value {
    json!({
        "meta": { "tag": "t1", "ttl": "60s" },
        "results": [{ "severity": "SEVERITY_FATAL", "message": message, "reason": "InvalidInput", "target": "TARGET_COMPOSITE" }],
    })
}

fn desired_keys(rsp: &Value) -> Vec<String> {
    rsp["desired"]["resources"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn copies_the_tag() {
    let mut req = req_for(capacity_cluster());
    req["meta"]["tag"] = json!("opaque-tag-0123");
    assert_eq!(respond(req)["meta"]["tag"], "opaque-tag-0123");
}

#[test]
fn sets_the_configured_ttl_and_the_input_ttl_wins() {
    let config = Config {
        ttl: Duration::from_secs(30),
    };
    assert_eq!(
        respond_with(req_for(capacity_cluster()), &config)["meta"]["ttl"],
        "30s"
    );
    assert_eq!(respond(req_for(capacity_cluster()))["meta"]["ttl"], "60s");
    let mut req = req_for(capacity_cluster());
    req["input"] =
        json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "ttl": "2m" });
    assert_eq!(respond_with(req, &config)["meta"]["ttl"], "120s");
}

#[test]
fn passes_through_desired_state_and_context_of_earlier_steps() {
    let mut req = req_for(capacity_cluster());
    let bucket = json!({ "resource": { "apiVersion": "s3.aws.m.upbound.io/v1beta1", "kind": "Bucket", "spec": { "forProvider": { "region": "us-east-1", "size": 3.0 } } }, "ready": "READY_TRUE" });
    req["desired"] = json!({
        "composite": { "resource": { "status": { "providerConfigRef": { "name": "us-east-1" }, "gateway": { "address": "10.0.0.1" } } } },
        "resources": { "bucket": bucket },
    });
    req["context"] =
        json!({ "apiextensions.crossplane.io/environment": { "region": "us-east-1" } });
    let rsp = respond(req);
    assert_eq!(rsp["desired"]["resources"]["bucket"], bucket);
    assert_eq!(
        rsp["context"],
        json!({ "apiextensions.crossplane.io/environment": { "region": "us-east-1" } })
    );
    // The earlier step's XR status survives; this step adds only its own field.
    assert_eq!(
        rsp["desired"]["composite"]["resource"],
        json!({ "status": {
            "providerConfigRef": { "name": "us-east-1" },
            "gateway": { "address": "10.0.0.1" },
            "signals": { "enabledKinds": ["Capacity"] },
        } })
    );
}

#[test]
fn waits_for_the_provider_config() {
    let xr = cluster(
        json!({ "signals": { "kinds": [{ "name": "Capacity" }] } }),
        json!({}),
    );
    assert_eq!(
        respond(req_for(xr)),
        json!({
            "meta": { "tag": "t1", "ttl": "60s" },
            "desired": { "composite": { "resource": { "status": { "signals": { "enabledKinds": ["Capacity"] } } } } },
            "conditions": [{
                "type": "AgentReady",
                "status": "STATUS_CONDITION_FALSE",
                "reason": "WaitingForProviderConfig",
                "message": "waiting for status.providerConfigRef.name, the ProviderConfig of the workload cluster; no agent is rendered until it is set",
            }],
        })
    );
}

#[test]
fn takes_the_provider_config_from_the_desired_composite() {
    let xr = cluster(
        json!({ "signals": { "kinds": [{ "name": "Capacity" }] } }),
        json!({}),
    );
    let mut req = req_for(xr);
    req["desired"] = json!({ "composite": { "resource": { "status": { "providerConfigRef": { "name": "resolved-by-step-1", "kind": "ProviderConfig" } } } } });
    let rsp = respond(req);
    let deployment = &rsp["desired"]["resources"]["signals-agent-deployment"]["resource"];
    assert_eq!(deployment["kind"], "Object");
    assert_eq!(
        deployment["apiVersion"],
        "kubernetes.m.crossplane.io/v1alpha1"
    );
    assert_eq!(
        deployment["spec"]["providerConfigRef"],
        json!({ "kind": "ProviderConfig", "name": "resolved-by-step-1" })
    );
    assert_eq!(deployment["metadata"]["namespace"], "modelplane-system");
    assert_eq!(
        deployment["spec"]["forProvider"]["manifest"]["kind"],
        "Deployment"
    );
}

#[test]
fn multi_cluster_wraps_every_resource_in_an_object() {
    let rsp = respond(req_for(capacity_cluster()));
    assert_eq!(
        desired_keys(&rsp),
        [
            "signals-agent-clusterrole",
            "signals-agent-clusterrolebinding",
            "signals-agent-config",
            "signals-agent-deployment",
            "signals-agent-serviceaccount",
            "signals-agent-token",
        ]
    );
    for (key, resource) in rsp["desired"]["resources"].as_object().unwrap() {
        let object = &resource["resource"];
        assert_eq!(object["kind"], "Object", "{key}");
        assert_eq!(
            object["spec"]["providerConfigRef"],
            json!({ "kind": "ClusterProviderConfig", "name": "us-east-1" }),
            "{key}"
        );
        assert!(
            object["metadata"].get("name").is_none(),
            "{key}: Crossplane names composed resources"
        );
    }
}

#[test]
fn single_cluster_mode_renders_plain_resources() {
    let mut req = req_for(cluster(
        json!({ "signals": { "kinds": [{ "name": "RequestLifecycle" }], "agent": { "scrapeNamespaces": ["team-b", "team-a"] } } }),
        json!({}),
    ));
    req["input"] = json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "SingleCluster" });
    let rsp = respond(req);
    let kinds: Vec<(String, String)> = rsp["desired"]["resources"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                r["resource"]["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("signals-agent-clusterrole", "ClusterRole"),
        ("signals-agent-clusterrolebinding", "ClusterRoleBinding"),
        ("signals-agent-config", "ConfigMap"),
        ("signals-agent-deployment", "Deployment"),
        ("signals-agent-role-team-a", "Role"),
        ("signals-agent-role-team-b", "Role"),
        ("signals-agent-rolebinding-team-a", "RoleBinding"),
        ("signals-agent-rolebinding-team-b", "RoleBinding"),
        ("signals-agent-service", "Service"),
        ("signals-agent-serviceaccount", "ServiceAccount"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    assert_eq!(kinds, expected);
    // Scraping limited to namespaces: pods only through Roles; the ClusterRole keeps /metrics for the EPP.
    let cluster_role = &rsp["desired"]["resources"]["signals-agent-clusterrole"]["resource"];
    assert_eq!(
        cluster_role["rules"],
        json!([{ "nonResourceURLs": ["/metrics"], "verbs": ["get"] }])
    );
    let role = &rsp["desired"]["resources"]["signals-agent-role-team-a"]["resource"];
    assert_eq!(role["metadata"]["namespace"], "team-a");
    assert_eq!(
        role["rules"],
        json!([{ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] }])
    );
}

#[test]
fn readiness_comes_from_observed_state() {
    let mut req = req_for(capacity_cluster());
    let object = |ready: &str| {
        json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
            "status": { "conditions": [{ "type": "Ready", "status": ready }, { "type": "Synced", "status": "True" }] } } })
    };
    req["observed"]["resources"] = json!({
        "signals-agent-deployment": object("True"),
        "signals-agent-config": object("False"),
        "signals-agent-serviceaccount": object("True"),
        "signals-agent-clusterrole": object("True"),
        "signals-agent-token": object("True"),
    });
    let rsp = respond(req);
    let ready = |key: &str| rsp["desired"]["resources"][key]["ready"].clone();
    assert_eq!(ready("signals-agent-deployment"), "READY_TRUE");
    assert_eq!(ready("signals-agent-serviceaccount"), "READY_TRUE");
    assert_eq!(ready("signals-agent-config"), "READY_FALSE");
    assert_eq!(
        ready("signals-agent-clusterrolebinding"),
        "READY_FALSE",
        "not observed yet"
    );
    assert_eq!(
        rsp["conditions"],
        json!([{ "type": "AgentReady", "status": "STATUS_CONDITION_FALSE", "reason": "Creating",
            "message": "waiting for signals-agent-clusterrolebinding, signals-agent-config to become ready in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1" }])
    );
}

#[test]
fn plain_deployment_is_ready_when_all_replicas_are_available() {
    let deployment = |generation: i64, observed: i64, available: i64| {
        json!({ "resource": { "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "generation": generation },
            "spec": { "replicas": 2 }, "status": { "observedGeneration": observed, "availableReplicas": available } } })
    };
    for (observed, want) in [
        (deployment(2, 2, 2), "READY_TRUE"),
        (deployment(2, 2, 1), "READY_FALSE"),
        (deployment(3, 2, 2), "READY_FALSE"),
    ] {
        let mut req = req_for(capacity_cluster());
        req["input"] = json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "SingleCluster" });
        req["observed"]["resources"] = json!({ "signals-agent-deployment": observed.clone() });
        let rsp = respond(req);
        assert_eq!(
            rsp["desired"]["resources"]["signals-agent-deployment"]["ready"], want,
            "{observed}"
        );
    }
}

#[test]
fn all_ready_sets_agent_ready_true() {
    let mut req = req_for(capacity_cluster());
    let ready = json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object", "status": { "conditions": [{ "type": "Ready", "status": "True" }] } } });
    let keys = desired_keys(&respond(req_for(capacity_cluster())));
    req["observed"]["resources"] = keys.iter().map(|k| (k.clone(), ready.clone())).collect();
    let rsp = respond(req);
    assert_eq!(
        rsp["conditions"],
        json!([{ "type": "AgentReady", "status": "STATUS_CONDITION_TRUE", "reason": "Available",
            "message": "the signals agent runs in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1" }])
    );
}

#[test]
fn no_signals_spec_renders_nothing_and_says_so() {
    let xr = cluster(
        json!({}),
        json!({ "providerConfigRef": { "name": "us-east-1" } }),
    );
    assert_eq!(
        respond(req_for(xr)),
        json!({
            "meta": { "tag": "t1", "ttl": "60s" },
            "desired": { "composite": { "resource": { "status": { "signals": { "enabledKinds": [] } } } } },
            "conditions": [{ "type": "AgentReady", "status": "STATUS_CONDITION_FALSE", "reason": "SignalsDisabled",
                "message": "spec.signals is not set, so no signals agent is rendered" }],
        })
    );
}

#[test]
fn empty_kinds_render_nothing_and_say_so() {
    let xr = cluster(
        json!({ "signals": { "kinds": [] } }),
        json!({ "providerConfigRef": { "name": "us-east-1" } }),
    );
    let rsp = respond(req_for(xr));
    assert!(desired_keys(&rsp).is_empty());
    assert_eq!(rsp["conditions"][0]["reason"], "NoSignalKinds");
}

#[test]
fn desired_xr_carries_only_status() {
    let rsp = respond(req_for(capacity_cluster()));
    let composite = rsp["desired"]["composite"]["resource"].as_object().unwrap();
    assert_eq!(composite.keys().collect::<Vec<_>>(), ["status"]);
}

#[test]
fn model_service_surfaces_the_effective_policy_without_header_values() {
    let xr = json!({
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
        "metadata": { "name": "chat", "namespace": "team-a" },
        "spec": { "observability": {
            "metrics": { "scope": "Fleet" },
            "traces": { "enabled": true, "endpoint": "https://pk-lf-1:sk-lf-2@cloud.langfuse.com/api/public/otel?key=k",
                "headers": { "x-api-key": { "value": "lsv2_pt_literal" }, "Authorization": { "valueFrom": { "secretKeyRef": { "name": "creds", "key": "auth" } } } } },
        } },
    });
    assert_eq!(
        respond(req_for(xr)),
        json!({
            "meta": { "tag": "t1", "ttl": "60s" },
            "desired": { "composite": { "resource": { "status": { "observability": { "policy": {
                "metricsScope": "Fleet",
                "tracesEnabled": true,
                "tracesEndpoint": "https://cloud.langfuse.com/api/public/otel",
                "tracesProtocol": "http/protobuf",
                "tracesSamplingRatio": 1.0,
                "tracesHeaderNames": ["Authorization", "x-api-key"],
            } } } } } },
            "conditions": [
                { "type": "ObservabilityPolicy", "status": "STATUS_CONDITION_TRUE", "reason": "Resolved",
                  "message": "the effective policy is in status.observability.policy" },
                { "type": "TraceForwarding", "status": "STATUS_CONDITION_FALSE", "reason": "ForwarderNotAvailable",
                  "message": "this version of function-signals records the trace policy but does not render a trace forwarder yet" },
            ],
        })
    );
}

#[test]
fn model_service_without_observability_gets_the_default_policy() {
    let xr = json!({ "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService", "metadata": { "name": "chat", "namespace": "team-a" }, "spec": {} });
    let rsp = respond(req_for(xr));
    assert_eq!(
        rsp["desired"]["composite"]["resource"]["status"]["observability"]["policy"],
        json!({ "metricsScope": "PerTenant", "tracesEnabled": false })
    );
    assert_eq!(rsp["conditions"].as_array().unwrap().len(), 1);
}

#[test]
fn same_request_same_response_and_kind_order_does_not_matter() {
    let spec = |kinds: Value| {
        cluster(
            json!({ "signals": { "kinds": kinds } }),
            json!({ "providerConfigRef": { "name": "us-east-1" } }),
        )
    };
    let a = req_for(spec(
        json!([{ "name": "Cost" }, { "name": "RequestLifecycle", "sampleRate": 0.3 }, { "name": "Capacity" }]),
    ));
    let b = req_for(spec(
        json!([{ "name": "Capacity" }, { "name": "RequestLifecycle", "sampleRate": 0.3 }, { "name": "Cost" }]),
    ));
    let first = respond(a.clone());
    assert_eq!(first, respond(a));
    assert_eq!(first, respond(b));
    // protobuf maps in the SDK's types are HashMaps, so the wire bytes of two
    // equal responses may order map entries differently; the rendered
    // manifests and the config bytes inside them do not vary.
}

#[test]
fn a_config_change_changes_the_checksum() {
    let checksum = |rate: f64| {
        let xr = cluster(
            json!({ "signals": { "kinds": [{ "name": "RequestLifecycle", "sampleRate": rate }] } }),
            json!({ "providerConfigRef": { "name": "us-east-1" } }),
        );
        let rsp = respond(req_for(xr));
        let deployment = &rsp["desired"]["resources"]["signals-agent-deployment"]["resource"]["spec"]
            ["forProvider"]["manifest"];
        let config =
            rsp["desired"]["resources"]["signals-agent-config"]["resource"]["spec"]["forProvider"]
                ["manifest"]["data"]["collector.yaml"]
                .as_str()
                .unwrap()
                .to_string();
        let annotation = deployment["spec"]["template"]["metadata"]["annotations"]["signals.modelplane.ai/config-checksum"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            annotation,
            function_signals::render::deployment::config_checksum(&config)
        );
        annotation
    };
    assert_eq!(checksum(0.5), checksum(0.5));
    assert_ne!(checksum(0.5), checksum(0.25));
}

#[test]
fn sampled_span_kinds_get_a_sampler_and_tags() {
    let xr = cluster(
        json!({ "signals": { "kinds": [{ "name": "RequestLifecycle", "sampleRate": 0.1 }, { "name": "PrefixHash", "sampleRate": 0.5 }] } }),
        json!({ "providerConfigRef": { "name": "us-east-1" } }),
    );
    let rsp = respond(req_for(xr));
    let text = rsp["desired"]["resources"]["signals-agent-config"]["resource"]["spec"]["forProvider"]["manifest"]["data"]["collector.yaml"]
        .as_str()
        .unwrap();
    let config: Value = serde_yaml::from_str(text).unwrap();
    assert_eq!(
        config["processors"]["probabilistic_sampler/request_lifecycle"],
        json!({ "sampling_percentage": 10.0 })
    );
    assert_eq!(
        config["processors"]["probabilistic_sampler/prefix_hash"],
        json!({ "sampling_percentage": 50.0 })
    );
    assert_eq!(
        config["processors"]["transform/tag_request_lifecycle"]["trace_statements"],
        json!([{ "context": "span", "statements": [
            r#"set(span.attributes["modelplane.signal"], "RequestLifecycle")"#,
            r#"set(span.attributes["modelplane.sample_rate"], 0.1)"#,
        ] }])
    );
    // Both span kinds at one rate share a pipeline and carry no kind tag.
    let xr = cluster(
        json!({ "signals": { "kinds": [{ "name": "RequestLifecycle" }, { "name": "PrefixHash" }] } }),
        json!({ "providerConfigRef": { "name": "us-east-1" } }),
    );
    let rsp = respond(req_for(xr));
    let text = rsp["desired"]["resources"]["signals-agent-config"]["resource"]["spec"]["forProvider"]["manifest"]["data"]["collector.yaml"]
        .as_str()
        .unwrap();
    let config: Value = serde_yaml::from_str(text).unwrap();
    let pipelines: Vec<&String> = config["service"]["pipelines"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(pipelines, ["metrics", "traces/spans"]);
    assert_eq!(
        config["processors"]["transform/tag_spans"]["trace_statements"],
        json!([{ "context": "span", "statements": [r#"set(span.attributes["modelplane.sample_rate"], 1.0)"#] }])
    );
}

// ---- Fatal paths: one Fatal result naming the field, desired state untouched ----

fn assert_fatal(req: Value, message: &str) {
    assert_eq!(respond(req), fatal(message));
}

#[test]
fn fatal_without_an_observed_composite() {
    assert_fatal(
        json!({ "meta": { "tag": "t1" } }),
        "the request has no observed composite resource",
    );
}

#[test]
fn fatal_for_a_kind_this_function_does_not_compose() {
    let xr =
        json!({ "apiVersion": "example.org/v1", "kind": "Bucket", "metadata": { "name": "b" } });
    assert_fatal(
        req_for(xr),
        r#"function-signals composes modelplane.ai/v1alpha1 InferenceCluster and ModelService, not "example.org/v1" "Bucket""#,
    );
}

#[test]
fn fatal_for_bad_input() {
    let cases = [
        (
            json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "Everywhere" }),
            "input.mode: unknown variant `Everywhere`, expected `MultiCluster` or `SingleCluster`",
        ),
        (
            json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "ttl": "soon" }),
            r#"input.ttl: "soon" is not a duration such as 60s, 5m or 1m30s"#,
        ),
        (
            json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "agregatorEndpoint": "x:1" }),
            "input.agregatorEndpoint: unknown field `agregatorEndpoint`, expected one of `apiVersion`, `kind`, `metadata`, `mode`, `ttl`, `aggregatorEndpoint`, `collectorImage`, `objectNamespace`, `providerConfigKind`, `tokenNamespace`",
        ),
        (
            json!({ "apiVersion": "pt.fn.crossplane.io/v1beta1", "kind": "Resources" }),
            "input: want apiVersion signals.fn.modelplane.ai/v1beta1 and kind Input, got pt.fn.crossplane.io/v1beta1 Resources",
        ),
        (
            json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "aggregatorEndpoint": "user:pw@agg:4317" }),
            r#"input.aggregatorEndpoint: "user:pw@agg:4317" is not host:port"#,
        ),
        (
            json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "tokenNamespace": "ns/../kube-system" }),
            r#"input.tokenNamespace: "ns/../kube-system" is not a valid namespace name"#,
        ),
    ];
    for (input, message) in cases {
        let mut req = req_for(capacity_cluster());
        req["input"] = input;
        req["desired"] = json!({ "resources": { "earlier": { "resource": { "kind": "Kept" } } } });
        let mut want = fatal(message);
        want["desired"] = req["desired"].clone();
        assert_eq!(respond(req), want, "{message}");
    }
}

#[test]
fn fatal_for_a_malformed_spec_names_the_field() {
    let cases = [
        (
            json!({ "signals": { "kinds": [{ "name": "Latency" }] } }),
            "spec.signals.kinds[0].name: unknown variant `Latency`, expected one of `RequestLifecycle`, `PrefixHash`, `Capacity`, `ColdStart`, `Cost`, `Reliability`",
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Cost" }], "cost": { "pricing": [{ "gpu": "L4", "pricePerGpuHour": "cheap" }] } } }),
            "spec.signals.cost.pricing[0].pricePerGpuHour: invalid type: string \"cheap\", expected f64",
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "retention": { "sketches": "1w" } } }),
            "spec.signals.retention.sketches: invalid duration \"1w\": want a positive whole number followed by one of s, m, h, d (for example 30d)",
        ),
    ];
    for (spec, message) in cases {
        assert_fatal(
            req_for(cluster(
                spec,
                json!({ "providerConfigRef": { "name": "c" } }),
            )),
            message,
        );
    }
}

#[test]
fn fatal_for_an_invalid_spec_names_the_field() {
    let cases = [
        (
            json!({ "signals": { "kinds": [{ "name": "RequestLifecycle", "sampleRate": 1.5 }] } }),
            "spec.signals.kinds[0].sampleRate: must be between 0 and 1, got 1.5",
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Cost" }, { "name": "Cost" }] } }),
            "spec.signals.kinds[1].name: Cost is listed more than once",
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Capacity", "sampleRate": 0.5 }] } }),
            "spec.signals.kinds[0].sampleRate: Capacity comes from scraped metrics, which cannot be sampled; remove sampleRate or set it to 1",
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "agent": { "resources": { "limits": { "memory": "lots" } } } } }),
            r#"spec.signals.agent.resources.limits.memory: "lots" is not a Kubernetes quantity such as 500m, 2 or 1Gi"#,
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "aggregator": { "endpoint": "https://agg:4317" } } }),
            r#"spec.signals.aggregator.endpoint: "https://agg:4317" is not host:port"#,
        ),
        (
            json!({ "signals": { "kinds": [{ "name": "Capacity" }], "aggregator": { "endpoint": "tok3n@agg:4317" } } }),
            r#"spec.signals.aggregator.endpoint: "agg:4317" carries user-info; the ingest token belongs in the Secret named by tokenSecretRef"#,
        ),
    ];
    for (spec, message) in cases {
        assert_fatal(
            req_for(cluster(
                spec,
                json!({ "providerConfigRef": { "name": "c" } }),
            )),
            message,
        );
    }
}

#[test]
fn fatal_for_an_invalid_model_service() {
    let service = |observability: Value| {
        json!({ "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService", "metadata": { "name": "chat", "namespace": "team-a" },
            "spec": { "observability": observability } })
    };
    let cases = [
        (
            json!({ "traces": { "enabled": true } }),
            "spec.observability.traces.endpoint: is required when traces.enabled is true",
        ),
        (
            json!({ "traces": { "enabled": true, "endpoint": "https://x", "headers": { "Authorization": { "value": "v", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } } } } }),
            "spec.observability.traces.headers[Authorization]: set exactly one of value or valueFrom",
        ),
        (
            json!({ "metrics": { "scope": "Global" } }),
            "spec.observability.metrics.scope: unknown variant `Global`, expected `PerTenant` or `Fleet`",
        ),
        (
            json!({ "traces": { "enabled": true, "endpoint": "https://x", "sampling": { "ratio": -0.1 } } }),
            "spec.observability.traces.sampling.ratio: must be between 0 and 1, got -0.1",
        ),
    ];
    for (observability, message) in cases {
        assert_fatal(req_for(service(observability)), message);
    }
}

// --- The ingest token: copy to the workload cluster, rotation rollout. ---

fn input(extra: Value) -> Value {
    let mut input = json!({ "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input" });
    input
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    input
}

fn issued_token_status(namespace: &str, generation: i64) -> Value {
    json!({ "ingestToken": {
        "secretName": "signals-ingest-us-east-1", "secretNamespace": namespace,
        "generation": generation, "issuedAt": "2026-11-20T09:00:00Z",
    } })
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

fn pod_annotations(rsp: &Value) -> Value {
    let deployment = &rsp["desired"]["resources"]["signals-agent-deployment"]["resource"];
    let manifest = if deployment["kind"] == "Object" {
        &deployment["spec"]["forProvider"]["manifest"]
    } else {
        deployment
    };
    let mut annotations = manifest["spec"]["template"]["metadata"]["annotations"].clone();
    annotations
        .as_object_mut()
        .unwrap()
        .remove("signals.modelplane.ai/config-checksum")
        .expect("the config checksum is always there");
    annotations
}

fn token_env(rsp: &Value) -> Value {
    let deployment = &rsp["desired"]["resources"]["signals-agent-deployment"]["resource"];
    let manifest = if deployment["kind"] == "Object" {
        &deployment["spec"]["forProvider"]["manifest"]
    } else {
        deployment
    };
    manifest["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "MODELPLANE_INGEST_TOKEN")
        .expect("the token env var")
        .clone()
}

fn secret_key_ref(name: &str) -> Value {
    json!({ "name": "MODELPLANE_INGEST_TOKEN", "valueFrom": { "secretKeyRef": { "name": name, "key": "token", "optional": false } } })
}

#[test]
fn multi_cluster_copies_the_issued_token_to_the_workload_cluster() {
    let rsp = respond(req_for(capacity_cluster()));
    let labels = json!({
        "app.kubernetes.io/component": "telemetry-agent",
        "app.kubernetes.io/instance": "us-east-1",
        "app.kubernetes.io/managed-by": "function-signals",
        "app.kubernetes.io/name": "signals-agent",
        "app.kubernetes.io/part-of": "modelplane-signals",
        "app.kubernetes.io/version": "0.159.0",
        "signals.modelplane.ai/inference-cluster": "us-east-1",
    });
    let from_issued = |path: &str| {
        json!({
            "patchesFrom": { "apiVersion": "v1", "kind": "Secret", "name": "signals-ingest-us-east-1",
                "namespace": "modelplane-system", "fieldPath": path },
            "toFieldPath": path,
        })
    };
    assert_eq!(
        rsp["desired"]["resources"]["signals-agent-token"],
        json!({
            "resource": {
                "apiVersion": "kubernetes.m.crossplane.io/v1alpha1",
                "kind": "Object",
                "metadata": { "namespace": "modelplane-system", "labels": labels },
                "spec": {
                    "providerConfigRef": { "kind": "ClusterProviderConfig", "name": "us-east-1" },
                    "readiness": { "policy": "SuccessfulCreate" },
                    "forProvider": { "manifest": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": { "name": "signals-agent-token", "namespace": "modelplane-system", "labels": labels },
                        "type": "Opaque",
                    } },
                    "references": [
                        from_issued("data.token"),
                        from_issued("metadata.annotations[signals.modelplane.ai/token-generation]"),
                    ],
                },
            },
            "ready": "READY_FALSE",
        })
    );
    assert_eq!(token_env(&rsp), secret_key_ref("signals-agent-token"));
    assert_eq!(
        pod_annotations(&rsp),
        json!({}),
        "no generation is known yet"
    );
    assert!(rsp.get("results").is_none(), "{}", rsp["results"]);
}

#[test]
fn the_token_copy_follows_the_step_input_and_the_agent_namespace() {
    let mut xr = capacity_cluster();
    xr["spec"]["signals"]["agent"] = json!({ "namespace": "signals" });
    let mut req = req_for(xr);
    req["input"] = input(json!({ "tokenNamespace": "signal-tokens", "objectNamespace": "infra" }));
    let rsp = respond(req);
    let object = &rsp["desired"]["resources"]["signals-agent-token"]["resource"];
    assert_eq!(object["metadata"]["namespace"], "infra");
    let manifest = &object["spec"]["forProvider"]["manifest"];
    assert_eq!(
        (
            &manifest["metadata"]["name"],
            &manifest["metadata"]["namespace"]
        ),
        (&json!("signals-agent-token"), &json!("signals"))
    );
    for reference in object["spec"]["references"].as_array().unwrap() {
        assert_eq!(
            (
                &reference["patchesFrom"]["name"],
                &reference["patchesFrom"]["namespace"]
            ),
            (&json!("signals-ingest-us-east-1"), &json!("signal-tokens"))
        );
    }
}

#[test]
fn a_token_secret_ref_is_the_users_secret_and_nothing_is_copied() {
    let mut xr = capacity_cluster();
    xr["spec"]["signals"]["aggregator"] =
        json!({ "tokenSecretRef": { "name": "my-ingest", "key": "bearer" } });
    let rsp = respond(req_for(xr));
    assert!(!desired_keys(&rsp).contains(&"signals-agent-token".to_string()));
    assert_eq!(
        token_env(&rsp),
        json!({ "name": "MODELPLANE_INGEST_TOKEN", "valueFrom": { "secretKeyRef": { "name": "my-ingest", "key": "bearer", "optional": false } } })
    );
}

#[test]
fn the_pod_template_carries_the_token_generation_the_agent_will_read() {
    let with_ref = json!({ "tokenSecretRef": { "name": "my-ingest", "key": "token" } });
    /// (case, aggregator spec, issued generation in status, observed copy generation, SingleCluster, want)
    type Case<'a> = (&'a str, Value, Option<i64>, Option<&'a str>, bool, Value);
    let cases: [Case; 8] = [
        ("nothing known", json!({}), None, None, false, json!({})),
        (
            "issued, not copied yet",
            json!({}),
            Some(4),
            None,
            false,
            json!("4"),
        ),
        (
            "copy lags the issuer",
            json!({}),
            Some(4),
            Some("3"),
            false,
            json!("3"),
        ),
        (
            "copy caught up",
            json!({}),
            Some(4),
            Some("4"),
            false,
            json!("4"),
        ),
        (
            "copy ahead of the status",
            json!({}),
            Some(4),
            Some("5"),
            false,
            json!("5"),
        ),
        (
            "unreadable copy generation",
            json!({}),
            Some(4),
            Some("v5"),
            false,
            json!("4"),
        ),
        (
            "user's Secret: the issuer's generation",
            with_ref,
            Some(4),
            Some("3"),
            false,
            json!("4"),
        ),
        ("single cluster", json!({}), Some(7), None, true, json!("7")),
    ];
    for (case, aggregator, issued, copied, single_cluster, want) in cases {
        let mut xr = capacity_cluster();
        xr["spec"]["signals"]["aggregator"] = aggregator;
        if let Some(generation) = issued {
            xr["status"]["signals"] = issued_token_status("modelplane-system", generation);
        }
        let mut req = req_for(xr);
        if let Some(generation) = copied {
            req["observed"]["resources"] =
                json!({ "signals-agent-token": observed_copy(generation, "True") });
        }
        if single_cluster {
            req["input"] = input(json!({ "mode": "SingleCluster" }));
        }
        let rsp = respond(req);
        let want = match want {
            Value::String(_) => json!({ "signals.modelplane.ai/ingest-token-generation": want }),
            other => other,
        };
        assert_eq!(pod_annotations(&rsp), want, "{case}");
    }
}

#[test]
fn the_agent_waits_for_the_token_copy_and_says_where_it_comes_from() {
    let mut req = req_for(capacity_cluster());
    let ready = json!({ "resource": { "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object", "status": { "conditions": [{ "type": "Ready", "status": "True" }] } } });
    let mut observed: serde_json::Map<String, Value> = desired_keys(&respond(req.clone()))
        .into_iter()
        .map(|k| (k, ready.clone()))
        .collect();
    observed.insert("signals-agent-token".into(), observed_copy("1", "False"));
    req["observed"]["resources"] = Value::Object(observed);
    let rsp = respond(req);
    assert_eq!(
        rsp["desired"]["resources"]["signals-agent-token"]["ready"],
        "READY_FALSE"
    );
    assert_eq!(
        rsp["conditions"],
        json!([{ "type": "AgentReady", "status": "STATUS_CONDITION_FALSE", "reason": "Creating",
            "message": "waiting for signals-agent-token to become ready in namespace modelplane-system of the cluster behind ClusterProviderConfig us-east-1; signals-agent-token is copied from Secret modelplane-system/signals-ingest-us-east-1 on the control plane, which signal-aggregator issues" }])
    );
}

#[test]
fn warns_when_the_status_names_another_token_secret() {
    let mut xr = capacity_cluster();
    xr["status"]["signals"] = issued_token_status("signals-system", 1);
    let rsp = respond(req_for(xr.clone()));
    assert_eq!(
        rsp["results"],
        json!([{ "severity": "SEVERITY_WARNING", "target": "TARGET_COMPOSITE", "reason": "IngestTokenElsewhere",
            "message": "status.signals.ingestToken names Secret signals-system/signals-ingest-us-east-1, but the token is copied from modelplane-system/signals-ingest-us-east-1: set the step input's tokenNamespace to the aggregator's --token-namespace" }])
    );
    assert!(rsp["desired"]["resources"]["signals-agent-token"].is_object());
    let mut req = req_for(xr);
    req["input"] = input(json!({ "tokenNamespace": "signals-system" }));
    assert!(
        respond(req).get("results").is_none(),
        "matching namespaces: no warning"
    );
}

#[test]
fn single_cluster_reads_the_issued_secret_when_it_can() {
    let single = |agent: Value, extra: Value| {
        let mut xr = capacity_cluster();
        xr["spec"]["signals"]["agent"] = agent;
        let mut req = req_for(xr);
        let mut step = json!({ "mode": "SingleCluster" });
        step.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        req["input"] = input(step);
        respond(req)
    };
    // Default namespaces: the agent runs where the aggregator issues the token.
    let rsp = single(json!({}), json!({}));
    assert_eq!(token_env(&rsp), secret_key_ref("signals-ingest-us-east-1"));
    assert!(rsp.get("results").is_none());
    assert!(
        !desired_keys(&rsp).contains(&"signals-agent-token".to_string()),
        "nothing to copy on one cluster"
    );
    let rsp = single(
        json!({ "namespace": "signals" }),
        json!({ "tokenNamespace": "signals" }),
    );
    assert_eq!(token_env(&rsp), secret_key_ref("signals-ingest-us-east-1"));
    // Elsewhere a Pod cannot read it: the default name, and a warning saying what to do.
    let rsp = single(json!({ "namespace": "signals" }), json!({}));
    assert_eq!(token_env(&rsp), secret_key_ref("signals-agent-token"));
    assert_eq!(
        rsp["results"],
        json!([{ "severity": "SEVERITY_WARNING", "target": "TARGET_COMPOSITE", "reason": "IngestTokenUnreachable",
            "message": "the agent runs in namespace signals but its ingest token is issued into Secret modelplane-system/signals-ingest-us-east-1, which a Pod cannot read across namespaces: set spec.signals.aggregator.tokenSecretRef to a Secret in signals that holds the token, or run the agent in modelplane-system (the step input's tokenNamespace)" }])
    );
    assert!(
        desired_keys(&rsp)
            .iter()
            .all(|k| rsp["desired"]["resources"][k]["resource"]["kind"] != "Secret"),
        "the function never renders a Secret in SingleCluster mode"
    );
}
