//! The span normalizers (GenAI semantic conventions, engine and gateway
//! spans, mesh-llm lifecycle) on any decodable ExportTraceServiceRequest,
//! then sketching: same checks as `normalize_metrics`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelplane_signals_fuzz::{normalize_and_sketch, span_items};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    let items = span_items(&request);
    normalize_and_sketch(|normalizer, origin, now| {
        (normalizer.traces_at(origin, &request, now), items)
    });
});
