//! ServiceAccount and least-privilege RBAC. Pod discovery (scrape targets and
//! `k8s_attributes`) needs `pods` get/list/watch: per namespace through Roles
//! when `agent.scrapeNamespaces` is set, cluster-wide otherwise. Only what
//! must be cluster-scoped goes in the ClusterRole: `/metrics` for the
//! authenticated EPP endpoint (non-resource URLs exist only there).

use serde_json::{Value, json};

use super::{AGENT_NAME, AgentPlan, Source, keys, metadata};

pub fn service_account(plan: &AgentPlan) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(plan, AGENT_NAME, Some(&plan.namespace)),
        // The projected token is how k8s_attributes, pod discovery and the EPP scrape authenticate.
        "automountServiceAccountToken": true,
    })
}

/// The cluster-scoped name: one agent per namespace may exist on a cluster.
pub fn cluster_role_name(plan: &AgentPlan) -> String {
    format!("{AGENT_NAME}-{}", plan.namespace)
}

fn pod_rule() -> Value {
    json!({ "apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"] })
}

fn subject(plan: &AgentPlan) -> Value {
    json!([{ "kind": "ServiceAccount", "name": AGENT_NAME, "namespace": plan.namespace }])
}

/// Roles, ClusterRoles and their bindings, keyed by composition resource name.
pub fn roles(plan: &AgentPlan) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut cluster_rules = Vec::new();
    if plan.scrape_namespaces.is_empty() {
        cluster_rules.push(pod_rule());
    } else {
        for ns in &plan.scrape_namespaces {
            out.push((
                keys::role(ns),
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "Role",
                    "metadata": metadata(plan, AGENT_NAME, Some(ns)),
                    "rules": [pod_rule()],
                }),
            ));
            out.push((
                keys::role_binding(ns),
                json!({
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "RoleBinding",
                    "metadata": metadata(plan, AGENT_NAME, Some(ns)),
                    "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": AGENT_NAME },
                    "subjects": subject(plan),
                }),
            ));
        }
    }
    if plan.sources().contains(&Source::Epp) {
        cluster_rules.push(json!({ "nonResourceURLs": ["/metrics"], "verbs": ["get"] }));
    }
    if !cluster_rules.is_empty() {
        let name = cluster_role_name(plan);
        out.push((
            keys::CLUSTER_ROLE.to_string(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": metadata(plan, &name, None),
                "rules": cluster_rules,
            }),
        ));
        out.push((
            keys::CLUSTER_ROLE_BINDING.to_string(),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": metadata(plan, &name, None),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name },
                "subjects": subject(plan),
            }),
        ));
    }
    out
}
