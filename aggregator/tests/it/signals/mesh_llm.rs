//! mesh-llm as its survey exporter (seed 004) sends it: the Rust OTel SDK's
//! cumulative counters, gauges and histograms with start times, every point
//! carrying its bounded attributes (`mesh_llm.gpu_name`,
//! `mesh_llm.context_bucket`, ...), over OTLP/gRPC, OTLP/HTTP protobuf and
//! OTLP/HTTP JSON. The ColdStart answer must hold every documented field,
//! exactly, whatever attributes the readings carry.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_test_kit::*;
use serde_json::json;
use signal_aggregator::normalize::NormalizeConfig;

use crate::support::stack::{Stack, Transport};

const SEC: u64 = 1_000_000_000;

fn resource(tenant: &str) -> Vec<KeyValue> {
    vec![
        string_kv("service.name", "mesh-llm"),
        string_kv("service.version", "0.42.0"),
        string_kv("modelplane.tenant", tenant),
        string_kv("modelplane.cluster", "mesh-node-a"),
    ]
}

/// The bounded attributes mesh-llm puts on its model metrics.
fn attrs(extra: &[(&str, &str)]) -> Vec<KeyValue> {
    let mut attrs = vec![
        string_kv("mesh_llm.model", "Qwen3-30B-A3B-Q4_K_M"),
        string_kv("mesh_llm.architecture", "qwen3moe"),
        string_kv("mesh_llm.quantization", "Q4_K_M"),
        string_kv("mesh_llm.launch_kind", "startup"),
        string_kv("mesh_llm.gpu_name", "Apple M3 Max"),
        string_kv("mesh_llm.gpu_stable_id", "c0ffee-1234"),
        string_kv("mesh_llm.backend_device", "Metal0"),
        int_kv("mesh_llm.gpu_count", 1),
        string_kv("mesh_llm.is_soc", "true"),
        string_kv("mesh_llm.backend", "metal"),
        string_kv("mesh_llm.context_bucket", "16k_32k"),
        string_kv("mesh_llm.service_version", "0.42.0"),
    ];
    attrs.extend(extra.iter().map(|(k, v)| string_kv(k, *v)));
    attrs
}

async fn send_survey(stack: &Stack, transport: Transport, tenant: &str) {
    let now = unix_nanos();
    let start = now - 20 * SEC;
    let failure = |reason: &str| {
        number(
            attrs(&[("mesh_llm.failure_reason", reason)]),
            start,
            now,
            1.0,
        )
    };
    let request = metrics_request(
        resource(tenant),
        vec![
            counter(
                "mesh_llm_model_launch_total",
                vec![number(attrs(&[]), start, now, 3.0)],
            ),
            counter(
                "mesh_llm_model_launch_success_total",
                vec![number(attrs(&[]), start, now, 1.0)],
            ),
            counter(
                "mesh_llm_model_launch_failure_total",
                vec![
                    failure("health_timeout"),
                    failure("segfault at 0x0 in ggml"),
                ],
            ),
            counter(
                "mesh_llm_model_exit_unexpected_total",
                vec![number(attrs(&[]), start, now, 1.0)],
            ),
            counter(
                "mesh_llm_model_unload_total",
                vec![number(attrs(&[]), start, now, 1.0)],
            ),
            // Node-level (no model) and per-model loaded gauges, with the
            // hardware and context attributes (defect 1).
            gauge(
                "mesh_llm_loaded_models",
                vec![number(
                    vec![
                        string_kv("mesh_llm.gpu_name", "Apple M3 Max"),
                        string_kv("mesh_llm.context_bucket", "16k_32k"),
                    ],
                    0,
                    now,
                    2.0,
                )],
            ),
            gauge(
                "mesh_llm_model_loaded",
                vec![number(attrs(&[]), 0, now, 1.0)],
            ),
            // A gauge, as mesh-llm exports it (defects 2, 3).
            gauge(
                "mesh_llm_model_context_length",
                vec![number(attrs(&[]), 0, now, 32768.0)],
            ),
            histogram(
                "mesh_llm_model_launch_duration_ms",
                vec![hist(
                    attrs(&[]),
                    start,
                    now,
                    &[1000.0, 10000.0, 60000.0],
                    &[0, 0, 1, 0],
                    41_000.0,
                )],
            ),
            // A histogram, as mesh-llm exports it (defect 4).
            histogram(
                "mesh_llm_model_uptime_s",
                vec![hist(
                    attrs(&[]),
                    start,
                    now,
                    &[60.0, 3600.0],
                    &[1, 0, 0],
                    12.0,
                )],
            ),
        ],
    );
    assert_eq!(stack.metrics(transport, request).await, 0, "{transport:?}");
}

#[tokio::test]
async fn the_survey_exporters_data_reads_back_exactly_over_every_transport() {
    let stack = Stack::start(NormalizeConfig::default()).await;
    for transport in Transport::ALL {
        let tenant = format!("mesh-{transport:?}").to_lowercase();
        send_survey(&stack, transport, &tenant).await;
        let body = stack
            .get(&format!(
                "/v1/tenants/{tenant}/signals/ColdStart?groupBy=model"
            ))
            .await;
        let groups = body["groups"].as_array().unwrap();
        assert_eq!(groups.len(), 2, "{transport:?}: {body}");
        // The node-level gauge has no model.
        assert_eq!(groups[0]["model"], "");
        assert_eq!(groups[0]["loaded_models"]["last"], 2.0, "{transport:?}");
        let g = &groups[1];
        assert_eq!(g["model"], "Qwen3-30B-A3B-Q4_K_M");
        assert_eq!(
            g["launches"],
            json!({ "attempts": 3.0, "successes": 1.0, "failures": 2.0,
                    "failures_by_reason": { "health_timeout": 1.0, "other": 1.0 } }),
            "{transport:?}"
        );
        assert_eq!(g["unexpected_exits"], 1.0);
        assert_eq!(g["unloads"], 1.0);
        assert_eq!(
            g["loaded_models"],
            json!({ "last": 1.0, "min": 1.0, "max": 1.0, "mean": 1.0 }),
            "defect 1, {transport:?}"
        );
        assert_eq!(
            g["context_length"],
            json!({ "last": 32768.0, "min": 32768.0, "max": 32768.0, "mean": 32768.0 }),
            "defects 2 and 3, {transport:?}"
        );
        assert_eq!(g["context_length_distribution"]["count"], 0);
        // One launch of 41 s, in the (10 s, 60 s] bucket (bounds ÷ 1000).
        assert_eq!(g["launch_seconds"]["count"], 1, "defect 5, {transport:?}");
        let p50 = g["launch_seconds"]["p50"].as_f64().unwrap();
        assert!(p50 > 10.0 && p50 <= 60.0, "{p50}");
        // One model stayed loaded 12 s: the (0, 60 s] bucket.
        assert_eq!(g["uptime_seconds"]["count"], 1, "defect 4, {transport:?}");
        let p50 = g["uptime_seconds"]["p50"].as_f64().unwrap();
        assert!(p50 > 0.0 && p50 <= 60.0, "{p50}");
        assert_eq!(body["unmapped_points"], json!({}), "{transport:?}");

        let reliability = stack
            .get(&format!(
                "/v1/tenants/{tenant}/signals/Reliability?groupBy="
            ))
            .await;
        assert_eq!(
            reliability["groups"][0]["failures_by_sku_and_cause"],
            json!([
                { "sku": "apple-m3-max", "cause": "health_timeout", "count": 1.0 },
                { "sku": "apple-m3-max", "cause": "other", "count": 1.0 },
                { "sku": "apple-m3-max", "cause": "unexpected_exit", "count": 1.0 },
            ]),
            "{transport:?}"
        );
    }
    // Raw error strings and device ids are never stored or shown.
    let everything = format!(
        "{}{}",
        stack.metrics_text().await,
        stack.get("/v1/tenants/mesh-grpc/signals/ColdStart").await
    );
    assert!(!everything.contains("segfault") && !everything.contains("c0ffee"));
}
