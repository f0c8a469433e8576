//! `GET /v1/tenants/{tenant}/signals/{kind}` over a real socket, against an
//! embedded store holding hand-built sketches with known answers.

use crate::support::api::{NOW, SketchBuilder, TestApi, assert_close, group, key};
use signal_aggregator::signal::{
    DIM_CAUSE, DIM_PHASE, DIM_REASON, DIM_SKU, DIM_TIER, Field, FieldKey, SignalKind, Value,
};

const RL: SignalKind = SignalKind::RequestLifecycle;

/// 100 requests with TTFT 0.01..=1.00 s, known counters and gauges.
fn lifecycle_a() -> SketchBuilder {
    SketchBuilder::new(key("team-a", "us-east-1", "llama-8b", RL), NOW - 90)
        .samples(Field::TtftSeconds, (1..=100).map(|i| f64::from(i) / 100.0))
        .samples(Field::E2eSeconds, std::iter::repeat_n(2.5, 100))
        .counter(Field::Requests, 60.0)
        .counter(Field::Requests, 40.0)
        .counter(Field::Errors, 3.0)
        .counter(Field::InputTokens, 5_000.0)
        .counter(Field::OutputTokens, 2_000.0)
        .counter(Field::PrefixCacheQueries, 1_000.0)
        .counter(Field::PrefixCacheHits, 250.0)
        .gauge(Field::QueueDepth, 2.0)
        .gauge(Field::QueueDepth, 7.0)
}

#[tokio::test]
async fn request_lifecycle_reports_exact_totals_and_known_quantiles() {
    // The latest reading is `last`, whatever its size.
    let sketch = lifecycle_a()
        .point_at(
            FieldKey::plain(Field::QueueDepth),
            Value::Gauge(4.0),
            NOW - 70,
        )
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?window=5m")
        .await;

    assert_eq!(body["kind"], "RequestLifecycle");
    assert_eq!(body["tenant"], "team-a");
    assert_eq!(body["window"]["from_unix_secs"], NOW - 300);
    assert_eq!(body["window"]["to_unix_secs"], NOW);
    assert_eq!(body["window"]["to"], "2026-01-01T01:00:00Z");
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    let g = group(&body, Some("us-east-1"), Some("llama-8b"));
    assert_eq!(g["requests"], 100.0);
    assert_eq!(g["errors"], 3.0);
    assert_eq!(g["error_rate"], 0.03);
    assert_eq!(g["requests_per_second"].as_f64().unwrap(), 100.0 / 300.0);
    assert_eq!(g["input_tokens"], 5_000.0);
    assert_eq!(g["output_tokens"], 2_000.0);
    assert_eq!(g["prefix_cache_hit_rate"], 0.25);
    assert_eq!(g["ttft_seconds"]["count"], 100);
    // Rank floor(q*(n-1)) of 0.01..1.00: p50 → 0.50, p90 → 0.90, p99 → 0.99.
    assert_close(&g["ttft_seconds"]["p50"], 0.50, "ttft p50");
    assert_close(&g["ttft_seconds"]["p90"], 0.90, "ttft p90");
    assert_close(&g["ttft_seconds"]["p99"], 0.99, "ttft p99");
    // Identical samples: the sketch clamps to the observed min/max, so exact.
    assert_eq!(g["e2e_seconds"]["p99"], 2.5);
    assert_eq!(
        g["tpot_seconds"],
        serde_json::json!({"count": 0, "p50": null, "p90": null, "p99": null})
    );
    assert_eq!(g["queue_depth"]["last"], 4.0);
    assert_eq!(g["queue_depth"]["min"], 2.0);
    assert_eq!(g["queue_depth"]["max"], 7.0);
    assert_close(&g["queue_depth"]["mean"], 13.0 / 3.0, "queue depth mean");
}

#[tokio::test]
async fn histogram_latencies_answer_like_prometheus_histogram_quantile() {
    // 10 requests ≤ 0.1 s, 80 in (0.1, 0.5], 10 in (0.5, 1]: histogram_quantile(0.5)
    // interpolates linearly inside (0.1, 0.5]: 0.1 + 0.4 * (50-10)/80 = 0.3.
    let sketch = SketchBuilder::new(key("team-a", "c1", "m1", RL), NOW - 30)
        .histogram(Field::TtftSeconds, &[0.1, 0.5, 1.0], &[10, 80, 10, 0], 30.0)
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api.ok("/v1/tenants/team-a/signals/RequestLifecycle").await;
    let g = group(&body, Some("c1"), Some("m1"));
    assert_eq!(g["ttft_seconds"]["count"], 100);
    let p50 = g["ttft_seconds"]["p50"].as_f64().unwrap();
    assert!((p50 - 0.3).abs() < 1e-9, "p50 {p50}");
}

#[tokio::test]
async fn group_by_merges_sketches_rather_than_averaging_groups() {
    let fast = SketchBuilder::new(key("team-a", "c1", "m1", RL), NOW - 60)
        .samples(Field::TtftSeconds, std::iter::repeat_n(1.0, 10))
        .counter(Field::Requests, 10.0)
        .build();
    let slow = SketchBuilder::new(key("team-a", "c2", "m1", RL), NOW - 60)
        .samples(Field::TtftSeconds, std::iter::repeat_n(3.0, 30))
        .counter(Field::Requests, 30.0)
        .build();
    let other_model = SketchBuilder::new(key("team-a", "c2", "m2", RL), NOW - 60)
        .samples(Field::TtftSeconds, std::iter::repeat_n(9.0, 5))
        .counter(Field::Requests, 5.0)
        .build();
    let api = TestApi::start(vec![fast, slow, other_model]).await;

    let by_both = api.ok("/v1/tenants/team-a/signals/RequestLifecycle").await;
    assert_eq!(by_both["groupBy"], serde_json::json!(["cluster", "model"]));
    assert_eq!(by_both["groups"].as_array().unwrap().len(), 3);

    let by_model = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?groupBy=model")
        .await;
    assert_eq!(by_model["groups"].as_array().unwrap().len(), 2);
    let m1 = group(&by_model, None, Some("m1"));
    assert_eq!(m1["requests"], 40.0);
    assert_eq!(m1["ttft_seconds"]["count"], 40);
    // 10 × 1.0 and 30 × 3.0 merged: the median is 3.0 (an average of the two
    // groups' medians would say 2.0).
    assert_close(&m1["ttft_seconds"]["p50"], 3.0, "merged p50");
    assert_close(&m1["ttft_seconds"]["p90"], 3.0, "merged p90");
    assert_close(&m1["ttft_seconds"]["p99"], 3.0, "merged p99");

    let by_cluster = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?groupBy=cluster")
        .await;
    let c2 = group(&by_cluster, Some("c2"), None);
    assert_eq!(c2["requests"], 35.0);
    assert_close(&c2["ttft_seconds"]["p99"], 9.0, "c2 p99");

    let one = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?groupBy=")
        .await;
    assert_eq!(one["groups"].as_array().unwrap().len(), 1);
    let all = group(&one, None, None);
    assert_eq!(all["requests"], 45.0);
    assert_eq!(all["ttft_seconds"]["count"], 45);
}

#[tokio::test]
async fn filters_select_cluster_and_model() {
    let sketches = ["c1", "c2"]
        .iter()
        .flat_map(|c| {
            ["m1", "m2"].iter().map(move |m| {
                SketchBuilder::new(key("team-a", c, m, RL), NOW - 60)
                    .counter(
                        Field::Requests,
                        if *c == "c1" { 1.0 } else { 10.0 } * if *m == "m1" { 1.0 } else { 100.0 },
                    )
                    .build()
            })
        })
        .collect();
    let api = TestApi::start(sketches).await;
    let body = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?cluster=c2&groupBy=")
        .await;
    assert_eq!(group(&body, None, None)["requests"], 1_010.0);
    let body = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?model=m1&groupBy=")
        .await;
    assert_eq!(group(&body, None, None)["requests"], 11.0);
    let body = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?cluster=c1&model=m2")
        .await;
    assert_eq!(body["groups"].as_array().unwrap().len(), 1);
    assert_eq!(group(&body, Some("c1"), Some("m2"))["requests"], 100.0);
    let body = api
        .ok("/v1/tenants/team-a/signals/RequestLifecycle?cluster=nowhere")
        .await;
    assert_eq!(body["groups"], serde_json::json!([]));
}

#[tokio::test]
async fn a_tenant_never_sees_another_tenants_series() {
    let sketches = vec![
        lifecycle_a().build(),
        SketchBuilder::new(key("team-b", "us-east-1", "llama-8b", RL), NOW - 90)
            .counter(Field::Requests, 7_000.0)
            .build(),
        // Shares a prefix with team-a: a range scan that overshoots would leak it.
        SketchBuilder::new(key("team-a2", "us-east-1", "llama-8b", RL), NOW - 90)
            .counter(Field::Requests, 500.0)
            .build(),
        SketchBuilder::new(key("team", "us-east-1", "llama-8b", RL), NOW - 90)
            .counter(Field::Requests, 42.0)
            .build(),
    ];
    let api = TestApi::start(sketches).await;
    for (tenant, requests) in [
        ("team-a", 100.0),
        ("team-b", 7_000.0),
        ("team-a2", 500.0),
        ("team", 42.0),
    ] {
        let body = api
            .ok(&format!(
                "/v1/tenants/{tenant}/signals/RequestLifecycle?groupBy="
            ))
            .await;
        assert_eq!(body["tenant"], tenant);
        assert_eq!(
            group(&body, None, None)["requests"],
            requests,
            "tenant {tenant}"
        );
    }
    let body = api.ok("/v1/tenants/team-c/signals/RequestLifecycle").await;
    assert_eq!(body["groups"], serde_json::json!([]));
}

#[tokio::test]
async fn the_window_selects_minutes_and_to_moves_it() {
    let at = |secs_ago: u64, requests: f64| {
        SketchBuilder::new(key("team-a", "c1", "m1", RL), NOW - secs_ago)
            .counter(Field::Requests, requests)
            .build()
    };
    let api = TestApi::start(vec![
        at(30, 1.0),
        at(4 * 60, 10.0),
        at(10 * 60, 100.0),
        at(3 * 3_600, 1_000.0),
    ])
    .await;
    let requests = |body: serde_json::Value| group(&body, None, None)["requests"].as_f64().unwrap();
    let base = "/v1/tenants/team-a/signals/RequestLifecycle?groupBy=";
    assert_eq!(requests(api.ok(&format!("{base}&window=1m")).await), 1.0);
    assert_eq!(requests(api.ok(&format!("{base}&window=300s")).await), 11.0);
    assert_eq!(requests(api.ok(&format!("{base}&window=15m")).await), 111.0);
    assert_eq!(
        requests(api.ok(&format!("{base}&window=1d")).await),
        1_111.0
    );
    // Ending 5 minutes ago: only the minute 10 minutes ago is in [now-15m, now-5m).
    let body = api.ok(&format!("{base}&window=10m&to={}", NOW - 300)).await;
    assert_eq!(requests(body.clone()), 100.0);
    assert_eq!(body["window"]["seconds"], 600);
    // After maintenance rolls the 3-hour-old minute into its hour, the same
    // queries give the same answers.
    let report = api.store.maintain(NOW);
    assert_eq!(report.rolled_up, 1);
    assert_eq!(
        requests(api.ok(&format!("{base}&window=1d")).await),
        1_111.0
    );
    assert_eq!(requests(api.ok(&format!("{base}&window=15m")).await), 111.0);
}

#[tokio::test]
async fn bad_parameters_are_refused_naming_the_parameter() {
    let api = TestApi::start(vec![lifecycle_a().build()]).await;
    let base = "/v1/tenants/team-a/signals/RequestLifecycle";
    let message = api
        .bad_request("/v1/tenants/team-a/signals/Latency", "kind")
        .await;
    for kind in SignalKind::ALL {
        assert!(
            message.contains(kind.as_str()),
            "{message} should list {kind}"
        );
    }
    api.bad_request(&format!("{base}?window=5x"), "window")
        .await;
    api.bad_request(&format!("{base}?window=0m"), "window")
        .await;
    api.bad_request(&format!("{base}?window=-5m"), "window")
        .await;
    let message = api
        .bad_request(&format!("{base}?window=31d"), "window")
        .await;
    assert!(message.contains("retention"), "{message}");
    api.bad_request(&format!("{base}?to=yesterday"), "to").await;
    api.bad_request(&format!("{base}?window=1d&to={}", NOW - 30 * 86_400), "to")
        .await;
    api.bad_request(&format!("{base}?groupBy=pod"), "groupBy")
        .await;
    api.bad_request(&format!("{base}?groupby=model"), "groupby")
        .await;
    api.bad_request(&format!("{base}?cluster=a%20b"), "cluster")
        .await;
    api.bad_request("/v1/tenants/team%20a/signals/RequestLifecycle", "tenant")
        .await;
    let (status, body) = api.get("/v1/tenants/team-a/metrics").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/fleet/compare")
    );
}

#[tokio::test]
async fn prefix_hash_reports_distinct_and_top_hashes() {
    let mut builder =
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::PrefixHash), NOW - 60);
    // 50 distinct hashes; hash 0xabc seen 100 times, 0xdef 40 times, the rest once.
    for h in 0..48u64 {
        builder = builder.point(
            FieldKey::plain(Field::PrefixHashes),
            Value::PrefixHash(0x1000 + h),
        );
    }
    for (hash, times) in [(0xabcu64, 100), (0xdef, 40)] {
        for _ in 0..times {
            builder = builder.point(
                FieldKey::plain(Field::PrefixHashes),
                Value::PrefixHash(hash),
            );
        }
    }
    let api = TestApi::start(vec![builder.build()]).await;
    let body = api.ok("/v1/tenants/team-a/signals/PrefixHash").await;
    let g = group(&body, Some("c1"), Some("m1"));
    // HLL at this size is linear counting: exact unless two hashes share a register.
    let distinct = g["distinct"].as_f64().unwrap();
    assert!((distinct - 50.0).abs() <= 1.0, "distinct {distinct}");
    assert_eq!(
        g["top"][0],
        serde_json::json!({"hash": "0000000000000abc", "count": 100})
    );
    assert_eq!(
        g["top"][1],
        serde_json::json!({"hash": "0000000000000def", "count": 40})
    );
    assert_eq!(g["top"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn capacity_reports_gpus_by_sku_kv_cache_by_tier_and_replicas() {
    let sketch = SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Capacity), NOW - 60)
        .point(
            FieldKey::with_dim(Field::Gpus, DIM_SKU, "H100"),
            Value::Gauge(8.0),
        )
        .point(
            FieldKey::with_dim(Field::GpusAllocated, DIM_SKU, "H100"),
            Value::Gauge(6.0),
        )
        .point(
            FieldKey::with_dim(Field::Gpus, DIM_SKU, "L4"),
            Value::Gauge(4.0),
        )
        .point(
            FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "gpu"),
            Value::Gauge(0.5),
        )
        .point(
            FieldKey::with_dim(Field::KvCacheUtilization, DIM_TIER, "gpu"),
            Value::Gauge(0.7),
        )
        .gauge(Field::ReplicasActive, 3.0)
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api.ok("/v1/tenants/team-a/signals/Capacity").await;
    let g = group(&body, Some("c1"), Some("m1"));
    assert_eq!(g["gpus_by_sku"]["H100"]["gpus"]["last"], 8.0);
    assert_eq!(g["gpus_by_sku"]["H100"]["allocated"]["last"], 6.0);
    assert_eq!(g["gpus_by_sku"]["L4"]["gpus"]["last"], 4.0);
    assert_eq!(g["kv_cache_utilization_by_tier"]["gpu"]["last"], 0.7);
    assert_eq!(g["kv_cache_utilization_by_tier"]["gpu"]["min"], 0.5);
    assert_eq!(g["replicas"]["active"]["last"], 3.0);
    assert_eq!(g["replicas"]["starting"], serde_json::Value::Null);
}

#[tokio::test]
async fn cold_start_reports_phase_quantiles_and_launch_outcomes() {
    let mut builder =
        SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::ColdStart), NOW - 60);
    for v in [10.0, 20.0, 30.0] {
        builder = builder.point(
            FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, "model_load"),
            Value::Sample(v),
        );
    }
    let sketch = builder
        .point(
            FieldKey::with_dim(Field::PhaseSeconds, DIM_PHASE, "image_pull"),
            Value::Sample(4.0),
        )
        .counter(Field::LaunchAttempts, 5.0)
        .counter(Field::LaunchSuccesses, 3.0)
        .point(
            FieldKey::with_dim(Field::LaunchFailures, DIM_REASON, "oom"),
            Value::Counter(2.0),
        )
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api.ok("/v1/tenants/team-a/signals/ColdStart").await;
    let g = group(&body, Some("c1"), Some("m1"));
    assert_eq!(g["phases"]["model_load"]["count"], 3);
    // Rank floor(q*(n-1)) of three samples: p50 and p99 are both the middle one.
    assert_close(&g["phases"]["model_load"]["p50"], 20.0, "model_load p50");
    assert_close(&g["phases"]["model_load"]["p99"], 20.0, "model_load p99");
    assert_eq!(g["phases"]["image_pull"]["p50"], 4.0);
    assert_eq!(g["launches"]["attempts"], 5.0);
    assert_eq!(g["launches"]["successes"], 3.0);
    assert_eq!(g["launches"]["failures"], 2.0);
    assert_eq!(g["launches"]["failures_by_reason"]["oom"], 2.0);
}

#[tokio::test]
async fn cost_reports_gpu_hours_dollars_per_gpu_hour_and_per_token() {
    let cost = SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Cost), NOW - 60)
        .point(
            FieldKey::with_dim(Field::GpuSeconds, DIM_SKU, "H100"),
            Value::Counter(7_200.0),
        )
        .point(
            FieldKey::with_dim(Field::GpuSeconds, DIM_SKU, "L4"),
            Value::Counter(3_600.0),
        )
        .point(
            FieldKey::with_dim(Field::PricePerGpuHour, DIM_SKU, "H100"),
            Value::Gauge(4.0),
        )
        .point(
            FieldKey::with_dim(Field::PricePerGpuHour, DIM_SKU, "L4"),
            Value::Gauge(1.0),
        )
        .build();
    let tokens = SketchBuilder::new(key("team-a", "c1", "m1", RL), NOW - 60)
        .counter(Field::InputTokens, 6_000.0)
        .counter(Field::OutputTokens, 3_000.0)
        .build();
    let api = TestApi::start(vec![cost, tokens]).await;
    let body = api.ok("/v1/tenants/team-a/signals/Cost").await;
    let g = group(&body, Some("c1"), Some("m1"));
    assert_eq!(g["gpu_hours"], 3.0);
    assert_eq!(g["dollars"], 9.0);
    assert_eq!(g["dollars_per_gpu_hour"], 3.0);
    assert_eq!(g["tokens"], 9_000.0);
    assert_eq!(g["dollars_per_token"], 0.001);
    assert_eq!(
        g["by_sku"]["H100"],
        serde_json::json!({"gpu_hours": 2.0, "price_per_gpu_hour": 4.0, "price_source": "reported", "dollars": 8.0})
    );
}

#[tokio::test]
async fn reliability_reports_failures_by_sku_and_root_cause() {
    let failure = |sku: &str, cause: &str| {
        let mut key = FieldKey::with_dim(Field::Failures, DIM_SKU, sku);
        key.dims.insert(DIM_CAUSE.into(), cause.into());
        key
    };
    let sketch = SketchBuilder::new(key("team-a", "c1", "m1", SignalKind::Reliability), NOW - 60)
        .point(failure("H100", "xid_79"), Value::Counter(2.0))
        .point(failure("H100", "oom"), Value::Counter(1.0))
        .point(failure("L4", "oom"), Value::Counter(4.0))
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api.ok("/v1/tenants/team-a/signals/Reliability").await;
    let g = group(&body, Some("c1"), Some("m1"));
    assert_eq!(g["failures"], 7.0);
    assert_eq!(
        g["failures_by_sku"],
        serde_json::json!({"H100": 3.0, "L4": 4.0})
    );
    assert_eq!(
        g["failures_by_cause"],
        serde_json::json!({"oom": 5.0, "xid_79": 2.0})
    );
    assert_eq!(
        g["failures_by_sku_and_cause"][0],
        serde_json::json!({"sku": "H100", "cause": "oom", "count": 1.0})
    );
}
