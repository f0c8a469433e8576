//! OTLP receivers: gRPC ([`serve_grpc`]) and HTTP ([`http_router`], protobuf
//! and JSON). Both decode export requests and hand them to an
//! [`ExportSink`]; what the sender is told follows the OTLP spec
//! (`reference/aggregator.md` §3.3):
//!
//! | outcome                         | gRPC                               | HTTP                  |
//! |---------------------------------|------------------------------------|-----------------------|
//! | accepted / partially rejected   | OK + `partial_success`             | 200 + `partial_success` |
//! | undecodable or invalid payload  | `INVALID_ARGUMENT` + `BadRequest`  | 400 + `google.rpc.Status` |
//! | over `max_request_bytes`        | `RESOURCE_EXHAUSTED` (no `RetryInfo`) | 413                |
//! | unknown content type / coding   | (tonic: `UNIMPLEMENTED`)           | 415                   |
//! | bad credentials                 | `UNAUTHENTICATED`                  | 401                   |
//! | shed, sink overloaded, store down | `UNAVAILABLE` + `RetryInfo`      | 503 + `Retry-After`   |
//! | logs                            | `UNIMPLEMENTED`                    | 501                   |
//!
//! Only the shedding row is retryable; nothing accepted is dropped here.
//!
//! Accounting: the sink counts every item it was handed in `SelfMetrics`
//! (ingested, rejected, dropped, refused as unavailable). Ingest counts only
//! what it refuses before handing over, one per request, under `rejected`
//! with reasons `in_flight_limit`, `body_read_timeout`, `too_large`, `invalid_data`,
//! `unsupported_media_type`, `unauthenticated` and `logs_not_accepted`.

mod body;
mod grpc;
mod http;
pub mod otlp_json;
mod receiver;
mod refusal;
mod request;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use body::{ContentCoding, PayloadFormat, decode_request, decompress};
pub use refusal::{Refusal, ThrottleCause};
pub use request::OtlpRequest;

use crate::pipeline::ExportSink;
use crate::signal::Origin;
use crate::telemetry::SelfMetrics;
use receiver::Receiver;

/// Ingest flags.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestArgs {
    /// Where to accept OTLP/gRPC (metrics and traces).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_OTLP_GRPC_ADDR",
        default_value = "0.0.0.0:4317"
    )]
    pub otlp_grpc_addr: SocketAddr,

    /// Where to accept OTLP/HTTP (`POST /v1/metrics`, `/v1/traces`; protobuf or JSON).
    #[arg(
        long,
        env = "SIGNAL_AGGREGATOR_OTLP_HTTP_ADDR",
        default_value = "0.0.0.0:4318"
    )]
    pub otlp_http_addr: SocketAddr,

    /// Largest OTLP request accepted, in bytes, after decompression (larger: 413).
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_REQUEST_BYTES",
          default_value_t = IngestConfig::default().max_request_bytes)]
    pub max_request_bytes: usize,

    /// OTLP requests processed at once per listener; beyond this senders are told to retry later.
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_IN_FLIGHT_REQUESTS",
          default_value_t = IngestConfig::default().max_in_flight_requests)]
    pub max_in_flight_requests: usize,
}

impl IngestArgs {
    /// Ingest as these flags ask, accepting anyone until an authenticator is set.
    pub fn config(&self) -> IngestConfig {
        IngestConfig {
            max_request_bytes: self.max_request_bytes,
            max_in_flight_requests: self.max_in_flight_requests,
            ..IngestConfig::default()
        }
    }
}

#[derive(Clone)]
pub struct IngestConfig {
    /// Largest request accepted, measured after decompression (gRPC message
    /// or HTTP body). Collectors batch up to ~8k items per request.
    pub max_request_bytes: usize,
    /// Requests decoded or exported at once per listener; more are shed with
    /// a retryable refusal before their body is read. Together with
    /// `max_request_bytes` this bounds the memory ingest can hold.
    pub max_in_flight_requests: usize,
    /// Delay advertised to senders when shedding (`RetryInfo`, `Retry-After`).
    pub retry_after: Duration,
    /// OTLP/HTTP: how long a request body may take to arrive. A sender that
    /// trickles its body would otherwise hold an in-flight slot indefinitely.
    pub body_read_timeout: Duration,
    /// Who may send. The default accepts everyone as `Origin::default()`.
    pub authenticator: Arc<dyn Authenticator>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_request_bytes: 16 * 1024 * 1024,
            max_in_flight_requests: 128,
            retry_after: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(30),
            authenticator: Arc::new(AllowAnonymous),
        }
    }
}

impl fmt::Debug for IngestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IngestConfig")
            .field("max_request_bytes", &self.max_request_bytes)
            .field("max_in_flight_requests", &self.max_in_flight_requests)
            .field("retry_after", &self.retry_after)
            .field("body_read_timeout", &self.body_read_timeout)
            .finish_non_exhaustive()
    }
}

/// Decides who sent an export, from its `authorization` header (HTTP) or
/// metadata (gRPC), before the body is read. Per-cluster ingest tokens plug in
/// here: return `Origin { authenticated_cluster: Some(cluster) }`, or `Err`
/// with an actionable message (sent back as `UNAUTHENTICATED` / 401; never
/// include the presented credential in it).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Origin, String>;
}

/// Ingest without authentication (first runs, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAnonymous;

impl Authenticator for AllowAnonymous {
    fn authenticate(&self, _authorization: Option<&[u8]>) -> Result<Origin, String> {
        Ok(Origin::default())
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes, then drains
/// the calls in progress.
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    sink: Arc<dyn ExportSink>,
    config: IngestConfig,
    metrics: Arc<SelfMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let receiver = Arc::new(Receiver::new(sink, config, metrics));
    grpc::serve(listener, receiver, shutdown).await
}

/// The OTLP/HTTP routes (`/v1/metrics`, `/v1/traces`, refusing `/v1/logs`).
pub fn http_router(
    sink: Arc<dyn ExportSink>,
    config: IngestConfig,
    metrics: Arc<SelfMetrics>,
) -> axum::Router {
    http::router(Arc::new(Receiver::new(sink, config, metrics)))
}
