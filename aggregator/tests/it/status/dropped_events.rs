//! `status.signals.droppedEvents` end to end: OTLP over real gRPC with
//! per-cluster ingest tokens → the real pipeline (normalize → sketch →
//! store) → the status writer's server-side apply against the in-process API
//! server. Every item normalize refused or dropped losing data counts for the
//! token's cluster; deduplication by design (a retried point, a superseded
//! name, a lower-ranked vantage) does not.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::status::{
    FakeApiServer, IC, cluster_signals_written, watched_directory, writer_config,
};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::losses::*;
use otlp_test_kit::*;
use serde_json::{Value, json};
use signal_aggregator::auth::{IngestTokens, Reloading, parse_ingest_tokens};
use signal_aggregator::clock::Clock;
use signal_aggregator::ingest::{self, IngestConfig};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::activity::{Activity, track_activity};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::status::StatusWriter;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::telemetry::SelfMetrics;

const EU_TOKEN: &str = "eu-west-token";
const US_TOKEN: &str = "us-east-token";

struct Aggregator {
    server: FakeApiServer,
    writer: StatusWriter,
    metrics: Arc<SelfMetrics>,
    grpc: String,
    now: u64,
    _tokens: tempfile::NamedTempFile,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Aggregator {
    /// eu-west is new; us-east already shows 10 dropped events from an
    /// earlier process. Each tenant may hold three series.
    async fn start() -> Aggregator {
        let (server, url) = FakeApiServer::start().await;
        server.put(
            IC,
            json!({"metadata": {"name": "eu-west"},
                   "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}}}),
        );
        server.put(
            IC,
            json!({"metadata": {"name": "us-east"},
                   "spec": {"signals": {"kinds": [{"name": "RequestLifecycle"}]}},
                   "status": {"signals": {"droppedEvents": 10}}}),
        );
        let client = FakeApiServer::client(&url);
        let (directory, stop) = watched_directory(&url, |d| d.clusters().len() == 2).await;

        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let clock: Clock = Arc::new(move || now);
        let activity = Activity::new(clock);
        let store = track_activity(
            Arc::new(MemoryStore::new(MemoryStoreConfig::default())),
            &activity,
        );
        let metrics = Arc::new(SelfMetrics::default());
        let sink: Arc<dyn ExportSink> = Arc::new(
            Pipeline::new(
                Normalizer::new(NormalizeConfig {
                    max_series_per_tenant: 3,
                    ..Default::default()
                }),
                store.clone(),
                metrics.clone(),
            )
            .with_loss_observer(Arc::new(activity.clone())),
        );
        let tokens = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            tokens.path(),
            format!("eu-west: {EU_TOKEN}\nus-east: {US_TOKEN}\n"),
        )
        .unwrap();
        let table = Reloading::open(tokens.path(), parse_ingest_tokens, None).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(ingest::serve_grpc(
            listener,
            sink,
            IngestConfig {
                authenticator: Arc::new(IngestTokens::new(table)),
                ..IngestConfig::default()
            },
            metrics.clone(),
            std::future::pending(),
        ));
        let writer = StatusWriter::new(client, directory, store, activity, writer_config());
        Aggregator {
            server,
            writer,
            metrics,
            grpc,
            now,
            _tokens: tokens,
            _stop: stop,
        }
    }

    fn nanos(&self) -> u64 {
        self.now * SEC
    }

    /// Exports metrics as `token`'s cluster; returns the rejected count.
    async fn metrics(&self, token: &str, request: ExportMetricsServiceRequest) -> i64 {
        let mut client = MetricsServiceClient::connect(self.grpc.clone())
            .await
            .unwrap();
        let response = client.export(authorized(token, request)).await.unwrap();
        response
            .into_inner()
            .partial_success
            .map_or(0, |p| p.rejected_data_points)
    }

    /// Exports spans as `token`'s cluster; returns the rejected count.
    async fn traces(&self, token: &str, request: ExportTraceServiceRequest) -> i64 {
        let mut client = TraceServiceClient::connect(self.grpc.clone())
            .await
            .unwrap();
        let response = client.export(authorized(token, request)).await.unwrap();
        response
            .into_inner()
            .partial_success
            .map_or(0, |p| p.rejected_spans)
    }

    /// `droppedEvents` of each InferenceCluster written in one pass at `at`.
    async fn dropped_events_written_at(&mut self, at: u64) -> Vec<(String, Value)> {
        cluster_signals_written(&mut self.writer, &self.server, at)
            .await
            .into_iter()
            .map(|(cluster, signals)| (cluster, signals["droppedEvents"].clone()))
            .collect()
    }

    /// Items counted on `/metrics` for a reason (both signals).
    fn dropped(&self, reason: &str) -> u64 {
        self.metrics
            .dropped_snapshot()
            .iter()
            .filter(|((_, r), _)| *r == reason)
            .map(|(_, n)| n)
            .sum()
    }

    fn rejected_invalid(&self) -> u64 {
        self.metrics
            .rejected_snapshot()
            .iter()
            .filter(|((_, r), _)| *r == "invalid")
            .map(|(_, n)| n)
            .sum()
    }
}

fn authorized<T>(token: &str, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn dropped_events_count_exactly_the_items_lost_for_each_cluster() {
    let mut agg = Aggregator::start().await;
    let t = agg.nanos();
    let (start, end) = (t - 2 * SEC, t - SEC);

    // eu-west's agent, whose resources claim us-east (the token decides).
    let claimed = || resource("team-a", "us-east");
    // Five models against a budget of three: 2 fold into the overflow
    // series (model `otel.metric.overflow`), nothing lost.
    assert_eq!(
        agg.metrics(EU_TOKEN, queue_depth_per_model(claimed(), 0..5, t))
            .await,
        0
    );
    // 3 exponential histogram + 1 summary points: 4 lost; 2 malformed points
    // rejected back to the sender: 2 lost.
    let mut metrics = unsupported_types(3, 1, t);
    metrics.extend(malformed_points(t));
    assert_eq!(
        agg.metrics(EU_TOKEN, metrics_request(claimed(), metrics))
            .await,
        2
    );
    // 3 malformed spans next to a valid one: 3 lost.
    let mut spans = malformed_spans(start, end);
    spans.push(request_span(start, end));
    assert_eq!(
        agg.traces(EU_TOKEN, traces_request(claimed(), spans)).await,
        3
    );
    // Spans without a tenant: the token names the cluster, so 2 lost.
    assert_eq!(
        agg.traces(
            EU_TOKEN,
            traces_request(
                vec![string_kv("service.name", "gateway")],
                vec![request_span(start, end); 2]
            )
        )
        .await,
        2
    );
    // Deduplication by design, under another tenant's budget: nothing lost.
    let team_b = || resource("team-b", "eu-west");
    let retried = retried_counter(team_b(), t);
    agg.metrics(EU_TOKEN, retried.clone()).await;
    agg.metrics(EU_TOKEN, retried).await;
    agg.metrics(EU_TOKEN, superseded_name(team_b(), start, end))
        .await;
    let [engine, router] = engine_then_router(team_b(), start, end);
    agg.metrics(EU_TOKEN, engine).await;
    agg.metrics(EU_TOKEN, router).await;
    let eu_west_lost = 4 + 2 + 3 + 2;

    // us-east's agent: one series over team-c's budget, and two points
    // under a tenant name that is not valid.
    agg.metrics(
        US_TOKEN,
        queue_depth_per_model(resource("team-c", "x"), 0..4, t),
    )
    .await;
    assert_eq!(
        agg.metrics(
            US_TOKEN,
            queue_depth_per_model(resource("Team C", "x"), 0..2, t)
        )
        .await,
        2
    );
    // team-c's series over its budget folds into the overflow series.
    let us_east_lost = 2;

    // What /metrics says happened, per reason: the dedup drops did happen,
    // and everything lost is accounted to a cluster.
    assert_eq!(agg.dropped("duplicate_point"), 1);
    assert_eq!(agg.dropped("superseded_metric_name"), 1);
    assert_eq!(agg.dropped("outranked_source"), 1);
    assert_eq!(agg.dropped("series_overflow"), 2 + 1);
    let lost_on_metrics = agg.rejected_invalid()
        + agg.dropped("unsupported_metric_type")
        + agg.dropped("cumulative_state_full");
    assert_eq!(lost_on_metrics, eu_west_lost + us_east_lost);

    let now = agg.now;
    assert_eq!(
        agg.dropped_events_written_at(now).await,
        vec![
            ("eu-west".into(), json!(eu_west_lost)),
            // Continues from the 10 an earlier process reported.
            ("us-east".into(), json!(10 + us_east_lost)),
        ]
    );

    // More losses are written on the next pass past the minimum interval.
    agg.metrics(
        EU_TOKEN,
        metrics_request(claimed(), unsupported_types(5, 0, t)),
    )
    .await;
    let later = now + Duration::from_secs(31).as_secs();
    let written = agg.dropped_events_written_at(later).await;
    assert!(
        written.contains(&("eu-west".into(), json!(eu_west_lost + 5))),
        "{written:?}"
    );
    let stored = agg.server.object(IC, "", "eu-west").unwrap();
    assert_eq!(
        stored["status"]["signals"]["droppedEvents"],
        json!(eu_west_lost + 5)
    );
}
