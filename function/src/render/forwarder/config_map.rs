//! The ConfigMap with the forwarder's collector config: a stable name, rolled
//! by the Deployment's checksum annotation. Literal header values are here
//! (they are plain text in the XR too); values from Secrets never are.

use serde_json::{Value, json};

use super::ForwarderPlan;
use super::config::CONFIG_KEY;

pub fn config_map(plan: &ForwarderPlan, config_yaml: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": plan.metadata(),
        "data": { CONFIG_KEY: config_yaml },
    })
}
