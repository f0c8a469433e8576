//! The metrics normalizers (every engine's source table, identity, the
//! cumulative-to-delta state, the series budget) on any decodable
//! ExportMetricsServiceRequest, then sketching: no panic, accepted + rejected
//! never exceed the data points sent, every sketch encodes and decodes to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelplane_signals_fuzz::{metric_items, normalize_and_sketch};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportMetricsServiceRequest::decode(data) else {
        return;
    };
    let items = metric_items(&request);
    normalize_and_sketch(|normalizer, origin, now| {
        (normalizer.metrics_at(origin, &request, now), items)
    });
});
