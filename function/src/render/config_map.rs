//! The ConfigMap holding the collector config. Its name is stable; the
//! Deployment's checksum annotation, not a new name, rolls the pods.

use serde_json::{Value, json};

use super::{AgentPlan, CONFIG_KEY, CONFIG_MAP_NAME, metadata};

pub fn config_map(plan: &AgentPlan, config_yaml: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(plan, CONFIG_MAP_NAME, Some(&plan.namespace)),
        "data": { CONFIG_KEY: config_yaml },
    })
}
