//! What the store reads back: a window value from Redis (header + frames) and
//! a bare encoded sketch. Any bytes decode or are reported corrupt, never
//! panic; `merge_encoded` (the query path) accepts exactly what `decode`
//! accepts and gives the same result, into an empty sketch and into one that
//! already holds data, so a corrupt value cannot half-poison a merge that
//! `decode` would have refused.
//!
//! Input: [base length u8][base sketch bytes][value bytes].
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelplane_signals_fuzz::check_sketch_round_trip;
use signal_aggregator::sketch::SeriesSketch;
use signal_aggregator::store::redis::{merge_value, split_frames};

fuzz_target!(|data: &[u8]| {
    // The whole input as a Redis window value.
    match merge_value(data) {
        Ok(merged) => {
            let frames = split_frames(data).expect("a merged value has frames");
            assert!(!frames.is_empty());
            check_sketch_round_trip(&merged);
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }

    // The whole input as one encoded sketch.
    let decoded = SeriesSketch::decode(data);
    let mut merged = SeriesSketch::default();
    let merged_ok = merged.merge_encoded(data);
    assert_eq!(
        decoded.is_ok(),
        merged_ok.is_ok(),
        "decode {decoded:?} vs merge_encoded {merged_ok:?}"
    );
    if let Ok(decoded) = &decoded {
        assert_eq!(merged.encode(), decoded.encode());
        check_sketch_round_trip(decoded);
    }

    // A base sketch and a value merged into it, both ways.
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (base, value) = rest.split_at((n as usize).min(rest.len()));
    let Ok(base) = SeriesSketch::decode(base) else {
        return;
    };
    let mut by_bytes = base.clone();
    let result = by_bytes.merge_encoded(value);
    match SeriesSketch::decode(value) {
        Ok(theirs) => {
            assert!(
                result.is_ok(),
                "decode accepts what merge_encoded refused: {result:?}"
            );
            let mut by_value = base.clone();
            by_value.merge(&theirs).expect("merge never fails");
            assert_eq!(
                by_bytes.encode(),
                by_value.encode(),
                "merge_encoded != merge(decode)"
            );
        }
        Err(_) => assert!(
            result.is_err(),
            "merge_encoded accepted what decode refused"
        ),
    }
});
