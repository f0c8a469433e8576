//! What normalize did not keep: the reasons a valid item's points were
//! dropped, and which of them mean data was lost, counted per cluster so
//! the status writer can report `status.signals.droppedEvents`.

/// Why a valid item (counted as accepted) did not become all its points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The tenant is over its series budget and its overflow series'
    /// headroom (it keeps inventing clusters too): the point is lost.
    SeriesLimit,
    /// The tenant is over its series budget: the point was kept in the
    /// tenant's overflow series of its cluster and kind (model
    /// `otel.metric.overflow`), so totals stay exact; only its model is lost.
    SeriesOverflow,
    /// The cumulative → delta state is full, so the delta is unknown.
    CumulativeStateFull,
    /// Exponential histograms and summaries are not read.
    UnsupportedMetricType,
    /// A cumulative point not newer than the last one (a retried export).
    DuplicatePoint,
    /// A RequestLifecycle field owned by a higher-ranked vantage.
    OutrankedSource,
    /// A deprecated metric name emitted next to its replacement.
    SupersededMetricName,
}

impl DropReason {
    /// The `reason` label on `/metrics` and in [`super::Normalized::dropped`].
    pub const fn label(self) -> &'static str {
        match self {
            DropReason::SeriesLimit => "series_limit",
            DropReason::SeriesOverflow => "series_overflow",
            DropReason::CumulativeStateFull => "cumulative_state_full",
            DropReason::UnsupportedMetricType => "unsupported_metric_type",
            DropReason::DuplicatePoint => "duplicate_point",
            DropReason::OutrankedSource => "outranked_source",
            DropReason::SupersededMetricName => "superseded_metric_name",
        }
    }

    /// Whether the item's data is gone. The other reasons drop data the
    /// aggregator already has (the same point again, the same requests seen
    /// from another vantage or under another name): deduplication by design.
    pub const fn loses_data(self) -> bool {
        matches!(
            self,
            DropReason::SeriesLimit
                | DropReason::CumulativeStateFull
                | DropReason::UnsupportedMetricType
        )
    }
}

/// Distinct clusters one request's losses are attributed to, at most.
/// Cluster names are sender-controlled when ingest is not authenticated; an
/// agent's request carries one. Losses of further clusters are still counted
/// per reason on `/metrics`, just not per cluster.
pub const MAX_CLUSTERS_PER_REQUEST: usize = 32;

/// Items of one request whose data was lost (rejected, or dropped for a
/// reason that [loses data](DropReason::loses_data)), per cluster. Only
/// validated cluster names appear: items of a resource without a valid
/// cluster are attributable to no one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterLosses {
    counts: Vec<(String, u64)>,
}

impl ClusterLosses {
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// `(cluster, items)` in the order the clusters first lost something.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counts.iter().map(|(c, n)| (c.as_str(), *n))
    }

    /// Items of `cluster` lost in this request.
    pub fn of(&self, cluster: &str) -> u64 {
        self.iter()
            .find(|(c, _)| *c == cluster)
            .map_or(0, |(_, n)| n)
    }

    /// `cluster` must already be validated (see `bounded::valid_cluster`).
    pub(crate) fn add(&mut self, cluster: &str, items: u64) {
        if items == 0 {
            return;
        }
        if let Some((_, n)) = self.counts.iter_mut().find(|(c, _)| c == cluster) {
            *n += items;
        } else if self.counts.len() < MAX_CLUSTERS_PER_REQUEST {
            self.counts.push((cluster.to_string(), items));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_data_losing_reasons_lose_data() {
        let lost: Vec<_> = [
            DropReason::SeriesLimit,
            DropReason::SeriesOverflow,
            DropReason::CumulativeStateFull,
            DropReason::UnsupportedMetricType,
            DropReason::DuplicatePoint,
            DropReason::OutrankedSource,
            DropReason::SupersededMetricName,
        ]
        .into_iter()
        .filter(|r| r.loses_data())
        .map(DropReason::label)
        .collect();
        assert_eq!(
            lost,
            [
                "series_limit",
                "cumulative_state_full",
                "unsupported_metric_type"
            ]
        );
    }

    #[test]
    fn clusters_per_request_are_capped() {
        let mut losses = ClusterLosses::default();
        for i in 0..MAX_CLUSTERS_PER_REQUEST + 10 {
            losses.add(&format!("c{i}"), 2);
        }
        losses.add("c0", 3);
        losses.add("c1", 0);
        assert_eq!(losses.iter().count(), MAX_CLUSTERS_PER_REQUEST);
        assert_eq!(losses.of("c0"), 5);
        assert_eq!(losses.of("c1"), 2);
        assert_eq!(losses.of(&format!("c{MAX_CLUSTERS_PER_REQUEST}")), 0);
    }
}
