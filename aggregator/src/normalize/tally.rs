//! Counts of what happened to the items of one request, and the
//! partial-success message. Messages are static strings that name attribute
//! keys, never values: a refused value could be anything, including text.

use super::Normalized;
use super::losses::{ClusterLosses, DropReason};
use crate::signal::SignalBatch;

const MAX_MESSAGES: usize = 4;

/// Distinct (tenant, metric) pairs one request reports as unmapped; the
/// rest are counted under the metric name `other`.
const MAX_UNMAPPED_NAMES: usize = 32;

/// The name unmapped points are counted under when their own name is not
/// kept (past the per-request or per-tenant bound, or not a plain metric name).
pub const OTHER_METRIC: &str = "other";

/// A metric name fit to be a label value: Prometheus or OTLP metric name
/// characters, at most 100 of them; anything else is [`OTHER_METRIC`].
pub fn label_safe_metric(name: &str) -> &str {
    let ok = !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b'/'));
    if ok { name } else { OTHER_METRIC }
}

#[derive(Default)]
pub(crate) struct Tally {
    pub accepted: u64,
    rejected: u64,
    reasons: Vec<(&'static str, u64)>,
    dropped: Vec<(&'static str, u64)>,
    /// Items rejected or dropped losing data, so far.
    lost: u64,
    lost_by_cluster: ClusterLosses,
    unmapped: Vec<(String, String, u64)>,
}

/// How many items had been lost when a resource's items started.
#[derive(Clone, Copy)]
pub(crate) struct LossMark(u64);

impl Tally {
    pub(crate) fn reject(&mut self, n: u64, why: &'static str) {
        if n == 0 {
            return;
        }
        self.rejected += n;
        self.lost += n;
        if let Some((_, count)) = self.reasons.iter_mut().find(|(w, _)| *w == why) {
            *count += n;
        } else if self.reasons.len() < MAX_MESSAGES {
            self.reasons.push((why, n));
        }
    }

    pub(crate) fn drop(&mut self, reason: DropReason, n: u64) {
        if n == 0 {
            return;
        }
        if reason.loses_data() {
            self.lost += n;
        }
        let label = reason.label();
        match self.dropped.iter_mut().find(|(r, _)| *r == label) {
            Some((_, count)) => *count += n,
            None => self.dropped.push((label, n)),
        }
    }

    /// `n` accepted points of `metric` of `tenant` that map to no signal.
    pub(crate) fn unmapped(&mut self, tenant: &str, metric: &str, n: u64) {
        if n == 0 {
            return;
        }
        let mut metric = label_safe_metric(metric);
        if !self
            .unmapped
            .iter()
            .any(|(t, m, _)| t == tenant && m == metric)
            && self.unmapped.len() >= MAX_UNMAPPED_NAMES
        {
            metric = OTHER_METRIC;
        }
        match self
            .unmapped
            .iter_mut()
            .find(|(t, m, _)| t == tenant && m == metric)
        {
            Some((_, _, count)) => *count += n,
            None => self
                .unmapped
                .push((tenant.to_string(), metric.to_string(), n)),
        }
    }

    /// Taken before a resource's items are counted.
    pub(crate) fn loss_mark(&self) -> LossMark {
        LossMark(self.lost)
    }

    /// Attributes the items lost since `mark` to `cluster`, a validated name.
    pub(crate) fn attribute_losses(&mut self, cluster: &str, mark: LossMark) {
        self.lost_by_cluster.add(cluster, self.lost - mark.0);
    }

    pub(crate) fn finish(self, batch: SignalBatch, items: &str) -> Normalized {
        let rejected_message = if self.rejected == 0 {
            String::new()
        } else {
            let reasons: Vec<String> = self
                .reasons
                .iter()
                .map(|(why, n)| format!("{n} {items}: {why}"))
                .collect();
            format!(
                "{} {items} rejected ({})",
                self.rejected,
                reasons.join("; ")
            )
        };
        Normalized {
            batch,
            accepted: self.accepted,
            rejected: self.rejected,
            rejected_message,
            dropped: self.dropped,
            lost_by_cluster: self.lost_by_cluster,
            unmapped: self.unmapped,
        }
    }
}
