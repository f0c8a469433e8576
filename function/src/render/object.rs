//! Wraps agent manifests in provider-kubernetes `Object`s (the v2 namespaced
//! managed resource, `kubernetes.m.crossplane.io/v1alpha1`, as Modelplane
//! uses) so they land on the workload cluster named by the XR's ProviderConfig.

use serde_json::{Value, json};

use super::{AgentPlan, common_labels};
use crate::input::ProviderConfigKind;

pub const OBJECT_API_VERSION: &str = "kubernetes.m.crossplane.io/v1alpha1";
pub const OBJECT_KIND: &str = "Object";

/// The ProviderConfig the Objects use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    pub name: String,
    pub kind: ProviderConfigKind,
}

/// Readiness the provider reports on the Object: a Deployment is ready once
/// available; everything else once it exists.
fn readiness(manifest: &Value) -> Value {
    if manifest["kind"] == "Deployment" {
        json!({
            "policy": "DeriveFromCelQuery",
            "celQuery": "object.status.conditions.exists(c, c.type == 'Available' && c.status == 'True')",
        })
    } else {
        json!({ "policy": "SuccessfulCreate" })
    }
}

pub fn wrap(
    plan: &AgentPlan,
    manifest: Value,
    provider_config: &ProviderConfig,
    object_namespace: &str,
) -> Value {
    json!({
        "apiVersion": OBJECT_API_VERSION,
        "kind": OBJECT_KIND,
        "metadata": { "namespace": object_namespace, "labels": common_labels(plan) },
        "spec": {
            "providerConfigRef": { "kind": provider_config.kind.as_str(), "name": provider_config.name },
            "readiness": readiness(&manifest),
            "forProvider": { "manifest": manifest },
        },
    })
}
