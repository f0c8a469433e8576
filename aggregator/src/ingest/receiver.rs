//! The transport-independent half of ingest: admission (in-flight bound),
//! authentication, handing the request to the sink, turning the sink's answer
//! into an OTLP outcome, and counting all of it in `SelfMetrics`.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument as _;

use super::request::OtlpRequest;
use super::{IngestConfig, Refusal, ThrottleCause};
use crate::pipeline::{ExportError, ExportOutcome, ExportSink};
use crate::signal::Origin;
use crate::telemetry::SelfMetrics;

pub(crate) struct Receiver {
    sink: Arc<dyn ExportSink>,
    metrics: Arc<SelfMetrics>,
    config: IngestConfig,
    in_flight: Arc<Semaphore>,
}

/// Held while a request is being decoded and exported.
pub(crate) struct Admitted {
    pub origin: Origin,
    _permit: OwnedSemaphorePermit,
}

impl Receiver {
    pub fn new(sink: Arc<dyn ExportSink>, config: IngestConfig, metrics: Arc<SelfMetrics>) -> Self {
        let in_flight = Arc::new(Semaphore::new(config.max_in_flight_requests.max(1)));
        Receiver {
            sink,
            metrics,
            config,
            in_flight,
        }
    }

    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// Admits a request before its body is read: sheds over the in-flight
    /// bound and refuses bad credentials without spending a decode on them.
    pub fn admit(
        &self,
        signal: &'static str,
        authorization: Option<&[u8]>,
    ) -> Result<Admitted, Refusal> {
        let permit = Arc::clone(&self.in_flight)
            .try_acquire_owned()
            .map_err(|_| {
                self.refused(
                    signal,
                    Refusal::Throttled {
                        retry_after: self.config.retry_after,
                        cause: ThrottleCause::InFlightLimit,
                        description: format!(
                            "aggregator is at its limit of {} requests in flight",
                            self.config.max_in_flight_requests
                        ),
                    },
                )
            })?;
        let origin = self
            .config
            .authenticator
            .authenticate(authorization)
            .map_err(|description| {
                self.refused(signal, Refusal::Unauthenticated { description })
            })?;
        Ok(Admitted {
            origin,
            _permit: permit,
        })
    }

    /// Hands a decoded request to the sink. `Ok` is what the OTLP success
    /// response reports (possibly a partial success); `Err` is a retryable
    /// refusal. The sink accounts in `SelfMetrics` for every item it was
    /// handed (accepted, rejected, dropped, refused); counting here too would
    /// count them twice.
    ///
    /// Runs inside an `ingest` span (exported when `OTEL_EXPORTER_OTLP_*`
    /// asks for it): the signal, the item count, the request's protobuf size,
    /// the authenticated cluster and the outcome; never the request's content.
    pub async fn export<R: OtlpRequest>(
        &self,
        origin: &Origin,
        request: R,
    ) -> Result<ExportOutcome, Refusal> {
        let span = tracing::info_span!(
            "ingest",
            otel.kind = "server",
            signal = R::SIGNAL,
            items = tracing::field::Empty,
            bytes = tracing::field::Empty,
            cluster = tracing::field::Empty,
            rejected = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        if !span.is_disabled() {
            span.record("items", request.item_count() as i64);
            span.record("bytes", request.encoded_len() as i64);
            if let Some(cluster) = &origin.authenticated_cluster {
                span.record("cluster", cluster.as_str());
            }
        }
        let result = request
            .send(self.sink.as_ref(), origin)
            .instrument(span.clone())
            .await
            .map_err(throttled);
        match &result {
            Ok(outcome) => {
                span.record("rejected", outcome.rejected);
                let partial = outcome.rejected != 0 || !outcome.message.is_empty();
                span.record("outcome", if partial { "partial" } else { "accepted" });
            }
            Err(refusal) => {
                span.record("outcome", refusal.reason());
            }
        }
        result
    }

    /// Counts a refusal ingest decided itself, before the sink saw the
    /// request (so its item count is unknown): these count one per request.
    pub fn refused(&self, signal: &'static str, refusal: Refusal) -> Refusal {
        self.metrics.rejected(signal, refusal.reason(), 1);
        refusal
    }
}

/// The sink's retryable errors; `Refusal` adds the "retry in" hint itself.
fn throttled(error: ExportError) -> Refusal {
    match error {
        ExportError::Overloaded { retry_after } => Refusal::Throttled {
            retry_after,
            cause: ThrottleCause::SinkOverloaded,
            description: "aggregator is overloaded".into(),
        },
        ExportError::Unavailable {
            retry_after,
            reason,
        } => Refusal::Throttled {
            retry_after,
            cause: ThrottleCause::StoreUnavailable,
            description: format!("sketch store unavailable ({reason})"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_errors_become_retryable_refusals() {
        let overloaded = throttled(ExportError::Overloaded {
            retry_after: std::time::Duration::from_secs(3),
        });
        assert_eq!(overloaded.reason(), "sink_overloaded");
        assert_eq!(
            overloaded.http_status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        let unavailable = throttled(ExportError::Unavailable {
            retry_after: std::time::Duration::from_secs(5),
            reason: "redis down".into(),
        });
        assert_eq!(unavailable.reason(), "store_unavailable");
        assert_eq!(
            unavailable.message(),
            "sketch store unavailable (redis down); retry in 5s"
        );
    }
}
