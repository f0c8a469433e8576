//! [`SeriesSketch::merge_encoded`] against the path it replaces on reads,
//! `merge(&decode(bytes)?)`: the same sketch on valid input (compared with
//! `==` and byte for byte through `encode`), and an error exactly where decode
//! errs on damaged input, never a panic.

use proptest::prelude::*;

use super::codec::Writer;
use super::*;
use crate::signal::{DIM_SKU, HistogramDelta};

const BOUNDS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];

fn point(field: FieldKey, value: Value, time_unix_nano: u64) -> Point {
    Point {
        field,
        time_unix_nano,
        value,
    }
}

fn plain(field: Field, value: Value) -> Point {
    point(FieldKey::plain(field), value, 1)
}

/// Values of every sketch type, several fields that receive two types across
/// frames (so merges hit the type-conflict rule), and dimensioned fields.
fn point_strategy() -> impl Strategy<Value = Point> {
    prop_oneof![
        (1e-4f64..100.0).prop_map(|v| plain(Field::TtftSeconds, Value::Sample(v))),
        (1e-3f64..1e4).prop_map(|v| plain(Field::E2eSeconds, Value::Sample(v))),
        (-5.0f64..5.0).prop_map(|v| plain(Field::QueueSeconds, Value::Sample(v))),
        Just(plain(Field::QueueSeconds, Value::Sample(0.0))),
        (0u32..1000).prop_map(|v| plain(Field::Requests, Value::Counter(f64::from(v)))),
        (0u32..1000).prop_map(|v| plain(Field::TtftSeconds, Value::Counter(f64::from(v)))),
        (0u32..1000, 1u64..1000).prop_map(|(v, t)| point(
            FieldKey::plain(Field::QueueDepth),
            Value::Gauge(f64::from(v)),
            t
        )),
        (0u32..1000).prop_map(|v| plain(Field::Requests, Value::Gauge(f64::from(v)))),
        (0u64..300).prop_map(|h| plain(Field::PrefixHashes, Value::PrefixHash(h))),
        any::<u64>().prop_map(|h| plain(Field::PrefixHashes, Value::PrefixHash(h))),
        proptest::collection::vec(0u64..50, 5).prop_map(|counts| {
            let count = counts.iter().sum();
            plain(
                Field::E2eSeconds,
                Value::Histogram(HistogramDelta {
                    bounds: BOUNDS.to_vec(),
                    counts,
                    sum: 0.0,
                    count,
                }),
            )
        }),
        (prop::sample::select(vec!["A100", "H100", "L4"]), 0u32..64).prop_map(|(sku, v)| point(
            FieldKey::with_dim(Field::Gpus, DIM_SKU, sku),
            Value::Gauge(f64::from(v)),
            1
        )),
    ]
}

fn sketch_of(points: &[Point]) -> SeriesSketch {
    let mut sketch = SeriesSketch::default();
    for p in points {
        sketch.record(p);
    }
    sketch
}

fn frames_strategy() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(point_strategy(), 0..80), 1..6)
        .prop_map(|frames| frames.iter().map(|p| sketch_of(p).encode()).collect())
}

fn decode_then_merge(into: &SeriesSketch, frames: &[Vec<u8>]) -> SeriesSketch {
    let mut merged = into.clone();
    for frame in frames {
        merged.merge(&SeriesSketch::decode(frame).unwrap()).unwrap();
    }
    merged
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn merging_encoded_frames_equals_decoding_then_merging(
        start in proptest::collection::vec(point_strategy(), 0..80),
        frames in frames_strategy(),
    ) {
        let start = sketch_of(&start);
        let expected = decode_then_merge(&start, &frames);
        let mut merged = start.clone();
        for frame in &frames {
            merged.merge_encoded(frame).unwrap();
        }
        prop_assert_eq!(&merged, &expected);
        prop_assert_eq!(merged.encode(), expected.encode());
    }

    #[test]
    fn damaged_frames_fail_exactly_where_decode_fails(
        start in proptest::collection::vec(point_strategy(), 0..40),
        points in proptest::collection::vec(point_strategy(), 1..80),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let start = sketch_of(&start);
        let mut bytes = sketch_of(&points).encode();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= byte;
        }
        let cut = cut.index(bytes.len() + 1);
        for damaged in [&bytes[..], &bytes[..cut]] {
            let mut merged = start.clone();
            let result = merged.merge_encoded(damaged);
            match SeriesSketch::decode(damaged) {
                Ok(decoded) => {
                    prop_assert!(result.is_ok(), "decode accepted, merge_encoded refused: {:?}", result);
                    let mut expected = start.clone();
                    expected.merge(&decoded).unwrap();
                    prop_assert_eq!(&merged, &expected);
                }
                Err(_) => prop_assert!(result.is_err(), "decode refused, merge_encoded accepted"),
            }
        }
    }

    #[test]
    fn encoding_1_frames_read_and_merge_like_current_ones(
        start in proptest::collection::vec(point_strategy(), 0..80),
        frames in frames_strategy(),
    ) {
        let start = sketch_of(&start);
        let (mut from_old, mut from_new) = (start.clone(), start.clone());
        for frame in &frames {
            let sketch = SeriesSketch::decode(frame).unwrap();
            let old = sketch.encode_version(1).unwrap();
            prop_assert_eq!(old[0], 1);
            prop_assert!(old.len() >= frame.len(), "encoding 2 is never larger");
            prop_assert_eq!(&SeriesSketch::decode(&old).unwrap(), &sketch);
            from_old.merge_encoded(&old).unwrap();
            from_new.merge_encoded(frame).unwrap();
        }
        prop_assert_eq!(from_old.encode(), from_new.encode());
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut merged = sketch_of(&[plain(Field::TtftSeconds, Value::Sample(1.0))]);
        prop_assert_eq!(
            merged.merge_encoded(&bytes).is_ok(),
            SeriesSketch::decode(&bytes).is_ok()
        );
    }
}

/// A one-field series whose TTFT sketch holds `count` samples, `bucket` of
/// them in the bucket of 1.0 (counts past u32::MAX cannot be recorded in a
/// test's time).
fn ttft_frame(count: u64, bucket: u64) -> Vec<u8> {
    ttft_frame_version(ENCODING_VERSION, count, bucket)
}

fn ttft_frame_version(version: u8, count: u64, bucket: u64) -> Vec<u8> {
    ttft_frame_encoded(version, count, 0, bucket)
}

/// A one-sample TTFT frame whose positive bucket store starts at `offset`.
fn ttft_frame_at(offset: i64) -> Vec<u8> {
    ttft_frame_encoded(ENCODING_VERSION, 1, offset, 1)
}

/// A one-field series in encoding `version` whose TTFT sketch holds `count`
/// samples, `bucket` of them in one positive bucket at index `offset`.
fn ttft_frame_encoded(version: u8, count: u64, offset: i64, bucket: u64) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(version);
    w.varint(0);
    w.varint(1);
    w.str(Field::TtftSeconds.as_str());
    w.varint(0);
    w.u8(1); // distribution
    w.varint(count);
    w.f64(count as f64);
    w.f64(1.0);
    w.f64(1.0);
    w.varint(0); // zero bucket
    w.zigzag(offset); // positive store: one bucket (offset 0: the bucket of 1.0)
    w.varint(1);
    w.varint(bucket);
    w.zigzag(0); // empty negative store
    w.varint(0);
    w.varint(0); // no histogram layouts
    w.buf
}

#[test]
fn counts_past_u32_widen_as_decode_then_merge_does() {
    let small = sketch_of(&[
        plain(Field::TtftSeconds, Value::Sample(1.0)),
        plain(Field::TtftSeconds, Value::Sample(2.0)),
    ]);
    let huge = ttft_frame(5_000_000_000, 5_000_000_000);
    // Narrow accumulator, wide frame; then wide accumulator, narrow frames
    // whose sum crosses u32::MAX.
    let near_limit = ttft_frame(u64::from(u32::MAX) - 1, u64::from(u32::MAX) - 1);
    for (start, frames) in [
        (small.clone(), vec![huge.clone()]),
        (
            SeriesSketch::decode(&huge).unwrap(),
            vec![small.encode(), small.encode()],
        ),
        (small.clone(), vec![near_limit.clone(), near_limit]),
    ] {
        let expected = decode_then_merge(&start, &frames);
        let mut merged = start.clone();
        for frame in &frames {
            merged.merge_encoded(frame).unwrap();
        }
        assert_eq!(merged, expected);
        assert_eq!(merged.encode(), expected.encode());
    }
    let mut merged = small.clone();
    merged.merge_encoded(&huge).unwrap();
    assert_eq!(
        merged.summary(Field::TtftSeconds).unwrap().count,
        5_000_000_002
    );
}

/// Found by the `store_value` fuzz target: `offset + len` of a stored bucket
/// range overflowed i64 (a panic with overflow checks; without them the
/// wrapped sum passed the range check and the offset was truncated).
#[test]
fn bucket_offsets_near_the_ends_of_i64_are_corrupt_not_an_overflow() {
    let base = sketch_of(&[plain(Field::TtftSeconds, Value::Sample(1.0))]);
    for offset in [i64::MAX, i64::MAX - 1, i64::from(i32::MAX) + 1, i64::MIN] {
        let frame = ttft_frame_at(offset);
        assert!(
            matches!(SeriesSketch::decode(&frame), Err(SketchError::Corrupt(_))),
            "offset {offset}"
        );
        assert!(
            matches!(
                base.clone().merge_encoded(&frame),
                Err(SketchError::Corrupt(_))
            ),
            "offset {offset}"
        );
    }
    let mut merged = base.clone();
    merged.merge_encoded(&ttft_frame_at(0)).unwrap();
    assert_eq!(merged.summary(Field::TtftSeconds).unwrap().count, 2);
}

#[test]
fn inconsistent_bucket_counts_are_refused() {
    let mut merged = sketch_of(&[plain(Field::TtftSeconds, Value::Sample(1.0))]);
    for bad in [
        ttft_frame(1, 5_000_000_000), // a narrow sketch's bucket past u32::MAX
        ttft_frame(5_000_000_000, 1), // buckets short of the sample count
        ttft_frame(7, 8),
    ] {
        assert!(matches!(
            merged.clone().merge_encoded(&bad),
            Err(SketchError::Corrupt(_))
        ));
        assert!(SeriesSketch::decode(&bad).is_err());
    }
    merged.merge_encoded(&ttft_frame(7, 7)).unwrap();
    assert_eq!(merged.summary(Field::TtftSeconds).unwrap().count, 8);
}

#[test]
fn a_type_conflict_keeps_the_lower_tag_and_counts_the_other_side() {
    let counter = sketch_of(&[
        plain(Field::Requests, Value::Counter(3.0)),
        plain(Field::Requests, Value::Counter(4.0)),
    ]);
    let gauge = sketch_of(&[plain(Field::Requests, Value::Gauge(5.0))]);
    for (start, frame) in [(&counter, &gauge), (&gauge, &counter)] {
        let mut merged = start.clone();
        merged.merge_encoded(&frame.encode()).unwrap();
        // The counter (tag 2) wins over the gauge (tag 3) on both orders; the
        // gauge's one reading is counted as rejected.
        assert_eq!(merged.counter_sum(Field::Requests), Some(7.0));
        assert_eq!(merged.rejected_points(), 1);
    }
}

#[test]
fn a_hand_written_encoding_1_frame_still_reads() {
    let old = ttft_frame_version(1, 7, 7);
    let sketch = SeriesSketch::decode(&old).unwrap();
    assert_eq!(sketch.summary(Field::TtftSeconds).unwrap().count, 7);
    assert_eq!(sketch.encode_version(1).unwrap(), old);
    let mut merged = SeriesSketch::default();
    merged.merge_encoded(&old).unwrap();
    assert_eq!(merged, sketch);
}

#[test]
fn only_decoded_versions_can_be_written() {
    let sketch = sketch_of(&[plain(Field::TtftSeconds, Value::Sample(1.0))]);
    for version in [0, ENCODING_VERSION + 1] {
        assert_eq!(
            sketch.encode_version(version),
            Err(SketchError::UnsupportedVersion(version))
        );
    }
    assert_eq!(
        sketch.encode_version(ENCODING_VERSION).unwrap(),
        sketch.encode()
    );
}
