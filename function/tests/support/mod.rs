//! The table the request→response tests share: named cases, one loop that
//! runs each through `run_function`, and a diff of want against got that
//! names the case, in the manner of function-template-go's `fn_test.go`
//! (`cmp.Diff(want, got)`). Responses are compared as protojson.
//!
//! A case pins the whole response where it is small, or the parts of it that
//! matter where it renders an agent (the examples' golden files pin those in
//! full): `Want::Parts` maps each part's key to its expected value.
//!
//! A part's key is a JSON pointer (RFC 6901) into the response, such as
//! `/meta/tag`, or `document#pointer` into one of the documents derived from
//! it (see [`document`]). A `*` segment matches every member of an object and
//! yields them keyed by name, leaving out members where the rest of the
//! pointer finds nothing. An absent part reads as `null`; that is exact
//! because the loop also checks that no response holds a `null`.

#![allow(dead_code)] // each test crate uses its own subset

use function_sdk_rust::proto::v1::{RunFunctionRequest, RunFunctionResponse};
use function_signals::render::deployment::config_checksum;
use function_signals::{Config, run_function};
use serde_json::{Map, Value};

pub struct Case {
    pub name: &'static str,
    pub config: Config,
    pub request: Value,
    pub want: Want,
}

pub enum Want {
    /// The whole response.
    Response(Value),
    /// Only these parts of it, keyed as the module documentation says.
    Parts(Value),
}

/// A case run with the default command-line settings.
pub fn case(name: &'static str, request: Value, want: Want) -> Case {
    Case {
        name,
        config: Config::default(),
        request,
        want,
    }
}

impl Case {
    pub fn with_config(self, config: Config) -> Case {
        Case { config, ..self }
    }
}

/// Checks after every case's comparison, for what a table cannot state as a
/// value (such as "no marker appears anywhere"). `Err` fails the case.
pub type Invariant = fn(&RunFunctionRequest, &RunFunctionResponse) -> Result<(), String>;

pub fn run(cases: Vec<Case>) {
    run_with(cases, |_, _| Ok(()));
}

/// Runs every case, then fails once listing every failing case, so one
/// broken behaviour does not hide the others.
pub fn run_with(cases: Vec<Case>, invariant: Invariant) {
    let mut names = std::collections::BTreeSet::new();
    for case in &cases {
        assert!(
            names.insert(case.name),
            "two cases are named {:?}",
            case.name
        );
    }
    let total = cases.len();
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|case| check(case, invariant).err())
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn check(case: Case, invariant: Invariant) -> Result<(), String> {
    let failed = |detail: String| Err(format!("--- {}\n{detail}", case.name));
    let req: RunFunctionRequest = match serde_json::from_value(case.request) {
        Ok(req) => req,
        Err(e) => return failed(format!("the request is not a RunFunctionRequest: {e}\n")),
    };
    let rsp = run_function(&req, &case.config);
    let got = serde_json::to_value(&rsp).expect("responses serialize");
    let mut lines = Vec::new();
    let mut nulls = Vec::new();
    find_nulls(&got, String::new(), &mut nulls);
    if !nulls.is_empty() {
        lines.push(format!(
            "the response holds null at {} (a part that reads null would be taken for absent)",
            nulls.join(", ")
        ));
    }
    match &case.want {
        Want::Response(want) => diff(want, &got, String::new(), &mut lines),
        Want::Parts(want) => {
            let parts = want.as_object().expect("Want::Parts is an object of parts");
            for (key, want_part) in parts {
                diff(want_part, &part(&got, key), key.clone(), &mut lines);
            }
        }
    }
    if let Err(broken) = invariant(&req, &rsp) {
        lines.push(broken);
    }
    if lines.is_empty() {
        Ok(())
    } else {
        failed(format!(
            "run_function(...): -want +got\n{}\n",
            lines.join("\n")
        ))
    }
}

fn find_nulls(value: &Value, path: String, found: &mut Vec<String>) {
    match value {
        Value::Null => found.push(if path.is_empty() { "/".into() } else { path }),
        Value::Object(map) => {
            for (key, child) in map {
                find_nulls(child, format!("{path}/{}", escape(key)), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                find_nulls(child, format!("{path}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Adds one entry per differing leaf: its path, then `-want` and `+got`.
/// A member on one side only is shown as `(absent)` on the other.
pub fn diff(want: &Value, got: &Value, path: String, lines: &mut Vec<String>) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            let keys: std::collections::BTreeSet<&String> = w.keys().chain(g.keys()).collect();
            for key in keys {
                let child = format!("{path}/{}", escape(key));
                match (w.get(key), g.get(key)) {
                    (Some(w), Some(g)) => diff(w, g, child, lines),
                    (w, g) => lines.push(leaf(&child, w, g)),
                }
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            for i in 0..w.len().max(g.len()) {
                let child = format!("{path}/{i}");
                match (w.get(i), g.get(i)) {
                    (Some(w), Some(g)) => diff(w, g, child, lines),
                    (w, g) => lines.push(leaf(&child, w, g)),
                }
            }
        }
        (w, g) if w != g => lines.push(leaf(&path, Some(w), Some(g))),
        _ => {}
    }
}

fn leaf(path: &str, want: Option<&Value>, got: Option<&Value>) -> String {
    let show = |v: Option<&Value>| v.map_or("(absent)".to_string(), Value::to_string);
    let path = if path.is_empty() {
        "(the whole value)"
    } else {
        path
    };
    format!("{path}:\n  -{}\n  +{}", show(want), show(got))
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The value of one part of a response, `null` when absent.
pub fn part(rsp: &Value, key: &str) -> Value {
    let (document, pointer) = match key.split_once('#') {
        Some((name, pointer)) => (self::document(rsp, name), pointer),
        None => (rsp.clone(), key),
    };
    assert!(
        pointer.is_empty() || pointer.starts_with('/'),
        "part {key:?}: a pointer is empty or starts with /"
    );
    let segments: Vec<String> = pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect();
    resolve(&document, &segments).unwrap_or(Value::Null)
}

fn resolve(value: &Value, segments: &[String]) -> Option<Value> {
    let Some((first, rest)) = segments.split_first() else {
        return Some(value.clone());
    };
    if first == "*" {
        let matched: Map<String, Value> = value
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), resolve(v, rest)?)))
            .collect();
        return Some(Value::Object(matched));
    }
    let child = match value {
        Value::Object(map) => map.get(first.as_str()),
        Value::Array(items) => first.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    }?;
    resolve(child, rest)
}

/// Where the signals agent's manifests sit in a response: inside the
/// provider-kubernetes Object in MultiCluster mode, at the top in SingleCluster.
fn agent_manifest(rsp: &Value, key: &str) -> Value {
    let resource = &rsp["desired"]["resources"][key]["resource"];
    if resource["kind"] == "Object" {
        resource["spec"]["forProvider"]["manifest"].clone()
    } else {
        resource.clone()
    }
}

/// Documents derived from a response, for parts a pointer cannot reach:
///
/// - `collector.yaml`: the agent's collector config, parsed;
/// - `agent`: the agent's Deployment manifest;
/// - `agent env`: its container's env, keyed by variable name;
/// - `pod annotations`: its pod template's annotations, the config checksum
///   shown as `<checksum of collector.yaml>` when it is that (its value
///   changes with every config change);
/// - `forwarder.yaml`: a ModelService's trace forwarder config, parsed;
/// - `forwarder env`: the forwarder container's env, keyed by variable name;
/// - `forwarder annotations`: its pod template's annotations, the checksum
///   shown as `<checksum of forwarder.yaml>` when it is that.
pub fn document(rsp: &Value, name: &str) -> Value {
    let collector_yaml = || {
        agent_manifest(rsp, "signals-agent-config")["data"]["collector.yaml"]
            .as_str()
            .map(str::to_string)
    };
    let deployment = agent_manifest(rsp, "signals-agent-deployment");
    let forwarder = &rsp["desired"]["resources"]["signals-trace-forwarder-deployment"]["resource"];
    let forwarder_yaml = || {
        rsp["desired"]["resources"]["signals-trace-forwarder-config"]["resource"]["data"]
            ["collector.yaml"]
            .as_str()
            .map(str::to_string)
    };
    let env_of = |deployment: &Value| {
        deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .map(|env| {
                env.iter()
                    .map(|var| {
                        let mut rest = var.as_object().cloned().unwrap_or_default();
                        let name = rest.remove("name").unwrap_or_default();
                        (name.as_str().unwrap_or_default().to_string(), rest.into())
                    })
                    .collect::<Map<String, Value>>()
                    .into()
            })
            .unwrap_or(Value::Null)
    };
    match name {
        "forwarder.yaml" => forwarder_yaml()
            .map(|text| serde_yaml::from_str(&text).expect("forwarder config parses"))
            .unwrap_or(Value::Null),
        "forwarder env" => env_of(forwarder),
        "forwarder annotations" => {
            let mut annotations = forwarder["spec"]["template"]["metadata"]["annotations"].clone();
            let checksum = annotations
                .as_object_mut()
                .and_then(|a| a.get_mut("signals.modelplane.ai/config-checksum"));
            if let (Some(checksum), Some(text)) = (checksum, forwarder_yaml())
                && *checksum == config_checksum(&text).as_str()
            {
                *checksum = "<checksum of forwarder.yaml>".into();
            }
            annotations
        }
        "collector.yaml" => collector_yaml()
            .map(|text| serde_yaml::from_str(&text).expect("collector.yaml parses"))
            .unwrap_or(Value::Null),
        "agent" => deployment,
        "agent env" => env_of(&deployment),
        "pod annotations" => {
            let mut annotations = deployment["spec"]["template"]["metadata"]["annotations"].clone();
            let checksum = annotations
                .as_object_mut()
                .and_then(|a| a.get_mut("signals.modelplane.ai/config-checksum"));
            if let (Some(checksum), Some(text)) = (checksum, collector_yaml())
                && *checksum == config_checksum(&text).as_str()
            {
                *checksum = "<checksum of collector.yaml>".into();
            }
            annotations
        }
        other => panic!("no document named {other:?}"),
    }
}

/// `base` with `patch` applied as a JSON merge patch (RFC 7386): objects
/// merge, anything else replaces, `null` removes.
pub fn patched(mut base: Value, patch: Value) -> Value {
    merge(&mut base, patch);
    base
}

fn merge(base: &mut Value, patch: Value) {
    let Value::Object(patch) = patch else {
        *base = patch;
        return;
    };
    if !base.is_object() {
        *base = Value::Object(Map::new());
    }
    let base = base.as_object_mut().unwrap();
    for (key, value) in patch {
        if value.is_null() {
            base.remove(&key);
        } else {
            merge(base.entry(key).or_insert(Value::Null), value);
        }
    }
}
