//! What does not map is visible: points accepted but mapped to no signal are
//! counted per tenant and metric name on `/metrics` (bounded, the rest as
//! `other`) and in the tenant's answer, which says nothing mapped instead of
//! answering empty; over the series budget new series fold into one
//! overflow series per (tenant, cluster, kind) so totals stay exact; and no
//! answer renders `-0.0`.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use otlp_test_kit::*;
use serde_json::json;
use signal_aggregator::normalize::{NormalizeConfig, OVERFLOW_MODEL};
use signal_aggregator::telemetry::MAX_UNMAPPED_NAMES_PER_TENANT;

use crate::support::stack::{Stack, Transport};

fn resource(tenant: &str, cluster: &str) -> Vec<KeyValue> {
    vec![
        string_kv("modelplane.tenant", tenant),
        string_kv("modelplane.cluster", cluster),
        string_kv("modelplane.model", "m1"),
    ]
}

/// The `/metrics` sample of the unmapped counter for (tenant, metric).
fn unmapped_sample(text: &str, tenant: &str, metric: &str) -> Option<f64> {
    let prefix = format!(
        "modelplane_aggregator_unmapped_points_total{{tenant=\"{tenant}\",metric=\"{metric}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn unmapped_points_are_counted_per_tenant_and_name_and_explained_in_the_answer() {
    let stack = Stack::start(NormalizeConfig::default()).await;
    let now = unix_nanos();
    let gpu = || {
        vec![
            string_kv("modelName", "NVIDIA H100 80GB HBM3"),
            string_kv("gpu", "0"),
        ]
    };
    let request = metrics_request(
        resource("team-a", "c1"),
        vec![
            // An SDK that lower-cases names.
            gauge(
                "dcgm_fi_dev_gpu_util",
                vec![number(gpu(), 0, now, 50.0), number(gpu(), 0, now, 60.0)],
            ),
            // A misspelt name.
            counter(
                "vllm:promt_tokens_total",
                vec![number(vec![], now - 1, now, 5.0)],
            ),
            // A known name as another instrument than vLLM emits (a histogram
            // as a gauge) would sit unreadable: it is unmapped.
            gauge(
                "vllm:time_to_first_token_seconds",
                vec![number(vec![], 0, now, 0.2)],
            ),
            // Text where a metric name belongs never becomes a label.
            gauge(
                "summarise my medical file, SSN 078-05-1120",
                vec![number(vec![], 0, now, 1.0)],
            ),
        ],
    );
    assert_eq!(stack.metrics(Transport::Grpc, request).await, 0);

    let body = stack.get("/v1/tenants/team-a/signals/Capacity").await;
    assert_eq!(body["groups"], json!([]));
    assert_eq!(
        body["unmapped_points"],
        json!({ "dcgm_fi_dev_gpu_util": 2, "other": 1, "vllm:promt_tokens_total": 1,
                "vllm:time_to_first_token_seconds": 1 })
    );
    let note = body["note"].as_str().expect("an empty answer says why");
    assert!(note.contains("5 data point(s)"), "{note}");
    // Another tenant sees none of it.
    let other = stack.get("/v1/tenants/team-b/signals/Capacity").await;
    assert_eq!(other["unmapped_points"], json!({}));
    assert!(other.get("note").is_none());

    let text = stack.metrics_text().await;
    assert!(!text.contains("medical") && !body.to_string().contains("medical"));
    assert_eq!(
        unmapped_sample(&text, "team-a", "dcgm_fi_dev_gpu_util"),
        Some(2.0)
    );
    assert_eq!(
        unmapped_sample(&text, "team-a", "vllm:promt_tokens_total"),
        Some(1.0)
    );

    // Bounded: 20 names per tenant, `other` included.
    let names: Vec<_> = (0..MAX_UNMAPPED_NAMES_PER_TENANT + 5)
        .map(|i| gauge(&format!("made_up_{i}"), vec![number(vec![], 0, now, 1.0)]))
        .collect();
    stack
        .metrics(
            Transport::HttpProtobuf,
            metrics_request(resource("team-c", "c1"), names),
        )
        .await;
    let text = stack.metrics_text().await;
    let team_c: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("modelplane_aggregator_unmapped_points_total{tenant=\"team-c\""))
        .collect();
    assert_eq!(team_c.len(), MAX_UNMAPPED_NAMES_PER_TENANT, "{team_c:#?}");
    // 19 names kept apart, 6 counted as `other`: 25 points in all.
    let total: f64 = team_c
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    assert_eq!(total, (MAX_UNMAPPED_NAMES_PER_TENANT + 5) as f64);
    assert_eq!(unmapped_sample(&text, "team-c", "other"), Some(6.0));
}

#[tokio::test]
async fn over_the_series_budget_new_series_fold_into_one_overflow_series() {
    let stack = Stack::start(NormalizeConfig {
        max_series_per_tenant: 2,
        ..NormalizeConfig::default()
    })
    .await;
    let now = unix_nanos();
    // Five models' queue gauges and request counters from one cluster.
    let models = |cluster: &str| {
        let points = |value: f64| {
            (0..5)
                .map(|m| {
                    number(
                        vec![string_kv("model_name", format!("model-{m}"))],
                        now - 1,
                        now,
                        value,
                    )
                })
                .collect::<Vec<_>>()
        };
        metrics_request(
            resource("team-a", cluster),
            vec![delta_counter("vllm:request_success_total", points(2.0))],
        )
    };
    assert_eq!(stack.metrics(Transport::Grpc, models("c1")).await, 0);
    let body = stack
        .get("/v1/tenants/team-a/signals/RequestLifecycle?groupBy=cluster,model")
        .await;
    let groups: Vec<(String, f64)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["model"].as_str().unwrap().to_string(),
                g["requests"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("model-0".into(), 2.0),
            ("model-1".into(), 2.0),
            (OVERFLOW_MODEL.into(), 6.0),
        ]
    );
    // The tenant's total is exact.
    let all = stack
        .get("/v1/tenants/team-a/signals/RequestLifecycle?groupBy=")
        .await;
    assert_eq!(all["groups"][0]["requests"], 10.0);
    let text = stack.metrics_text().await;
    assert!(
        text.contains("modelplane_aggregator_dropped_items_total{signal=\"metrics\",reason=\"series_overflow\"} 3"),
        "{text}"
    );
}

#[tokio::test]
async fn answers_never_render_negative_zero() {
    let stack = Stack::start(NormalizeConfig::default()).await;
    let now = unix_nanos();
    // A ColdStart group with no launch counters and a Reliability-free
    // cluster: empty sums everywhere.
    let request = metrics_request(
        resource("team-a", "c1"),
        vec![gauge(
            "mesh_llm_model_loaded",
            vec![number(vec![string_kv("mesh_llm.model", "m1")], 0, now, 1.0)],
        )],
    );
    assert_eq!(stack.metrics(Transport::HttpJson, request).await, 0);
    for path in [
        "/v1/tenants/team-a/signals/ColdStart",
        "/v1/tenants/team-a/signals/Cost",
        "/v1/scheduler/overflow",
        "/v1/scheduler/capacity",
    ] {
        let text = reqwest::get(format!("{}{path}", stack.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            !text.contains("-0.0") && !text.contains("-0,"),
            "{path}: {text}"
        );
    }
    let body = stack.get("/v1/tenants/team-a/signals/ColdStart").await;
    assert_eq!(body["groups"][0]["launches"]["attempts"], 0.0);
    assert_eq!(body["groups"][0]["unloads"], 0.0);
}

#[test]
fn negative_zero_numbers_are_rewritten_and_strings_left_alone() {
    use signal_aggregator::api::positive_zeros;
    assert_eq!(
        positive_zeros(r#"{"a":-0.0,"b":"x-0.0","c":[-0.0,-0.05,-10.0,-0.0e1],"d\"-0.0":-0.0}"#),
        r#"{"a":0.0,"b":"x-0.0","c":[0.0,-0.05,-10.0,-0.0e1],"d\"-0.0":0.0}"#
    );
}
