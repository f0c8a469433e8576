//! What several fuzz targets share: the checks that hold for any input.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use signal_aggregator::ingest::Refusal;
use signal_aggregator::normalize::{NormalizeConfig, Normalized, Normalizer};
use signal_aggregator::signal::Origin;
use signal_aggregator::sketch::{SeriesSketch, sketch_batch_at};
use std::time::{Duration, UNIX_EPOCH};

/// The arrival time every normalizing target uses (points around it are sane).
pub const NOW_SECS: u64 = 1_800_000_000;

/// A body of `input_len` bytes refused by `decode_request`: only as invalid
/// (with a message a user can act on) or as over the limit it really exceeds.
pub fn check_body_refusal(refusal: Refusal, input_len: usize) {
    match refusal {
        Refusal::InvalidData { description, .. } => assert!(!description.is_empty()),
        Refusal::TooLarge { limit } => assert!(input_len > limit),
        other => panic!("unexpected refusal {other:?}"),
    }
}

/// An encoded sketch that decoded must encode to the same bytes again, and
/// decode to them through `merge_encoded` into an empty sketch as well.
pub fn check_sketch_round_trip(sketch: &SeriesSketch) {
    let bytes = sketch.encode();
    let decoded = SeriesSketch::decode(&bytes).expect("an encoded sketch decodes");
    assert_eq!(
        decoded.encode(),
        bytes,
        "decode(encode(s)) re-encodes differently"
    );
    let mut merged = SeriesSketch::default();
    merged
        .merge_encoded(&bytes)
        .expect("an encoded sketch merges into an empty one");
    assert_eq!(
        merged.encode(),
        bytes,
        "merge_encoded into empty differs from decode"
    );
}

/// Normalizes twice (the second pass sees the first pass's cumulative state,
/// as a retried or repeated export would), sketches what came out, and checks
/// the accounting and every sketch's encoding.
pub fn normalize_and_sketch(
    normalize: impl Fn(&Normalizer, &Origin, std::time::SystemTime) -> (Normalized, u64),
) {
    let normalizer = Normalizer::new(NormalizeConfig {
        max_series_per_tenant: 64,
        max_cumulative_series: 256,
        ..NormalizeConfig::default()
    });
    for (pass, origin) in [
        Origin::default(),
        Origin {
            authenticated_cluster: Some("fuzz-cluster".into()),
        },
    ]
    .iter()
    .enumerate()
    {
        let now = UNIX_EPOCH + Duration::from_secs(NOW_SECS + pass as u64 * 30);
        let (normalized, items) = normalize(&normalizer, origin, now);
        assert!(
            normalized.accepted + normalized.rejected <= items,
            "accepted {} + rejected {} > {} items",
            normalized.accepted,
            normalized.rejected,
            items
        );
        if normalized.rejected > 0 {
            assert!(
                !normalized.rejected_message.is_empty(),
                "a refusal without a reason"
            );
        }
        for windowed in sketch_batch_at(&normalized.batch, NOW_SECS) {
            check_sketch_round_trip(&windowed.sketch);
        }
    }
}

pub fn metric_items(request: &ExportMetricsServiceRequest) -> u64 {
    use signal_aggregator::ingest::OtlpRequest;
    request.item_count()
}

pub fn span_items(request: &ExportTraceServiceRequest) -> u64 {
    use signal_aggregator::ingest::OtlpRequest;
    request.item_count()
}
