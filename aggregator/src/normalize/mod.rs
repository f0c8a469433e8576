//! OTLP → typed signals: identity, allowlist, source mappings, cumulative → delta.
//!
//! `docs/signals.md` documents the mapping table and the `modelplane.*`
//! schema. Decisions that shape what callers see:
//! - A resource without a valid tenant or cluster has all its items
//!   *rejected* (reported back as OTLP partial success, with a message that
//!   names the attribute to set). The sender's configuration is wrong and
//!   only the sender can fix it; dropping silently would hide that.
//! - Only allowlisted attribute keys are read. Identities and dimension values
//!   are bounded (length, charset or fixed enums); out-of-bounds identities
//!   are rejected, never stored. Messages never echo attribute values.
//! - Cumulative series become deltas (see [`cumulative`]); the first sighting
//!   of an old series only primes state.
//! - Items whose data is lost (rejected, or dropped for a reason that
//!   [loses data](DropReason::loses_data)) are also counted per validated
//!   cluster ([`Normalized::lost_by_cluster`]) for the clusters' status.

mod attrs;
mod bounded;
mod builder;
mod cardinality;
mod cumulative;
mod identity;
mod losses;
pub mod mapping;
mod metrics;
mod precedence;
mod sources;
mod spans;
mod tally;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::signal::{Origin, SignalBatch};

pub use bounded::{MAX_CLUSTER_LEN, MAX_MODEL_LEN, MAX_TENANT_LEN};
pub use builder::OVERFLOW_MODEL;
pub use cardinality::OVERFLOW_HEADROOM;
pub use losses::{ClusterLosses, DropReason, MAX_CLUSTERS_PER_REQUEST};
pub use tally::{OTHER_METRIC, label_safe_metric};

/// The model of series that are not about one model (GPU capacity, pool-wide
/// router gauges, prefix hashes without a model attribute).
pub const NO_MODEL: &str = "";

/// Normalize flags.
#[derive(Debug, Clone, clap::Args)]
pub struct NormalizeArgs {
    /// Series (cluster × model × kind) one tenant may have; new ones beyond it fold into one overflow series per cluster and kind (at most 384 overflow series beyond it; past those, points are dropped as series_limit).
    #[arg(long, env = "SIGNAL_AGGREGATOR_MAX_SERIES_PER_TENANT",
          default_value_t = NormalizeConfig::default().max_series_per_tenant)]
    pub max_series_per_tenant: usize,
}

impl NormalizeArgs {
    pub fn config(&self) -> NormalizeConfig {
        NormalizeConfig {
            max_series_per_tenant: self.max_series_per_tenant,
            ..NormalizeConfig::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// Series (tenant × cluster × model × kind) a tenant may have before new
    /// ones fold into its overflow series (model `otel.metric.overflow`) of
    /// their cluster and kind.
    pub max_series_per_tenant: usize,
    /// Cumulative series (resource × metric × data point attributes) whose
    /// last value is remembered for delta conversion.
    pub max_cumulative_series: usize,
    /// Series state (cumulative values, series budget) unseen for this long
    /// is forgotten.
    pub state_ttl: Duration,
    /// A cumulative series seen for the first time counts in full when its
    /// start time is at most this long before the point (it started
    /// recently); otherwise its first point only primes state.
    pub fresh_series_window: Duration,
    /// How long a vantage (engine metrics > router metrics > GenAI metrics >
    /// engine spans > gateway spans) keeps owning a RequestLifecycle field
    /// after its last point; lower vantages' points for it are dropped.
    pub source_precedence_window: Duration,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            max_series_per_tenant: 10_000,
            max_cumulative_series: 1_000_000,
            state_ttl: Duration::from_secs(15 * 60),
            fresh_series_window: Duration::from_secs(60),
            source_precedence_window: Duration::from_secs(5 * 60),
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
    /// Valid items (counted in `accepted`) whose points were not all kept, by
    /// [`DropReason::label`]: `series_overflow` (tenant over its series budget:
    /// kept in its overflow series, model `otel.metric.overflow`),
    /// `series_limit` (over the budget and past the
    /// [`OVERFLOW_HEADROOM`] of overflow series: lost),
    /// `duplicate_point` (a cumulative point not newer than the last),
    /// `cumulative_state_full`, `outranked_source` (a RequestLifecycle field
    /// owned by a higher-ranked vantage, e.g. gateway spans while the engine's
    /// metrics flow), `superseded_metric_name` (a deprecated name
    /// emitted next to its replacement), `unsupported_metric_type`
    /// (exponential histograms, summaries).
    pub dropped: Vec<(&'static str, u64)>,
    /// Rejected items, and dropped ones whose data is lost, per cluster:
    /// only where the cluster is known (authenticated, or a valid cluster
    /// attribute), for at most [`MAX_CLUSTERS_PER_REQUEST`] clusters.
    pub lost_by_cluster: ClusterLosses,
    /// Accepted data points that map to no signal (an unknown or misspelt
    /// metric name, or a known one of another instrument than its source
    /// emits), as `(tenant, metric name, points)`. Names are label-safe
    /// (else `other`), at most 32 per request (the rest as `other`).
    pub unmapped: Vec<(String, String, u64)>,
}

pub struct Normalizer {
    cumulative: cumulative::CumulativeState,
    limiter: cardinality::CardinalityLimiter,
    precedence: precedence::Precedence,
}

impl Normalizer {
    pub fn new(config: NormalizeConfig) -> Self {
        Normalizer {
            cumulative: cumulative::CumulativeState::new(
                config.max_cumulative_series,
                config.state_ttl,
                config.fresh_series_window,
            ),
            limiter: cardinality::CardinalityLimiter::new(
                config.max_series_per_tenant,
                config.state_ttl,
            ),
            precedence: precedence::Precedence::new(
                config.source_precedence_window,
                config.max_cumulative_series,
            ),
        }
    }

    pub fn metrics(&self, origin: &Origin, request: &ExportMetricsServiceRequest) -> Normalized {
        self.metrics_at(origin, request, SystemTime::now())
    }

    pub fn traces(&self, origin: &Origin, request: &ExportTraceServiceRequest) -> Normalized {
        self.traces_at(origin, request, SystemTime::now())
    }

    /// [`Normalizer::metrics`] with an explicit clock (state expiry is
    /// measured against `now`).
    pub fn metrics_at(
        &self,
        origin: &Origin,
        request: &ExportMetricsServiceRequest,
        now: SystemTime,
    ) -> Normalized {
        let (secs, nanos) = clock(now);
        metrics::normalize(self, origin, request, secs, nanos)
    }

    /// [`Normalizer::traces`] with an explicit clock.
    pub fn traces_at(
        &self,
        origin: &Origin,
        request: &ExportTraceServiceRequest,
        now: SystemTime,
    ) -> Normalized {
        let (secs, nanos) = clock(now);
        spans::normalize(self, origin, request, secs, nanos)
    }

    /// Cumulative series currently remembered (for self-metrics).
    pub fn cumulative_series(&self) -> usize {
        self.cumulative.len()
    }
}

fn clock(now: SystemTime) -> (u64, u64) {
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    (
        since_epoch.as_secs(),
        u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX),
    )
}
