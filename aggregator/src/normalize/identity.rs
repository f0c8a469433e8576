//! Who a resource's data belongs to: tenant and cluster from resource
//! attributes (the authenticated cluster wins), plus resource-level defaults
//! for the per-point model and GPU name.

use opentelemetry_proto::tonic::resource::v1::Resource;

use super::attrs::{attribute_set_hash, str_attr};
use super::bounded::{valid_cluster, valid_tenant};
use crate::signal::Origin;

pub(crate) struct ResourceIdentity<'a> {
    pub tenant: &'a str,
    pub cluster: &'a str,
    /// Model named on the resource (mesh-llm and some SDKs put it there).
    pub model: Option<&'a str>,
    /// GPU device name named on the resource.
    pub gpu_name: Option<&'a str>,
    /// Digest of every resource attribute: distinguishes scrape targets
    /// (pods, nodes) in cumulative state without keeping their names.
    pub hash: u64,
}

/// Why a resource's items were refused. Messages name attribute keys only,
/// never the offending values (they could be anything).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdentityError {
    MissingTenant,
    InvalidTenant,
    MissingCluster,
    InvalidCluster,
}

impl IdentityError {
    pub(crate) fn message(self) -> &'static str {
        match self {
            IdentityError::MissingTenant => {
                "missing tenant: set resource attribute modelplane.tenant or k8s.namespace.name"
            }
            IdentityError::InvalidTenant => {
                "invalid tenant: modelplane.tenant / k8s.namespace.name must be 1-63 chars of [a-z0-9._-]"
            }
            IdentityError::MissingCluster => {
                "missing cluster: set resource attribute modelplane.cluster or k8s.cluster.name"
            }
            IdentityError::InvalidCluster => {
                "invalid cluster: modelplane.cluster / k8s.cluster.name must be 1-128 chars of [A-Za-z0-9._-]"
            }
        }
    }
}

/// A resource whose items are refused, and the cluster they would have
/// belonged to when that part of the identity was valid (so the cluster's
/// status can count them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refused<'a> {
    pub error: IdentityError,
    pub cluster: Option<&'a str>,
}

pub(crate) fn resource_identity<'a>(
    origin: &'a Origin,
    resource: Option<&'a Resource>,
) -> Result<ResourceIdentity<'a>, Refused<'a>> {
    let mut tenant = None;
    let mut namespace = None;
    let mut cluster = None;
    let mut k8s_cluster = None;
    let mut model = None;
    let mut gpu_name = None;
    let attributes = resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default();
    for kv in attributes {
        match kv.key.as_str() {
            "modelplane.tenant" => tenant = str_attr(kv),
            "k8s.namespace.name" => namespace = str_attr(kv),
            "modelplane.cluster" => cluster = str_attr(kv),
            "k8s.cluster.name" => k8s_cluster = str_attr(kv),
            // `modelplane.model` is the agent's: the pod's `llm-d.ai/model`
            // label, the only model name llama.cpp's unlabelled series get.
            "mesh_llm.model" | "gen_ai.request.model" | "modelplane.model" => model = str_attr(kv),
            "mesh_llm.gpu_name" => gpu_name = str_attr(kv),
            _ => {}
        }
    }
    let tenant = tenant
        .filter(|t| !t.is_empty())
        .or(namespace.filter(|t| !t.is_empty()))
        .ok_or(IdentityError::MissingTenant)
        .and_then(|t| {
            valid_tenant(t)
                .then_some(t)
                .ok_or(IdentityError::InvalidTenant)
        });
    let cluster = match origin.authenticated_cluster.as_deref() {
        Some(authenticated) => Ok(authenticated),
        None => cluster
            .filter(|c| !c.is_empty())
            .or(k8s_cluster.filter(|c| !c.is_empty()))
            .ok_or(IdentityError::MissingCluster),
    }
    .and_then(|c| {
        valid_cluster(c)
            .then_some(c)
            .ok_or(IdentityError::InvalidCluster)
    });
    // The tenant's problem is named first: it is the one to fix first.
    match (tenant, cluster) {
        (Ok(tenant), Ok(cluster)) => Ok(ResourceIdentity {
            tenant,
            cluster,
            model,
            gpu_name,
            hash: attribute_set_hash(attributes),
        }),
        (Err(error), cluster) => Err(Refused {
            error,
            cluster: cluster.ok(),
        }),
        (Ok(_), Err(error)) => Err(Refused {
            error,
            cluster: None,
        }),
    }
}
