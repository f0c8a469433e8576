//! Attributes added to spans on their way to the tenant's backend, off the
//! ingest path (in the forwarder's worker).

use async_trait::async_trait;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

#[async_trait]
pub trait Enricher: Send + Sync {
    /// Adds attributes to `request`'s spans, all of `tenant`.
    async fn enrich(&self, tenant: &str, request: &mut ExportTraceServiceRequest);
}

/// Adds nothing.
pub struct NoEnrichment;

#[async_trait]
impl Enricher for NoEnrichment {
    async fn enrich(&self, _tenant: &str, _request: &mut ExportTraceServiceRequest) {}
}

/// `modelplane.cache.prefix_warmth` on spans that carry a prefix hash
/// (`modelplane.prefix.hash`, or the first of `modelplane.prefix.hashes`):
/// how often the tenant's requests for the same model on the same routing
/// cluster carried that prefix over the last [`WARMTH_WINDOW_SECS`], read
/// from the PrefixHash sketches (Count-Min: never an under-count). The
/// request's own privacy-stripped copy reaches the sketches on the agent's
/// other pipeline, before or after this one, so a first sight reads 0 or 1:
///
/// | occurrences in the window | warmth |
/// |---|---|
/// | at most [`WARM_AT`] − 1 (0 or 1: only this request) | `cold` |
/// | [`WARM_AT`] to [`HOT_AT`] − 1 | `warm` |
/// | [`HOT_AT`] or more | `hot` |
///
/// Spans whose model or cluster is unknown, or whose hash is unreadable, get
/// no warmth; a store that cannot answer leaves it out too (never blocks).
/// `modelplane.cache.weights` and `modelplane.cache.kv_tier_hit` travel as
/// the gateway set them: spans are forwarded raw.
pub struct PrefixWarmth {
    store: std::sync::Arc<dyn crate::store::SketchStore>,
    clock: crate::clock::Clock,
}

pub const WARMTH: &str = "modelplane.cache.prefix_warmth";
pub const WARMTH_WINDOW_SECS: u64 = 300;
pub const WARM_AT: u64 = 2;
pub const HOT_AT: u64 = 8;

pub fn warmth(occurrences: u64) -> &'static str {
    if occurrences >= HOT_AT {
        "hot"
    } else if occurrences >= WARM_AT {
        "warm"
    } else {
        "cold"
    }
}

impl PrefixWarmth {
    pub fn new(
        store: std::sync::Arc<dyn crate::store::SketchStore>,
        clock: crate::clock::Clock,
    ) -> Self {
        PrefixWarmth { store, clock }
    }
}

fn parse_hash(value: &opentelemetry_proto::tonic::common::v1::any_value::Value) -> Option<u64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    match value {
        Value::IntValue(i) => Some(*i as u64),
        Value::StringValue(s) if s.len() == 16 => u64::from_str_radix(s, 16).ok(),
        _ => None,
    }
}

fn span_hash(span: &opentelemetry_proto::tonic::trace::v1::Span) -> Option<u64> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let value = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref()?.value.as_ref())
    };
    match (
        value("modelplane.prefix.hash"),
        value("modelplane.prefix.hashes"),
    ) {
        (Some(v), _) => parse_hash(v),
        (None, Some(Value::ArrayValue(array))) => {
            array.values.first()?.value.as_ref().and_then(parse_hash)
        }
        _ => None,
    }
}

#[async_trait]
impl Enricher for PrefixWarmth {
    async fn enrich(&self, tenant: &str, request: &mut ExportTraceServiceRequest) {
        use std::collections::BTreeMap;

        use super::route::{ROUTING_CLUSTER, set_attr, str_value};
        use crate::signal::{Field, FieldKey, SignalKind};
        use crate::sketch::prefix::PrefixSketch;
        use crate::store::StoreQuery;

        let attr = |attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str| {
            attributes
                .iter()
                .find(|kv| kv.key == key)
                .and_then(|kv| str_value(kv.value.as_ref()))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        // (cluster, model) of every span with a prefix hash.
        let mut wanted: BTreeMap<(String, String), Option<PrefixSketch>> = BTreeMap::new();
        let mut keys = Vec::new();
        for resource_spans in &request.resource_spans {
            let resource = resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            let cluster = attr(resource, ROUTING_CLUSTER);
            let resource_model = attr(resource, "modelplane.model")
                .or_else(|| attr(resource, "gen_ai.request.model"))
                .or_else(|| attr(resource, "mesh_llm.model"));
            for scope_spans in &resource_spans.scope_spans {
                for span in &scope_spans.spans {
                    let model = attr(&span.attributes, "gen_ai.request.model")
                        .or_else(|| attr(&span.attributes, "gen_ai.response.model"))
                        .or_else(|| resource_model.clone());
                    let key = match (&cluster, model, span_hash(span)) {
                        (Some(cluster), Some(model), Some(hash)) => {
                            wanted.insert((cluster.clone(), model.clone()), None);
                            Some((cluster.clone(), model, hash))
                        }
                        _ => None,
                    };
                    keys.push(key);
                }
            }
        }
        if wanted.is_empty() {
            return;
        }
        let now = (self.clock)();
        let field = FieldKey::plain(Field::PrefixHashes);
        for ((cluster, model), slot) in wanted.iter_mut() {
            let query = StoreQuery {
                tenant: Some(tenant.to_string()),
                kind: SignalKind::PrefixHash,
                cluster: Some(cluster.clone()),
                model: Some(model.clone()),
                from_unix_secs: now.saturating_sub(WARMTH_WINDOW_SECS),
                to_unix_secs: now,
            };
            let Ok(series) = self.store.query(&query).await else {
                continue;
            };
            let mut merged = PrefixSketch::default();
            for (_, sketch) in &series {
                if let Some(prefix) = sketch.field(&field).and_then(|f| f.as_prefix()) {
                    merged.merge(prefix);
                }
            }
            *slot = Some(merged);
        }
        let mut keys = keys.into_iter();
        for resource_spans in &mut request.resource_spans {
            for scope_spans in &mut resource_spans.scope_spans {
                for span in &mut scope_spans.spans {
                    let Some(Some((cluster, model, hash))) = keys.next() else {
                        continue;
                    };
                    if let Some(Some(sketch)) = wanted.get(&(cluster, model)) {
                        set_attr(&mut span.attributes, WARMTH, warmth(sketch.frequency(hash)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn warmth_thresholds() {
        use super::warmth;
        assert_eq!(
            [0, 1, 2, 7, 8, 100].map(warmth),
            ["cold", "cold", "warm", "warm", "hot", "hot"]
        );
    }
}
