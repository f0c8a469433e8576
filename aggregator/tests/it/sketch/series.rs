//! Series sketches: field selection by value type, windows and roll-up,
//! versioned encoding, prefix overlap and memory of typical series.

use signal_aggregator::signal::{
    DIM_SKU, Field, FieldKey, Point, SeriesKey, SeriesPoints, SignalBatch, SignalKind, Value,
};
use signal_aggregator::sketch::{
    ENCODING_VERSION, PrefixSketch, Resolution, SeriesSketch, SketchError, Window, WindowedSketch,
    roll_up, sketch_batch, sketch_batch_at,
};

const NOW: u64 = 1_790_000_000; // 2026-09-21T...
const NANOS: u64 = 1_000_000_000;

fn key(cluster: &str) -> SeriesKey {
    SeriesKey {
        tenant: "team-a".into(),
        cluster: cluster.into(),
        model: "llama-3-8b".into(),
        kind: SignalKind::RequestLifecycle,
    }
}

fn point(field: Field, value: Value, secs: u64) -> Point {
    Point {
        field: FieldKey::plain(field),
        time_unix_nano: secs * NANOS,
        value,
    }
}

#[test]
fn windows_align_to_minutes_and_hours() {
    let w = Window::minute_containing(3_725);
    assert_eq!(w.start_unix_secs, 3_720);
    assert_eq!(w.end_unix_secs(), 3_780);
    assert!(w.contains(3_779) && !w.contains(3_780));
    assert_eq!(w.hour(), Window::hour_containing(3_725));
    assert_eq!(w.hour().start_unix_secs, 3_600);
    assert_eq!(w.hour().resolution, Resolution::Hour);
    assert!(w.overlaps(3_700, 3_721) && !w.overlaps(3_780, 4_000));
}

#[test]
fn sketch_batch_groups_points_by_series_and_minute() {
    let batch = SignalBatch {
        series: vec![
            SeriesPoints {
                key: key("eu-west-1"),
                points: vec![
                    point(Field::Requests, Value::Counter(3.0), NOW - 130),
                    point(Field::Requests, Value::Counter(4.0), NOW - 125),
                    point(Field::TtftSeconds, Value::Sample(0.2), NOW - 10),
                ],
            },
            SeriesPoints {
                key: key("us-east-1"),
                points: vec![point(Field::Requests, Value::Counter(1.0), NOW - 10)],
            },
            // The same series again in one batch lands in the same sketch.
            SeriesPoints {
                key: key("eu-west-1"),
                points: vec![point(Field::Requests, Value::Counter(5.0), NOW - 11)],
            },
        ],
    };
    let out = sketch_batch_at(&batch, NOW);
    assert_eq!(out.len(), 3);
    let find = |cluster: &str, window: Window| {
        out.iter()
            .find(|w| w.key.cluster == cluster && w.window == window)
            .unwrap_or_else(|| panic!("{cluster} {window:?} missing"))
    };
    let early = find("eu-west-1", Window::minute_containing(NOW - 130));
    assert_eq!(early.sketch.counter_sum(Field::Requests), Some(7.0));
    assert_eq!(
        early
            .sketch
            .field(&FieldKey::plain(Field::Requests))
            .unwrap()
            .as_counter()
            .unwrap()
            .reports,
        2
    );
    let late = find("eu-west-1", Window::minute_containing(NOW - 10));
    assert_eq!(late.sketch.counter_sum(Field::Requests), Some(5.0));
    assert_eq!(late.sketch.summary(Field::TtftSeconds).unwrap().count, 1);
    assert_eq!(
        find("us-east-1", Window::minute_containing(NOW - 10))
            .sketch
            .counter_sum(Field::Requests),
        Some(1.0)
    );
}

#[test]
fn missing_or_absurd_timestamps_are_filed_under_the_arrival_minute() {
    let series = SeriesPoints {
        key: key("c"),
        points: vec![
            Point {
                field: FieldKey::plain(Field::Requests),
                time_unix_nano: 0,
                value: Value::Counter(1.0),
            },
            point(Field::Requests, Value::Counter(1.0), NOW + 3_600), // an hour ahead
            point(Field::Requests, Value::Counter(1.0), 1_000),       // 1970
            point(Field::Requests, Value::Counter(1.0), NOW + 60),    // small skew is kept
        ],
    };
    let out = sketch_batch_at(
        &SignalBatch {
            series: vec![series],
        },
        NOW,
    );
    let now_window = out
        .iter()
        .find(|w| w.window == Window::minute_containing(NOW))
        .unwrap();
    assert_eq!(now_window.sketch.counter_sum(Field::Requests), Some(3.0));
    assert!(
        out.iter()
            .any(|w| w.window == Window::minute_containing(NOW + 60))
    );
    // The wall-clock variant files a timeless point under the current minute.
    let live = sketch_batch(&SignalBatch {
        series: vec![SeriesPoints {
            key: key("c"),
            points: vec![Point {
                field: FieldKey::plain(Field::Requests),
                time_unix_nano: 0,
                value: Value::Counter(1.0),
            }],
        }],
    });
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(live[0].window.start_unix_secs + 120 >= wall);
}

#[test]
fn minute_windows_roll_up_into_their_hour() {
    let hour = Window::hour_containing(NOW);
    let minutes: Vec<WindowedSketch> = (0..3)
        .map(|i| {
            let mut sketch = SeriesSketch::default();
            sketch.record(&point(Field::Requests, Value::Counter(10.0), 0));
            sketch.record(&point(
                Field::QueueDepth,
                Value::Gauge(f64::from(i)),
                hour.start_unix_secs + i as u64 * 60,
            ));
            WindowedSketch {
                key: key("c"),
                window: Window::minute_containing(hour.start_unix_secs + i as u64 * 60),
                sketch,
            }
        })
        .collect();
    let hours = roll_up(minutes).unwrap();
    assert_eq!(hours.len(), 1);
    assert_eq!(hours[0].window, hour);
    assert_eq!(hours[0].sketch.counter_sum(Field::Requests), Some(30.0));
    let gauge = hours[0].sketch.gauge(Field::QueueDepth).unwrap();
    assert_eq!(
        (gauge.last, gauge.min, gauge.max, gauge.mean()),
        (2.0, 0.0, 2.0, Some(1.0))
    );
}

#[test]
fn gauges_keep_the_latest_reading_by_time_not_by_arrival() {
    let mut s = SeriesSketch::default();
    s.record(&point(Field::KvCacheUtilization, Value::Gauge(0.9), 200));
    s.record(&point(Field::KvCacheUtilization, Value::Gauge(0.1), 100));
    assert_eq!(s.gauge(Field::KvCacheUtilization).unwrap().last, 0.9);
}

#[test]
fn points_of_the_wrong_type_or_non_finite_are_counted_not_recorded() {
    let mut s = SeriesSketch::default();
    s.record(&point(Field::Requests, Value::Counter(1.0), 1));
    s.record(&point(Field::Requests, Value::Gauge(5.0), 1));
    s.record(&point(Field::Requests, Value::Counter(f64::NAN), 1));
    s.record(&point(Field::TtftSeconds, Value::Sample(f64::INFINITY), 1));
    assert_eq!(s.counter_sum(Field::Requests), Some(1.0));
    assert_eq!(s.rejected_points(), 3);
    assert!(s.field(&FieldKey::plain(Field::TtftSeconds)).is_none());
}

#[test]
fn merging_conflicting_field_types_is_deterministic_and_counted() {
    let mut a = SeriesSketch::default();
    a.record(&point(Field::QueueDepth, Value::Gauge(3.0), 1));
    let mut b = SeriesSketch::default();
    b.record(&point(Field::QueueDepth, Value::Counter(1.0), 1));
    b.record(&point(Field::QueueDepth, Value::Counter(1.0), 1));
    let mut ab = a.clone();
    ab.merge(&b).unwrap();
    let mut ba = b.clone();
    ba.merge(&a).unwrap();
    assert_eq!(ab, ba);
    assert_eq!(ab.counter_sum(Field::QueueDepth), Some(2.0));
    assert_eq!(ab.rejected_points(), 1);
}

#[test]
fn dimensions_make_separate_fields() {
    let mut s = SeriesSketch::default();
    for (sku, gpus) in [("H100", 8.0), ("A100", 4.0), ("H100", 8.0)] {
        s.record(&Point {
            field: FieldKey::with_dim(Field::Gpus, DIM_SKU, sku),
            time_unix_nano: 1,
            value: Value::Gauge(gpus),
        });
    }
    let by_sku: Vec<(String, u64)> = s
        .fields_named(Field::Gpus)
        .map(|(k, f)| (k.dims[DIM_SKU].clone(), f.as_gauge().unwrap().count))
        .collect();
    assert_eq!(by_sku, vec![("A100".into(), 1), ("H100".into(), 2)]);
    let decoded = SeriesSketch::decode(&s.encode()).unwrap();
    assert_eq!(decoded, s);
}

#[test]
fn encoding_starts_with_the_version_and_rejects_others() {
    let mut s = SeriesSketch::default();
    s.record(&point(Field::Requests, Value::Counter(1.0), 1));
    let mut bytes = s.encode();
    assert_eq!(bytes[0], ENCODING_VERSION);
    bytes[0] = 99;
    assert_eq!(
        SeriesSketch::decode(&bytes),
        Err(SketchError::UnsupportedVersion(99))
    );
    assert!(matches!(
        SeriesSketch::decode(&[]),
        Err(SketchError::Corrupt(_))
    ));
    let mut trailing = s.encode();
    trailing.push(0);
    assert!(matches!(
        SeriesSketch::decode(&trailing),
        Err(SketchError::Corrupt(_))
    ));
    assert_eq!(
        SeriesSketch::decode(&SeriesSketch::default().encode()),
        Ok(SeriesSketch::default())
    );
}

#[test]
fn every_field_name_round_trips_through_the_encoding() {
    let fields = [
        Field::Requests,
        Field::Errors,
        Field::InputTokens,
        Field::OutputTokens,
        Field::TtftSeconds,
        Field::TpotSeconds,
        Field::E2eSeconds,
        Field::QueueSeconds,
        Field::PrefixCacheQueries,
        Field::PrefixCacheHits,
        Field::QueueDepth,
        Field::RunningRequests,
        Field::PrefixHashes,
        Field::Gpus,
        Field::GpusAllocated,
        Field::GpuUtilization,
        Field::KvCacheUtilization,
        Field::ReplicasActive,
        Field::ReplicasStarting,
        Field::CacheBytesStaged,
        Field::PhaseSeconds,
        Field::LaunchAttempts,
        Field::LaunchSuccesses,
        Field::LaunchFailures,
        Field::UnexpectedExits,
        Field::Unloads,
        Field::UptimeSeconds,
        Field::ContextLength,
        Field::LoadedModels,
        Field::GpuSeconds,
        Field::PricePerGpuHour,
        Field::Failures,
    ];
    let mut s = SeriesSketch::default();
    for f in fields {
        s.record(&point(f, Value::Counter(1.0), 1));
    }
    let decoded = SeriesSketch::decode(&s.encode()).unwrap();
    assert_eq!(decoded.fields().count(), fields.len());
    assert_eq!(decoded, s);
}

#[test]
fn prefix_overlap_estimates_union_intersection_and_shared_top() {
    let mut east = PrefixSketch::default();
    let mut west = PrefixSketch::default();
    // 0..60k in the east, 40k..100k in the west: 20k shared, 100k in the union.
    for h in 0..60_000u64 {
        east.add(h);
    }
    for h in 40_000..100_000u64 {
        west.add(h);
    }
    // A hot system prompt shared by both and one hot prefix each.
    for _ in 0..5_000 {
        east.add(7);
        west.add(7);
        east.add(50_000);
        west.add(50_000);
        east.add(1);
        west.add(99_999);
    }
    let overlap = east.overlap(&west, 10);
    let within = |est: f64, exact: f64, tol: f64| (est - exact).abs() <= tol * exact;
    assert!(
        within(overlap.distinct_union, 100_000.0, 0.03),
        "{overlap:?}"
    );
    assert!(
        within(overlap.distinct_intersection, 20_000.0, 0.15),
        "{overlap:?}"
    );
    assert!(within(overlap.jaccard, 0.2, 0.15), "{overlap:?}");
    let shared: Vec<u64> = overlap.shared_top.iter().map(|s| s.hash).collect();
    assert!(shared.contains(&50_000), "{shared:?}");
    assert!(
        !shared.contains(&1) && !shared.contains(&99_999),
        "{shared:?}"
    );
    // Disjoint sketches: inclusion-exclusion error scales with the union (70k),
    // and the estimate is clamped at zero rather than going negative.
    let mut other = PrefixSketch::default();
    for h in 1_000_000..1_010_000u64 {
        other.add(h);
    }
    assert!(east.overlap(&other, 10).distinct_intersection <= 0.03 * 70_000.0);
}

#[test]
fn small_series_stay_small_in_memory_and_on_the_wire() {
    // A busy RequestLifecycle minute: 1,000 requests with four latencies each.
    let mut lifecycle = SeriesSketch::default();
    for i in 0..1_000u32 {
        let x = 1.0 + f64::from(i % 97) / 10.0;
        lifecycle.record(&point(Field::Requests, Value::Counter(1.0), 1));
        lifecycle.record(&point(Field::InputTokens, Value::Counter(512.0), 1));
        lifecycle.record(&point(Field::OutputTokens, Value::Counter(128.0), 1));
        lifecycle.record(&point(Field::TtftSeconds, Value::Sample(0.05 * x), 1));
        lifecycle.record(&point(Field::TpotSeconds, Value::Sample(0.01 * x), 1));
        lifecycle.record(&point(Field::E2eSeconds, Value::Sample(2.0 * x), 1));
        lifecycle.record(&point(Field::QueueSeconds, Value::Sample(0.002 * x), 1));
        lifecycle.record(&point(Field::QueueDepth, Value::Gauge(f64::from(i % 7)), 1));
    }
    assert!(
        lifecycle.heap_bytes() < 16 * 1024,
        "{}",
        lifecycle.heap_bytes()
    );
    assert!(
        lifecycle.encode().len() < 4 * 1024,
        "{}",
        lifecycle.encode().len()
    );

    // A PrefixHash series with a handful of hashes never allocates HLL-dense
    // registers or the Count-Min table.
    let mut prefix = SeriesSketch::default();
    for h in 0..50u64 {
        prefix.record(&point(Field::PrefixHashes, Value::PrefixHash(h), 1));
    }
    let p = prefix.prefix(Field::PrefixHashes).unwrap();
    assert!(!p.hll().is_dense() && p.frequency_sketch().is_exact());
    assert!(prefix.heap_bytes() < 4 * 1024, "{}", prefix.heap_bytes());
    assert_eq!(p.frequency(3), 1);
    assert_eq!(p.distinct().round(), 50.0);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A one-field series whose TTFT sketch holds `count` samples of 1.0, written
/// byte by byte (counts this large cannot be recorded in a test's time).
fn encoded_huge_ttft(count: u64) -> Vec<u8> {
    encoded_ttft(count, count)
}

fn encoded_ttft(count: u64, bucket: u64) -> Vec<u8> {
    let mut b = vec![ENCODING_VERSION, 0, 1];
    let name = b"ttft_seconds";
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b.push(0); // no dims
    b.push(1); // distribution
    varint(&mut b, count);
    b.extend_from_slice(&(count as f64).to_le_bytes()); // sum
    b.extend_from_slice(&1.0f64.to_le_bytes()); // min
    b.extend_from_slice(&1.0f64.to_le_bytes()); // max
    b.push(0); // zero bucket
    b.push(0); // positive offset 0 (zigzag), the bucket holding 1.0
    b.push(1);
    varint(&mut b, bucket);
    b.extend_from_slice(&[0, 0]); // empty negative store
    b.push(0); // no histogram layouts
    b
}

#[test]
fn bucket_counts_widen_past_u32_without_losing_counts() {
    let huge = SeriesSketch::decode(&encoded_huge_ttft(5_000_000_000)).unwrap();
    let mut small = SeriesSketch::default();
    small.record(&point(Field::TtftSeconds, Value::Sample(1.0), 1));
    small.record(&point(Field::TtftSeconds, Value::Sample(2.0), 1));
    let mut a = small.clone();
    a.merge(&huge).unwrap();
    let mut b = huge.clone();
    b.merge(&small).unwrap();
    let summary = a.summary(Field::TtftSeconds).unwrap();
    assert_eq!(summary.count, 5_000_000_002);
    assert!((summary.p99 - 1.0).abs() <= 0.01);
    assert_eq!(a.encode(), b.encode());
    assert_eq!(SeriesSketch::decode(&a.encode()).unwrap(), a);
    // Bucket counts must add up to the sample count, at either width.
    assert!(SeriesSketch::decode(&encoded_ttft(1, 5_000_000_000)).is_err());
    assert!(SeriesSketch::decode(&encoded_ttft(5_000_000_000, 1)).is_err());
    assert!(SeriesSketch::decode(&encoded_ttft(7, 7)).is_ok());
}
