//! Merge laws: sketching partials and merging them equals sketching the
//! union (exactly for counters, buckets and HLL registers; within the
//! relative-error guarantee for quantiles), merge is commutative, and
//! encode → decode round-trips.

use proptest::prelude::*;
use signal_aggregator::signal::{Field, FieldKey, HistogramDelta, Point, Value};
use signal_aggregator::sketch::frequency::HEAVY_HITTER_CAPACITY;
use signal_aggregator::sketch::quantile::RELATIVE_ACCURACY;
use signal_aggregator::sketch::{PrefixSketch, QuantileSketch, SeriesSketch};

const BOUNDS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

fn point(field: Field, value: Value, time: u64) -> Point {
    Point {
        field: FieldKey::plain(field),
        time_unix_nano: time,
        value,
    }
}

fn value_strategy() -> impl Strategy<Value = Point> {
    prop_oneof![
        (1e-4f64..100.0).prop_map(|v| point(Field::TtftSeconds, Value::Sample(v), 1)),
        (-5.0f64..5.0).prop_map(|v| point(Field::QueueSeconds, Value::Sample(v), 1)),
        // Integer-valued counters and gauges keep float sums exact, so the
        // laws can be checked with ==.
        (0u32..1000).prop_map(|v| point(Field::Requests, Value::Counter(f64::from(v)), 1)),
        (0u32..1000, 1u64..1000).prop_map(|(v, t)| point(
            Field::QueueDepth,
            Value::Gauge(f64::from(v)),
            t
        )),
        any::<u64>().prop_map(|h| point(Field::PrefixHashes, Value::PrefixHash(h), 1)),
        (0u64..300).prop_map(|h| point(Field::PrefixHashes, Value::PrefixHash(h), 1)),
        proptest::collection::vec(0u64..50, 5).prop_map(|counts| {
            let count = counts.iter().sum();
            point(
                Field::E2eSeconds,
                Value::Histogram(HistogramDelta {
                    bounds: BOUNDS.to_vec(),
                    counts,
                    sum: 0.0,
                    count,
                }),
                1,
            )
        }),
    ]
}

fn sketch_of(points: &[Point]) -> SeriesSketch {
    let mut sketch = SeriesSketch::default();
    for p in points {
        sketch.record(p);
    }
    sketch
}

/// Equality up to float summation order (sums of non-integer samples).
/// HyperLogLog registers and totals merge exactly. The heavy-hitter list is
/// exact only while it holds every hash: once it has overflowed its capacity
/// (the sketch is no longer exact, even when the Misra-Gries reduction left
/// fewer than CAPACITY entries), summaries merged in another order may keep a
/// different hash among those near the cut (the guarantees there are tested
/// in `sketch_accuracy.rs`).
fn assert_prefix_equivalent(a: &PrefixSketch, b: &PrefixSketch) {
    assert_eq!(a.hll(), b.hll());
    assert_eq!(a.total(), b.total());
    if b.frequency_sketch().is_exact() {
        assert!(b.top(usize::MAX).len() <= HEAVY_HITTER_CAPACITY);
        assert_eq!(a, b);
    }
}

fn assert_equivalent(a: &SeriesSketch, b: &SeriesSketch) {
    let fa: Vec<_> = a.fields().collect();
    let fb: Vec<_> = b.fields().collect();
    assert_eq!(fa.len(), fb.len());
    for ((ka, sa), (kb, sb)) in fa.iter().zip(&fb) {
        assert_eq!(ka, kb);
        match (sa.as_distribution(), sb.as_distribution()) {
            (Some(da), Some(db)) => {
                assert_eq!(da.samples.count(), db.samples.count());
                assert_eq!(da.buckets, db.buckets);
                for q in [0.0, 0.25, 0.5, 0.9, 0.99, 1.0] {
                    assert_eq!(da.samples.quantile(q), db.samples.quantile(q), "q={q}");
                }
                assert!(
                    (da.samples.sum() - db.samples.sum()).abs()
                        <= 1e-6 * (1.0 + da.samples.sum().abs())
                );
            }
            _ => match (sa.as_prefix(), sb.as_prefix()) {
                (Some(pa), Some(pb)) => assert_prefix_equivalent(pa, pb),
                _ => assert_eq!(sa, sb),
            },
        }
    }
    assert_eq!(a.rejected_points(), b.rejected_points());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn merging_partials_equals_sketching_the_union(
        points in proptest::collection::vec(value_strategy(), 0..400),
        parts in 1usize..6,
    ) {
        let whole = sketch_of(&points);
        let mut merged = SeriesSketch::default();
        for chunk in points.chunks(points.len().div_ceil(parts).max(1)) {
            merged.merge(&sketch_of(chunk)).unwrap();
        }
        assert_equivalent(&merged, &whole);
    }

    #[test]
    fn merge_is_commutative(
        a in proptest::collection::vec(value_strategy(), 0..200),
        b in proptest::collection::vec(value_strategy(), 0..200),
    ) {
        let (sa, sb) = (sketch_of(&a), sketch_of(&b));
        let mut ab = sa.clone();
        ab.merge(&sb).unwrap();
        let mut ba = sb.clone();
        ba.merge(&sa).unwrap();
        assert_equivalent(&ab, &ba);
    }

    #[test]
    fn encode_decode_round_trips(points in proptest::collection::vec(value_strategy(), 0..300)) {
        let sketch = sketch_of(&points);
        let bytes = sketch.encode();
        let decoded = SeriesSketch::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &sketch);
        prop_assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn quantiles_stay_within_the_relative_error_guarantee(
        values in proptest::collection::vec(1e-6f64..1e6, 1..2000),
        parts in 1usize..8,
        q in 0.0f64..=1.0,
    ) {
        let mut merged = QuantileSketch::default();
        for chunk in values.chunks(values.len().div_ceil(parts)) {
            let mut partial = QuantileSketch::default();
            for v in chunk {
                partial.add(*v);
            }
            merged.merge(&partial);
        }
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
        let estimate = merged.quantile(q).unwrap();
        // A hair above alpha for float rounding at bucket edges.
        prop_assert!((estimate - exact).abs() <= (RELATIVE_ACCURACY + 1e-9) * exact,
            "q={} estimate={} exact={}", q, estimate, exact);
    }

    #[test]
    fn hll_registers_of_merged_partials_equal_the_union(
        items in proptest::collection::vec(any::<u64>(), 0..5000),
        parts in 1usize..6,
    ) {
        let mut whole = PrefixSketch::default();
        for i in &items {
            whole.add(*i);
        }
        let mut merged = PrefixSketch::default();
        for chunk in items.chunks(items.len().div_ceil(parts).max(1)) {
            let mut partial = PrefixSketch::default();
            for i in chunk {
                partial.add(*i);
            }
            merged.merge(&partial);
        }
        prop_assert_eq!(merged.hll().register_values(), whole.hll().register_values());
        prop_assert_eq!(merged.total(), whole.total());
        prop_assert_eq!(merged.distinct(), whole.distinct());
    }

    #[test]
    fn decode_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = SeriesSketch::decode(&bytes);
    }

    #[test]
    fn decode_never_panics_on_mutated_valid_encodings(
        points in proptest::collection::vec(value_strategy(), 1..100),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = sketch_of(&points).encode();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        if let Ok(decoded) = SeriesSketch::decode(&bytes) {
            // Whatever decodes must be usable: query it and re-encode it.
            for (_, field) in decoded.fields() {
                let _ = field.summary();
                if let Some(p) = field.as_prefix() {
                    let _ = (p.distinct(), p.top(10));
                }
            }
            prop_assert!(SeriesSketch::decode(&decoded.encode()).is_ok());
        }
        let truncated = &bytes[..cut.index(bytes.len())];
        let _ = SeriesSketch::decode(truncated);
    }
}
