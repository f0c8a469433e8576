//! Sketch selection by measurement: the built-in sketches against the crate
//! candidates, on the same data and seeds as `tests/it/sketch/accuracy.rs`.
//!
//! `cargo bench -p signal-aggregator --bench sketches` prints an accuracy and
//! size table first, then criterion timings (insert, merge, encode/decode).
//! Results and the decision are recorded in `docs/benchmarks/sketch.md`.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use datasketches::common::SearchCriteria;
use datasketches::countmin::CountMinSketch;
use datasketches::frequencies::{ErrorType, FrequentItemsSketch};
use datasketches::hll::{HllSketch, HllType, HllUnion};
use datasketches::kll::{KllFloat, KllSketch};
use datasketches::tdigest::TDigestMut;
use hyperloglogplus::{HyperLogLog, HyperLogLogPlus};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};
use serde::Serialize;
use signal_aggregator::signal::{Field, FieldKey, Point, Value};
use signal_aggregator::sketch::{
    DistributionSketch, FieldSketch, PrefixSketch, QuantileSketch, SeriesSketch,
};
use sketches_ddsketch::{Config, DDSketch};

const PARTIALS: usize = 16;
const QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

fn lognormal_samples(n: usize) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let d = LogNormal::new(-1.6, 0.9).unwrap();
    (0..n).map(|_| d.sample(&mut rng)).collect()
}

fn distinct_items(n: u64) -> Vec<u64> {
    let offset: u64 = StdRng::seed_from_u64(0x5eed_0002).random();
    (0..n)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(offset))
        .collect()
}

fn zipf_items(n: usize) -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let z = Zipf::new(100_000.0, 1.1).unwrap();
    (0..n)
        .map(|_| xxhash_rust::xxh3::xxh3_64(&(z.sample(&mut rng) as u64).to_le_bytes()))
        .collect()
}

fn cbor_len(value: &impl Serialize) -> usize {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).unwrap();
    out.len()
}

/// Deterministic, serializable hasher for hyperloglogplus (its serde form
/// embeds the builder; `RandomState` would make replicas' sketches unmergeable).
#[derive(Clone, Serialize)]
struct FixedXxh3;

impl BuildHasher for FixedXxh3 {
    type Hasher = xxhash_rust::xxh3::Xxh3;
    fn build_hasher(&self) -> Self::Hasher {
        xxhash_rust::xxh3::Xxh3::with_seed(0x6d70_5f70_7265_6669)
    }
}

/// One quantile candidate: build, merge, query, size.
trait QuantileCandidate: Sized {
    const NAME: &'static str;
    fn empty() -> Self;
    fn add(&mut self, v: f64);
    fn merge(&mut self, other: &Self);
    fn quantile(&mut self, q: f64) -> f64;
    fn encoded_len(&mut self) -> usize;
}

impl QuantileCandidate for QuantileSketch {
    const NAME: &'static str = "built-in log-bucket (a=1%)";
    fn empty() -> Self {
        QuantileSketch::default()
    }
    fn add(&mut self, v: f64) {
        QuantileSketch::add(self, v);
    }
    fn merge(&mut self, other: &Self) {
        QuantileSketch::merge(self, other);
    }
    fn quantile(&mut self, q: f64) -> f64 {
        QuantileSketch::quantile(self, q).unwrap()
    }
    fn encoded_len(&mut self) -> usize {
        quantile_series(self).encode().len()
    }
}

/// The wire size of a quantile sketch as stored: a one-field series.
fn quantile_series(q: &QuantileSketch) -> SeriesSketch {
    SeriesSketch::from_fields([(
        FieldKey::plain(Field::TtftSeconds),
        FieldSketch::Distribution(Box::new(DistributionSketch {
            samples: q.clone(),
            buckets: Default::default(),
        })),
    )])
}

impl QuantileCandidate for DDSketch {
    const NAME: &'static str = "sketches-ddsketch 0.4 (a=1%)";
    fn empty() -> Self {
        DDSketch::new(Config::defaults())
    }
    fn add(&mut self, v: f64) {
        DDSketch::add(self, v);
    }
    fn merge(&mut self, other: &Self) {
        DDSketch::merge(self, other).unwrap();
    }
    fn quantile(&mut self, q: f64) -> f64 {
        DDSketch::quantile(self, q).unwrap().unwrap()
    }
    fn encoded_len(&mut self) -> usize {
        self.to_java_bytes().len()
    }
}

/// tdigest 1.0 keeps a push buffer; merge flushes both sides.
struct TDigestCandidate(tdigest::TDigest);

impl QuantileCandidate for TDigestCandidate {
    const NAME: &'static str = "tdigest 1.0 (size 100)";
    fn empty() -> Self {
        TDigestCandidate(tdigest::TDigest::new_with_size(100))
    }
    fn add(&mut self, v: f64) {
        self.0.push(v);
    }
    fn merge(&mut self, other: &Self) {
        let mut theirs = other.0.clone();
        theirs.flush();
        self.0.flush();
        self.0 = tdigest::TDigest::merge_digests(vec![self.0.clone(), theirs]);
    }
    fn quantile(&mut self, q: f64) -> f64 {
        self.0.flush();
        self.0.estimate_quantile(q).unwrap()
    }
    fn encoded_len(&mut self) -> usize {
        self.0.flush();
        // Its serde feature pins old syn/proc-macro2 that clash with the
        // workspace, so count the minimal binary form: (mean, weight) per
        // centroid plus sum, count, min, max, max_size.
        self.0.centroids().len() * 16 + 40
    }
}

impl QuantileCandidate for TDigestMut {
    const NAME: &'static str = "datasketches t-digest (k=100)";
    fn empty() -> Self {
        TDigestMut::new(100).unwrap()
    }
    fn add(&mut self, v: f64) {
        self.update(v);
    }
    fn merge(&mut self, other: &Self) {
        TDigestMut::merge(self, other);
    }
    fn quantile(&mut self, q: f64) -> f64 {
        TDigestMut::quantile(self, q).unwrap().unwrap()
    }
    fn encoded_len(&mut self) -> usize {
        self.serialize().len()
    }
}

impl QuantileCandidate for KllSketch<KllFloat<f64>> {
    const NAME: &'static str = "datasketches KLL (k=200)";
    fn empty() -> Self {
        KllSketch::new(200).unwrap()
    }
    fn add(&mut self, v: f64) {
        self.update(KllFloat::<f64>::new(v).unwrap());
    }
    fn merge(&mut self, other: &Self) {
        KllSketch::merge(self, other).unwrap();
    }
    fn quantile(&mut self, q: f64) -> f64 {
        KllSketch::quantile(self, q, SearchCriteria::Inclusive)
            .unwrap()
            .unwrap()
            .into_inner()
    }
    fn encoded_len(&mut self) -> usize {
        self.serialize().len()
    }
}

fn quantile_row<C: QuantileCandidate>(samples: &[f64], sorted: &[f64]) {
    let mut partials: Vec<C> = (0..PARTIALS).map(|_| C::empty()).collect();
    for (i, v) in samples.iter().enumerate() {
        partials[i % PARTIALS].add(*v);
    }
    let mut merged = C::empty();
    for p in &partials {
        merged.merge(p);
    }
    let errors: Vec<String> = QUANTILES
        .iter()
        .map(|q| {
            let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
            format!(
                "{:.3}%",
                (merged.quantile(*q) - exact).abs() / exact * 100.0
            )
        })
        .collect();
    let mut minute = C::empty();
    for v in &samples[..1_000] {
        minute.add(*v);
    }
    println!(
        "| {} | {} | {} B | {} B |",
        C::NAME,
        errors.join(" / "),
        merged.encoded_len(),
        minute.encoded_len()
    );
}

/// Heap and wire size of typical one-minute series of each kind.
fn memory_report() {
    let point = |field: FieldKey, value: Value| Point {
        field,
        time_unix_nano: 1,
        value,
    };
    let samples = lognormal_samples(10_000);
    let lifecycle = |requests: usize| {
        let mut s = SeriesSketch::default();
        for (n, v) in samples.iter().take(requests).enumerate() {
            for (field, scale) in [
                (Field::TtftSeconds, 1.0),
                (Field::TpotSeconds, 0.1),
                (Field::E2eSeconds, 20.0),
                (Field::QueueSeconds, 0.01),
            ] {
                s.record(&point(FieldKey::plain(field), Value::Sample(v * scale)));
            }
            for field in [
                Field::Requests,
                Field::Errors,
                Field::InputTokens,
                Field::OutputTokens,
                Field::PrefixCacheQueries,
                Field::PrefixCacheHits,
            ] {
                s.record(&point(FieldKey::plain(field), Value::Counter(n as f64)));
            }
            s.record(&point(
                FieldKey::plain(Field::QueueDepth),
                Value::Gauge((n % 9) as f64),
            ));
            s.record(&point(
                FieldKey::plain(Field::RunningRequests),
                Value::Gauge((n % 5) as f64),
            ));
        }
        s
    };
    let prefix = |distinct: u64, total: u64| {
        let mut s = SeriesSketch::default();
        for i in 0..total {
            s.record(&point(
                FieldKey::plain(Field::PrefixHashes),
                Value::PrefixHash(i % distinct),
            ));
        }
        s
    };
    let capacity = {
        let mut s = SeriesSketch::default();
        for sku in ["H100", "A100", "L40S"] {
            for field in [Field::Gpus, Field::GpusAllocated, Field::GpuUtilization] {
                for v in 0..4 {
                    s.record(&point(
                        FieldKey::with_dim(field, "sku", sku),
                        Value::Gauge(f64::from(v)),
                    ));
                }
            }
        }
        for tier in ["gpu", "cpu"] {
            s.record(&point(
                FieldKey::with_dim(Field::KvCacheUtilization, "tier", tier),
                Value::Gauge(0.5),
            ));
        }
        s.record(&point(
            FieldKey::plain(Field::ReplicasActive),
            Value::Gauge(4.0),
        ));
        s
    };
    let cold_start = {
        let mut s = SeriesSketch::default();
        for phase in ["schedule", "pull", "load", "warmup"] {
            for v in &samples[..20] {
                s.record(&point(
                    FieldKey::with_dim(Field::PhaseSeconds, "phase", phase),
                    Value::Sample(v * 30.0),
                ));
            }
        }
        s.record(&point(
            FieldKey::plain(Field::LaunchAttempts),
            Value::Counter(3.0),
        ));
        s.record(&point(
            FieldKey::plain(Field::LaunchSuccesses),
            Value::Counter(3.0),
        ));
        s
    };
    let histogram_lifecycle = {
        let mut s = SeriesSketch::default();
        let bounds = vec![
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0, 20.0, 40.0, 80.0,
        ];
        for field in [
            Field::TtftSeconds,
            Field::TpotSeconds,
            Field::E2eSeconds,
            Field::QueueSeconds,
        ] {
            s.record(&point(
                FieldKey::plain(field),
                Value::Histogram(signal_aggregator::signal::HistogramDelta {
                    counts: (0..=bounds.len() as u64).collect(),
                    bounds: bounds.clone(),
                    sum: 1.0,
                    count: 190,
                }),
            ));
        }
        s
    };
    println!("\n## Memory of typical one-minute series\n");
    println!(
        "| series | heap_bytes while recording | heap_bytes after shrink_to_fit (as sketch_batch returns) | encoded |"
    );
    println!("|---|---|---|---|");
    for (name, s) in [
        ("RequestLifecycle, 10 requests (spans)", lifecycle(10)),
        ("RequestLifecycle, 1,000 requests (spans)", lifecycle(1_000)),
        (
            "RequestLifecycle, 10,000 requests (spans)",
            lifecycle(10_000),
        ),
        (
            "RequestLifecycle from vLLM histograms (4 x 20 buckets)",
            histogram_lifecycle,
        ),
        ("PrefixHash, 50 distinct / 500 total", prefix(50, 500)),
        (
            "PrefixHash, 1,000 distinct / 10,000 total",
            prefix(1_000, 10_000),
        ),
        (
            "PrefixHash, 100,000 distinct / 200,000 total",
            prefix(100_000, 200_000),
        ),
        ("Capacity, 3 SKUs x 3 gauges + KV tiers", capacity),
        ("ColdStart, 4 phases x 20 samples", cold_start),
    ] {
        let grown = s.heap_bytes();
        let mut s = s;
        s.shrink_to_fit();
        println!(
            "| {name} | {grown} B | {} B | {} B |",
            s.heap_bytes(),
            s.encode().len()
        );
    }
}

fn accuracy_report() {
    let samples = lognormal_samples(1_000_000);
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    println!("\n## Quantiles: 1M lognormal, 16 partials merged\n");
    println!(
        "| candidate | rel. error p50 / p90 / p99 | encoded (merged 1M) | encoded (1k samples) |"
    );
    println!("|---|---|---|---|");
    quantile_row::<QuantileSketch>(&samples, &sorted);
    quantile_row::<DDSketch>(&samples, &sorted);
    quantile_row::<TDigestCandidate>(&samples, &sorted);
    quantile_row::<TDigestMut>(&samples, &sorted);
    quantile_row::<KllSketch<KllFloat<f64>>>(&samples, &sorted);
    let mut ours_minute = QuantileSketch::default();
    for v in &samples[..1_000] {
        ours_minute.add(*v);
    }
    let mut series = SeriesSketch::default();
    for v in &samples[..1_000] {
        series.record(&Point {
            field: FieldKey::plain(Field::TtftSeconds),
            time_unix_nano: 1,
            value: Value::Sample(*v),
        });
    }
    println!(
        "\nbuilt-in, 1k samples: heap {} B, whole one-field series encoded {} B",
        ours_minute.heap_bytes(),
        series.encode().len()
    );

    println!("\n## Distinct count: 10^6 distinct (each sent twice), 16 partials merged\n");
    println!(
        "| candidate | rel. error | encoded (merged) | encoded (50 distinct) | encoded (1k distinct) |"
    );
    println!("|---|---|---|---|---|");
    let items = distinct_items(1_000_000);
    hll_row(
        "built-in HLL p=14 (sparse p'=25), HLL part only",
        &items,
        PrefixSketch::default,
        |s, i| s.add(i),
        |a, b| a.merge(b),
        |s| s.distinct(),
        |s| s.hll().encoded_len(),
    );
    hll_row(
        "datasketches HLL lgK=14 HLL_6 (union)",
        &items,
        || HllUnion::new(14).unwrap(),
        |s, i| s.update_value(i),
        |a, b| a.update(&b.to_sketch(HllType::Hll6)),
        |s| s.estimate(),
        |s| s.to_sketch(HllType::Hll6).serialize().len(),
    );
    hll_row(
        "datasketches HLL lgK=14 HLL_4 (union)",
        &items,
        || HllUnion::new(14).unwrap(),
        |s, i| s.update_value(i),
        |a, b| a.update(&b.to_sketch(HllType::Hll4)),
        |s| s.estimate(),
        |s| s.to_sketch(HllType::Hll4).serialize().len(),
    );
    hll_row(
        "hyperloglogplus 0.4.1 p=14",
        &items,
        || HyperLogLogPlus::<u64, FixedXxh3>::new(14, FixedXxh3).unwrap(),
        |s, i| s.insert(&i),
        |a, b| a.merge(b).unwrap(),
        |s| s.clone().count(),
        cbor_len,
    );

    println!("\n## Frequency: 1M Zipf(1.1) over 100k hashes, 16 partials merged\n");
    let stream = zipf_items(1_000_000);
    let mut exact: HashMap<u64, u64> = HashMap::new();
    for i in &stream {
        *exact.entry(*i).or_default() += 1;
    }
    let heavy: Vec<(u64, u64)> = exact
        .iter()
        .filter(|(_, c)| **c * 100 > stream.len() as u64)
        .map(|(h, c)| (*h, *c))
        .collect();
    println!("{} items above 1%", heavy.len());
    println!("\n| candidate | >1% items found | max abs. error on them | encoded (merged) |");
    println!("|---|---|---|---|");
    let mut ours: Vec<PrefixSketch> = vec![PrefixSketch::default(); PARTIALS];
    let mut fi: Vec<FrequentItemsSketch<u64>> = (0..PARTIALS)
        .map(|_| FrequentItemsSketch::new(256).unwrap())
        .collect();
    let mut cms: Vec<CountMinSketch<u64>> = (0..PARTIALS)
        .map(|_| CountMinSketch::new(4, 512).unwrap())
        .collect();
    for (n, i) in stream.iter().enumerate() {
        ours[n % PARTIALS].add(*i);
        fi[n % PARTIALS].update(*i);
        cms[n % PARTIALS].update(*i);
    }
    let mut ours_m = PrefixSketch::default();
    let mut fi_m = FrequentItemsSketch::<u64>::new(256).unwrap();
    let mut cms_m = CountMinSketch::<u64>::new(4, 512).unwrap();
    for p in 0..PARTIALS {
        ours_m.merge(&ours[p]);
        fi_m.merge(&fi[p]);
        cms_m.merge(&cms[p]).unwrap();
    }
    let top = ours_m.top(128);
    let found = heavy
        .iter()
        .filter(|(h, _)| top.iter().any(|t| t.hash == *h))
        .count();
    let err = heavy
        .iter()
        .map(|(h, c)| ours_m.frequency(*h).abs_diff(*c))
        .max()
        .unwrap_or(0);
    println!(
        "| built-in heavy hitters (128) + CMS 4x512 u32 | {found}/{} | {err} | {} B (HLL included) |",
        heavy.len(),
        prefix_series(&ours_m).encode().len()
    );
    let rows = fi_m.frequent_items(ErrorType::NoFalseNegatives);
    let found = heavy
        .iter()
        .filter(|(h, _)| rows.iter().any(|r| r.item() == h))
        .count();
    let err = heavy
        .iter()
        .map(|(h, c)| {
            fi_m.estimate(h)
                .abs_diff(*c)
                .max(cms_m.estimate(h).abs_diff(*c))
        })
        .max()
        .unwrap_or(0);
    println!(
        "| datasketches FrequentItems(256) + CountMin 4x512 u64 | {found}/{} | {err} | {} + {} B |",
        heavy.len(),
        fi_m.serialize().len(),
        cms_m.serialize().len()
    );
    println!();
}

/// The wire size of a prefix sketch as stored: a one-field series.
fn prefix_series(p: &PrefixSketch) -> SeriesSketch {
    SeriesSketch::from_fields([(
        FieldKey::plain(Field::PrefixHashes),
        FieldSketch::Prefix(p.clone()),
    )])
}

#[allow(clippy::too_many_arguments)]
fn hll_row<S>(
    name: &str,
    items: &[u64],
    empty: impl Fn() -> S,
    add: impl Fn(&mut S, u64),
    merge: impl Fn(&mut S, &S),
    estimate: impl Fn(&S) -> f64,
    size: impl Fn(&S) -> usize,
) {
    let mut partials: Vec<S> = (0..PARTIALS).map(|_| empty()).collect();
    for (i, item) in items.iter().enumerate() {
        add(&mut partials[i % PARTIALS], *item);
        add(&mut partials[(i + 7) % PARTIALS], *item);
    }
    let mut merged = empty();
    for p in &partials {
        merge(&mut merged, p);
    }
    let error = (estimate(&merged) - items.len() as f64).abs() / items.len() as f64 * 100.0;
    let small = |n: usize| {
        let mut s = empty();
        for item in &items[..n] {
            add(&mut s, *item);
        }
        size(&s)
    };
    println!(
        "| {name} | {error:.3}% | {} B | {} B | {} B |",
        size(&merged),
        small(50),
        small(1_000)
    );
}

fn bench_quantile_insert<C: QuantileCandidate>(c: &mut Criterion, samples: &[f64]) {
    let mut group = c.benchmark_group("quantile_insert_10k");
    group.throughput(Throughput::Elements(samples.len() as u64));
    group.bench_function(C::NAME, |b| {
        b.iter(|| {
            let mut s = C::empty();
            for v in samples {
                s.add(*v);
            }
            black_box(s)
        })
    });
    group.finish();
}

fn bench_quantile_merge<C: QuantileCandidate + Clone>(c: &mut Criterion, samples: &[f64]) {
    let partials: Vec<C> = samples
        .chunks(samples.len() / PARTIALS)
        .map(|chunk| {
            let mut s = C::empty();
            for v in chunk {
                s.add(*v);
            }
            s
        })
        .collect();
    c.benchmark_group("quantile_merge_16_partials")
        .bench_function(C::NAME, |b| {
            b.iter(|| {
                let mut merged = C::empty();
                for p in &partials {
                    merged.merge(p);
                }
                black_box(merged.quantile(0.99))
            })
        });
}

impl Clone for TDigestCandidate {
    fn clone(&self) -> Self {
        TDigestCandidate(self.0.clone())
    }
}

fn timings(c: &mut Criterion) {
    let samples = lognormal_samples(160_000);
    let ten_k = &samples[..10_000];

    // Baseline for the insert rows: keeping every sample exactly.
    let mut group = c.benchmark_group("quantile_insert_10k");
    group.throughput(Throughput::Elements(ten_k.len() as u64));
    group.bench_function("baseline: Vec<f64> push", |b| {
        b.iter(|| {
            let mut v = Vec::new();
            for x in ten_k {
                v.push(*x);
            }
            black_box(v)
        })
    });
    group.finish();
    bench_quantile_insert::<QuantileSketch>(c, ten_k);
    bench_quantile_insert::<DDSketch>(c, ten_k);
    bench_quantile_insert::<TDigestCandidate>(c, ten_k);
    bench_quantile_insert::<TDigestMut>(c, ten_k);
    bench_quantile_insert::<KllSketch<KllFloat<f64>>>(c, ten_k);
    bench_quantile_merge::<QuantileSketch>(c, &samples);
    bench_quantile_merge::<DDSketch>(c, &samples);
    bench_quantile_merge::<TDigestCandidate>(c, &samples);
    bench_quantile_merge::<TDigestMut>(c, &samples);
    bench_quantile_merge::<KllSketch<KllFloat<f64>>>(c, &samples);

    // The ingest hot path: SeriesSketch::record of a Sample point.
    let points: Vec<Point> = ten_k
        .iter()
        .map(|v| Point {
            field: FieldKey::plain(Field::TtftSeconds),
            time_unix_nano: 1,
            value: Value::Sample(*v),
        })
        .collect();
    let mut group = c.benchmark_group("series_record_10k_samples");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function("SeriesSketch::record", |b| {
        b.iter(|| {
            let mut s = SeriesSketch::default();
            for p in &points {
                s.record(p);
            }
            black_box(s)
        })
    });
    group.finish();

    let items = distinct_items(100_000);
    let mut group = c.benchmark_group("distinct_insert_10k");
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("built-in PrefixSketch (HLL+heavy hitters+CMS)", |b| {
        b.iter(|| {
            let mut s = PrefixSketch::default();
            for i in &items[..10_000] {
                s.add(*i);
            }
            black_box(s)
        })
    });
    group.bench_function("datasketches HllSketch lgK=14 HLL_6", |b| {
        b.iter(|| {
            let mut s = HllSketch::new(14, HllType::Hll6).unwrap();
            for i in &items[..10_000] {
                s.update(i);
            }
            black_box(s)
        })
    });
    group.bench_function("hyperloglogplus p=14", |b| {
        b.iter(|| {
            let mut s = HyperLogLogPlus::<u64, FixedXxh3>::new(14, FixedXxh3).unwrap();
            for i in &items[..10_000] {
                s.insert(i);
            }
            black_box(s)
        })
    });
    group.finish();

    let mut dense = PrefixSketch::default();
    let mut dense_other = PrefixSketch::default();
    for (n, i) in items.iter().enumerate() {
        if n % 2 == 0 {
            &mut dense
        } else {
            &mut dense_other
        }
        .add(*i);
    }
    let mut ds_a = HllSketch::new(14, HllType::Hll6).unwrap();
    let mut ds_b = HllSketch::new(14, HllType::Hll6).unwrap();
    for (n, i) in items.iter().enumerate() {
        if n % 2 == 0 { &mut ds_a } else { &mut ds_b }.update(i);
    }
    let mut group = c.benchmark_group("distinct_merge_dense_pair");
    group.bench_function("built-in PrefixSketch::merge", |b| {
        b.iter_batched(
            || dense.clone(),
            |mut a| {
                a.merge(&dense_other);
                black_box(a)
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("datasketches HllUnion", |b| {
        b.iter(|| {
            let mut u = HllUnion::new(14).unwrap();
            u.update(&ds_a);
            u.update(&ds_b);
            black_box(u.estimate())
        })
    });
    group.finish();

    // Encode/decode of a busy RequestLifecycle minute (what Redis stores).
    let mut lifecycle = SeriesSketch::default();
    for (n, v) in ten_k.iter().enumerate().take(1_000) {
        for (field, scale) in [
            (Field::TtftSeconds, 1.0),
            (Field::TpotSeconds, 0.1),
            (Field::E2eSeconds, 20.0),
            (Field::QueueSeconds, 0.01),
        ] {
            lifecycle.record(&Point {
                field: FieldKey::plain(field),
                time_unix_nano: 1,
                value: Value::Sample(v * scale),
            });
        }
        for field in [Field::Requests, Field::InputTokens, Field::OutputTokens] {
            lifecycle.record(&Point {
                field: FieldKey::plain(field),
                time_unix_nano: 1,
                value: Value::Counter(n as f64),
            });
        }
    }
    let bytes = lifecycle.encode();
    let mut group = c.benchmark_group("series_codec_lifecycle_minute");
    group.bench_function("encode", |b| b.iter(|| black_box(lifecycle.encode())));
    group.bench_function("encode as encoding 1 (dense buckets)", |b| {
        b.iter(|| black_box(lifecycle.encode_version(1).unwrap()))
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(SeriesSketch::decode(&bytes).unwrap()))
    });
    // What a query does per frame: into an accumulator holding the same fields.
    let mut accumulator = lifecycle.clone();
    group.bench_function("decode then merge", |b| {
        b.iter(|| {
            accumulator
                .merge(&SeriesSketch::decode(&bytes).unwrap())
                .unwrap()
        })
    });
    group.bench_function("merge_encoded", |b| {
        b.iter(|| accumulator.merge_encoded(&bytes).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = timings
}

fn main() {
    accuracy_report();
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
