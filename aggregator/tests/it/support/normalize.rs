//! Reading a normalized batch: the points, totals and values a normalize
//! test asserts on. The payloads come from `otlp_test_kit`.
use signal_aggregator::signal::{
    Field, FieldKey, Point, SeriesKey, SignalBatch, SignalKind, Value,
};

/// Every point of `field` (any dims) in series of `kind`, with its series key.
pub fn points(batch: &SignalBatch, kind: SignalKind, field: Field) -> Vec<(&SeriesKey, &Point)> {
    batch
        .series
        .iter()
        .filter(|s| s.key.kind == kind)
        .flat_map(|s| s.points.iter().map(move |p| (&s.key, p)))
        .filter(|(_, p)| p.field.field == field)
        .collect()
}

/// Sum of counter increments for an exact field key.
pub fn counter_total(batch: &SignalBatch, kind: SignalKind, key: &FieldKey) -> f64 {
    points(batch, kind, key.field)
        .into_iter()
        .filter(|(_, p)| &p.field == key)
        .map(|(_, p)| match p.value {
            Value::Counter(n) => n,
            ref other => panic!("expected a counter for {key:?}, got {other:?}"),
        })
        .sum()
}

pub fn plain_total(batch: &SignalBatch, kind: SignalKind, field: Field) -> f64 {
    counter_total(batch, kind, &FieldKey::plain(field))
}

/// The single gauge reading of an exact field key.
pub fn gauge_value(batch: &SignalBatch, kind: SignalKind, key: &FieldKey) -> f64 {
    let found: Vec<f64> = points(batch, kind, key.field)
        .into_iter()
        .filter(|(_, p)| &p.field == key)
        .map(|(_, p)| match p.value {
            Value::Gauge(v) => v,
            ref other => panic!("expected a gauge for {key:?}, got {other:?}"),
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one gauge point for {key:?}: {found:?}"
    );
    found[0]
}

pub fn samples(batch: &SignalBatch, kind: SignalKind, field: Field) -> Vec<f64> {
    points(batch, kind, field)
        .into_iter()
        .filter_map(|(_, p)| match p.value {
            Value::Sample(v) => Some(v),
            _ => None,
        })
        .collect()
}

pub fn histogram_of(
    batch: &SignalBatch,
    kind: SignalKind,
    field: Field,
) -> signal_aggregator::signal::HistogramDelta {
    let found: Vec<_> = points(batch, kind, field)
        .into_iter()
        .filter_map(|(_, p)| match &p.value {
            Value::Histogram(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "expected one histogram for {field:?}");
    found.into_iter().next().unwrap()
}

pub fn models(batch: &SignalBatch, kind: SignalKind) -> Vec<String> {
    let mut models: Vec<String> = batch
        .series
        .iter()
        .filter(|s| s.key.kind == kind)
        .map(|s| s.key.model.clone())
        .collect();
    models.sort();
    models.dedup();
    models
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
