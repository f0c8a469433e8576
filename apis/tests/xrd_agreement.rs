//! What the generated XRDs in `apis/xrds/` do with real objects. Their
//! structure needs no walker: it is generated from the types
//! (`tests/generated_schemas.rs` fails when a file is stale). What is checked
//! here is behaviour:
//!
//! 1. Every example XR the types accept (`examples/**/*.yaml` and
//!    `apis/tests/fixtures/*.yaml`) validates against the XRD schema with a
//!    real JSON Schema validator, with unknown fields in the owned subtrees
//!    treated as errors (Kubernetes would silently prune them).
//! 2. Every CEL rule compiles, and holds for every accepted example. Rules are
//!    evaluated with the `cel` crate (standard CEL: the macros and `matches`
//!    our rules use; Kubernetes' extra CEL libraries are not available, so
//!    rules must not use them).
//! 3. Rejections: a table of bad specs, each rejected by `validate()` at the
//!    named field and by the XRD: by the structural schema (checked with the
//!    validator) or by exactly the expected CEL rule. What only the API server
//!    enforces (`x-kubernetes-list-type: set`) is checked as present.

use std::path::{Path, PathBuf};

use apis::{InferenceCluster, ModelService};
use serde_json::{Map, Value, json};

// ---------------------------------------------------------------------------
// Loading

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn yaml_documents(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let value: serde_yaml::Value = serde::Deserialize::deserialize(doc)
                .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
            serde_json::to_value(value).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

struct Xrd {
    file: &'static str,
    doc: Value,
}

impl Xrd {
    fn load(file: &'static str) -> Xrd {
        let mut docs = yaml_documents(&repo_root().join("apis/xrds").join(file));
        assert_eq!(docs.len(), 1, "{file} must hold exactly one document");
        Xrd {
            file,
            doc: docs.remove(0),
        }
    }

    fn version(&self) -> &Value {
        &self.doc["spec"]["versions"][0]
    }

    fn schema(&self) -> &Value {
        &self.version()["schema"]["openAPIV3Schema"]
    }
}

fn inference_cluster_xrd() -> Xrd {
    Xrd::load("inferenceclusters.yaml")
}

fn model_service_xrd() -> Xrd {
    Xrd::load("modelservices.yaml")
}

// ---------------------------------------------------------------------------
// XRD metadata

fn assert_xrd_shape(xrd: &Xrd, kind: &str, plural: &str, scope: &str) {
    let doc = &xrd.doc;
    assert_eq!(doc["apiVersion"], "apiextensions.crossplane.io/v2");
    assert_eq!(doc["kind"], "CompositeResourceDefinition");
    assert_eq!(doc["metadata"]["name"], format!("{plural}.{}", apis::GROUP));
    assert_eq!(doc["spec"]["group"], apis::GROUP);
    assert_eq!(doc["spec"]["scope"], scope);
    assert_eq!(doc["spec"]["names"]["kind"], kind);
    assert_eq!(doc["spec"]["names"]["plural"], plural);
    assert_eq!(
        doc["spec"]["names"]["categories"],
        json!(["crossplane", "modelplane"])
    );
    assert!(
        doc["spec"].get("claimNames").is_none(),
        "v2 XRDs have no claims"
    );
    let versions = doc["spec"]["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0]["name"], apis::VERSION);
    assert_eq!(versions[0]["served"], true);
    assert_eq!(versions[0]["referenceable"], true);
    // The owned subtrees extend Modelplane's kind: the rest of spec/status is kept.
    for part in ["spec", "status"] {
        assert_eq!(
            xrd.schema()["properties"][part]["x-kubernetes-preserve-unknown-fields"],
            true
        );
    }
    // Printer columns must point at fields the schema defines.
    let columns = versions[0]["additionalPrinterColumns"].as_array().unwrap();
    assert!(!columns.is_empty());
    for column in columns {
        let json_path = column["jsonPath"].as_str().unwrap();
        let mut node = xrd.schema();
        for segment in json_path.trim_start_matches('.').split('.') {
            node = &node["properties"][segment];
            assert!(
                node.is_object(),
                "{}: printer column {json_path} names no schema field",
                xrd.file
            );
        }
        let expected_type = match node["type"].as_str().unwrap() {
            "string" if column["type"] == "date" => "date",
            "array" => "string",
            other => other,
        };
        assert_eq!(
            column["type"], expected_type,
            "{}: printer column {json_path}",
            xrd.file
        );
    }
}

#[test]
fn xrds_are_crossplane_v2_definitions_of_the_right_kinds() {
    assert_xrd_shape(
        &inference_cluster_xrd(),
        "InferenceCluster",
        "inferenceclusters",
        "Cluster",
    );
    assert_xrd_shape(
        &model_service_xrd(),
        "ModelService",
        "modelservices",
        "Namespaced",
    );
}

// ---------------------------------------------------------------------------
// Behaviour: examples and fixtures against a real JSON Schema validator.

/// The XRD schema as Kubernetes applies it to the owned subtrees: objects that
/// do not preserve unknown fields reject them (Kubernetes prunes them, which
/// for a user means a typo is silently ignored: an error in an example).
fn strict(node: &Value) -> Value {
    let mut node = node.clone();
    if let Some(obj) = node.as_object_mut() {
        let preserves = obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if obj.contains_key("properties") && !preserves && !obj.contains_key("additionalProperties")
        {
            obj.insert("additionalProperties".into(), Value::Bool(false));
        }
        for key in ["items", "additionalProperties"] {
            if let Some(child) = obj.get(key).filter(|c| c.is_object()) {
                let child = strict(child);
                obj.insert(key.into(), child);
            }
        }
        if let Some(Value::Object(props)) = obj.get("properties") {
            let props: Map<String, Value> =
                props.iter().map(|(k, v)| (k.clone(), strict(v))).collect();
            obj.insert("properties".into(), Value::Object(props));
        }
    }
    node
}

struct SchemaValidator(jsonschema::Validator);

impl SchemaValidator {
    fn for_xrd(xrd: &Xrd) -> SchemaValidator {
        SchemaValidator(
            jsonschema::validator_for(&strict(xrd.schema())).expect("the XRD schema compiles"),
        )
    }

    /// Schema errors for an XR (metadata, apiVersion and kind are the API server's).
    fn errors(&self, object: &Value) -> Vec<String> {
        let mut body = object.clone();
        for key in ["apiVersion", "kind", "metadata"] {
            body.as_object_mut().unwrap().remove(key);
        }
        self.0
            .iter_errors(&body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }
}

fn yaml_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(yaml_files_under(&path));
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// Every InferenceCluster / ModelService document in the examples and fixtures.
fn example_xrs() -> Vec<(String, Value)> {
    let root = repo_root();
    let mut files = yaml_files_under(&root.join("examples"));
    files.extend(yaml_files_under(&root.join("apis/tests/fixtures")));
    let mut out = Vec::new();
    for file in files {
        for (i, doc) in yaml_documents(&file).into_iter().enumerate() {
            let is_ours = doc["apiVersion"] == apis::API_VERSION
                && matches!(
                    doc["kind"].as_str(),
                    Some(apis::INFERENCE_CLUSTER_KIND | apis::MODEL_SERVICE_KIND)
                );
            if is_ours {
                let name = format!("{}#{i}", file.strip_prefix(&root).unwrap().display());
                out.push((name, doc));
            }
        }
    }
    out
}

/// Deserialises and validates with the Rust types; Ok(re-serialised object).
fn accept_with_rust_types(object: &Value) -> Result<Value, String> {
    match object["kind"].as_str() {
        Some(apis::INFERENCE_CLUSTER_KIND) => {
            let xr: InferenceCluster =
                serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            if let Some(signals) = &xr.spec.signals {
                signals.validate().map_err(|e| e.to_string())?;
            }
            Ok(serde_json::to_value(&xr).unwrap())
        }
        Some(apis::MODEL_SERVICE_KIND) => {
            let xr: ModelService =
                serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
            if let Some(observability) = &xr.spec.observability {
                observability.validate().map_err(|e| e.to_string())?;
            }
            Ok(serde_json::to_value(&xr).unwrap())
        }
        other => Err(format!("not an XR kind: {other:?}")),
    }
}

#[test]
fn every_example_the_rust_types_accept_validates_against_its_xrd() {
    let ic = SchemaValidator::for_xrd(&inference_cluster_xrd());
    let ms = SchemaValidator::for_xrd(&model_service_xrd());
    let examples = example_xrs();
    let fixtures = examples
        .iter()
        .filter(|(n, _)| n.starts_with("apis/tests/fixtures"))
        .count();
    assert!(fixtures >= 5, "fixtures went missing: {fixtures}");
    let mut failures = Vec::new();
    let mut accepted = 0;
    for (name, object) in &examples {
        let validator = if object["kind"] == apis::INFERENCE_CLUSTER_KIND {
            &ic
        } else {
            &ms
        };
        let Ok(reserialised) = accept_with_rust_types(object) else {
            // Examples of bad input (for Fatal results) are covered by the
            // rejection table below and by the function's tests.
            continue;
        };
        accepted += 1;
        for (what, value) in [
            ("as written", object),
            ("as re-serialised by the Rust types", &reserialised),
        ] {
            let errors = validator.errors(value);
            if !errors.is_empty() {
                failures.push(format!("{name} ({what}): {}", errors.join("; ")));
            }
        }
    }
    assert!(
        accepted >= fixtures,
        "every fixture must be accepted by the Rust types"
    );
    assert!(
        failures.is_empty(),
        "XRD schema rejects valid examples:\n  {}",
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------
// CEL: the XRD's x-kubernetes-validations evaluated like the API server does,
// with `self` bound to the value at the rule's schema node.

/// Kubernetes hands `number` fields to CEL as doubles; JSON integers in YAML
/// (`sampleRate: 1`) must compare equal to `1.0` as they do there.
fn cel_value(value: &Value) -> cel::Value {
    fn floats(value: &Value) -> Value {
        match value {
            Value::Number(n) => json!(n.as_f64().unwrap()),
            Value::Array(items) => Value::Array(items.iter().map(floats).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), floats(v))).collect())
            }
            other => other.clone(),
        }
    }
    cel::to_value(floats(value)).expect("JSON converts to CEL")
}

/// Every CEL rule on the path from `schema` down through `value` that does not
/// hold, as `(schema path, rule)`. A rule that fails to evaluate counts as not
/// holding (the API server rejects on evaluation errors too).
fn failing_cel_rules(path: &str, schema: &Value, value: &Value, out: &mut Vec<(String, String)>) {
    if let Some(rules) = schema["x-kubernetes-validations"].as_array() {
        for rule in rules {
            let source = rule["rule"].as_str().unwrap();
            let program = cel::Program::compile(source)
                .unwrap_or_else(|e| panic!("CEL rule at {path} does not compile: {source}: {e:?}"));
            let mut context = cel::Context::default();
            context.add_variable_from_value("self", cel_value(value));
            if program.execute(&context) != Ok(cel::Value::Bool(true)) {
                out.push((path.to_string(), source.to_string()));
            }
        }
    }
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if let Some(child_schema) = schema["properties"].get(key) {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    failing_cel_rules(&child_path, child_schema, child, out);
                } else if schema["additionalProperties"].is_object() {
                    failing_cel_rules(
                        &format!("{path}{{}}"),
                        &schema["additionalProperties"],
                        child,
                        out,
                    );
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                failing_cel_rules(&format!("{path}[]"), &schema["items"], item, out);
            }
        }
        _ => {}
    }
}

fn cel_failures(xrd: &Xrd, object: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in ["spec", "status"] {
        if let Some(value) = object.get(part) {
            failing_cel_rules(part, &xrd.schema()["properties"][part], value, &mut out);
        }
    }
    out
}

#[test]
fn every_cel_rule_compiles_and_holds_for_every_accepted_example() {
    let (ic_xrd, ms_xrd) = (inference_cluster_xrd(), model_service_xrd());
    let mut rules = Vec::new();
    schema_annotations("", ic_xrd.schema(), &mut rules);
    schema_annotations("", ms_xrd.schema(), &mut rules);
    let cel_rules: Vec<&(String, String)> = rules
        .iter()
        .filter(|(_, r)| !r.starts_with("list-type:"))
        .collect();
    let rule_paths: Vec<&str> = cel_rules.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        rule_paths,
        [
            "spec.signals.cost.pricing",
            "spec.signals.kinds",
            "spec.signals.kinds[]",
            "status.signals.lastDatapoint",
            "spec.observability.traces",
            "spec.observability.traces.headers",
            "spec.observability.traces.headers{}",
            "spec.observability.traces.preset",
        ],
        "a CEL rule went missing or appeared"
    );
    // Examples reach only some nodes; every rule must compile regardless.
    for (path, rule) in &cel_rules {
        if let Err(e) = cel::Program::compile(rule) {
            panic!("CEL rule at {path} does not compile: {rule}: {e:?}");
        }
    }
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, object) in example_xrs() {
        if accept_with_rust_types(&object).is_err() {
            continue;
        }
        checked += 1;
        let xrd = if object["kind"] == apis::INFERENCE_CLUSTER_KIND {
            &ic_xrd
        } else {
            &ms_xrd
        };
        for (path, rule) in cel_failures(xrd, &object) {
            failures.push(format!("{name}: {path}: {rule}"));
        }
    }
    assert!(checked >= 5, "fixtures went missing");
    assert!(
        failures.is_empty(),
        "CEL rules reject valid examples:\n  {}",
        failures.join("\n  ")
    );
}

#[test]
fn cel_evaluation_sees_json_integers_as_doubles_and_catches_a_broken_rule() {
    let schema = json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.sampleRate == 1.0", "message": "m"}],
        "properties": {"sampleRate": {"type": "number"}}});
    let mut out = Vec::new();
    failing_cel_rules("x", &schema, &json!({"sampleRate": 1}), &mut out);
    assert!(out.is_empty(), "{out:?}");
    failing_cel_rules("x", &schema, &json!({"sampleRate": 0.5}), &mut out);
    assert_eq!(
        out,
        vec![("x".to_string(), "self.sampleRate == 1.0".to_string())]
    );
    out.clear();
    failing_cel_rules("x", &schema, &json!({}), &mut out);
    assert_eq!(
        out.len(),
        1,
        "a rule that errors (no such key) does not hold"
    );
}

// ---------------------------------------------------------------------------
// Rejections: the schema (or its CEL rules) and validate() refuse the same input.

/// How the XRD refuses a case.
enum XrdRejects {
    /// The structural schema (enum, range, pattern, bounds): checked here.
    Schema,
    /// A CEL rule at this schema path whose text contains the given fragment:
    /// present in the XRD, evaluated by the API server, not here.
    Cel {
        at: &'static str,
        rule_contains: &'static str,
    },
    /// `x-kubernetes-list-type: set` at this path (the API server refuses duplicates).
    ListSet { at: &'static str },
}

/// How the Rust side refuses a case.
enum RustRejects {
    /// `validate()` reports this field path.
    Field(&'static str),
    /// Deserialisation fails (the type cannot represent the value).
    Decode,
}

struct Case {
    name: &'static str,
    kind: &'static str,
    spec: Value,
    xrd: XrdRejects,
    rust: RustRejects,
}

fn ic(signals: Value) -> Value {
    json!({ "signals": signals })
}

fn ms(observability: Value) -> Value {
    json!({ "observability": observability })
}

fn traces(extra: Value) -> Value {
    let mut t = json!({ "enabled": true, "endpoint": "https://otel.example.com" });
    t.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ms(json!({ "traces": t }))
}

fn rejection_cases() -> Vec<Case> {
    use RustRejects::{Decode, Field};
    use XrdRejects::{Cel, ListSet, Schema};
    const IC: &str = apis::INFERENCE_CLUSTER_KIND;
    const MS: &str = apis::MODEL_SERVICE_KIND;
    vec![
        Case {
            name: "sampleRate above 1",
            kind: IC,
            spec: ic(json!({"kinds": [{"name": "RequestLifecycle", "sampleRate": 2}]})),
            xrd: Schema,
            rust: Field("spec.signals.kinds[0].sampleRate"),
        },
        Case {
            name: "sampleRate below 0",
            kind: IC,
            spec: ic(json!({"kinds": [{"name": "PrefixHash", "sampleRate": -0.1}]})),
            xrd: Schema,
            rust: Field("spec.signals.kinds[0].sampleRate"),
        },
        Case {
            name: "unknown kind",
            kind: IC,
            spec: ic(json!({"kinds": [{"name": "Latency"}]})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "kind listed twice",
            kind: IC,
            spec: ic(json!({"kinds": [{"name": "Cost"}, {"name": "Cost"}]})),
            xrd: Cel {
                at: "spec.signals.kinds",
                rule_contains: "exists_one(o, o.name == k.name)",
            },
            rust: Field("spec.signals.kinds[1].name"),
        },
        Case {
            name: "metric-derived kind sampled",
            kind: IC,
            spec: ic(json!({"kinds": [{"name": "Capacity", "sampleRate": 0.5}]})),
            xrd: Cel {
                at: "spec.signals.kinds[]",
                rule_contains: "self.sampleRate == 1.0",
            },
            rust: Field("spec.signals.kinds[0].sampleRate"),
        },
        Case {
            name: "retention with a space",
            kind: IC,
            spec: ic(json!({"retention": {"sketches": "30 d"}})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "retention in weeks",
            kind: IC,
            spec: ic(json!({"retention": {"sketches": "4w"}})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "privacy scope unknown",
            kind: IC,
            spec: ic(json!({"privacy": {"scope": "Global"}})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "gpu priced twice",
            kind: IC,
            spec: ic(
                json!({"cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": 2}, {"gpu": "H100", "pricePerGpuHour": 3}]}}),
            ),
            xrd: Cel {
                at: "spec.signals.cost.pricing",
                rule_contains: "o.gpu == p.gpu",
            },
            rust: Field("spec.signals.cost.pricing[1].gpu"),
        },
        Case {
            name: "negative price",
            kind: IC,
            spec: ic(json!({"cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": -1}]}})),
            xrd: Schema,
            rust: Field("spec.signals.cost.pricing[0].pricePerGpuHour"),
        },
        Case {
            name: "blank gpu",
            kind: IC,
            spec: ic(json!({"cost": {"pricing": [{"gpu": "  ", "pricePerGpuHour": 1}]}})),
            xrd: Schema,
            rust: Field("spec.signals.cost.pricing[0].gpu"),
        },
        Case {
            name: "lowercase currency",
            kind: IC,
            spec: ic(
                json!({"cost": {"pricing": [{"gpu": "H100", "pricePerGpuHour": 1, "currency": "usd"}]}}),
            ),
            xrd: Schema,
            rust: Field("spec.signals.cost.pricing[0].currency"),
        },
        Case {
            name: "too many replicas",
            kind: IC,
            spec: ic(json!({"agent": {"replicas": 11}})),
            xrd: Schema,
            rust: Field("spec.signals.agent.replicas"),
        },
        Case {
            name: "zero replicas",
            kind: IC,
            spec: ic(json!({"agent": {"replicas": 0}})),
            xrd: Schema,
            rust: Field("spec.signals.agent.replicas"),
        },
        Case {
            name: "image with a space",
            kind: IC,
            spec: ic(json!({"agent": {"image": "otel/collector k8s"}})),
            xrd: Schema,
            rust: Field("spec.signals.agent.image"),
        },
        Case {
            name: "namespace with a dot",
            kind: IC,
            spec: ic(json!({"agent": {"namespace": "team.a"}})),
            xrd: Schema,
            rust: Field("spec.signals.agent.namespace"),
        },
        Case {
            name: "scrape namespace uppercase",
            kind: IC,
            spec: ic(json!({"agent": {"scrapeNamespaces": ["ok", "Team-B"]}})),
            xrd: Schema,
            rust: Field("spec.signals.agent.scrapeNamespaces[1]"),
        },
        Case {
            name: "aggregator endpoint with scheme",
            kind: IC,
            spec: ic(json!({"aggregator": {"endpoint": "https://agg:4317"}})),
            xrd: Schema,
            rust: Field("spec.signals.aggregator.endpoint"),
        },
        Case {
            name: "aggregator endpoint with user-info",
            kind: IC,
            spec: ic(json!({"aggregator": {"endpoint": "user:secret@agg:4317"}})),
            xrd: Schema,
            rust: Field("spec.signals.aggregator.endpoint"),
        },
        Case {
            name: "aggregator port out of range",
            kind: IC,
            spec: ic(json!({"aggregator": {"endpoint": "agg:65536"}})),
            xrd: Schema,
            rust: Field("spec.signals.aggregator.endpoint"),
        },
        Case {
            name: "aggregator port zero",
            kind: IC,
            spec: ic(json!({"aggregator": {"endpoint": "agg:0"}})),
            xrd: Schema,
            rust: Field("spec.signals.aggregator.endpoint"),
        },
        Case {
            name: "token secret name invalid",
            kind: IC,
            spec: ic(
                json!({"aggregator": {"tokenSecretRef": {"name": "Bad_Name", "key": "token"}}}),
            ),
            xrd: Schema,
            rust: Field("spec.signals.aggregator.tokenSecretRef.name"),
        },
        Case {
            name: "metrics sampleRate above 1",
            kind: MS,
            spec: ms(json!({"metrics": {"sampleRate": 1.5}})),
            xrd: Schema,
            rust: Field("spec.observability.metrics.sampleRate"),
        },
        Case {
            name: "metrics scope unknown",
            kind: MS,
            spec: ms(json!({"metrics": {"scope": "Everyone"}})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "extra signal not PascalCase",
            kind: MS,
            spec: ms(json!({"metrics": {"extraSignals": ["spec_dec"]}})),
            xrd: Schema,
            rust: Field("spec.observability.metrics.extraSignals[0]"),
        },
        Case {
            name: "extra signal twice",
            kind: MS,
            spec: ms(json!({"metrics": {"extraSignals": ["KvOffload", "KvOffload"]}})),
            xrd: ListSet {
                at: "spec.observability.metrics.extraSignals",
            },
            rust: Field("spec.observability.metrics.extraSignals[1]"),
        },
        Case {
            name: "traces enabled without endpoint",
            kind: MS,
            spec: ms(json!({"traces": {"enabled": true}})),
            xrd: Cel {
                at: "spec.observability.traces",
                rule_contains: "has(self.endpoint)",
            },
            rust: Field("spec.observability.traces.endpoint"),
        },
        Case {
            name: "traces endpoint not http",
            kind: MS,
            spec: traces(json!({"endpoint": "otel.example.com:4317"})),
            xrd: Schema,
            rust: Field("spec.observability.traces.endpoint"),
        },
        Case {
            name: "traces protocol unknown",
            kind: MS,
            spec: traces(json!({"protocol": "thrift"})),
            xrd: Schema,
            rust: Decode,
        },
        Case {
            name: "header with value and valueFrom",
            kind: MS,
            spec: traces(
                json!({"headers": {"Authorization": {"value": "x", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}}}),
            ),
            xrd: Cel {
                at: "spec.observability.traces.headers{}",
                rule_contains: "has(self.value) != has(self.valueFrom)",
            },
            rust: Field("spec.observability.traces.headers[Authorization]"),
        },
        Case {
            name: "header with neither",
            kind: MS,
            spec: traces(json!({"headers": {"Authorization": {}}})),
            xrd: Cel {
                at: "spec.observability.traces.headers{}",
                rule_contains: "has(self.value) != has(self.valueFrom)",
            },
            rust: Field("spec.observability.traces.headers[Authorization]"),
        },
        Case {
            name: "header name with a space",
            kind: MS,
            spec: traces(json!({"headers": {"X Team": {"value": "a"}}})),
            xrd: Cel {
                at: "spec.observability.traces.headers",
                rule_contains: "k.matches(",
            },
            rust: Field("spec.observability.traces.headers[X Team]"),
        },
        Case {
            name: "header secret key invalid",
            kind: MS,
            spec: traces(
                json!({"headers": {"Authorization": {"valueFrom": {"secretKeyRef": {"name": "creds", "key": "a/b"}}}}}),
            ),
            xrd: Schema,
            rust: Field(
                "spec.observability.traces.headers[Authorization].valueFrom.secretKeyRef.key",
            ),
        },
        Case {
            name: "traces endpoint with user-info",
            kind: MS,
            spec: traces(json!({"endpoint": "https://pk:sk@cloud.langfuse.com/api/public/otel"})),
            xrd: Schema,
            rust: Field("spec.observability.traces.endpoint"),
        },
        Case {
            name: "traces endpoint with a query",
            kind: MS,
            spec: traces(json!({"endpoint": "https://phoenix.example/v1/traces?api_key=k"})),
            xrd: Schema,
            rust: Field("spec.observability.traces.endpoint"),
        },
        Case {
            name: "two presets",
            kind: MS,
            spec: traces(json!({"preset": {
                "langSmith": {"apiKey": {"name": "s", "key": "k"}},
                "datadog": {"apiKey": {"name": "s", "key": "k"}},
            }})),
            xrd: Cel {
                at: "spec.observability.traces.preset",
                rule_contains: "exists_one",
            },
            rust: Field("spec.observability.traces.preset"),
        },
        Case {
            name: "preset secret key invalid",
            kind: MS,
            spec: traces(
                json!({"preset": {"langfuse": {"basicAuth": {"name": "s", "key": "a/b"}}}}),
            ),
            xrd: Schema,
            rust: Field("spec.observability.traces.preset.langfuse.basicAuth.key"),
        },
        Case {
            name: "phoenix preset without endpoint",
            kind: MS,
            spec: ms(json!({"traces": {"enabled": true, "preset": {"phoenix": {}}}})),
            xrd: Cel {
                at: "spec.observability.traces",
                rule_contains: "has(self.endpoint)",
            },
            rust: Field("spec.observability.traces.endpoint"),
        },
        Case {
            name: "sampling ratio above 1",
            kind: MS,
            spec: traces(json!({"sampling": {"ratio": 3}})),
            xrd: Schema,
            rust: Field("spec.observability.traces.sampling.ratio"),
        },
    ]
}

/// Every CEL rule and list-type in a schema, keyed by the walker's path syntax.
fn schema_annotations(path: &str, node: &Value, out: &mut Vec<(String, String)>) {
    if let Some(rules) = node["x-kubernetes-validations"].as_array() {
        for rule in rules {
            out.push((path.to_string(), rule["rule"].as_str().unwrap().to_string()));
        }
    }
    if let Some(list_type) = node["x-kubernetes-list-type"].as_str() {
        out.push((path.to_string(), format!("list-type:{list_type}")));
    }
    if let Some(props) = node["properties"].as_object() {
        for (name, child) in props {
            let child_path = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            schema_annotations(&child_path, child, out);
        }
    }
    if node["items"].is_object() {
        schema_annotations(&format!("{path}[]"), &node["items"], out);
    }
    if node["additionalProperties"].is_object() {
        schema_annotations(&format!("{path}{{}}"), &node["additionalProperties"], out);
    }
}

#[test]
fn bad_specs_are_refused_by_both_the_xrd_and_validate() {
    let ic_xrd = inference_cluster_xrd();
    let ms_xrd = model_service_xrd();
    let ic_validator = SchemaValidator::for_xrd(&ic_xrd);
    let ms_validator = SchemaValidator::for_xrd(&ms_xrd);
    let mut failures = Vec::new();
    for case in rejection_cases() {
        let (xrd, validator) = if case.kind == apis::INFERENCE_CLUSTER_KIND {
            (&ic_xrd, &ic_validator)
        } else {
            (&ms_xrd, &ms_validator)
        };
        let object = json!({"apiVersion": apis::API_VERSION, "kind": case.kind, "metadata": {"name": "x", "namespace": "team-a"}, "spec": case.spec});
        let schema_errors = validator.errors(&object);
        match &case.xrd {
            XrdRejects::Schema => {
                if schema_errors.is_empty() {
                    failures.push(format!("{}: the XRD schema accepts it", case.name));
                }
            }
            XrdRejects::Cel { .. } | XrdRejects::ListSet { .. } if !schema_errors.is_empty() => {
                failures.push(format!(
                    "{}: expected only a CEL/list rule to refuse it, but the structural schema does too: {schema_errors:?}",
                    case.name
                ));
            }
            XrdRejects::Cel { at, rule_contains } => {
                let failing = cel_failures(xrd, &object);
                let expected = failing
                    .iter()
                    .any(|(p, r)| p == at && r.contains(rule_contains));
                if !expected || failing.len() != 1 {
                    failures.push(format!(
                        "{}: expected exactly the CEL rule containing {rule_contains:?} at {at} to fail, got {failing:?}",
                        case.name
                    ));
                }
            }
            XrdRejects::ListSet { at } => {
                let mut annotations = Vec::new();
                schema_annotations("", xrd.schema(), &mut annotations);
                if !annotations
                    .iter()
                    .any(|(p, r)| p == at && r == "list-type:set")
                {
                    failures.push(format!(
                        "{}: {at} is not x-kubernetes-list-type: set",
                        case.name
                    ));
                }
            }
        }
        match (&case.rust, accept_with_rust_types(&object)) {
            (_, Ok(_)) => failures.push(format!("{}: the Rust types accept it", case.name)),
            (RustRejects::Decode, Err(message)) => {
                if !message.contains("unknown variant") && !message.contains("invalid") {
                    failures.push(format!(
                        "{}: unexpected decode error {message:?}",
                        case.name
                    ));
                }
            }
            (RustRejects::Field(path), Err(message)) => {
                if !message.starts_with(&format!("{path}: "))
                    && !message.contains(&format!("; {path}: "))
                {
                    failures.push(format!(
                        "{}: validate() did not name {path}: {message:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) disagree:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[test]
fn boundary_values_are_accepted_by_both() {
    let validator = SchemaValidator::for_xrd(&inference_cluster_xrd());
    for (rate, kind) in [
        (0.0, "RequestLifecycle"),
        (1.0, "PrefixHash"),
        (1.0, "Capacity"),
    ] {
        for endpoint in ["agg:1", "agg.modelplane-system.svc:65535", "[::1]:4317"] {
            let object = json!({"apiVersion": apis::API_VERSION, "kind": "InferenceCluster", "spec": ic(json!({
                "kinds": [{"name": kind, "sampleRate": rate}],
                "aggregator": {"endpoint": endpoint},
            }))});
            assert_eq!(
                validator.errors(&object),
                Vec::<String>::new(),
                "{kind} {rate} {endpoint}"
            );
            accept_with_rust_types(&object)
                .unwrap_or_else(|e| panic!("{kind} {rate} {endpoint}: {e}"));
        }
    }
}

#[test]
fn unknown_fields_in_owned_subtrees_are_errors_but_modelplanes_fields_are_kept() {
    let validator = SchemaValidator::for_xrd(&inference_cluster_xrd());
    let typo = json!({"apiVersion": apis::API_VERSION, "kind": "InferenceCluster", "spec": ic(json!({
        "kinds": [{"name": "RequestLifecycle", "sampleRatio": 0.5}],
    }))});
    let errors = validator.errors(&typo);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("sampleRatio"), "{errors:?}");

    let theirs = json!({"apiVersion": apis::API_VERSION, "kind": "InferenceCluster",
        "spec": {"cluster": {"source": "EKS"}, "signals": {"kinds": []}},
        "status": {"gateway": {"address": "203.0.113.7"}}});
    assert_eq!(validator.errors(&theirs), Vec::<String>::new());
}
