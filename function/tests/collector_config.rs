//! Properties of the rendered collector config that the real collector does
//! not check, for every mix of signal kinds: only traces and metrics
//! pipelines, memory_limiter first, the privacy transform on every traces
//! pipeline, no sampled metrics, no unused component, and `$` always escaped
//! or an `${env:...}` the Deployment defines (so the token only arrives by
//! env). Whether the real collector accepts the config (component types and
//! keys, pipeline references, deprecated names) is tested against otelcol-k8s
//! itself in test/collector/test_config_validate.py.

use std::collections::BTreeSet;

use function_signals::{Config, run_function};
use serde_json::{Value, json};

const KINDS: [&str; 6] = [
    "RequestLifecycle",
    "PrefixHash",
    "Capacity",
    "ColdStart",
    "Cost",
    "Reliability",
];

/// The plain (SingleCluster) ConfigMap and Deployment for a spec.
fn render(signals: Value) -> (String, Value) {
    let req = json!({
        "meta": { "tag": "t" },
        "input": { "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "SingleCluster" },
        "observed": { "composite": { "resource": {
            "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
            "metadata": { "name": "c1" }, "spec": { "signals": signals },
        } } },
    });
    let rsp = run_function(&serde_json::from_value(req).unwrap(), &Config::default());
    let rsp = serde_json::to_value(&rsp).unwrap();
    assert!(
        rsp.get("results").is_none(),
        "unexpected results: {}",
        rsp["results"]
    );
    let resources = &rsp["desired"]["resources"];
    let config = resources["signals-agent-config"]["resource"]["data"]["collector.yaml"]
        .as_str()
        .expect("a ConfigMap with collector.yaml")
        .to_string();
    (
        config,
        resources["signals-agent-deployment"]["resource"].clone(),
    )
}

/// Every spec the tests sweep: all 63 non-empty kind sets, each with both
/// privacy scopes, with and without namespace-limited scraping, and span
/// kinds at equal and at different sample rates.
fn specs() -> Vec<Value> {
    let mut specs = Vec::new();
    for mask in 1u32..(1 << KINDS.len()) {
        for (scope, namespaces, rates) in [
            ("PerTenant", json!([]), (1.0, 1.0)),
            ("Fleet", json!(["team-a", "team-b"]), (0.2, 0.7)),
            ("PerTenant", json!(["team-a"]), (0.5, 0.5)),
        ] {
            let kinds: Vec<Value> = KINDS
                .iter()
                .enumerate()
                .filter(|(i, _)| mask & (1 << i) != 0)
                .map(|(_, name)| match *name {
                    "RequestLifecycle" => json!({ "name": name, "sampleRate": rates.0 }),
                    "PrefixHash" => json!({ "name": name, "sampleRate": rates.1 }),
                    _ => json!({ "name": name }),
                })
                .collect();
            specs.push(json!({ "kinds": kinds, "privacy": { "scope": scope }, "agent": { "scrapeNamespaces": namespaces } }));
        }
    }
    specs
}

fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap()
}

const COMPONENT_CLASSES: [&str; 5] = [
    "receivers",
    "processors",
    "exporters",
    "extensions",
    "connectors",
];

fn check_config(text: &str, deployment: &Value) -> Result<(), String> {
    let config: Value = serde_yaml::from_str(text).map_err(|e| format!("does not parse: {e}"))?;
    let mut used: BTreeSet<(String, String)> = BTreeSet::new();
    let pipelines = config["service"]["pipelines"]
        .as_object()
        .ok_or("no service.pipelines")?;
    if pipelines.is_empty() {
        return Err("no pipelines".into());
    }
    for (name, pipeline) in pipelines {
        let signal = component_type(name);
        if !["traces", "metrics"].contains(&signal) {
            return Err(format!(
                "pipeline {name}: this bus carries only traces and metrics"
            ));
        }
        for class in ["receivers", "processors", "exporters"] {
            for id in pipeline[class].as_array().into_iter().flatten() {
                let id = id.as_str().ok_or("ids are strings")?;
                used.insert((class.to_string(), id.to_string()));
            }
        }
        if pipeline["processors"][0] != "memory_limiter" {
            return Err(format!("pipeline {name}: memory_limiter must come first"));
        }
        let processors: Vec<&str> = pipeline["processors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if signal == "traces" && !processors.contains(&"transform/privacy") {
            return Err(format!(
                "pipeline {name} exports spans without the privacy transform"
            ));
        }
        if signal == "metrics"
            && processors
                .iter()
                .any(|p| component_type(p) == "probabilistic_sampler")
        {
            return Err(format!("pipeline {name} samples metrics"));
        }
    }
    // A plain statement list runs in the most specific context any statement
    // names (span events, for transform/privacy), so groups name theirs.
    for (id, body) in config["processors"].as_object().into_iter().flatten() {
        if component_type(id) != "transform" {
            continue;
        }
        for (key, groups) in body.as_object().unwrap() {
            if key.ends_with("_statements")
                && !groups
                    .as_array()
                    .is_some_and(|g| g.iter().all(|g| g["context"].is_string()))
            {
                return Err(format!(
                    "processors {id} {key}: every statement group names its context"
                ));
            }
        }
    }
    for id in config["service"]["extensions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        used.insert(("extensions".to_string(), id.as_str().unwrap().to_string()));
    }
    // The collector accepts a defined but unused component silently; here it
    // means a rendering branch built something no pipeline runs.
    for class in COMPONENT_CLASSES {
        for id in config
            .get(class)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(id, _)| id)
        {
            if !used.contains(&(class.to_string(), id.clone())) {
                return Err(format!("{class} {id} is defined but unused"));
            }
        }
    }
    check_dollars(text, deployment)
}

/// Every `$` is `$$` (a literal dollar) or `${env:NAME}` for a NAME the
/// container's env defines; anything else the collector would try to expand.
fn check_dollars(text: &str, deployment: &Value) -> Result<(), String> {
    let env: BTreeSet<&str> = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        if bytes.get(i + 1) == Some(&b'$') {
            i += 2;
            continue;
        }
        let rest = &text[i..];
        let Some(inner) = rest
            .strip_prefix("${env:")
            .and_then(|r| r.split_once('}'))
            .map(|(name, _)| name)
        else {
            return Err(format!("unescaped $ at {:?}", &rest[..rest.len().min(30)]));
        };
        let valid = inner
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid || !env.contains(inner) {
            return Err(format!(
                "${{env:{inner}}} is not an env var the container defines"
            ));
        }
        i += "${env:}".len() + inner.len();
    }
    Ok(())
}

#[test]
fn every_kind_mix_renders_a_well_formed_config() {
    let specs = specs();
    assert_eq!(specs.len(), 63 * 3);
    for spec in specs {
        let (config, deployment) = render(spec.clone());
        if let Err(problem) = check_config(&config, &deployment) {
            panic!("{problem}\nspec: {spec}\nconfig:\n{config}");
        }
        // What a YAML parser reads back prints to the same bytes: the printer is lossless here.
        let parsed: Value = serde_yaml::from_str(&config).unwrap();
        assert_eq!(
            function_signals::render::yaml::to_yaml(&parsed),
            config,
            "spec: {spec}"
        );
    }
}

#[test]
fn the_checker_catches_broken_configs() {
    let (config, deployment) =
        render(json!({ "kinds": [{ "name": "RequestLifecycle" }, { "name": "Capacity" }] }));
    assert!(check_config(&config, &deployment).is_ok());
    let broken = [
        (
            config.replacen(
                "      - memory_limiter\n",
                "      - resource/cluster\n      - memory_limiter\n",
                1,
            ),
            "memory_limiter must come first",
        ),
        (
            config.replace("      - transform/privacy\n", ""),
            "without the privacy transform",
        ),
        (
            config.replace("      - groupbyattrs/scrape_target\n", ""),
            "groupbyattrs/scrape_target is defined but unused",
        ),
        (
            config.replace("${env:MODELPLANE_INGEST_TOKEN}", "${env:OTHER_TOKEN}"),
            "OTHER_TOKEN",
        ),
        (config.replace("$$1", "$1"), "unescaped $"),
        (flat_privacy_statements(&config), "names its context"),
    ];
    for (text, expected) in broken {
        let error = check_config(&text, &deployment).expect_err(expected);
        assert!(
            error.contains(expected),
            "{error} should mention {expected}"
        );
    }
}

/// transform/privacy written as one plain list, as it once was.
fn flat_privacy_statements(config: &str) -> String {
    let mut config: Value = serde_yaml::from_str(config).unwrap();
    let privacy = &mut config["processors"]["transform/privacy"]["trace_statements"];
    let flat: Vec<Value> = privacy
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|group| group["statements"].as_array().unwrap().clone())
        .collect();
    *privacy = Value::Array(flat);
    function_signals::render::yaml::to_yaml(&config)
}

#[test]
fn span_pipelines_follow_the_contract() {
    let (config, _) = render(json!({ "kinds": [
        { "name": "RequestLifecycle", "sampleRate": 0.2 }, { "name": "PrefixHash", "sampleRate": 0.7 },
    ] }));
    let config: Value = serde_yaml::from_str(&config).unwrap();
    for (suffix, signal, rate) in [
        ("request_lifecycle", "RequestLifecycle", "0.2"),
        ("prefix_hash", "PrefixHash", "0.7"),
    ] {
        let pipeline = &config["service"]["pipelines"][format!("traces/{suffix}")];
        let processors: Vec<&str> = pipeline["processors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        // Sampled before anything else works on the spans; tagged last, after privacy.
        assert_eq!(processors[1], format!("probabilistic_sampler/{suffix}"));
        assert_eq!(
            processors.last().unwrap(),
            &format!("transform/tag_{suffix}")
        );
        assert!(
            processors.iter().position(|p| *p == "transform/privacy")
                < processors
                    .iter()
                    .position(|p| p.starts_with("transform/tag_"))
        );
        assert_eq!(
            config["processors"][format!("transform/tag_{suffix}")]["trace_statements"],
            json!([{ "context": "span", "statements": [
                format!(r#"set(span.attributes["modelplane.signal"], "{signal}")"#),
                format!(r#"set(span.attributes["modelplane.sample_rate"], {rate})"#),
            ] }])
        );
    }
    assert_eq!(
        config["processors"]["resource/cluster"]["attributes"],
        json!([{ "key": "modelplane.cluster", "value": "c1", "action": "upsert" }])
    );
    let exporter = &config["exporters"]["otlp_grpc/aggregator"];
    assert_eq!(exporter["compression"], "gzip");
    assert_eq!(
        exporter["headers"]["authorization"],
        "Bearer ${env:MODELPLANE_INGEST_TOKEN}"
    );
    assert_eq!(exporter["retry_on_failure"]["enabled"], true);
    assert_eq!(exporter["sending_queue"]["enabled"], true);
}

#[test]
fn metrics_are_filtered_by_kind_not_sampled() {
    let keep_regex = |kinds: Value| {
        let (config, _) = render(json!({ "kinds": kinds }));
        let config: Value = serde_yaml::from_str(&config).unwrap();
        config["receivers"]["prometheus/engines"]["config"]["scrape_configs"][0]["metric_relabel_configs"][0]["regex"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let capacity = keep_regex(json!([{ "name": "Capacity" }]));
    assert!(
        capacity.contains("num_requests_(running") && !capacity.contains("prompt_tokens"),
        "{capacity}"
    );
    let cost = keep_regex(json!([{ "name": "Cost" }]));
    assert!(
        cost.contains("prompt_tokens") && !cost.contains("num_requests_"),
        "{cost}"
    );
    let both = keep_regex(json!([{ "name": "Capacity" }, { "name": "Cost" }]));
    assert_eq!(both, format!("{capacity}|{cost}"));
}

#[test]
fn the_deployment_is_locked_down() {
    let (config, deployment) = render(
        json!({ "kinds": [{ "name": "Capacity" }], "agent": { "resources": { "limits": { "memory": "2Gi" } } } }),
    );
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["args"], json!(["--config=/conf/collector.yaml"]));
    assert_eq!(
        container["image"],
        "otel/opentelemetry-collector-k8s:0.159.0"
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(pod["securityContext"]["runAsUser"], 10001.0);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    assert_eq!(
        container["securityContext"]["capabilities"]["drop"],
        json!(["ALL"])
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({ "path": "/", "port": "health" })
    );
    assert_eq!(
        container["resources"]["limits"],
        json!({ "cpu": "1", "memory": "2Gi" })
    );
    let env = container["env"].as_array().unwrap();
    assert!(env.contains(&json!({ "name": "GOMEMLIMIT", "value": "1638MiB" })));
    // SingleCluster, agent in the token namespace: it reads the aggregator's Secret itself.
    assert!(env.contains(&json!({ "name": "MODELPLANE_INGEST_TOKEN", "valueFrom": { "secretKeyRef": { "name": "signals-ingest-c1", "key": "token", "optional": false } } })));
    let config: Value = serde_yaml::from_str(&config).unwrap();
    assert_eq!(
        config["extensions"]["health_check"]["endpoint"],
        "${env:MY_POD_IP}:13133"
    );
}
