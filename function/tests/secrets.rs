//! No secret value or token literal ever leaves the function: secret-looking
//! values are fed through every input that could carry one (XR metadata and
//! unknown fields, header literals, URLs with credentials, request
//! credentials, the step input, observed resources, invalid fields that end
//! up in error messages) and looked for in the response and the render output.

use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use function_signals::render_cmd::{RenderOptions, render_output};
use function_signals::{Config, run_function};
use serde_json::{Value, json};
use support::{Case, Want, case};

mod support;

/// Distinct markers, so a failure says which input leaked.
const MARKERS: [&str; 11] = [
    "tok-annotation-7f3a",
    "tok-unknown-field-91c2",
    "sk-lf-header-literal-55aa",
    "sk-lf-userinfo-0b1d",
    "api-key-query-c3e4",
    "cred-bytes-d00d",
    "observed-secret-data-e1e1",
    "input-metadata-f00f",
    "tok-invalid-endpoint-9a9a",
    "copied-token-in-object-spec-7b7b",
    "copied-token-in-object-status-8c8c",
];

/// A literal header value is plain text in the XR, and the forwarder must
/// send it: it is written into the forwarder's ConfigMap, and nowhere else.
const LITERAL_HEADER: &str = "sk-lf-header-literal-55aa";

/// No marker in the response, nor in what `render` prints for it (a Fatal
/// result is the render's error text instead of its output); the literal
/// header only in the forwarder's ConfigMap.
fn leaks_nothing(req: &RunFunctionRequest, rsp: &RunFunctionResponse) -> Result<(), String> {
    let options = RenderOptions {
        include_function_results: true,
    };
    let mut without_config = rsp.clone();
    if let Some(config) = without_config
        .desired
        .as_mut()
        .and_then(|d| d.resources.remove("signals-trace-forwarder-config"))
    {
        let text = serde_json::to_string(&config).unwrap();
        let data = text.replace(LITERAL_HEADER, "");
        if data.contains("${env:") && !text.contains(LITERAL_HEADER) {
            return Err(format!(
                "the literal header is missing from the forwarder config: {text}"
            ));
        }
    }
    let wire = serde_json::to_string(&without_config).unwrap();
    let rendered = render_output(req, &without_config, &options).unwrap_or_else(|e| e);
    for marker in MARKERS {
        if wire.contains(marker) {
            return Err(format!("{marker} leaked into the response: {wire}"));
        }
        if rendered.contains(marker) {
            return Err(format!("{marker} leaked into render output: {rendered}"));
        }
    }
    Ok(())
}

fn request(xr: Value) -> Value {
    json!({
        "meta": { "tag": "t" },
        "input": { "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input",
            "metadata": { "annotations": { "token": "input-metadata-f00f" } } },
        "credentials": { "aggregator": { "credentialData": { "data": {
            "token": base64("cred-bytes-d00d"),
        } } } },
        "observed": {
            "composite": { "resource": xr },
            "resources": { "signals-agent-config": { "resource": {
                "apiVersion": "v1", "kind": "Secret",
                "metadata": { "annotations": { "crossplane.io/composition-resource-name": "signals-agent-config" } },
                "stringData": { "token": "observed-secret-data-e1e1" },
            } },
            // The token copy as provider-kubernetes leaves it: the patched value
            // persisted in the Object's spec, and (without --sanitize-secrets)
            // the workload Secret's data in its status.
            "signals-agent-token": { "resource": {
                "apiVersion": "kubernetes.m.crossplane.io/v1alpha1", "kind": "Object",
                "metadata": { "annotations": { "crossplane.io/composition-resource-name": "signals-agent-token" } },
                "spec": { "forProvider": { "manifest": {
                    "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "signals-agent-token" },
                    "data": { "token": "copied-token-in-object-spec-7b7b" },
                } } },
                "status": {
                    "atProvider": { "manifest": {
                        "apiVersion": "v1", "kind": "Secret",
                        "metadata": { "name": "signals-agent-token", "annotations": { "signals.modelplane.ai/token-generation": "2" } },
                        "data": { "token": "copied-token-in-object-status-8c8c" },
                    } },
                    "conditions": [{ "type": "Ready", "status": "True" }],
                },
            } },
            },
        },
    })
}

/// protojson carries bytes as base64.
fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn cluster(signals: Value) -> Value {
    json!({
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
        "metadata": { "name": "c1", "annotations": { "kubectl.kubernetes.io/last-applied-configuration": "{\"token\":\"tok-annotation-7f3a\"}" } },
        "spec": {
            "cluster": { "existing": { "kubeconfig": "tok-unknown-field-91c2" } },
            "signals": signals,
        },
        "status": { "providerConfigRef": { "name": "c1" } },
    })
}

fn model_service(endpoint: &str) -> Value {
    json!({
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
        "metadata": { "name": "chat", "namespace": "team-a", "annotations": { "note": "tok-annotation-7f3a" } },
        "spec": { "observability": { "traces": {
            "enabled": true,
            "endpoint": endpoint,
            "headers": {
                "x-api-key": { "value": "sk-lf-header-literal-55aa" },
                "Authorization": { "valueFrom": { "secretKeyRef": { "name": "langfuse", "key": "auth" } } },
            },
        } } },
    })
}

fn cases() -> Vec<Case> {
    let all_kinds = json!([
        { "name": "RequestLifecycle", "sampleRate": 0.5 }, { "name": "PrefixHash" }, { "name": "Capacity" },
        { "name": "ColdStart" }, { "name": "Cost" }, { "name": "Reliability" },
    ]);
    vec![
        case(
            "an InferenceCluster leaks nothing",
            request(cluster(json!({
                "kinds": all_kinds,
                "aggregator": { "endpoint": "agg.example:4317", "tokenSecretRef": { "name": "ingest", "key": "token" } },
            }))),
            Want::Parts(json!({
                "/results": null,
                "/desired/resources/signals-agent-deployment/resource/kind": "Object",
            })),
        ),
        case(
            "the token copy leaks nothing it observes",
            request(cluster(json!({ "kinds": [{ "name": "Capacity" }] }))),
            Want::Parts(json!({
                "/results": null,
                "/desired/resources/signals-agent-token/ready": "READY_TRUE",
                "/desired/resources/signals-agent-token/resource/spec/forProvider/manifest/kind": "Secret",
                "/desired/resources/signals-agent-token/resource/spec/forProvider/manifest/data": null,
                "/desired/resources/signals-agent-token/resource/spec/forProvider/manifest/stringData": null,
                // Only the observed generation is used.
                "pod annotations#/signals.modelplane.ai~1ingest-token-generation": "2",
            })),
        ),
        case(
            "an endpoint with credentials is refused without echoing them",
            request(cluster(json!({
                "kinds": [{ "name": "Capacity" }],
                "aggregator": { "endpoint": "tok-invalid-endpoint-9a9a@agg.example:4317" },
            }))),
            Want::Parts(json!({ "/results/0/severity": "SEVERITY_FATAL" })),
        ),
        case(
            "a ModelService's forwarder leaks nothing but its literal header",
            request(model_service("https://cloud.langfuse.com/api/public/otel")),
            Want::Parts(json!({
                "/results": null,
                "/desired/composite/resource/status/observability/policy/tracesEndpoint":
                    "https://cloud.langfuse.com/api/public/otel",
                "forwarder.yaml#/exporters/otlp_http~1backend/headers/x-api-key": LITERAL_HEADER,
            })),
        ),
        // Credentials in the URL would be written into the ConfigMap: refused.
        case(
            "an endpoint with user-info or a query is refused without echoing them",
            request(model_service(
                "https://pk:sk-lf-userinfo-0b1d@cloud.langfuse.com/api/public/otel?api_key=api-key-query-c3e4",
            )),
            Want::Parts(json!({
                "/results/0/message": "spec.observability.traces.endpoint: must be an http:// or https:// URL without user-info, query or fragment (credentials go in headers from a Secret), e.g. https://cloud.langfuse.com/api/public/otel",
            })),
        ),
        // Not http(s): validation fails, and the message must not carry the credentials.
        case(
            "an invalid ModelService endpoint is refused without echoing credentials",
            request(model_service(
                "ftp://user:tok-invalid-endpoint-9a9a@host/x?k=api-key-query-c3e4",
            )),
            Want::Parts(json!({
                "/results/0/message": "spec.observability.traces.endpoint: must be an http:// or https:// URL without user-info, query or fragment (credentials go in headers from a Secret), e.g. https://cloud.langfuse.com/api/public/otel",
            })),
        ),
    ]
}

#[test]
fn secrets_cases() {
    support::run_with(cases(), leaks_nothing);
}

#[test]
fn the_markers_would_be_found_if_they_leaked() {
    // The rendered config does carry the XR's name; a marker placed there must be caught.
    let mut xr = cluster(json!({ "kinds": [{ "name": "Capacity" }] }));
    xr["metadata"]["name"] = json!("tok-annotation-7f3a");
    let req: RunFunctionRequest = serde_json::from_value(request(xr)).unwrap();
    let rsp = run_function(&req, &Config::default());
    let wire = serde_json::to_string(&rsp).unwrap();
    assert!(wire.contains("tok-annotation-7f3a"));
    let caught = leaks_nothing(&req, &rsp).expect_err("the marker in the XR's name");
    assert!(
        caught.starts_with("tok-annotation-7f3a leaked into the response"),
        "{caught}"
    );
    assert_eq!(base64("cred-bytes-d00d"), "Y3JlZC1ieXRlcy1kMDBk");
}
