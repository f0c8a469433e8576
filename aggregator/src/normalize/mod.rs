//! OTLP → typed signals: identity, allowlist, source mappings, cumulative → delta.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::signal::{Origin, SignalBatch};

#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// Series (tenant × cluster × model × kind) a tenant may have before new
    /// ones are dropped and counted.
    pub max_series_per_tenant: usize,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            max_series_per_tenant: 10_000,
        }
    }
}

/// The typed signals extracted from one request, and what was not kept.
#[derive(Debug, Clone, Default)]
pub struct Normalized {
    pub batch: SignalBatch,
    /// Spans or datapoints that became at least one point (or were valid but
    /// carry no signal we keep).
    pub accepted: u64,
    /// Spans or datapoints refused as malformed; reported back as partial success.
    pub rejected: u64,
    /// Why the first refused items were refused (for the partial-success message).
    pub rejected_message: String,
    /// Valid items not kept, by reason (`cardinality_limit`, `unknown_tenant`, ...).
    pub dropped: Vec<(&'static str, u64)>,
}

pub struct Normalizer {
    config: NormalizeConfig,
}

impl Normalizer {
    pub fn new(config: NormalizeConfig) -> Self {
        Normalizer { config }
    }

    pub fn metrics(&self, origin: &Origin, request: &ExportMetricsServiceRequest) -> Normalized {
        let _ = (&self.config, origin, request);
        todo!("owned by the normalize work")
    }

    pub fn traces(&self, origin: &Origin, request: &ExportTraceServiceRequest) -> Normalized {
        let _ = (&self.config, origin, request);
        todo!("owned by the normalize work")
    }
}
