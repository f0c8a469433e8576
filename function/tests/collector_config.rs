//! Properties of the rendered collector config that the real collector does
//! not check, for every mix of signal kinds: only traces and metrics
//! pipelines, memory_limiter first, the privacy transform on every traces
//! pipeline, no sampled metrics, no unused component, and `$` always escaped
//! or an `${env:...}` the Deployment defines (so the token only arrives by
//! env); and that what the agent keeps is what the aggregator reads
//! (`apis::wire`): the scrape filters and the span allowlist. A table of
//! particular renders (tests/support) pins the parts that carry the contract:
//! span pipelines, fleet scope, the privacy transform, the Deployment's
//! lockdown. Whether the real collector accepts the config (component types
//! and keys, pipeline references, deprecated names) is tested against
//! otelcol-k8s itself in test/collector/test_config_validate.py.

use std::collections::{BTreeMap, BTreeSet};

use apis::SignalKind;
use apis::wire::{
    PROCESS_START_TIME, RESOURCE_ATTRIBUTES, SCRAPED_METRICS, SPAN_ATTRIBUTES, ScrapeJob,
};
use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use function_signals::{Config, run_function};
use regex::Regex;
use serde_json::{Value, json};
use support::{Case, Want, case};

mod support;

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

/// Each rendered scrape job's `metric_relabel_configs` keep rule, compiled
/// as Prometheus compiles it (RE2, anchored at both ends).
fn keep_rules(config: &Value) -> BTreeMap<ScrapeJob, Regex> {
    let mut rules = BTreeMap::new();
    for (id, job) in [
        ("prometheus/engines", ScrapeJob::Engines),
        ("prometheus/epp", ScrapeJob::Epp),
        ("prometheus/dcgm", ScrapeJob::Dcgm),
    ] {
        let Some(receiver) = config["receivers"].get(id) else {
            continue;
        };
        let rules_of_job = &receiver["config"]["scrape_configs"][0]["metric_relabel_configs"];
        let keep: Vec<&Value> = rules_of_job
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "keep")
            .collect();
        assert_eq!(keep.len(), 1, "{id}: {rules_of_job}");
        assert_eq!(keep[0]["source_labels"], json!(["__name__"]), "{id}");
        let regex = keep[0]["regex"].as_str().unwrap();
        rules.insert(job, Regex::new(&format!("^(?s:{regex})$")).unwrap());
    }
    rules
}

fn parsed(signals: Value) -> Value {
    serde_yaml::from_str(&render(signals).0).unwrap()
}

/// How a scraped metric's samples are named on `/metrics`: as is (gauges,
/// counters without the suffix), `_total` (counters), and a histogram's
/// series.
fn exposed_names(prefix: &str, name: &str) -> [String; 5] {
    ["", "_total", "_bucket", "_sum", "_count"].map(|suffix| format!("{prefix}{name}{suffix}"))
}

/// Table-driven from apis::wire::SCRAPED_METRICS, the list the aggregator's
/// routing is tested against (aggregator normalize::sources): with one kind
/// on, a job keeps exactly the mapped metrics that kind reads, in every
/// spelling, and a job is rendered exactly when it has one.
#[test]
fn every_mapped_metric_is_kept_exactly_for_the_kinds_that_read_it() {
    for kind in SignalKind::ALL {
        let config = parsed(json!({ "kinds": [{ "name": kind.as_str() }] }));
        let rules = keep_rules(&config);
        for family in SCRAPED_METRICS {
            let job_reads_kind = SCRAPED_METRICS
                .iter()
                .filter(|f| f.job == family.job)
                .any(|f| f.metrics.iter().any(|m| m.kinds.contains(&kind)));
            assert_eq!(
                rules.contains_key(&family.job),
                job_reads_kind,
                "{kind}: job {:?}",
                family.job
            );
            for prefix in family.prefixes {
                for metric in family.metrics {
                    let wanted = metric.kinds.contains(&kind);
                    for exposed in exposed_names(prefix, metric.name) {
                        let kept = rules.get(&family.job).is_some_and(|r| r.is_match(&exposed));
                        assert_eq!(kept, wanted, "{kind}: {exposed}");
                    }
                }
            }
        }
    }
    // RequestLifecycle alone keeps what the live agent once dropped.
    let rules = keep_rules(&parsed(
        json!({ "kinds": [{ "name": "RequestLifecycle" }] }),
    ));
    for name in [
        "sglang:num_requests_total",
        "sglang:queue_time_seconds_bucket",
        "vllm:request_success_total",
        "vllm:prompt_tokens_total",
        "vllm:generation_tokens_total",
        "vllm:num_requests_waiting",
        "vllm:num_requests_running",
    ] {
        assert!(rules[&ScrapeJob::Engines].is_match(name), "{name}");
    }
}

#[test]
fn what_the_aggregator_does_not_map_is_not_scraped() {
    let config = parsed(json!({ "kinds": SignalKind::ALL.map(|k| json!({ "name": k.as_str() })) }));
    let rules = keep_rules(&config);
    for (job, name) in [
        (
            ScrapeJob::Engines,
            "vllm:request_prefill_time_seconds_bucket",
        ),
        (ScrapeJob::Engines, "vllm:prompt_tokens_created"),
        (ScrapeJob::Engines, "vllm:request_prompt_tokens_bucket"),
        (ScrapeJob::Engines, "sglang:num_aborted_requests_total"),
        (ScrapeJob::Engines, "sglang:gen_throughput"),
        (ScrapeJob::Engines, "llamacpp:prompt_seconds_total"),
        (ScrapeJob::Engines, "llamacpp:time_to_first_token_seconds"),
        (ScrapeJob::Engines, "python_gc_objects_collected_total"),
        (ScrapeJob::Epp, "llm_d_epp_flow_control_queue_size"),
        (ScrapeJob::Epp, "llm_d_epp_average_queue_size"),
        (ScrapeJob::Epp, "go_goroutines"),
        (ScrapeJob::Dcgm, "DCGM_FI_DEV_POWER_USAGE"),
        (ScrapeJob::Dcgm, "DCGM_FI_DEV_SM_CLOCK"),
    ] {
        assert!(!rules[&job].is_match(name), "{job:?} keeps {name}");
    }
}

/// The aggregator takes a cumulative series' start from its target's
/// `process_start_time_seconds` (the receiver sends none), whatever kind
/// the series feeds: every scrape job keeps it, in every kind mix.
#[test]
fn process_start_time_is_kept_from_every_scrape_job() {
    let mut jobs = 0;
    for spec in specs() {
        let rules = keep_rules(&parsed(spec.clone()));
        for (job, rule) in &rules {
            assert!(rule.is_match(PROCESS_START_TIME), "{job:?}: {spec}");
        }
        jobs += rules.len();
    }
    assert!(jobs > 300, "{jobs}");
}

/// The request `render` sends, for the table.
fn request(signals: Value) -> Value {
    json!({
        "meta": { "tag": "t" },
        "input": { "apiVersion": "signals.fn.modelplane.ai/v1beta1", "kind": "Input", "mode": "SingleCluster" },
        "observed": { "composite": { "resource": {
            "apiVersion": "modelplane.ai/v1alpha1", "kind": "InferenceCluster",
            "metadata": { "name": "c1" }, "spec": { "signals": signals },
        } } },
    })
}

fn kinds(scope: &str, kinds: &[&str]) -> Value {
    let kinds: Vec<Value> = kinds.iter().map(|k| json!({ "name": k })).collect();
    json!({ "kinds": kinds, "privacy": { "scope": scope } })
}

fn renders_without_results(
    _: &RunFunctionRequest,
    rsp: &RunFunctionResponse,
) -> Result<(), String> {
    match rsp.results.as_slice() {
        [] => Ok(()),
        results => Err(format!("unexpected results: {results:?}")),
    }
}

/// A `keep_keys` statement keeping exactly these keys.
fn keep_keys(field: &str, keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("keep_keys({field}, [{}])", quoted.join(", "))
}

fn cases() -> Vec<Case> {
    let tag = |signal: &str, rate: &str| {
        json!([{ "context": "span", "statements": [
            format!(r#"set(span.attributes["modelplane.signal"], "{signal}")"#),
            format!(r#"set(span.attributes["modelplane.sample_rate"], {rate})"#),
        ] }])
    };
    vec![
        case(
            "span pipelines follow the contract",
            request(json!({ "kinds": [
                { "name": "RequestLifecycle", "sampleRate": 0.2 }, { "name": "PrefixHash", "sampleRate": 0.7 },
            ] })),
            Want::Parts(json!({
                // Sampled before anything else works on the spans; tagged last, after privacy.
                "collector.yaml#/service/pipelines/traces~1request_lifecycle/processors": [
                    "memory_limiter", "probabilistic_sampler/request_lifecycle", "k8s_attributes",
                    "resource/cluster", "transform/privacy", "transform/tag_request_lifecycle",
                ],
                "collector.yaml#/service/pipelines/traces~1prefix_hash/processors": [
                    "memory_limiter", "probabilistic_sampler/prefix_hash", "k8s_attributes",
                    "resource/cluster", "transform/privacy", "transform/tag_prefix_hash",
                ],
                "collector.yaml#/processors/transform~1tag_request_lifecycle/trace_statements":
                    tag("RequestLifecycle", "0.2"),
                "collector.yaml#/processors/transform~1tag_prefix_hash/trace_statements":
                    tag("PrefixHash", "0.7"),
                "collector.yaml#/processors/resource~1cluster/attributes":
                    [{ "key": "modelplane.cluster", "value": "c1", "action": "upsert" }],
                "collector.yaml#/exporters/otlp_grpc~1aggregator/compression": "gzip",
                "collector.yaml#/exporters/otlp_grpc~1aggregator/headers/authorization":
                    "Bearer ${env:MODELPLANE_INGEST_TOKEN}",
                "collector.yaml#/exporters/otlp_grpc~1aggregator/retry_on_failure/enabled": true,
                "collector.yaml#/exporters/otlp_grpc~1aggregator/sending_queue/enabled": true,
            })),
        ),
        // Dropping the label merged the series it told apart, so the metrics
        // path hashes it, and nothing else is touched.
        case(
            "fleet scope hashes the EPP's fairness id and keeps its series apart",
            request(kinds("Fleet", &["RequestLifecycle", "Capacity"])),
            Want::Parts(json!({
                // Only the keep rule: nothing drops fairness_id.
                "collector.yaml#/receivers/prometheus~1epp/config/scrape_configs/0/metric_relabel_configs/0/action": "keep",
                "collector.yaml#/receivers/prometheus~1epp/config/scrape_configs/0/metric_relabel_configs/1": null,
                "collector.yaml#/service/pipelines/*/processors": {
                    "metrics": [
                        "memory_limiter",
                        "groupbyattrs/scrape_target",
                        "transform/scrape_target",
                        "resource/cluster",
                        "transform/fleet_scope",
                    ],
                    "traces/request_lifecycle": [
                        "memory_limiter",
                        "k8s_attributes",
                        "resource/cluster",
                        "transform/privacy",
                        "transform/tag_request_lifecycle",
                    ],
                },
                "collector.yaml#/processors/transform~1fleet_scope": { "error_mode": "ignore", "metric_statements": [{ "context": "datapoint", "statements": [
                    r#"set(datapoint.attributes["fairness_id"], SHA256(Concat(["c1", datapoint.attributes["fairness_id"]], "/"))) where datapoint.attributes["fairness_id"] != nil"#,
                ] }] },
            })),
        ),
        case(
            "fleet scope without an EPP job hashes nothing",
            request(kinds("Fleet", &["Reliability"])),
            Want::Parts(json!({ "collector.yaml#/processors/transform~1fleet_scope": null })),
        ),
        case(
            "per-tenant scope hashes nothing",
            request(kinds("PerTenant", &["RequestLifecycle", "Capacity"])),
            Want::Parts(json!({ "collector.yaml#/processors/transform~1fleet_scope": null })),
        ),
        // transform/privacy is the aggregator's allowlist (apis::wire), and
        // every other place a span can carry text is emptied.
        case(
            "the privacy transform is the aggregator's allowlist",
            request(json!({ "kinds": [{ "name": "RequestLifecycle" }] })),
            Want::Parts(json!({
                "collector.yaml#/processors/transform~1privacy": { "error_mode": "ignore", "trace_statements": [
                    { "context": "resource", "statements": [keep_keys("resource.attributes", RESOURCE_ATTRIBUTES)] },
                    { "context": "scope", "statements": ["keep_keys(scope.attributes, [])"] },
                    { "context": "span", "statements": [
                        keep_keys("span.attributes", SPAN_ATTRIBUTES),
                        "set(span.events, nil)",
                        "set(span.links, nil)",
                        r#"set(span.status.message, "")"#,
                        r#"set(span.trace_state, "")"#,
                        r#"set(span.name, "") where span.name != "llm_request""#,
                    ] },
                ] },
                // `set(…, nil)` empties a list only with this gate; without it the
                // collector ignores the statement and the links leave with their text.
                "agent#/spec/template/spec/containers/0/args":
                    ["--config=/conf/collector.yaml", "--feature-gates=ottl.set.allowNil"],
                // Only what the allowlist keeps (what_k8s_attributes_extracts_is_allowlisted).
                "collector.yaml#/processors/k8s_attributes/extract":
                    { "metadata": [K8S_NAMESPACE], "labels": [{ "tag_name": MODEL, "key": "llm-d.ai/model", "from": "pod" }] },
            })),
        ),
        case(
            "the Deployment is locked down",
            request(
                json!({ "kinds": [{ "name": "Capacity" }], "agent": { "resources": { "limits": { "memory": "2Gi" } } } }),
            ),
            Want::Parts(json!({
                "agent#/spec/template/spec/containers/0/args": ["--config=/conf/collector.yaml"],
                "agent#/spec/template/spec/containers/0/image": "otel/opentelemetry-collector-k8s:0.159.0",
                "agent#/spec/template/spec/securityContext": {
                    "runAsNonRoot": true,
                    "runAsUser": 10001.0,
                    "runAsGroup": 10001.0,
                    "fsGroup": 10001.0,
                    "seccompProfile": { "type": "RuntimeDefault" },
                },
                "agent#/spec/template/spec/containers/0/securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "agent#/spec/template/spec/containers/0/livenessProbe/httpGet": { "path": "/", "port": "health" },
                "agent#/spec/template/spec/containers/0/resources/limits": { "cpu": "1", "memory": "2Gi" },
                "agent env#/GOMEMLIMIT": { "value": "1638MiB" },
                // SingleCluster, agent in the token namespace: it reads the aggregator's Secret itself.
                "agent env#/MODELPLANE_INGEST_TOKEN":
                    { "valueFrom": { "secretKeyRef": { "name": "signals-ingest-c1", "key": "token", "optional": false } } },
                "collector.yaml#/extensions/health_check/endpoint": "${env:MY_POD_IP}:13133",
            })),
        ),
    ]
}

#[test]
fn collector_config_cases() {
    support::run_with(cases(), renders_without_results);
}

const K8S_NAMESPACE: &str = "k8s.namespace.name";
const MODEL: &str = "modelplane.model";

#[test]
fn what_k8s_attributes_extracts_is_allowlisted() {
    for key in [K8S_NAMESPACE, MODEL] {
        assert!(RESOURCE_ATTRIBUTES.contains(&key), "{key}");
    }
}

/// The fairness id is hashed only where it is scraped (the EPP job) under
/// Fleet scope; no other config mentions it.
#[test]
fn only_fleet_scope_with_an_epp_job_touches_the_fairness_id() {
    let exact = [
        kinds("Fleet", &["Reliability"]),
        kinds("PerTenant", &["RequestLifecycle", "Capacity"]),
    ];
    let mut hashing = 0;
    for spec in specs().into_iter().chain(exact) {
        let (text, _) = render(spec.clone());
        let config: Value = serde_yaml::from_str(&text).unwrap();
        let hashes = spec["privacy"]["scope"] == "Fleet"
            && config["receivers"].get("prometheus/epp").is_some();
        assert_eq!(text.contains("fairness_id"), hashes, "{spec}");
        hashing += usize::from(hashes);
    }
    assert!(hashing > 0, "no spec in the sweep hashes the fairness id");
}
