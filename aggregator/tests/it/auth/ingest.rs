//! Ingest authentication over real sockets (OTLP/gRPC and OTLP/HTTP): per-cluster
//! bearer tokens from a token file, attribution to the token's cluster whatever
//! the resource attributes claim, clear refusals, rotation and revocation.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::{double_kv, span, string_kv, traces_request, unix_nanos};
use prost::Message as _;

use signal_aggregator::auth::tokens::digest_hex;
use signal_aggregator::auth::{IngestTokens, Reloading, parse_ingest_tokens};
use signal_aggregator::ingest::{self, IngestConfig};
use signal_aggregator::normalize::{NormalizeConfig, Normalizer};
use signal_aggregator::pipeline::{ExportSink, Pipeline};
use signal_aggregator::signal::SignalKind;
use signal_aggregator::store::memory::{MemoryStore, MemoryStoreConfig};
use signal_aggregator::store::{SketchStore, StoreQuery};
use signal_aggregator::telemetry::SelfMetrics;

/// One request span claiming `claimed_cluster` in its resource attributes.
fn export(claimed_cluster: &str) -> ExportTraceServiceRequest {
    let end = unix_nanos();
    let attributes = vec![
        string_kv("gen_ai.response.model", "m1"),
        double_kv("gen_ai.latency.time_to_first_token", 0.25),
    ];
    let resource = vec![
        string_kv("modelplane.tenant", "team-a"),
        string_kv("modelplane.cluster", claimed_cluster),
    ];
    traces_request(
        resource,
        vec![span("llm_request", attributes, end - 1_000_000_000, end)],
    )
}

struct Ingest {
    grpc: String,
    http: String,
    store: Arc<MemoryStore>,
    tokens: Arc<Reloading<signal_aggregator::auth::tokens::TokenTable<String>>>,
    file: tempfile::NamedTempFile,
}

impl Ingest {
    async fn start(tokens_yaml: &str) -> Ingest {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), tokens_yaml).unwrap();
        let tokens = Reloading::open(
            file.path(),
            parse_ingest_tokens,
            Some(Duration::from_millis(20)),
        )
        .unwrap();
        let store = Arc::new(MemoryStore::new(MemoryStoreConfig::default()));
        let metrics = Arc::new(SelfMetrics::default());
        let sink: Arc<dyn ExportSink> = Arc::new(Pipeline::new(
            Normalizer::new(NormalizeConfig::default()),
            store.clone(),
            metrics.clone(),
        ));
        let config = IngestConfig {
            authenticator: Arc::new(IngestTokens::new(tokens.clone())),
            ..IngestConfig::default()
        };
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let grpc = format!("http://{}", grpc_listener.local_addr().unwrap());
        let http = format!("http://{}", http_listener.local_addr().unwrap());
        tokio::spawn(ingest::serve_grpc(
            grpc_listener,
            sink.clone(),
            config.clone(),
            metrics.clone(),
            std::future::pending(),
        ));
        let router = ingest::http_router(sink, config, metrics);
        tokio::spawn(async move { axum::serve(http_listener, router).await.unwrap() });
        Ingest {
            grpc,
            http,
            store,
            tokens,
            file,
        }
    }

    async fn grpc_send(&self, token: Option<&str>, claimed: &str) -> Result<(), tonic::Status> {
        let mut client = TraceServiceClient::connect(self.grpc.clone())
            .await
            .unwrap();
        let mut request = tonic::Request::new(export(claimed));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        client.export(request).await.map(|_| ())
    }

    async fn http_send(&self, authorization: Option<&str>, claimed: &str) -> (u16, String) {
        let mut request = reqwest::Client::new()
            .post(format!("{}/v1/traces", self.http))
            .header("content-type", "application/x-protobuf")
            .body(export(claimed).encode_to_vec());
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Requests stored per cluster (tenant team-a).
    async fn clusters(&self) -> Vec<(String, f64)> {
        let series = self
            .store
            .query(&StoreQuery {
                tenant: Some("team-a".into()),
                kind: SignalKind::RequestLifecycle,
                cluster: None,
                model: None,
                from_unix_secs: 0,
                to_unix_secs: u64::MAX / 2,
            })
            .await
            .unwrap();
        let mut out: Vec<(String, f64)> = series
            .iter()
            .map(|(key, sketch)| {
                let count = sketch
                    .field(&signal_aggregator::signal::FieldKey::plain(
                        signal_aggregator::signal::Field::TtftSeconds,
                    ))
                    .and_then(signal_aggregator::query::readout::count)
                    .unwrap_or(0) as f64;
                (key.cluster.clone(), count)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn rewrite(&self, yaml: &str) {
        std::fs::write(self.file.path(), yaml).unwrap();
    }

    /// Waits until the poller picked up the file (bounded; fails the test otherwise).
    async fn until_reloaded(&self, expected_tokens: usize) {
        for _ in 0..200 {
            if self.tokens.current().len() == expected_tokens {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("token file was not reloaded");
    }
}

#[tokio::test]
async fn data_is_attributed_to_the_tokens_cluster_not_the_claimed_one() {
    let ingest = Ingest::start("us-east-1: east-token\neu-west-1: eu-token\n").await;
    // us-east-1's agent claims to be eu-west-1: it is stored as us-east-1.
    ingest
        .grpc_send(Some("east-token"), "eu-west-1")
        .await
        .unwrap();
    let (status, body) = ingest
        .http_send(Some("Bearer east-token"), "eu-west-1")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ingest.clusters().await, vec![("us-east-1".into(), 2.0)]);
    // eu-west-1's own token writes eu-west-1.
    ingest
        .grpc_send(Some("eu-token"), "eu-west-1")
        .await
        .unwrap();
    assert_eq!(
        ingest.clusters().await,
        vec![("eu-west-1".into(), 1.0), ("us-east-1".into(), 2.0)]
    );
}

#[tokio::test]
async fn missing_and_invalid_tokens_are_refused_clearly_and_store_nothing() {
    let ingest = Ingest::start(&format!("us-east-1: \"{}\"\n", digest_hex("east-token"))).await;
    let missing = ingest.grpc_send(None, "us-east-1").await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::Unauthenticated);
    assert!(
        missing.message().contains("missing authorization")
            && missing.message().contains("signals-agent-token"),
        "{}",
        missing.message()
    );
    let invalid = ingest
        .grpc_send(Some("guessed-token"), "us-east-1")
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), tonic::Code::Unauthenticated);
    assert!(
        invalid.message().contains("not a current ingest token"),
        "{}",
        invalid.message()
    );
    assert!(!invalid.message().contains("guessed-token"));

    let (status, body) = ingest.http_send(None, "us-east-1").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("missing authorization"), "{body}");
    let (status, body) = ingest.http_send(Some("Basic abc"), "us-east-1").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Bearer"), "{body}");
    let (status, body) = ingest
        .http_send(Some("Bearer guessed-token"), "us-east-1")
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("guessed-token"), "{body}");
    assert!(ingest.clusters().await.is_empty());

    // The digest-listed token works.
    ingest
        .grpc_send(Some("east-token"), "us-east-1")
        .await
        .unwrap();
    assert_eq!(ingest.clusters().await, vec![("us-east-1".into(), 1.0)]);
}

#[tokio::test]
async fn rotation_overlaps_then_the_old_token_and_revoked_clusters_stop_working() {
    let ingest = Ingest::start("us-east-1: old-token\neu-west-1: eu-token\n").await;
    ingest.grpc_send(Some("old-token"), "x").await.unwrap();

    // Step 1: add the new token next to the old one; both work.
    ingest.rewrite("us-east-1: [old-token, new-token]\neu-west-1: eu-token\n");
    ingest.until_reloaded(3).await;
    ingest.grpc_send(Some("old-token"), "x").await.unwrap();
    ingest.grpc_send(Some("new-token"), "x").await.unwrap();

    // Step 2: drop the old token; only the new one works.
    ingest.rewrite("us-east-1: [new-token]\neu-west-1: eu-token\n");
    ingest.until_reloaded(2).await;
    let refused = ingest.grpc_send(Some("old-token"), "x").await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    ingest.grpc_send(Some("new-token"), "x").await.unwrap();

    // A broken file keeps the tokens in force.
    ingest.rewrite("us-east-1: [new-token\n");
    tokio::time::sleep(Duration::from_millis(100)).await;
    ingest.grpc_send(Some("new-token"), "x").await.unwrap();

    // Revoking a cluster: its token stops working, others are unaffected.
    ingest.rewrite("us-east-1: [new-token]\n");
    ingest.until_reloaded(1).await;
    let (status, _) = ingest.http_send(Some("Bearer eu-token"), "x").await;
    assert_eq!(status, 401);
    ingest.grpc_send(Some("new-token"), "x").await.unwrap();
    assert_eq!(ingest.clusters().await, vec![("us-east-1".into(), 6.0)]);
}
