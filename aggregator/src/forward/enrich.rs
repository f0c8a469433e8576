//! Attributes added to spans on their way to the tenant's backend, off the
//! ingest path (in the forwarder's worker).

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

#[async_trait]
pub trait Enricher: Send + Sync {
    /// Adds attributes to `request`'s spans, all of `tenant`.
    async fn enrich(&self, tenant: &str, request: &mut ExportTraceServiceRequest);
}

/// Adds nothing.
pub struct NoEnrichment;

#[async_trait]
impl Enricher for NoEnrichment {
    async fn enrich(&self, _tenant: &str, _request: &mut ExportTraceServiceRequest) {}
}
