//! The RunFunction span: exported over OTLP when the binary installed a
//! tracer provider (`OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT`
//! set, see `selftrace`), a no-op otherwise. It carries identifiers and
//! sizes only: the XR's apiVersion, kind, namespace and name, Crossplane's
//! request tag, byte and resource counts and whether the result was Fatal;
//! never the XR's spec, the step input, the rendered resources or a result
//! message. A `traceparent` in the gRPC metadata makes it a child of the
//! caller's span.

use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse, Severity};
use function_sdk_rust::request;
use opentelemetry::KeyValue;
use opentelemetry::global::{self, BoxedSpan};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _};
use pbjson_types::value::Kind;
use prost::Message as _;
use tonic::Request;

/// The instrumentation scope's name.
pub const SCOPE: &str = "function-signals";

/// Starts the span of one RunFunction call.
pub fn start(request: &Request<RunFunctionRequest>) -> BoxedSpan {
    let parent = global::get_text_map_propagator(|propagator| {
        propagator.extract(&Metadata(request.metadata()))
    });
    let tracer = global::tracer(SCOPE);
    tracer
        .span_builder("RunFunction")
        .with_kind(SpanKind::Server)
        .with_attributes(request_attributes(request.get_ref()))
        .start_with_context(&tracer, &parent)
}

/// Records what the response was and ends the span.
pub fn finish(span: &mut BoxedSpan, rsp: &RunFunctionResponse) {
    for kv in response_attributes(rsp) {
        span.set_attribute(kv);
    }
    if fatal(rsp) {
        span.set_status(Status::error("Fatal result"));
    }
    span.end();
}

/// What a RunFunction span says about the request.
pub fn request_attributes(req: &RunFunctionRequest) -> Vec<KeyValue> {
    let mut out = vec![
        KeyValue::new("rpc.system", "grpc"),
        KeyValue::new(
            "rpc.service",
            "apiextensions.fn.proto.v1.FunctionRunnerService",
        ),
        KeyValue::new("rpc.method", "RunFunction"),
        KeyValue::new("function_signals.request.bytes", req.encoded_len() as i64),
    ];
    if let Some(meta) = &req.meta
        && !meta.tag.is_empty()
    {
        out.push(KeyValue::new("crossplane.request.tag", meta.tag.clone()));
    }
    let xr = request::observed_composite(req).and_then(|r| r.resource.as_ref());
    let field = |path: &[&str]| -> Option<String> {
        let mut fields = &xr?.fields;
        let (last, parents) = path.split_last()?;
        for parent in parents {
            match &fields.get(*parent)?.kind {
                Some(Kind::StructValue(s)) => fields = &s.fields,
                _ => return None,
            }
        }
        match &fields.get(*last)?.kind {
            Some(Kind::StringValue(s)) => Some(s.clone()),
            _ => None,
        }
    };
    for (key, path) in [
        ("crossplane.xr.api_version", &["apiVersion"][..]),
        ("crossplane.xr.kind", &["kind"][..]),
        ("crossplane.xr.namespace", &["metadata", "namespace"][..]),
        ("crossplane.xr.name", &["metadata", "name"][..]),
    ] {
        if let Some(value) = field(path) {
            out.push(KeyValue::new(key, value));
        }
    }
    out
}

/// What a RunFunction span says about the response.
pub fn response_attributes(rsp: &RunFunctionResponse) -> Vec<KeyValue> {
    let resources = rsp.desired.as_ref().map_or(0, |d| d.resources.len());
    vec![
        KeyValue::new("function_signals.response.bytes", rsp.encoded_len() as i64),
        KeyValue::new("function_signals.desired.resources", resources as i64),
        KeyValue::new("function_signals.results", rsp.results.len() as i64),
        KeyValue::new("function_signals.fatal", fatal(rsp)),
    ]
}

fn fatal(rsp: &RunFunctionResponse) -> bool {
    rsp.results
        .iter()
        .any(|r| r.severity == Severity::Fatal as i32)
}

/// gRPC metadata as a propagation carrier (`traceparent`, `tracestate`).
struct Metadata<'a>(&'a tonic::metadata::MetadataMap);

impl Extractor for Metadata<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use function_sdk_rust::resource::json_to_struct;
    use serde_json::json;

    #[test]
    fn attributes_name_the_xr_and_sizes_but_not_its_spec() {
        let xr = json!({
            "apiVersion": "signals.modelplane.ai/v1alpha1",
            "kind": "InferenceCluster",
            "metadata": {"name": "us-east-1"},
            "spec": {"signals": {"secret-ish": "do not export me"}},
        });
        let req = RunFunctionRequest {
            meta: Some(function_sdk_rust::proto::v1::RequestMeta {
                tag: "abc".into(),
                ..Default::default()
            }),
            observed: Some(function_sdk_rust::proto::v1::State {
                composite: Some(function_sdk_rust::proto::v1::Resource {
                    resource: Some(json_to_struct(xr.as_object().unwrap())),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let attrs: Vec<(String, String)> = request_attributes(&req)
            .into_iter()
            .map(|kv| (kv.key.to_string(), kv.value.to_string()))
            .collect();
        let get = |k: &str| {
            attrs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("crossplane.xr.kind"), Some("InferenceCluster"));
        assert_eq!(get("crossplane.xr.name"), Some("us-east-1"));
        assert_eq!(get("crossplane.xr.namespace"), None);
        assert_eq!(get("crossplane.request.tag"), Some("abc"));
        assert_eq!(
            get("function_signals.request.bytes"),
            Some(req.encoded_len().to_string().as_str())
        );
        assert!(
            attrs.iter().all(|(_, v)| !v.contains("do not export me")),
            "{attrs:?}"
        );
    }
}
