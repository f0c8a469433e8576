//! Drives one export request through normalize → sketch → store, and decides
//! what the sender is told (accepted, partially rejected, or retry later).

use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::normalize::Normalizer;
use crate::signal::Origin;
use crate::store::SketchStore;
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
    Unavailable { retry_after: Duration, reason: String },
}

pub struct Pipeline {
    pub normalizer: Normalizer,
    pub store: Arc<dyn SketchStore>,
    pub metrics: Arc<SelfMetrics>,
}

impl Pipeline {
    pub async fn export_metrics(
        &self,
        origin: &Origin,
        request: ExportMetricsServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let _ = (origin, request);
        todo!("owned by the store/serve work")
    }

    pub async fn export_traces(
        &self,
        origin: &Origin,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportOutcome, ExportError> {
        let _ = (origin, request);
        todo!("owned by the store/serve work")
    }
}
