//! The agent's OpenTelemetry Collector config. Built as a JSON value (whose
//! maps are sorted) and printed as YAML, so the same spec always yields the
//! same bytes and the Deployment's checksum only moves when the config does.
//!
//! Component names are the current ones (`otlp_grpc` since core v0.144,
//! `k8s_attributes` since contrib v0.146), not their deprecated aliases; the
//! pinned image must be at least that new. test/collector/test_config_validate.py
//! runs every shape of this config through the real otelcol-k8s `validate`.

use apis::wire::{
    FORWARD_PATH, LLM_REQUEST_SPAN, PROCESS_START_TIME, RESOURCE_ATTRIBUTES, SCRAPED_METRICS,
    SPAN_ATTRIBUTES, TRACE_PATH_ATTRIBUTE,
};
use apis::{PrivacyScope, SignalKind};
use serde_json::{Map, Value, json};

use super::{AgentPlan, CONFIG_DIR, CONFIG_KEY, Source, SpanPipeline, TOKEN_ENV};

pub const HEALTH_PORT: u16 = 13133;
pub const OTLP_GRPC_PORT: u16 = 4317;
pub const OTLP_HTTP_PORT: u16 = 4318;
pub const TELEMETRY_PORT: u16 = 8888;
const SCRAPE_INTERVAL: &str = "15s";
const EXPORTER: &str = "otlp_grpc/aggregator";
const SA_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Pod annotations an engine (or anything else) can set to be scraped on its
/// own terms; documented in docs/agent.md.
pub const ENGINE_ANNOTATION: &str = "signals.modelplane.ai/engine";
const ENGINE_ANNOTATION_META: &str =
    "__meta_kubernetes_pod_annotation_signals_modelplane_ai_engine";
const PORT_ANNOTATION_META: &str =
    "__meta_kubernetes_pod_annotation_signals_modelplane_ai_metrics_port";
const PATH_ANNOTATION_META: &str =
    "__meta_kubernetes_pod_annotation_signals_modelplane_ai_metrics_path";
/// Ports engines listen on when not annotated: vLLM/llm-d 8000, Modelplane's
/// P/D decode engine 8001, llm-d's P/D vLLM 8200, SGLang 30000, llama.cpp 8080.
const ENGINE_DEFAULT_PORTS: &str = "8000|8001|8200|30000|8080";
const EPP_METRICS_PORT: &str = "9090";
const DCGM_METRICS_PORT: &str = "9400";

/// Resource attributes scraped targets carry as labels until
/// `groupbyattrs` lifts them onto the resource (Prometheus label names
/// cannot contain dots).
const TARGET_LABELS: [(&str, &str); 4] = [
    ("k8s_namespace_name", "k8s.namespace.name"),
    ("k8s_pod_name", "k8s.pod.name"),
    ("modelplane_engine", "modelplane.engine"),
    ("modelplane_model", "modelplane.model"),
];

/// The EPP label that names the tenant a request was queued for
/// (flow control's fairness id).
const FAIRNESS_ID: &str = "fairness_id";

/// The `metric_relabel_configs` keep regex of one scrape job: every metric
/// the aggregator maps to an enabled kind (`apis::wire::SCRAPED_METRICS`, the
/// list the aggregator's routing is tested against), as exposed (`_total` on
/// counters, `_bucket`/`_sum`/`_count` on histograms), and the target's
/// process start time, which the aggregator needs for any cumulative series.
/// Metrics are filtered by kind, never thinned: a sampled counter is wrong,
/// not approximate. Prometheus anchors the regex at both ends.
pub fn keep_metrics_regex(kinds: &[SignalKind], job: Source) -> Option<String> {
    let families: Vec<String> = SCRAPED_METRICS
        .iter()
        .filter(|family| family.job == job)
        .filter_map(|family| {
            let names: Vec<&str> = family
                .metrics
                .iter()
                .filter(|metric| metric.kinds.iter().any(|kind| kinds.contains(kind)))
                .map(|metric| metric.name)
                .collect();
            (!names.is_empty())
                .then(|| format!("({})({})", family.prefixes.join("|"), names.join("|")))
        })
        .collect();
    (!families.is_empty()).then(|| {
        format!(
            "({})(_total)?(_bucket|_sum|_count)?|{PROCESS_START_TIME}",
            families.join("|")
        )
    })
}

/// An OTTL list literal of string keys.
fn ottl_strings(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

/// The privacy transform of every traces pipeline, as (context, statements)
/// groups. An allowlist: spans keep only the attributes the aggregator reads
/// (`apis::wire`), and every other place a sender can put text (scope
/// attributes, events, links, trace state, status message, span name) is
/// emptied, so a prompt cannot leave the cluster under a key or in a field
/// nobody thought to list. The aggregator reads a span's name only to tell
/// vLLM's and SGLang's `llm_request` spans.
fn privacy_groups() -> Vec<(&'static str, Vec<String>)> {
    vec![
        (
            "resource",
            vec![format!(
                "keep_keys(resource.attributes, {})",
                ottl_strings(RESOURCE_ATTRIBUTES)
            )],
        ),
        ("scope", vec!["keep_keys(scope.attributes, [])".to_string()]),
        (
            "span",
            vec![
                format!(
                    "keep_keys(span.attributes, {})",
                    ottl_strings(SPAN_ATTRIBUTES)
                ),
                "set(span.events, nil)".to_string(),
                "set(span.links, nil)".to_string(),
                r#"set(span.status.message, "")"#.to_string(),
                r#"set(span.trace_state, "")"#.to_string(),
                format!(r#"set(span.name, "") where span.name != "{LLM_REQUEST_SPAN}""#),
            ],
        ),
    ]
}

/// `privacy.scope: Fleet` on the metrics path: the EPP's fairness id names a
/// tenant, so it leaves the cluster only as a SHA-256 of the cluster and the
/// id. Replaced, not dropped: series that differ only by fairness id must
/// stay apart, or the receiver merges them (one counter per scrape,
/// histograms with interleaved buckets); the aggregator turns each hashed
/// series into deltas as it would the clear one and sums them, so totals
/// stay exact. The cluster in the hash keeps one tenant's series in two
/// clusters from being linked by their hash. The hash is unkeyed: whoever
/// can guess a fairness id can confirm it (a keyed one needs a key that
/// stays on the workload cluster, which a deterministic render cannot make).
fn fleet_scope_metric_statements(cluster: &str) -> Vec<String> {
    let salt = cluster.replace('\\', "\\\\").replace('"', "\\\"");
    vec![format!(
        r#"set(datapoint.attributes["{FAIRNESS_ID}"], SHA256(Concat(["{salt}", datapoint.attributes["{FAIRNESS_ID}"]], "/"))) where datapoint.attributes["{FAIRNESS_ID}"] != nil"#
    )]
}

/// A transform processor's statements as groups, each run in the OTTL
/// context it names, in order. The context is always stated: the collector
/// runs a plain list of statements as one group in the most specific context
/// any of them mentions, so span statements listed with span-event ones run
/// once per event, and a span without events keeps its prompt attributes.
fn transform<S: AsRef<str>>(statements_key: &str, groups: &[(&str, &[S])]) -> Value {
    let groups: Vec<Value> = groups
        .iter()
        .map(|(context, statements)| {
            json!({
                "context": context,
                "statements": statements.iter().map(AsRef::as_ref).collect::<Vec<&str>>(),
            })
        })
        .collect();
    json!({ "error_mode": "ignore", statements_key: groups })
}

/// The config as YAML: exactly the bytes of the ConfigMap and the checksum.
pub fn render_yaml(plan: &AgentPlan) -> String {
    super::yaml::to_yaml(&config(plan))
}

/// The collector config as a value; maps are sorted, lists keep the order
/// they were built in.
pub fn config(plan: &AgentPlan) -> Value {
    let mut receivers = Map::new();
    let mut processors = Map::new();
    let mut pipelines = Map::new();

    processors.insert(
        "memory_limiter".into(),
        json!({ "check_interval": "1s", "limit_percentage": 80, "spike_limit_percentage": 25 }),
    );
    processors.insert(
        "resource/cluster".into(),
        json!({ "attributes": [{ "key": "modelplane.cluster", "value": plan.cluster, "action": "upsert" }] }),
    );

    if plan.receives_otlp() {
        receivers.insert("otlp".into(), otlp_receiver());
        let enrichers = k8s_attributes(plan, &mut processors);
        if plan.receives_spans() {
            let privacy = privacy_groups();
            let privacy: Vec<(&str, &[String])> = privacy
                .iter()
                .map(|(context, statements)| (*context, statements.as_slice()))
                .collect();
            processors.insert(
                "transform/privacy".into(),
                transform("trace_statements", &privacy),
            );
            for span_pipeline in &plan.span_pipelines {
                let chain = span_processors(span_pipeline, &enrichers, &mut processors);
                pipelines.insert(
                    format!("traces/{}", span_pipeline.suffix),
                    json!({ "receivers": ["otlp"], "processors": chain, "exporters": [EXPORTER] }),
                );
            }
        }
        let forward_namespaces = plan.forward_namespaces();
        if !forward_namespaces.is_empty() {
            let chain = trace_forwarding(&forward_namespaces, &enrichers, &mut processors);
            pipelines.insert(
                "traces/forward".into(),
                json!({ "receivers": ["otlp"], "processors": chain, "exporters": [EXPORTER] }),
            );
        }
    }

    let sources = plan.sources();
    if !sources.is_empty() {
        let mut metric_receivers = Vec::new();
        for source in &sources {
            let (id, receiver) = scrape_receiver(plan, *source);
            metric_receivers.push(id.clone());
            receivers.insert(id, receiver);
        }
        processors.insert(
            "groupbyattrs/scrape_target".into(),
            json!({ "keys": TARGET_LABELS.iter().map(|(label, _)| *label).collect::<Vec<_>>() }),
        );
        let (resource_statements, metric_statements) = scrape_target_statements();
        processors.insert(
            "transform/scrape_target".into(),
            transform(
                "metric_statements",
                &[
                    ("resource", resource_statements.as_slice()),
                    ("metric", metric_statements.as_slice()),
                ],
            ),
        );
        let mut chain = vec![
            "memory_limiter",
            "groupbyattrs/scrape_target",
            "transform/scrape_target",
            "resource/cluster",
        ];
        if plan.signals.privacy.scope == PrivacyScope::Fleet && sources.contains(&Source::Epp) {
            processors.insert(
                "transform/fleet_scope".into(),
                transform(
                    "metric_statements",
                    &[(
                        "datapoint",
                        fleet_scope_metric_statements(&plan.cluster).as_slice(),
                    )],
                ),
            );
            chain.push("transform/fleet_scope");
        }
        pipelines.insert(
            "metrics".into(),
            json!({ "receivers": metric_receivers, "processors": chain, "exporters": [EXPORTER] }),
        );
    }

    json!({
        "extensions": { "health_check": { "endpoint": format!("${{env:MY_POD_IP}}:{HEALTH_PORT}") } },
        "receivers": receivers,
        "processors": processors,
        "exporters": { EXPORTER: exporter(plan) },
        "service": {
            "extensions": ["health_check"],
            "telemetry": {
                "metrics": { "readers": [{ "pull": { "exporter": { "prometheus": {
                    "host": "${env:MY_POD_IP}", "port": TELEMETRY_PORT,
                } } } }] },
            },
            "pipelines": pipelines,
        },
    })
}

/// Where the collector reads its config inside the pod.
pub fn config_path() -> String {
    format!("{CONFIG_DIR}/{CONFIG_KEY}")
}

/// The collector's command line. `ottl.set.allowNil` (alpha since v0.158,
/// the announced future default) lets `set(span.links, nil)` and
/// `set(span.events, nil)` empty those lists: without it `set` ignores nil,
/// and no other OTTL function or processor in the distribution can remove
/// a span's links, whose attributes and trace state would carry a prompt out.
pub fn collector_args(plan: &AgentPlan) -> Vec<String> {
    let mut args = vec![format!("--config={}", config_path())];
    if plan.receives_spans() {
        args.push("--feature-gates=ottl.set.allowNil".to_string());
    }
    args
}

fn otlp_receiver() -> Value {
    json!({ "protocols": {
        "grpc": { "endpoint": format!("${{env:MY_POD_IP}}:{OTLP_GRPC_PORT}") },
        "http": { "endpoint": format!("${{env:MY_POD_IP}}:{OTLP_HTTP_PORT}") },
    } })
}

/// One `k8s_attributes` per scraped namespace (the processor filters on a
/// single namespace, and a filter is what keeps its RBAC to Roles), or one for
/// the whole cluster. Returns their ids in pipeline order.
fn k8s_attributes(plan: &AgentPlan, processors: &mut Map<String, Value>) -> Vec<String> {
    let body = |namespace: Option<&str>| {
        let mut body = json!({
            "auth_type": "serviceAccount",
            "passthrough": false,
            // Only what transform/privacy keeps: the tenant (namespace) and the model.
            "extract": {
                "metadata": ["k8s.namespace.name"],
                "labels": [{ "tag_name": "modelplane.model", "key": "llm-d.ai/model", "from": "pod" }],
            },
            "pod_association": [
                { "sources": [{ "from": "resource_attribute", "name": "k8s.pod.ip" }] },
                { "sources": [{ "from": "resource_attribute", "name": "k8s.pod.uid" }] },
                { "sources": [{ "from": "connection" }] },
            ],
        });
        if let Some(ns) = namespace {
            body["filter"] = json!({ "namespace": ns });
        }
        body
    };
    if plan.scrape_namespaces.is_empty() {
        processors.insert("k8s_attributes".into(), body(None));
        return vec!["k8s_attributes".to_string()];
    }
    plan.scrape_namespaces
        .iter()
        .map(|ns| {
            let id = format!("k8s_attributes/{ns}");
            processors.insert(id.clone(), body(Some(ns)));
            id
        })
        .collect()
}

/// The trace path (`spec.signals.traceForwarding`): spans of the listed
/// namespaces, raw (prompts included), marked forward-only
/// (`apis::wire::TRACE_PATH_ATTRIBUTE`), so the aggregator forwards them to
/// their ModelServices' forwarders and never sketches them. The namespace is
/// the sending pod's, from `k8s_attributes`; spans without one, or from any
/// other namespace, are dropped here, and `modelplane.tenant` is set to it,
/// overwriting a claimed tenant. No sampler: each forwarder samples by its
/// own ModelService's ratio.
fn trace_forwarding(
    namespaces: &[String],
    enrichers: &[String],
    processors: &mut Map<String, Value>,
) -> Vec<String> {
    let allowed: Vec<String> = namespaces
        .iter()
        .map(|ns| format!(r#"resource.attributes["k8s.namespace.name"] == "{ns}""#))
        .collect();
    processors.insert(
        "filter/trace_forwarding".into(),
        json!({ "error_mode": "ignore", "traces": { "span": [format!(
            r#"resource.attributes["k8s.namespace.name"] == nil or not ({})"#,
            allowed.join(" or ")
        )] } }),
    );
    processors.insert(
        "resource/trace_forwarding".into(),
        json!({ "attributes": [
            { "key": "modelplane.tenant", "from_attribute": "k8s.namespace.name", "action": "upsert" },
            { "key": TRACE_PATH_ATTRIBUTE, "value": FORWARD_PATH, "action": "upsert" },
        ] }),
    );
    let mut chain = vec!["memory_limiter".to_string()];
    chain.extend(enrichers.iter().cloned());
    chain.extend([
        "filter/trace_forwarding".to_string(),
        "resource/cluster".to_string(),
        "resource/trace_forwarding".to_string(),
    ]);
    chain
}

/// memory_limiter first, then the sampler (so dropped spans cost nothing
/// more), enrichment, the privacy transform, and the kind tag last.
fn span_processors(
    pipeline: &SpanPipeline,
    enrichers: &[String],
    processors: &mut Map<String, Value>,
) -> Vec<String> {
    let mut chain = vec!["memory_limiter".to_string()];
    if pipeline.sample_rate < 1.0 {
        let id = format!("probabilistic_sampler/{}", pipeline.suffix);
        processors.insert(
            id.clone(),
            json!({ "sampling_percentage": percentage(pipeline.sample_rate) }),
        );
        chain.push(id);
    }
    chain.extend(enrichers.iter().cloned());
    chain.push("resource/cluster".to_string());
    chain.push("transform/privacy".to_string());
    let tag_id = format!("transform/tag_{}", pipeline.suffix);
    let mut statements = Vec::new();
    if let Some(signal) = pipeline.signal {
        statements.push(format!(
            r#"set(span.attributes["modelplane.signal"], "{signal}")"#
        ));
    }
    statements.push(format!(
        r#"set(span.attributes["modelplane.sample_rate"], {:?})"#,
        pipeline.sample_rate
    ));
    processors.insert(
        tag_id.clone(),
        transform("trace_statements", &[("span", statements.as_slice())]),
    );
    chain.push(tag_id);
    chain
}

/// `sampleRate` (0..1) as the sampler's 0..100 percentage, without the
/// binary-float noise of a plain multiplication (0.1 * 100 = 10.000000000000002).
fn percentage(rate: f64) -> f64 {
    (rate * 100.0 * 1e6).round() / 1e6
}

fn scrape_receiver(plan: &AgentPlan, source: Source) -> (String, Value) {
    let mut sd = json!({ "role": "pod" });
    if !plan.scrape_namespaces.is_empty() {
        sd["namespaces"] = json!({ "names": plan.scrape_namespaces });
    }
    let running = json!({ "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "Running", "action": "keep" });
    let not_init = json!({ "source_labels": ["__meta_kubernetes_pod_container_init"], "regex": "true", "action": "drop" });
    let set_label = |target: &str, value: &str| json!({ "target_label": target, "replacement": value, "action": "replace" });
    let copy_label = |source: &str, target: &str| json!({ "source_labels": [source], "regex": "(.+)", "target_label": target, "replacement": "$$1", "action": "replace" });
    let keep = keep_metrics_regex(&plan.kinds, source)
        .expect("a scrape job is rendered only for a kind that reads it");
    let metric_relabel = vec![json!({
        "source_labels": ["__name__"], "regex": keep, "action": "keep",
    })];
    let (id, mut job) = match source {
        Source::Engines => (
            "prometheus/engines",
            json!({
                "job_name": "engines",
                "relabel_configs": [
                    running,
                    // Serving pods: annotated for the agent, or labelled by Modelplane or llm-d.
                    { "source_labels": [
                        "__meta_kubernetes_pod_annotationpresent_signals_modelplane_ai_engine",
                        "__meta_kubernetes_pod_labelpresent_modelplane_ai_serving",
                        "__meta_kubernetes_pod_labelpresent_llm_d_ai_role",
                      ], "regex": ".*true.*", "action": "keep" },
                    not_init,
                    // The port: the annotated one when there is one, else an engine default.
                    { "source_labels": ["__meta_kubernetes_pod_container_port_number"], "target_label": "__tmp_metrics_port", "regex": "(.+)", "replacement": "$$1", "action": "replace" },
                    set_label("__tmp_port_source", "default"),
                    { "source_labels": [PORT_ANNOTATION_META], "target_label": "__tmp_metrics_port", "regex": "(\\d+)", "replacement": "$$1", "action": "replace" },
                    { "source_labels": [PORT_ANNOTATION_META], "target_label": "__tmp_port_source", "regex": "\\d+", "replacement": "annotation", "action": "replace" },
                    { "source_labels": ["__tmp_port_source", "__tmp_metrics_port"], "regex": format!("annotation;\\d+|default;({ENGINE_DEFAULT_PORTS})"), "action": "keep" },
                    // IPv4 pod IPs; on IPv6-only clusters annotate pods with a port and see docs/agent.md.
                    { "source_labels": ["__meta_kubernetes_pod_ip", "__tmp_metrics_port"], "regex": "(.+);(\\d+)", "target_label": "__address__", "replacement": "$$1:$$2", "action": "replace" },
                    copy_label(PATH_ANNOTATION_META, "__metrics_path__"),
                    copy_label("__meta_kubernetes_namespace", "k8s_namespace_name"),
                    copy_label("__meta_kubernetes_pod_name", "k8s_pod_name"),
                    copy_label(ENGINE_ANNOTATION_META, "modelplane_engine"),
                    copy_label("__meta_kubernetes_pod_label_llm_d_ai_model", "modelplane_model"),
                ],
            }),
        ),
        Source::Epp => (
            "prometheus/epp",
            json!({
                "job_name": "llm-d-epp",
                // The EPP guards /metrics with TokenReview/SubjectAccessReview and
                // serves it with a self-signed certificate.
                "scheme": "https",
                "tls_config": { "insecure_skip_verify": true },
                "authorization": { "type": "Bearer", "credentials_file": SA_TOKEN_FILE },
                "relabel_configs": [
                    running,
                    { "source_labels": [
                        "__meta_kubernetes_pod_labelpresent_llm_d_router_gateway",
                        "__meta_kubernetes_pod_labelpresent_llm_d_router_standalone",
                        ENGINE_ANNOTATION_META,
                      ], "regex": "true;.*|.*;true;.*|.*;epp", "action": "keep" },
                    not_init,
                    { "source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": EPP_METRICS_PORT, "action": "keep" },
                    copy_label("__meta_kubernetes_namespace", "k8s_namespace_name"),
                    copy_label("__meta_kubernetes_pod_name", "k8s_pod_name"),
                    set_label("modelplane_engine", "epp"),
                ],
            }),
        ),
        Source::Dcgm => (
            "prometheus/dcgm",
            json!({
                "job_name": "dcgm-exporter",
                "relabel_configs": [
                    running,
                    { "source_labels": ["__meta_kubernetes_pod_label_app", "__meta_kubernetes_pod_label_app_kubernetes_io_name", ENGINE_ANNOTATION_META],
                      "regex": "(nvidia-dcgm-exporter|dcgm-exporter);.*;.*|.*;dcgm-exporter;.*|.*;.*;dcgm", "action": "keep" },
                    not_init,
                    { "source_labels": ["__meta_kubernetes_pod_container_port_number"], "regex": DCGM_METRICS_PORT, "action": "keep" },
                    // DCGM's own `namespace`/`pod` labels name the GPU's consumer;
                    // the exporter's namespace is not a tenant, so it is not copied.
                    set_label("modelplane_engine", "dcgm"),
                ],
            }),
        ),
    };
    job["scrape_interval"] = json!(SCRAPE_INTERVAL);
    job["kubernetes_sd_configs"] = json!([sd]);
    job["metric_relabel_configs"] = Value::Array(metric_relabel);
    (
        id.to_string(),
        json!({ "config": { "scrape_configs": [job] } }),
    )
}

/// Lift the target labels onto the resource under their OTel names (once
/// per resource), then name the engine from a metric's prefix when the pod
/// did not say (needs each metric). Returns (resource, metric) statements.
fn scrape_target_statements() -> (Vec<String>, Vec<String>) {
    let mut resource: Vec<String> = TARGET_LABELS
        .iter()
        .map(|(label, attribute)| {
            format!(
                r#"set(resource.attributes["{attribute}"], resource.attributes["{label}"]) where resource.attributes["{label}"] != nil"#
            )
        })
        .collect();
    let labels: Vec<&str> = TARGET_LABELS.iter().map(|(label, _)| *label).collect();
    resource.push(format!(
        r#"delete_matching_keys(resource.attributes, "^({})$$")"#,
        labels.join("|")
    ));
    let metric = ["vllm", "sglang", "llamacpp"]
        .iter()
        .map(|engine| {
            format!(
                r#"set(resource.attributes["modelplane.engine"], "{engine}") where resource.attributes["modelplane.engine"] == nil and IsMatch(metric.name, "^{engine}[:_]")"#
            )
        })
        .collect();
    (resource, metric)
}

fn exporter(plan: &AgentPlan) -> Value {
    json!({
        "endpoint": plan.aggregator_endpoint,
        "tls": { "insecure": plan.aggregator_insecure },
        "compression": "gzip",
        "timeout": "10s",
        "headers": { "authorization": format!("Bearer ${{env:{TOKEN_ENV}}}") },
        "sending_queue": { "enabled": true, "num_consumers": 4, "queue_size": 1000, "batch": {} },
        "retry_on_failure": {
            "enabled": true, "initial_interval": "5s", "max_interval": "30s", "max_elapsed_time": "300s",
        },
    })
}
