//! How the cluster's ingest token reaches the agent. The aggregator issues one
//! token per InferenceCluster into a control-plane Secret
//! (`signals-ingest-<cluster>` in the token namespace). In MultiCluster mode a
//! provider-kubernetes Object copies it to Secret `signals-agent-token` on the
//! workload cluster: provider-kubernetes reads `spec.references[].patchesFrom`
//! from the control plane and patches the value into the manifest itself, so
//! the token never passes through this function. A rotation rolls the agent
//! through a pod-template annotation carrying the token's generation (never
//! its value or a hash of it).

use apis::{InferenceCluster, SecretKeySelector, SignalsSpec};
use serde_json::{Value, json};

use super::object::{self, ProviderConfig};
use super::{AgentPlan, DEFAULT_TOKEN_KEY, DEFAULT_TOKEN_SECRET, metadata};
use crate::input::Mode;

/// Name prefix of the aggregator's per-cluster Secret on the control plane.
pub const ISSUED_SECRET_PREFIX: &str = "signals-ingest-";
/// Annotation the aggregator sets on its Secret: the token's generation (1, 2, ...).
/// The copy carries it too, so the function can tell which generation the
/// workload cluster holds.
pub const ISSUED_GENERATION_ANNOTATION: &str = "signals.modelplane.ai/token-generation";
/// Pod-template annotation of the agent: a new value restarts the pods, which
/// read the token from their environment only at start.
pub const POD_GENERATION_ANNOTATION: &str = "signals.modelplane.ai/ingest-token-generation";

/// The control-plane Secret the aggregator issues for one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedSecret {
    pub namespace: String,
    pub name: String,
}

impl IssuedSecret {
    pub fn for_cluster(cluster: &str, token_namespace: &str) -> IssuedSecret {
        IssuedSecret {
            namespace: token_namespace.to_string(),
            name: format!("{ISSUED_SECRET_PREFIX}{cluster}"),
        }
    }
}

/// How the token gets into the agent's namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenDelivery {
    /// `spec.signals.aggregator.tokenSecretRef`: the user keeps that Secret.
    UserSecret,
    /// MultiCluster: an Object copies the issued Secret to `signals-agent-token`.
    CopiedToWorkloadCluster,
    /// SingleCluster, agent in the token namespace: it reads the issued Secret.
    IssuedSecret,
    /// SingleCluster, agent elsewhere: a Pod cannot read another namespace's
    /// Secret, so `signals-agent-token` must be provided in the agent namespace.
    NotDelivered,
}

impl TokenDelivery {
    pub fn new(
        signals: &SignalsSpec,
        mode: Mode,
        agent_namespace: &str,
        token_namespace: &str,
    ) -> Self {
        let user_secret = signals
            .aggregator
            .as_ref()
            .is_some_and(|a| a.token_secret_ref.is_some());
        match mode {
            _ if user_secret => TokenDelivery::UserSecret,
            Mode::MultiCluster => TokenDelivery::CopiedToWorkloadCluster,
            Mode::SingleCluster if agent_namespace == token_namespace => {
                TokenDelivery::IssuedSecret
            }
            Mode::SingleCluster => TokenDelivery::NotDelivered,
        }
    }

    /// The Secret and key the agent's env var reads.
    pub fn secret_key(self, signals: &SignalsSpec, issued: &IssuedSecret) -> SecretKeySelector {
        let default_key = |name: &str| SecretKeySelector {
            name: name.to_string(),
            key: DEFAULT_TOKEN_KEY.to_string(),
        };
        match self {
            TokenDelivery::UserSecret => signals
                .aggregator
                .as_ref()
                .and_then(|a| a.token_secret_ref.clone())
                .unwrap_or_else(|| default_key(DEFAULT_TOKEN_SECRET)),
            TokenDelivery::IssuedSecret => default_key(&issued.name),
            TokenDelivery::CopiedToWorkloadCluster | TokenDelivery::NotDelivered => {
                default_key(DEFAULT_TOKEN_SECRET)
            }
        }
    }
}

/// The generation the agent's pods should be started with, or None when no
/// generation is known (no annotation then).
///
/// Where the function copies the token, the copy's own generation wins: the
/// pods read the copy, and restarting them on the XR's newer generation
/// before provider-kubernetes has copied it would start them with the old
/// token, which stops working when the aggregator's rotation overlap ends.
/// Elsewhere the issuer's generation in the XR status is all there is.
pub fn rollout_generation(
    delivery: TokenDelivery,
    xr: &InferenceCluster,
    copied: Option<i64>,
) -> Option<i64> {
    let issued = xr
        .status
        .as_ref()
        .and_then(|s| s.signals.as_ref())
        .and_then(|s| s.ingest_token.as_ref())
        .map(|t| t.generation);
    match delivery {
        TokenDelivery::CopiedToWorkloadCluster => copied.or(issued),
        _ => issued,
    }
}

/// The generation the workload cluster's copy carries, from the observed
/// Object's `status.atProvider.manifest` (provider-kubernetes' view of the
/// Secret; `--sanitize-secrets` blanks its data but keeps the annotations).
pub fn copied_generation(observed_object: &Value) -> Option<i64> {
    observed_object["status"]["atProvider"]["manifest"]["metadata"]["annotations"]
        [ISSUED_GENERATION_ANNOTATION]
        .as_str()
        .and_then(|g| g.parse().ok())
        .filter(|g: &i64| *g >= 1)
}

/// The Secret the copy creates on the workload cluster. It has no data here:
/// provider-kubernetes patches `data.token` (and the generation annotation)
/// in from the issued Secret on each reconcile.
pub fn agent_token_secret(plan: &AgentPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(plan, DEFAULT_TOKEN_SECRET, Some(&plan.namespace)),
        "type": "Opaque",
    })
}

/// The Object that copies the issued token to `signals-agent-token` on the
/// workload cluster. Ready once the Secret exists there.
pub fn copy_object(
    plan: &AgentPlan,
    provider_config: &ProviderConfig,
    object_namespace: &str,
) -> Value {
    let mut object = object::wrap(
        plan,
        agent_token_secret(plan),
        provider_config,
        object_namespace,
    );
    object["spec"]["references"] = references(&plan.issued_token);
    object
}

/// `spec.references` of the copy's Object: the token and its generation,
/// read from the issued Secret on the control plane.
fn references(issued: &IssuedSecret) -> Value {
    let from_issued = |field_path: String| {
        json!({
            "patchesFrom": {
                "apiVersion": "v1",
                "kind": "Secret",
                "name": issued.name,
                "namespace": issued.namespace,
                "fieldPath": field_path,
            },
            "toFieldPath": field_path,
        })
    };
    json!([
        from_issued(format!("data.{DEFAULT_TOKEN_KEY}")),
        from_issued(format!(
            "metadata.annotations[{ISSUED_GENERATION_ANNOTATION}]"
        )),
    ])
}

/// Where the XR's status says the aggregator put the token, when that is not
/// where this function copies it from: a mismatch of the aggregator's
/// `--token-namespace` and the step input's `tokenNamespace`.
pub fn misplaced_issued_secret(
    xr: &InferenceCluster,
    expected: &IssuedSecret,
) -> Option<IssuedSecret> {
    let reported = xr
        .status
        .as_ref()
        .and_then(|s| s.signals.as_ref())
        .and_then(|s| s.ingest_token.as_ref())?;
    let reported = IssuedSecret {
        namespace: reported.secret_namespace.clone(),
        name: reported.secret_name.clone(),
    };
    (reported != *expected).then_some(reported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copied_generation_reads_the_observed_copy() {
        let observed = |generation: Value| {
            json!({ "status": { "atProvider": { "manifest": { "metadata": { "annotations": {
                ISSUED_GENERATION_ANNOTATION: generation,
            } } } } } })
        };
        assert_eq!(copied_generation(&observed(json!("3"))), Some(3));
        assert_eq!(copied_generation(&observed(json!("0"))), None);
        assert_eq!(copied_generation(&observed(json!("three"))), None);
        assert_eq!(
            copied_generation(&observed(json!(3))),
            None,
            "annotations are strings"
        );
        assert_eq!(copied_generation(&json!({ "status": {} })), None);
    }
}
