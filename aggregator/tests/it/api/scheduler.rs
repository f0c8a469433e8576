//! Scheduler endpoints, fleet opt-in and cost over a real socket, against data
//! with known answers. The fleet policy and prices come from a real
//! `Directory` filled the way the XR watchers fill it.

use std::sync::Arc;

use crate::support::api::{NOW, SketchBuilder, TestApi, key};
use signal_aggregator::directory::{ClusterEntry, Directory, ServiceEntry};
use signal_aggregator::signal::{DIM_SKU, Field, FieldKey, SignalKind, Value};
use signal_aggregator::sketch::WindowedSketch;
use signal_aggregator::store::SketchStore;

const AT: u64 = NOW - 60;

fn sku(field: Field, sku: &str) -> FieldKey {
    FieldKey::with_dim(field, DIM_SKU, sku)
}

/// east: PerTenant, H100 priced at $4/GPU-hour. west: privacy Fleet, no pricing.
/// team-a's m1 opted in (scope Fleet); team-b's m2 did not.
fn directory() -> Directory {
    let directory = Directory::new();
    let mut east = ClusterEntry::new("east");
    east.signals_configured = true;
    east.pricing.insert(
        "H100".into(),
        serde_json::from_value(serde_json::json!({"gpu": "H100", "pricePerGpuHour": 4.0})).unwrap(),
    );
    let mut west = ClusterEntry::new("west");
    west.signals_configured = true;
    west.privacy = apis::PrivacyScope::Fleet;
    directory.replace_clusters(vec![east, west]);
    let service = |tenant: &str, model: &str, scope| ServiceEntry {
        tenant: tenant.into(),
        name: format!("{model}-svc"),
        models: vec![model.into()],
        scope,
        observed_metrics: None,
        trace_forwarder: None,
    };
    directory.replace_services(vec![
        service("team-a", "m1", apis::MetricsScope::Fleet),
        service("team-b", "m2", apis::MetricsScope::PerTenant),
    ]);
    directory
}

fn capacity(
    tenant: &str,
    cluster: &str,
    model: &str,
    gpus: &[(&str, f64, f64, Option<f64>)],
) -> WindowedSketch {
    let mut b = SketchBuilder::new(key(tenant, cluster, model, SignalKind::Capacity), AT);
    for (name, total, allocated, utilization) in gpus {
        b = b
            .point(sku(Field::Gpus, name), Value::Gauge(*total))
            .point(sku(Field::GpusAllocated, name), Value::Gauge(*allocated));
        if let Some(u) = utilization {
            b = b.point(sku(Field::GpuUtilization, name), Value::Gauge(*u));
        }
    }
    b.build()
}

fn lifecycle(
    tenant: &str,
    cluster: &str,
    model: &str,
    queue: f64,
    requests: f64,
    tokens: f64,
) -> WindowedSketch {
    SketchBuilder::new(
        key(tenant, cluster, model, SignalKind::RequestLifecycle),
        AT,
    )
    .gauge(Field::QueueDepth, queue)
    .gauge(Field::RunningRequests, queue * 2.0)
    .counter(Field::Requests, requests)
    .counter(Field::InputTokens, tokens / 2.0)
    .counter(Field::OutputTokens, tokens / 2.0)
    .samples(Field::TtftSeconds, [0.5; 10])
    .build()
}

fn cost(
    tenant: &str,
    cluster: &str,
    model: &str,
    gpu_seconds: f64,
    reported_price: Option<f64>,
) -> WindowedSketch {
    let mut b = SketchBuilder::new(key(tenant, cluster, model, SignalKind::Cost), AT)
        .point(sku(Field::GpuSeconds, "H100"), Value::Counter(gpu_seconds));
    if let Some(price) = reported_price {
        b = b.point(sku(Field::PricePerGpuHour, "H100"), Value::Gauge(price));
    }
    b.build()
}

fn prefixes(
    tenant: &str,
    cluster: &str,
    model: &str,
    hashes: impl Iterator<Item = u64>,
) -> WindowedSketch {
    let mut b = SketchBuilder::new(key(tenant, cluster, model, SignalKind::PrefixHash), AT);
    for h in hashes {
        b = b.point(FieldKey::plain(Field::PrefixHashes), Value::PrefixHash(h));
    }
    b.build()
}

/// Fleet-visible data: team-a/m1 (opted in) on east and west; team-b/m2 on
/// west (a Fleet cluster) for capacity.
fn fleet_data() -> Vec<WindowedSketch> {
    vec![
        capacity("team-a", "east", "m1", &[("H100", 8.0, 6.0, Some(0.5))]),
        capacity("team-a", "west", "m1", &[("H100", 4.0, 1.0, None)]),
        capacity("team-b", "west", "m2", &[("L4", 2.0, 2.0, None)]),
        lifecycle("team-a", "east", "m1", 5.0, 600.0, 2000.0),
        lifecycle("team-a", "west", "m1", 2.0, 300.0, 500.0),
        // 2 GPU-hours at the configured $4; 1 GPU-hour at the reported $2.50.
        cost("team-a", "east", "m1", 7200.0, Some(99.0)),
        cost("team-a", "west", "m1", 3600.0, Some(2.5)),
        // east: 0..1000 plus hash 7 fifty more times; west: 500..1500 plus 7 thirty more.
        prefixes(
            "team-a",
            "east",
            "m1",
            (0..1000).chain(std::iter::repeat_n(7, 50)),
        ),
        prefixes(
            "team-a",
            "west",
            "m1",
            (500..1500).chain(std::iter::repeat_n(7, 30)),
        ),
    ]
}

/// team-b on east: not opted in, east is PerTenant. Must never count.
fn private_data() -> Vec<WindowedSketch> {
    vec![
        capacity("team-b", "east", "m1", &[("H100", 100.0, 0.0, Some(0.9))]),
        lifecycle("team-b", "east", "m1", 500.0, 9000.0, 1e6),
        cost("team-b", "east", "m1", 360_000.0, None),
        prefixes("team-b", "east", "m1", 5000..9000),
    ]
}

async fn start(data: Vec<WindowedSketch>) -> TestApi {
    let directory = directory();
    TestApi::start_with(data, |state| {
        state.fleet = Arc::new(directory.clone());
        state.prices = Arc::new(directory);
    })
    .await
}

fn find<'a>(list: &'a serde_json::Value, field: &str, value: &str) -> &'a serde_json::Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|x| x[field] == value)
        .unwrap_or_else(|| panic!("no {field}={value} in {list}"))
}

#[tokio::test]
async fn capacity_by_sku_per_cluster() {
    let api = start(fleet_data()).await;
    let body = api.ok("/v1/scheduler/capacity?window=5m").await;
    let clusters = &body["clusters"];
    assert_eq!(clusters.as_array().unwrap().len(), 2, "{body}");
    let east = find(clusters, "cluster", "east");
    let h100 = find(&east["skus"], "sku", "H100");
    assert_eq!(h100["gpus"], 8.0);
    assert_eq!(h100["allocated"], 6.0);
    assert_eq!(h100["free"], 2.0);
    assert_eq!(h100["utilization"], 0.5);
    assert_eq!(h100["price_per_gpu_hour"], 4.0);
    assert_eq!(h100["price_source"], "pricing");
    let west = find(clusters, "cluster", "west");
    let h100 = find(&west["skus"], "sku", "H100");
    assert_eq!(
        (h100["free"].as_f64(), h100["utilization"].is_null()),
        (Some(3.0), true)
    );
    assert_eq!(h100["price_per_gpu_hour"], 2.5);
    assert_eq!(h100["price_source"], "reported");
    let l4 = find(&west["skus"], "sku", "L4");
    assert_eq!(
        (l4["free"].as_f64(), l4["price_per_gpu_hour"].is_null()),
        (Some(0.0), true)
    );
    assert_eq!(
        west["total"],
        serde_json::json!({"gpus": 6.0, "allocated": 3.0, "free": 3.0})
    );
    // Filters.
    let only = api.ok("/v1/scheduler/capacity?sku=L4").await;
    assert_eq!(only["clusters"].as_array().unwrap().len(), 1);
    api.bad_request("/v1/scheduler/capacity?window=5x", "window")
        .await;
}

#[tokio::test]
async fn prefix_overlap_between_clusters() {
    let api = start(fleet_data()).await;
    let body = api
        .ok("/v1/scheduler/prefix-overlap?model=m1&window=5m&top=5")
        .await;
    let within = |value: &serde_json::Value, expected: f64, tolerance: f64| {
        let v = value.as_f64().unwrap();
        assert!(
            (v - expected).abs() <= tolerance,
            "{v} vs {expected} ± {tolerance}"
        );
    };
    // HyperLogLog: ~0.8 % standard error; allow 3 sigma.
    within(
        &find(&body["clusters"], "cluster", "east")["distinct"],
        1000.0,
        25.0,
    );
    within(
        &find(&body["clusters"], "cluster", "west")["distinct"],
        1000.0,
        25.0,
    );
    assert_eq!(
        find(&body["clusters"], "cluster", "east")["occurrences"],
        1050
    );
    within(&body["fleet"]["distinct"], 1500.0, 36.0);
    let pair = &body["pairs"][0];
    assert_eq!(pair["clusters"], serde_json::json!(["east", "west"]));
    within(&pair["distinct_union"], 1500.0, 36.0);
    // Inclusion–exclusion carries the errors of all three estimates.
    within(&pair["distinct_intersection"], 500.0, 75.0);
    within(&pair["jaccard"], 1.0 / 3.0, 0.05);
    let shared = &pair["shared_top"][0];
    assert_eq!(shared["hash"], "0000000000000007");
    // Frequency estimates never under-count; the over-count is bounded by a
    // small fraction of the occurrences (1050 east, 1030 west).
    let bounded = |value: &serde_json::Value, exact: u64, occurrences: u64| {
        let v = value.as_u64().unwrap();
        assert!(
            v >= exact && v <= exact + occurrences / 50,
            "{v} vs exact {exact}"
        );
    };
    bounded(&shared["counts"]["east"], 51, 1050);
    bounded(&shared["counts"]["west"], 31, 1030);
    bounded(
        &find(&body["clusters"], "cluster", "east")["top"][0]["count"],
        51,
        1050,
    );
    api.bad_request("/v1/scheduler/prefix-overlap", "model")
        .await;
    api.bad_request("/v1/scheduler/prefix-overlap?model=m1&top=0", "top")
        .await;
}

#[tokio::test]
async fn overflow_queue_depth_and_cost_per_cluster() {
    let api = start(fleet_data()).await;
    let body = api.ok("/v1/scheduler/overflow?model=m1&window=5m").await;
    let east = find(&body["clusters"], "cluster", "east");
    assert_eq!(east["queue_depth"], 5.0);
    assert_eq!(east["running_requests"], 10.0);
    assert_eq!(east["requests_per_second"], 2.0);
    assert_eq!(east["free_gpus"], 2.0);
    assert_eq!(east["gpu_hours"], 2.0);
    // The configured $4 wins over the reported $99.
    assert_eq!(east["dollars"], 8.0);
    assert_eq!(east["dollars_per_gpu_hour"], 4.0);
    assert_eq!(east["dollars_per_token"], 0.004);
    crate::support::api::assert_close(&east["ttft_p99_seconds"], 0.5, "ttft p99");
    let west = find(&body["clusters"], "cluster", "west");
    assert_eq!(west["queue_depth"], 2.0);
    assert_eq!(west["dollars"], 2.5);
    assert_eq!(west["dollars_per_gpu_hour"], 2.5);
    assert_eq!(west["dollars_per_token"], 2.5 / 500.0);
}

#[tokio::test]
async fn tenant_cost_prices_each_cluster_with_its_own_prices() {
    let api = start(fleet_data()).await;
    let body = api
        .ok("/v1/tenants/team-a/signals/Cost?groupBy=cluster")
        .await;
    let east = crate::support::api::group(&body, Some("east"), None);
    assert_eq!(east["dollars"], 8.0);
    assert_eq!(east["by_sku"]["H100"]["price_source"], "pricing");
    assert_eq!(east["dollars_per_token"], 0.004);
    let all = api.ok("/v1/tenants/team-a/signals/Cost?groupBy=").await;
    let group = &all["groups"][0];
    assert_eq!(group["gpu_hours"], 3.0);
    assert_eq!(group["dollars"], 10.5);
    assert_eq!(group["dollars_per_gpu_hour"], 3.5);
    assert_eq!(group["tokens"], 2500.0);
    assert_eq!(group["dollars_per_token"], 10.5 / 2500.0);
    assert_eq!(group["by_sku"]["H100"]["price_source"], "mixed");
}

/// The fleet answers, as an operator sees them.
async fn fleet_answers(api: &TestApi) -> Vec<String> {
    let mut out = Vec::new();
    for path in [
        "/v1/scheduler/capacity",
        "/v1/scheduler/prefix-overlap?model=m1",
        "/v1/scheduler/overflow",
        "/v1/scheduler/overflow?model=m1",
        "/v1/fleet/compare?kind=RequestLifecycle&field=ttft_seconds",
    ] {
        out.push(api.ok(path).await.to_string());
    }
    let (_, _, metrics) = api.get_text("/metrics").await;
    out.push(
        metrics
            .lines()
            .filter(|l| l.starts_with("modelplane_fleet_"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    out
}

#[tokio::test]
async fn a_tenant_that_did_not_opt_in_never_moves_a_fleet_answer() {
    let api = start(fleet_data()).await;
    let before = fleet_answers(&api).await;
    assert!(
        before[5].contains("cluster=\"east\""),
        "fleet /metrics lines: {}",
        before[5]
    );
    api.store.merge(private_data()).await.unwrap();
    // The data is stored and team-b sees it...
    let own = api
        .ok("/v1/tenants/team-b/signals/RequestLifecycle?cluster=east")
        .await;
    assert_eq!(own["groups"][0]["requests"], 9000.0);
    // ...but no fleet answer moved.
    assert_eq!(fleet_answers(&api).await, before);
}

#[tokio::test]
async fn an_unsynced_directory_admits_nothing() {
    let directory = Directory::new();
    let api = TestApi::start_with(fleet_data(), |state| {
        state.fleet = Arc::new(directory);
    })
    .await;
    let body = api.ok("/v1/scheduler/capacity").await;
    assert_eq!(body["clusters"], serde_json::json!([]));
}
