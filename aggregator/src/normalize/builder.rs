//! Collects points into one [`SeriesPoints`] per series of a request. The
//! series index is reused for the whole request, so the common case (many
//! points of the same tenant/cluster/model) costs one hash lookup and no
//! string copies; owned strings are made once per new series.

use super::attrs::{PrehashedMap, mix, xxh3};
use super::cardinality::CardinalityLimiter;
use super::losses::DropReason;
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

/// The model of a tenant's overflow series: over the series budget, a new
/// (cluster, model, kind) series folds into (cluster, this model, kind), as
/// the Collector's span_metrics folds new series into `otel.metric.overflow`,
/// so the tenant's totals stay exact and only the model breakdown is lost.
pub const OVERFLOW_MODEL: &str = "otel.metric.overflow";

enum Slot {
    Kept(usize),
    /// Over the tenant's series budget: points for it go to the overflow
    /// series at this index of `series`.
    Overflow {
        key: SeriesKey,
        series: usize,
    },
    /// Over the budget and past the overflow headroom (a tenant inventing
    /// clusters too): points for it are dropped.
    Refused(SeriesKey),
}

/// A series seen in this request, with the RequestLifecycle fields whose
/// ownership was already asked for the current vantage (bit = `Field as u64`).
struct SlotState {
    slot: Slot,
    vantage: Vantage,
    checked: u64,
    allowed: u64,
}

/// What became of a pushed point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushed {
    Kept,
    /// The series is over the tenant's budget: kept in the overflow series.
    Overflow,
    /// Over the budget and its overflow headroom: dropped.
    SeriesLimit,
    /// A higher-ranked vantage owns this RequestLifecycle field.
    Outranked,
}

impl Pushed {
    /// Notes what the series budget did to a pushed point: `seen` becomes
    /// the reason its item is counted under (a refusal wins over overflow).
    pub(crate) fn note_series(self, seen: &mut Option<DropReason>) {
        match self {
            Pushed::SeriesLimit => *seen = Some(DropReason::SeriesLimit),
            Pushed::Overflow if seen.is_none() => *seen = Some(DropReason::SeriesOverflow),
            _ => {}
        }
    }
}

pub(crate) struct BatchBuilder<'l> {
    series: Vec<SeriesPoints>,
    slots: Vec<SlotState>,
    index: PrehashedMap<usize>,
    limiter: &'l CardinalityLimiter,
    precedence: &'l Precedence,
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
        let slot = self.slot(ctx, kind, key_hash);
        let (series, pushed) = match self.slots[slot].slot {
            Slot::Kept(series) => (series, Pushed::Kept),
            Slot::Overflow { series, .. } => (series, Pushed::Overflow),
            Slot::Refused(_) => return Pushed::SeriesLimit,
        };
        if kind == SignalKind::RequestLifecycle && !self.owns(slot, key_hash, &field) {
            return Pushed::Outranked;
        }
        self.series[series].points.push(Point {
            field,
            time_unix_nano,
            value,
        });
        pushed
    }

    /// Whether the current vantage owns `field` of the series in `slot`;
    /// asks the shared precedence table once per request, series and field.
    fn owns(&mut self, slot: usize, key_hash: u64, field: &FieldKey) -> bool {
        let (vantage, precedence, now_secs) = (self.vantage, self.precedence, self.now_secs);
        let state = &mut self.slots[slot];
        if state.vantage != vantage {
            state.vantage = vantage;
            state.checked = 0;
            state.allowed = 0;
        }
        let field = field.field as u64;
        let bit = 1u64 << (field % 64);
        if state.checked & bit == 0 {
            state.checked |= bit;
            if precedence.allow(mix(key_hash, field), vantage, now_secs) {
                state.allowed |= bit;
            }
        }
        state.allowed & bit != 0
    }

    /// Index into `slots` of the series, creating it on first use.
    fn slot(&mut self, ctx: &SeriesCtx<'_>, kind: SignalKind, key_hash: u64) -> usize {
        if let Some(&slot) = self.index.get(&key_hash) {
            let key = match &self.slots[slot].slot {
                Slot::Kept(i) => &self.series[*i].key,
                Slot::Overflow { key, .. } | Slot::Refused(key) => key,
            };
            if ctx.matches(key, kind) {
                return slot;
            }
            // A 64-bit digest collision inside one request: give this series
            // its own unindexed slot.
            return self.new_slot(ctx, kind, key_hash, false);
        }
        self.new_slot(ctx, kind, key_hash, true)
    }

    fn new_slot(
        &mut self,
        ctx: &SeriesCtx<'_>,
        kind: SignalKind,
        key_hash: u64,
        index: bool,
    ) -> usize {
        let key = SeriesKey {
            tenant: ctx.tenant.to_string(),
            cluster: ctx.cluster.to_string(),
            model: ctx.model.to_string(),
            kind,
        };
        let slot = if self.limiter.admit(ctx.tenant, key_hash, self.now_secs) {
            self.series.push(SeriesPoints {
                key,
                points: Vec::new(),
            });
            Slot::Kept(self.series.len() - 1)
        } else {
            match self.overflow_series(ctx, kind) {
                Some(series) => Slot::Overflow { key, series },
                None => Slot::Refused(key),
            }
        };
        if index {
            self.index.insert(key_hash, self.slots.len());
        }
        self.slots.push(SlotState {
            slot,
            vantage: self.vantage,
            checked: 0,
            allowed: 0,
        });
        self.slots.len() - 1
    }

    /// Index into `series` of the overflow series of (tenant, cluster, kind),
    /// created on first use; `None` past the tenant's overflow headroom.
    fn overflow_series(&mut self, ctx: &SeriesCtx<'_>, kind: SignalKind) -> Option<usize> {
        let found = self.series.iter().position(|s| {
            s.key.kind == kind
                && s.key.model == OVERFLOW_MODEL
                && s.key.cluster == ctx.cluster
                && s.key.tenant == ctx.tenant
        });
        if found.is_some() {
            return found;
        }
        let overflow = SeriesCtx::new(ctx.tenant, ctx.cluster, OVERFLOW_MODEL);
        let hash = mix(overflow.hash, kind as u64 + 1);
        if !self.limiter.admit_overflow(ctx.tenant, hash, self.now_secs) {
            return None;
        }
        Some({
            self.series.push(SeriesPoints {
                key: SeriesKey {
                    tenant: ctx.tenant.to_string(),
                    cluster: ctx.cluster.to_string(),
                    model: OVERFLOW_MODEL.to_string(),
                    kind,
                },
                points: Vec::new(),
            });
            self.series.len() - 1
        })
    }

    pub(crate) fn finish(mut self) -> SignalBatch {
        self.series.retain(|s| !s.points.is_empty());
        SignalBatch {
            series: self.series,
        }
    }
}
