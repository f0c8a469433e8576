//! End to end in one process over real sockets: OTLP/gRPC (gzip) and OTLP/HTTP
//! requests → ingest → `Pipeline` (normalize → sketch → embedded store) →
//! query API, checking the numbers that come back against what was sent.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp_test_kit::synthetic::{FleetShape, SpanGenerator, tenant_name};
use otlp_test_kit::{double_kv, error_status, int_kv, span, string_kv, traces_request, unix_nanos};
use prost::Message as _;

use signal_aggregator::api::{self, ApiState};
use signal_aggregator::ingest::{self, IngestConfig};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportError, ExportSink, Pipeline};
use signal_aggregator::signal::{Origin, SeriesKey};
use signal_aggregator::sketch::{SeriesSketch, WindowedSketch};
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::store::{
    MaintenanceReport, SketchStore, StoreError, StoreHealth, StoreQuery,
};
use signal_aggregator::telemetry::SelfMetrics;

/// One vLLM `llm_request` span (deprecated token attribute names, as vLLM sends them).
fn llm_request(
    model: &str,
    ttft: f64,
    e2e: f64,
    queue: f64,
    tokens: (i64, i64),
    failed: bool,
) -> Span {
    let end = unix_nanos();
    let attributes = vec![
        string_kv("gen_ai.response.model", model),
        int_kv("gen_ai.usage.prompt_tokens", tokens.0),
        int_kv("gen_ai.usage.completion_tokens", tokens.1),
        double_kv("gen_ai.latency.time_to_first_token", ttft),
        double_kv("gen_ai.latency.e2e", e2e),
        double_kv("gen_ai.latency.time_in_queue", queue),
        // Prompt text the allowlist must never let through.
        string_kv("gen_ai.prompt", "SECRET PROMPT do not store"),
    ];
    Span {
        status: failed.then(error_status).flatten(),
        ..span("llm_request", attributes, end - (e2e * 1e9) as u64, end)
    }
}

fn request(tenant: &str, cluster: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    let resource = vec![
        string_kv("modelplane.tenant", tenant),
        string_kv("modelplane.cluster", cluster),
    ];
    traces_request(resource, spans)
}

struct Aggregator {
    grpc: String,
    http: String,
    api: String,
    metrics: Arc<SelfMetrics>,
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

/// Ingest (gRPC and HTTP) and the query API over one pipeline and embedded store.
async fn start(store: Arc<dyn SketchStore>) -> Aggregator {
    let metrics = Arc::new(SelfMetrics::default());
    let sink: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
        Normalizer::new(NormalizeConfig::default()),
        store.clone(),
        metrics.clone(),
    ));
    let (grpc_listener, grpc) = listener().await;
    let (http_listener, http) = listener().await;
    let (api_listener, api) = listener().await;
    tokio::spawn(ingest::serve_grpc(
        grpc_listener,
        sink.clone(),
        IngestConfig::default(),
        metrics.clone(),
        std::future::pending(),
    ));
    let http_router = ingest::http_router(sink, IngestConfig::default(), metrics.clone());
    tokio::spawn(async move { axum::serve(http_listener, http_router).await.unwrap() });
    let api_router = api::router(ApiState::new(store, metrics.clone()));
    tokio::spawn(api::serve(api_listener, api_router, std::future::pending()));
    Aggregator {
        grpc: format!("http://{grpc}"),
        http: format!("http://{http}"),
        api: format!("http://{api}"),
        metrics,
    }
}

async fn query(aggregator: &Aggregator, path: &str) -> serde_json::Value {
    let response = reqwest::get(format!("{}{path}", aggregator.api))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.unwrap()
}

fn only_group(body: &serde_json::Value) -> &serde_json::Value {
    let groups = body["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{body}");
    &groups[0]
}

fn within_one_percent(actual: &serde_json::Value, expected: f64) {
    let actual = actual
        .as_f64()
        .unwrap_or_else(|| panic!("not a number: {actual}"));
    assert!(
        (actual - expected).abs() <= expected * 0.01 + 1e-12,
        "{actual} vs {expected}"
    );
}

#[tokio::test]
async fn spans_sent_over_grpc_and_http_are_queryable_with_exact_totals() {
    let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
    let aggregator = start(store.clone()).await;

    // gRPC with gzip, as the collector's otlp exporter sends it: 10 requests,
    // TTFT 0.1..=1.0 s, one failure.
    let grpc_spans = (1..=10)
        .map(|i| {
            llm_request(
                "llama-8b",
                f64::from(i) / 10.0,
                2.0,
                0.05,
                (100, 20),
                i == 10,
            )
        })
        .collect();
    let mut client = TraceServiceClient::connect(aggregator.grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let response = client
        .export(request("team-a", "c1", grpc_spans))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(response.partial_success.map_or(0, |p| p.rejected_spans), 0);

    // OTLP/HTTP protobuf: 5 more in another cluster, and another tenant's 3.
    for (tenant, cluster, n) in [("team-a", "c2", 5), ("team-b", "c1", 3)] {
        let spans = (0..n)
            .map(|_| llm_request("llama-8b", 0.5, 1.0, 0.01, (10, 5), false))
            .collect();
        let body = request(tenant, cluster, spans).encode_to_vec();
        let response = reqwest::Client::new()
            .post(format!("{}/v1/traces", aggregator.http))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    let body = query(
        &aggregator,
        "/v1/tenants/team-a/signals/RequestLifecycle?cluster=c1",
    )
    .await;
    let g = only_group(&body);
    assert_eq!(g["cluster"], "c1");
    assert_eq!(g["model"], "llama-8b");
    assert_eq!(g["requests"], 10.0);
    assert_eq!(g["errors"], 1.0);
    assert_eq!(g["input_tokens"], 1_000.0);
    assert_eq!(g["output_tokens"], 200.0);
    // TTFT describes successful responses only: 0.1..=0.9 s, nine of them.
    assert_eq!(g["ttft_seconds"]["count"], 9);
    within_one_percent(&g["ttft_seconds"]["p50"], 0.5);
    within_one_percent(&g["ttft_seconds"]["p99"], 0.8);
    assert_eq!(g["e2e_seconds"]["count"], 10);
    assert_eq!(g["e2e_seconds"]["p90"], 2.0);
    assert_eq!(g["queue_seconds"]["p50"], 0.05);

    let body = query(
        &aggregator,
        "/v1/tenants/team-a/signals/RequestLifecycle?groupBy=model",
    )
    .await;
    let g = only_group(&body);
    assert_eq!(g["requests"], 15.0);
    assert_eq!(g["input_tokens"], 1_050.0);
    let body = query(
        &aggregator,
        "/v1/tenants/team-b/signals/RequestLifecycle?groupBy=",
    )
    .await;
    assert_eq!(only_group(&body)["requests"], 3.0);

    assert_eq!(
        aggregator.metrics.ingested_snapshot().get("traces"),
        Some(&18)
    );
    assert_eq!(
        aggregator
            .metrics
            .flushes
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );

    // The prompt attribute reached neither the API nor /metrics.
    let everything = [
        reqwest::get(format!("{}/metrics", aggregator.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        query(&aggregator, "/v1/tenants/team-a/signals/RequestLifecycle")
            .await
            .to_string(),
        query(&aggregator, "/v1/tenants/team-a/signals/PrefixHash")
            .await
            .to_string(),
    ]
    .concat();
    assert!(!everything.contains("SECRET"), "prompt text leaked");
}

#[tokio::test]
async fn synthetic_fleet_totals_survive_the_whole_path() {
    let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
    let aggregator = start(store).await;
    let shape = FleetShape::default();
    let mut generator = SpanGenerator::new(7, shape).error_ratio(0.1);
    let mut client = TraceServiceClient::connect(aggregator.grpc.clone())
        .await
        .unwrap()
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    for _ in 0..5 {
        let batch = generator.batch(1_000, unix_nanos());
        let response = client.export(batch).await.unwrap().into_inner();
        assert_eq!(response.partial_success.map_or(0, |p| p.rejected_spans), 0);
    }
    let truth = generator.totals().clone();
    assert_eq!(truth.spans, 5_000);

    // Sum every tenant's single group; tenants are what the generator names.
    let (mut requests, mut errors, mut input, mut output) = (0.0, 0.0, 0.0, 0.0);
    for tenant in 0..shape.tenants {
        let name = tenant_name(tenant);
        let body = query(
            &aggregator,
            &format!("/v1/tenants/{name}/signals/RequestLifecycle?groupBy="),
        )
        .await;
        for g in body["groups"].as_array().unwrap() {
            requests += g["requests"].as_f64().unwrap();
            errors += g["errors"].as_f64().unwrap();
            input += g["input_tokens"].as_f64().unwrap();
            output += g["output_tokens"].as_f64().unwrap();
        }
    }
    assert_eq!(requests, truth.spans as f64);
    assert_eq!(errors, truth.errors as f64);
    assert_eq!(input, truth.input_tokens as f64);
    assert_eq!(output, truth.output_tokens as f64);
}

/// A store that refuses every write, as a store in an outage does.
struct RefusingStore;

#[async_trait]
impl SketchStore for RefusingStore {
    async fn merge(&self, _sketches: Vec<WindowedSketch>) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn query(
        &self,
        _query: &StoreQuery,
    ) -> Result<Vec<(SeriesKey, SeriesSketch)>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn health(&self) -> StoreHealth {
        StoreHealth {
            ready: false,
            detail: "connection refused".into(),
            series: None,
        }
    }
    async fn run_maintenance(&self, _now: u64) -> Result<MaintenanceReport, StoreError> {
        Ok(MaintenanceReport::default())
    }
    fn retention_secs(&self) -> u64 {
        86_400
    }
    fn describe(&self) -> String {
        "a store that refuses every write".into()
    }
}

#[tokio::test]
async fn a_store_outage_is_a_retryable_refusal_never_an_acknowledgement() {
    let metrics = Arc::new(SelfMetrics::default());
    let pipeline = Pipeline::new(
        Normalizer::new(NormalizeConfig::default()),
        Arc::new(RefusingStore),
        metrics.clone(),
    );
    let spans = (0..4)
        .map(|_| llm_request("m", 0.1, 1.0, 0.0, (1, 2), false))
        .collect();
    let error = pipeline
        .export_traces(&Origin::default(), request("team-a", "c1", spans))
        .await
        .unwrap_err();
    match error {
        ExportError::Unavailable {
            retry_after,
            reason,
        } => {
            assert_eq!(retry_after, Duration::from_secs(5));
            assert_eq!(reason, "connection refused");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        metrics.ingested_snapshot().is_empty(),
        "nothing was acknowledged"
    );
    assert_eq!(
        metrics
            .rejected_snapshot()
            .get(&("traces", "store_unavailable")),
        Some(&4)
    );

    // Over the wire: gRPC UNAVAILABLE, and the API says the store is down.
    let aggregator = start(Arc::new(RefusingStore)).await;
    let mut client = TraceServiceClient::connect(aggregator.grpc.clone())
        .await
        .unwrap();
    let spans = vec![llm_request("m", 0.1, 1.0, 0.0, (1, 2), false)];
    let status = client
        .export(request("team-a", "c1", spans))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    let ready = reqwest::get(format!("{}/readyz", aggregator.api))
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let signals = reqwest::get(format!(
        "{}/v1/tenants/team-a/signals/RequestLifecycle",
        aggregator.api
    ))
    .await
    .unwrap();
    assert_eq!(signals.status(), 503);
}
