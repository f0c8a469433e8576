//! `GET /v1/fleet/compare` over a real socket: per-cluster quantiles across
//! tenants and their ratio to the fleet median.

use crate::support::api::{NOW, SketchBuilder, TestApi, key};
use signal_aggregator::signal::{DIM_PHASE, Field, FieldKey, SignalKind, Value};

const RL: SignalKind = SignalKind::RequestLifecycle;

fn ttft(tenant: &str, cluster: &str, model: &str, value: f64, n: usize) -> SketchBuilder {
    SketchBuilder::new(key(tenant, cluster, model, RL), NOW - 60)
        .samples(Field::TtftSeconds, std::iter::repeat_n(value, n))
}

fn cluster<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == name)
        .unwrap_or_else(|| panic!("no cluster {name} in {body}"))
}

#[tokio::test]
async fn compares_each_cluster_to_the_fleet_median() {
    let api = TestApi::start(vec![
        ttft("team-a", "us-east-1", "m1", 1.0, 50).build(),
        // A second tenant in the same cluster merges into that cluster's value.
        ttft("team-b", "us-east-1", "m2", 1.0, 50).build(),
        ttft("team-a", "us-west-2", "m1", 2.0, 20).build(),
        ttft("team-b", "eu-west-1", "m1", 6.0, 10).build(),
    ])
    .await;
    let body = api
        .ok("/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&quantile=0.99&window=5m")
        .await;
    assert_eq!(body["kind"], "RequestLifecycle");
    assert_eq!(body["field"], "ttft_seconds");
    assert_eq!(body["quantile"], 0.99);
    assert_eq!(body["window"]["seconds"], 300);
    assert_eq!(body["fleet_median"], 2.0);
    assert_eq!(body["clusters"].as_array().unwrap().len(), 3);
    let east = cluster(&body, "us-east-1");
    assert_eq!(east["count"], 100);
    assert_eq!(east["value"], 1.0);
    assert_eq!(east["ratio_to_fleet_median"], 0.5);
    assert_eq!(cluster(&body, "us-west-2")["ratio_to_fleet_median"], 1.0);
    let eu = cluster(&body, "eu-west-1");
    assert_eq!(eu["value"], 6.0);
    assert_eq!(eu["ratio_to_fleet_median"], 3.0);

    // The model filter narrows every cluster the same way.
    let body = api
        .ok("/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&model=m2")
        .await;
    assert_eq!(body["clusters"].as_array().unwrap().len(), 1);
    assert_eq!(cluster(&body, "us-east-1")["count"], 50);
}

#[tokio::test]
async fn compares_cold_start_phases() {
    let phase = |cluster: &str, seconds: f64| {
        SketchBuilder::new(
            key("team-a", cluster, "m1", SignalKind::ColdStart),
            NOW - 60,
        )
        .point(
            FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, "model_load"),
            Value::Sample(seconds),
        )
        .point(
            FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, "image_pull"),
            Value::Sample(1.0),
        )
        .build()
    };
    let api = TestApi::start(vec![phase("a", 10.0), phase("b", 40.0)]).await;
    let body = api
        .ok("/v1/fleet/compare?kind=ColdStart&field=phase_seconds&phase=model_load&quantile=0.5")
        .await;
    assert_eq!(body["fleet_median"], 25.0);
    assert_eq!(cluster(&body, "a")["value"], 10.0);
    assert_eq!(cluster(&body, "b")["ratio_to_fleet_median"], 1.6);
}

#[tokio::test]
async fn refuses_bad_compare_parameters() {
    let api = TestApi::start(vec![ttft("team-a", "c1", "m1", 1.0, 5).build()]).await;
    api.bad_request("/v1/fleet/compare?field=ttft_seconds", "kind")
        .await;
    api.bad_request("/v1/fleet/compare?kind=Latency&field=ttft_seconds", "kind")
        .await;
    api.bad_request("/v1/fleet/compare?kind=RequestLifecycle", "field")
        .await;
    let message = api
        .bad_request(
            "/v1/fleet/compare?kind=RequestLifecycle&field=requests",
            "field",
        )
        .await;
    assert!(message.contains("ttft_seconds"), "{message}");
    for q in ["1.5", "0", "1", "abc"] {
        api.bad_request(
            &format!("/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&quantile={q}"),
            "quantile",
        )
        .await;
    }
    api.bad_request(
        "/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&window=90d",
        "window",
    )
    .await;
    api.bad_request(
        "/v1/fleet/compare?kind=ColdStart&field=phase_seconds",
        "phase",
    )
    .await;
    api.bad_request(
        "/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds&phase=x",
        "phase",
    )
    .await;
}

#[tokio::test]
async fn an_empty_fleet_has_no_median() {
    let api = TestApi::start(vec![]).await;
    let body = api
        .ok("/v1/fleet/compare?kind=RequestLifecycle&field=e2e_seconds")
        .await;
    assert_eq!(body["fleet_median"], serde_json::Value::Null);
    assert_eq!(body["clusters"], serde_json::json!([]));
}
