//! OTLP/HTTP JSON bodies through the receiver's own OTLP/JSON decoder: any
//! bytes decode or are refused with a message, never panic; what decodes
//! re-encodes as protobuf and decodes back to the same request.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use signal_aggregator::ingest::{ContentCoding, PayloadFormat, decode_request};

const LIMIT: usize = 64 * 1024;

fn check<R: signal_aggregator::ingest::OtlpRequest + PartialEq + std::fmt::Debug>(data: &[u8]) {
    match decode_request::<R>(data, PayloadFormat::Json, ContentCoding::Identity, LIMIT) {
        Ok(request) => {
            let again = R::decode(request.encode_to_vec().as_slice()).expect("protobuf round trip");
            // NaN doubles compare unequal; compare the encodings instead.
            assert_eq!(again.encode_to_vec(), request.encode_to_vec());
        }
        Err(refusal) => modelplane_signals_fuzz::check_body_refusal(refusal, data.len()),
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ExportMetricsServiceRequest>(data);
    check::<ExportTraceServiceRequest>(data);
});
