//! OTLP/gRPC ingest over real sockets with the generated tonic clients.

use std::sync::Arc;
use std::time::Duration;

use crate::support::ingest::{Behaviour, OneToken, RecordingSink, Running, start_grpc};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use otlp_test_kit::rich::{rich_metrics, rich_traces};
use otlp_test_kit::{metrics_request, string_kv};
use signal_aggregator::ingest::IngestConfig;
use signal_aggregator::signal::Origin;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::Channel;
use tonic_types::StatusExt;

async fn metrics_client(running: &Running) -> MetricsServiceClient<Channel> {
    MetricsServiceClient::connect(running.grpc_url())
        .await
        .unwrap()
}

async fn traces_client(running: &Running) -> TraceServiceClient<Channel> {
    TraceServiceClient::connect(running.grpc_url())
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_and_traces_arrive_intact_plain_gzip_and_zstd() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_grpc(Arc::clone(&sink), IngestConfig::default()).await;
    for compression in [
        None,
        Some(CompressionEncoding::Gzip),
        Some(CompressionEncoding::Zstd),
    ] {
        let mut metrics = metrics_client(&running).await;
        let mut traces = traces_client(&running).await;
        if let Some(encoding) = compression {
            metrics = metrics.send_compressed(encoding);
            traces = traces.send_compressed(encoding);
        }
        let response = metrics.export(rich_metrics()).await.unwrap().into_inner();
        assert_eq!(response.partial_success, None, "{compression:?}");
        let response = traces.export(rich_traces()).await.unwrap().into_inner();
        assert_eq!(response.partial_success, None, "{compression:?}");
    }
    let recorded = sink.metrics.lock();
    assert_eq!(recorded.len(), 3);
    for (origin, request) in recorded.iter() {
        assert_eq!(request, &rich_metrics());
        assert_eq!(origin, &Origin::default());
    }
    assert!(sink.traces.lock().iter().all(|(_, r)| r == &rich_traces()));
    assert_eq!(sink.traces.lock().len(), 3);
    // Accepted items are the sink's to count (the pipeline knows what it kept).
    assert!(running.metrics.ingested_snapshot().is_empty());
}

#[tokio::test]
async fn partial_success_passes_through() {
    let sink = RecordingSink::new(Behaviour::PartiallyReject {
        rejected: 2,
        message: "2 data points had non-finite values".into(),
    });
    let running = start_grpc(Arc::clone(&sink), IngestConfig::default()).await;
    let response = metrics_client(&running)
        .await
        .export(rich_metrics())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        response.partial_success,
        Some(ExportMetricsPartialSuccess {
            rejected_data_points: 2,
            error_message: "2 data points had non-finite values".into(),
        })
    );
    // The sink counted its rejections; ingest must not count them again.
    assert!(running.metrics.rejected_snapshot().is_empty());
}

#[tokio::test]
async fn sink_overload_and_store_outage_are_unavailable_with_retry_info() {
    let sink = RecordingSink::new(Behaviour::Overloaded(Duration::from_secs(3)));
    let running = start_grpc(Arc::clone(&sink), IngestConfig::default()).await;
    let status = metrics_client(&running)
        .await
        .export(rich_metrics())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = status.check_error_details().unwrap();
    assert_eq!(
        details.retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(3))
    );

    sink.set(Behaviour::Unavailable(
        Duration::from_secs(5),
        "redis down".into(),
    ));
    let status = traces_client(&running)
        .await
        .export(rich_traces())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().contains("redis down"),
        "{}",
        status.message()
    );
    let details = status.check_error_details().unwrap();
    assert_eq!(
        details.retry_info().unwrap().retry_delay,
        Some(Duration::from_secs(5))
    );
    // Refused means not kept: nothing was recorded as accepted.
    assert!(sink.metrics.lock().is_empty() && sink.traces.lock().is_empty());
    assert!(running.metrics.rejected_snapshot().is_empty());
}

#[tokio::test]
async fn in_flight_bound_sheds_before_decoding() {
    let sink = RecordingSink::new(Behaviour::Hold);
    let config = IngestConfig {
        max_in_flight_requests: 2,
        retry_after: Duration::from_secs(2),
        ..IngestConfig::default()
    };
    let running = start_grpc(Arc::clone(&sink), config).await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut client = traces_client(&running).await;
        held.push(tokio::spawn(
            async move { client.export(rich_traces()).await },
        ));
    }
    sink.wait_entered(2).await;
    let status = traces_client(&running)
        .await
        .export(rich_traces())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status
            .check_error_details()
            .unwrap()
            .retry_info()
            .unwrap()
            .retry_delay,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        sink.entered(),
        2,
        "the shed request must not reach the sink"
    );
    assert_eq!(running.rejected("traces", "in_flight_limit"), 1);
    sink.release(2);
    for call in held {
        assert!(call.await.unwrap().is_ok());
    }
    // Capacity is back once the held calls finished.
    sink.release(1);
    traces_client(&running)
        .await
        .export(rich_traces())
        .await
        .unwrap();
}

#[tokio::test]
async fn logs_are_refused_as_unimplemented() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_grpc(Arc::clone(&sink), IngestConfig::default()).await;
    let status = LogsServiceClient::connect(running.grpc_url())
        .await
        .unwrap()
        .export(ExportLogsServiceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(
        status.message().contains("carries no logs"),
        "{}",
        status.message()
    );
    assert_eq!(running.rejected("logs", "logs_not_accepted"), 1);
    assert_eq!(sink.entered(), 0);
}

fn metrics_with_attribute_of(bytes: usize) -> ExportMetricsServiceRequest {
    metrics_request(vec![string_kv("padding", "a".repeat(bytes))], vec![])
}

#[tokio::test]
async fn oversized_and_bomb_messages_are_permanent_resource_exhausted() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        max_request_bytes: 64 * 1024,
        ..IngestConfig::default()
    };
    let running = start_grpc(Arc::clone(&sink), config).await;
    // Uncompressed, over the limit: tonic says OUT_OF_RANGE (which OTLP
    // clients retry); ingest must answer a non-retryable code instead.
    let status = metrics_client(&running)
        .await
        .export(metrics_with_attribute_of(100 * 1024))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("65536 bytes"),
        "{}",
        status.message()
    );
    assert!(status.check_error_details().unwrap().retry_info().is_none());
    // Small on the wire, huge once inflated.
    let bomb = metrics_with_attribute_of(8 << 20);
    let status = metrics_client(&running)
        .await
        .send_compressed(CompressionEncoding::Gzip)
        .export(bomb)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.check_error_details().unwrap().retry_info().is_none());
    assert_eq!(running.rejected("metrics", "too_large"), 2);
    assert_eq!(sink.entered(), 0);
    // Under the limit still works on the same server.
    metrics_client(&running)
        .await
        .export(metrics_with_attribute_of(1024))
        .await
        .unwrap();
}

/// Sends raw bytes as the request message, to exercise undecodable input.
mod raw {
    use bytes::{Buf, BufMut};
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Default)]
    pub struct RawCodec;
    pub struct RawEncoder;
    pub struct RawDecoder;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawEncoder;
        type Decoder = RawDecoder;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> RawDecoder {
            RawDecoder
        }
    }

    impl Encoder for RawEncoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            dst.put_slice(&item);
            Ok(())
        }
    }

    impl Decoder for RawDecoder {
        type Item = Vec<u8>;
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
            let bytes = src.copy_to_bytes(src.remaining());
            Ok(Some(bytes.to_vec()))
        }
    }
}

#[tokio::test]
async fn undecodable_protobuf_is_invalid_argument() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let running = start_grpc(Arc::clone(&sink), IngestConfig::default()).await;
    let channel = Channel::from_shared(running.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    );
    let status = grpc
        .unary(
            tonic::Request::new(vec![0x0a, 0xff, 0xff, 0xff]),
            path,
            raw::RawCodec,
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("could not be decoded"),
        "{}",
        status.message()
    );
    assert_eq!(running.rejected("traces", "invalid_data"), 1);
    assert_eq!(sink.entered(), 0);
}

#[tokio::test]
async fn authenticator_decides_the_origin() {
    let sink = RecordingSink::new(Behaviour::Accept);
    let config = IngestConfig {
        authenticator: Arc::new(OneToken),
        ..IngestConfig::default()
    };
    let running = start_grpc(Arc::clone(&sink), config).await;
    let status = metrics_client(&running)
        .await
        .export(rich_metrics())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("missing authorization"));
    let mut request = tonic::Request::new(rich_metrics());
    request
        .metadata_mut()
        .insert("authorization", "Bearer good".parse().unwrap());
    metrics_client(&running)
        .await
        .export(request)
        .await
        .unwrap();
    let recorded = sink.metrics.lock();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].0.authenticated_cluster.as_deref(), Some("c1"));
    assert_eq!(running.rejected("metrics", "unauthenticated"), 1);
}
