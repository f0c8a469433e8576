//! Issue 3's accuracy targets, asserted on fixed seeds: partial sketches
//! built on 16 "replicas" and merged must match exact answers.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};
use signal_aggregator::sketch::{PrefixSketch, QuantileSketch};

const PARTIALS: usize = 16;

fn relative_error(estimate: f64, exact: f64) -> f64 {
    (estimate - exact).abs() / exact.abs()
}

#[test]
fn merged_quantiles_are_within_one_percent_of_exact_on_a_million_lognormal_samples() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    // TTFT-like: median ~0.2 s, long right tail.
    let lognormal = LogNormal::new(-1.6, 0.9).unwrap();
    let samples: Vec<f64> = (0..1_000_000).map(|_| lognormal.sample(&mut rng)).collect();

    let mut partials = vec![QuantileSketch::default(); PARTIALS];
    for (i, v) in samples.iter().enumerate() {
        assert!(partials[i % PARTIALS].add(*v));
    }
    let mut merged = QuantileSketch::default();
    for partial in &partials {
        merged.merge(partial);
    }

    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    assert_eq!(merged.count(), 1_000_000);
    for q in [0.5, 0.9, 0.99] {
        let exact = sorted[(q * (sorted.len() - 1) as f64).floor() as usize];
        let estimate = merged.quantile(q).unwrap();
        let error = relative_error(estimate, exact);
        assert!(
            error <= 0.01,
            "p{} estimate {estimate} exact {exact} error {error}",
            q * 100.0
        );
    }
    assert_eq!(merged.min(), Some(sorted[0]));
    assert_eq!(merged.max(), Some(sorted[sorted.len() - 1]));
}

#[test]
fn merged_hll_is_within_two_percent_at_a_million_distinct() {
    let mut partials = vec![PrefixSketch::default(); PARTIALS];
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    // Distinct by construction: the i-th item is i mixed with a fixed random
    // offset, each sent twice to different partials (duplicates must not count).
    let offset: u64 = rng.random();
    for i in 0..1_000_000u64 {
        let item = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(offset);
        partials[(i as usize) % PARTIALS].add(item);
        partials[(i as usize + 7) % PARTIALS].add(item);
    }
    let mut merged = PrefixSketch::default();
    for partial in &partials {
        merged.merge(partial);
    }
    let estimate = merged.distinct();
    let error = relative_error(estimate, 1_000_000.0);
    assert!(error <= 0.02, "distinct estimate {estimate}, error {error}");
    assert_eq!(merged.total(), 2_000_000);
}

#[test]
fn hll_is_close_at_small_and_mid_cardinalities() {
    // The sparse and dense ranges, and the switch-over between them.
    for n in [1u64, 10, 100, 1_000, 5_000, 20_000, 100_000] {
        let mut sketch = PrefixSketch::default();
        for i in 0..n {
            sketch.add(i);
        }
        let error = relative_error(sketch.distinct(), n as f64);
        let bound = if n <= 1_000 { 0.01 } else { 0.03 };
        assert!(
            error <= bound,
            "n={n} estimate {} error {error}",
            sketch.distinct()
        );
    }
}

#[test]
fn merged_top_k_finds_every_item_above_one_percent_of_a_zipf_stream() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let zipf = Zipf::new(100_000.0, 1.1).unwrap();
    let mut exact: HashMap<u64, u64> = HashMap::new();
    let mut partials = vec![PrefixSketch::default(); PARTIALS];
    let total = 1_000_000u64;
    for i in 0..total {
        let rank = zipf.sample(&mut rng) as u64;
        // Hash-looking items, as a gateway would send them.
        let item = xxhash_rust::xxh3::xxh3_64(&rank.to_le_bytes());
        *exact.entry(item).or_default() += 1;
        partials[(i as usize) % PARTIALS].add(item);
    }
    let mut merged = PrefixSketch::default();
    for partial in &partials {
        merged.merge(partial);
    }
    let top = merged.top(128);
    let heavy: Vec<(u64, u64)> = exact
        .iter()
        .filter(|(_, c)| **c * 100 > total)
        .map(|(h, c)| (*h, *c))
        .collect();
    assert!(
        heavy.len() >= 5,
        "the stream should have several items above 1%"
    );
    for (item, count) in heavy {
        let found = top.iter().find(|t| t.hash == item);
        assert!(
            found.is_some(),
            "item with {count} occurrences missing from top-K"
        );
        // Estimates never under-count and over-count by at most ~0.53 % of N.
        let estimate = found.unwrap().count;
        assert!(
            estimate >= count && estimate <= count + total / 100,
            "estimate {estimate} true {count}"
        );
        assert!(merged.frequency(item) >= count);
    }
}
