use serde_json::json;

use super::*;

fn key(tenant: &str, cluster: &str, model: &str) -> SeriesKey {
    SeriesKey {
        tenant: tenant.into(),
        cluster: cluster.into(),
        model: model.into(),
        kind: apis::SignalKind::RequestLifecycle,
    }
}

fn service(ns: &str, name: &str, scope: &str) -> serde_json::Value {
    json!({
        "apiVersion": "modelplane.ai/v1alpha1", "kind": "ModelService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"observability": {"metrics": {"scope": scope}}},
    })
}

#[test]
fn parses_a_full_inference_cluster() {
    let object = json!({
        "metadata": {"name": "eu-west"},
        "spec": {"cluster": {"source": "Existing"}, "signals": {
            "kinds": [{"name": "RequestLifecycle", "sampleRate": 0.5}, {"name": "Cost"}],
            "privacy": {"scope": "Fleet"},
            "retention": {"sketches": "7d"},
            "cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": 2.5}]},
            "aggregator": {"tokenSecretRef": {"name": "tok", "key": "token"}},
            "traceForwarding": {"namespaces": ["team-b", "team-a"]},
        }},
        "status": {"signals": {"enabledKinds": ["Cost"], "agentReporting": true}},
    });
    let entry = cluster_from_object(&object).unwrap();
    assert_eq!(
        entry
            .trace_forwarding_namespaces
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        vec!["team-a", "team-b"]
    );
    assert_eq!(entry.name, "eu-west");
    assert!(entry.signals_configured);
    assert_eq!(
        entry.enabled_kinds,
        vec![apis::SignalKind::RequestLifecycle, apis::SignalKind::Cost]
    );
    assert_eq!(entry.sample_rates[&apis::SignalKind::RequestLifecycle], 0.5);
    assert_eq!(entry.sample_rates[&apis::SignalKind::Cost], 1.0);
    assert_eq!(entry.privacy, apis::PrivacyScope::Fleet);
    assert_eq!(entry.retention.as_secs(), 7 * 86_400);
    assert_eq!(entry.pricing["H100"].price_per_gpu_hour, 2.5);
    assert_eq!(entry.pricing["H100"].currency, "USD");
    assert_eq!(entry.token_secret_ref.unwrap().name, "tok");
    let observed = entry.observed_status.unwrap();
    assert_eq!(observed.enabled_kinds, vec![apis::SignalKind::Cost]);
    assert_eq!(observed.agent_reporting, Some(true));
}

#[test]
fn a_clusters_uid_is_kept_for_owner_references() {
    let with_uid = json!({"metadata": {"name": "c", "uid": "6f1c-uid"}, "spec": {}});
    assert_eq!(
        cluster_from_object(&with_uid).unwrap().uid.as_deref(),
        Some("6f1c-uid")
    );
    let without = json!({"metadata": {"name": "c"}, "spec": {}});
    assert_eq!(cluster_from_object(&without).unwrap().uid, None);
}

#[test]
fn a_cluster_without_signals_has_nothing_enabled() {
    let entry = cluster_from_object(&json!({"metadata": {"name": "c"}, "spec": {}})).unwrap();
    assert!(!entry.signals_configured);
    assert!(entry.enabled_kinds.is_empty());
    assert_eq!(entry.retention, apis::RetentionDuration::DEFAULT);
}

#[test]
fn bad_specs_are_errors_naming_object_and_field() {
    let unknown_kind = json!({"metadata": {"name": "c"},
        "spec": {"signals": {"kinds": [{"name": "Bogus"}]}}});
    let error = cluster_from_object(&unknown_kind).unwrap_err().to_string();
    assert!(
        error.starts_with("InferenceCluster c: spec.signals.kinds[0].name"),
        "{error}"
    );

    let sampled_metrics = json!({"metadata": {"name": "c"},
        "spec": {"signals": {"kinds": [{"name": "Capacity", "sampleRate": 0.5}]}}});
    let error = cluster_from_object(&sampled_metrics)
        .unwrap_err()
        .to_string();
    assert!(error.contains("kinds[0].sampleRate"), "{error}");

    let bad_rate = json!({"metadata": {"name": "s", "namespace": "t"},
        "spec": {"observability": {"metrics": {"sampleRate": 3.0}}}});
    let error = service_from_object(&bad_rate).unwrap_err().to_string();
    assert!(error.starts_with("ModelService t/s:"), "{error}");
    assert!(error.contains("sampleRate"), "{error}");

    let no_namespace = json!({"metadata": {"name": "s"}});
    assert!(service_from_object(&no_namespace).is_err());
    assert!(cluster_from_object(&json!({"metadata": {}})).is_err());
}

#[test]
fn a_bad_trace_header_is_not_read_so_cannot_leak() {
    let object = json!({"metadata": {"name": "s", "namespace": "t"},
    "spec": {"observability": {
        "metrics": {"scope": "Fleet"},
        "traces": {"enabled": true, "headers": {"Authorization": {"value": 42, "bogus": "sk-secret"}}},
    }}});
    let entry = service_from_object(&object).unwrap();
    assert_eq!(entry.scope, apis::MetricsScope::Fleet);
}

#[test]
fn service_models_default_to_status_model_and_names_or_the_annotation() {
    let mut object = service("team-a", "chat", "PerTenant");
    object["status"] = json!({"model": "team-a/chat-v2"});
    let entry = service_from_object(&object).unwrap();
    assert_eq!(entry.models, vec!["team-a/chat-v2", "team-a/chat", "chat"]);

    object["metadata"]["annotations"] =
        json!({MODELS_ANNOTATION: "meta-llama/Llama-3.1-8B, qwen3 ,"});
    let entry = service_from_object(&object).unwrap();
    assert_eq!(entry.models, vec!["meta-llama/Llama-3.1-8B", "qwen3"]);
}

#[test]
fn fleet_inclusion_needs_sync_and_an_opt_in() {
    let directory = Directory::new();
    directory.upsert_service(service_from_object(&service("a", "chat", "Fleet")).unwrap());
    assert!(
        !directory.fleet_includes(&key("a", "c1", "chat")),
        "nothing joins the fleet before the directory is synced"
    );
    directory.replace_clusters(vec![]);
    directory.replace_services(vec![
        service_from_object(&service("a", "chat", "Fleet")).unwrap(),
        service_from_object(&service("b", "chat", "PerTenant")).unwrap(),
    ]);
    assert!(directory.is_synced());
    assert!(directory.is_fleet_opted_in("a", "chat"));
    assert!(directory.is_fleet_opted_in("a", "a/chat"));
    assert!(!directory.is_fleet_opted_in("b", "chat"));
    assert!(directory.fleet_includes(&key("a", "c1", "chat")));
    assert!(!directory.fleet_includes(&key("b", "c1", "chat")));
    assert!(!directory.fleet_includes(&key("a", "c1", "other")));

    let mut shared = ClusterEntry::new("shared");
    shared.privacy = apis::PrivacyScope::Fleet;
    directory.upsert_cluster(shared);
    assert!(directory.fleet_includes(&key("b", "shared", "chat")));
    assert!(directory.cluster_shares_fleet("shared"));

    directory.remove_service("a", "chat");
    assert!(!directory.fleet_includes(&key("a", "c1", "chat")));
    assert_eq!(directory.services_for_model("b", "chat").len(), 1);
    assert!(directory.services_for_model("a", "chat").is_empty());
}

#[test]
fn every_change_notifies_subscribers() {
    let directory = Directory::new();
    let mut changes = directory.subscribe();
    directory.upsert_cluster(ClusterEntry::new("c"));
    assert!(changes.has_changed().unwrap());
    changes.borrow_and_update();
    directory.remove_cluster("c");
    assert!(changes.has_changed().unwrap());
}

#[test]
fn a_status_only_change_does_not_notify() {
    let directory = Directory::new();
    let mut changes = directory.subscribe();
    let mut entry = ClusterEntry::new("c");
    directory.upsert_cluster(entry.clone());
    changes.borrow_and_update();
    entry.observed_status = Some(apis::SignalsStatus::default());
    directory.upsert_cluster(entry.clone());
    assert!(!changes.has_changed().unwrap());
    assert!(directory.cluster("c").unwrap().observed_status.is_some());
    entry.enabled_kinds = vec![apis::SignalKind::Cost];
    directory.upsert_cluster(entry);
    assert!(changes.has_changed().unwrap());

    let mut service = service_from_object(&service("t", "s", "Fleet")).unwrap();
    directory.upsert_service(service.clone());
    changes.borrow_and_update();
    service.observed_metrics = Some(apis::ServiceMetrics::default());
    directory.upsert_service(service);
    assert!(!changes.has_changed().unwrap());
    assert!(
        directory
            .service("t", "s")
            .unwrap()
            .observed_metrics
            .is_some()
    );
}

#[test]
fn trace_forwarding_namespaces_are_read_per_cluster_and_default_to_none() {
    let without = json!({"metadata": {"name": "c"}, "spec": {"signals": {}}});
    assert!(
        cluster_from_object(&without)
            .unwrap()
            .trace_forwarding_namespaces
            .is_empty()
    );
    let directory = Directory::new();
    directory.upsert_cluster(
        cluster_from_object(&json!({
            "metadata": {"name": "eu-west"},
            "spec": {"signals": {"traceForwarding": {"namespaces": ["team-a"]}}},
        }))
        .unwrap(),
    );
    assert!(directory.forwards_traces_of("eu-west", "team-a"));
    assert!(!directory.forwards_traces_of("eu-west", "team-b"));
    assert!(!directory.forwards_traces_of("us-east", "team-a"));
}
