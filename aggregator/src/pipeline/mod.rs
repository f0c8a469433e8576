//! Drives one export request through normalize → sketch → store, and decides
//! what the sender is told (accepted, partially rejected, or retry later).
//!
//! [`activity`] taps what passes (per cluster: last flush, newest datapoint,
//! dropped items) for the status writer; [`shared_activity`] merges that tap
//! across replicas through Redis.

pub mod activity;
pub mod shared_activity;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tracing::Instrument as _;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::normalize::{ClusterLosses, Normalized, Normalizer};
use crate::signal::Origin;
use crate::sketch;
use crate::store::{SketchStore, StoreError};
use crate::telemetry::SelfMetrics;

/// What an export request turned into, for the OTLP partial-success response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportOutcome {
    /// Items (spans or datapoints) refused as invalid; 0 when all were kept.
    pub rejected: i64,
    /// Why items were refused; empty when `rejected` is 0.
    pub message: String,
}

/// A request the aggregator could not take now; senders retry these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    #[error("aggregator is overloaded; retry in {}s", retry_after.as_secs())]
    Overloaded { retry_after: Duration },
    #[error("sketch store unavailable ({reason}); retry in {}s", retry_after.as_secs())]
    Unavailable {
        retry_after: Duration,
        reason: String,
    },
}

/// What the OTLP receivers hand decoded requests to. [`Pipeline`] is the real
/// one; ingest tests use a recording one to check transport behaviour alone.
#[async_trait]
pub trait ExportSink: Send + Sync {
    async fn export_metrics(
        &self,
        origin: &Origin,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, ExportError>;

    async fn export_traces(
        &self,
        origin: &Origin,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, ExportError>;
}

/// Told, for every acknowledged request, which clusters' items normalize
/// rejected or dropped losing data (the cluster status's `droppedEvents`).
/// Not told about requests refused for a retry: the retry is counted.
pub trait LossObserver: Send + Sync {
    fn lost_in_normalize(&self, losses: &ClusterLosses);
}

/// How long senders are asked to wait when the store refuses writes.
pub const STORE_RETRY_AFTER: Duration = Duration::from_secs(5);

/// The real [`ExportSink`]: normalize → sketch → store, acknowledging only
/// after the store's merge returned.
pub struct Pipeline {
    pub normalizer: Normalizer,
    pub store: Arc<dyn SketchStore>,
    pub metrics: Arc<SelfMetrics>,
    loss_observer: Option<Arc<dyn LossObserver>>,
}

impl Pipeline {
    pub fn new(
        normalizer: Normalizer,
        store: Arc<dyn SketchStore>,
        metrics: Arc<SelfMetrics>,
    ) -> Self {
        Pipeline {
            normalizer,
            store,
            metrics,
            loss_observer: None,
        }
    }

    /// Also reports per-cluster losses to `observer`.
    pub fn with_loss_observer(mut self, observer: Arc<dyn LossObserver>) -> Self {
        self.loss_observer = Some(observer);
        self
    }

    /// Sketches and stores what normalize kept, then accounts for every item.
    /// Normalize runs inline on the runtime worker: a request is a few
    /// milliseconds of CPU and a blocking-pool hop costs more than it saves.
    async fn store_normalized(
        &self,
        signal: &'static str,
        started: Instant,
        normalized: Normalized,
    ) -> Result<ExportOutcome, ExportError> {
        let sketches = sketch::sketch_batch(&normalized.batch);
        let span = tracing::Span::current();
        span.record("accepted", normalized.accepted as i64);
        span.record("rejected", normalized.rejected as i64);
        span.record(
            "dropped",
            normalized.dropped.iter().map(|(_, n)| *n).sum::<u64>() as i64,
        );
        span.record("sketches", sketches.len() as i64);
        let mut outcome = ExportOutcome {
            rejected: normalized.rejected as i64,
            message: normalized.rejected_message.clone(),
        };
        if !sketches.is_empty() {
            match self.store.merge(sketches).await {
                Ok(()) => {}
                Err(StoreError::Unavailable(reason)) => {
                    let refused = normalized.accepted + normalized.rejected;
                    self.metrics.rejected(signal, "store_unavailable", refused);
                    return Err(ExportError::Unavailable {
                        retry_after: STORE_RETRY_AFTER,
                        reason,
                    });
                }
                Err(error @ StoreError::Corrupt(_)) => {
                    // Part of the request may already be merged, so a retry would
                    // count it twice: acknowledge, and say what was not kept.
                    tracing::error!(signal, %error, "sketches could not be merged into the store");
                    self.metrics.dropped(signal, "merge_conflict", 1);
                    if !outcome.message.is_empty() {
                        outcome.message.push_str("; ");
                    }
                    outcome
                        .message
                        .push_str(&format!("some data was not kept: {error}"));
                }
            }
        }
        self.metrics.ingested(signal, normalized.accepted);
        self.metrics
            .rejected(signal, "invalid", normalized.rejected);
        for (reason, n) in &normalized.dropped {
            self.metrics.dropped(signal, reason, *n);
        }
        self.metrics.unmapped(&normalized.unmapped);
        if let Some(observer) = &self.loss_observer
            && !normalized.lost_by_cluster.is_empty()
        {
            observer.lost_in_normalize(&normalized.lost_by_cluster);
        }
        self.metrics.record_flush(started.elapsed().as_secs_f64());
        Ok(outcome)
    }
}

/// The span of one request's normalize → sketch → store merge (a child of
/// ingest's): counts only.
fn flush_span(signal: &'static str) -> tracing::Span {
    tracing::info_span!(
        "flush",
        signal,
        accepted = tracing::field::Empty,
        rejected = tracing::field::Empty,
        dropped = tracing::field::Empty,
        sketches = tracing::field::Empty,
    )
}

#[async_trait]
impl ExportSink for Pipeline {
    async fn export_metrics(
        &self,
        origin: &Origin,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let started = Instant::now();
        let span = flush_span("metrics");
        let normalized = span.in_scope(|| self.normalizer.metrics(origin, &request));
        drop(request);
        self.store_normalized("metrics", started, normalized)
            .instrument(span)
            .await
    }

    async fn export_traces(
        &self,
        origin: &Origin,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let started = Instant::now();
        let span = flush_span("traces");
        let normalized = span.in_scope(|| self.normalizer.traces(origin, &request));
        drop(request);
        self.store_normalized("traces", started, normalized)
            .instrument(span)
            .await
    }
}
