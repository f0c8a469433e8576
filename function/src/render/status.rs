//! What the function reports: readiness of composed resources judged from
//! their observed state, the XR's `status.signals`, and the `AgentReady`
//! condition (Crossplane owns `Ready` and `Synced`).

use apis::SignalKind;
use serde_json::{Value, json};

/// Condition type on InferenceClusters.
pub const AGENT_READY: &str = "AgentReady";

/// Reasons of [`AGENT_READY`].
pub mod reason {
    /// Every agent resource is ready on the workload cluster.
    pub const AVAILABLE: &str = "Available";
    /// Rendered; some resources are not ready yet.
    pub const CREATING: &str = "Creating";
    /// MultiCluster mode and no ProviderConfig for the workload cluster yet.
    pub const WAITING_FOR_PROVIDER_CONFIG: &str = "WaitingForProviderConfig";
    /// The XR has no `spec.signals`.
    pub const SIGNALS_DISABLED: &str = "SignalsDisabled";
    /// `spec.signals.kinds` is empty: nothing to capture.
    pub const NO_SIGNAL_KINDS: &str = "NoSignalKinds";
    /// Warning: the XR's status names another control-plane token Secret
    /// than the one the function copies.
    pub const INGEST_TOKEN_ELSEWHERE: &str = "IngestTokenElsewhere";
    /// Warning: SingleCluster agent outside the token namespace, no tokenSecretRef.
    pub const INGEST_TOKEN_UNREACHABLE: &str = "IngestTokenUnreachable";
}

/// Whether an observed composed resource is ready. provider-kubernetes
/// Objects carry the provider's verdict in their Ready condition; plain
/// Deployments are ready when every wanted replica is available for the
/// current generation; anything else is ready once it exists.
pub fn is_ready(observed: &Value) -> bool {
    let kind = observed["kind"].as_str().unwrap_or_default();
    let api_version = observed["apiVersion"].as_str().unwrap_or_default();
    if kind == "Object" && api_version.starts_with("kubernetes.") {
        return has_true_condition(observed, "Ready");
    }
    if kind == "Deployment" {
        let generation = observed["metadata"]["generation"].as_i64();
        let observed_generation = observed["status"]["observedGeneration"].as_i64();
        let current = match (generation, observed_generation) {
            (Some(g), Some(o)) => o >= g,
            _ => true,
        };
        let wanted = observed["spec"]["replicas"].as_i64().unwrap_or(1);
        let available = observed["status"]["availableReplicas"]
            .as_i64()
            .unwrap_or(0);
        return current && available >= wanted;
    }
    true
}

fn has_true_condition(observed: &Value, typ: &str) -> bool {
    observed["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == typ && c["status"] == "True")
        })
}

/// The desired XR status this function owns: only `signals.enabledKinds`
/// (the aggregator writes the rest of `status.signals` with its own manager).
pub fn signals_status(kinds: &[SignalKind]) -> Value {
    json!({ "signals": { "enabledKinds": kinds } })
}
