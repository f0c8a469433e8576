//! OTLP/gRPC: `MetricsService` and `TraceService` (gzip and zstd accepted),
//! `LogsService` registered only to refuse with a clear `UNIMPLEMENTED`.
//!
//! A gate in front of the generated services admits each call before tonic
//! reads its body (in-flight bound, authentication, logs refusal) and maps
//! tonic's own decode failures onto OTLP's retry semantics: tonic answers an
//! oversized message with `OUT_OF_RANGE`, which OTLP clients *retry*, and a
//! malformed one with `INTERNAL`; the gate turns those into
//! `RESOURCE_EXHAUSTED` (no `RetryInfo`: permanent) and `INVALID_ARGUMENT`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::codec::CompressionEncoding;
use tonic::{Code, Status};
use tower::{Layer, Service};

use super::Refusal;
use super::receiver::Receiver;
use super::request::OtlpRequest;
use crate::signal::Origin;

const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/";
const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/";
const LOGS_PATH: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/";

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    receiver: Arc<Receiver>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let limit = receiver.config().max_request_bytes;
    let otlp = Arc::new(OtlpGrpc {
        receiver: Arc::clone(&receiver),
    });
    let metrics = MetricsServiceServer::from_arc(Arc::clone(&otlp))
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(limit);
    let traces = TraceServiceServer::from_arc(Arc::clone(&otlp))
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd)
        .max_decoding_message_size(limit);
    let logs = LogsServiceServer::from_arc(otlp);
    let incoming = TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            // Small unary responses: do not let Nagle hold them back.
            let _ = stream.set_nodelay(true);
        }
        stream
    });
    tonic::transport::Server::builder()
        .layer(GateLayer { receiver })
        .add_service(metrics)
        .add_service(traces)
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

struct OtlpGrpc {
    receiver: Arc<Receiver>,
}

impl OtlpGrpc {
    async fn handle<R: OtlpRequest>(
        &self,
        request: tonic::Request<R>,
    ) -> Result<tonic::Response<R::Response>, Status> {
        // The gate put the authenticated origin here; without it the call
        // did not pass authentication and must not be attributed to anyone.
        let origin = request
            .extensions()
            .get::<Origin>()
            .cloned()
            .ok_or_else(|| {
                Refusal::Unauthenticated {
                    description: "request did not pass ingest authentication".into(),
                }
                .grpc_status()
            })?;
        self.receiver
            .export(&origin, request.into_inner())
            .await
            .map(|outcome| tonic::Response::new(R::response(&outcome)))
            .map_err(|refusal| refusal.grpc_status())
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.handle(request).await
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    /// The gate refuses logs before their body is read; this answers the same
    /// should a call ever reach the service.
    async fn export(
        &self,
        _request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        Err(self
            .receiver
            .refused("logs", Refusal::LogsNotAccepted)
            .grpc_status())
    }
}

#[derive(Clone)]
struct GateLayer {
    receiver: Arc<Receiver>,
}

impl<S> Layer<S> for GateLayer {
    type Service = Gate<S>;

    fn layer(&self, inner: S) -> Gate<S> {
        Gate {
            inner,
            receiver: Arc::clone(&self.receiver),
        }
    }
}

#[derive(Clone)]
struct Gate<S> {
    inner: S,
    receiver: Arc<Receiver>,
}

type GrpcResponse = http::Response<tonic::body::Body>;

impl<S, B> Service<http::Request<B>> for Gate<S>
where
    S: Service<http::Request<B>, Response = GrpcResponse, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = GrpcResponse;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<GrpcResponse, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path();
        let signal = if path.starts_with(METRICS_PATH) {
            ExportMetricsServiceRequest::SIGNAL
        } else if path.starts_with(TRACES_PATH) {
            ExportTraceServiceRequest::SIGNAL
        } else if path.starts_with(LOGS_PATH) {
            let refusal = self.receiver.refused("logs", Refusal::LogsNotAccepted);
            return Box::pin(std::future::ready(Ok(refusal.grpc_status().into_http())));
        } else {
            // Not an OTLP export: tonic answers UNIMPLEMENTED itself.
            return Box::pin(self.inner.call(request));
        };
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.as_bytes());
        let admitted = match self.receiver.admit(signal, authorization) {
            Ok(admitted) => admitted,
            Err(refusal) => {
                return Box::pin(std::future::ready(Ok(refusal.grpc_status().into_http())));
            }
        };
        request.extensions_mut().insert(admitted.origin.clone());
        // Call the instance poll_ready readied; leave a fresh clone behind.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let receiver = Arc::clone(&self.receiver);
        Box::pin(async move {
            let response = inner.call(request).await?;
            drop(admitted);
            Ok(map_decode_failure(&receiver, signal, response))
        })
    }
}

/// Replaces tonic's decode-stage statuses with the OTLP-appropriate ones.
/// Handlers never answer `OUT_OF_RANGE`, `RESOURCE_EXHAUSTED` or `INTERNAL`,
/// so those codes can only come from tonic reading the request.
fn map_decode_failure(
    receiver: &Receiver,
    signal: &'static str,
    response: GrpcResponse,
) -> GrpcResponse {
    let Some(status) = response.extensions().get::<Status>() else {
        return response;
    };
    let refusal = match status.code() {
        Code::OutOfRange | Code::ResourceExhausted => Refusal::TooLarge {
            limit: receiver.config().max_request_bytes,
        },
        Code::Internal => Refusal::InvalidData {
            field: String::new(),
            description: format!("request could not be decoded: {}", status.message()),
        },
        _ => return response,
    };
    receiver.refused(signal, refusal).grpc_status().into_http()
}
