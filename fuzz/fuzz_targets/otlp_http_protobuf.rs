//! OTLP/HTTP protobuf bodies through the receiver's decode path (identity
//! coding): any bytes decode or are refused as invalid or too large, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use signal_aggregator::ingest::{ContentCoding, PayloadFormat, decode_request};

const LIMIT: usize = 64 * 1024;

fn check<R: signal_aggregator::ingest::OtlpRequest>(data: &[u8]) {
    match decode_request::<R>(
        data,
        PayloadFormat::Protobuf,
        ContentCoding::Identity,
        LIMIT,
    ) {
        Ok(request) => {
            let _ = request.item_count();
        }
        Err(refusal) => modelplane_signals_fuzz::check_body_refusal(refusal, data.len()),
    }
}

fuzz_target!(|data: &[u8]| {
    check::<ExportMetricsServiceRequest>(data);
    check::<ExportTraceServiceRequest>(data);
});
