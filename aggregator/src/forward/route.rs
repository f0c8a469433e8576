//! Which spans of an export request go to which forwarder, and the copies
//! that go. Only spans the agent sent on the trace path (raw, resource
//! attribute `modelplane.trace_path: forward`) are forwarded. A resource's
//! tenant is resolved as normalize resolves it (`modelplane.tenant`, else
//! `k8s.namespace.name`), and it is forwarded only when the **authenticated**
//! cluster's InferenceCluster lists that tenant in
//! `spec.signals.traceForwarding.namespaces`: a cluster cannot push spans
//! into another tenant's backend by claiming its name (an unauthenticated
//! request, or a cluster without an InferenceCluster, forwards nothing). Such
//! spans are counted as refused. Otherwise a span goes to the forwarders of
//! that tenant's ModelServices with traces on that serve its model, and
//! nowhere else. Each copy's resource carries the tenant, service and routing
//! cluster as the aggregator resolved them, overwriting whatever the sender
//! put under those keys: the forwarder keeps only spans stamped with its own
//! tenant and service.

use std::collections::{BTreeMap, BTreeSet};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use apis::wire::{FORWARD_PATH, TRACE_PATH_ATTRIBUTE};

use crate::signal::Origin;

pub const TENANT: &str = "modelplane.tenant";
pub const SERVICE: &str = "modelplane.service";
pub const ROUTING_CLUSTER: &str = "modelplane.routing.cluster";

/// A ModelService with traces on, as the router needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub tenant: String,
    pub service: String,
    pub models: Vec<String>,
    pub address: String,
}

/// Routes by tenant, and which tenants each cluster may forward spans of.
#[derive(Debug, Default)]
pub struct Routes {
    pub by_tenant: BTreeMap<String, Vec<Route>>,
    /// InferenceCluster name → its `spec.signals.traceForwarding.namespaces`.
    pub tenants_by_cluster: BTreeMap<String, BTreeSet<String>>,
}

impl Routes {
    pub fn is_empty(&self) -> bool {
        self.by_tenant.is_empty()
    }

    /// Whether spans of `tenant` from (authenticated) `cluster` may be forwarded.
    pub fn cluster_forwards(&self, cluster: &str, tenant: &str) -> bool {
        self.tenants_by_cluster
            .get(cluster)
            .is_some_and(|tenants| tenants.contains(tenant))
    }
}

/// What [`select`] made of a request.
#[derive(Debug, Default)]
pub struct Selection {
    /// The copies each route receives, keyed by address, with their span counts.
    pub copies: BTreeMap<String, (ExportTraceServiceRequest, usize)>,
    /// Spans whose tenant the authenticated cluster does not forward traces
    /// for (or that came from no authenticated cluster, or one without an
    /// InferenceCluster): sent nowhere.
    pub refused: usize,
}

impl Selection {
    /// Spans that have a route.
    pub fn routed(&self) -> usize {
        self.copies.values().map(|(_, n)| n).sum()
    }
}

fn span_count(resource_spans: &ResourceSpans) -> usize {
    resource_spans
        .scope_spans
        .iter()
        .map(|ss| ss.spans.len())
        .sum()
}

pub(crate) fn str_value(value: Option<&AnyValue>) -> Option<&str> {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => Some(s.as_str()),
        _ => None,
    }
}

fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| str_value(kv.value.as_ref()))
        .filter(|s| !s.is_empty())
}

pub(crate) fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// Sets `key` (replacing every existing value of it).
pub(crate) fn set_attr(attributes: &mut Vec<KeyValue>, key: &str, value: &str) {
    attributes.retain(|kv| kv.key != key);
    attributes.push(string_kv(key, value));
}

/// Moves the resources marked for the trace path out of `request`; `None`
/// when there are none (the request is left untouched).
pub fn take_forward_path(
    request: &mut ExportTraceServiceRequest,
) -> Option<ExportTraceServiceRequest> {
    let marked = |rs: &ResourceSpans| {
        rs.resource
            .as_ref()
            .is_some_and(|r| attr(&r.attributes, TRACE_PATH_ATTRIBUTE) == Some(FORWARD_PATH))
    };
    if !request.resource_spans.iter().any(marked) {
        return None;
    }
    let (forward, rest): (Vec<ResourceSpans>, Vec<ResourceSpans>) =
        std::mem::take(&mut request.resource_spans)
            .into_iter()
            .partition(marked);
    request.resource_spans = rest;
    Some(ExportTraceServiceRequest {
        resource_spans: forward,
    })
}

/// The copies of `request`'s spans each route receives, keyed by address,
/// and how many spans were refused because the authenticated cluster does
/// not forward traces of the tenant they name.
pub fn select(routes: &Routes, origin: &Origin, request: &ExportTraceServiceRequest) -> Selection {
    let mut selection = Selection::default();
    for resource_spans in &request.resource_spans {
        let attributes = resource_spans
            .resource
            .as_ref()
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default();
        let Some(tenant) =
            attr(attributes, TENANT).or_else(|| attr(attributes, "k8s.namespace.name"))
        else {
            continue;
        };
        // Only the authenticated cluster counts, never a claimed one.
        let Some(cluster) = origin
            .authenticated_cluster
            .as_deref()
            .filter(|cluster| routes.cluster_forwards(cluster, tenant))
        else {
            selection.refused += span_count(resource_spans);
            continue;
        };
        let Some(tenant_routes) = routes.by_tenant.get(tenant) else {
            continue;
        };
        let resource_model = attr(attributes, "modelplane.model")
            .or_else(|| attr(attributes, "gen_ai.request.model"))
            .or_else(|| attr(attributes, "mesh_llm.model"));
        // Per route: the scopes with the spans it gets.
        let mut picked: BTreeMap<usize, Vec<ScopeSpans>> = BTreeMap::new();
        for scope_spans in &resource_spans.scope_spans {
            let mut per_route: BTreeMap<usize, Vec<Span>> = BTreeMap::new();
            for span in &scope_spans.spans {
                let model = attr(&span.attributes, "gen_ai.request.model")
                    .or_else(|| attr(&span.attributes, "gen_ai.response.model"))
                    .or(resource_model);
                let Some(model) = model else { continue };
                for (i, route) in tenant_routes.iter().enumerate() {
                    if route.models.iter().any(|m| m == model) {
                        per_route.entry(i).or_default().push(span.clone());
                    }
                }
            }
            for (i, spans) in per_route {
                picked.entry(i).or_default().push(ScopeSpans {
                    scope: scope_spans.scope.clone(),
                    spans,
                    schema_url: scope_spans.schema_url.clone(),
                });
            }
        }
        for (i, scope_spans) in picked {
            let route = &tenant_routes[i];
            let mut resource = resource_spans.resource.clone().unwrap_or_default();
            resource
                .attributes
                .retain(|kv| kv.key != TRACE_PATH_ATTRIBUTE);
            set_attr(&mut resource.attributes, TENANT, &route.tenant);
            set_attr(&mut resource.attributes, SERVICE, &route.service);
            set_attr(&mut resource.attributes, ROUTING_CLUSTER, cluster);
            let spans: usize = scope_spans.iter().map(|s| s.spans.len()).sum();
            let entry = selection
                .copies
                .entry(route.address.clone())
                .or_insert_with(|| (ExportTraceServiceRequest::default(), 0));
            entry.0.resource_spans.push(ResourceSpans {
                resource: Some(resource),
                scope_spans,
                schema_url: resource_spans.schema_url.clone(),
            });
            entry.1 += spans;
        }
    }
    selection
}
