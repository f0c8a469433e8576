//! One worker per forwarder: takes the oldest queued spans, stamps the
//! cache-family attributes, sends them over OTLP/gRPC and acknowledges them.
//! Failures the OTLP spec calls retryable (UNAVAILABLE, DEADLINE_EXCEEDED,
//! ABORTED, CANCELLED, OUT_OF_RANGE, DATA_LOSS, and RESOURCE_EXHAUSTED when
//! the receiver sends RetryInfo) are retried after the receiver's RetryInfo
//! delay when it gives one, else after an exponential backoff (1 s doubling
//! up to the configured maximum); the spans stay queued meanwhile, where
//! newer arrivals may push them out (drop-oldest). Any other refusal drops
//! the batch. Nothing of a span (names, attributes, prompts) is ever logged:
//! only the tenant, the service, the address and the gRPC code.

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tonic::codec::CompressionEncoding;
use tonic::transport::{Channel, Endpoint};
use tonic_types::StatusExt;

use super::{Enricher, Target};

/// Spans sent in one request at most (about; whole queued requests are sent).
pub const MAX_BATCH_SPANS: usize = 2048;
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The longest RetryInfo delay honoured; longer ones are capped.
const MAX_RETRY_INFO: Duration = Duration::from_secs(300);

/// What one send attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Accepted { rejected_spans: i64 },
    Retry { after: Option<Duration>, code: Code },
    Refused { code: Code },
}

pub fn classify(status: &tonic::Status) -> Sent {
    let retry_info = status
        .get_details_retry_info()
        .and_then(|info| info.retry_delay)
        .map(|delay| delay.min(MAX_RETRY_INFO));
    match status.code() {
        Code::Unavailable
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Cancelled
        | Code::OutOfRange
        | Code::DataLoss => Sent::Retry {
            after: retry_info,
            code: status.code(),
        },
        Code::ResourceExhausted if retry_info.is_some() => Sent::Retry {
            after: retry_info,
            code: status.code(),
        },
        code => Sent::Refused { code },
    }
}

pub fn channel(address: &str, timeout: Duration) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(format!("http://{address}"))?
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_lazy())
}

pub async fn send(
    client: &mut TraceServiceClient<Channel>,
    request: ExportTraceServiceRequest,
) -> Sent {
    match client.export(request).await {
        Ok(response) => Sent::Accepted {
            rejected_spans: response
                .into_inner()
                .partial_success
                .map_or(0, |p| p.rejected_spans),
        },
        Err(status) => classify(&status),
    }
}

/// Runs until `stop`: sends whatever the target's queue holds.
pub async fn run(target: Arc<Target>, enricher: Arc<dyn Enricher>, stop: CancellationToken) {
    let channel = match channel(&target.dial, target.config.timeout) {
        Ok(channel) => channel,
        Err(error) => {
            tracing::warn!(tenant = %target.tenant, service = %target.service, address = %target.address, %error,
                "trace forwarder address is not usable; its spans are dropped");
            return;
        }
    };
    let mut client = TraceServiceClient::new(channel)
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
    if let Some(encoding) = target.config.compression.encoding() {
        client = client.send_compressed(encoding);
    }
    let mut backoff = INITIAL_BACKOFF;
    loop {
        let Some(taken) = target.queue.take(MAX_BATCH_SPANS) else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = target.wake.notified() => continue,
            }
        };
        let mut request = ExportTraceServiceRequest {
            resource_spans: taken
                .requests
                .iter()
                .flat_map(|r| r.resource_spans.iter().cloned())
                .collect(),
        };
        enricher.enrich(&target.tenant, &mut request).await;
        let wait = match send(&mut client, request).await {
            Sent::Accepted { rejected_spans } => {
                let sent = target.queue.ack(taken.up_to);
                target
                    .stats
                    .accepted(sent as u64, rejected_spans.max(0) as u64);
                if rejected_spans > 0 {
                    target
                        .metrics
                        .dropped("traces", "forward_rejected", rejected_spans as u64);
                }
                backoff = INITIAL_BACKOFF;
                continue;
            }
            Sent::Refused { code } => {
                let dropped = target.queue.ack(taken.up_to);
                target.stats.refused(dropped as u64, code);
                target
                    .metrics
                    .dropped("traces", "forward_refused", dropped as u64);
                tracing::warn!(tenant = %target.tenant, service = %target.service, address = %target.address,
                    code = ?code, spans = dropped, "trace forwarder refused spans; dropped");
                continue;
            }
            Sent::Retry { after, code } => {
                target.stats.retrying(code);
                tracing::debug!(tenant = %target.tenant, service = %target.service, address = %target.address,
                    code = ?code, "trace forwarder unavailable; retrying");
                match after {
                    Some(after) => after,
                    None => {
                        let wait = backoff;
                        backoff = (backoff * 2).min(target.config.max_backoff);
                        wait
                    }
                }
            }
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
