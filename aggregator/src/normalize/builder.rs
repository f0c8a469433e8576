//! Collects points into one [`SeriesPoints`] per series of a request. The
//! series index is reused for the whole request, so the common case (many
//! points of the same tenant/cluster/model) costs one hash lookup and no
//! string copies; owned strings are made once per new series.

use super::attrs::{PrehashedMap, mix, xxh3};
use super::cardinality::CardinalityLimiter;
use super::precedence::{Precedence, Vantage};
use crate::signal::{FieldKey, Point, SeriesKey, SeriesPoints, SignalBatch, SignalKind, Value};

/// The identity of the points being pushed: borrowed from the request.
#[derive(Clone, Copy)]
pub(crate) struct SeriesCtx<'a> {
    pub tenant: &'a str,
    pub cluster: &'a str,
    pub model: &'a str,
    /// Digest of (tenant, cluster, model).
    pub hash: u64,
}

impl<'a> SeriesCtx<'a> {
    pub(crate) fn new(tenant: &'a str, cluster: &'a str, model: &'a str) -> Self {
        let hash = mix(
            mix(xxh3(tenant.as_bytes()), xxh3(cluster.as_bytes())),
            xxh3(model.as_bytes()),
        );
        SeriesCtx {
            tenant,
            cluster,
            model,
            hash,
        }
    }

    fn matches(&self, key: &SeriesKey, kind: SignalKind) -> bool {
        key.kind == kind
            && key.model == self.model
            && key.cluster == self.cluster
            && key.tenant == self.tenant
    }
}

enum Slot {
    Kept(usize),
    /// Over the tenant's series budget: points for it are dropped.
    Refused(SeriesKey),
}

/// What became of a pushed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Kept,
    /// The series is over the tenant's budget.
    SeriesLimit,
    /// A higher-ranked vantage owns this RequestLifecycle field.
    Outranked,
}

pub(crate) struct BatchBuilder<'l> {
    series: Vec<SeriesPoints>,
    slots: Vec<Slot>,
    index: PrehashedMap<usize>,
    limiter: &'l CardinalityLimiter,
    precedence: &'l Precedence,
    /// Precedence answers already obtained in this request.
    allowed: PrehashedMap<bool>,
    /// Where the points being pushed were observed.
    pub vantage: Vantage,
    now_secs: u64,
}

impl<'l> BatchBuilder<'l> {
    pub(crate) fn new(
        limiter: &'l CardinalityLimiter,
        precedence: &'l Precedence,
        now_secs: u64,
    ) -> Self {
        BatchBuilder {
            series: Vec::new(),
            slots: Vec::new(),
            index: PrehashedMap::default(),
            limiter,
            precedence,
            allowed: PrehashedMap::default(),
            vantage: Vantage::EngineMetrics,
            now_secs,
        }
    }

    pub(crate) fn push(
        &mut self,
        ctx: &SeriesCtx<'_>,
        kind: SignalKind,
        field: FieldKey,
        time_unix_nano: u64,
        value: Value,
    ) -> Pushed {
        let key_hash = mix(ctx.hash, kind as u64 + 1);
        if kind == SignalKind::RequestLifecycle && !self.owns(key_hash, &field) {
            return Pushed::Outranked;
        }
        match self.slot(ctx, kind, key_hash) {
            Some(i) => {
                self.series[i].points.push(Point {
                    field,
                    time_unix_nano,
                    value,
                });
                Pushed::Kept
            }
            None => Pushed::SeriesLimit,
        }
    }

    fn owns(&mut self, key_hash: u64, field: &FieldKey) -> bool {
        let field_key = mix(key_hash, field.field as u64);
        let cache_key = mix(field_key, self.vantage as u64);
        if let Some(&allowed) = self.allowed.get(&cache_key) {
            return allowed;
        }
        let allowed = self
            .precedence
            .allow(field_key, self.vantage, self.now_secs);
        self.allowed.insert(cache_key, allowed);
        allowed
    }

    fn slot(&mut self, ctx: &SeriesCtx<'_>, kind: SignalKind, key_hash: u64) -> Option<usize> {
        if let Some(&slot) = self.index.get(&key_hash) {
            match &self.slots[slot] {
                Slot::Kept(i) if ctx.matches(&self.series[*i].key, kind) => return Some(*i),
                Slot::Refused(key) if ctx.matches(key, kind) => return None,
                // A 64-bit digest collision inside one request: fall through
                // and give this series its own unindexed slot.
                _ => return self.new_slot(ctx, kind, key_hash, false),
            }
        }
        self.new_slot(ctx, kind, key_hash, true)
    }

    fn new_slot(
        &mut self,
        ctx: &SeriesCtx<'_>,
        kind: SignalKind,
        key_hash: u64,
        index: bool,
    ) -> Option<usize> {
        let key = SeriesKey {
            tenant: ctx.tenant.to_string(),
            cluster: ctx.cluster.to_string(),
            model: ctx.model.to_string(),
            kind,
        };
        let admitted = self.limiter.admit(ctx.tenant, key_hash, self.now_secs);
        let (slot, result) = if admitted {
            self.series.push(SeriesPoints {
                key,
                points: Vec::new(),
            });
            (
                Slot::Kept(self.series.len() - 1),
                Some(self.series.len() - 1),
            )
        } else {
            (Slot::Refused(key), None)
        };
        if index {
            self.index.insert(key_hash, self.slots.len());
        }
        self.slots.push(slot);
        result
    }

    pub(crate) fn finish(mut self) -> SignalBatch {
        self.series.retain(|s| !s.points.is_empty());
        SignalBatch {
            series: self.series,
        }
    }
}
