//! Operational endpoints over a real socket: the OpenAPI document against the
//! routes the router serves, health and readiness, and `/metrics` checked by
//! Prometheus's own parser (`promtool check metrics`, Debian package `prometheus`).

use std::collections::BTreeSet;
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::api::{NOW, SketchBuilder, TestApi, key};
use signal_aggregator::api::ROUTES;
use signal_aggregator::signal::{Field, SignalKind};

const RL: SignalKind = SignalKind::RequestLifecycle;

#[tokio::test]
async fn openapi_document_describes_exactly_the_served_routes() {
    let api = TestApi::start(vec![]).await;
    let (status, content_type, text) = api.get_text("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let doc: serde_json::Value = serde_json::from_str(&text).expect("OpenAPI document is JSON");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = ROUTES.iter().copied().collect();
    assert_eq!(documented, served);

    for route in ROUTES {
        let operation = &doc["paths"][route]["get"];
        assert!(
            operation["operationId"].is_string(),
            "{route} has no operationId"
        );
        let ok = &operation["responses"]["200"];
        assert!(ok["description"].is_string(), "{route} has no 200 response");
        assert!(ok["content"].is_object(), "{route} 200 has no content");
        // Each documented path answers on the real router (not the 404 fallback).
        let concrete = route
            .replace("{tenant}", "team-a")
            .replace("{kind}", "RequestLifecycle");
        let query = match *route {
            "/v1/fleet/compare" => "?kind=RequestLifecycle&field=ttft_seconds",
            "/v1/scheduler/prefix-overlap" => "?model=m1",
            _ => "",
        };
        let (status, _, body) = api.get_text(&format!("{concrete}{query}")).await;
        assert_eq!(status, 200, "{concrete}: {body}");
    }

    // Every $ref points at a schema the document defines.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{reference}"));
        assert!(schemas.contains_key(name), "dangling $ref {reference}");
    }
    // The kind enums list every signal kind.
    let kinds = &doc["paths"]["/v1/tenants/{tenant}/signals/{kind}"]["get"]["parameters"][1]["schema"]
        ["enum"];
    assert_eq!(kinds.as_array().unwrap().len(), SignalKind::ALL.len());
}

fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_string());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn health_and_readiness() {
    let sketch = SketchBuilder::new(key("t", "c", "m", RL), NOW - 60)
        .counter(Field::Requests, 1.0)
        .build();
    let api = TestApi::start(vec![sketch]).await;
    assert_eq!(api.ok("/healthz").await["status"], "ok");
    let ready = api.ok("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"]["ready"], true);
    assert_eq!(ready["store"]["series"], 1);
}

fn promtool_check(text: &str) -> String {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: install Debian package `prometheus` (test/run-all.sh does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool rejected /metrics:\n{report}\n---\n{text}"
    );
    report
}

#[tokio::test]
async fn metrics_are_valid_prometheus_text_with_self_health_and_signal_gauges() {
    let sketches = vec![
        SketchBuilder::new(key("team-a", "us-east-1", "llama-8b", RL), NOW - 60)
            .samples(Field::TtftSeconds, std::iter::repeat_n(0.25, 10))
            .counter(Field::Requests, 10.0)
            .counter(Field::Errors, 1.0)
            .counter(Field::PrefixCacheQueries, 200.0)
            .counter(Field::PrefixCacheHits, 50.0)
            .gauge(Field::QueueDepth, 5.0)
            .build(),
        SketchBuilder::new(key("team-b", "us-east-1", "llama-8b", RL), NOW - 60)
            .samples(Field::TtftSeconds, std::iter::repeat_n(0.75, 30))
            .build(),
        // Identity values that need escaping in the text format.
        SketchBuilder::new(key("team-a", "eu\"west", "model\\x\ny", RL), NOW - 60)
            .counter(Field::Requests, 2.0)
            .build(),
        // Outside the five-minute window: not reported.
        SketchBuilder::new(key("team-a", "old", "llama-8b", RL), NOW - 3_600)
            .counter(Field::Requests, 99.0)
            .build(),
    ];
    let api = TestApi::start(sketches).await;
    api.metrics.ingested("traces", 1_000);
    api.metrics.rejected("traces", "invalid", 3);
    api.metrics.dropped("metrics", "cardinality_limit", 7);
    api.metrics.record_flush(0.5);
    api.metrics.record_flush(0.25);

    let (status, content_type, text) = api.get_text("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    promtool_check(&text);

    let lines: BTreeSet<&str> = text.lines().collect();
    for expected in [
        r#"modelplane_aggregator_ingested_items_total{signal="traces"} 1000"#,
        r#"modelplane_aggregator_rejected_items_total{signal="traces",reason="invalid"} 3"#,
        r#"modelplane_aggregator_dropped_items_total{signal="metrics",reason="cardinality_limit"} 7"#,
        "modelplane_aggregator_flush_duration_seconds_sum 0.75",
        "modelplane_aggregator_flush_duration_seconds_count 2",
        "modelplane_aggregator_store_ready 1",
        "modelplane_aggregator_series 4",
        r#"modelplane_signal_ttft_seconds{tenant="team-a",cluster="us-east-1",model="llama-8b",quantile="0.99"} 0.25"#,
        r#"modelplane_signal_ttft_seconds{tenant="team-b",cluster="us-east-1",model="llama-8b",quantile="0.5"} 0.75"#,
        r#"modelplane_signal_requests{tenant="team-a",cluster="us-east-1",model="llama-8b"} 10"#,
        r#"modelplane_signal_errors{tenant="team-a",cluster="us-east-1",model="llama-8b"} 1"#,
        r#"modelplane_signal_prefix_cache_hit_ratio{tenant="team-a",cluster="us-east-1",model="llama-8b"} 0.25"#,
        r#"modelplane_signal_queue_depth{tenant="team-a",cluster="us-east-1",model="llama-8b"} 5"#,
        r#"modelplane_signal_requests{tenant="team-a",cluster="eu\"west",model="model\\x\ny"} 2"#,
        r#"modelplane_fleet_requests{cluster="us-east-1"} 10"#,
    ] {
        assert!(
            lines.contains(expected),
            "missing line {expected}\n---\n{text}"
        );
    }
    assert!(
        !text.contains("cluster=\"old\""),
        "series outside the window leaked:\n{text}"
    );
    // The fleet roll-up merges both tenants' sketches (10 × 0.25 and 30 × 0.75):
    // p50 is 0.75 within the sketch's 1 %, where averaging the tenants would say 0.5.
    let fleet_p50 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix(r#"modelplane_fleet_ttft_seconds{cluster="us-east-1",quantile="0.5"} "#)
        })
        .unwrap_or_else(|| panic!("no fleet p50 line\n{text}"));
    crate::support::api::assert_close(
        &serde_json::json!(fleet_p50.parse::<f64>().unwrap()),
        0.75,
        "fleet p50",
    );
}

#[tokio::test]
async fn docs_api_md_covers_every_route_and_every_request_lifecycle_field() {
    let doc_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.md");
    let doc = std::fs::read_to_string(doc_path).expect("docs/api.md");
    for route in ROUTES {
        assert!(
            doc.contains(&format!("GET {route}")),
            "docs/api.md does not document {route}"
        );
    }
    let sketch = SketchBuilder::new(key("team-a", "c1", "m1", RL), NOW - 60)
        .counter(Field::Requests, 1.0)
        .build();
    let api = TestApi::start(vec![sketch]).await;
    let body = api.ok("/v1/tenants/team-a/signals/RequestLifecycle").await;
    for field in body["groups"][0].as_object().unwrap().keys() {
        assert!(
            doc.contains(&format!("`{field}`")),
            "docs/api.md does not mention `{field}`"
        );
    }
}

#[tokio::test]
async fn metrics_show_capacity_cold_start_cost_failures_and_reporting_clusters() {
    use signal_aggregator::signal::{FieldKey, Value};
    let dim = |field, k: &str, v: &str| FieldKey::with_dim(field, k, v);
    let h100 = "nvidia-h100-80gb-hbm3";
    let mut sketches = Vec::new();
    for (tenant, gpus, failures) in [("team-a", 8.0, 2.0), ("team-b", 4.0, 1.0)] {
        sketches.push(
            SketchBuilder::new(key(tenant, "us-east-1", "", SignalKind::Capacity), NOW - 60)
                .point(dim(Field::Gpus, "sku", h100), Value::Gauge(gpus))
                .point(
                    dim(Field::GpusAllocated, "sku", h100),
                    Value::Gauge(gpus - 1.0),
                )
                .point(
                    dim(Field::KvCacheUtilization, "tier", "hbm"),
                    Value::Gauge(0.5),
                )
                .gauge(Field::ReplicasActive, 3.0)
                .build(),
        );
        sketches.push(
            SketchBuilder::new(
                key(tenant, "us-east-1", "m", SignalKind::ColdStart),
                NOW - 60,
            )
            .point(
                dim(Field::PhaseSeconds, "phase", "model_load"),
                Value::Sample(30.0),
            )
            .build(),
        );
        sketches.push(
            SketchBuilder::new(key(tenant, "us-east-1", "m", SignalKind::Cost), NOW - 60)
                .point(dim(Field::GpuSeconds, "sku", h100), Value::Counter(1_800.0))
                .point(dim(Field::PricePerGpuHour, "sku", h100), Value::Gauge(4.0))
                .build(),
        );
        let mut failure = FieldKey::with_dim(Field::Failures, "sku", h100);
        failure.dims.insert("cause".into(), "xid_79".into());
        sketches.push(
            SketchBuilder::new(
                key(tenant, "us-east-1", "", SignalKind::Reliability),
                NOW - 60,
            )
            .point(failure, Value::Counter(failures))
            .build(),
        );
    }
    sketches.push(
        SketchBuilder::new(key("team-a", "us-east-1", "m", RL), NOW - 60)
            .counter(Field::InputTokens, 900.0)
            .counter(Field::OutputTokens, 100.0)
            .build(),
    );
    let api = TestApi::start(sketches).await;
    let (status, _, text) = api.get_text("/metrics").await;
    assert_eq!(status, 200);
    promtool_check(&text);
    let lines: BTreeSet<&str> = text.lines().collect();
    for expected in [
        r#"modelplane_signal_gpus{tenant="team-a",cluster="us-east-1",model="",sku="nvidia-h100-80gb-hbm3"} 8"#,
        r#"modelplane_signal_gpus_allocated{tenant="team-b",cluster="us-east-1",model="",sku="nvidia-h100-80gb-hbm3"} 3"#,
        r#"modelplane_signal_kv_cache_utilization{tenant="team-a",cluster="us-east-1",model="",tier="hbm"} 0.5"#,
        r#"modelplane_signal_replicas{tenant="team-a",cluster="us-east-1",model="",state="active"} 3"#,
        r#"modelplane_signal_coldstart_phase_seconds{tenant="team-a",cluster="us-east-1",model="m",phase="model_load",quantile="0.99"} 30"#,
        r#"modelplane_signal_gpu_seconds{tenant="team-a",cluster="us-east-1",model="m",sku="nvidia-h100-80gb-hbm3"} 1800"#,
        r#"modelplane_signal_cost_dollars{tenant="team-a",cluster="us-east-1",model="m"} 2"#,
        r#"modelplane_signal_failures{tenant="team-b",cluster="us-east-1",model="",sku="nvidia-h100-80gb-hbm3",cause="xid_79"} 1"#,
        r#"modelplane_signal_input_tokens{tenant="team-a",cluster="us-east-1",model="m"} 900"#,
        r#"modelplane_signal_output_tokens{tenant="team-a",cluster="us-east-1",model="m"} 100"#,
        // Per cluster, both tenants merged: counters add up.
        r#"modelplane_fleet_gpu_seconds{cluster="us-east-1",sku="nvidia-h100-80gb-hbm3"} 3600"#,
        r#"modelplane_fleet_cost_dollars{cluster="us-east-1"} 4"#,
        r#"modelplane_fleet_failures{cluster="us-east-1",sku="nvidia-h100-80gb-hbm3",cause="xid_79"} 3"#,
        r#"modelplane_fleet_coldstart_phase_seconds{cluster="us-east-1",phase="model_load",quantile="0.5"} 30"#,
        r#"modelplane_aggregator_reporting_series{cluster="us-east-1",kind="RequestLifecycle"} 1"#,
        r#"modelplane_aggregator_reporting_series{cluster="us-east-1",kind="Capacity"} 2"#,
        r#"modelplane_aggregator_reporting_series{cluster="us-east-1",kind="Reliability"} 2"#,
    ] {
        assert!(
            lines.contains(expected),
            "missing line {expected}\n---\n{text}"
        );
    }
}
