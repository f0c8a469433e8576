//! Mergeable per-window sketches of typed signals.
//!
//! A [`SeriesSketch`] holds every field of one series (tenant, cluster,
//! model, kind) in one [`Window`]. Which sketch a field gets follows from the
//! [`Value`] it arrives as:
//!
//! | value | sketch | read with |
//! |---|---|---|
//! | `Sample` | [`QuantileSketch`] (1 % relative error) | [`FieldSketch::summary`], [`DistributionSketch::quantile`] |
//! | `Histogram` | [`HistogramSketch`] (exact buckets, Prometheus quantiles) | same |
//! | `Counter` | [`CounterSketch`] (sum, reports) | [`FieldSketch::as_counter`] |
//! | `Gauge` | [`GaugeSketch`] (last, min, max, mean) | [`FieldSketch::as_gauge`] |
//! | `PrefixHash` | [`PrefixSketch`] (HLL + heavy hitters + Count-Min) | [`FieldSketch::as_prefix`] |
//!
//! Everything merges, encodes with a leading version byte, and hashes with a
//! fixed seed so partial sketches from replicas and clusters combine. The
//! measurements behind these choices are in `docs/benchmarks/sketch.md`.

mod bucket_codec;
mod codec;
pub mod frequency;
pub mod histogram;
pub mod hll;
#[cfg(test)]
mod merge_encoded_tests;
pub mod prefix;
pub mod quantile;
pub mod scalar;
mod window;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::signal::{Field, FieldKey, Point, SeriesKey, SignalBatch, Value};
use codec::{Reader, Writer, corrupt};

pub use frequency::HeavyHitter;
pub use histogram::HistogramSketch;
pub use prefix::{PrefixOverlap, PrefixSketch, SharedHitter};
pub use quantile::QuantileSketch;
pub use scalar::{CounterSketch, GaugeSketch};
pub use window::{HOUR_SECS, MINUTE_SECS, Resolution, Window, roll_up};

/// First byte of every encoded [`SeriesSketch`]. Bump on any change to the
/// layout, the hash seed or a sketch's parameters.
///
/// 2: quantile bucket stores may be sparse (see `quantile.rs`), which
/// halves a minute window's bytes; everything else is as in 1.
pub const ENCODING_VERSION: u8 = 2;
/// The oldest encoding still decoded (windows, log entries and frames
/// written before an upgrade).
pub const OLDEST_DECODED_VERSION: u8 = 1;

/// Points stamped further ahead than this, or older than
/// [`MAX_POINT_AGE_SECS`], or with no time at all (0), are filed under the
/// arrival minute instead: a broken clock must not create windows the
/// retention would never expire or that no query reads.
pub const MAX_FUTURE_SKEW_SECS: u64 = 10 * 60;
pub const MAX_POINT_AGE_SECS: u64 = 30 * 24 * 3_600;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    #[error("unsupported sketch encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("corrupt sketch encoding: {0}")]
    Corrupt(String),
    #[error("cannot merge {0}")]
    Incompatible(String),
}

/// Samples and/or histogram buckets of one latency-like field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DistributionSketch {
    pub samples: QuantileSketch,
    pub buckets: HistogramSketch,
}

/// Where a [`DistributionSummary`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DistributionSource {
    Samples,
    Buckets,
}

/// `{count, p50, p90, p99}` of a distribution field.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistributionSummary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub source: DistributionSource,
}

impl DistributionSketch {
    /// Per-request samples when there are any (they are exact to 1 %),
    /// otherwise the histogram buckets.
    pub fn source(&self) -> Option<DistributionSource> {
        if self.samples.count() > 0 {
            Some(DistributionSource::Samples)
        } else if self.buckets.count() > 0 {
            Some(DistributionSource::Buckets)
        } else {
            None
        }
    }

    pub fn count(&self) -> u64 {
        match self.source() {
            Some(DistributionSource::Samples) => self.samples.count(),
            Some(DistributionSource::Buckets) => self.buckets.count(),
            None => 0,
        }
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self.source()? {
            DistributionSource::Samples => self.samples.quantile(q),
            DistributionSource::Buckets => self.buckets.quantile(q),
        }
    }

    pub fn summary(&self) -> Option<DistributionSummary> {
        let source = self.source()?;
        Some(DistributionSummary {
            count: self.count(),
            p50: self.quantile(0.5)?,
            p90: self.quantile(0.9)?,
            p99: self.quantile(0.99)?,
            source,
        })
    }

    fn merge(&mut self, other: &DistributionSketch) {
        self.samples.merge(&other.samples);
        self.buckets.merge(&other.buckets);
    }
}

/// The sketch behind one field; which one follows from the values it received.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldSketch {
    /// Boxed: it is the largest variant by far, and unboxed it would size
    /// every counter and gauge slot of a series like itself.
    Distribution(Box<DistributionSketch>),
    Counter(CounterSketch),
    Gauge(GaugeSketch),
    Prefix(PrefixSketch),
}

impl FieldSketch {
    fn for_value(value: &Value) -> FieldSketch {
        match value {
            Value::Sample(_) | Value::Histogram(_) => FieldSketch::Distribution(Box::default()),
            Value::Counter(_) => FieldSketch::Counter(CounterSketch::default()),
            Value::Gauge(_) => FieldSketch::Gauge(GaugeSketch::default()),
            Value::PrefixHash(_) => FieldSketch::Prefix(PrefixSketch::default()),
        }
    }

    fn tag(&self) -> u8 {
        match self {
            FieldSketch::Distribution(_) => 1,
            FieldSketch::Counter(_) => 2,
            FieldSketch::Gauge(_) => 3,
            FieldSketch::Prefix(_) => 4,
        }
    }

    /// Points this field absorbed (for accounting of refused merges).
    fn observations(&self) -> u64 {
        match self {
            FieldSketch::Distribution(d) => d.samples.count().saturating_add(d.buckets.count()),
            FieldSketch::Counter(c) => c.reports,
            FieldSketch::Gauge(g) => g.count,
            FieldSketch::Prefix(p) => p.total(),
        }
    }

    /// Records `point`; false when the value is invalid or of another type.
    fn record(&mut self, point: &Point) -> bool {
        match (self, &point.value) {
            (FieldSketch::Distribution(d), Value::Sample(v)) => d.samples.add(*v),
            (FieldSketch::Distribution(d), Value::Histogram(h)) => {
                let valid = histogram::validate_delta(h).is_ok();
                if valid {
                    d.buckets.add(h);
                }
                valid
            }
            (FieldSketch::Counter(c), Value::Counter(v)) if v.is_finite() => {
                c.add(*v);
                true
            }
            (FieldSketch::Gauge(g), Value::Gauge(v)) if v.is_finite() => {
                g.add(*v, point.time_unix_nano);
                true
            }
            (FieldSketch::Prefix(p), Value::PrefixHash(h)) => {
                p.add(*h);
                true
            }
            _ => false,
        }
    }

    /// Same-type fields merge; `false` (nothing changed) otherwise.
    fn merge(&mut self, other: &FieldSketch) -> bool {
        match (self, other) {
            (FieldSketch::Distribution(a), FieldSketch::Distribution(b)) => a.merge(b),
            (FieldSketch::Counter(a), FieldSketch::Counter(b)) => a.merge(b),
            (FieldSketch::Gauge(a), FieldSketch::Gauge(b)) => a.merge(b),
            (FieldSketch::Prefix(a), FieldSketch::Prefix(b)) => a.merge(b),
            _ => return false,
        }
        true
    }

    pub fn as_distribution(&self) -> Option<&DistributionSketch> {
        match self {
            FieldSketch::Distribution(d) => Some(d),
            _ => None,
        }
    }

    pub fn as_counter(&self) -> Option<&CounterSketch> {
        match self {
            FieldSketch::Counter(c) => Some(c),
            _ => None,
        }
    }

    pub fn as_gauge(&self) -> Option<&GaugeSketch> {
        match self {
            FieldSketch::Gauge(g) => Some(g),
            _ => None,
        }
    }

    pub fn as_prefix(&self) -> Option<&PrefixSketch> {
        match self {
            FieldSketch::Prefix(p) => Some(p),
            _ => None,
        }
    }

    /// `{count, p50, p90, p99}` for distribution fields.
    pub fn summary(&self) -> Option<DistributionSummary> {
        self.as_distribution()?.summary()
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            FieldSketch::Distribution(d) => {
                std::mem::size_of::<DistributionSketch>()
                    + d.samples.heap_bytes()
                    + d.buckets.heap_bytes()
            }
            FieldSketch::Counter(_) | FieldSketch::Gauge(_) => 0,
            FieldSketch::Prefix(p) => p.heap_bytes(),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            FieldSketch::Distribution(d) => {
                d.samples.shrink_to_fit();
                d.buckets.shrink_to_fit();
            }
            FieldSketch::Counter(_) | FieldSketch::Gauge(_) => {}
            FieldSketch::Prefix(p) => p.shrink_to_fit(),
        }
    }

    fn encode(&self, w: &mut Writer) {
        w.u8(self.tag());
        match self {
            FieldSketch::Distribution(d) => {
                d.samples.encode(w);
                d.buckets.encode(w);
            }
            FieldSketch::Counter(c) => c.encode(w),
            FieldSketch::Gauge(g) => g.encode(w),
            FieldSketch::Prefix(p) => p.encode(w),
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<FieldSketch, SketchError> {
        let tag = r.u8()?;
        Self::decode_tagged(tag, r)
    }

    /// Merges an encoded field sketch of the same type into this one without
    /// building it (quantile buckets are added as they are read). One of
    /// another type is returned decoded, for [`SeriesSketch`]'s conflict rule.
    fn merge_encoded(&mut self, r: &mut Reader<'_>) -> Result<Option<FieldSketch>, SketchError> {
        match (self, r.u8()?) {
            (FieldSketch::Distribution(d), 1) => {
                d.samples.merge_encoded(r)?;
                d.buckets.merge(&HistogramSketch::decode(r)?);
            }
            (FieldSketch::Counter(c), 2) => c.merge(&CounterSketch::decode(r)?),
            (FieldSketch::Gauge(g), 3) => g.merge(&GaugeSketch::decode(r)?),
            (FieldSketch::Prefix(p), 4) => p.merge(&PrefixSketch::decode(r)?),
            (_, tag) => return Self::decode_tagged(tag, r).map(Some),
        }
        Ok(None)
    }

    fn decode_tagged(tag: u8, r: &mut Reader<'_>) -> Result<FieldSketch, SketchError> {
        Ok(match tag {
            1 => FieldSketch::Distribution(Box::new(DistributionSketch {
                samples: QuantileSketch::decode(r)?,
                buckets: HistogramSketch::decode(r)?,
            })),
            2 => FieldSketch::Counter(CounterSketch::decode(r)?),
            3 => FieldSketch::Gauge(GaugeSketch::decode(r)?),
            4 => FieldSketch::Prefix(PrefixSketch::decode(r)?),
            tag => return Err(corrupt(format!("unknown field sketch type {tag}"))),
        })
    }
}

/// All fields of one series in one window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesSketch {
    /// Sorted by key; a sorted vector is a fraction of a B-tree's footprint
    /// for the dozen fields a series has.
    fields: Vec<(FieldKey, FieldSketch)>,
    rejected_points: u64,
}

/// One series' sketch for one window, ready to merge into a store.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowedSketch {
    pub key: SeriesKey,
    pub window: Window,
    pub sketch: SeriesSketch,
}

impl SeriesSketch {
    fn slot(&self, key: &FieldKey) -> Result<usize, usize> {
        self.fields.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// Adds one point to the sketch its value type selects. Points whose
    /// value is invalid (non-finite, malformed histogram) or whose type
    /// differs from what the field already holds are counted in
    /// [`Self::rejected_points`] instead.
    pub fn record(&mut self, point: &Point) {
        let at = match self.slot(&point.field) {
            Ok(at) => at,
            Err(at) => {
                self.fields.insert(
                    at,
                    (point.field.clone(), FieldSketch::for_value(&point.value)),
                );
                at
            }
        };
        if !self.fields[at].1.record(point) {
            self.rejected_points += 1;
            if self.fields[at].1.observations() == 0 {
                self.fields.remove(at);
            }
        }
    }

    /// Merges `other` into `self`. Same-type fields merge exactly (quantile
    /// buckets, histogram buckets, HLL registers, counters) or by their
    /// sketch's rule. If a field holds different sketch types on the two
    /// sides (a normalizer change between releases), the type with the lower
    /// tag is kept on both orders, so merge stays commutative, and the other
    /// side's observations are added to [`Self::rejected_points`]. Never
    /// fails today; the `Result` leaves room for versioned parameters.
    pub fn merge(&mut self, other: &SeriesSketch) -> Result<(), SketchError> {
        self.rejected_points = self.rejected_points.saturating_add(other.rejected_points);
        for (key, theirs) in &other.fields {
            match self.slot(key) {
                Err(at) => {
                    self.fields.reserve_exact(1);
                    self.fields.insert(at, (key.clone(), theirs.clone()));
                }
                Ok(at) => {
                    if !self.fields[at].1.merge(theirs) {
                        self.resolve_type_conflict(at, theirs);
                    }
                }
            }
        }
        Ok(())
    }

    /// The field at `at` and `theirs` hold different sketch types: keep the
    /// lower tag (so merge stays commutative), count the other as rejected.
    fn resolve_type_conflict(&mut self, at: usize, theirs: &FieldSketch) {
        let mine = &mut self.fields[at].1;
        let dropped = if theirs.tag() < mine.tag() {
            std::mem::replace(mine, theirs.clone()).observations()
        } else {
            theirs.observations()
        };
        self.rejected_points = self.rejected_points.saturating_add(dropped);
    }

    /// `self.merge(&SeriesSketch::decode(bytes)?)` without building the
    /// decoded sketch for fields `self` already holds: their quantile buckets
    /// are added as they are read (queries merge thousands of frames). Same
    /// result, same validation; on error `self` is partly merged and must be
    /// discarded. Bucket arrays grow with spare capacity here: call
    /// [`Self::shrink_to_fit`] before keeping the result long.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        let mut r = Reader::new(bytes);
        let (rejected_points, count) = decode_header(&mut r)?;
        self.rejected_points = self.rejected_points.saturating_add(rejected_points);
        // The slot in `self.fields` of the field read last. Encoded fields
        // are in ascending order, so each one's slot must come after it,
        // and is most likely the very next one (a series' frames share
        // fields): that one is checked first, without decoding the key.
        let mut previous: Option<usize> = None;
        for _ in 0..count {
            let next = previous.map_or(0, |at| at + 1);
            let at = if self.next_field_matches(&mut r, next) {
                Ok(next)
            } else {
                let key = decode_field_key(&mut r)?;
                match self.slot(&key) {
                    Ok(at) | Err(at) if at < next => {
                        return Err(corrupt("fields not in strictly ascending order"));
                    }
                    Ok(at) => Ok(at),
                    Err(at) => Err((at, key)),
                }
            };
            previous = Some(match at {
                Ok(at) => {
                    if let Some(theirs) = self.fields[at].1.merge_encoded(&mut r)? {
                        self.resolve_type_conflict(at, &theirs);
                    }
                    at
                }
                Err((at, key)) => {
                    let theirs = FieldSketch::decode(&mut r)?;
                    self.fields.insert(at, (key, theirs));
                    at
                }
            });
        }
        r.finish()
    }

    /// Whether the next encoded field key is that of `self.fields[at]`, a
    /// plain (dimensionless) field; consumes the key only if so.
    fn next_field_matches(&self, r: &mut Reader<'_>, at: usize) -> bool {
        let Some((key, _)) = self.fields.get(at) else {
            return false;
        };
        if !key.dims.is_empty() {
            return false;
        }
        let mut peek = r.clone();
        let matches = peek
            .bytes()
            .is_ok_and(|name| name == key.field.as_str().as_bytes())
            && peek.varint() == Ok(0);
        if matches {
            *r = peek;
        }
        matches
    }

    pub fn encode(&self) -> Vec<u8> {
        self.encode_as(ENCODING_VERSION)
    }

    /// The encoding in `version`: [`ENCODING_VERSION`] or an older one that
    /// is still decoded, for readers not upgraded yet (and for tests and
    /// benches of old data).
    pub fn encode_version(&self, version: u8) -> Result<Vec<u8>, SketchError> {
        if !(OLDEST_DECODED_VERSION..=ENCODING_VERSION).contains(&version) {
            return Err(SketchError::UnsupportedVersion(version));
        }
        Ok(self.encode_as(version))
    }

    fn encode_as(&self, version: u8) -> Vec<u8> {
        let mut w = Writer {
            dense_only: version < 2,
            ..Writer::default()
        };
        w.u8(version);
        w.varint(self.rejected_points);
        w.varint(self.fields.len() as u64);
        for (key, sketch) in &self.fields {
            w.str(key.field.as_str());
            w.varint(key.dims.len() as u64);
            for (name, value) in &key.dims {
                w.str(name);
                w.str(value);
            }
            sketch.encode(&mut w);
        }
        w.buf
    }

    pub fn decode(bytes: &[u8]) -> Result<SeriesSketch, SketchError> {
        let mut r = Reader::new(bytes);
        let (rejected_points, count) = decode_header(&mut r)?;
        let mut fields: Vec<(FieldKey, FieldSketch)> = Vec::with_capacity(count);
        for _ in 0..count {
            let key = decode_field_key(&mut r)?;
            if fields.last().is_some_and(|(previous, _)| *previous >= key) {
                return Err(corrupt("fields not in strictly ascending order"));
            }
            fields.push((key, FieldSketch::decode(&mut r)?));
        }
        r.finish()?;
        Ok(SeriesSketch {
            fields,
            rejected_points,
        })
    }

    /// A series made of ready-built field sketches (tools, benches, tests);
    /// repeated keys merge.
    pub fn from_fields(fields: impl IntoIterator<Item = (FieldKey, FieldSketch)>) -> SeriesSketch {
        let mut series = SeriesSketch::default();
        for (key, sketch) in fields {
            let single = SeriesSketch {
                fields: vec![(key, sketch)],
                rejected_points: 0,
            };
            // Cannot fail: merge only reports, never refuses.
            let _ = series.merge(&single);
        }
        series
    }

    pub fn field(&self, key: &FieldKey) -> Option<&FieldSketch> {
        self.slot(key).ok().map(|at| &self.fields[at].1)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&FieldKey, &FieldSketch)> {
        self.fields.iter().map(|(k, v)| (k, v))
    }

    /// Every dimension combination of one field (e.g. GPUs per SKU).
    pub fn fields_named(&self, field: Field) -> impl Iterator<Item = (&FieldKey, &FieldSketch)> {
        self.fields().filter(move |(k, _)| k.field == field)
    }

    /// `{count, p50, p90, p99}` of a dimensionless distribution field.
    pub fn summary(&self, field: Field) -> Option<DistributionSummary> {
        self.field(&FieldKey::plain(field))?.summary()
    }

    /// Sum of a dimensionless counter field.
    pub fn counter_sum(&self, field: Field) -> Option<f64> {
        Some(self.field(&FieldKey::plain(field))?.as_counter()?.sum)
    }

    pub fn gauge(&self, field: Field) -> Option<&GaugeSketch> {
        self.field(&FieldKey::plain(field))?.as_gauge()
    }

    pub fn prefix(&self, field: Field) -> Option<&PrefixSketch> {
        self.field(&FieldKey::plain(field))?.as_prefix()
    }

    /// Releases growth slack (sketches grow geometrically while recording).
    /// [`sketch_batch`] calls it on what it returns; long-lived sketches in
    /// a store should call it after merging into them.
    pub fn shrink_to_fit(&mut self) {
        self.fields.shrink_to_fit();
        for (_, sketch) in &mut self.fields {
            sketch.shrink_to_fit();
        }
    }

    /// Points refused by [`Self::record`] or dropped by a type-conflicting merge.
    pub fn rejected_points(&self) -> u64 {
        self.rejected_points
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Heap memory held by this sketch (excluding the `SeriesSketch` value
    /// itself), for the store's memory accounting.
    pub fn heap_bytes(&self) -> usize {
        self.fields.capacity() * std::mem::size_of::<(FieldKey, FieldSketch)>()
            + self
                .fields
                .iter()
                .map(|(key, sketch)| dims_heap_bytes(key) + sketch.heap_bytes())
                .sum::<usize>()
    }
}

fn dims_heap_bytes(key: &FieldKey) -> usize {
    if key.dims.is_empty() {
        return 0;
    }
    // One B-tree leaf (11 slots of two Strings) plus the strings' bytes.
    11 * 2 * std::mem::size_of::<String>()
        + key
            .dims
            .iter()
            .map(|(k, v)| k.capacity() + v.capacity())
            .sum::<usize>()
}

/// Version check, rejected points and field count of an encoded series.
fn decode_header(r: &mut Reader<'_>) -> Result<(u64, usize), SketchError> {
    let version = r.u8().map_err(|_| corrupt("empty input"))?;
    if !(OLDEST_DECODED_VERSION..=ENCODING_VERSION).contains(&version) {
        return Err(SketchError::UnsupportedVersion(version));
    }
    r.version = version;
    let rejected_points = r.varint()?;
    let count = r.len(3)?;
    Ok((rejected_points, count))
}

fn decode_field_key(r: &mut Reader<'_>) -> Result<FieldKey, SketchError> {
    let field = decode_field(r.str()?)?;
    let dims_len = r.len(2)?;
    let mut dims = BTreeMap::new();
    for _ in 0..dims_len {
        let name = r.str()?.to_string();
        let value = r.str()?.to_string();
        if dims.insert(name, value).is_some() {
            return Err(corrupt("duplicate dimension"));
        }
    }
    Ok(FieldKey { field, dims })
}

fn decode_field(name: &str) -> Result<Field, SketchError> {
    let deserializer = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name);
    Field::deserialize(deserializer).map_err(|_| corrupt(format!("unknown field {name:?}")))
}

/// The window a point belongs to: its own minute, or the arrival minute when
/// its timestamp is missing (0) or absurd (see [`MAX_FUTURE_SKEW_SECS`]).
pub fn point_window(time_unix_nano: u64, now_unix_secs: u64) -> Window {
    let secs = time_unix_nano / 1_000_000_000;
    let sane = time_unix_nano != 0
        && secs <= now_unix_secs.saturating_add(MAX_FUTURE_SKEW_SECS)
        && secs.saturating_add(MAX_POINT_AGE_SECS) >= now_unix_secs;
    Window::minute_containing(if sane { secs } else { now_unix_secs })
}

/// Groups a batch's points into minute windows, one sketch per (series, window).
pub fn sketch_batch(batch: &SignalBatch) -> Vec<WindowedSketch> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    sketch_batch_at(batch, now)
}

/// [`sketch_batch`] with an explicit arrival time (deterministic for tests).
pub fn sketch_batch_at(batch: &SignalBatch, now_unix_secs: u64) -> Vec<WindowedSketch> {
    let mut slots: BTreeMap<(&SeriesKey, Window), usize> = BTreeMap::new();
    let mut out: Vec<WindowedSketch> = Vec::new();
    for series in &batch.series {
        // Points of one series almost always share a minute: skip the map
        // lookup (three string comparisons per level) while they do.
        let mut last: Option<(Window, usize)> = None;
        for point in &series.points {
            let window = point_window(point.time_unix_nano, now_unix_secs);
            let at = match last {
                Some((w, at)) if w == window => at,
                _ => *slots.entry((&series.key, window)).or_insert_with(|| {
                    out.push(WindowedSketch {
                        key: series.key.clone(),
                        window,
                        sketch: SeriesSketch::default(),
                    });
                    out.len() - 1
                }),
            };
            last = Some((window, at));
            out[at].sketch.record(point);
        }
    }
    for windowed in &mut out {
        windowed.sketch.shrink_to_fit();
    }
    out
}
