//! Bucket-vector quantiles must equal Prometheus `histogram_quantile` on the
//! same buckets. Expected values are worked by hand from promql/quantile.go
//! (`bucketQuantile`), shown in the comments.

use signal_aggregator::signal::{Field, FieldKey, HistogramDelta, Point, Value};
use signal_aggregator::sketch::histogram::prometheus_quantile;
use signal_aggregator::sketch::{DistributionSource, HistogramSketch, SeriesSketch};

fn delta(bounds: &[f64], counts: &[u64]) -> HistogramDelta {
    HistogramDelta {
        bounds: bounds.to_vec(),
        counts: counts.to_vec(),
        sum: 0.0,
        count: counts.iter().sum(),
    }
}

fn sketch(bounds: &[f64], counts: &[u64]) -> HistogramSketch {
    let mut s = HistogramSketch::default();
    s.add(&delta(bounds, counts));
    s
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

// vLLM-like TTFT buckets, counts per bucket (not cumulative): le=0.1:10,
// 0.25:20, 0.5:30, 1:40, +Inf:0. Cumulative 10, 30, 60, 100, 100.
const BOUNDS: [f64; 4] = [0.1, 0.25, 0.5, 1.0];
const COUNTS: [u64; 5] = [10, 20, 30, 40, 0];

#[test]
fn interpolates_linearly_inside_the_bucket_holding_the_rank() {
    let s = sketch(&BOUNDS, &COUNTS);
    // q=0.5: rank 50 → bucket le=0.5 (cum 60); 0.25 + 0.25 * (50-30)/30.
    assert!(close(s.quantile(0.5).unwrap(), 0.25 + 0.25 * (20.0 / 30.0)));
    // q=0.99: rank 99 → bucket le=1 (cum 100); 0.5 + 0.5 * (99-60)/40 = 0.9875.
    assert!(close(s.quantile(0.99).unwrap(), 0.9875));
    // q=0.9: rank 90 → le=1; 0.5 + 0.5 * 30/40 = 0.875.
    assert!(close(s.quantile(0.9).unwrap(), 0.875));
}

#[test]
fn lowest_bucket_starts_at_zero_when_its_bound_is_positive() {
    let s = sketch(&BOUNDS, &COUNTS);
    // q=0.05: rank 5 → le=0.1; 0 + 0.1 * 5/10 = 0.05.
    assert!(close(s.quantile(0.05).unwrap(), 0.05));
    // q=0.1: rank 10 → cum 10 >= 10 → still the first bucket: 0.1.
    assert!(close(s.quantile(0.1).unwrap(), 0.1));
}

#[test]
fn rank_in_the_inf_bucket_returns_the_highest_finite_bound() {
    // le=0.1:10, 0.25:0, 0.5:0, 1:0, +Inf:90 → q=0.5, rank 50 is past every
    // finite bucket → 1.0 (the upper bound of the second-highest bucket).
    let s = sketch(&BOUNDS, &[10, 0, 0, 0, 90]);
    assert_eq!(s.quantile(0.5), Some(1.0));
    assert_eq!(s.quantile(0.99), Some(1.0));
}

#[test]
fn non_positive_lowest_bound_is_returned_as_is() {
    // le=-1:5, 0:5, 1:5, +Inf:5. q=0.1: rank 2 in the first bucket whose
    // bound ≤ 0 → -1. q=0.5: rank 10 → le=0 (cum 10); -1 + 1 * 5/5 = 0.
    let s = sketch(&[-1.0, 0.0, 1.0], &[5, 5, 5, 5]);
    assert_eq!(s.quantile(0.1), Some(-1.0));
    assert!(close(s.quantile(0.5).unwrap(), 0.0));
    // q=0.6: rank 12 → le=1 (cum 15); 0 + 1 * (12-10)/5 = 0.4.
    assert!(close(s.quantile(0.6).unwrap(), 0.4));
}

#[test]
fn out_of_range_and_empty_cases_follow_prometheus() {
    assert_eq!(
        prometheus_quantile(-0.1, &BOUNDS, &[1.0; 5]),
        f64::NEG_INFINITY
    );
    assert_eq!(prometheus_quantile(1.1, &BOUNDS, &[1.0; 5]), f64::INFINITY);
    assert!(prometheus_quantile(f64::NAN, &BOUNDS, &[1.0; 5]).is_nan());
    // No observations → NaN; only a +Inf bucket → NaN.
    assert!(prometheus_quantile(0.5, &BOUNDS, &[0.0; 5]).is_nan());
    assert!(prometheus_quantile(0.5, &[], &[3.0]).is_nan());
    assert_eq!(HistogramSketch::default().quantile(0.5), None);
}

#[test]
fn quantiles_zero_and_one_are_answered_not_clamped_to_infinity() {
    // Cumulative 10, 30, 60, 100, 100 (every observation finite).
    // q=0: rank 0 → first bucket (cum 10 ≥ 0); 0 + 0.1 * 0/10 = 0.
    assert_eq!(
        prometheus_quantile(0.0, &BOUNDS, &COUNTS.map(|c| c as f64)),
        0.0
    );
    // q=1: rank 100 → le=1 (first cum ≥ 100); 0.5 + 0.5 * 40/40 = 1.
    assert_eq!(
        prometheus_quantile(1.0, &BOUNDS, &COUNTS.map(|c| c as f64)),
        1.0
    );
    let s = sketch(&BOUNDS, &COUNTS);
    assert_eq!(s.quantile(0.0), Some(0.0));
    assert_eq!(s.quantile(1.0), Some(1.0));
}

#[test]
fn a_rank_on_a_bucket_boundary_belongs_to_the_bucket_that_reaches_it() {
    // Prometheus takes the first bucket whose cumulative count is ≥ the rank.
    // le=0.1:10, 0.25:0, 0.5:30, 1:0, +Inf:0; cumulative 10, 10, 40, 40, 40.
    // q=0.25: rank 10 → le=0.1 (cum 10 ≥ 10); 0 + 0.1 * 10/10 = 0.1, not the
    // empty bucket after it (0.25) and not the one after that.
    let counts = [10.0, 0.0, 30.0, 0.0, 0.0];
    assert_eq!(prometheus_quantile(0.25, &BOUNDS, &counts), 0.1);
    // Everything in the first bucket: q=1, rank 10 → le=0.1 → 0.1, not the
    // highest finite bound (1.0) that the +Inf bucket would answer.
    assert_eq!(
        prometheus_quantile(1.0, &BOUNDS, &[10.0, 0.0, 0.0, 0.0, 0.0]),
        0.1
    );
}

#[test]
fn a_lowest_bound_of_exactly_zero_is_returned_as_is() {
    // le=0:0, 1:4, +Inf:0. q=0: rank 0 lands in the first bucket, whose bound
    // 0 is ≤ 0 → 0 (interpolating would divide 0 by its empty count: NaN).
    assert_eq!(prometheus_quantile(0.0, &[0.0, 1.0], &[0.0, 4.0, 0.0]), 0.0);
    // q=0.5: rank 2 → le=1 (cum 4); 0 + 1 * 2/4 = 0.5.
    assert_eq!(prometheus_quantile(0.5, &[0.0, 1.0], &[0.0, 4.0, 0.0]), 0.5);
}

#[test]
fn same_bounds_merge_by_adding_counts_exactly() {
    let mut a = sketch(&BOUNDS, &[1, 2, 3, 4, 5]);
    a.merge(&sketch(&BOUNDS, &[10, 20, 30, 40, 50]));
    assert_eq!(a, sketch(&BOUNDS, &[11, 22, 33, 44, 55]));
    assert_eq!(a.layouts(), 1);
    assert_eq!(a.count(), 165);
}

#[test]
fn different_bounds_are_kept_apart_and_answered_on_the_union_of_bounds() {
    let mut a = sketch(&[1.0, 2.0], &[10, 10, 0]);
    a.merge(&sketch(&[1.5], &[0, 20]));
    assert_eq!(a.layouts(), 2);
    let (bounds, counts) = a.buckets();
    assert_eq!(bounds, vec![1.0, 1.5, 2.0]);
    // First layout: (0,1]:10, (1,2]:10 split 5/5 at 1.5; second layout's
    // 20 all sit above 1.5, just past the last bound → bucket (1.5, 2].
    assert_eq!(counts, vec![10.0, 5.0, 25.0, 0.0]);
    let mut b = sketch(&[1.5], &[0, 20]);
    b.merge(&sketch(&[1.0, 2.0], &[10, 10, 0]));
    assert_eq!(a, b, "layout order must not depend on merge order");
}

#[test]
fn a_fifth_layout_is_folded_into_the_largest() {
    let mut s = HistogramSketch::default();
    for (i, weight) in [(1, 100u64), (2, 5), (3, 5), (4, 5), (5, 1)] {
        s.add(&delta(&[f64::from(i)], &[weight, 0]));
    }
    assert_eq!(s.layouts(), 4);
    assert_eq!(s.count(), 116);
}

#[test]
fn series_distribution_prefers_samples_and_falls_back_to_buckets() {
    let field = FieldKey::plain(Field::TtftSeconds);
    let mut series = SeriesSketch::default();
    series.record(&Point {
        field: field.clone(),
        time_unix_nano: 1,
        value: Value::Histogram(delta(&BOUNDS, &COUNTS)),
    });
    let from_buckets = series.summary(Field::TtftSeconds).unwrap();
    assert_eq!(from_buckets.source, DistributionSource::Buckets);
    assert_eq!(from_buckets.count, 100);
    assert!(close(from_buckets.p99, 0.9875));
    for v in [0.2, 0.3, 0.4] {
        series.record(&Point {
            field: field.clone(),
            time_unix_nano: 1,
            value: Value::Sample(v),
        });
    }
    let from_samples = series.summary(Field::TtftSeconds).unwrap();
    assert_eq!(from_samples.source, DistributionSource::Samples);
    assert_eq!(from_samples.count, 3);
    assert!((from_samples.p50 - 0.3).abs() <= 0.003);
}

#[test]
fn malformed_histograms_are_rejected_not_stored() {
    let mut series = SeriesSketch::default();
    for bad in [
        delta(&[1.0, 2.0], &[1, 2]),              // counts != bounds + 1
        delta(&[2.0, 1.0], &[1, 2, 3]),           // descending
        delta(&[1.0, f64::INFINITY], &[1, 2, 3]), // explicit +Inf
    ] {
        series.record(&Point {
            field: FieldKey::plain(Field::E2eSeconds),
            time_unix_nano: 1,
            value: Value::Histogram(bad),
        });
    }
    assert_eq!(series.rejected_points(), 3);
    assert!(series.is_empty());
}
