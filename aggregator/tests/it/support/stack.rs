//! The aggregator's data path in one process over real loopback sockets:
//! OTLP/gRPC and OTLP/HTTP (protobuf) ingest → `Pipeline` (normalize →
//! sketch → embedded store) → query API (every series fleet-visible). Used
//! by the tests that send what an emitter sends and read the answer back.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use serde_json::Value;

use signal_aggregator::api::{self, ApiState};
use signal_aggregator::ingest::{self, IngestConfig};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::query::AllSeries;
use signal_aggregator::store::SketchStore;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

/// How a request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Grpc,
    HttpProtobuf,
    HttpJson,
}

impl Transport {
    pub const ALL: [Transport; 3] = [
        Transport::Grpc,
        Transport::HttpProtobuf,
        Transport::HttpJson,
    ];
}

pub struct Stack {
    pub grpc: String,
    pub http: String,
    pub api: String,
    pub metrics: Arc<SelfMetrics>,
}

async fn listener() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

impl Stack {
    pub async fn start(config: NormalizeConfig) -> Stack {
        let store: Arc<dyn SketchStore> = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
        let metrics = Arc::new(SelfMetrics::default());
        let sink: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
            Normalizer::new(config),
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
        let mut state = ApiState::new(store, metrics.clone());
        state.fleet = Arc::new(AllSeries);
        tokio::spawn(api::serve(
            api_listener,
            api::router(state),
            std::future::pending(),
        ));
        Stack {
            grpc: format!("http://{grpc}"),
            http: format!("http://{http}"),
            api: format!("http://{api}"),
            metrics,
        }
    }

    /// Sends `request`; returns the rejected data point count.
    pub async fn metrics(&self, transport: Transport, request: ExportMetricsServiceRequest) -> i64 {
        match transport {
            Transport::Grpc => {
                let mut client = MetricsServiceClient::connect(self.grpc.clone())
                    .await
                    .unwrap();
                let response = client.export(request).await.unwrap().into_inner();
                response
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points)
            }
            Transport::HttpJson => {
                let response = reqwest::Client::new()
                    .post(format!("{}/v1/metrics", self.http))
                    .header("content-type", "application/json")
                    .body(otlp_json::metrics(&request).to_string())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let body: Value = response.json().await.unwrap();
                body["partialSuccess"]["rejectedDataPoints"]
                    .as_str()
                    .map(|n| n.parse().unwrap())
                    .or_else(|| body["partialSuccess"]["rejectedDataPoints"].as_i64())
                    .unwrap_or(0)
            }
            Transport::HttpProtobuf => {
                let response = reqwest::Client::new()
                    .post(format!("{}/v1/metrics", self.http))
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                let bytes = response.bytes().await.unwrap();
                opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse::decode(bytes)
                    .unwrap()
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points)
            }
        }
    }

    /// Sends `request` over gRPC; returns the rejected span count.
    pub async fn traces(&self, request: ExportTraceServiceRequest) -> i64 {
        let mut client = TraceServiceClient::connect(self.grpc.clone())
            .await
            .unwrap();
        let response = client.export(request).await.unwrap().into_inner();
        response.partial_success.map_or(0, |p| p.rejected_spans)
    }

    /// `GET path` on the API; must answer 200 with JSON.
    pub async fn get(&self, path: &str) -> Value {
        let response = reqwest::get(format!("{}{path}", self.api)).await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `GET /metrics` as text.
    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("{}/metrics", self.api))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// OTLP/JSON (the protobuf JSON mapping OTLP/HTTP specifies: lowerCamelCase
/// keys, 64-bit integers as strings, enums as numbers) of the metric
/// requests the tests build.
pub mod otlp_json {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
    use opentelemetry_proto::tonic::metrics::v1::{
        HistogramDataPoint, NumberDataPoint, metric, number_data_point,
    };
    use serde_json::{Value, json};

    fn attributes(kvs: &[KeyValue]) -> Value {
        kvs.iter()
            .map(|kv| {
                let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => json!({ "stringValue": s }),
                    Some(any_value::Value::IntValue(i)) => json!({ "intValue": i.to_string() }),
                    Some(any_value::Value::DoubleValue(d)) => json!({ "doubleValue": d }),
                    Some(any_value::Value::BoolValue(b)) => json!({ "boolValue": b }),
                    other => panic!("no JSON for {other:?}"),
                };
                json!({ "key": kv.key, "value": value })
            })
            .collect()
    }

    fn number(dp: &NumberDataPoint) -> Value {
        let mut out = json!({
            "attributes": attributes(&dp.attributes),
            "startTimeUnixNano": dp.start_time_unix_nano.to_string(),
            "timeUnixNano": dp.time_unix_nano.to_string(),
        });
        match dp.value {
            Some(number_data_point::Value::AsDouble(d)) => out["asDouble"] = json!(d),
            Some(number_data_point::Value::AsInt(i)) => out["asInt"] = json!(i.to_string()),
            None => {}
        }
        out
    }

    fn histogram(dp: &HistogramDataPoint) -> Value {
        json!({
            "attributes": attributes(&dp.attributes),
            "startTimeUnixNano": dp.start_time_unix_nano.to_string(),
            "timeUnixNano": dp.time_unix_nano.to_string(),
            "count": dp.count.to_string(),
            "sum": dp.sum,
            "bucketCounts": dp.bucket_counts.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "explicitBounds": dp.explicit_bounds,
        })
    }

    pub fn metrics(request: &ExportMetricsServiceRequest) -> Value {
        let resource_metrics: Vec<Value> = request
            .resource_metrics
            .iter()
            .map(|rm| {
                let scopes: Vec<Value> = rm
                    .scope_metrics
                    .iter()
                    .map(|sm| {
                        let metrics: Vec<Value> = sm
                            .metrics
                            .iter()
                            .map(|m| {
                                let mut out = json!({ "name": m.name });
                                match &m.data {
                                    Some(metric::Data::Gauge(g)) => {
                                        out["gauge"] = json!({ "dataPoints":
                                            g.data_points.iter().map(number).collect::<Vec<_>>() });
                                    }
                                    Some(metric::Data::Sum(s)) => {
                                        out["sum"] = json!({
                                            "aggregationTemporality": s.aggregation_temporality,
                                            "isMonotonic": s.is_monotonic,
                                            "dataPoints": s.data_points.iter().map(number).collect::<Vec<_>>() });
                                    }
                                    Some(metric::Data::Histogram(h)) => {
                                        out["histogram"] = json!({
                                            "aggregationTemporality": h.aggregation_temporality,
                                            "dataPoints": h.data_points.iter().map(histogram).collect::<Vec<_>>() });
                                    }
                                    other => panic!("no JSON for {other:?}"),
                                }
                                out
                            })
                            .collect();
                        json!({ "metrics": metrics })
                    })
                    .collect();
                let resource = rm
                    .resource
                    .as_ref()
                    .map(|r| attributes(&r.attributes))
                    .unwrap_or_else(|| json!([]));
                json!({ "resource": { "attributes": resource }, "scopeMetrics": scopes })
            })
            .collect();
        json!({ "resourceMetrics": resource_metrics })
    }
}
