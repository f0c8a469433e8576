//! The forwarder's own ServiceAccount, with no API access and no token
//! mounted: it reads nothing from the API server.

use serde_json::{Value, json};

use super::ForwarderPlan;

pub fn service_account(plan: &ForwarderPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": plan.metadata(),
        "automountServiceAccountToken": false,
    })
}
