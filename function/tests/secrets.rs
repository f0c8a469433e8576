//! No secret value or token literal ever leaves the function: secret-looking
//! values are fed through every input that could carry one (XR metadata and
//! unknown fields, header literals, URLs with credentials, request
//! credentials, the step input, observed resources, invalid fields that end
//! up in error messages) and looked for in the response and the render output.

use function_sdk_rust::proto::v1::RunFunctionRequest;
use function_signals::render_cmd::{RenderOptions, render_output};
use function_signals::{Config, run_function};
use serde_json::{Value, json};

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

fn assert_clean(req: Value) -> Value {
    let req: RunFunctionRequest = serde_json::from_value(req).unwrap();
    let rsp = run_function(&req, &Config::default());
    let wire = serde_json::to_string(&rsp).unwrap();
    // A Fatal result is the render's error text instead of its output.
    let options = RenderOptions {
        include_function_results: true,
    };
    let rendered = render_output(&req, &rsp, &options).unwrap_or_else(|e| e);
    for marker in MARKERS {
        assert!(
            !wire.contains(marker),
            "{marker} leaked into the response: {wire}"
        );
        assert!(
            !rendered.contains(marker),
            "{marker} leaked into render output: {rendered}"
        );
    }
    serde_json::to_value(&rsp).unwrap()
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

#[test]
fn an_inference_cluster_leaks_nothing() {
    let all_kinds = json!([
        { "name": "RequestLifecycle", "sampleRate": 0.5 }, { "name": "PrefixHash" }, { "name": "Capacity" },
        { "name": "ColdStart" }, { "name": "Cost" }, { "name": "Reliability" },
    ]);
    let rsp = assert_clean(request(cluster(json!({
        "kinds": all_kinds,
        "aggregator": { "endpoint": "agg.example:4317", "tokenSecretRef": { "name": "ingest", "key": "token" } },
    }))));
    assert!(rsp.get("results").is_none());
    assert!(rsp["desired"]["resources"]["signals-agent-deployment"].is_object());
}

#[test]
fn the_token_copy_leaks_nothing_it_observes() {
    let rsp = assert_clean(request(cluster(
        json!({ "kinds": [{ "name": "Capacity" }] }),
    )));
    assert!(rsp.get("results").is_none());
    let copy = &rsp["desired"]["resources"]["signals-agent-token"];
    assert_eq!(copy["ready"], "READY_TRUE");
    let manifest = &copy["resource"]["spec"]["forProvider"]["manifest"];
    assert_eq!(manifest["kind"], "Secret");
    assert!(manifest.get("data").is_none() && manifest.get("stringData").is_none());
    // Only the observed generation is used.
    let deployment = &rsp["desired"]["resources"]["signals-agent-deployment"]["resource"];
    assert_eq!(
        deployment["spec"]["forProvider"]["manifest"]["spec"]["template"]["metadata"]["annotations"]
            ["signals.modelplane.ai/ingest-token-generation"],
        "2"
    );
}

#[test]
fn an_endpoint_with_credentials_is_refused_without_echoing_them() {
    let rsp = assert_clean(request(cluster(json!({
        "kinds": [{ "name": "Capacity" }],
        "aggregator": { "endpoint": "tok-invalid-endpoint-9a9a@agg.example:4317" },
    }))));
    assert_eq!(rsp["results"][0]["severity"], "SEVERITY_FATAL");
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

#[test]
fn a_model_service_leaks_nothing() {
    let rsp = assert_clean(request(model_service(
        "https://pk:sk-lf-userinfo-0b1d@cloud.langfuse.com/api/public/otel?api_key=api-key-query-c3e4",
    )));
    let policy = &rsp["desired"]["composite"]["resource"]["status"]["observability"]["policy"];
    assert_eq!(
        policy["tracesEndpoint"],
        "https://cloud.langfuse.com/api/public/otel"
    );
}

#[test]
fn an_invalid_model_service_endpoint_is_refused_without_echoing_credentials() {
    // Not http(s): validation fails, and the message must not carry the credentials.
    let rsp = assert_clean(request(model_service(
        "ftp://user:tok-invalid-endpoint-9a9a@host/x?k=api-key-query-c3e4",
    )));
    assert_eq!(
        rsp["results"][0]["message"],
        "spec.observability.traces.endpoint: must be an http:// or https:// URL, e.g. https://cloud.langfuse.com/api/public/otel"
    );
}

#[test]
fn the_markers_would_be_found_if_they_leaked() {
    // The rendered config does carry the XR's name; a marker placed there must be caught.
    let mut xr = cluster(json!({ "kinds": [{ "name": "Capacity" }] }));
    xr["metadata"]["name"] = json!("tok-annotation-7f3a");
    let req: RunFunctionRequest = serde_json::from_value(request(xr)).unwrap();
    let wire = serde_json::to_string(&run_function(&req, &Config::default())).unwrap();
    assert!(wire.contains("tok-annotation-7f3a"));
    assert_eq!(base64("cred-bytes-d00d"), "Y3JlZC1ieXRlcy1kMDBk");
}
